"""Baselines and Monte Carlo, checked on hand-made price paths and known distributions."""

from __future__ import annotations

import numpy as np
import pytest

from trdr_tui.backtest.baselines import buy_and_hold, fixed_grid
from trdr_tui.backtest.montecarlo import monte_carlo
from trdr_tui.core.arrays import CandleArrays

HOUR = 3_600_000_000_000


def bars(o: list[float], h: list[float], lo: list[float], c: list[float]) -> CandleArrays:
    n = len(o)
    return CandleArrays(HOUR * np.arange(n, dtype=np.int64), np.array(o, float), np.array(h, float),
                        np.array(lo, float), np.array(c, float), np.ones(n))


def test_buy_and_hold_pays_the_taker_fee_once() -> None:
    c = bars([100, 100, 100], [100, 130, 130], [100, 100, 100], [100, 120, 150])
    r = buy_and_hold(c, 1000.0, taker_fee=0.006)
    units = 1000.0 / (100 * 1.006)
    np.testing.assert_allclose(r.equity, units * np.array([100, 120, 150]))
    assert r.fees_paid == pytest.approx(units * 100 * 0.006)
    assert r.fills == 1


def test_fixed_grid_round_trip_by_hand() -> None:
    # two cells of 10 % around 100: edges 90.909…, 100, 110. The lower cell waits to buy at 90.909,
    # the upper cell holds coin bought at 100 (taker) waiting to sell at 110.
    lo_edge = 100 / 1.1
    c = bars(
        [100, 100, 95, 105],
        [100, 100, 111, 106],
        [100, 90, 95, 104],
        [100, 95, 105, 105],
    )
    r = fixed_grid(c, 1000.0, spacing=0.1, levels=2, maker_fee=0.004, taker_fee=0.006)
    q_up = 500 / (100 * 1.006)
    q_lo = 500 / (lo_edge * 1.004)
    # bar 1 falls to 90: the lower cell buys at its edge (maker)
    cash1 = 1000 - q_up * 100 * 1.006 - q_lo * lo_edge * 1.004
    assert r.equity[1] == pytest.approx(cash1 + (q_up + q_lo) * 95)
    # bar 2 rises from 95 to 111: the lower cell sells at 100, the upper one at 110
    cash2 = cash1 + q_lo * 100 * 0.996 + q_up * 110 * 0.996
    assert r.equity[2] == pytest.approx(cash2)
    assert r.fills == 4 and r.round_trips == 2
    assert r.equity[3] == pytest.approx(cash2)  # flat: nothing left to sell, no buy edge reached


def test_fixed_grid_idle_when_price_leaves_the_range() -> None:
    c = bars([100, 200, 300], [100, 300, 400], [100, 200, 300], [100, 250, 350])
    r = fixed_grid(c, 1000.0, spacing=0.01, levels=4, maker_fee=0.0, taker_fee=0.0)
    # every holding cell sold on the way up; the cash stays put afterwards
    assert r.equity[1] == pytest.approx(r.equity[2])
    assert r.round_trips == 2


def test_fixed_grid_on_real_data_conserves_value_without_fees(hourly: CandleArrays) -> None:
    c = hourly[:2000]
    r = fixed_grid(c, 10_000.0, spacing=0.015, levels=10, maker_fee=0.0, taker_fee=0.0)
    assert r.equity.shape == (2000,)
    assert np.all(np.isfinite(r.equity)) and np.all(r.equity > 0)
    assert r.fills > 10


def test_monte_carlo_is_seeded_and_matches_known_cases() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(0.002, 0.02, 300)
    a = monte_carlo(r, paths=2000, seed=7)
    b = monte_carlo(r, paths=2000, seed=7)
    assert a == b
    assert a is not None and a.paths == 2000 and a.trades_per_path == 300
    assert a.ci95_low < a.median_return < a.ci95_high
    assert 0.0 <= a.probability_of_loss <= 1.0
    # only winning trades: never a loss, never a drawdown
    w = monte_carlo(np.array([0.01, 0.02]), paths=500, seed=1)
    assert w is not None and w.probability_of_loss == 0.0 and w.expected_max_drawdown == 0.0
    # one constant trade return: every path compounds to the same number
    k = monte_carlo(np.array([0.01]), paths=100, trades_per_path=50, seed=1)
    assert k is not None and k.median_return == pytest.approx(1.01**50 - 1)
    # a single losing trade each time: drawdown equals the loss
    d = monte_carlo(np.array([-0.1]), paths=10, trades_per_path=3, seed=1)
    assert d is not None and d.expected_max_drawdown == pytest.approx(1 - 0.9**3)
    assert d.probability_of_loss == 1.0


