"""Operator events from the exchange side (core/opevents.py) against the fake exchange: REST retries,
rejected keys (a clock skew mid-run), exchange rejections classified instead of retried blindly, and
product rules re-read when the exchange changes an increment. Real REST client, executor and bus."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.exchange.conftest import FAST_RETRY
from tests.exchange.test_executor import make_order
from tests.exchange.test_lifecycle_faults import until
from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import WallClock
from trdr_tui.core.engine_api import ExecutionReport
from trdr_tui.core.events import LogEvent
from trdr_tui.core.logs import EventLog, LogFiles
from trdr_tui.core.opevents import OperatorEvents
from trdr_tui.core.types import OrderStatus, OrderType, Side
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor, failure_kind
from trdr_tui.exchange.coinbase_rest import AuthFailed, CoinbaseRest
from trdr_tui.exchange.credentials import Credentials
from trdr_tui.store import Store


class Seen:
    """The `log.*` events published on a bus."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[LogEvent] = []
        bus.subscribe("log.*", lambda _topic, ev: self.events.append(ev))

    def of(self, key: str) -> list[LogEvent]:
        return [e for e in self.events if str(e.fields.get("event", "")).startswith(key)]


def bound(window_s: float = 60.0) -> tuple[OperatorEvents, EventBus, Seen]:
    events = OperatorEvents(window_s=window_s)
    bus = EventBus()
    seen = Seen(bus)
    events.bind(bus, WallClock())
    return events, bus, seen


@pytest.fixture
async def wired(fake: FakeExchange, creds: Credentials, store: Store
                ) -> AsyncIterator[tuple[CoinbaseExecutor, list[ExecutionReport], Seen]]:
    events, _bus, seen = bound()
    rest = CoinbaseRest(fake.rest_url, signer=creds.signer(), retry=FAST_RETRY, timeout_s=0.5, events=events)
    ex = CoinbaseExecutor(rest, symbol="BTC-USD", store=store, run_id="run", retry=FAST_RETRY,
                          poll_interval_s=0.1, recovery_interval_s=3600)
    reports: list[ExecutionReport] = []
    ex.bind(reports.append)
    await ex.start()
    yield ex, reports, seen
    await ex.stop()
    await rest.close()


def finals(reports: list[ExecutionReport], order_id: str) -> list[OrderStatus]:
    return [r.status for r in reports if r.order_id == order_id and r.status in
            (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED)]


# -- rate limiting -------------------------------------------------------------------------------


def test_repeats_of_a_key_are_counted_and_summarised_once_the_window_ends() -> None:
    now = [0.0]
    events = OperatorEvents(window_s=10.0, monotonic=lambda: now[0])
    bus = EventBus()
    seen = Seen(bus)
    events.bind(bus, WallClock())
    assert events.emit("k", "warning", "exchange", "first") is True
    for i in range(7):
        now[0] = 1.0 + i
        assert events.emit("k", "warning", "exchange", f"repeat {i}") is False
    events.emit("other", "error", "exchange", "another key is not held back")
    assert [e.message for e in seen.events] == ["first", "another key is not held back"]
    now[0] = 12.0  # the window is over: the next one summarises the repeats, then is published itself
    assert events.emit("k", "warning", "exchange", "after") is True
    assert [e.message for e in seen.of("k")] == ["first", "repeat 6 (repeated 7 more times in 10 s)", "after"]
    assert seen.of("k")[1].fields["repeated"] == 7 and seen.of("k")[1].level == "warning"


async def test_a_burst_of_identical_rest_retries_is_one_event_and_a_summary_in_the_json_log(
        fake: FakeExchange, creds: Credentials, tmp_path: Path) -> None:
    """Three GETs meet 503s (11 retries in all): one warning event, then "repeated 10 more times" when
    the window ends, both on the bus and in the rotating JSON log."""
    events, bus, seen = bound(window_s=0.5)
    files = LogFiles.open(tmp_path / "trdr.log", level="info", max_bytes=1_000_000, backups=1)
    recorder = EventLog(bus, WallClock())
    rest = CoinbaseRest(fake.rest_url, signer=creds.signer(), retry=FAST_RETRY, events=events)
    try:
        for failures in (5, 5, 1):  # each GET succeeds on its last try
            fake.faults.rest_5xx = failures
            await rest.list_accounts()
        assert rest.retries == 11
        assert len(seen.of("rest.retry")) == 1 and seen.of("rest.retry")[0].level == "warning"
        await until(lambda: len(seen.of("rest.retry")) == 2, timeout=3.0)  # the window's timer summarises
        summary = seen.of("rest.retry")[1]
        assert summary.fields["repeated"] == 10 and "repeated 10 more times" in summary.message
    finally:
        await rest.close()
        recorder.close()
        files.close()
    lines = [json.loads(x) for x in (tmp_path / "trdr.log").read_text().splitlines()]
    logged = [x for x in lines if x.get("topic") == "log.warning"
              and x["event"]["fields"].get("event") == "rest.retry:ConnectionLost"]
    assert len(logged) == 2 and logged[1]["event"]["fields"]["repeated"] == 10


