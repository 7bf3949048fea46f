"""Streaming a dataset file into its reference profile: batches of rows into the profile's accumulators.

One pass over the file reads it batch by batch (`sources.datasets.iter_batches`), hashes it (JSONL
and CSV) and profiles it (`engine.profile.ProfileBuilder`), so memory stays bounded whatever its size.
When the kind guessed for an unconfigured column from its first values is contradicted later (a
number column with a stray word), a second pass infers every guessed kind over the whole file and a
third profiles with them: the profile is always the one the whole columns in memory would give.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from careful_monitor.engine.profile import KindInference, ProfileBuilder, ReferenceProfile
from careful_monitor.sources.datasets import BATCH_ROWS, file_sha256, iter_batches, streams_digest


class RowColumns(Mapping[str, Sequence[Any]]):
    """Every column name of a streamed file; values (row-aligned floats, NaN: null or not a number) only
    of the columns kept row by row."""

    def __init__(self, names: Sequence[str], kept: Mapping[str, np.ndarray]) -> None:
        self._names, self._kept = list(names), dict(kept)

    def __getitem__(self, name: str) -> Sequence[Any]:
        if name in self._kept:
            return cast(Sequence[Any], self._kept[name])
        raise KeyError(f"{name}: its values were not kept while the file was streamed")

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass
class StreamedDataset:
    profile: ReferenceProfile
    columns: RowColumns
    sha256: str


def profile_file(path: Path, *, name: str, role: str, kinds: Mapping[str, str], seed: int,
                 anchor: ReferenceProfile | None = None, anchored_by: str | None = None, bins: int = 20,
                 quantiles: int = 1024, max_categories: int = 1000, joint_sample: int = 5000,
                 keep_rows: Sequence[str] = (), batch_rows: int = BATCH_ROWS, **bounds: int) -> StreamedDataset:
    """Profile a dataset file or Parquet folder in batches; `bounds` are ProfileBuilder's exactness bounds."""
    given = dict(kinds)

    def one_pass(kinds: Mapping[str, str]) -> tuple[ProfileBuilder, str | None]:
        digest = hashlib.sha256() if streams_digest(path) else None
        builder = ProfileBuilder(name, role, kinds=kinds, anchor=anchor, anchored_by=anchored_by, bins=bins,
                                 quantiles=quantiles, max_categories=max_categories, joint_sample=joint_sample,
                                 rng=np.random.default_rng(seed), keep_rows=keep_rows, **bounds)
        for cols, n in iter_batches(path, batch_rows, digest):
            builder.add(cols, n)
            if builder.contradicted is not None:
                return builder, None
        return builder, digest.hexdigest() if digest is not None else None

    builder, sha256 = one_pass(given)
    if builder.contradicted is not None:
        inference = KindInference(max_categories, skip=list(given))
        for cols, _ in iter_batches(path, batch_rows):
            inference.add(cols)
        builder, sha256 = one_pass({**inference.kinds(), **given})
    profile = builder.finish()
    return StreamedDataset(profile, RowColumns(builder.columns, builder.kept_rows()),
                           sha256 if sha256 is not None else file_sha256(path))
