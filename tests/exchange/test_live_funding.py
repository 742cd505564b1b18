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


async def test_live_engine_books_a_deposit_and_a_withdrawal_beyond_the_free_cash_from_the_account(
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
    warnings: list[LogEvent] = []
    engine.bus.subscribe("funding.BTC-USD", lambda _t, e: changes.append(e))
    engine.bus.subscribe("log.error", lambda _t, e: errors.append(e))
    engine.bus.subscribe("log.warning", lambda _t, e: warnings.append(e))
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

        # a withdrawal above the run's free cash (its BUY commits 95 % of the cash): the money has left the
        # account, so the run's capital shrank: booked, the open BUY cancelled to be re-sized, a warning
        position = pf.position_exact
        open_buys = buys(list(engine.orders.open.values()))
        assert open_buys
        fake.transfer("USD", "-3000")
        await wait_for(lambda: len(changes) >= 2, "the withdrawal to be seen")
        shrank = changes[1]
        assert (shrank.amount, shrank.source, shrank.applied) == (-3000.0, "account", True)
        assert any("exceeded the run's free cash: its capital shrank" in w.message for w in warnings)
        assert pf.position_exact == position and pf.contributed_exact == Decimal("-500")
        assert pf.cash_exact == fake.balances["USD"]
        assert all("funding: withdrawal of 3,000.00, re-sized" in o.history[-1].reason for o in open_buys)
        assert not [o for o in engine.orders.orders.values() if o.side is Side.SELL and o.created_ts >= shrank.ts]
        reads = accounts_reads()
        await wait_for(lambda: accounts_reads() >= reads + 2, "two more reads")
        assert len(changes) == 2  # booked once, not at every read
        assert not errors
    finally:
        await engine.stop("test done")
        await asyncio.wait_for(task, 10)
        await fake.stop()
        store.close()


async def test_a_passing_change_is_never_funding_coins_moved_are_booked_in_kind_and_a_withdrawal_beyond_the_cash(
        fake: FakeExchange, creds: Credentials) -> None:
    """What an exchange fill the engine has not booked looks like to the watch (BTC up, USD down) is not
    booked while it may still be one; when it stays for OUTSIDE_READS reads with no fill booked, it is
    coins moved outside the run: booked as a contribution in kind at the mark (never P&L), with the USD
    change as cash funding. A quote change seen on one read only is not funding; a steady one is,
    exactly. A withdrawal beyond the ledger's cash books all of the cash and re-bases the rest."""
    env = {"TRDR_COINBASE_REST_URL": fake.rest_url, "TRDR_COINBASE_WS_URL": fake.ws_url}
    engine = build_coinbase_engine(load_settings(env=env), live=True, store=None, preset="simple-trailing",
                                   credentials=creds)
    warnings: list[LogEvent] = []
    engine.bus.subscribe("log.warning", lambda _t, e: warnings.append(e))
    executor = engine.executor
    assert isinstance(executor, CoinbaseExecutor)
    watch = AccountWatch(engine, executor, interval_s=60.0)
    pf = engine.portfolio
    engine.last_price = pf.last_price = 9_000.0
    try:
        fake.transfer("USD", "5000")  # money of the user's beside the run, before the baseline
        assert await watch.check() is None  # the baseline
        # 0.1 BTC in and 900 USD out at the exchange, not in the ledger: a fill listed late looks the same
        fake.balances["BTC"] += Decimal("0.1")
        fake.balances["USD"] -= Decimal("900")
        for _ in range(OUTSIDE_READS - 1):
            assert await watch.check() is None
        assert pf.contributed_exact == 0 and not warnings
        # still there after OUTSIDE_READS reads with no fill booked: coins moved outside the run
        assert await watch.check() == Decimal("900") - Decimal("900")  # 0.1 BTC at 9,000 in, 900 USD out
        assert pf.position_exact == Decimal("0.1") and pf.realized_exact == 0
        assert [(q, m) for _, q, m in pf.transfers] == [(Decimal("0.1"), Decimal("9000.0"))]
        assert pf.contributed_exact == 0 and pf.cash_exact == Decimal("10000") - Decimal("900")
        assert "contribution in kind" in warnings[-1].message
        assert await watch.check() is None  # booked once
        # coins sent out: the oldest lots leave at the mark
        engine.last_price = 9_500.0
        fake.balances["BTC"] -= Decimal("0.04")
        for _ in range(OUTSIDE_READS):
            booked = await watch.check()
        assert booked == Decimal("-380") and pf.position_exact == Decimal("0.06")
        assert pf.realized_exact == Decimal("20")  # 0.04 × (9,500 − 9,000): gained while the run held them
        assert pf.contributed_exact == Decimal("-380")
        # a quote change on one read only (gone at the next) is not funding
        fake.balances["USD"] += Decimal("50")
        assert await watch.check() is None
        fake.balances["USD"] -= Decimal("50")
        assert await watch.check() is None and pf.contributed_exact == Decimal("-380")
        # a steady one is, on its second read
        fake.transfer("USD", "123.45")
        assert await watch.check() is None
        assert await watch.check() == Decimal("123.45")
        assert pf.contributed_exact == Decimal("-256.55")
        assert await watch.check() is None  # booked once
        # a withdrawal beyond the ledger's cash: all of the cash is booked, the rest was the user's beside it
        cash = pf.cash_exact
        fake.transfer("USD", str(-(cash + Decimal("1000"))))
        assert await watch.check() is None
        assert await watch.check() == -cash
        assert pf.cash_exact == 0 and pf.position_exact == Decimal("0.06")
        assert "the rest was not the run's" in warnings[-1].message
        assert await watch.check() is None  # the rest is re-based, not booked again
        assert watch.booked == 5  # coins in and the cash with them, coins out, a deposit, a withdrawal
    finally:
        await executor.rest.close()
        await engine.feed.stop()  # type: ignore[attr-defined]
