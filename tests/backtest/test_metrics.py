"""Statistics checked against values worked out by hand on tiny curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trdr_tui.backtest import metrics as m
from trdr_tui.backtest.results import AgentSignals, FillArrays, RunData, TradeArrays

DAY = m.NS_PER_DAY
HOUR = m.NS_PER_HOUR
T0 = 1_514_764_800 * 1_000_000_000  # 2018-01-01 00:00 UTC, a Monday


def daily_curve() -> tuple[np.ndarray, np.ndarray]:
    ts = T0 + DAY * np.arange(4, dtype=np.int64)
    eq = np.array([110.0, 99.0, 108.9, 130.68])  # daily returns +10 %, -10 %, +10 %, +20 %
    return ts, eq


def trades(pnl: list[float], fees: list[float] | None = None) -> TradeArrays:
    n = len(pnl)
    return TradeArrays(
        entry_ts=T0 + DAY * np.arange(n, dtype=np.int64),
        exit_ts=T0 + DAY * np.arange(n, dtype=np.int64) + 6 * HOUR * (np.arange(n) + 1),
        entry_price=np.full(n, 100.0), exit_price=np.full(n, 100.0), size=np.ones(n),
        pnl=np.array(pnl, dtype=float), fees=np.array(fees or [1.0] * n, dtype=float),
    )


def test_returns_and_drawdown_by_hand() -> None:
    ts, eq = daily_curve()
    assert m.total_return(eq, 100.0) == pytest.approx(0.3068)
    assert m.max_drawdown(eq, 100.0) == pytest.approx(0.1)  # 110 → 99
    # the peak of day 0 is regained on day 3: three days from peak to recovery
    assert m.max_drawdown_duration_days(eq, 100.0, ts) == pytest.approx(3.0)
    # four daily bars span four days
    assert m.annualized_return(eq, 100.0, ts) == pytest.approx(1.3068 ** (365 / 4) - 1)


def test_drawdown_never_recovered_runs_to_the_end() -> None:
    ts = T0 + DAY * np.arange(3, dtype=np.int64)
    eq = np.array([90.0, 95.0, 80.0])
    assert m.max_drawdown(eq, 100.0) == pytest.approx(0.2)
    # peak is the starting point (the day before the first bar): 3 days to the last bar
    assert m.max_drawdown_duration_days(eq, 100.0, ts) == pytest.approx(3.0)


def test_daily_ratios_by_hand() -> None:
    ts, eq = daily_curve()
    _days, deq = m.daily_equity(eq, ts, 100.0)
    daily = m.simple_returns(deq)
    np.testing.assert_allclose(daily, [0.1, -0.1, 0.1, 0.2])
    mean = 0.075
    sd = math.sqrt((0.025**2 + 0.175**2 + 0.025**2 + 0.125**2) / 3)
    assert m.sharpe_ratio(daily) == pytest.approx(mean / sd * math.sqrt(365))
    assert m.downside_deviation(daily) == pytest.approx(math.sqrt(0.01 / 4))
    assert m.sortino_ratio(daily) == pytest.approx(mean / 0.05 * math.sqrt(365))
    # 5 % quantile of [-0.1, 0.1, 0.1, 0.2] by linear interpolation: -0.1 + 0.15 * 0.2
    assert m.value_at_risk(daily) == pytest.approx(-0.07)
    assert m.conditional_var(daily) == pytest.approx(-0.1)


def test_hourly_bars_are_grouped_into_days() -> None:
    ts = T0 + HOUR * np.arange(48, dtype=np.int64)
    eq = np.concatenate([np.linspace(101, 110, 24), np.linspace(109, 121, 24)])
    _, deq = m.daily_equity(eq, ts, 100.0)
    np.testing.assert_allclose(deq, [100.0, 110.0, 121.0])


def test_beta_and_correlation() -> None:
    a = np.array([0.01, -0.02, 0.03, 0.0])
    beta, corr = m.beta_and_correlation(a, 2 * a)
    assert beta == pytest.approx(0.5)
    assert corr == pytest.approx(1.0)
    beta, corr = m.beta_and_correlation(-a, a)
    assert beta == pytest.approx(-1.0) and corr == pytest.approx(-1.0)


def test_undefined_ratios_are_none_not_infinite() -> None:
    flat = np.zeros(5)
    assert m.sharpe_ratio(flat) is None
    assert m.sortino_ratio(np.array([0.01, 0.02])) is None
    assert m.profit_factor(trades([5.0, 3.0])) is None  # no losing trade
    assert m.calmar_ratio(0.2, 0.0) is None
    assert m.win_rate(TradeArrays.empty()) is None


def test_trade_statistics_by_hand() -> None:
    t = trades([10.0, -5.0, 20.0, -5.0])
    assert m.win_rate(t) == 0.5
    assert m.profit_factor(t) == pytest.approx(3.0)
    assert m.expectancy(t) == pytest.approx(5.0)
    s = m.trade_stats(t)
    assert s["count"] == 4
    assert s["avg_return"] == pytest.approx(0.05)
    assert s["avg_winning_return"] == pytest.approx(0.15)
    assert s["avg_losing_return"] == pytest.approx(-0.05)
    assert s["largest_win"] == 20.0 and s["largest_loss"] == -5.0
    assert s["avg_hold_days"] == pytest.approx((6 + 12 + 18 + 24) / 4 / 24)
    assert s["longest_hold_days"] == pytest.approx(1.0)


def test_exposure() -> None:
    assert m.exposure(np.array([0.0, 1.0, 2.0, 0.0])) == 0.5
    assert m.exposure(None) is None


def test_execution_statistics_by_hand() -> None:
    fills = FillArrays(
        ts=np.array([T0, T0 + HOUR], dtype=np.int64), side=np.array([1, -1], dtype=np.int8),
        price=np.array([101.0, 99.0]), size=np.array([1.0, 1.0]), fee=np.array([0.6, 0.6]),
        maker=np.array([False, True]), ref_price=np.array([100.0, 100.0]),
        wait_ns=np.array([2.0 * HOUR, np.nan]),
    )
    t = trades([10.0, -2.0], fees=[1.0, 1.0])
    s = m.execution_stats(fills, t, rejected=3)
    assert s["avg_slippage"] == pytest.approx(0.01)  # paid 1 % worse on both sides
    assert s["total_fees"] == pytest.approx(1.2)
    assert s["maker_fills"] == 1 and s["taker_fills"] == 1
    assert s["rejected_orders"] == 3
    assert s["avg_order_wait_hours"] == pytest.approx(2.0)
    # gross (before fees) 8 + 2 = 10; fees ate 2 of it
    assert s["fees_pct_of_gross_profit"] == pytest.approx(0.2)


def test_agent_accuracy_and_contribution() -> None:
    n = 30
    ts = T0 + HOUR * np.arange(n, dtype=np.int64)
    close = np.linspace(100, 129, n)  # steadily rising
    buyer = np.zeros(n, dtype=np.int8)
    buyer[[2, 3]] = 1
    seller = np.zeros(n, dtype=np.int8)
    seller[[2, 10]] = -1
    sigs = {
        "bull": AgentSignals(buyer, np.where(buyer != 0, 0.8, 0.0)),
        "bear": AgentSignals(seller, np.where(seller != 0, 0.6, 0.0)),
    }
    t = TradeArrays(entry_ts=np.array([ts[4]]), exit_ts=np.array([ts[12]]), entry_price=np.array([104.0]),
                    exit_price=np.array([112.0]), size=np.array([1.0]), pnl=np.array([8.0]),
                    fees=np.array([0.0]))
    out = m.agent_stats(sigs, close, ts, t, horizon_bars=5, lookback_bars=5)
    assert out["bull"]["signal_count"] == 2 and out["bull"]["accuracy"] == 1.0
    assert out["bear"]["accuracy"] == 0.0  # sold into a rising market
    assert out["bull"]["avg_confidence"] == pytest.approx(0.8)
    # entry half (4) goes to the only recent buyer, exit half (4) to the only recent seller
    assert out["bull"]["profit_contribution"] == pytest.approx(4.0)
    assert out["bear"]["profit_contribution"] == pytest.approx(4.0)


def test_time_analysis_months_weekdays_hours() -> None:
    # 2018-01-30 00:00 → 2018-02-02 23:00 hourly; equity grows only at 14:00 UTC bars
    start = T0 + 29 * DAY
    ts = start + HOUR * np.arange(96, dtype=np.int64)
    step = np.where((ts // HOUR) % 24 == 14, 1.01, 1.0)
    eq = 100.0 * np.cumprod(step)
    out = m.time_analysis(eq, ts, 100.0)
    assert out["best_hour"] == 14
    months = out["monthly_returns"]
    assert list(months) == ["2018-01", "2018-02"]
    assert months["2018-01"] == pytest.approx(1.01**2 - 1)
    assert months["2018-02"] == pytest.approx(1.01**2 - 1)
    # every day gains the same, so each weekday present has the same mean
    assert set(out["weekday_mean_return"]) == {"Tuesday", "Wednesday", "Thursday", "Friday"}


def test_rolling_returns() -> None:
    deq = 100.0 * 1.01 ** np.arange(40)
    r = m.rolling_returns(deq, 30)
    assert r.shape[0] == 10
    np.testing.assert_allclose(r, 1.01**30 - 1)


def test_compute_statistics_has_every_prd_section() -> None:
    ts, eq = daily_curve()
    run = RunData(ts=ts, equity=eq, close=np.array([1.0, 2.0, 3.0, 4.0]), initial_capital=100.0,
                  fills=FillArrays.empty(), trades=trades([10.0, -5.0]), rejected_orders=1)
    stats = m.compute_statistics(run, benchmark_equity=eq * 1.5)
    assert set(stats) == {"performance", "risk", "trades", "execution", "agents", "time"}
    perf = stats["performance"]
    for key in ("total_return", "annualized_return", "sharpe", "sortino", "calmar", "max_drawdown",
                "max_drawdown_duration_days", "win_rate", "profit_factor", "expectancy"):
        assert key in perf
    assert set(stats["risk"]) == {"var_95", "cvar_95", "downside_deviation", "beta", "correlation"}
    assert stats["execution"]["rejected_orders"] == 1


def test_misaligned_run_data_is_refused() -> None:
    ts, eq = daily_curve()
    with pytest.raises(ValueError, match="misaligned"):
        RunData(ts=ts, equity=eq[:2], close=eq, initial_capital=100.0, fills=FillArrays.empty(),
                trades=TradeArrays.empty())
