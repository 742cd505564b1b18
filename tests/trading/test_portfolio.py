"""Ledger invariants over random fill sequences (hypothesis), and the accounting rules by example."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trdr_tui.core.errors import InsufficientFunds, StateCorruption
from trdr_tui.core.types import Fill, Liquidity, Side
from trdr_tui.trading.portfolio import Portfolio

FEE = 0.006


def fill(n: int, side: Side, price: float, size: float, fee_rate: float = FEE) -> Fill:
    return Fill(id=f"f{n}", order_id=f"o{n}", client_order_id=f"c{n}", symbol="BTC-USD", side=side, price=price,
                size=size, fee=price * size * fee_rate, liquidity=Liquidity.TAKER, ts=n * 1000)


steps = st.lists(
    st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.floats(0.0, 1.3), st.floats(1.0, 100_000.0),
              st.floats(0.0, 0.01)),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(steps, st.floats(100.0, 1e6))
def test_ledger_invariants_over_random_fills(seq: list[tuple[Side, float, float, float]], cash0: float) -> None:
    pf = Portfolio("BTC-USD", cash0)
    booked: list[Fill] = []
    for n, (side, frac, price, fee_rate) in enumerate(seq):
        # frac > 1 asks for more than the cash (BUY) or the position (SELL)
        size = frac * pf.cash / (price * (1 + fee_rate)) if side is Side.BUY else frac * pf.position
        if size <= 0:
            continue
        f = fill(n, side, price, size, fee_rate)
        before = (pf.cash, pf.position, pf.realized_pnl, pf.fees, len(pf.fills), len(pf.trades))
        try:
            pf.apply_fill(f)
            booked.append(f)
        except InsufficientFunds:
            assert frac > 1.0
            assert (pf.cash, pf.position, pf.realized_pnl, pf.fees, len(pf.fills), len(pf.trades)) == before
        # no negative balances, ever
        assert pf.cash >= 0.0 and pf.position >= 0.0
        # equity change = P&L − fees, at any mark price
        for mark in (price, price * 0.5, price * 2):
            change = pf.equity(mark) - cash0
            pnl = pf.realized_pnl + pf.unrealized_pnl(mark) - pf.fees
            assert math.isclose(change, pnl, rel_tol=1e-9, abs_tol=1e-6 * max(cash0, pf.equity(mark)))
    # every fill appears once, in order; a replay of any of them is refused
    assert [f.id for f in pf.fills] == [f.id for f in booked]
    assert math.isclose(pf.fees, sum(f.fee for f in booked), rel_tol=1e-12, abs_tol=1e-12)
    for f in booked[:3]:
        with pytest.raises(StateCorruption, match="already booked"):
            pf.apply_fill(f)
    # round trips account for all realized P&L and every fee not still carried by open lots
    open_fees = sum(lot.fee for lot in pf.lots)
    assert math.isclose(sum(t.pnl for t in pf.trades), pf.realized_pnl - (pf.fees - open_fees),
                        rel_tol=1e-9, abs_tol=1e-6 * cash0)
    assert math.isclose(sum(lot.size for lot in pf.lots), pf.position, rel_tol=1e-9, abs_tol=1e-12)


def test_round_trip_by_hand() -> None:
    pf = Portfolio("BTC-USD", 10_000.0)
    pf.apply_fill(fill(1, Side.BUY, 100.0, 10.0))  # costs 1000 + 6
    assert pf.cash == pytest.approx(8_994.0)
    assert pf.avg_entry == 100.0
    trade = pf.apply_fill(fill(2, Side.SELL, 110.0, 10.0))  # brings 1100 − 6.6
    assert trade is not None
    assert pf.cash == pytest.approx(10_087.4)
    assert pf.realized_pnl == pytest.approx(100.0)
    assert trade.pnl == pytest.approx(100.0 - 6.0 - 6.6)
    assert trade.fees == pytest.approx(12.6)
    assert (trade.entry_order_id, trade.exit_order_id) == ("o1", "o2")
    assert pf.position == 0.0 and not pf.lots


def test_fifo_partial_exits_make_one_trade_per_exit() -> None:
    pf = Portfolio("BTC-USD", 10_000.0)
    pf.apply_fill(fill(1, Side.BUY, 100.0, 1.0, 0.0))
    pf.apply_fill(fill(2, Side.BUY, 200.0, 1.0, 0.0))
    assert pf.avg_entry == pytest.approx(150.0)
    t = pf.apply_fill(fill(3, Side.SELL, 300.0, 1.5, 0.0))
    assert t is not None and t.entry_price == pytest.approx((100 + 100) / 1.5)
    assert pf.realized_pnl == pytest.approx(300 * 1.5 - 200)
    assert pf.position == pytest.approx(0.5) and pf.avg_entry == pytest.approx(200.0)


def test_bad_fills_are_refused_whole() -> None:
    pf = Portfolio("BTC-USD", 100.0)
    with pytest.raises(InsufficientFunds):
        pf.apply_fill(fill(1, Side.BUY, 100.0, 1.0))  # 100 + 0.6 fee > 100
    with pytest.raises(InsufficientFunds):
        pf.apply_fill(fill(2, Side.SELL, 100.0, 0.1))
    with pytest.raises(StateCorruption):
        pf.apply_fill(Fill(id="x", order_id="o", client_order_id="c", symbol="ETH-USD", side=Side.BUY, price=1.0,
                           size=1.0, fee=0.0, liquidity=Liquidity.TAKER, ts=0))
    assert pf.cash == 100.0 and pf.position == 0.0 and not pf.fills


def test_state_round_trip() -> None:
    pf = Portfolio("BTC-USD", 1_000.0)
    pf.apply_fill(fill(1, Side.BUY, 100.0, 2.0))
    pf.mark(120.0)
    back = Portfolio.from_state(pf.to_state())
    assert back.to_state() == pf.to_state()
    with pytest.raises(StateCorruption):
        back.apply_fill(fill(1, Side.BUY, 100.0, 1.0))
