"""The slippage minimizer (PRD §3.4): trail from volatility and liquidity, stop clusters, high-volatility hours."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import HOURLY_CDD
from trdr_tui.backtest.runner import run_engine
from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.clock import SimClock
from trdr_tui.core.types import Side
from trdr_tui.market.importer import load_candle_file
from trdr_tui.trading.slippage import (
    SlippageMinimizer,
    avoid_clusters,
    liquidity_score,
    optimal_trail_distance,
    round_step,
    stop_clusters,
)

HOUR = 3_600_000_000_000


def test_prd_formula() -> None:
    assert optimal_trail_distance(0.01, 0.02, 1.0, 0.02) == pytest.approx(0.02)  # 2 % vol doubles the trail
    assert optimal_trail_distance(0.01, 0.0, 0.0, 0.02) == pytest.approx(0.02)  # illiquid doubles it too
    assert optimal_trail_distance(0.01, 0.0, 3.0, 0.02) == pytest.approx(0.01)  # score is capped at 1


def test_liquidity_score_and_round_numbers() -> None:
    assert liquidity_score(np.array([10.0, 10.0, 5.0, 5.0]), 4) == pytest.approx(5.0 / 7.5)
    assert liquidity_score(np.zeros(4), 4) == 1.0  # unknown volume: no widening
    assert round_step(6_500.0) == 500.0 and round_step(15_000.0) == 5_000.0
    assert stop_clusters(6_520.0, np.array([7_000.0]), np.array([6_100.0])) == [6_500.0, 7_000.0, 7_000.0, 6_100.0]


def test_a_trigger_just_past_a_cluster_is_moved_beyond_it() -> None:
    assert avoid_clusters(6_490.0, [6_500.0], 0.003, 0.005) == pytest.approx(6_500.0 * 0.995)
    assert avoid_clusters(6_510.0, [6_500.0], 0.003, 0.005) == pytest.approx(6_500.0 * 1.005)
    assert avoid_clusters(6_400.0, [6_500.0], 0.003, 0.005) == 6_400.0


def bars(n: int, close: float, volume: float) -> CandleArrays:
    ts = np.arange(n, dtype=np.int64) * HOUR
    c = np.full(n, close)
    c[::2] *= 1.001  # a little volatility
    return CandleArrays(ts=ts, open=c.copy(), high=c * 1.002, low=c * 0.998, close=c, volume=np.full(n, volume))


def test_the_minimizer_widens_in_the_configured_hours_and_clamps() -> None:
    cfg = load_settings(overrides={"slippage": {"enabled": True, "cluster_zone": 0.0}}).slippage
    history = bars(200, 6_800.0, 10.0)
    clock = SimClock(10 * HOUR)
    m = SlippageMinimizer(cfg, lambda n: history[-n:], clock, min_trail=0.002, max_trail=0.10)
    quiet = m.trail(Side.SELL, 0.01, 6_800.0)
    assert quiet > 0.01  # some volatility, full liquidity: a little wider than asked
    clock.advance_to(14 * HOUR)
    assert m.trail(Side.SELL, 0.01, 6_800.0) == pytest.approx(quiet * 1.5)
    assert m.trail(Side.SELL, 0.09, 6_800.0) == pytest.approx(0.10)  # never beyond trailing.max_distance


@pytest.mark.slow
def test_backtest_with_the_minimizer_tunes_every_trailing_order() -> None:
    candles = load_candle_file(HOURLY_CDD)[:2000]
    off, e_off = run_engine(load_settings(), candles, preset="simple-trailing")
    on, e_on = run_engine(load_settings(overrides={"slippage": {"enabled": True}}), candles, preset="simple-trailing")
    trails_off = {o.trail for o in e_off.record.orders}
    trails_on = [o.trail for o in e_on.record.orders]
    assert trails_off == {0.02}  # the preset's fixed trail
    assert len(set(trails_on)) > 10 and all(t is not None and 0.002 <= t <= 0.10 for t in trails_on)
    assert on.fills.size.shape[0] != off.fills.size.shape[0]
