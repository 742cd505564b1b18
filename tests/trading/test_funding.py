"""Funding changes (PRD §3.3.3): ledger contributions are not P&L, resizing, refusals, a backtest with events."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from tests.conftest import HOURLY_CDD
from trdr_tui.backtest.runner import run_backtest
from trdr_tui.config import load_settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import ConfigError, InsufficientFunds
from trdr_tui.core.types import OrderStatus, Side
from trdr_tui.exchange.fees import FeeSchedule
from trdr_tui.exchange.sim_executor import SimExecutor
from trdr_tui.market.importer import load_candle_file
from trdr_tui.trading.funding import apply_funding, performance_curve
from trdr_tui.trading.orders import OrderManager
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.risk import RiskLimits, RiskManager


class Sized:
    """A policy whose capital per level is a tenth of equity (like the grid's `level_quote`)."""

    def __init__(self) -> None:
        self.quote = 1_000.0

    def resize(self, equity: float) -> None:
        self.quote = equity / 10.0


def manager(cash: float = 10_000.0) -> tuple[OrderManager, Portfolio, RiskManager]:
    clock = SimClock(0)
    pf = Portfolio("BTC-USD", cash)
    risk = RiskManager(RiskLimits.from_settings(load_settings()), pf)
    om = OrderManager(symbol="BTC-USD", clock=clock, bus=EventBus(), portfolio=pf, risk=risk,
                      executor=SimExecutor(clock, FeeSchedule.from_config(load_settings().fees)), run_id="f")
    pf.mark(4_000.0)
    return om, pf, risk


def test_a_deposit_is_cash_and_contribution_never_pnl() -> None:
    pf = Portfolio("BTC-USD", "10000")
    pf.mark(100.0)
    pf.fund("2500.10", 1)
    assert pf.cash_exact == Decimal("12500.10") and pf.contributed_exact == Decimal("2500.10")
    assert pf.realized_exact == 0 and pf.fees_exact == 0
    assert pf.peak_equity == pytest.approx(12_500.10)  # scaled with equity: no new high from a deposit
    restored = Portfolio.from_state(pf.to_state())
    assert restored.contributed_exact == Decimal("2500.10") and restored.flows == [(1, 2500.1)]
    restored.rebuild_from_fills([])  # a rebuild from the fills keeps the contributions
    assert restored.cash_exact == Decimal("12500.10")


def test_a_withdrawal_beyond_free_cash_is_refused_and_changes_nothing() -> None:
    om, pf, _ = manager()
    om.place_limit(Side.BUY, 0.5, 3_000.0)  # holds 1,500 of the 10,000
    with pytest.raises(InsufficientFunds, match=r"free cash is 8,500.00 .*1,500.00 held by open BUY"):
        apply_funding(-9_000.0, orders=om, policy=Sized())
    assert pf.cash == 10_000.0 and pf.contributed_exact == 0 and pf.flows == []
    assert len(om.open) == 1


def test_a_withdrawal_resizes_and_is_not_a_drawdown() -> None:
    om, pf, risk = manager()
    policy = Sized()
    buy = om.place_limit(Side.BUY, 0.5, 3_000.0)
    result = apply_funding(-5_000.0, orders=om, policy=policy)
    assert pf.cash == 5_000.0 and policy.quote == 500.0
    assert buy.status is OrderStatus.CANCELLED and "withdrawal of 5,000.00, re-sized" in buy.history[-1].reason
    assert result.cancelled == 1 and result.equity_after == 5_000.0
    risk.on_mark(1, pf.mark(4_000.0))
    assert not risk.halted and risk.failed_checks(Side.BUY, 0.01, 4_000.0) == []


def test_a_small_deposit_leaves_orders_a_large_one_resizes() -> None:
    om, pf, _ = manager()
    policy = Sized()
    policy.resize(pf.equity(4_000.0))
    buy = om.place_limit(Side.BUY, 0.2, 3_000.0)
    apply_funding(500.0, orders=om, policy=policy)  # +5 % per level: not worth a cancel/replace (PRD: > 10 %)
    assert buy.status is OrderStatus.SUBMITTED
    apply_funding(5_000.0, orders=om, policy=policy)
    assert buy.status is OrderStatus.CANCELLED and policy.quote == pytest.approx(1_550.0)


def test_performance_curve_takes_flows_out() -> None:
    ts = np.arange(4, dtype=np.int64) * 10
    equity = np.array([100.0, 110.0, 165.0, 82.5])  # +10 %, then a deposit of 55 (no gain), then −50 %
    flows = [(20, 55.0)]
    perf = performance_curve(equity, ts, flows, 100.0)
    assert perf.tolist() == pytest.approx([100.0, 110.0, 110.0, 55.0])
    assert performance_curve(equity, ts, [], 100.0) is equity


def test_a_zero_funding_amount_is_refused() -> None:
    with pytest.raises(ConfigError, match="amount"):
        load_settings(overrides={"funding": {"events": [{"at": "2018-01-01", "amount": 0.0}]}})


@pytest.mark.slow
def test_backtest_with_a_deposit_reports_trading_return_only() -> None:
    bars = load_candle_file(HOURLY_CDD)[:3000]  # 2017-07-01 … 2017-11-02
    plain = run_backtest(load_settings(), bars, monte_carlo_paths=0).results
    funded = run_backtest(load_settings(overrides={"funding": {"events": [
        {"at": "2017-08-15T00:00:00Z", "amount": 10_000.0},
        {"at": "2017-09-01T00:00:00Z", "amount": -1_000_000.0}]}}), bars, monte_carlo_paths=0).results
    f = funded["funding"]
    assert [a["amount"] for a in f["applied"]] == [10_000.0]
    assert f["refused"][0]["amount"] == -1_000_000.0
    assert "refused: free cash is" in f["refused"][0]["reason"]
    assert f["net_contributions"] == 10_000.0
    # the deposit doubles the account but not the return: the funded run's return is its trading only
    assert f["account_equity"] > 19_000.0
    assert funded["total_return"] < 0.5
    assert funded["max_drawdown"] < 0.5
    assert funded["fills"] != plain["fills"] or funded["fees_paid"] != plain["fees_paid"]  # bigger levels
