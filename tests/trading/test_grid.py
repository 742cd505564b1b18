"""Grid spacing from swings, levels, the initial entry rule, level life cycle and checkpoint state."""

from __future__ import annotations

import numpy as np
import pytest

from trdr_tui.agents.orchestrator import Orchestrator
from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.events import GridSnapshot
from trdr_tui.core.types import Action, Decision, OrderType, Side
from trdr_tui.engine.assembly import build_engine
from trdr_tui.trading.grid import GridPolicy, grid_prices, swing_pivots, swing_spacing


def test_swing_pivots_alternate_and_keep_the_extreme() -> None:
    # zig-zag: up to 110, down to 95, up to 120, down to 100
    path = [100, 105, 110, 104, 99, 95, 101, 108, 120, 112, 106, 100, 103, 107, 111]
    high = np.array(path, dtype=float) + 0.5
    low = np.array(path, dtype=float) - 0.5
    assert swing_pivots(high, low, lookback=2) == [110.5, 94.5, 120.5, 99.5]


def test_spacing_is_30_percent_of_the_average_swing_clamped() -> None:
    path = np.array([100, 105, 110, 104, 99, 95, 101, 108, 120, 112, 106, 100, 103, 107, 111], dtype=float)
    piv = np.array([110.5, 94.5, 120.5, 99.5])
    expected = 0.3 * float(np.mean(np.abs(np.diff(piv)) / piv[:-1]))
    got = swing_spacing(path + 0.5, path - 0.5, lookback=2, fraction=0.3, min_spacing=0.005, max_spacing=0.1,
                        default=0.015)
    assert got == pytest.approx(expected)
    # clamped
    assert swing_spacing(path + 0.5, path - 0.5, lookback=2, fraction=0.3, min_spacing=0.005, max_spacing=0.02,
                         default=0.015) == 0.02
    # too little history: the configured spacing
    assert swing_spacing(path[:5], path[:5], lookback=5, fraction=0.3, min_spacing=0.005, max_spacing=0.05,
                         default=0.015) == 0.015


def test_grid_prices_around_the_center() -> None:
    assert grid_prices(100.0, 0.01, 4) == pytest.approx([98.0, 99.0, 100.0, 101.0, 102.0])


async def test_the_grid_is_built_on_the_first_bar_and_its_state_round_trips(hourly: CandleArrays) -> None:
    bars = hourly[:400]
    engine = build_engine(load_settings(), mode="backtest", candles=bars, decisions=NoDecisions())
    policy = engine.policy
    assert isinstance(policy, GridPolicy)
    grids: list[GridSnapshot] = []
    engine.bus.subscribe("grid.*", lambda _t, e: grids.append(e))
    await engine.run()
    built = grids[0]
    assert built.center == float(bars.close[0]) and built.ts == int(bars.ts[0]) + 3_600_000_000_000
    assert len(built.levels) == 7 and policy.floor <= built.spacing <= 0.05
    assert [lv.price for lv in built.levels] == pytest.approx(grid_prices(built.center, built.spacing, 6))
    stock = engine.record.orders[0]  # the cells from the center up are stocked by one market BUY
    assert stock.metadata["grid_leg"] == "stock" and stock.type is OrderType.MARKET and stock.side is Side.BUY
    first = next(o for o in engine.record.orders if o.metadata.get("grid_leg") == "level")
    # then a post-only BUY resting on a BUY level of the grid in force
    assert first.metadata["post_only"] is True
    assert first.price is not None
    assert any(abs(first.price - lv.price) <= 0.01 and lv.price < g.center for g in grids for lv in g.levels)
    state = policy.state()
    restored = GridPolicy(load_settings())
    restored.bind(policy.ctx)
    restored.restore(state)
    assert restored.state() == state


class NoDecisions:
    """A DecisionSource with no batch path that says HOLD, or one TRAIL_BUY at bar `buy_at`."""

    def __init__(self, buy_at: int | None = None, confidence: float = 0.0) -> None:
        self.i = -1
        self.buy_at = buy_at
        self.confidence = confidence

    async def on_candle(self, candle: object) -> Decision | None:
        self.i += 1
        if self.i == self.buy_at:
            return Decision(ts=0, action=Action.TRAIL_BUY, confidence=self.confidence, trail_distance=0.03)
        return Decision(ts=0, action=Action.HOLD, confidence=0.5, trail_distance=0.015)

    def weights(self) -> dict[str, float]:
        return {}

    def set_weight(self, agent_id: str, weight: float) -> None:
        raise KeyError(agent_id)


def test_zero_min_confidence_is_used_by_the_grid_and_the_orchestrator_alike(hourly: CandleArrays) -> None:
    # 0.0 is a value the config allows: it must not turn into a default anywhere on the way
    settings = load_settings(overrides={"agents.min_confidence": 0.0})
    engine = build_engine(settings, mode="backtest", candles=hourly[:50])
    policy, orchestrator = engine.policy, engine.decisions
    assert isinstance(policy, GridPolicy) and isinstance(orchestrator, Orchestrator)
    assert policy.min_confidence == orchestrator.config.min_confidence == 0.0


async def test_a_batch_backtest_builds_grid_snapshots_only_for_someone_who_sees_them(
        hourly: CandleArrays, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a listener (and with precomputed decisions, which never read the book) a backtest builds
    no grid snapshot; the orders are the same either way."""
    bars = hourly[:600]
    settings = load_settings()
    quiet = build_engine(settings, mode="backtest", candles=bars)
    heard = build_engine(settings, mode="backtest", candles=bars)
    grids: list[GridSnapshot] = []
    heard.bus.subscribe("grid.*", lambda _t, e: grids.append(e))
    built = 0
    snapshot = GridPolicy.snapshot

    def counting(self: GridPolicy, ts: int, price: float) -> GridSnapshot:
        nonlocal built
        built += 1
        return snapshot(self, ts, price)

    monkeypatch.setattr(GridPolicy, "snapshot", counting)
    await quiet.run()
    assert built == 0 and quiet.book.grid() is None and not quiet.grid_wanted()
    await heard.run()
    assert built == len(grids) > 0 and heard.book.grid() is grids[-1]
    assert [(o.side, o.type, o.size, o.price) for o in quiet.record.orders] == \
        [(o.side, o.type, o.size, o.price) for o in heard.record.orders]
