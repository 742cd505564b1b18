"""A live trdr process for the kill test: engine + CoinbaseFeed + CoinbaseExecutor against a fake exchange.

Run as `python -m tests.exchange.kill_driver --db ... --rest ... --ws ... --user-ws ...` with
TRDR_COINBASE_KEY_FILE set. At start it recovers crash-only from the store, then trades until killed
(or until `--run-seconds`, then it stops cleanly):

1. the ledger is rebuilt by replaying the stored fills (write-through, so nothing booked is lost);
2. orders stored as open are loaded with their status and history from the stored transitions and
   their filled size from the stored fills; the order sequence continues after the highest stored id;
3. trailing orders that were only armed in the engine (never sent) are cancelled — the policy re-arms;
4. `CoinbaseExecutor.reconcile` asks the exchange about the rest; its reports go through the order
   manager (state machine, ledger, store) like any other report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from trdr_tui.config import load_settings
from trdr_tui.core.types import Fill, Liquidity, Order, OrderStatus, OrderTransition, OrderType, Side
from trdr_tui.engine import Engine
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor
from trdr_tui.exchange.coinbase_rest import CoinbaseRest, RetryPolicy
from trdr_tui.exchange.credentials import require_credentials
from trdr_tui.market.coinbase_feed import CoinbaseFeed
from trdr_tui.runtime import build_engine
from trdr_tui.store import Store
from trdr_tui.trading.portfolio import Portfolio

RUN_ID = "kill-run"


def stored_fills(store: Store) -> list[Fill]:
    rows = store.cursor().execute(
        "SELECT id, order_id, client_order_id, symbol, side, price, size, fee, liquidity, epoch_us(ts) FROM fills "
        "WHERE run_id = ? ORDER BY ts, id", [RUN_ID]).fetchall()
    return [Fill(id=r[0], order_id=r[1], client_order_id=r[2], symbol=r[3], side=Side(r[4]), price=float(r[5]),
                 size=float(r[6]), fee=float(r[7]), liquidity=Liquidity(r[8]), ts=int(r[9]) * 1000) for r in rows]


def open_orders(store: Store, fills: list[Fill]) -> list[Order]:
    rows = store.cursor().execute(
        "SELECT o.id, o.client_order_id, o.exchange_order_id, o.symbol, o.side, o.type, o.size, o.price, o.trail, "
        "coalesce((SELECT to_status FROM order_transitions t WHERE t.order_id = o.id ORDER BY seq DESC LIMIT 1), "
        "o.status), epoch_us(o.created_at), o.metadata FROM orders o WHERE o.run_id = ?", [RUN_ID]).fetchall()
    out: list[Order] = []
    for r in rows:
        status = OrderStatus(r[9])
        if status not in (OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.PARTIAL):
            continue
        mine = [f for f in fills if f.order_id == r[0]]
        filled = sum(f.size for f in mine)
        order = Order(id=r[0], client_order_id=r[1], exchange_order_id=r[2], symbol=r[3], side=Side(r[4]),
                      type=OrderType(r[5]), size=float(r[6]), price=float(r[7]) if r[7] is not None else None,
                      trail=r[8], status=status, created_ts=int(r[10]) * 1000, metadata=json.loads(r[11] or "{}"),
                      filled_size=filled, fees=sum(f.fee for f in mine),
                      avg_fill_price=sum(f.price * f.size for f in mine) / filled if filled else 0.0)
        order.history = [OrderTransition(int(t[0]) * 1000, OrderStatus(t[1]), OrderStatus(t[2]), t[3] or "")
                         for t in store.cursor().execute(
                             "SELECT epoch_us(ts), from_status, to_status, reason FROM order_transitions "
                             "WHERE order_id = ? ORDER BY seq", [order.id]).fetchall()]
        out.append(order)
    return out


async def recover(engine: Engine, executor: CoinbaseExecutor, store: Store) -> tuple[int, int]:
    fills = stored_fills(store)
    pf = Portfolio(engine.symbol, engine.portfolio.initial_cash)
    for f in fills:
        pf.apply_fill(f)
    engine.portfolio.__dict__.update(pf.__dict__)
    seqs = [int(r[0].rsplit("-", 1)[1]) for r in store.cursor().execute(
        "SELECT id FROM orders WHERE run_id = ?", [RUN_ID]).fetchall()]
    engine.orders._seq = max(seqs, default=0)
    orders = open_orders(store, fills)
    om = engine.orders
    to_reconcile: list[Order] = []
    for o in orders:
        om.orders[o.id] = o
        om.open[o.id] = o
        if o.type is OrderType.TRAILING and "trigger" not in o.metadata:
            om._finish(o, OrderStatus.CANCELLED, "armed only in the engine; re-armed after restart")
        else:
            to_reconcile.append(o)
    reports = await executor.reconcile(to_reconcile)
    for r in reports:
        om.on_report(r)
    return len(to_reconcile), len(reports)


async def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--rest", required=True)
    p.add_argument("--ws", required=True)
    p.add_argument("--user-ws", required=True)
    p.add_argument("--run-seconds", type=float, default=None)
    args = p.parse_args(argv)
    settings = load_settings(env={})
    creds = require_credentials(settings)
    store = Store(args.db)
    fast = RetryPolicy(initial_s=0.02, cap_s=0.2)
    rest = CoinbaseRest(args.rest, signer=creds.signer(), retry=fast, timeout_s=1.0)
    feed = CoinbaseFeed(settings.symbol, "1h", ws_url=args.ws, rest=rest, signer=creds.signer(), reconnect=fast,
                        close_grace_s=0, poll_interval_s=0.5)
    executor = CoinbaseExecutor(rest, symbol=settings.symbol, store=store, run_id=RUN_ID, user_ws_url=args.user_ws,
                                signer=creds.signer(), retry=fast, poll_interval_s=0.2, recovery_interval_s=0.5,
                                ws_reconnect=fast)
    engine = build_engine(settings, mode="live", feed=feed, executor=executor, store=store, run_id=RUN_ID,
                          preset="simple-trailing", checkpoint_interval_s=1.0)
    await executor.start()
    checked, reported = await recover(engine, executor, store)
    print(f"READY reconciled={checked} reports={reported}", flush=True)
    task = asyncio.create_task(engine.run())
    if args.run_seconds is None:
        await task
        return 0
    await asyncio.sleep(args.run_seconds)
    await engine.stop("clean exit")
    await task
    await engine.orders.settle()
    for _ in range(50):  # let every order still tracked reach a final state
        await executor.retry_failed()
        for eid in list(executor._orders):
            await executor.sync_order(eid)
        await executor.settle()
        if not executor._orders and not executor.outbox.failed():
            break
        await asyncio.sleep(0.1)
    await feed.stop()
    await executor.stop()
    await rest.close()
    store.close()
    print("CLEAN EXIT", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
