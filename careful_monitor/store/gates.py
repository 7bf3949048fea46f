"""The store side of the pre-flight gates: the last report per dataset, and the stored row hashes they read.

Kept out of `repository.py`: it uses the Store's sessions (`Store._session`) on the table of migration
0006 and reads the isolation chunks of migration 0004 column by column (the gates need a set's row
hashes, not its MinHash signatures, so those are not loaded).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, select

from careful_monitor.store.models import GateReportRow, IsolationChunkRow
from careful_monitor.store.repository import Store


@dataclass(frozen=True, slots=True)
class StoredReport:
    """A dataset's last gate report (`careful_monitor.gates.GateReport.doc()`) and when it was computed."""

    dataset: str
    report: dict[str, Any]
    computed_at: datetime


def put_report(store: Store, dataset: str, report: dict[str, Any], computed_at: datetime) -> None:
    """Store the dataset's report, replacing the previous one (only the latest is kept)."""
    with store._session(write=True) as session:
        session.execute(delete(GateReportRow).where(GateReportRow.dataset == dataset))
        session.add(GateReportRow(dataset=dataset, report=report, computed_at=computed_at))


def get_report(store: Store, dataset: str) -> StoredReport | None:
    with store._session() as session:
        row = session.get(GateReportRow, dataset)
        if row is None:
            return None
        return StoredReport(row.dataset, dict(row.report), row.computed_at)


def iter_row_hashes(store: Store, dataset: str) -> Iterator[np.ndarray]:
    """The dataset's stored row hashes (int64), chunk by chunk in row order, one short read each."""
    index = 0
    while True:
        with store._session() as session:
            blob = session.execute(select(IsolationChunkRow.row_hashes).where(
                IsolationChunkRow.dataset == dataset, IsolationChunkRow.chunk == index)).scalar_one_or_none()
        if blob is None:
            return
        yield np.frombuffer(blob, dtype="<i8")
        index += 1
