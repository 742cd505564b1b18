"""ARMED trailing orders and the public restore API: sequence, restore_open, adopt, drop, and the
ledger's restore / rebuild from fills. A restart puts the book back through these calls only."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.engine_api import ExecutionReport
from trdr_tui.core.errors import StateCorruption
from trdr_tui.core.events import OrderEvent
from trdr_tui.core.fsm import InvalidTransition
from trdr_tui.core.types import Fill, Liquidity, Order, OrderStatus, OrderTransition, OrderType, Side, Trade
from trdr_tui.exchange.fees import FeeSchedule
from trdr_tui.exchange.sim_executor import SimExecutor
from trdr_tui.trading.orders import OrderManager, TrailingSnapshot
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.risk import RiskLimits, RiskManager

S = OrderStatus


class RecordingRepo:
    """The order manager's storage calls, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, OrderStatus | None]] = []

    def insert_order(self, order: Order) -> None:
        self.calls.append(("insert_order", order.id, order.status))

    def update_order(self, order: Order) -> None:
        self.calls.append(("update_order", order.id, order.status))

    def insert_transition(self, order: Order, seq: int, transition: OrderTransition) -> None:
        self.calls.append(("transition", order.id, transition.to_status))

    def insert_fill(self, fill: Fill, trade: Trade | None = None) -> None:
        self.calls.append(("fill", fill.order_id, None))
        if trade is not None:
            self.calls.append(("trade", trade.exit_order_id, None))


def manager(run_id: str = "r", cash: float = 10_000.0, repo: RecordingRepo | None = None
            ) -> tuple[OrderManager, SimExecutor, Portfolio, EventBus]:
    clock = SimClock(1_000)
    pf = Portfolio("BTC-USD", cash)
    ex = SimExecutor(clock, FeeSchedule.flat(0.006))
    ex.last_price = 100.0
    bus = EventBus()
    om = OrderManager(symbol="BTC-USD", clock=clock, bus=bus, portfolio=pf, risk=RiskManager(RiskLimits.none(), pf),
                      executor=ex, run_id=run_id, repo=repo)
    return om, ex, pf, bus


def checkpointed(om: OrderManager) -> list[tuple[Order, TrailingSnapshot | None]]:
    """The book as a checkpoint holds it (JSON and back), as `restore_engine` reads it."""
    items: list[dict[str, Any]] = msgspec.json.decode(msgspec.json.encode(om.open_state()))
    return [(msgspec.convert(item["order"], Order),
             msgspec.convert(item["trailing"], TrailingSnapshot) if "trailing" in item else None)
            for item in items]


def fill(n: int, side: Side, price: float, size: float, fee: float = 0.5) -> Fill:
    return Fill(id=f"f{n}", order_id=f"o{n}", client_order_id=f"c{n}", symbol="BTC-USD", side=side, price=price,
                size=size, fee=fee, liquidity=Liquidity.TAKER, ts=n * 1_000)


# -- ARMED ---------------------------------------------------------------------------------------


def test_a_trailing_order_is_armed_then_released_with_its_fired_intent_stored_first() -> None:
    repo = RecordingRepo()
    om, _, pf, _ = manager(repo=repo)
    order = om.place_trailing(Side.BUY, quote=1_000.0, trail=0.02, price=100.0)
    assert order.status is S.ARMED and order.id in om.open and om.trailing_state(order) is not None
    repo.calls.clear()
    om.on_price(103.0)  # above the 102 trigger: fires
    assert order.status is S.FILLED and om.trailing_state(order) is None
    assert [(t.from_status, t.to_status, t.reason) for t in order.history[:2]] == [
        (S.PENDING, S.ARMED, "armed"), (S.ARMED, S.SUBMITTED, "fired")]
    # write-ahead: the fired order (SUBMITTED, its price and size fixed) is stored before any report
    assert repo.calls[:2] == [("transition", order.id, S.SUBMITTED), ("update_order", order.id, S.SUBMITTED)]
    assert order.metadata["trigger"] == pytest.approx(102.0) and pf.position > 0.0


