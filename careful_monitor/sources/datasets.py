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
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

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


def csv_cell(v: str) -> Any:
    """A CSV cell as a value: empty -> None, an integer literal -> int, a number -> float, else the string."""
    if v == "":
        return None
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f


#: rows per batch when a JSONL or CSV file is streamed (registration reads any file batch by batch)
BATCH_ROWS = 16_384

Batch = tuple[dict[str, list[Any]], int]  # (feature columns of these rows, row count)


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


class _HashingReader(io.RawIOBase):
    """A binary file that feeds every byte it reads into a digest (the file is hashed as it is parsed)."""

    def __init__(self, raw: BinaryIO, digest: _Digest) -> None:
        self._raw, self._digest = raw, digest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._raw.read(len(b))
        b[:len(data)] = data
        self._digest.update(data)
        return len(data)


def _lines(fh: BinaryIO, digest: _Digest | None) -> Iterator[bytes]:
    """The lines of a binary file (split on b"\\n", as iterating it does), hashing its bytes on the way."""
    rest = b""
    for chunk in iter(lambda: fh.read(1 << 22), b""):
        if digest is not None:
            digest.update(chunk)
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _flat_columns(header: list[str], data: list[list[Any]], n: int) -> dict[str, list[Any]]:
    """Flat columns (`inputs.x`, `outputs.probs.<label>`) -> feature columns; probability columns become maps."""
    columns: dict[str, list[Any]] = {}
    probs: dict[str, dict[str, list[Any]]] = {}
    for name, values in zip(header, data, strict=True):
        parts = name.split(".")
        if parts[0] not in ("inputs", "outputs") or len(parts) < 2:
            raise DataFormatError(f"column '{name}' must be named inputs.<name> or outputs.<name>")
        if len(parts) == 3 and parts[0] == "outputs":
            probs.setdefault(f"outputs.{parts[1]}", {})[parts[2]] = values
        elif len(parts) == 2:
            columns[name] = values
        else:
            raise DataFormatError(f"column '{name}' nests too deep")
    for feat, labels in probs.items():
        columns[feat] = [
            {lab: vals[i] for lab, vals in labels.items() if vals[i] is not None} or None for i in range(n)
        ]
    return columns


def _jsonl_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    maps = {section: [row.get(section) or {} for row in rows] for section in ("inputs", "outputs")}
    names: dict[tuple[str, str], None] = {}  # first seen first, row by row (inputs before outputs within a row)
    for ins, outs in zip(maps["inputs"], maps["outputs"], strict=True):
        for section, m in (("inputs", ins), ("outputs", outs)):
            if not isinstance(m, dict):
                raise DataFormatError(f"'{section}' must be a map")
            for k in m:
                if (section, k) not in names:
                    names[section, k] = None
    return {f"{section}.{key}": [m.get(key) for m in maps[section]] for section, key in names}


