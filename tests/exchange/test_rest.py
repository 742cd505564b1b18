"""The real REST client against the fake exchange: endpoints, typing, retries, rate limits."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from tests.exchange.conftest import FAST_RETRY, KEY_NAME
from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.core.errors import ConnectionLost, InvalidResponse, RateLimited
from trdr_tui.core.types import Side
from trdr_tui.exchange.coinbase_auth import JwtSigner, generate_ec_key_pem, parse_private_key
from trdr_tui.exchange.coinbase_models import Product, limit_gtc, market_ioc, stop_limit_gtc
from trdr_tui.exchange.coinbase_rest import AuthFailed, CoinbaseRest, RateLimiter, RetryPolicy
from trdr_tui.trading.sizing import ProductSpec


async def test_accounts_fees_and_product(rest: CoinbaseRest, fake: FakeExchange) -> None:
    accounts = {a.currency: a for a in await rest.list_accounts()}
    assert accounts["USD"].available_balance.value == Decimal("10000")
    summary = await rest.transaction_summary()
    assert summary.fee_tier.taker_fee_rate == Decimal("0.006") and summary.fee_tier.maker_fee_rate == Decimal("0.004")
    product = await rest.get_product("BTC-USD")
    assert product.base_increment == Decimal("0.00000001") and product.status == "online"
    # the JWT uri named this server's host:port, or the fake would have answered 401
    assert all(status == 200 for _, _, status in fake.requests)


async def test_bad_key_is_refused(fake: FakeExchange) -> None:
    stranger = JwtSigner(KEY_NAME, parse_private_key(generate_ec_key_pem()))
    async with CoinbaseRest(fake.rest_url, signer=stranger, retry=FAST_RETRY) as client:
        with pytest.raises(AuthFailed, match="401"):
            await client.list_accounts()


async def test_candles_paginate_in_349s_and_come_back_oldest_first(rest: CoinbaseRest, fake: FakeExchange) -> None:
    hist = fake.history
    start, end = hist[100].ts // 10**9, hist[1100].ts // 10**9
    candles = await rest.candles_range("BTC-USD", start, end, "1h")
    assert [c.ts for c in candles] == [c.ts for c in hist[100:1100]]
    assert [c.close for c in candles] == [c.close for c in hist[100:1100]]
    calls = [p for m, p, _ in fake.requests if p.endswith("/candles")]
    assert len(calls) == 3  # 1000 bars / 349 per request
    with pytest.raises(ValueError, match="349"):
        await rest.get_candles("BTC-USD", start, start + 400 * 3600, "1h")


async def test_public_endpoints_without_keys(fake: FakeExchange) -> None:
    async with CoinbaseRest(fake.rest_url, retry=FAST_RETRY) as client:
        product = await client.get_product("BTC-USD")
        fake.step(3)
        trades = await client.market_trades("BTC-USD", limit=2)
        assert len(trades.trades) == 2 and product.product_id == "BTC-USD"
        assert any(p.startswith("/market/") for _, p, _ in fake.requests)


async def test_order_lifecycle(rest: CoinbaseRest, fake: FakeExchange) -> None:
    product = await rest.get_product("BTC-USD")
    price = fake.price
    size = product.floor_size(0.0123456789)
    assert size == Decimal("0.01234567")
    below = product.round_price(float(price) * 0.98, Side.BUY)
    resp = await rest.create_order(client_order_id="c1", product_id="BTC-USD", side="BUY",
                                   configuration=limit_gtc(base_size=size, limit_price=below, post_only=True))
    assert resp.success and resp.success_response is not None
    oid = resp.success_response.order_id
    order = await rest.get_order(oid)
    assert order.status == "OPEN" and order.client_order_id == "c1"
    found = await rest.find_order_by_client_id("c1", "BTC-USD")
    assert found is not None and found.order_id == oid
    edit = await rest.edit_order(oid, size=size, price=below - 1)
    assert edit.success
    results = await rest.cancel_orders([oid, "nope"])
    assert [r.success for r in results] == [True, False]
    assert (await rest.get_order(oid)).status == "CANCELLED"
    # a market buy fills at once and shows up in fills with the taker fee
    m = await rest.create_order(client_order_id="c2", product_id="BTC-USD", side="BUY",
                                configuration=market_ioc(quote_size=Decimal("100")))
    assert m.success and m.success_response is not None
    fills = await rest.list_fills(order_ids=[m.success_response.order_id])
    assert len(fills) == 1 and fills[0].liquidity_indicator == "TAKER"
    assert fills[0].commission == (fills[0].price * fills[0].size * Decimal("0.006")).quantize(Decimal("1e-10"))
    # post-only that would cross is refused with the documented reason
    bad = await rest.create_order(client_order_id="c3", product_id="BTC-USD", side="BUY",
                                  configuration=limit_gtc(base_size=size, limit_price=price * 2, post_only=True))
    assert not bad.success and bad.error_response is not None
    assert bad.error_response.reason == "INVALID_LIMIT_PRICE_POST_ONLY"
    # stop-limit rests until triggered
    stop = await rest.create_order(client_order_id="c4", product_id="BTC-USD", side="BUY",
                                   configuration=stop_limit_gtc(base_size=size, limit_price=price * 2,
                                                                stop_price=price + 50, stop_up=True))
    assert stop.success
    preview = await rest.preview_order(product_id="BTC-USD", side="BUY",
                                       configuration=market_ioc(base_size=size))
    assert preview.errs == [] and Decimal(preview.commission_total) > 0
    fake.set_price(str(price + 60))
    assert (await rest.get_order(stop.success_response.order_id)).status == "FILLED"  # type: ignore[union-attr]


async def test_limit_gtd_rests_with_its_time_in_force(rest: CoinbaseRest, fake: FakeExchange) -> None:
    from trdr_tui.exchange.coinbase_models import limit_gtd

    resp = await rest.create_order(client_order_id="gtd", product_id="BTC-USD", side="SELL",
                                   configuration=limit_gtd(base_size=Decimal("0.001"), limit_price=fake.price * 2,
                                                           end_time="2030-01-01T00:00:00Z", post_only=True))
    assert not resp.success and resp.error_response and resp.error_response.reason == "INSUFFICIENT_FUND"
    fake.balances["BTC"] = Decimal("1")
    resp = await rest.create_order(client_order_id="gtd2", product_id="BTC-USD", side="SELL",
                                   configuration=limit_gtd(base_size=Decimal("0.001"), limit_price=fake.price * 2,
                                                           end_time="2030-01-01T00:00:00Z", post_only=True))
    assert resp.success and resp.success_response
    order = await rest.get_order(resp.success_response.order_id)
    assert order.status == "OPEN" and order.time_in_force == "GOOD_UNTIL_DATE_TIME"
    assert (await rest.list_orders(product_ids=["BTC-USD"], order_status=["OPEN"]))[0].client_order_id == "gtd2"


async def test_precision_is_checked_by_the_exchange(rest: CoinbaseRest) -> None:
    resp = await rest.create_order(client_order_id="p1", product_id="BTC-USD", side="BUY",
                                   configuration=limit_gtc(base_size=Decimal("0.000000001"), limit_price=Decimal(100)))
    assert not resp.success and resp.error_response and resp.error_response.reason == "INVALID_SIZE_PRECISION"


def test_product_rounding_and_minimums() -> None:
    p = Product(product_id="BTC-USD", base_increment=Decimal("0.00000001"), quote_increment=Decimal("0.01"),
                base_min_size=Decimal("0.0001"), base_max_size=Decimal("1000"), quote_min_size=Decimal("1"),
                quote_max_size=Decimal("1e8"), status="online", price_increment="0.01")
    assert p.round_price(100.019, Side.BUY) == Decimal("100.01")
    assert p.round_price(100.011, Side.SELL) == Decimal("100.02")
    assert p.floor_size(0.123456789) == Decimal("0.12345678")
    assert p.floor_size(0.123456789999) == Decimal("0.12345678")
    # a float sum of exact fills lands just under the step: no dust left behind
    assert p.floor_size(0.01 + 0.06 + 0.1) == Decimal("0.17") and 0.01 + 0.06 + 0.1 < 0.17
    assert p.floor_size(0.09499999) == Decimal("0.09499999")
    # one implementation: the sizer's ProductSpec with the same steps rounds the same way
    spec = ProductSpec(base_increment="0.00000001", quote_increment="0.01", price_increment="0.01",
                       base_min_size="0.0001")
    assert spec.increments == p.increments
    for x in (0.123456789, 0.01 + 0.06 + 0.1, 0.09499999, 12.3):
        assert spec.round_size(x) == p.floor_size(x)
        assert spec.round_price(x * 1000, Side.BUY) == p.round_price(x * 1000, Side.BUY)
        assert spec.round_price(x * 1000, Side.SELL) == p.round_price(x * 1000, Side.SELL)
    from trdr_tui.exchange.coinbase_models import InvalidOrderSize

    with pytest.raises(InvalidOrderSize, match="minimum"):
        p.check_size(Decimal("0.00001"), Decimal(100))
    with pytest.raises(InvalidOrderSize, match="order value"):
        p.check_size(Decimal("0.001"), Decimal(100))


@pytest.mark.parametrize("fault", ["rest_429_html", "rest_5xx", "rest_timeout", "rest_reset", "timestamp_expired"])
async def test_transient_faults_are_retried(rest: CoinbaseRest, fake: FakeExchange, fault: str) -> None:
    setattr(fake.faults, fault, 2)
    if fault == "rest_timeout":
        fake.faults.timeout_s = 0.8  # the client's timeout is 0.5 s
    accounts = await rest.list_accounts()
    # aiohttp itself re-sends a GET once when a pooled connection was reset under it
    assert accounts and (rest.retries == 2 or (fault == "rest_reset" and rest.retries >= 1))
    assert getattr(fake.faults, fault) == 0


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_each_gateway_status_is_retried(rest: CoinbaseRest, fake: FakeExchange, status: int) -> None:
    fake.faults.rest_5xx, fake.faults.rest_5xx_status = 1, status
    assert await rest.get_product("BTC-USD")
    assert rest.retries == 1


async def test_retries_give_up_after_five(rest: CoinbaseRest, fake: FakeExchange) -> None:
    fake.faults.rest_429_html = 10
    with pytest.raises(RateLimited):
        await rest.list_accounts()
    assert rest.retries == 5 and rest.requests_sent == 6
    fake.faults.rest_429_html = 0
    fake.faults.rest_5xx = 10
    with pytest.raises(ConnectionLost):
        await rest.get_product("BTC-USD")


async def test_order_creation_is_never_retried_blindly(rest: CoinbaseRest, fake: FakeExchange) -> None:
    fake.faults.rest_5xx = 1
    with pytest.raises(ConnectionLost):
        await rest.create_order(client_order_id="x", product_id="BTC-USD", side="BUY",
                                configuration=market_ioc(quote_size=Decimal(10)))
    assert rest.retries == 0


def test_backoff_schedule() -> None:
    policy = RetryPolicy()
    rng = random.Random(1)
    delays = [policy.delay(n, rng) for n in range(7)]
    for n, d in enumerate(delays):
        base = min(2.0**n, 30.0)
        assert base * 0.95 <= d <= base * 1.05
    assert delays[-1] <= 31.5 and delays[5] >= 28.5  # capped at 30 s


async def test_rate_limiter_keeps_to_the_limit(fake: FakeExchange, creds) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    fake.rate_limit_per_s = 30
    async with CoinbaseRest(fake.rest_url, signer=creds.signer(), retry=RetryPolicy(max_retries=0)) as client:
        await asyncio.gather(*(client.get_product("BTC-USD") for _ in range(45)))
        assert client.private_limiter.waits > 0
    assert fake.rate_limited == 0  # the bucket kept us under the server's 30/s window


async def test_rate_limiter_honours_headers() -> None:
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)
        limiter._blocked_until = 0  # let the loop proceed

    limiter = RateLimiter(10, sleep=fake_sleep)
    limiter.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "2"})
    await limiter.acquire()
    assert slept and 1.5 <= slept[0] <= 2.0


async def test_missing_required_field_is_e004(creds) -> None:  # type: ignore[no-untyped-def]
    app = web.Application()

    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"product_id": "BTC-USD", "extra": 1})  # increments missing

    async def tolerant(request: web.Request) -> web.Response:
        return web.json_response({"iso": "x", "epochSeconds": "1", "brand_new_field": {"a": 1}})

    app.router.add_get("/api/v3/brokerage/products/BTC-USD", broken)
    app.router.add_get("/api/v3/brokerage/time", tolerant)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with CoinbaseRest(f"http://127.0.0.1:{port}", signer=creds.signer(), retry=FAST_RETRY) as client:
            with pytest.raises(InvalidResponse) as info:
                await client.get_product("BTC-USD")
            assert info.value.code == "E004" and "base_increment" in str(info.value)
            assert (await client.server_time()).epochSeconds == "1"
    finally:
        await runner.cleanup()


def busiest_second(times: list[float]) -> int:
    """The most timestamps (seconds) in any one-second window [t, t + 1)."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while j < len(times) and times[j] < t + 1.0:
            j += 1
        best = max(best, j - i)
    return best