# -- rejected keys ---------------------------------------------------------------------------------


async def test_a_401_mid_run_from_clock_skew_is_an_error_event(wired, fake: FakeExchange) -> None:  # type: ignore[no-untyped-def]
    """The server's clock runs 5 minutes ahead (JWTs live 2 minutes): every private call answers 401.
    Each caller still gets AuthFailed; the operator sees one error event naming the fix."""
    ex, _reports, seen = wired
    fake.faults.clock_skew_s = 300.0
    for _ in range(3):
        with pytest.raises(AuthFailed):
            await ex.rest.list_accounts()
    errors = seen.of("rest.auth")
    assert len(errors) == 1 and errors[0].level == "error" and errors[0].source == "exchange"
    assert "rejected the API key" in errors[0].message and "clock" in errors[0].message
    assert ex.rest.auth_failures == 3
    fake.faults.clock_skew_s = 0.0
    assert await ex.rest.list_accounts()  # the same key works again once the clocks agree


async def test_a_refused_user_channel_token_is_an_error_event(fake: FakeExchange, creds: Credentials,
                                                              store: Store) -> None:
    events, _bus, seen = bound()
    rest = CoinbaseRest(fake.rest_url, signer=creds.signer(), retry=FAST_RETRY, events=events)
    ex = CoinbaseExecutor(rest, symbol="BTC-USD", store=store, run_id="run", user_ws_url=fake.user_ws_url,
                          signer=creds.signer(), retry=FAST_RETRY, poll_interval_s=0.1, recovery_interval_s=3600)
    ex.bind(lambda _r: None)
    await ex.start()
    try:
        fake.faults.clock_skew_s = 300.0
        await fake.drop_sockets()  # the reconnect subscribes with a token the server reads as expired
        await until(lambda: bool(seen.of("ws.auth")), timeout=10.0)
    finally:
        await ex.stop()
        await rest.close()
    assert seen.of("ws.auth")[0].level == "error" and "clock" in seen.of("ws.auth")[0].message


# -- rejections: classified, never retried blindly ---------------------------------------------------


def test_failure_reasons_are_classified() -> None:
    assert failure_kind("COMMANDER_REJECTED_NEW_ORDER") == "transient"
    assert failure_kind("ORDER_ENTRY_DISABLED") == "transient"
    assert failure_kind("INVALID_SIZE_PRECISION") == "precision"
    assert failure_kind("PREVIEW_INVALID_PRICE_PRECISION") == "precision"
    for reason in ("INSUFFICIENT_FUND", "INVALID_LIMIT_PRICE_POST_ONLY", "INVALID_LIMIT_PRICE",
                   "UNSUPPORTED_ORDER_CONFIGURATION", "UNTRADABLE_PRODUCT", "SOMETHING_NEW"):
        assert failure_kind(reason) == "permanent", reason


async def test_insufficient_funds_is_rejected_once_and_holds_that_side(wired, fake: FakeExchange,  # type: ignore[no-untyped-def]
                                                                       store: Store) -> None:
    ex, reports, seen = wired
    fake.faults.reject_create = 1
    first = make_order(size=0.01)
    await ex.submit(first)
    assert finals(reports, first.id) == [OrderStatus.REJECTED]
    assert fake.create_posts[first.client_order_id] == 1  # sent once, not retried
    row = store.cursor().execute("SELECT state, last_error FROM exchange_outbox WHERE client_order_id = ?",
                                 [first.client_order_id]).fetchone()
    assert row == ("rejected", "INSUFFICIENT_FUND")
    warned = seen.of("order.rejected")
    assert len(warned) == 1 and warned[0].level == "warning" and "held for 30 s" in warned[0].message
    second = make_order(size=0.01)  # the grid places again next bar: refused here, not sent
    await ex.submit(second)
    assert finals(reports, second.id) == [OrderStatus.REJECTED]
    assert second.client_order_id not in fake.create_posts
    assert seen.of("order.held") and "INSUFFICIENT_FUND" in seen.of("order.held")[0].message
    sell = make_order(side=Side.SELL, size=0.001)  # the other side is not held
    fake.balances["BTC"] = fake.balances.get("BTC", Decimal(0)) + 1
    await ex.submit(sell)
    assert fake.create_posts[sell.client_order_id] == 1