def iter_jsonl_batches(path: Path, batch_rows: int = BATCH_ROWS, digest: _Digest | None = None) -> Iterator[Batch]:
    """Feature columns of a JSONL file, `batch_rows` rows at a time (a key missing from a row is null)."""
    rows: list[dict[str, Any]] = []
    seen = False
    with path.open("rb") as fh:
        for lineno, line in enumerate(_lines(fh, digest), 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise DataFormatError(f"line {lineno} is not JSON: {exc}") from None
            if not isinstance(row, dict):
                raise DataFormatError(f"line {lineno} is not a JSON object")
            rows.append(row)
            if len(rows) >= batch_rows:
                yield _jsonl_columns(rows), len(rows)
                rows, seen = [], True
    if rows:
        yield _jsonl_columns(rows), len(rows)
    elif not seen:
        raise DataFormatError("the file holds no data rows (an empty dataset cannot be a reference)")


def iter_csv_batches(path: Path, batch_rows: int = BATCH_ROWS, digest: _Digest | None = None) -> Iterator[Batch]:
    """Feature columns of a CSV file (header `inputs.x`, `outputs.probs.<label>`), `batch_rows` rows at a time."""
    with path.open("rb") as raw:
        binary: BinaryIO = raw if digest is None else io.BufferedReader(_HashingReader(raw, digest))
        fh = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataFormatError("the CSV file is empty") from None
        width = len(header)
        rows: list[list[Any]] = []
        seen = False
        for r in reader:
            if not r:
                continue
            if len(r) != width:
                raise DataFormatError(f"line {reader.line_num} has {len(r)} fields, the header has {width} "
                                      "(a ragged row: check quoting and separators)")
            rows.append([csv_cell(v) for v in r])
            if len(rows) >= batch_rows:
                yield _flat_columns(header, [list(c) for c in zip(*rows, strict=True)], len(rows)), len(rows)
                rows, seen = [], True
        if digest is not None:
            fh.read()  # the bytes after the last row (never any: csv reads to the end) are hashed too
    if rows:
        yield _flat_columns(header, [list(c) for c in zip(*rows, strict=True)], len(rows)), len(rows)
    elif not seen:
        raise DataFormatError("the CSV file has a header but no data rows (an empty dataset cannot be a reference)")


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


def iter_parquet_feature_batches(path: Path, batch_rows: int = PARQUET_BATCH_ROWS) -> Iterator[Batch]:
    """Feature columns of a Parquet file or folder, one record batch at a time."""
    seen = False
    for batch in iter_parquet_batches(path, batch_rows):
        if batch.num_rows:
            seen = True
            yield _flat_columns(batch.schema.names, [c.to_pylist() for c in batch.columns], batch.num_rows), \
                batch.num_rows
    if not seen:
        what = "folder" if path.is_dir() else "file"
        raise DataFormatError(f"the Parquet {what} holds no rows (an empty dataset cannot be a reference)")


def streams_digest(path: Path) -> bool:
    """Whether `iter_batches(path, digest=...)` hashes the file as it reads it (JSONL and CSV files)."""
    return not path.is_dir() and path.suffix.lower() in (*JSONL_SUFFIXES, ".csv")


JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


def iter_batches(path: Path, batch_rows: int = BATCH_ROWS, digest: _Digest | None = None) -> Iterator[Batch]:
    """Feature columns of a dataset file or Parquet folder, `batch_rows` rows at a time (see `read_dataset`).

    A JSONL or CSV file also feeds its bytes into `digest` as it is read (`streams_digest`), so its
    sha256 costs no second read; a column first seen in a later batch was null in the rows before.
    """
    if path.is_dir():
        return iter_parquet_feature_batches(path, batch_rows)
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return iter_jsonl_batches(path, batch_rows, digest)
    if suffix == ".csv":
        return iter_csv_batches(path, batch_rows, digest)
    if suffix in PARQUET_SUFFIXES:
        return iter_parquet_feature_batches(path, batch_rows)
    raise DataFormatError(f"unsupported data file type '{suffix}' (use .jsonl, .csv, .parquet or a folder of "
                          "Parquet files)")


def _collect(batches: Iterator[Batch]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {}
    n = 0
    for cols, k in batches:
        for name in cols:
            if name not in columns:
                columns[name] = [None] * n
        for name, col in columns.items():
            col.extend(cols[name] if name in cols else [None] * k)
        n += k
    return columns


def read_jsonl(path: Path) -> dict[str, list[Any]]:
    return _collect(iter_jsonl_batches(path))


def read_csv(path: Path) -> dict[str, list[Any]]:
    return _collect(iter_csv_batches(path))


def read_parquet(path: Path) -> dict[str, list[Any]]:
    """Columns of a Parquet file or folder, read batch by batch."""
    return _collect(iter_parquet_feature_batches(path))


def read_dataset(path: Path) -> dict[str, list[Any]]:
    """Columns of a dataset file by extension (.jsonl/.json, .csv, .parquet), or of a folder of Parquet files.

    All in memory: registration streams the file instead (`iter_batches`, `sources.columns`).
    """
    return _collect(iter_batches(path))
