"""A fill the exchange made beyond the ledger (docs/trading.md, the ledger): booked as a contribution from
the account, reported to the operator as a warning event at once, and again by the reconciliation of
every restart. Real parts: the fake exchange, the real executor and order manager, DuckDB on a temp file."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.config import load_settings
from trdr_tui.core.events import LogEvent
from trdr_tui.core.types import Order, OrderStatus, OrderTransition, OrderType, Side
from trdr_tui.engine.coinbase import build_coinbase_engine, resume_live_run
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor
from trdr_tui.exchange.credentials import Credentials
from trdr_tui.store import Store
from trdr_tui.store.orders import stored_fills

RUN = "od-run"


async def test_a_sell_beyond_the_ledger_is_booked_reported_and_reconciled(
        fake: FakeExchange, creds: Credentials, tmp_path: Path) -> None:
    env = {"TRDR_COINBASE_REST_URL": fake.rest_url, "TRDR_COINBASE_WS_URL": fake.ws_url}
    settings = load_settings(env=env)
    db = tmp_path / "od.duckdb"
    store = Store(db)
    engine = build_coinbase_engine(settings, live=True, store=store, preset="simple-trailing", credentials=creds,
                                   run_id=RUN)
    seen: list[LogEvent] = []
    engine.bus.subscribe("log.*", lambda _t, e: seen.append(e))
    om, pf = engine.orders, engine.portfolio
    executor = engine.executor
    assert isinstance(executor, CoinbaseExecutor)
    try:
        buy = om.place_market(Side.BUY, 0.01, price=float(fake.price))
        await om.settle()
        assert buy.status is OrderStatus.FILLED and pf.position_exact == Decimal("0.01")
        fake.transfer("BTC", "0.02")  # coins of the user's beside the run
        # the ledger is behind the account: an order of the run that sells 0.03 reaches the exchange
        # (written ahead like every order), which holds the coins and fills it
        now = engine.clock.now_ns()
        sell = Order(id=f"{RUN}-2", client_order_id=f"trdr-{RUN}-2", symbol="BTC-USD", side=Side.SELL,
                     type=OrderType.MARKET, size=0.03, created_ts=now, status=OrderStatus.SUBMITTED,
                     history=[OrderTransition(now, OrderStatus.PENDING, OrderStatus.SUBMITTED, "sent")])
        assert om.repo is not None
        om.repo.insert_order(sell)
        om.restore_sequence(2)
        om.adopt(sell)
        await executor.submit(sell)
        await om.settle()
        assert sell.status is OrderStatus.FILLED  # refused as E002 (REJECTED) before: the sale was lost
        assert pf.position_exact == 0 and fake.balances["BTC"] == 0
        [od] = pf.overdrafts
        assert (od.side, od.base, od.order_id) == (Side.SELL, Decimal("0.02"), sell.id)
        assert pf.cash_exact == fake.balances["USD"]  # the proceeds are in the ledger, to the cent and beyond
        # the operator hears of it at once: a warning naming the order, the amounts and what to check
        [ev] = [e for e in seen if e.fields.get("event") == f"ledger.overdraft:{sell.id}"]
        assert ev.level == "warning" and ev.source == "ledger"
        assert ev.fields["client_order_id"] == sell.client_order_id and ev.fields["lacked_base"] == 0.02
        assert "sold 0.02 BTC more than the ledger held" in ev.message and "Check:" in ev.message
        assert len(stored_fills(store, RUN)) == 2
    finally:
        await executor.stop()
        await engine.feed.stop()  # type: ignore[attr-defined]
        await executor.rest.close()
        store.close()

    # a restart rebuilds the ledger from the stored fills and its reconciliation reports the booking again
    store = Store(db)
    engine2 = build_coinbase_engine(settings, live=True, store=store, preset="simple-trailing", credentials=creds,
                                    run_id=RUN)
    warnings: list[LogEvent] = []
    engine2.bus.subscribe("log.warning", lambda _t, e: warnings.append(e))
    resume_live_run(engine2, store)
    task = asyncio.create_task(engine2.run())
    try:
        for _ in range(500):
            if any("more than the ledger held" in w.message for w in warnings) or task.done():
                break
            await asyncio.sleep(0.01)
        notes = [w.message for w in warnings if "more than the ledger held" in w.message]
        assert notes and f"run {RUN}: SELL fill" in notes[0] and "Check:" in notes[0]
        assert engine2.portfolio.to_state()["overdrafts"] == pf.to_state()["overdrafts"]
    finally:
        await engine2.stop("test done")
        await asyncio.wait_for(task, 10)
        store.close()
