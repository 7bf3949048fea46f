"""Reading dataset files (JSONL, CSV, Parquet, a folder of Parquet files) into feature columns `inputs.x`, `outputs.y`.

A folder is read as one Parquet dataset with pyarrow.dataset: every `*.parquet` / `*.pq` file below
it, nested folders included, in the order of their sorted relative paths; names starting with `.`
or `_` (`_SUCCESS`, `_metadata`, `.crc` files) are skipped, any other file is an error. Hive-style
partition folders (`date=2026-01-01/part-0.parquet`) are layout, not data: a partition key is a
feature only when it is named like one (`inputs.country=DE/`), otherwise it is dropped. Files may
differ in columns (a column missing from a file is null there); their types are unified.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import pyarrow as pa

PARQUET_SUFFIXES = (".parquet", ".pq")
#: rows per record batch when a Parquet file or folder is read
PARQUET_BATCH_ROWS = 65_536


class DataFormatError(ValueError):
    pass


def file_sha256(path: Path) -> str:
    """The sha256 of a data file; of a Parquet folder, `folder_sha256`."""
    if path.is_dir():
        return folder_sha256(path)
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def folder_sha256(folder: Path) -> str:
    """The digest of a Parquet folder: sha256 over its files sorted by relative path, each contributing
    its relative path (UTF-8, `/`-separated), a NUL byte and the 32-byte sha256 of its contents.

    Renaming, adding, removing or changing any Parquet file changes it; skipped files (`_SUCCESS`,
    dot files) do not.
    """
    h = hashlib.sha256()
    for rel, path in parquet_files(folder):
        h.update(rel.encode() + b"\0" + bytes.fromhex(file_sha256(path)))
    return h.hexdigest()


def parquet_files(folder: Path) -> list[tuple[str, Path]]:
    """(relative path, path) of every Parquet file of a dataset folder, sorted by relative path.

    A symbolic link is read only when it points inside the folder (to a file); a linked folder is
    refused, so a dataset cannot reach outside the card's folder it was confined to.
    """
    root = folder.resolve()
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for d in list(dirnames):
            if d.startswith((".", "_")):
                dirnames.remove(d)
            elif (here / d).is_symlink():
                raise DataFormatError(f"{(here / d).relative_to(root)} is a symbolic link to a folder; "
                                      "copy its files into the dataset folder")
        for name in filenames:
            if name.startswith((".", "_")):
                continue
            path = here / name
            rel = path.relative_to(root).as_posix()
            if not name.lower().endswith(PARQUET_SUFFIXES):
                raise DataFormatError(f"{rel} in the dataset folder is not a Parquet file (*.parquet, *.pq); "
                                      "remove it, or prefix its name with '_' to keep it there")
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                raise DataFormatError(f"{rel} is a symbolic link leading outside the dataset folder")
            found.append((rel, path))
    if not found:
        raise DataFormatError("the folder holds no Parquet files (*.parquet, *.pq)")
    return sorted(found)


def _num(v: str) -> Any:
    if v == "":
        return None
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f


def _finish(columns: dict[str, list[Any]], probs: dict[str, dict[str, list[Any]]], n: int) -> dict[str, list[Any]]:
    for feat, labels in probs.items():
        columns[feat] = [
            {lab: vals[i] for lab, vals in labels.items() if vals[i] is not None} or None for i in range(n)
        ]
    return columns


def read_jsonl(path: Path) -> dict[str, list[Any]]:
    rows = []
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise DataFormatError(f"line {lineno} is not JSON: {exc}") from None
            if not isinstance(row, dict):
                raise DataFormatError(f"line {lineno} is not a JSON object")
            rows.append(row)
    if not rows:
        raise DataFormatError("the file holds no data rows (an empty dataset cannot be a reference)")
    names: dict[str, None] = {}
    for row in rows:
        for section in ("inputs", "outputs"):
            m = row.get(section) or {}
            if not isinstance(m, dict):
                raise DataFormatError(f"'{section}' must be a map")
            for k in m:
                names.setdefault(f"{section}.{k}")
    columns = {}
    for name in names:
        section, key = name.split(".", 1)
        columns[name] = [(row.get(section) or {}).get(key) for row in rows]
    return columns


def _from_flat(header: list[str], rows: list[list[Any]]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {}
    probs: dict[str, dict[str, list[Any]]] = {}
    for j, name in enumerate(header):
        parts = name.split(".")
        if parts[0] not in ("inputs", "outputs") or len(parts) < 2:
            raise DataFormatError(f"column '{name}' must be named inputs.<name> or outputs.<name>")
        values = [r[j] for r in rows]
        if len(parts) == 3 and parts[0] == "outputs":
            probs.setdefault(f"outputs.{parts[1]}", {})[parts[2]] = values
        elif len(parts) == 2:
            columns[name] = values
        else:
            raise DataFormatError(f"column '{name}' nests too deep")
    return _finish(columns, probs, len(rows))


def read_csv(path: Path) -> dict[str, list[Any]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataFormatError("the CSV file is empty") from None
        rows = []
        width = len(header)
        for r in reader:
            if not r:
                continue
            if len(r) != width:
                raise DataFormatError(f"line {reader.line_num} has {len(r)} fields, the header has {width} "
                                      "(a ragged row: check quoting and separators)")
            rows.append([_num(v) for v in r])
    if not rows:
        raise DataFormatError("the CSV file has a header but no data rows (an empty dataset cannot be a reference)")
    return _from_flat(header, rows)


def _is_feature(name: str) -> bool:
    return name.startswith(("inputs.", "outputs."))


def iter_parquet_batches(path: Path, batch_size: int = PARQUET_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The record batches of a Parquet file or folder, in file order; of a folder, only the unified
    file columns plus the partition keys named like features (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    if not path.is_dir():
        yield from pq.ParquetFile(path).iter_batches(batch_size=batch_size)
        return
    files = [str(p) for _, p in parquet_files(path)]
    base = str(path.resolve())
    try:
        found = ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=base)
        keys = found.partitioning.schema if found.partitioning is not None else pa.schema([])
        schema = pa.unify_schemas([pq.read_schema(f) for f in files] + [keys], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataFormatError(f"the folder's Parquet files do not make one dataset: {exc}") from None
    dataset = ds.dataset(files, schema=schema, format="parquet", partitioning=found.partitioning,
                         partition_base_dir=base)
    columns = [n for n in schema.names if n not in keys.names or _is_feature(n)]
    for fragment in dataset.get_fragments():  # one file at a time: rows keep the files' sorted order
        yield from fragment.to_batches(schema=dataset.schema, columns=columns, batch_size=batch_size)


def read_parquet(path: Path) -> dict[str, list[Any]]:
    """Columns of a Parquet file or folder, read batch by batch."""
    header: list[str] | None = None
    data: list[list[Any]] = []
    for batch in iter_parquet_batches(path):
        if header is None:
            header, data = batch.schema.names, [[] for _ in batch.schema.names]
        for col, values in zip(data, batch.columns, strict=True):
            col.extend(values.to_pylist())
    if header is None or not data or not data[0]:
        what = "folder" if path.is_dir() else "file"
        raise DataFormatError(f"the Parquet {what} holds no rows (an empty dataset cannot be a reference)")
    rows = [list(r) for r in zip(*data, strict=True)]
    return _from_flat(header, rows)


def read_dataset(path: Path) -> dict[str, list[Any]]:
    """Columns of a dataset file by extension (.jsonl/.json, .csv, .parquet), or of a folder of Parquet files."""
    if path.is_dir():
        return read_parquet(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return read_jsonl(path)
    if suffix == ".csv":
        return read_csv(path)
    if suffix in (".parquet", ".pq"):
        return read_parquet(path)
    raise DataFormatError(f"unsupported data file type '{suffix}' (use .jsonl, .csv, .parquet or a folder of "
                          "Parquet files)")