async def test_a_transient_rejection_is_retried_with_backoff_under_the_same_client_order_id(  # type: ignore[no-untyped-def]
        wired, fake: FakeExchange) -> None:
    ex, reports, seen = wired
    fake.faults.reject_create = 2
    fake.faults.reject_reason = "COMMANDER_REJECTED_NEW_ORDER"
    order = make_order(size=0.01)
    await ex.submit(order)
    await until(lambda: bool(finals(reports, order.id)))
    assert finals(reports, order.id) == [OrderStatus.FILLED]
    assert fake.create_posts[order.client_order_id] == 3 and len(fake.orders) == 1
    assert len(seen.of("order.retry")) == 1  # the second retry is counted in the window, not repeated


async def test_a_post_only_limit_that_would_cross_is_rejected_once(wired, fake: FakeExchange) -> None:  # type: ignore[no-untyped-def]
    ex, reports, seen = wired
    order = make_order(otype=OrderType.LIMIT, size=0.01, price=float(fake.price) * 1.05)
    order.metadata["post_only"] = True
    await ex.submit(order)
    assert finals(reports, order.id) == [OrderStatus.REJECTED]
    assert fake.create_posts[order.client_order_id] == 1
    assert "INVALID_LIMIT_PRICE_POST_ONLY" in seen.of("order.rejected")[0].message
    again = make_order(size=0.01)  # a post-only rejection holds nothing
    await ex.submit(again)
    assert fake.create_posts[again.client_order_id] == 1


# -- product rules re-read ---------------------------------------------------------------------------


async def test_a_precision_rejection_rereads_the_product_and_resends_rounded(wired, fake: FakeExchange,  # type: ignore[no-untyped-def]
                                                                             store: Store) -> None:
    ex, reports, seen = wired
    fake.set_increments(base="0.001")  # Coinbase coarsens the size step mid-run
    order = make_order(size=0.0123456)
    await ex.submit(order)
    await until(lambda: bool(finals(reports, order.id)))
    placed = fake.orders[fake.by_client_id[order.client_order_id]]
    assert placed.base_size == placed.base_size.quantize(fake.market.base_increment) and str(placed.base_size) == "0.012"
    assert fake.create_posts[order.client_order_id] == 2  # refused once, re-sent rounded once
    assert ex.product is not None and str(ex.product.increments.base) == "0.001"
    changed = seen.of("product.rules")
    assert len(changed) == 1 and changed[0].level == "info" and "0.00000001 -> 0.001" in changed[0].message
    row = store.cursor().execute("SELECT configuration, state FROM exchange_outbox WHERE client_order_id = ?",
                                 [order.client_order_id]).fetchone()
    assert row is not None and json.loads(row[0])["market_market_ioc"]["base_size"] == "0.012"
    assert row[1] == "accepted"


async def test_a_limit_price_off_a_new_tick_is_rounded_again(wired, fake: FakeExchange) -> None:  # type: ignore[no-untyped-def]
    ex, reports, _seen = wired
    fake.set_increments(price="1")
    order = make_order(otype=OrderType.LIMIT, size=0.01, price=float(fake.price) * 0.9 + 0.37)
    order.metadata["post_only"] = True
    await ex.submit(order)
    placed = fake.orders[fake.by_client_id[order.client_order_id]]
    assert placed.limit_price == placed.limit_price.to_integral_value() and placed.status == "OPEN"
    assert finals(reports, order.id) == []


async def test_product_rules_are_reread_on_a_schedule(fake: FakeExchange, creds: Credentials, store: Store) -> None:
    events, _bus, seen = bound()
    rest = CoinbaseRest(fake.rest_url, signer=creds.signer(), retry=FAST_RETRY, events=events)
    ex = CoinbaseExecutor(rest, symbol="BTC-USD", store=store, run_id="run", retry=FAST_RETRY, poll_interval_s=0.05,
                          recovery_interval_s=3600, product_refresh_s=0.1)
    ex.bind(lambda _r: None)
    await ex.start()
    try:
        fake.set_increments(base="0.0001")
        await until(lambda: ex.product is not None and str(ex.product.increments.base) == "0.0001")
    finally:
        await ex.stop()
        await rest.close()
    assert "scheduled" in seen.of("product.rules")[0].message


async def test_a_send_kept_for_recovery_and_its_recovery_are_events(wired, fake: FakeExchange) -> None:  # type: ignore[no-untyped-def]
    ex, _reports, seen = wired
    fake.faults.rest_reset = 100  # every try of the send and of its look-ups fails
    order = make_order(size=0.01)
    await ex.submit(order)
    kept = seen.of("order.kept")
    assert len(kept) == 1 and kept[0].level == "error" and "kept for recovery" in kept[0].message
    fake.faults.rest_reset = 0
    assert await ex.retry_failed() == 1
    recovered = seen.of("order.recovered")
    assert len(recovered) == 1 and recovered[0].level == "info"
    assert len(fake.orders) == 1

