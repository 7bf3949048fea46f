"""Text drift through the whole engine: document-level token tests stay quiet on a stationary stream
whose tokens are not independent, and flag a same-length vocabulary shift as the anchor going stale."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from careful_monitor.bench import coverage
from careful_monitor.bench.coverage import TEXT_FEATURE, TEXT_WINDOW
from careful_monitor.config import MinEffect
from careful_monitor.contracts import evidence_json
from careful_monitor.engine.column import summarise
from careful_monitor.engine.comparisons.novelty import Novelty
from careful_monitor.engine.comparisons.token_presence import TokenPresence
from careful_monitor.engine.monitor import ModelBatch, ModelMonitor, MonitorSpec
from careful_monitor.engine.profile import ProfileFormatError, ReferenceProfile
from careful_monitor.engine.stats import chi2_homogeneity
from careful_monitor.engine.types import Evidence
from careful_monitor.scenarios import topic_texts

FEATURE, WINDOW = TEXT_FEATURE, TEXT_WINDOW
texts = topic_texts


@pytest.fixture(scope="module")
def text_profiles():
    return coverage.text_profiles()


def _monitor(text_profiles) -> ModelMonitor:
    anchor, synthetic = text_profiles
    spec = MonitorSpec(features={FEATURE: "text"}, window_size=WINDOW, min_effect=MinEffect().model_dump())
    return ModelMonitor("summariser", spec, anchor, synthetic)


def _batch(docs: list[str], start: int) -> ModelBatch:
    return ModelBatch([1_800_000_000.0 + start + i for i in range(len(docs))], ["1"] * len(docs), {FEATURE: docs})


def test_document_level_tests_are_calibrated_where_a_token_chi2_is_not(text_profiles) -> None:
    anchor, _ = text_profiles
    prof = anchor.features[FEATURE]
    rng = np.random.default_rng(7)
    presence, novelty, token_chi2 = [], [], []
    for _ in range(300):
        col = summarise(texts(rng, WINDOW), prof)
        presence.append(TokenPresence().compare(prof, col).p_value)
        novelty.append(Novelty().compare(prof, col).p_value)
        token_chi2.append(chi2_homogeneity(col.counts, prof.counts)[1])
    presence_, novelty_, chi2_ = np.array(presence), np.array(novelty), np.array(token_chi2)
    # tokens repeat within a document, so a chi-square that counts tokens as units rejects nearly
    # every stationary window (measured: 300 of 300 at 0.01): the false alarm the document unit avoids
    assert (chi2_ < 0.01).mean() > 0.9
    # Bonferroni over 201 token rates is conservative: at most 1 % below 0.01 (measured 2 of 300)
    assert (presence_ < 0.01).mean() <= 0.01
    # novelty is one z-test: its p-values are uniform (KS p > 0.01; measured 0.21) and 1 % +- 1.5 % below 0.01
    # (measured 3 of 300)
    assert stats.kstest(novelty_, "uniform").pvalue > 0.01
    assert (novelty_ < 0.01).mean() <= 0.025


def test_stationary_text_stream_of_500_windows_raises_nothing(text_profiles) -> None:
    mon = _monitor(text_profiles)
    rng = np.random.default_rng(2024)
    flagged = alerts = new_flags = 0
    windows = 500
    for chunk in range(windows // 10):
        for o in mon.process(_batch(texts(rng, 10 * WINDOW), chunk * 10 * WINDOW), now=0.0):
            flagged += o.result.flagged
            alerts += len(o.alerts)
            new_flags += any(t.flagged and t.test in ("token_presence", "novelty") for t in o.result.tests)
    assert mon.window_index == windows
    assert alerts == 0
    # BH at 0.01 over the 4 text tests bounds a window's false discovery at 1 %; 2 % leaves room
    # for their dependence (measured: 2 of 500 windows flagged, both by a new text test; no alert)
    assert flagged / windows <= 0.02, f"{flagged} of {windows} windows flagged"
    assert new_flags / windows <= 0.01, f"{new_flags} windows with a new text test flagged"


def test_same_length_vocabulary_shift_makes_the_anchor_stale(text_profiles) -> None:
    mon = _monitor(text_profiles)
    rng = np.random.default_rng(77)
    stable, drifted = 6, 6
    docs = texts(rng, stable * WINDOW) + texts(rng, drifted * WINDOW, other=0.3)  # 30 % from another vocabulary
    outcomes = mon.process(_batch(docs, 0), now=0.0)
    assert len(outcomes) == stable + drifted
    assert not any(o.result.flagged for o in outcomes[:stable])
    # 30 % of documents from a vocabulary half of which is unseen moves the held-out novelty
    # (0.49 of tokens here) by about 0.3 x 0.5 x 0.51 = 0.08 and more (re-ranked words fall out of
    # the top-K too; measured 0.12-0.16, floor 0.02): novelty flags every drifted window, from the first
    assert all(any(t.flagged and t.test == "novelty" for t in o.result.tests) for o in outcomes[stable:])
    # the length law is unchanged, so length_ratio stays quiet throughout
    assert not any(t.flagged and t.test == "length_ratio" for o in outcomes for t in o.result.tests)
    alerts = [a for o in outcomes for a in o.alerts]
    assert [(a.dataset, str(a.state)) for a in alerts] == [("reviews", "anchor_stale")]
    # retire_after = 3 consecutive windows with evidence: the earliest alert is window stable + 2
    assert alerts[0].window == stable + 2
    assert all(o.result.states["reviews-synth"] == "ok" for o in outcomes)  # the faithful set is never blamed


def test_old_text_profiles_are_refused_with_a_re_register_message(text_profiles) -> None:
    import io
    import json

    anchor, _ = text_profiles
    with np.load(io.BytesIO(anchor.to_bytes()), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays["__header__"].tobytes().decode())
    for key in ("doc_freq", "doc_n", "novelty", "novelty_var", "novelty_len"):  # a profile from before issue 15
        header["features"][FEATURE].pop(key)
    arrays.pop(f"f:{FEATURE}:doc_freq")
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    with pytest.raises(ProfileFormatError, match="re-register"):
        ReferenceProfile.from_bytes(buf.getvalue())


def test_a_swapped_vocabulary_is_named_by_token_presence(text_profiles) -> None:
    anchor, _ = text_profiles
    prof = anchor.features[FEATURE]
    rng = np.random.default_rng(3)
    swapped = TokenPresence().compare(prof, summarise(texts(rng, WINDOW, other=1.0), prof))
    # every top token's document rate falls (the most frequent to about a third of its 0.3-0.4);
    # Bonferroni over 201 rates still leaves p far below any BH level, Cohen's h far above its 0.1 floor
    assert swapped is not None and swapped.p_value < 1e-12 and swapped.effect > 0.5, swapped
    # the evidence names the words: the anchor's top tokens vanished from the documents ("-w...")
    assert 1 <= len(swapped.tokens) <= 5 and all(t.startswith("-w") for t in swapped.tokens[:-1]), swapped.tokens
    assert set(swapped.tokens) & {"-" + w for w in prof.tokens[:20]}
    novel = Novelty().compare(prof, summarise(texts(rng, WINDOW, other=0.3), prof))
    assert novel is not None and novel.p_value < 1e-6
    assert len(novel.tokens) == 5 and not {t[1:] for t in novel.tokens} & set(prof.tokens)  # named novel words
    ev = evidence_json(Evidence(FEATURE, "novelty", novel.statistic, novel.p_value, novel.effect, novel.tokens))
    assert ev["tokens"] == list(novel.tokens)
    assert "tokens" not in evidence_json(Evidence(FEATURE, "length_ratio", 1.0, 0.5, 0.0))  # other evidence unchanged
    # the diffuse 30 % mix above is carried by novelty: Bonferroni over the tokens needs one word to move
    # by about 4 standard errors, which a third fewer documents of a 10 % word (z ~ 2.2) does not reach
    mixed = TokenPresence().compare(prof, summarise(texts(rng, WINDOW, other=0.3), prof))
    assert mixed is not None and mixed.p_value > 1e-4


def test_a_stream_drifting_toward_a_low_diversity_generated_set_retires_it_never_the_faithful_one() -> None:
    """Anchor and a faithful set from a bigram model, a low-diversity set from 6 generations of refitting it at
    temperature 0.7; windows of 500 ramp toward it from window 4 (a quarter more each window), 5 seeds.
    The set is retired in every seed by window 8 = the ramp's first full window + retire_after - 1 (measured:
    window 6, at share 0.75, in every seed); the faithful set is never blamed and the anchor never called stale."""
    r = coverage.text_collapse(seeds=5)
    assert r["low_diversity_retired"]["missed"] == 0, r
    assert r["low_diversity_retired"]["max"] <= coverage.CHANGE + 4, r
    assert r["faithful_blamed"] == 0 and r["anchor_stale"] == 0, r
