"""Live deposits and withdrawals (PRD §3.3.3: live reads them from the account): a live engine on the
fake exchange, money moved in and out of the fake account outside trading, the engine's `AccountWatch`
books what persists, resizes, and refuses (reports) a withdrawal above the run's free cash."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import aiohttp

from tests.exchange.conftest import real_candles
from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.config import load_settings
from trdr_tui.core.events import FundingChange, LogEvent
from trdr_tui.core.types import Order, Side
from trdr_tui.engine.coinbase import OUTSIDE_READS, AccountWatch, build_coinbase_engine
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor
from trdr_tui.exchange.credentials import Credentials
from trdr_tui.store import Store

NS = 1_000_000_000


async def wait_for(done: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def buys(orders: list[Order]) -> list[Order]:
    return [o for o in orders if o.side is Side.BUY]


async def test_live_engine_books_a_deposit_from_the_account_and_refuses_a_large_withdrawal(
        creds: Credentials, tmp_path: Path) -> None:
    candles = real_candles()[1000:]
    fake = FakeExchange(candles=candles, heartbeat_s=0.05, step_ns=15 * 60 * NS, start_ns=candles[0].ts)
    fake.add_key(creds.key_name, creds.signer().public_key())
    await fake.start()
    env = {"TRDR_COINBASE_REST_URL": fake.rest_url, "TRDR_COINBASE_WS_URL": fake.ws_url,
           "TRDR_COINBASE_USER_WS_URL": fake.user_ws_url}
    settings = load_settings(env=env, overrides={"funding": {"account_check_seconds": 1.0}})
    store = Store(tmp_path / "live.duckdb")
    engine = build_coinbase_engine(settings, live=True, store=store, preset="simple-trailing", credentials=creds,
                                   run_id="fund-live")
    changes: list[FundingChange] = []
    errors: list[LogEvent] = []
    engine.bus.subscribe("funding.BTC-USD", lambda _t, e: changes.append(e))
    engine.bus.subscribe("log.error", lambda _t, e: errors.append(e))
    task = asyncio.create_task(engine.run())
    pf = engine.portfolio
    accounts_reads = lambda: sum(1 for m, p, s in fake.rest.requests if p == "/accounts" and s == 200)  # noqa: E731

    async def bars(n: int) -> None:
        before = engine.record.bars
        for _ in range(n):
            fake.step(4)  # one hour of exchange time
            await asyncio.sleep(0.05)
        await wait_for(lambda: engine.record.bars >= before + n - 1, "bars")

    try:
        await bars(3)
        await wait_for(lambda: bool(buys(list(engine.orders.open.values()))), "the first trailing BUY")
        await wait_for(lambda: accounts_reads() >= 2, "the watch's baseline read")  # start check + baseline
        first = buys(list(engine.orders.open.values()))[0]
        assert pf.contributed_exact == 0

        # a deposit at coinbase.com: booked exactly, once, from the account
        async with aiohttp.ClientSession() as http, http.post(
                fake.rest_url + "/fake/transfers", json={"currency": "USD", "amount": "2500"}) as r:
            assert r.status == 200 and (await r.json())["balance"] == "12500"
        await wait_for(lambda: pf.contributed_exact != 0, "the deposit to be booked")
        assert pf.contributed_exact == Decimal("2500")
        assert pf.cash_exact == fake.balances["USD"]
        assert [(c.amount, c.source, c.applied) for c in changes] == [(2500.0, "account", True)]
        # the open BUY was cancelled for re-sizing and the next one is sized from the new cash
        assert "funding: deposit of 2,500.00, re-sized" in first.history[-1].reason
        await bars(2)
        await wait_for(lambda: any(o.id != first.id for o in buys(list(engine.orders.open.values()))),
                       "the re-sized BUY")
        second = next(o for o in buys(list(engine.orders.open.values())) if o.id != first.id)
        assert second.size > first.size * 1.15  # 0.95 × 12,500 instead of 0.95 × 10,000 (prices moved < 5 %)

        # a withdrawal above the run's free cash (its BUY commits 95 % of the cash): reported, nothing booked
        position, cash = pf.position_exact, pf.cash_exact
        fake.transfer("USD", "-3000")
        await wait_for(lambda: len(changes) >= 2, "the withdrawal to be seen")
        refused = changes[1]
        assert (refused.amount, refused.source, refused.applied) == (-3000.0, "account", False)
        assert "free cash" in refused.reason
        assert any("more than its free cash" in e.message for e in errors)
        assert (pf.position_exact, pf.cash_exact) == (position, cash) and pf.contributed_exact == Decimal("2500")
        assert not [o for o in engine.orders.orders.values() if o.side is Side.SELL and o.created_ts >= refused.ts]
        reads = accounts_reads()
        await wait_for(lambda: accounts_reads() >= reads + 2, "two more reads")
        assert len(changes) == 2  # reported once, not at every read
    finally:
        await engine.stop("test done")
        await asyncio.wait_for(task, 10)
        await fake.stop()
        store.close()


async def test_a_fill_not_booked_yet_or_a_passing_change_is_never_taken_for_funding(
        fake: FakeExchange, creds: Credentials) -> None:
    """What an exchange fill the engine has not booked looks like to the watch (BTC up, USD down) is
    never booked; a quote change seen on one read only is not either; a steady one is, exactly."""
    env = {"TRDR_COINBASE_REST_URL": fake.rest_url, "TRDR_COINBASE_WS_URL": fake.ws_url}
    engine = build_coinbase_engine(load_settings(env=env), live=True, store=None, preset="simple-trailing",
                                   credentials=creds)
    warnings: list[LogEvent] = []
    engine.bus.subscribe("log.warning", lambda _t, e: warnings.append(e))
    executor = engine.executor
    assert isinstance(executor, CoinbaseExecutor)
    watch = AccountWatch(engine, executor, interval_s=60.0)
    pf = engine.portfolio
    try:
        assert await watch.check() is None  # the baseline
        # an unbooked fill: 0.1 BTC bought for 900 USD at the exchange, not in the ledger
        fake.balances["BTC"] += Decimal("0.1")
        fake.balances["USD"] -= Decimal("900")
        for _ in range(OUTSIDE_READS - 1):
            assert await watch.check() is None
        assert pf.contributed_exact == 0 and not warnings
        assert await watch.check() is None  # still there after OUTSIDE_READS reads: reported, re-based
        assert pf.contributed_exact == 0 and "moved outside the run's fills" in warnings[-1].message
        # a quote change on one read only (gone at the next) is not funding
        fake.balances["USD"] += Decimal("50")
        assert await watch.check() is None
        fake.balances["USD"] -= Decimal("50")
        assert await watch.check() is None and pf.contributed_exact == 0
        # a steady one is, on its second read
        fake.transfer("USD", "123.45")
        assert await watch.check() is None
        assert await watch.check() == Decimal("123.45")
        assert pf.contributed_exact == Decimal("123.45") and watch.booked == 1
        assert await watch.check() is None  # booked once
    finally:
        await executor.rest.close()
        await engine.feed.stop()  # type: ignore[attr-defined]
