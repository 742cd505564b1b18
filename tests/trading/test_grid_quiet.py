"""The grid's backtest speed-ups change no result: the trend gate computed once over the whole history
equals the per-bar update, and skipping the bars where nothing the grid reads has changed (the quiet
band) places exactly the orders that running every bar places."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.events import CandleEvent
from trdr_tui.engine.assembly import build_engine
from trdr_tui.trading.grid import GridPolicy, trend_gate


def test_trend_gate_over_the_history_equals_the_per_bar_update(hourly: CandleArrays) -> None:
    bars = hourly[:4000]
    settings = load_settings(overrides={"grid.trend_band": 0.01})
    c = settings.grid
    fast, slow, down = trend_gate(bars.close, fast_bars=c.trend_fast_bars, slow_bars=c.trend_slow_bars,
                                  band=c.trend_band)
    streaming = GridPolicy(settings)
    gate = []
    for i, close in enumerate(bars.close.tolist()):
        streaming._ema_step(close)
        assert math.isclose(streaming.ema_fast, fast[i], rel_tol=1e-9)
        assert math.isclose(streaming.ema_slow, slow[i], rel_tol=1e-9)
        gate.append(streaming.downtrend(close))
    assert gate == down.tolist()
    assert 0 < int(down.sum()) < len(bars) - c.trend_slow_bars  # both states occur
    assert not down[: c.trend_slow_bars - 1].any()  # no verdict before the slow EMA has its bars


@pytest.mark.parametrize("overrides", [{}, {"grid.trailing_exits": True}, {"grid.regime_exit": True,
                                                                            "grid.stop_buffer": 0.02},
                                       {"grid.seed_inventory": True, "grid.regime_exit": True,
                                        "grid.rebuild_in_uptrend": True, "risk.max_concurrent_trades": 4,
                                        "risk.max_position": 0.5, "sizing.base_fraction": 0.08}])
async def test_skipping_quiet_bars_places_the_same_orders_as_every_bar(
        hourly: CandleArrays, overrides: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    bars = hourly[:6000]
    fast = build_engine(load_settings(overrides=overrides), mode="backtest", candles=bars)
    passes = {"n": 0}
    work = GridPolicy._work_levels

    def counted(self: GridPolicy, *args: object) -> None:
        passes["n"] += 1
        work(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(GridPolicy, "_work_levels", counted)
    await fast.run()
    quiet_passes = passes["n"]
    monkeypatch.setattr(GridPolicy, "_settle", lambda *_a: None)  # never quiet: the full pass on every bar
    passes["n"] = 0
    every = build_engine(load_settings(overrides=overrides), mode="backtest", candles=bars)
    await every.run()

    a, b = fast.record, every.record
    assert len(a.fills) > 10
    assert [(o.created_ts, o.side, o.type, o.size, o.price, o.status) for o in a.orders] == \
        [(o.created_ts, o.side, o.type, o.size, o.price, o.status) for o in b.orders]
    assert [(f.ts, f.price, f.size, f.fee) for f in a.fills] == [(f.ts, f.price, f.size, f.fee) for f in b.fills]
    assert a.final_equity == b.final_equity
    assert quiet_passes < passes["n"] / 2  # most bars were skipped


async def test_streaming_trend_gate_follows_the_bars_of_a_pause(hourly: CandleArrays) -> None:
    bars = hourly[:900]
    settings = load_settings()
    engine = build_engine(settings, mode="backtest", candles=bars, speed=1e9)  # streams bar by bar
    policy = engine.policy
    assert isinstance(policy, GridPolicy)
    seen = {"n": 0}

    def pause_for_a_while(_topic: str, _ev: CandleEvent) -> None:
        seen["n"] += 1
        if seen["n"] == 300:
            engine.pause()
        elif seen["n"] == 420:
            engine.resume()

    engine.bus.subscribe(engine.candle_topic, pause_for_a_while)
    await engine.run()
    assert engine.decision_arrays is None
    c = settings.grid
    fast, slow, _ = trend_gate(bars.close, fast_bars=c.trend_fast_bars, slow_bars=c.trend_slow_bars,
                               band=c.trend_band)
    assert policy.bars_seen == len(bars)  # the 119 paused bars are in the EMAs too
    assert policy.ema_fast == pytest.approx(float(fast[-1]), rel=1e-9)
    assert policy.ema_slow == pytest.approx(float(slow[-1]), rel=1e-9)
    assert np.isfinite(slow).all()
