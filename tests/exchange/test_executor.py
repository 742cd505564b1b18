"""CoinbaseExecutor against the fake exchange: idempotent sends under faults, fills once, recovery, reconcile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.exchange.conftest import FAST_RETRY
from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.core.clock import WallClock
from trdr_tui.core.engine_api import ExecutionReport
from trdr_tui.core.types import Liquidity, Order, OrderStatus, OrderType, Side
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor
from trdr_tui.exchange.coinbase_rest import CoinbaseRest
from trdr_tui.exchange.credentials import Credentials
from trdr_tui.store import Store

_seq = iter(range(1, 10_000))


def make_order(side: Side = Side.BUY, otype: OrderType = OrderType.MARKET, size: float = 0.01,
               price: float | None = None) -> Order:
    n = next(_seq)
    return Order(id=f"run-{n}", client_order_id=f"trdr-run-{n}", symbol="BTC-USD", side=side, type=otype,
                 size=size, created_ts=WallClock().now_ns(), price=price,
                 status=OrderStatus.SUBMITTED)


@pytest.fixture
async def executor(rest: CoinbaseRest, fake: FakeExchange, creds: Credentials, store: Store
                   ) -> AsyncIterator[tuple[CoinbaseExecutor, list[ExecutionReport]]]:
    ex = CoinbaseExecutor(rest, symbol="BTC-USD", store=store, run_id="run", user_ws_url=fake.user_ws_url,
                          signer=creds.signer(), retry=FAST_RETRY, poll_interval_s=0.2, recovery_interval_s=3600)
    reports: list[ExecutionReport] = []
    ex.bind(reports.append)
    await ex.start()
    yield ex, reports
    await ex.stop()


def fills_of(reports: list[ExecutionReport]) -> list[str]:
    return [r.fill.id for r in reports if r.fill is not None]


async def test_market_order_fills_once_with_taker_fee(executor, fake: FakeExchange) -> None:  # type: ignore[no-untyped-def]
    ex, reports = executor
    order = make_order(size=0.0123456789)
    await ex.submit(order)
    placed = fake.order_by_client_id(order.client_order_id)
    assert placed is not None and placed.base_size == Decimal("0.01234567")  # floored to base_increment
    assert [r.status for r in reports] == [OrderStatus.SUBMITTED, OrderStatus.FILLED]
    fill = reports[-1].fill
    assert fill is not None and fill.liquidity is Liquidity.TAKER and fill.size == pytest.approx(0.01234567)
    assert fill.fee == pytest.approx(fill.price * fill.size * 0.006, rel=1e-9)
    await asyncio.sleep(0.5)  # user channel and polling run: nothing is reported twice
    assert fills_of(reports) == [fill.id]
    assert fake.create_posts[order.client_order_id] == 1


async def test_lost_response_is_looked_up_not_resent(executor, fake: FakeExchange) -> None:  # type: ignore[no-untyped-def]
    ex, reports = executor
    fake.faults.lose_create_response = 1
    order = make_order()
    await ex.submit(order)
    assert fake.create_posts[order.client_order_id] == 1  # created once, never re-sent
    assert ex.lookups >= 1
    assert reports[0].exchange_order_id == fake.by_client_id[order.client_order_id]
    assert reports[-1].status is OrderStatus.FILLED and len(fills_of(reports)) == 1


@pytest.mark.parametrize("fault", ["rest_5xx", "rest_429_html", "rest_timeout", "rest_reset"])
async def test_create_retried_after_lookup(executor, fake: FakeExchange, fault: str) -> None:  # type: ignore[no-untyped-def]
    ex, reports = executor
    fake.faults.timeout_s = 0.8
    await ex.start()  # product loaded before the fault is armed
    setattr(fake.faults, fault, 1)
    order = make_order()
    await ex.submit(order)
    assert len([o for o in fake.orders.values() if o.client_order_id == order.client_order_id]) == 1
    assert reports[-1].status is OrderStatus.FILLED and len(fills_of(reports)) == 1


@pytest.mark.parametrize("duplicate_reject", [False, True], ids=["existing-order-returned", "duplicate-rejected"])
async def test_duplicate_client_order_id_is_adopted(executor, fake: FakeExchange, duplicate_reject: bool) -> None:  # type: ignore[no-untyped-def]
    """A repeated client_order_id, in both documented answers: the existing order returned (the
    create-order reference), or a DUPLICATE_CLIENT_ORDER_ID failure. Either way it is adopted."""
    ex, reports = executor
    fake.faults.duplicate_reject = duplicate_reject
    order = make_order()
    await ex.submit(order)
    # the same intent again (as after a crash between send and the stored answer)
    ex2_reports: list[ExecutionReport] = []
    ex2 = CoinbaseExecutor(ex.rest, symbol="BTC-USD", retry=FAST_RETRY)
    ex2.bind(ex2_reports.append)
    await ex2.submit(order)
    assert fake.create_posts[order.client_order_id] == 2
    assert len(fake.orders) == 1
    assert not any(r.status is OrderStatus.REJECTED for r in ex2_reports)
    assert ex2_reports[0].exchange_order_id == reports[0].exchange_order_id
    assert fake.fired.get("duplicate_reject", 0) == int(duplicate_reject)


async def test_failed_order_is_kept_and_recovered(executor, fake: FakeExchange, store: Store) -> None:  # type: ignore[no-untyped-def]
    ex, reports = executor
    fake.faults.rest_5xx = 1000
    order = make_order()
    await ex.submit(order)
    assert not fake.orders and reports == []
    row = store.cursor().execute("SELECT state, attempts FROM exchange_outbox WHERE client_order_id = ?",
                                 [order.client_order_id]).fetchone()
    assert row == ("failed", 6)
    fake.faults.rest_5xx = 0
    assert await ex.retry_failed() == 1
    assert len(fake.orders) == 1 and reports[-1].status is OrderStatus.FILLED
    row = store.cursor().execute("SELECT state, exchange_order_id FROM exchange_outbox").fetchone()
    assert row[0] == "accepted" and row[1] == fake.by_client_id[order.client_order_id]


async def test_stop_lets_a_resend_in_flight_finish(executor, fake: FakeExchange, store: Store) -> None:  # type: ignore[no-untyped-def]
    """A clean stop while the recovery loop re-sends an order the exchange has just placed: the answer is
    recorded (outbox `accepted`, the order followed) instead of the send being cancelled half way, which
    left the order resting at the exchange, unfollowed, its outbox row `sending`, its later fill unbooked."""
    ex, reports = executor
    fake.faults.rest_5xx = 1000
    order = make_order(otype=OrderType.LIMIT, price=float(fake.price) * 0.9)
    await ex.submit(order)
    assert not fake.orders and ex.outbox.failed()
    fake.faults.rest_5xx = 0
    fake.faults.stall_create_response, fake.faults.timeout_s = 1, 0.3  # placed, answered 0.3 s later
    ex._wake_recovery.set()
    for _ in range(200):
        if fake.orders:
            break
        await asyncio.sleep(0.01)
    assert len(fake.orders) == 1 and fake.fired.get("stall_create_response") == 1  # its answer on the way
    await ex.stop()
    eid = fake.by_client_id[order.client_order_id]
    row = store.cursor().execute("SELECT state, exchange_order_id FROM exchange_outbox WHERE client_order_id = ?",
                                 [order.client_order_id]).fetchone()
    assert row == ("accepted", eid)
    assert eid in ex._orders and reports[-1].status is OrderStatus.SUBMITTED


async def test_rejections_are_reported(executor, fake: FakeExchange) -> None:  # type: ignore[no-untyped-def]
    ex, reports = executor
    big, tiny = make_order(size=1000.0), make_order(size=0.000001)
    await ex.submit(big)  # far more than the account holds
    assert reports[-1].status is OrderStatus.REJECTED and "INSUFFICIENT_FUND" in reports[-1].reason
    await ex.submit(tiny)  # below base_min_size: refused before sending
    assert reports[-1].status is OrderStatus.REJECTED and "minimum" in reports[-1].reason
    assert fake.create_posts == {big.client_order_id: 1} and not fake.orders


async def test_resting_limit_fills_via_user_channel(executor, fake: FakeExchange) -> None:  # type: ignore[no-untyped-def]
    ex, reports = executor
    ex.poll_interval_s = 3600  # only the user channel may deliver this fill
    for _ in range(100):
        if ex.user_ws is not None and ex.user_ws.healthy:
            break
        await asyncio.sleep(0.02)
    price = float(fake.price)
    order = make_order(otype=OrderType.LIMIT, price=price * 0.99)
    order.metadata["post_only"] = True
    await ex.submit(order)
    assert [r.status for r in reports] == [OrderStatus.SUBMITTED]
    fake.set_price(str(round(price * 0.98, 2)))
    for _ in range(100):
        if reports[-1].status is OrderStatus.FILLED:
            break
        await asyncio.sleep(0.02)
    assert reports[-1].status is OrderStatus.FILLED
    assert reports[-1].fill is not None and reports[-1].fill.liquidity is Liquidity.MAKER
    assert reports[-1].fill.price == pytest.approx(round(price * 0.99, 2), abs=0.011)


async def test_cancel_and_partial_fills(executor, fake: FakeExchange) -> None:  # type: ignore[no-untyped-def]
    ex, reports = executor
    fake.partial_fill_fraction = Decimal("0.25")
    price = float(fake.price)
    order = make_order(otype=OrderType.LIMIT, size=0.04, price=price * 0.99)
    await ex.submit(order)
    fake.set_price(str(round(price * 0.98, 2)))
    await ex.sync_order(reports[0].exchange_order_id or "")
    assert [r.status for r in reports[1:]] == [OrderStatus.PARTIAL]
    await ex.cancel(order)
    assert reports[-1].status is OrderStatus.CANCELLED
    assert fake.orders[reports[0].exchange_order_id or ""].status == "CANCELLED"


async def test_reconcile_reports_what_happened_while_down(fake: FakeExchange, rest: CoinbaseRest,
                                                          store: Store) -> None:
    first: list[ExecutionReport] = []
    ex1 = CoinbaseExecutor(rest, symbol="BTC-USD", store=store, run_id="run", retry=FAST_RETRY)
    ex1.bind(first.append)
    price = float(fake.price)
    resting = make_order(otype=OrderType.LIMIT, price=price * 0.99)
    filled_while_down = make_order(otype=OrderType.LIMIT, price=price * 0.995)
    never_sent = make_order()
    await ex1.submit(resting)
    await ex1.submit(filled_while_down)
    # a fill the store already has must not come back
    store.conn.execute("INSERT INTO fills VALUES ('t-old', ?, ?, 'run', 'BTC-USD', 'BUY', 1, 0, 0, 'MAKER', now())",
                       [resting.id, resting.client_order_id])
    # "crash": then the market moves and one order fills while nobody watches
    fake.set_price(str(round(price * 0.993, 2)))
    ex2 = CoinbaseExecutor(rest, symbol="BTC-USD", store=store, run_id="run", retry=FAST_RETRY)
    got = await ex2.reconcile([resting, filled_while_down, never_sent])
    by_order: dict[str, list[ExecutionReport]] = {}
    for r in got:
        by_order.setdefault(r.order_id, []).append(r)
    assert [r.status for r in by_order[filled_while_down.id]][-1] is OrderStatus.FILLED
    assert sum(1 for r in by_order[filled_while_down.id] if r.fill) == 1
    assert all(r.fill is None for r in by_order.get(resting.id, []))
    assert [r.status for r in by_order[never_sent.id]] == [OrderStatus.CANCELLED]
    assert fake.create_posts.get(never_sent.client_order_id) is None  # reconcile never sends


async def test_a_fill_the_engine_refuses_is_offered_again(executor, fake: FakeExchange) -> None:  # type: ignore[no-untyped-def]
    ex, reports = executor
    refuse = {"on": True}

    def handler(report: ExecutionReport) -> None:
        if report.fill is not None and refuse["on"]:
            raise RuntimeError("ledger busy")
        reports.append(report)

    ex.bind(handler)
    order = make_order()
    with pytest.raises(RuntimeError):
        await ex.submit(order)  # the fill arrives with the create answer and is refused
    eid = fake.by_client_id[order.client_order_id]
    refuse["on"] = False
    await ex.sync_order(eid)
    assert [r.status for r in reports if r.fill] == [OrderStatus.FILLED]
    await ex.sync_order(eid)
    assert len(fills_of(reports)) == 1


def test_outbox_keeps_the_first_request(store: Store) -> None:
    from trdr_tui.store.outbox import Outbox

    order = make_order()
    box = Outbox(store, "run")
    box.put(order, "BTC-USD", {"market_market_ioc": {"base_size": "0.01"}}, 1_000)
    Outbox(store, "run").put(order, "BTC-USD", {"market_market_ioc": {"base_size": "0.02"}}, 2_000)
    rows = store.cursor().execute("SELECT configuration FROM exchange_outbox").fetchall()
    assert len(rows) == 1 and "0.01" in rows[0][0]
    assert Outbox(store, "run").get(order.client_order_id).configuration == {  # type: ignore[union-attr]
        "market_market_ioc": {"base_size": "0.01"}}
