"""Grid level states: the transition table, legal and illegal steps, and a level's life in a run."""

from __future__ import annotations

import pytest

import trdr_tui.trading.grid as grid_module
from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import StateCorruption
from trdr_tui.engine.assembly import build_engine
from trdr_tui.trading.grid import (
    LEVEL_TRANSITIONS,
    GridPolicy,
    InvalidLevelTransition,
    LevelState,
    LevelTrigger,
    next_level_state,
)

L, T = LevelState, LevelTrigger
LEGAL = {
    (L.IDLE, T.NEAR): L.ARMED,
    (L.ARMED, T.AWAY): L.IDLE,
    (L.ARMED, T.BUY_PLACED): L.TRAILING,
    (L.TRAILING, T.BUY_ENDED_FLAT): L.IDLE,
    (L.TRAILING, T.BUY_ENDED_HOLDING): L.FILLED,
    **{(state, T.BOUGHT): L.FILLED for state in L},
    (L.FILLED, T.SOLD_OUT): L.IDLE,
    (L.FILLED, T.STOPPED_OUT): L.IDLE,
    (L.FILLED, T.DUST_CLEARED): L.IDLE,
}


def test_table_is_exactly_the_documented_graph() -> None:
    assert LEVEL_TRANSITIONS == LEGAL


@pytest.mark.parametrize(("state", "trigger"), sorted(LEGAL))
def test_every_legal_transition_is_applied(state: LevelState, trigger: LevelTrigger) -> None:
    assert next_level_state(state, trigger) is LEGAL[(state, trigger)]


ILLEGAL = sorted((s, t) for s in L for t in T if (s, t) not in LEGAL)


@pytest.mark.parametrize(("state", "trigger"), ILLEGAL)
def test_every_other_transition_raises(state: LevelState, trigger: LevelTrigger) -> None:
    with pytest.raises(InvalidLevelTransition) as err:
        next_level_state(state, trigger, level=3)
    assert (err.value.state, err.value.trigger) == (state, trigger)
    assert isinstance(err.value, StateCorruption)


def test_illegal_transition_says_what_and_where() -> None:
    with pytest.raises(InvalidLevelTransition) as err:
        next_level_state(L.IDLE, T.BUY_PLACED, level=4)
    text = str(err.value)
    assert "idle --buy_placed-->" in text and "grid level 4" in text and "LEVEL_TRANSITIONS" in text
    assert len(ILLEGAL) == len(L) * len(T) - len(LEGAL) > 0


async def test_a_run_moves_levels_only_through_the_table(hourly: CandleArrays,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # a narrower grid than the default so that 1,500 bars walk levels in and out of reach
    engine = build_engine(load_settings(overrides={"grid.swing_fraction": 0.3}), mode="backtest",
                          candles=hourly[:1500])
    policy = engine.policy
    assert isinstance(policy, GridPolicy)
    seen: list[tuple[LevelState, LevelTrigger]] = []

    def spy(state: LevelState, trigger: LevelTrigger, level: int | None = None) -> LevelState:
        seen.append((state, trigger))
        return next_level_state(state, trigger, level)

    monkeypatch.setattr(grid_module, "next_level_state", spy)
    await engine.run()  # an illegal step would raise out of the run
    assert {T.NEAR, T.AWAY, T.BUY_PLACED, T.BOUGHT} <= {t for _, t in seen}
    assert all(key in LEGAL for key in seen)
    levels = policy.state()["grid"]["levels"]  # type: ignore[index]
    assert levels and all(type(d["state"]) is str and d["state"] in {s.value for s in L} for d in levels)