def test_cancelling_an_armed_order_never_asks_the_executor() -> None:
    om, ex, _, _ = manager()
    order = om.place_trailing(Side.BUY, size=1.0, trail=0.02, price=100.0)
    om.cancel(order, "user")
    assert order.status is S.CANCELLED and not om.trailing and not om.open and not ex.resting
    assert order.history[-1].from_status is S.ARMED


# -- sequence, restore_open ----------------------------------------------------------------------


def test_restore_sequence_never_moves_backwards() -> None:
    om, _, _, _ = manager()
    assert om.sequence == 0
    om.restore_sequence(7)
    om.restore_sequence(3)
    assert om.sequence == 7
    assert om.place_market(Side.BUY, 1.0, price=100.0).id == "r-8"
    assert om.sequence == 8


def test_a_restored_book_is_the_book_that_was_checkpointed() -> None:
    before, ex1, _, _ = manager()
    armed = before.place_trailing(Side.BUY, size=1.0, trail=0.02, price=100.0, expires_ns=10**15)
    before.place_trailing(Side.BUY, quote=500.0, trail=0.05, price=100.0)
    resting = before.place_limit(Side.BUY, 1.0, 90.0)
    before.on_price(99.0)  # the anchors move down: the snapshot is not the arming price
    after, ex2, _, _ = manager()
    after.restore_sequence(before.sequence)
    for order, snapshot in checkpointed(before):
        after.restore_open(order, snapshot)
    assert msgspec.json.encode(after.open_state()) == msgspec.json.encode(before.open_state())
    assert after.expiring  # the restored expiry is checked
    assert after.orders[resting.id].status is S.SUBMITTED and after.trailing_state(after.orders[resting.id]) is None
    # both books fire alike on the same prices, and number new orders alike
    for om in (before, after):
        om.on_prices((99.5, 101.0))
    assert [(o.id, o.status, o.price) for o in after.orders.values()] == \
        [(o.id, o.status, o.price) for o in before.orders.values()]
    assert after.orders[armed.id].status is S.FILLED
    assert after.place_market(Side.BUY, 0.1, price=100.0).id == before.place_market(Side.BUY, 0.1, price=100.0).id
    assert ex2.resting.keys() == set() and resting.id in ex1.resting  # restored orders are not re-sent


def test_restore_open_refuses_what_was_not_an_open_book() -> None:
    src, _, _, _ = manager()
    armed = src.place_trailing(Side.BUY, size=1.0, trail=0.02, price=100.0)
    limit = src.place_limit(Side.BUY, 1.0, 90.0)
    (a, snap), (lim, _) = checkpointed(src)
    om, _, _, _ = manager()
    with pytest.raises(StateCorruption, match="without a trailing snapshot"):
        om.restore_open(a, None)
    with pytest.raises(StateCorruption, match="with a trailing snapshot"):
        om.restore_open(lim, snap)
    src.cancel(armed)
    with pytest.raises(StateCorruption, match="only open orders"):
        om.restore_open(armed, snap)
    om.restore_open(a, snap)
    with pytest.raises(StateCorruption, match="already tracked"):
        om.restore_open(a, snap)
    assert [st.order.id for st in om.trailing] == [a.id] and list(om.open) == [a.id]
    assert limit.id not in om.orders


# -- adopt, drop ---------------------------------------------------------------------------------


def test_adopt_replaces_a_stale_copy_and_its_trailing_state() -> None:
    src, _, _, _ = manager()
    src.place_trailing(Side.BUY, size=1.0, trail=0.02, price=100.0)
    om, _, _, _ = manager()
    for order, snapshot in checkpointed(src):
        om.restore_open(order, snapshot)
    (stale, _), = checkpointed(src)
    fired = msgspec.structs.replace(stale, status=S.SUBMITTED, price=102.0)  # as the store has it since
    om.adopt(fired)
    assert om.orders[fired.id] is fired and om.open[fired.id] is fired and not om.trailing
    closed = msgspec.structs.replace(fired, status=S.CANCELLED)
    om.adopt(closed)
    assert om.orders[fired.id] is closed and not om.open


