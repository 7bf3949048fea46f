"""Event-id dedup: the last `limits.dedup_ids` event ids of each model, as stable 64-bit hashes.

An event whose `id` was seen for its model among the last `capacity` ids is a duplicate (a Kafka
redelivery, a producer retry, stdin replayed twice): the pipeline drops it before the engine sees
it. Ids are hashed with blake2b (8 bytes, read as a signed 64-bit integer, the store's BIGINT), not
Python's per-process randomised `hash()`, so the set survives restarts. Two different ids colliding
(probability about n²/2⁶⁵, 3e-10 for 100,000 ids) would drop one event; nothing else can go wrong.

Every recorded id takes the model's next sequence number; the set keeps ids with the last
`capacity` numbers. A ring indexed by `seq % capacity` finds the id a new one evicts, so memory is
fixed and each id costs O(1). The store keeps one `seen_ids` row per batch: the hashes it recorded
(consecutive seqs `first_seq..last_seq`, packed little-endian int64), written with the windows and
engine state that counted those events (so after a crash the stored set matches the stored state
exactly), and rows whose ids all left the set are deleted: the table changes by a per-batch delta,
never rewritten whole, and a batch costs one row whatever its size.

>>> seen = SeenIds(capacity=2)
>>> seen.admit([id_hash("a"), id_hash("a"), None, id_hash("b")])
[True, False, True, True]
>>> seen.admit([id_hash("c"), id_hash("a")])  # "c" pushes "a" out (the oldest of the last 2)
[True, True]
>>> first, packed = seen.pending()  # recorded since the start: "a", "b", "c", "a" as seqs 1..4
>>> first, list(unpack_hashes(packed)) == [id_hash(x) for x in "abca"], seen.oldest_kept_seq
(1, True, 3)
>>> sorted(seen) == sorted([id_hash("c"), id_hash("a")])
True
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Iterator, Sequence

_blake2b = hashlib.blake2b


def id_hash(event_id: str) -> int:
    """The id's stable signed 64-bit hash (blake2b, 8 bytes, little-endian).

    >>> id_hash("req-42") == id_hash("req-42") != id_hash("req-43")
    True
    """
    return int.from_bytes(_blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little", signed=True)


def id_hashes(ids: Sequence[str | None]) -> list[int | None]:
    """`id_hash` of each id, None where an event has none."""
    base, from_bytes = _blake2b(digest_size=8), int.from_bytes  # copying a hasher is cheaper than a new one
    out: list[int | None] = []
    append = out.append
    for i in ids:
        if i is None:
            append(None)
            continue
        h = base.copy()
        h.update(i.encode("utf-8", "surrogatepass"))
        append(from_bytes(h.digest(), "little", signed=True))
    return out


def pack_hashes(hashes: array) -> bytes:
    """An array('q') of id hashes as little-endian int64 bytes (the store's `seen_ids.id_hashes`)."""
    if sys.byteorder == "big":
        hashes = array("q", hashes)
        hashes.byteswap()
    return hashes.tobytes()


def unpack_hashes(blob: bytes) -> array:
    """The inverse of `pack_hashes`."""
    hashes = array("q")
    hashes.frombytes(blob)
    if sys.byteorder == "big":
        hashes.byteswap()
    return hashes


class SeenIds:
    """The last `capacity` id hashes recorded for one model, and those recorded since the last `stored()`."""

    def __init__(self, capacity: int, rows: Sequence[tuple[int, bytes]] = ()) -> None:
        """`rows`: stored (first seq, packed hashes) in increasing seq, as `Store.load_seen_ids` returns them."""
        if capacity < 1:
            raise ValueError(f"capacity is {capacity}: must be >= 1")
        self.capacity = capacity
        self._seq: dict[int, int] = {}
        self._ring = array("q", bytes(8 * capacity))  # id hash at seq % capacity
        self.next_seq = 1
        unpacked = [(first, unpack_hashes(blob)) for first, blob in rows]
        if unpacked:
            oldest = unpacked[-1][0] + len(unpacked[-1][1]) - capacity  # as `oldest_kept_seq` was when stored
            for first, hashes in unpacked:
                for seq, h in enumerate(hashes, first):
                    if seq >= oldest:
                        self._put(h, seq)
        self.stored()

    def __len__(self) -> int:
        return len(self._seq)

    def __contains__(self, h: object) -> bool:
        return h in self._seq

    def __iter__(self) -> Iterator[int]:
        return iter(self._seq)

    def _put(self, h: int, seq: int) -> None:
        slot = seq % self.capacity
        old = self._ring[slot]
        if self._seq.get(old) == seq - self.capacity:  # recorded `capacity` ids ago: it leaves the set
            del self._seq[old]
        self._ring[slot] = h
        self._seq[h] = seq
        self.next_seq = seq + 1

    def admit(self, hashes: Sequence[int | None], *, check: bool = True) -> list[bool]:
        """Record the batch's ids; True for each event to keep (no id, or an id not seen), False for a duplicate.

        Ids repeated within the batch count too. `check=False` (`replay --restart`) keeps every event
        and records its id again (as the newest).
        """
        keep = [True] * len(hashes)
        seen, ring, capacity, pending = self._seq, self._ring, self.capacity, self._pending.append
        seq = self.next_seq
        for i, h in enumerate(hashes):
            if h is None:
                continue
            if check and h in seen:
                keep[i] = False
                continue
            slot = seq % capacity  # `_put`, inlined: this loop runs once per event
            old = ring[slot]
            if seen.get(old) == seq - capacity:
                del seen[old]
            ring[slot] = h
            seen[h] = seq
            pending(h)
            seq += 1
        self.next_seq = seq
        return keep

    def pending(self) -> tuple[int, bytes] | None:
        """(first seq, packed hashes) of the ids recorded since the last `stored()` (seqs first, first + 1, ...),
        or None when there are none: one `seen_ids` row."""
        if not self._pending:
            return None
        return self._pending_first, pack_hashes(self._pending)

    @property
    def oldest_kept_seq(self) -> int:
        """Recorded ids with a smaller seq have left the set (the store deletes rows that hold only such)."""
        return self.next_seq - self.capacity

    def stored(self) -> None:
        """The pending ids are in the store."""
        self._pending = array("q")
        self._pending_first = self.next_seq