async def test_rate_limit_holds_at_the_wire_under_a_burst(fake: FakeExchange, creds) -> None:  # type: ignore[no-untyped-def]
    """100 private requests at once, each taking a random 0-300 ms to reach the server: no one-second
    window at the server holds more than the documented 30 (docs/coinbase.md), so nothing is refused."""
    import asyncio

    fake.faults.transit_jitter_s = 0.3
    burst = 100
    async with CoinbaseRest(fake.rest_url, signer=creds.signer(), retry=FAST_RETRY) as client:
        await asyncio.gather(*(client.get_product("BTC-USD") for _ in range(burst)))
        retries = client.retries
    private = [t for t, is_private in fake.arrivals if is_private]
    assert len(private) >= burst and fake.fired["transit_jitter"] >= burst
    assert busiest_second(private) <= 30
    assert fake.rate_limited == 0 and retries == 0


async def test_a_client_that_drops_its_socket_mid_request_is_a_normal_disconnect(
        fake: FakeExchange, creds: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A trdr killed while sending an order leaves half a body: the fake logs no ConnectionResetError
    traceback ("Error handling request"), records the request with status 0 and goes on serving."""
    import asyncio
    import logging
    from urllib.parse import urlsplit

    url = urlsplit(fake.rest_url)
    path = "/api/v3/brokerage/orders"
    token = creds.signer().rest_jwt("POST", f"{url.hostname}:{url.port}", path)
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    _reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write((f"POST {path} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\nAuthorization: Bearer {token}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"client_order_id\": ").encode())
    await writer.drain()
    await asyncio.sleep(0.2)  # the handler is reading the body
    writer.transport.abort()  # a killed process: the socket goes, no FIN with a full body
    for _ in range(50):
        if ("POST", "/orders", 0) in fake.rest.requests:
            break
        await asyncio.sleep(0.02)
    assert not [r for r in caplog.records if "Error handling request" in r.getMessage()], caplog.text
    assert "ConnectionResetError" not in caplog.text
    assert ("POST", "/orders", 0) in fake.rest.requests