def test_monte_carlo_blocks_give_the_same_answer_as_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    import trdr_tui.backtest.montecarlo as mc

    r = np.random.default_rng(3).normal(0.0, 0.03, 100)
    one = mc.monte_carlo(r, paths=1000, seed=5)
    monkeypatch.setattr(mc, "_BLOCK_CELLS", 100 * 250)  # four blocks of 250 paths
    many = mc.monte_carlo(r, paths=1000, seed=5)
    assert one is not None and many is not None
    # the stream of draws is the same; only the blocking differs
    assert many.median_return == pytest.approx(one.median_return)
    assert many.expected_max_drawdown == pytest.approx(one.expected_max_drawdown)


def test_monte_carlo_without_trades_and_bad_input() -> None:
    assert monte_carlo(np.zeros(0)) is None
    with pytest.raises(ValueError, match="finite"):
        monte_carlo(np.array([0.1, np.nan]))


def test_runner_equity_matches_the_engine_curve(hourly: CandleArrays) -> None:
    from trdr_tui.backtest.runner import run_engine
    from trdr_tui.config import load_settings

    run, engine = run_engine(load_settings(), hourly[:6000], preset="simple-trailing")
    curve = engine.record.equity_curve()
    assert len(run.fills) > 50
    np.testing.assert_array_equal(run.equity, curve.equity)
    assert run.position is not None
    np.testing.assert_array_equal(run.position, curve.position)
    assert run.equity[-1] == engine.record.final_equity


def naive_grid(c: CandleArrays, capital: float, spacing: float, levels: int, maker: float, taker: float) -> np.ndarray:
    """The fixed grid, written the slow obvious way: every cell checked at every path segment of every bar."""
    p0 = float(c.close[0])
    edges = [p0 * (1 + spacing) ** (k - levels / 2) for k in range(levels + 1)]
    budget = capital / levels
    hold = [edges[j] >= p0 for j in range(levels)]
    qty = [budget / (p0 * (1 + taker)) if hold[j] else budget / (edges[j] * (1 + maker)) for j in range(levels)]
    cash = capital - sum(qty[j] * p0 * (1 + taker) for j in range(levels) if hold[j])
    coin = sum(qty[j] for j in range(levels) if hold[j])
    out = []
    prev = float(c.open[0])
    for i in range(len(c)):
        o, h, lo, cl = float(c.open[i]), float(c.high[i]), float(c.low[i]), float(c.close[i])
        path = [prev, o, h, lo, cl] if (h - o) <= (o - lo) else [prev, o, lo, h, cl]
        for seg in range(4):
            a, b = path[seg], path[seg + 1]
            for j in range(levels):
                if b < a and not hold[j] and b <= edges[j] < a:
                    px = b if seg == 0 else edges[j]
                    cash -= qty[j] * px * (1 + maker)
                    coin += qty[j]
                    hold[j] = True
                elif b > a and hold[j] and a < edges[j + 1] <= b:
                    px = b if seg == 0 else edges[j + 1]
                    cash += qty[j] * px * (1 - maker)
                    coin -= qty[j]
                    hold[j] = False
        out.append(cash + coin * cl)
        prev = cl
    return np.array(out)


def test_fixed_grid_matches_a_naive_implementation_on_real_bars(hourly: CandleArrays) -> None:
    c = hourly[5000:8000]
    fast = fixed_grid(c, 10_000.0, spacing=0.01, levels=12, maker_fee=0.004, taker_fee=0.006)
    np.testing.assert_allclose(fast.equity, naive_grid(c, 10_000.0, 0.01, 12, 0.004, 0.006), rtol=1e-12)
    assert fast.round_trips > 20
