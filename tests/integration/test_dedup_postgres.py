"""The seen event ids (issue 11, dedup by id) on PostgreSQL: per-batch delta, upsert of a re-recorded id."""

from __future__ import annotations

import pytest

from careful_monitor.runtime.dedup import SeenIds, id_hash
from careful_monitor.store import Store

pytestmark = pytest.mark.integration


def test_seen_ids_are_written_as_a_delta_and_read_back(fresh_postgres_url: str) -> None:
    h = [id_hash(f"e{i}") for i in range(8)]
    with Store(fresh_postgres_url) as store:
        seen = SeenIds(3)
        for batch, check in (([h[0], h[1], h[2]], True), ([h[3], h[1]], True), ([h[1], h[4]], False),
                             ([h[5], h[6]], True)):
            seen.admit(batch, check=check)
            delta = (seen.pending(), seen.oldest_kept_seq)
            store.commit_batch(seen_ids={"m": delta})
            store.commit_batch(seen_ids={"m": delta})  # a retry after a commit whose answer was lost
            seen.stored()
        # seqs: h0 1, h1 2, h2 3 | h3 4 | h1 5, h4 6 | h5 7, h6 8: the last 3 are h4, h5, h6, and the
        # rows of seqs 1-3 and 4 went when their ids all fell out
        assert [first for first, _ in store.load_seen_ids("m", 10)] == [5, 7]
        assert [first for first, _ in store.load_seen_ids("m", 2)] == [7] and store.load_seen_ids("x", 3) == []
        assert sorted(SeenIds(3, store.load_seen_ids("m", 3))) == sorted(seen) == sorted(h[4:7])
        store.commit_batch(seen_ids={"m": (None, 7)})  # rows whose ids are all below seq 7 go
        assert [first for first, _ in store.load_seen_ids("m", 10)] == [7]
