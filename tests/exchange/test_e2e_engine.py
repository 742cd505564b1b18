"""End to end: the real engine with the real Coinbase client code against the fake exchange.

Paper: Coinbase market data (WebSocket from the fake) + SimExecutor. Live: CoinbaseExecutor sending
real orders to the fake. Both run the `simple-trailing` preset on real 2019 hourly BTC-USD prices,
played fast (one hourly bar every few tens of milliseconds), from start to fills to the ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.exchange.conftest import FAST_RETRY, real_candles
from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.config import load_settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.events import FeedHealth
from trdr_tui.core.types import Candle, Mode, OrderStatus
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.loop import Engine
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor
from trdr_tui.exchange.coinbase_feed import CoinbaseFeed
from trdr_tui.exchange.coinbase_rest import CoinbaseRest, RetryPolicy
from trdr_tui.exchange.credentials import Credentials
from trdr_tui.store import Store

NS = 1_000_000_000
FAST_RECONNECT = RetryPolicy(initial_s=0.01, cap_s=0.05)


def accelerated_fake(creds: Credentials, *, step_interval_s: float = 0.01, offset: int = 1000) -> FakeExchange:
    candles = real_candles()[offset:]
    ex = FakeExchange(candles=candles, heartbeat_s=0.05, step_ns=15 * 60 * NS, start_ns=candles[0].ts,
                      step_interval_s=step_interval_s)
    ex.add_key(creds.key_name, creds.signer().public_key())
    return ex


async def run_until(engine: Engine, feed: CoinbaseFeed, done: Callable[[], bool], timeout: float = 30.0) -> None:
    task = asyncio.create_task(engine.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while not done():
            assert loop.time() < deadline, "the engine did not get there in time"
            assert not task.done(), f"engine stopped early: {task.exception() if task.done() else ''}"
            await asyncio.sleep(0.02)
    finally:
        await engine.stop("test done")
        await asyncio.wait_for(task, 10)
        await feed.stop()


def same_rows(a: list[tuple], b: list[tuple]) -> None:  # type: ignore[type-arg]
    assert len(a) == len(b)
    for x, y in zip(sorted(a), sorted(b), strict=True):
        assert x[:2] == y[:2] and x[2:] == pytest.approx(y[2:], rel=1e-12, abs=1e-12)


def ledger_rows(store: Store) -> list[tuple[str, str, float, float, float]]:
    store.sync()  # paper/live write through the journal: what the writer thread holds, in DuckDB now
    return [(r[0], r[1], float(r[2]), float(r[3]), float(r[4])) for r in store.cursor().execute(
        "SELECT id, side, price, size, fee FROM fills ORDER BY ts, id").fetchall()]


async def test_paper_mode_coinbase_data_simulated_fills(creds: Credentials, tmp_path: Path) -> None:
    fake = accelerated_fake(creds)
    await fake.start()
    settings = load_settings(env={})
    store = Store(tmp_path / "paper.duckdb")
    bus = EventBus()
    candles: list[Candle] = []
    health: list[FeedHealth] = []
    bus.subscribe("market.candle.BTC-USD", lambda _t, e: candles.append(e.candle))
    bus.subscribe("feed.health", lambda _t, e: health.append(e))
    rest = CoinbaseRest(fake.rest_url, retry=FAST_RETRY)  # paper needs no keys
    feed = CoinbaseFeed("BTC-USD", "1h", ws_url=fake.ws_url, rest=rest, bus=bus, reconnect=FAST_RECONNECT,
                        close_grace_s=0)
    engine = build_engine(settings, mode="paper", feed=feed, store=store, bus=bus, preset="simple-trailing",
                          checkpoint_interval_s=0.5)
    try:
        await run_until(engine, feed, lambda: len(engine.portfolio.fills) >= 3)
    finally:
        await rest.close()
        await fake.stop()
    assert engine.mode is Mode.PAPER
    assert not fake.create_posts  # paper never sends an order
    real = {c.ts: c for c in fake.history}
    for c in candles[1:]:  # bars built from the fake's trades are the real bars
        assert c.close == pytest.approx(real[c.ts].close, abs=0.006)
    assert any(h.healthy and h.source == "coinbase-ws" for h in health)
    booked = [(f.id, f.side.value, f.price, f.size, f.fee) for f in engine.portfolio.fills]
    same_rows(ledger_rows(store), booked)
    pf = engine.portfolio
    assert pf.cash + pf.position * engine.last_price == pytest.approx(engine.snapshot().equity)
    store.close()


async def test_live_mode_orders_reach_the_exchange_and_the_ledger_agrees(creds: Credentials, secret_pem: str,
                                                                          tmp_path: Path) -> None:
    fake = accelerated_fake(creds)
    await fake.start()
    settings = load_settings(env={})
    store = Store(tmp_path / "live.duckdb")
    bus = EventBus()
    events = bus.record()
    rest = CoinbaseRest(fake.rest_url, signer=creds.signer(), retry=FAST_RETRY, timeout_s=2.0)
    feed = CoinbaseFeed("BTC-USD", "1h", ws_url=fake.ws_url, rest=rest, bus=bus, signer=creds.signer(),
                        reconnect=FAST_RECONNECT, close_grace_s=0)
    executor = CoinbaseExecutor(rest, symbol="BTC-USD", store=store, user_ws_url=fake.user_ws_url,
                                signer=creds.signer(), retry=FAST_RETRY, poll_interval_s=0.2)
    engine = build_engine(settings, mode="live", feed=feed, executor=executor, store=store, bus=bus,
                          preset="simple-trailing", checkpoint_interval_s=0.5)
    await executor.start()
    try:
        await run_until(engine, feed, lambda: len(fake.fills) >= 3 and not executor._spawned)
        await engine.orders.settle()
        await executor.settle()
    finally:
        await executor.stop()
        await rest.close()
        await fake.stop()
    assert_exchange_and_ledger_agree(engine, fake, store, initial_usd=10_000.0)
    # the secret never reached the event stream or the database
    body = "".join(secret_pem.strip().splitlines()[1:-1])
    chunks = [body[i:i + 12] for i in range(0, len(body) - 12, 12)]
    assert len(events.entries) > 10
    dumped = events.encode().decode(errors="replace")
    for table in store.tables():
        dumped += repr(store.conn.execute(f"SELECT * FROM {table}").fetchall())
    assert "PRIVATE KEY" not in dumped and not any(c in dumped for c in chunks)
    store.close()


def assert_exchange_and_ledger_agree(engine: Engine, fake: FakeExchange, store: Store, *, initial_usd: float) -> None:
    # every exchange fill is in the ledger once, with the exchange's price, size and fee
    exchange = sorted((f.trade_id, f.side, float(f.price), float(f.size), float(f.commission)) for f in fake.fills)
    assert sorted((f.id, f.side.value, f.price, f.size, f.fee) for f in engine.portfolio.fills) == exchange
    same_rows(ledger_rows(store), exchange)
    # no intent ever became two exchange orders
    coids = [o.client_order_id for o in fake.orders.values()]
    assert len(coids) == len(set(coids))
    # balances agree, exactly
    pf = engine.portfolio
    assert (pf.position_exact, pf.cash_exact) == (fake.balances["BTC"], fake.balances["USD"])
    # order states agree
    for o in fake.orders.values():
        ours = next(x for x in engine.orders.orders.values() if x.client_order_id == o.client_order_id)
        assert ours.exchange_order_id == o.order_id
        want = {"FILLED": OrderStatus.FILLED, "CANCELLED": OrderStatus.CANCELLED, "OPEN": None}[o.status]
        if want is not None:
            assert ours.status is want
        assert ours.filled_size == pytest.approx(float(o.filled))


async def test_factory_wires_paper_and_live_from_settings(creds: Credentials, tmp_path: Path) -> None:
    from trdr_tui.engine.coinbase import build_coinbase_engine

    fake = accelerated_fake(creds)
    await fake.start()
    env = {"TRDR_COINBASE_REST_URL": fake.rest_url, "TRDR_COINBASE_WS_URL": fake.ws_url,
           "TRDR_COINBASE_USER_WS_URL": fake.user_ws_url}
    settings = load_settings(env=env)
    store = Store(tmp_path / "f.duckdb")
    try:
        with pytest.raises(Exception, match="credentials"):
            build_coinbase_engine(settings, live=True, store=store, preset="simple-trailing")
        paper = build_coinbase_engine(settings, live=False, store=store, preset="simple-trailing")
        health: list[FeedHealth] = []
        paper.bus.subscribe("feed.health", lambda _t, e: health.append(e))
        assert isinstance(paper.feed, CoinbaseFeed) and paper.mode is Mode.PAPER
        await run_until(paper, paper.feed, lambda: paper.record.bars >= 3)  # type: ignore[arg-type]
        assert any(h.healthy for h in health) and not fake.create_posts
        # with keys, paper mode simulates with the account's own fee tier
        from trdr_tui.core.types import Liquidity
        from trdr_tui.engine.coinbase import use_account_fee_tier

        keyed = build_coinbase_engine(settings, live=False, store=None, preset="simple-trailing", credentials=creds)
        schedule = await use_account_fee_tier(keyed)
        assert schedule is not None and schedule.rate(Liquidity.TAKER) == 0.006
        assert keyed.executor.fees is schedule  # type: ignore[attr-defined]
        assert await use_account_fee_tier(paper) is None  # no keys: the configured schedule stays
        await keyed.feed.rest.close()  # type: ignore[attr-defined]
        await paper.feed.rest.close()  # type: ignore[attr-defined]
        live = build_coinbase_engine(settings, live=True, store=store, preset="simple-trailing", credentials=creds,
                                     run_id="factory-live")
        assert isinstance(live.executor, CoinbaseExecutor) and live.mode is Mode.LIVE
        await run_until(live, live.feed, lambda: len(fake.fills) >= 1)  # type: ignore[arg-type]
        await live.executor.stop()  # type: ignore[attr-defined]
        await live.executor.rest.close()  # type: ignore[attr-defined]
        assert fake.create_posts  # real orders reached the (fake) exchange
    finally:
        await fake.stop()
        store.close()