def test_an_adopted_order_takes_its_executor_reports() -> None:
    om, _, _, _ = manager()
    found = Order(id="r-5", client_order_id="trdr-r-5", symbol="BTC-USD", side=Side.BUY, type=OrderType.LIMIT,
                  size=1.0, price=90.0, status=S.SUBMITTED, created_ts=0,
                  history=[OrderTransition(0, S.PENDING, S.SUBMITTED, "sent")])
    om.adopt(found)
    assert om.open == {"r-5": found}
    om.on_report(ExecutionReport(ts=2_000, order_id="r-5", client_order_id="trdr-r-5", status=S.CANCELLED,
                                 reason="gone"))
    assert found.status is S.CANCELLED and not om.open


def test_drop_goes_through_the_state_machine_and_is_stored_and_published() -> None:
    repo = RecordingRepo()
    om, _, _, bus = manager(repo=repo)
    order = om.place_trailing(Side.BUY, size=1.0, trail=0.02, price=100.0)
    got: list[OrderEvent] = []
    bus.subscribe(f"order.{order.id}", lambda _t, e: got.append(e))
    repo.calls.clear()
    with pytest.raises(InvalidTransition, match="ARMED -> FILLED"):
        om.drop(order.id, S.FILLED, "no")
    assert order.status is S.ARMED and order.id in om.open and om.trailing_state(order) is not None
    assert om.drop(order.id, S.CANCELLED, "re-armed after restart") is order
    assert order.status is S.CANCELLED and not om.open and not om.trailing
    assert [e.transition.to_status for e in got] == [S.CANCELLED]
    assert repo.calls == [("transition", order.id, S.CANCELLED), ("update_order", order.id, S.CANCELLED)]
    with pytest.raises(StateCorruption, match="not tracked"):
        om.drop("r-99", S.CANCELLED, "x")


# -- the ledger ----------------------------------------------------------------------------------


def test_rebuild_from_fills_is_the_ledger_those_fills_make() -> None:
    fills = [fill(1, Side.BUY, 100.0, 2.0), fill(2, Side.BUY, 110.0, 1.0), fill(3, Side.SELL, 120.0, 2.5)]
    fresh = Portfolio("BTC-USD", 1_000.0)
    for f in fills:
        fresh.apply_fill(f)
    pf = Portfolio("BTC-USD", 1_000.0)
    pf.apply_fill(fill(9, Side.BUY, 50.0, 1.0))  # something else was booked before
    pf.mark(200.0)
    pf.rebuild_from_fills(fills)
    assert pf.to_state() == fresh.to_state() and pf.trades == fresh.trades and pf.fills == fills
    with pytest.raises(StateCorruption, match="already booked"):
        pf.apply_fill(fills[0])


def test_restore_is_in_place_and_keeps_the_booked_fill_ids() -> None:
    src = Portfolio("BTC-USD", 1_000.0)
    src.apply_fill(fill(1, Side.BUY, 100.0, 2.0))
    src.mark(105.0)
    state = msgspec.json.decode(msgspec.json.encode(src.to_state()))
    pf = Portfolio("BTC-USD", 1_000.0)
    held = pf
    pf.restore(state)
    assert held is pf and pf.to_state() == src.to_state() and pf.fills == [] and pf.trades == []
    with pytest.raises(StateCorruption, match="already booked"):
        pf.apply_fill(fill(1, Side.BUY, 100.0, 2.0))
    with pytest.raises(StateCorruption, match="ETH-USD"):
        Portfolio("ETH-USD", 1_000.0).restore(state)


