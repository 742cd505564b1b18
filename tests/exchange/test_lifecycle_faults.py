"""Order-lifecycle faults against the fake exchange: orders and fills listed late, cancels of orders the
exchange does not list (yet), restarts while a request is `sending`, both answers to a repeated
client_order_id. Each test names the fault it switches on and asserts it fired."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from tests.exchange.test_executor import fills_of, make_order
from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.core.engine_api import ExecutionReport
from trdr_tui.core.types import Order, OrderStatus, OrderType
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor
from trdr_tui.exchange.coinbase_rest import CoinbaseRest, RetryPolicy
from trdr_tui.exchange.credentials import Credentials
from trdr_tui.store import Store

LAG_S = 0.6  # the fake's listing lags; the executor's listing window is longer
RETRY = RetryPolicy(initial_s=0.02, cap_s=0.2)  # a cancel's 12 tries span ~2 s, well past the lags


def new_executor(rest: CoinbaseRest, store: Store, *, fake: FakeExchange | None = None,
                 creds: Credentials | None = None, retry: RetryPolicy = RETRY,
                 poll_interval_s: float = 0.1) -> tuple[CoinbaseExecutor, list[ExecutionReport]]:
    ex = CoinbaseExecutor(rest, symbol="BTC-USD", store=store, run_id="run", retry=retry,
                          user_ws_url=fake.user_ws_url if fake is not None else None,
                          signer=creds.signer() if creds is not None else None,
                          poll_interval_s=poll_interval_s, recovery_interval_s=0.2, listing_lag_s=2 * LAG_S)
    reports: list[ExecutionReport] = []
    ex.bind(reports.append)
    return ex, reports


@pytest.fixture
async def executor(rest: CoinbaseRest, store: Store) -> AsyncIterator[tuple[CoinbaseExecutor, list[ExecutionReport]]]:
    ex, reports = new_executor(rest, store)
    await ex.start()
    yield ex, reports
    await ex.stop()


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def final_status(reports: list[ExecutionReport], order: Order) -> OrderStatus | None:
    finals = [r.status for r in reports if r.order_id == order.id and r.status in
              (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED)]
    assert len(finals) <= 1, f"more than one final report: {finals}"
    return finals[0] if finals else None


def outbox_state(store: Store, coid: str) -> str:
    row = store.cursor().execute("SELECT state FROM exchange_outbox WHERE client_order_id = ?", [coid]).fetchone()
    assert row is not None
    return str(row[0])


# -- fills listed late ---------------------------------------------------------------------------


async def test_order_stays_tracked_until_its_fills_are_listed(executor, fake: FakeExchange, store: Store) -> None:  # type: ignore[no-untyped-def]
    """Market buy 0.01 BTC; the order reads FILLED while the first fills calls return an empty list."""
    ex, reports = executor
    fake.faults.fill_listing_lag_s = LAG_S
    order = make_order(size=0.01)
    await ex.submit(order)
    assert fake.orders[fake.by_client_id[order.client_order_id]].status == "FILLED"
    assert fake.fired.get("fill_listing_lag", 0) >= 1
    assert final_status(reports, order) is None  # not FILLED without its fill
    await until(lambda: final_status(reports, order) is not None)
    assert final_status(reports, order) is OrderStatus.FILLED
    fills = [r.fill for r in reports if r.fill is not None]
    assert [f.id for f in fills] == [f.trade_id for f in fake.fills]
    assert sum(f.size for f in fills) == pytest.approx(0.01)
    assert reports[-1].fill is not None  # the fill itself carries FILLED
    assert outbox_state(store, order.client_order_id) == "accepted"


# -- cancels of orders the exchange does not list yet ----------------------------------------------


@pytest.mark.parametrize(("otype", "expected"), [(OrderType.LIMIT, OrderStatus.CANCELLED),
                                                  (OrderType.MARKET, OrderStatus.FILLED)])
async def test_cancel_of_an_order_listed_late_is_resolved(executor, fake: FakeExchange, otype: OrderType,  # type: ignore[no-untyped-def]
                                                          expected: OrderStatus) -> None:
    """The create answer named the order, but get/list/cancel do not know it yet: the cancel retries
    until it is cancelled (a resting limit) or found filled (a market order), and never raises."""
    ex, reports = executor
    fake.faults.visibility_lag_s = LAG_S
    price = float(fake.price)
    order = make_order(otype=otype, price=price * 0.99 if otype is OrderType.LIMIT else None)
    await ex.submit(order)
    assert reports[0].exchange_order_id is not None and final_status(reports, order) is None
    await ex.cancel(order)
    assert fake.fired.get("visibility_lag", 0) >= 1
    assert final_status(reports, order) is expected
    placed = fake.orders[fake.by_client_id[order.client_order_id]]
    assert placed.status == expected.value
    assert len(fills_of(reports)) == (1 if expected is OrderStatus.FILLED else 0)


async def test_cancel_while_the_send_is_in_flight_leaves_no_order_behind(executor, fake: FakeExchange) -> None:  # type: ignore[no-untyped-def]
    """A stop-loss cancels an order whose create request is still on its way (answer not in, order
    not listed): the cancel waits for the send, then cancels at the exchange — no orphan order."""
    ex, reports = executor
    fake.faults.visibility_lag_s = LAG_S
    fake.faults.slow_s = 0.2
    await ex.start()
    order = make_order(otype=OrderType.LIMIT, price=float(fake.price) * 0.99)
    sending = asyncio.create_task(ex.submit(order))
    await until(lambda: order.client_order_id in fake.create_posts)
    await ex.cancel(order)
    await sending
    assert final_status(reports, order) is OrderStatus.CANCELLED
    assert [o.status for o in fake.orders.values()] == ["CANCELLED"]


async def test_cancel_of_an_order_that_never_reached_the_exchange(executor, fake: FakeExchange, store: Store) -> None:  # type: ignore[no-untyped-def]
    """Every send failed (unknown outcome); the cancel looks the order up for the listing window, then
    reports it never placed, and the recovery loop does not send it afterwards."""
    ex, reports = executor
    fake.faults.rest_5xx = 1000
    order = make_order(otype=OrderType.LIMIT, price=float(fake.price) * 0.99)
    await ex.submit(order)
    assert outbox_state(store, order.client_order_id) == "failed" and not fake.orders
    fake.faults.rest_5xx = 0
    await ex.cancel(order)
    assert final_status(reports, order) is OrderStatus.CANCELLED
    assert outbox_state(store, order.client_order_id) == "rejected"
    assert await ex.retry_failed() == 0
    assert not fake.orders


async def test_cancel_never_raises_while_the_exchange_fails(fake: FakeExchange, rest: CoinbaseRest, store: Store) -> None:
    """Every request fails for a while: the cancel gives up after its tries (logged) instead of
    raising into the engine, and the order stays tracked."""
    ex, reports = new_executor(rest, store)
    ex.cancel_attempts = 3
    await ex.start()
    try:
        order = make_order(otype=OrderType.LIMIT, price=float(fake.price) * 0.99)
        await ex.submit(order)
        fake.faults.rest_5xx = 1000
        await ex.cancel(order)
        assert final_status(reports, order) is None
        assert fake.fired["rest_5xx"] >= 3
        fake.faults.rest_5xx = 0
        await ex.cancel(order)
        assert final_status(reports, order) is OrderStatus.CANCELLED
    finally:
        await ex.stop()


# -- the outbox row is accepted before a fill is booked ----------------------------------------------


async def test_outbox_is_accepted_before_any_fill_is_booked(fake: FakeExchange, rest: CoinbaseRest, store: Store,
                                                            creds: Credentials) -> None:
    """The create answer is lost and the retry waits; meanwhile the user channel delivers the fill.
    When the fill reaches the engine the outbox row already says `accepted`, so a crash right after
    booking cannot leave a `sending` row for a filled, booked order."""
    ex, reports = new_executor(rest, store, fake=fake, creds=creds, retry=RetryPolicy(initial_s=0.5, cap_s=0.5),
                               poll_interval_s=3600)
    states: list[str] = []

    def handler(report: ExecutionReport) -> None:
        if report.fill is not None:
            states.append(outbox_state(store, report.client_order_id))
        reports.append(report)

    ex.bind(handler)
    await ex.start()
    try:
        await until(lambda: ex.user_ws is not None and ex.user_ws.healthy)
        fake.faults.lose_create_response = 1
        order = make_order()
        await ex.submit(order)
        await ex.settle()
        assert fake.fired["lose_create_response"] == 1
        assert states == ["accepted"]
        assert final_status(reports, order) is OrderStatus.FILLED and len(fills_of(reports)) == 1
        assert fake.create_posts[order.client_order_id] == 1
    finally:
        await ex.stop()


# -- restarts while a request is `sending` -----------------------------------------------------------


async def crash_while_sending(ex: CoinbaseExecutor, fake: FakeExchange, order: Order) -> None:
    """Submit; the exchange places the order and the answer is lost; kill the submit while it waits to
    look the order up (every request takes `slow_s`, so it cannot have resolved it yet)."""
    fake.faults.lose_create_response = 1
    task = asyncio.create_task(ex.submit(order))
    await until(lambda: fake.fired.get("lose_create_response") == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("duplicate_reject", [False, True], ids=["existing-order-returned", "duplicate-rejected"])
async def test_restart_while_sending_resends_the_same_client_order_id(fake: FakeExchange, rest: CoinbaseRest,
                                                                      store: Store, duplicate_reject: bool) -> None:
    """The exchange lists the order late; the restart must not call it "never reached the exchange":
    it looks again and re-sends the same client_order_id; the exchange answers with the order it has
    (either documented form) and exactly one fill is booked."""
    fake.faults.visibility_lag_s = LAG_S
    fake.faults.duplicate_reject = duplicate_reject
    fake.faults.slow_s = 0.05
    ex1, _ = new_executor(rest, store)
    order = make_order(size=0.01)
    await crash_while_sending(ex1, fake, order)
    assert outbox_state(store, order.client_order_id) == "sending"

    ex2, reports = new_executor(rest, store)
    got = await ex2.reconcile([order])
    assert got == [] and fake.fired["visibility_lag"] >= 1  # not CANCELLED: it may be listed late
    await ex2.start()
    try:
        await until(lambda: final_status(reports, order) is not None)
    finally:
        await ex2.stop()
    assert final_status(reports, order) is OrderStatus.FILLED
    assert fake.create_posts[order.client_order_id] >= 2  # really re-sent, same client_order_id
    assert fake.fired.get("duplicate_reject", 0) == (fake.create_posts[order.client_order_id] - 1
                                                      if duplicate_reject else 0)
    assert len(fake.orders) == 1 and len(fake.fills) == 1
    assert fills_of(reports) == [fake.fills[0].trade_id]
    assert outbox_state(store, order.client_order_id) == "accepted"


async def test_restart_with_an_accepted_order_not_listed_yet_keeps_following_it(
        fake: FakeExchange, rest: CoinbaseRest, store: Store) -> None:
    """The outbox has the exchange's id but the exchange does not list the order yet: it is followed,
    not reported cancelled, and its fill is booked once it is listed."""
    fake.faults.visibility_lag_s = LAG_S
    ex1, first = new_executor(rest, store)
    order = make_order(size=0.01)
    await ex1.submit(order)
    assert first[0].exchange_order_id is not None and final_status(first, order) is None
    ex2, reports = new_executor(rest, store)
    assert await ex2.reconcile([order]) == []
    await ex2.start()
    try:
        await until(lambda: final_status(reports, order) is not None)
    finally:
        await ex2.stop()
    assert final_status(reports, order) is OrderStatus.FILLED
    assert fills_of(reports) == [f.trade_id for f in fake.fills] and fake.create_posts[order.client_order_id] == 1


async def test_partial_fills_listed_late_on_a_cancelled_order(executor, fake: FakeExchange) -> None:  # type: ignore[no-untyped-def]
    """A limit order partly filled, then cancelled, its fill not listed yet: CANCELLED comes only after
    the fill, which is booked."""
    ex, reports = executor
    fake.partial_fill_fraction = Decimal("0.5")
    fake.faults.fill_listing_lag_s = LAG_S
    price = float(fake.price)
    order = make_order(otype=OrderType.LIMIT, size=0.02, price=price * 0.99)
    await ex.submit(order)
    fake.set_price(str(round(price * 0.98, 2)))
    await ex.cancel(order)
    assert final_status(reports, order) is OrderStatus.CANCELLED
    assert fills_of(reports) == [f.trade_id for f in fake.fills] and len(fake.fills) == 1
    first_final = next(i for i, r in enumerate(reports) if r.status is OrderStatus.CANCELLED)
    assert any(r.fill is not None for r in reports[:first_final])
