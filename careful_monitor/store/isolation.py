"""The store side of evaluation isolation: signature chunks per dataset and the last result per pair.

Kept out of `repository.py`: it uses the Store's sessions (`Store._session`) on the tables of migration
0004. Signatures arrive chunk by chunk (`put_chunk`), each chunk in its own short transaction, so
registering a large file never holds more than one chunk; the set's row (`finish_set`) is written last,
so a registration that died half-way leaves no set that looks complete.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select

from careful_monitor.store.models import IsolationChunkRow, IsolationResultRow, IsolationSetRow
from careful_monitor.store.repository import Store


@dataclass(frozen=True, slots=True)
class SignatureSet:
    """How a dataset's signatures were computed (`params`), from which file, and how many chunks hold them."""

    dataset: str
    n_rows: int
    n_chunks: int
    data_sha256: str
    params: dict[str, Any]
    computed_at: datetime


@dataclass(frozen=True, slots=True)
class SignatureChunk:
    """One chunk of rows as array bytes (layout in `store.models.IsolationChunkRow`)."""

    chunk: int
    first_row: int
    n_rows: int
    row_hashes: bytes
    words: bytes
    signatures: bytes
    gram_rows: bytes
    gram_hashes: bytes


@dataclass(frozen=True, slots=True)
class IsolationResult:
    """The last isolation check of one evaluation set against one dataset."""

    evaluation: str
    dataset: str
    rows_checked: int
    exact: int
    near: int
    rate: float
    examples: dict[str, Any]
    details: dict[str, Any]
    computed_at: datetime


def begin_set(store: Store, dataset: str) -> None:
    """Forget the dataset's previous signatures (a re-registration computes them anew)."""
    with store._session(write=True) as session:
        session.execute(delete(IsolationSetRow).where(IsolationSetRow.dataset == dataset))
        session.execute(delete(IsolationChunkRow).where(IsolationChunkRow.dataset == dataset))


def put_chunk(store: Store, dataset: str, chunk: SignatureChunk) -> None:
    with store._session(write=True) as session:
        session.add(IsolationChunkRow(dataset=dataset, chunk=chunk.chunk, first_row=chunk.first_row,
                                      n_rows=chunk.n_rows, row_hashes=chunk.row_hashes, words=chunk.words,
                                      signatures=chunk.signatures, gram_rows=chunk.gram_rows,
                                      gram_hashes=chunk.gram_hashes))


def finish_set(store: Store, dataset: str, *, n_rows: int, n_chunks: int, data_sha256: str,
               params: dict[str, Any]) -> None:
    with store._session(write=True) as session:
        session.add(IsolationSetRow(dataset=dataset, n_rows=n_rows, n_chunks=n_chunks, data_sha256=data_sha256,
                                    params=params, computed_at=datetime.now(UTC)))


def get_set(store: Store, dataset: str) -> SignatureSet | None:
    """The dataset's complete signature set, or None (never computed, or its registration did not finish)."""
    with store._session() as session:
        row = session.get(IsolationSetRow, dataset)
        if row is None:
            return None
        return SignatureSet(row.dataset, row.n_rows, row.n_chunks, row.data_sha256, dict(row.params),
                            row.computed_at)


def iter_chunks(store: Store, dataset: str) -> Iterator[SignatureChunk]:
    """The dataset's chunks in row order, one short read each (only one chunk is in memory at a time)."""
    index = 0
    while True:
        with store._session() as session:
            row = session.get(IsolationChunkRow, (dataset, index))
            if row is None:
                return
            chunk = SignatureChunk(row.chunk, row.first_row, row.n_rows, row.row_hashes, row.words,
                                   row.signatures, row.gram_rows, row.gram_hashes)
        yield chunk
        index += 1


def put_results(store: Store, evaluation: str, results: Sequence[IsolationResult], *, replace_all: bool) -> None:
    """Store the pairs just checked; `replace_all` also drops the evaluation set's pairs no longer checked."""
    with store._session(write=True) as session:
        q = delete(IsolationResultRow).where(IsolationResultRow.evaluation == evaluation)
        if not replace_all:
            q = q.where(IsolationResultRow.dataset.in_([r.dataset for r in results]))
        session.execute(q)
        session.add_all(IsolationResultRow(
            evaluation=r.evaluation, dataset=r.dataset, rows_checked=r.rows_checked, exact=r.exact, near=r.near,
            rate=r.rate, examples=r.examples, details=r.details, computed_at=r.computed_at) for r in results)


def list_results(store: Store) -> list[IsolationResult]:
    """Every stored pair, by evaluation set then dataset."""
    with store._session() as session:
        rows = session.scalars(select(IsolationResultRow).order_by(IsolationResultRow.evaluation,
                                                                   IsolationResultRow.dataset)).all()
        return [IsolationResult(r.evaluation, r.dataset, r.rows_checked, r.exact, r.near, r.rate, dict(r.examples),
                                dict(r.details), r.computed_at) for r in rows]
