"""The retirement policy: per (model, dataset) hysteresis from evidence to recommendation.

States: `ok -> watch -> retire_recommended` for a synthetic set, `ok -> watch -> anchor_stale` for
the anchor. A window is evidence for a dataset when it has a flagged anchor test and its drift is
attributed to that synthetic set (or, when no synthetic set explains it, to the anchor).
`watch` after `watch_after` consecutive evidence windows (or a streaming detector firing);
the recommendation when the consecutive count, counting the window that entered `watch`, reaches
`retire_after`; back to `ok` after `clear_after` consecutive windows without evidence.
`retired` comes from the dataset's lifecycle, not from evidence (`set_retired`): a retired dataset
takes no evidence and raises no alert until it is reactivated, when it starts again at `ok`.

>>> p = Policy(["synth"], "real", watch_after=1, retire_after=3, clear_after=2)
>>> [str(t.to_state) for w in range(3) for t in p.step(w, {"synth"})]
['watch', 'retire_recommended']
>>> [str(t.to_state) for w in range(3, 5) for t in p.step(w, set())]
['ok']
>>> q = Policy(["synth"], "real"); q.restore(p.state()); q.states == p.states
True
>>> p.set_retired({"synth"}), [t for w in range(5, 9) for t in p.step(w, {"synth"})], str(p.state_of("synth"))
(['synth'], [], 'retired')
>>> p.set_retired(set()), str(p.state_of("synth"))
(['synth'], 'ok')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from careful_monitor.engine.types import PolicyState

OK, WATCH, RETIRE, STALE = PolicyState.OK, PolicyState.WATCH, PolicyState.RETIRE_RECOMMENDED, PolicyState.ANCHOR_STALE
RETIRED = PolicyState.RETIRED


@dataclass(frozen=True, slots=True)
class Transition:
    dataset: str
    from_state: PolicyState
    to_state: PolicyState
    window: int
    since_window: int | None

    @property
    def alerting(self) -> bool:
        return self.to_state.alerting


@dataclass
class DatasetState:
    state: PolicyState = OK
    evidence_run: int = 0
    clear_run: int = 0
    since_window: int | None = None


@dataclass
class Policy:
    synthetic: list[str]
    anchor: str
    watch_after: int = 1
    retire_after: int = 3
    clear_after: int = 10
    states: dict[str, DatasetState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in [*self.synthetic, self.anchor]:
            self.states.setdefault(name, DatasetState())

    def _top(self, name: str) -> PolicyState:
        return STALE if name == self.anchor else RETIRE

    def state_of(self, name: str) -> PolicyState:
        return self.states[name].state

    def state(self) -> dict[str, dict[str, Any]]:
        """Every dataset's hysteresis counters as plain data."""
        return {name: asdict(st) for name, st in self.states.items()}

    def restore(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        """Resume from `state()`; datasets no longer in the mix are dropped, new ones start at ok."""
        for name, st in state.items():
            if name in self.states:
                self.states[name] = DatasetState(PolicyState(st["state"]), int(st["evidence_run"]),
                                                 int(st["clear_run"]), st["since_window"])

    def set_retired(self, retired: set[str]) -> list[str]:
        """Apply the registry's lifecycle: these datasets are `retired`, others leave `retired` for `ok`.

        Returns the datasets whose state changed. Counters restart, so a reactivated set needs fresh evidence.
        """
        changed = []
        for name, st in self.states.items():
            if (name in retired) != (st.state == RETIRED):
                self.states[name] = DatasetState(RETIRED if name in retired else OK)
                changed.append(name)
        return changed

    def step(self, window: int, evidence: set[str]) -> list[Transition]:
        """Advance every dataset by one closed window; return the transitions it caused."""
        out = []
        for name, st in self.states.items():
            before = st.state
            if before == RETIRED:
                continue
            if name in evidence:
                st.evidence_run += 1
                st.clear_run = 0
                if st.state == OK and st.evidence_run >= self.watch_after:
                    st.state, st.since_window = WATCH, window
                    out.append(Transition(name, before, WATCH, window, window))
                    before = WATCH
                if st.state == WATCH and st.evidence_run >= self.retire_after:
                    st.state = self._top(name)
                    out.append(Transition(name, before, st.state, window, st.since_window))
            else:
                st.evidence_run = 0
                st.clear_run += 1
                if st.state != OK and st.clear_run >= self.clear_after:
                    st.state, st.since_window = OK, None
                    out.append(Transition(name, before, OK, window, None))
        return out

    def detector_watch(self, window: int, datasets: list[str]) -> list[Transition]:
        """A streaming detector fired: put these datasets (in `ok`) on `watch` early."""
        out = []
        for name in datasets:
            st = self.states[name]
            if st.state == OK:  # never a retired one
                st.state, st.since_window, st.clear_run = WATCH, window, 0
                out.append(Transition(name, OK, WATCH, window, window))
        return out
