"""CoinbaseFeed and the WebSocket connection against the fake exchange: bars, health, faults."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.exchange.conftest import real_candles
from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.core.bus import EventBus
from trdr_tui.core.events import FeedHealth
from trdr_tui.core.types import Candle, Tick
from trdr_tui.exchange.coinbase_feed import CandleBuilder, CoinbaseFeed
from trdr_tui.exchange.coinbase_rest import CoinbaseRest, RetryPolicy
from trdr_tui.exchange.credentials import Credentials

NS = 1_000_000_000
HOUR = 3600 * NS
FAST_RECONNECT = RetryPolicy(initial_s=0.01, cap_s=0.05)


def test_candle_builder_bars_and_flat_fill() -> None:
    b = CandleBuilder(HOUR)
    assert b.add(10 * HOUR + 5, 100.0, 1.0) == []
    assert b.add(10 * HOUR + 50, 105.0, 1.0) == []
    assert b.add(10 * HOUR + 70, 95.0, 2.0) == []
    out = b.add(13 * HOUR + 1, 99.0, 1.0)  # two empty hours in between
    assert out == [Candle(10 * HOUR, 100.0, 105.0, 95.0, 95.0, 4.0),
                   Candle(11 * HOUR, 95.0, 95.0, 95.0, 95.0, 0.0), Candle(12 * HOUR, 95.0, 95.0, 95.0, 95.0, 0.0)]
    assert b.add(12 * HOUR + 1, 1.0, 1.0) == [] and b.late_trades == 1
    assert b.close_until(14 * HOUR - 1) == []
    assert b.close_until(15 * HOUR) == [Candle(13 * HOUR, 99.0, 99.0, 99.0, 99.0, 1.0),
                                        Candle(14 * HOUR, 99.0, 99.0, 99.0, 99.0, 0.0)]


def _accelerated_fake(creds: Credentials, **kw: object) -> FakeExchange:
    candles = real_candles()
    ex = FakeExchange(candles=candles, heartbeat_s=0.05, step_ns=15 * 60 * NS, start_ns=candles[0].ts, **kw)  # type: ignore[arg-type]
    ex.add_key(creds.key_name, creds.signer().public_key())
    return ex


async def _collect(feed: CoinbaseFeed, n_candles: int, fake: FakeExchange, *, steps_per_wait: int = 1,
                   timeout: float = 10.0) -> list[Candle]:
    got: list[Candle] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(got) < n_candles:
        assert loop.time() < deadline, f"only {len(got)} candles"
        try:
            item = await feed.get(timeout=0.05)
        except TimeoutError:
            fake.step(steps_per_wait)
            continue
        if isinstance(item, Candle):
            got.append(item)
    return got


async def _started(feed: CoinbaseFeed, fake: FakeExchange) -> None:
    await feed.start()
    for _ in range(200):
        if feed.ws.healthy:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("feed never became healthy")


async def test_bars_built_from_trades_match_the_real_candles(creds: Credentials) -> None:
    fake = _accelerated_fake(creds)
    await fake.start()
    rest = CoinbaseRest(fake.rest_url)
    feed = CoinbaseFeed("BTC-USD", "1h", ws_url=fake.ws_url, rest=rest, signer=creds.signer(),
                        reconnect=FAST_RECONNECT, close_grace_s=0)
    try:
        await _started(feed, fake)
        got = await _collect(feed, 12, fake)
        hist = {c.ts: c for c in fake.history}
        # bar 0's open is the fake's starting price, never traded; every later bar is exact
        for c in got[1:]:
            real = hist[c.ts]
            assert (c.open, c.high, c.low, c.close) == pytest.approx((real.open, real.high, real.low, real.close),
                                                                     abs=0.006)
        assert [c.ts for c in got] == sorted(c.ts for c in got)
        # subscriptions: one message per channel, each with its own freshly signed JWT
        subs = [m for m in fake.subscribe_messages if m["type"] == "subscribe"]
        assert {m["channel"] for m in subs} == {"heartbeats", "market_trades", "ticker", "candles"}
        assert len({m["jwt"] for m in subs}) == len(subs)
    finally:
        await feed.stop()
        await rest.close()
        await fake.stop()


@pytest.mark.parametrize("fault", ["gap", "drop", "stale"])
async def test_feed_recovers_from_socket_faults(creds: Credentials, fault: str) -> None:
    fake = _accelerated_fake(creds)
    await fake.start()
    bus = EventBus()
    health: list[FeedHealth] = []
    bus.subscribe("feed.health", lambda _t, e: health.append(e))
    rest = CoinbaseRest(fake.rest_url, signer=creds.signer(), retry=RetryPolicy(initial_s=0.01))
    feed = CoinbaseFeed("BTC-USD", "1h", ws_url=fake.ws_url, rest=rest, signer=creds.signer(), bus=bus,
                        reconnect=FAST_RECONNECT, silence_s=0.3, poll_interval_s=0.1, close_grace_s=0)
    try:
        await _started(feed, fake)
        before = await _collect(feed, 3, fake)
        if fault == "gap":
            fake.faults.ws_gap = 1
        elif fault == "drop":
            await fake.drop_sockets()
        else:
            fake.faults.ws_stale = True
        fake.step(1)
        if fault == "stale":
            # the socket goes silent: unhealthy, then REST polling keeps prices coming
            for _ in range(100):
                if feed.polls:
                    break
                await asyncio.sleep(0.02)
            assert feed.polls >= 1 and feed.ws.silences >= 1
            fake.faults.ws_stale = False
        after = await _collect(feed, 6, fake)
        assert feed.ws.connects >= 2
        if fault == "gap":
            assert feed.ws.gaps >= 1
        bars = before + after
        # no bar lost or doubled across the reconnect
        assert [c.ts for c in bars] == [bars[0].ts + i * HOUR for i in range(len(bars))]
        assert any(not h.healthy and h.source == "coinbase-ws" for h in health)
        assert health[-1].healthy
        if fault == "stale":
            assert any(h.source == "coinbase-rest" and h.healthy for h in health)
    finally:
        await feed.stop()
        await rest.close()
        await fake.stop()


async def test_ticks_carry_trade_price_and_book(creds: Credentials) -> None:
    fake = _accelerated_fake(creds)
    await fake.start()
    rest = CoinbaseRest(fake.rest_url)
    feed = CoinbaseFeed("BTC-USD", "1h", ws_url=fake.ws_url, rest=rest, reconnect=FAST_RECONNECT)
    try:
        await _started(feed, fake)
        fake.step(1)
        tick = None
        for _ in range(50):
            item = await feed.get(timeout=1.0)
            if isinstance(item, Tick) and item.price == float(fake.price):
                tick = item
                break
        assert tick is not None and tick.bid is not None and tick.ask is not None and tick.bid < tick.ask
    finally:
        await feed.stop()
        await rest.close()
        await fake.stop()


async def test_server_drops_a_socket_that_does_not_subscribe_in_time(creds: Credentials) -> None:
    fake = _accelerated_fake(creds, subscribe_deadline_s=0.2)
    await fake.start()
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(fake.ws_url) as ws:
            msg = await ws.receive(timeout=2.0)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        async with aiohttp.ClientSession() as s, s.ws_connect(fake.user_ws_url) as ws:
            await ws.send_json({"type": "subscribe", "channel": "user", "product_ids": ["BTC-USD"]})
            msg = await ws.receive(timeout=2.0)
            assert msg.json() == {"type": "error", "message": "authentication failure"}
    finally:
        await fake.stop()


@pytest.mark.parametrize("repair", [True, False])
async def test_bars_spanning_an_outage_are_replaced_by_the_exchange_candle(creds: Credentials, repair: bool) -> None:
    fake = _accelerated_fake(creds)
    await fake.start()
    rest = CoinbaseRest(fake.rest_url, signer=creds.signer(), retry=RetryPolicy(initial_s=0.01))
    feed = CoinbaseFeed("BTC-USD", "1h", ws_url=fake.ws_url, rest=rest, signer=creds.signer(),
                        reconnect=FAST_RECONNECT, silence_s=0.2, poll_interval_s=3600, close_grace_s=0,
                        repair_bars=repair)
    try:
        await _started(feed, fake)
        bars = await _collect(feed, 3, fake)
        fake.faults.ws_stale = True
        await asyncio.sleep(0.3)  # the socket is declared dead
        fake.step(120)  # 30 hours of trades nobody hears; a reconnect snapshot carries the last 50 only
        fake.faults.ws_stale = False
        bars += await _collect(feed, 40, fake)
    finally:
        await feed.stop()
        await rest.close()
        await fake.stop()
    assert [c.ts for c in bars] == [bars[0].ts + i * HOUR for i in range(len(bars))]
    real = {c.ts: c for c in fake.history}
    wrong = [c.ts for c in bars[1:] if (c.open, c.high, c.low, c.close) !=
             pytest.approx((real[c.ts].open, real[c.ts].high, real[c.ts].low, real[c.ts].close), abs=0.006)]
    if repair:
        assert wrong == [] and feed.repaired >= 20
    else:
        assert len(wrong) >= 15  # without the repair the outage leaves flat or partial bars


@pytest.mark.parametrize("exchange_answers", [True, False])
async def test_the_first_bar_after_start_is_the_exchange_candle_or_none(
    creds: Credentials, exchange_answers: bool
) -> None:
    """Started 40 minutes into an hour, the feed saw only the end of that bar: it is replaced by the
    exchange's candle, or dropped when the exchange cannot give it, never emitted as a whole bar."""
    candles = real_candles()
    fake = FakeExchange(candles=candles, heartbeat_s=0.05, step_ns=15 * 60 * NS, start_ns=candles[0].ts + 40 * 60 * NS)
    fake.add_key(creds.key_name, creds.signer().public_key())
    await fake.start()
    rest = CoinbaseRest(fake.rest_url, retry=RetryPolicy(max_retries=1, initial_s=0.001))
    feed = CoinbaseFeed("BTC-USD", "1h", ws_url=fake.ws_url, rest=rest, signer=creds.signer(),
                        reconnect=FAST_RECONNECT, poll_interval_s=3600, close_grace_s=0)
    if not exchange_answers:
        fake.faults.rest_5xx = 10_000
    try:
        await _started(feed, fake)
        got = await _collect(feed, 3, fake)
    finally:
        await feed.stop()
        await rest.close()
        await fake.stop()
    real = {c.ts: c for c in fake.history}
    if exchange_answers:
        first = got[0]
        assert first.ts == candles[0].ts and feed.repaired == 1
        assert (first.open, first.high, first.low, first.close) == pytest.approx(
            (real[first.ts].open, real[first.ts].high, real[first.ts].low, real[first.ts].close), abs=0.006)
    else:
        assert got[0].ts == candles[0].ts + HOUR and feed.dropped == 1