@pytest.mark.parametrize("at_exchange", [False, True])
def test_a_fill_the_exchange_made_is_booked_beyond_the_cash(at_exchange: bool) -> None:
    """A live market BUY sized from the ledger's cash can fill higher than the price it was sized at (the
    market moved while the request was on its way): the exchange made that fill, the money moved, so it
    is booked. Dropped as the simulator's refusal (E002, REJECTED), it was a fill the ledger never had — a
    kill campaign under load lost one such fill. The cash the ledger lacked is booked as a contribution
    from the account (cash never goes negative); a simulated fill beyond the cash is still refused."""
    om, _, pf, _ = manager(cash=1_000.0)
    seen: list[tuple[str, str]] = []
    om.overdraft_listeners.append(lambda o, f, od: seen.append((o.id, od.fill_id)))
    order = Order(id="r-7", client_order_id="trdr-r-7", symbol="BTC-USD", side=Side.BUY, type=OrderType.MARKET,
                  size=10.0, status=S.SUBMITTED, created_ts=0, history=[OrderTransition(0, S.PENDING, S.SUBMITTED, "sent")])
    om.adopt(order)
    dear = Fill(id="x1", order_id="r-7", client_order_id="trdr-r-7", symbol="BTC-USD", side=Side.BUY, price=101.0,
                size=10.0, fee=6.06, liquidity=Liquidity.TAKER, ts=2_000)
    om.on_report(ExecutionReport(ts=2_000, order_id="r-7", client_order_id="trdr-r-7", status=S.FILLED, fill=dear,
                                 exchange_order_id="ex-7" if at_exchange else None, at_exchange=at_exchange))
    if at_exchange:
        assert order.status is S.FILLED and pf.position == 10.0
        assert pf.cash_exact == 0 and pf.contributed_exact == Decimal("16.06")
        assert [(o.side, o.quote, o.value) for o in pf.overdrafts] == [(Side.BUY, Decimal("16.06"), Decimal("16.06"))]
        assert seen == [("r-7", "x1")] and pf.contributions() == [(2_000, 16.06)]
        assert pf.equity(101.0) - pf.initial_cash - float(pf.contributed_exact) == pytest.approx(-6.06)
        rebuilt = Portfolio("BTC-USD", 1_000.0)
        rebuilt.rebuild_from_fills(pf.fills)  # a restart books it again from the store
        assert rebuilt.to_state() == pf.to_state()
    else:
        assert order.status is S.REJECTED and pf.position == 0.0 and pf.cash == 1_000.0 and not seen


