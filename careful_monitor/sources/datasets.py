"""Reading dataset files (JSONL, CSV, Parquet) into feature columns `inputs.x`, `outputs.y`."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import orjson


class DataFormatError(ValueError):
    pass


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def read_parquet(path: Path) -> dict[str, list[Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if table.num_rows == 0:
        raise DataFormatError("the Parquet file holds no rows (an empty dataset cannot be a reference)")
    header = table.column_names
    cols = [table.column(c).to_pylist() for c in header]
    rows = [list(r) for r in zip(*cols, strict=True)] if cols else []
    return _from_flat(header, rows)


def read_dataset(path: Path) -> dict[str, list[Any]]:
    """Columns of a dataset file by extension: .jsonl/.json, .csv, .parquet."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return read_jsonl(path)
    if suffix == ".csv":
        return read_csv(path)
    if suffix in (".parquet", ".pq"):
        return read_parquet(path)
    raise DataFormatError(f"unsupported data file type '{suffix}' (use .jsonl, .csv or .parquet)")
