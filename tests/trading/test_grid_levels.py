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
    # a narrower grid than the default (the fee floor without its cost multiple) so that 1,500 bars walk levels in and out of reach
    engine = build_engine(load_settings(overrides={"grid.swing_fraction": 0.3, "grid.cost_multiple": 1.0}),
                          mode="backtest", candles=hourly[:1500])
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


async def test_a_levels_pnl_is_its_own_round_trips_not_the_ledgers_fifo(hourly: CandleArrays,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # In these 3,000 bars (a narrow grid: the fee floor without its cost multiple) a lower level's take-profit fills while a higher level's older lot is still
    # held: the ledger (FIFO) closes the older lot, the grid pane must book the sale on the level it closes.
    # Unstocked, so every lot comes from a level's own BUY (a stocked level's share is priced by the stock order).
    engine = build_engine(load_settings(overrides={"grid.swing_fraction": 0.3, "grid.seed_inventory": False,
                                                         "grid.cost_multiple": 1.0}),
                          mode="backtest", candles=hourly[:3000])
    policy = engine.policy
    assert isinstance(policy, GridPolicy)
    builds: list[int] = []
    build = GridPolicy.build

    def spy(self: GridPolicy, close: float, ts: int) -> None:
        builds.append(ts)
        build(self, close, ts)

    monkeypatch.setattr(GridPolicy, "build", spy)
    await engine.run()
    fifo: dict[int, float] = {}
    trades = {t.exit_order_id: t for t in engine.portfolio.trades}
    checked = 0
    for lv in policy.levels:
        if lv.lot > 0:
            continue
        mine = [o for o in engine.orders.orders.values()
                if o.metadata.get("grid_level") == lv.index and o.created_ts >= builds[-1] and o.filled_size > 0]
        sold = sum(o.filled_size * o.avg_fill_price for o in mine if o.metadata.get("grid_leg") == "exit")
        bought = sum(o.filled_size * o.avg_fill_price for o in mine if o.metadata.get("grid_leg") == "level")
        expected = sold - bought - sum(o.fees for o in mine)
        assert lv.pnl == pytest.approx(expected, abs=1e-9)
        fifo[lv.index] = sum(trades[o.id].pnl for o in mine if o.id in trades)
        checked += bool(mine)
    assert checked and any(abs(fifo[k] - policy.levels[k].pnl) > 1.0 for k in fifo)  # the case is in the data


async def test_the_snapshot_shows_where_take_profits_rest(hourly: CandleArrays) -> None:
    engine = build_engine(load_settings(overrides={"grid.swing_fraction": 0.3, "grid.cost_multiple": 1.0}), mode="backtest",
                          candles=hourly[:3000])
    policy = engine.policy
    assert isinstance(policy, GridPolicy)
    await engine.run()
    held = [lv for lv in policy.levels if lv.exit_order is not None]
    assert held  # the run ends holding a lot whose take-profit rests one level up
    shown = policy.snapshot(engine.clock.now_ns(), float(hourly.close[2999])).levels
    for lv in held:
        above = policy.levels[lv.index + 1]
        assert above.state is LevelState.IDLE and above.order is None
        row = shown[lv.index + 1]
        assert (row.side.value, row.state, row.trigger) == ("SELL", "exit", lv.exit_order.price)
    untouched = [row for k, row in enumerate(shown) if k - 1 not in {lv.index for lv in held}]
    assert all(row.state != "exit" for row in untouched)