@pytest.mark.parametrize("at_exchange", [False, True])
def test_a_sell_the_exchange_made_beyond_the_position_is_booked(at_exchange: bool) -> None:
    """The SELL side of the same rule. A Coinbase spot account cannot sell coins it does not hold, so a
    SELL fill larger than the ledger's position means the account held coins the ledger did not know
    (a BUY listed late, or coins of the user's beside the run). Refused (E002), the order went REJECTED
    and the proceeds of a real sale never reached the ledger. Booked: the excess enters as coins
    contributed by the account at the fill price (no gross P&L on it, the position ends at zero, never
    below), the round trip closes, the operator hears of it, and a rebuild from the store agrees."""
    om, _, pf, _ = manager(cash=1_000.0)
    seen: list[tuple[str, str]] = []
    om.overdraft_listeners.append(lambda o, f, od: seen.append((o.id, od.fill_id)))
    pf.apply_fill(Fill(id="b1", order_id="r-1", client_order_id="trdr-r-1", symbol="BTC-USD", side=Side.BUY,
                       price=100.0, size=2.0, fee=1.2, liquidity=Liquidity.TAKER, ts=1_000))
    order = Order(id="r-8", client_order_id="trdr-r-8", symbol="BTC-USD", side=Side.SELL, type=OrderType.MARKET,
                  size=3.0, status=S.SUBMITTED, created_ts=0, history=[OrderTransition(0, S.PENDING, S.SUBMITTED, "sent")])
    om.adopt(order)
    sale = Fill(id="s1", order_id="r-8", client_order_id="trdr-r-8", symbol="BTC-USD", side=Side.SELL, price=110.0,
                size=3.0, fee=1.98, liquidity=Liquidity.TAKER, ts=3_000)
    om.on_report(ExecutionReport(ts=3_000, order_id="r-8", client_order_id="trdr-r-8", status=S.FILLED, fill=sale,
                                 exchange_order_id="ex-8" if at_exchange else None, at_exchange=at_exchange))
    if not at_exchange:
        assert order.status is S.REJECTED and pf.position == 2.0 and not seen
        return
    assert order.status is S.FILLED and pf.position_exact == 0 and pf.lots == []
    assert pf.cash_exact == Decimal("1000") - Decimal("201.2") + Decimal("330") - Decimal("1.98")
    assert pf.contributed_exact == Decimal("110.0") and pf.realized_exact == Decimal("20.0")  # 2 × (110 − 100)
    [od] = pf.overdrafts
    assert (od.side, od.base, od.value, od.order_id) == (Side.SELL, Decimal("1.0"), Decimal("110.0"), "r-8")
    assert seen == [("r-8", "s1")]
    [trade] = pf.trades
    assert trade.size == 3.0 and trade.pnl == pytest.approx(20.0 - 1.2 - 1.98)
    # equity − initial − contributions = realized + unrealized − fees, exactly
    assert pf.equity_exact(Decimal(110)) - pf.initial_exact - pf.contributed_exact == \
        pf.realized_exact + pf.unrealized_exact(Decimal(110)) - pf.fees_exact
    rebuilt = Portfolio("BTC-USD", 1_000.0)
    rebuilt.rebuild_from_fills(pf.fills)
    assert rebuilt.to_state() == pf.to_state()
    restored = Portfolio.from_state(msgspec.json.decode(msgspec.json.encode(pf.to_state())))
    assert restored.to_state() == pf.to_state() and len(restored.overdrafts) == 1


def test_coin_transfers_survive_a_checkpoint_and_a_rebuild_from_fills() -> None:
    """Coins sent in and out are contributions in kind (valued at the mark, not P&L): a checkpoint keeps
    them, and a ledger rebuilt from the stored fills books them again between the fills by time."""
    pf = Portfolio("BTC-USD", 1_000.0)
    pf.apply_fill(Fill(id="b1", order_id="r-1", client_order_id="trdr-r-1", symbol="BTC-USD", side=Side.BUY,
                       price=100.0, size=2.0, fee=1.2, liquidity=Liquidity.TAKER, ts=1_000))
    assert pf.transfer(Decimal("1.5"), Decimal("110"), 2_000) == Decimal("1.5")
    pf.apply_fill(Fill(id="s1", order_id="r-2", client_order_id="trdr-r-2", symbol="BTC-USD", side=Side.SELL,
                       price=120.0, size=1.0, fee=0.72, liquidity=Liquidity.TAKER, ts=3_000))
    assert pf.transfer(Decimal("-5"), Decimal("130"), 4_000) == Decimal("-2.5")  # at most the position leaves
    assert pf.position_exact == 0 and pf.contributed_exact == Decimal("165") - Decimal("325")
    assert pf.equity_exact(Decimal(130)) - pf.initial_exact - pf.contributed_exact == \
        pf.realized_exact + pf.unrealized_exact(Decimal(130)) - pf.fees_exact
    assert pf.contributions() == [(2_000, 165.0), (4_000, -325.0)]
    state = msgspec.json.decode(msgspec.json.encode(pf.to_state()))
    rebuilt = Portfolio.from_state(state)
    rebuilt.rebuild_from_fills(pf.fills)
    assert rebuilt.to_state() == pf.to_state()
