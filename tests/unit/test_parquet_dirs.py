"""Issue 14: a card's `data:` may be a folder of (hive-partitioned, nested) Parquet files, read as one dataset."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from careful_monitor.config import load_config
from careful_monitor.engine.profile import ReferenceProfile
from careful_monitor.errors import ManifestError
from careful_monitor.registry import register
from careful_monitor.sources.datasets import DataFormatError, file_sha256, folder_sha256, read_dataset
from careful_monitor.store import Store

DATES = ["2026-01-01", "2026-01-02"]
COUNTRIES = ["DE", "FR", "IT"]


def _part(rng: np.random.Generator, n: int, *, with_score: bool) -> dict[str, list]:
    p = rng.uniform(0.05, 0.95, n)
    cols = {"inputs.amount": rng.lognormal(3, 1, n).tolist(), "inputs.items": rng.integers(1, 9, n).tolist(),
            "inputs.channel": rng.choice(["web", "app", "mail"], n).tolist(),
            "outputs.probs.billing": p.tolist(), "outputs.probs.tech": (1 - p).tolist()}
    if with_score:  # a column the other files lack: null there, as in the single file
        cols["outputs.score"] = p.tolist()
    return cols


@pytest.fixture
def partitioned(tmp_path: Path) -> tuple[Path, Path]:
    """The same rows twice: `sales/` (date=/inputs.country=/part-N.parquet) and `sales.parquet` (one file).

    The single file holds the folder's rows in the order of the sorted file paths, with `inputs.country`
    as a column and without `date` (a partition key that is not a feature is layout, not data).
    """
    rng = np.random.default_rng(11)
    folder = tmp_path / "sales"
    rows: list[dict[str, list]] = []
    for date in DATES:
        for country in COUNTRIES:
            for part in range(2):
                cols = _part(rng, 250 + 50 * part, with_score=date == DATES[0])
                path = folder / f"date={date}" / f"inputs.country={country}" / f"part-{part}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(pa.table(cols), path)
                n = len(cols["inputs.amount"])
                rows.append({**cols, "outputs.score": cols.get("outputs.score", [None] * n),
                             "inputs.country": [country] * n})
    (folder / "_SUCCESS").write_bytes(b"")  # markers Spark and Hive leave are skipped
    (folder / f"date={DATES[0]}" / ".part-0.parquet.crc").write_bytes(b"crc")
    merged = {k: [v for r in rows for v in r[k]] for k in rows[0]}
    pq.write_table(pa.table(merged), tmp_path / "sales.parquet")
    return folder, tmp_path / "sales.parquet"


def _card(tmp: Path, name: str, data: str) -> Path:
    card = tmp / f"{name}.yaml"
    card.write_text(f"name: {name}\nrole: real\ndata: {data}\n")
    return card


def _registered(tmp: Path, *cards: Path, signatures: bool = False):
    """Register `cards`; `signatures` also stores the isolation row hashes (`isolation.at_registration`)."""
    cfg = load_config(None, environ={}, overrides={"store": {"url": f"sqlite:///{tmp / 'careful.db'}"},
                                                   "isolation": {"at_registration": signatures}})
    with Store(cfg.store_url) as store:
        out = [register(cfg, store, c, by="test") for c in cards]
        return out, {r.record.name: store.get_dataset(r.record.name) for r in out}


def test_a_partitioned_folder_profiles_like_the_same_rows_in_one_file(tmp_path: Path, partitioned) -> None:
    folder, single = partitioned
    _, records = _registered(tmp_path, _card(tmp_path, "sales-dir", "sales"),
                             _card(tmp_path, "sales-file", "sales.parquet"))
    d, f = (ReferenceProfile.from_bytes(records[n].profile) for n in ("sales-dir", "sales-file"))
    assert d.n_rows == f.n_rows == 2 * 3 * (250 + 300)
    # `inputs.country` (a partition key named like a feature) is a feature; `date` is not
    assert set(d.features) == set(f.features) == {"inputs.amount", "inputs.items", "inputs.channel",
                                                  "inputs.country", "outputs.probs", "outputs.score"}
    # the whole profile (bins, sketches, moments, frequencies, joint sample) is the same, name aside
    np.testing.assert_equal(dataclasses.asdict(dataclasses.replace(d, name="x")),
                            dataclasses.asdict(dataclasses.replace(f, name="x")))
    assert records["sales-dir"].card["data"] == "sales"  # shown relative to the card's folder
    assert records["sales-dir"].data_sha256 == folder_sha256(folder) != file_sha256(single)


def test_a_folder_registers_with_isolation_signatures(tmp_path: Path, partitioned) -> None:
    """The default registration also streams the folder's rows into the isolation signatures."""
    _, records = _registered(tmp_path, _card(tmp_path, "sales-dir", "sales"), signatures=True)
    assert records["sales-dir"].n_rows == 2 * 3 * (250 + 300)


def test_folder_digest_is_over_sorted_relative_paths_and_contents(tmp_path: Path, partitioned) -> None:
    folder, _ = partitioned
    h = hashlib.sha256()  # the documented definition, computed by hand
    for path in sorted(folder.rglob("*.parquet"), key=lambda p: p.relative_to(folder).as_posix()):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    assert file_sha256(folder) == folder_sha256(folder) == h.hexdigest()
    before = folder_sha256(folder)
    (folder / "_SUCCESS").write_bytes(b"changed")  # skipped files do not count
    assert folder_sha256(folder) == before
    part = folder / f"date={DATES[1]}" / "inputs.country=IT" / "part-1.parquet"
    part.rename(part.with_name("part-2.parquet"))  # a renamed file does
    assert folder_sha256(folder) != before


def test_a_folder_cannot_reach_outside_and_holds_only_parquet(tmp_path: Path, partitioned) -> None:
    folder, single = partitioned
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    pq.write_table(pq.read_table(single), outside / "more.parquet")
    link = folder / "date=2026-01-03" / "part-0.parquet"
    link.parent.mkdir()
    link.symlink_to(outside / "more.parquet")
    with pytest.raises(DataFormatError, match="symbolic link leading outside the dataset folder"):
        read_dataset(folder)
    with pytest.raises(ManifestError, match="data"):  # registration says so in one line
        _registered(tmp_path, _card(tmp_path, "sales-dir", "sales"))
    link.unlink()
    (link.parent / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DataFormatError, match="symbolic link to a folder"):
        read_dataset(folder)
    (link.parent / "linked").unlink()
    (folder / "notes.txt").write_text("hello")
    with pytest.raises(DataFormatError, match=r"notes\.txt in the dataset folder is not a Parquet file"):
        read_dataset(folder)
    # the card's own confinement holds for folders as for files
    (outside / "sub").mkdir()
    with pytest.raises(ManifestError, match="outside the card's folder"):
        _registered(tmp_path, _card(tmp_path, "escape", f"../{outside.name}/sub"))


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty" / "date=2026-01-01").mkdir(parents=True)
    with pytest.raises(DataFormatError, match="no Parquet files"):
        read_dataset(tmp_path / "empty")
