"""Assemble paper and live engines on Coinbase: the one place the Coinbase parts are wired together.

    engine = build_coinbase_engine(settings, live=False, store=store)   # paper: no keys needed
    engine = build_coinbase_engine(settings, live=True, store=store)    # live: credentials required

Paper = CoinbaseFeed (WebSocket, REST fallback) + SimExecutor; live = CoinbaseFeed + CoinbaseExecutor.
URLs come from `[coinbase]` (or TRDR_COINBASE_REST_URL / _WS_URL / _USER_WS_URL), so the same code runs
against Coinbase or any compatible server. The live confirmation prompt is the caller's job.
"""

from __future__ import annotations

import json

from trdr_tui.config import Settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.errors import CredentialsError, StateCorruption
from trdr_tui.core.types import Fill, Liquidity, Mode, Order, OrderStatus, OrderTransition, OrderType, Side
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.loop import Engine
from trdr_tui.engine.recovery import restore_latest
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor
from trdr_tui.exchange.coinbase_models import TransactionSummary
from trdr_tui.exchange.coinbase_rest import CoinbaseRest
from trdr_tui.exchange.credentials import Credentials, load_credentials
from trdr_tui.exchange.fees import FeeSchedule
from trdr_tui.exchange.sim_executor import SimExecutor
from trdr_tui.market.coinbase_feed import CoinbaseFeed
from trdr_tui.store.db import Store
from trdr_tui.trading.portfolio import Portfolio


def build_coinbase_engine(settings: Settings, *, live: bool, store: Store | None, bus: EventBus | None = None,
                          preset: str | None = None, credentials: Credentials | None = None,
                          run_id: str | None = None) -> Engine:
    creds = credentials or load_credentials(settings)
    if live and creds is None:
        raise CredentialsError("live trading needs Coinbase API credentials",
                               hint="set TRDR_COINBASE_API_KEY and TRDR_COINBASE_API_SECRET, or TRDR_COINBASE_KEY_FILE")
    signer = creds.signer() if creds is not None else None
    cb = settings.coinbase
    rest = CoinbaseRest(cb.rest_url, signer=signer)
    feed = CoinbaseFeed(settings.symbol, settings.timeframe, ws_url=cb.ws_url, rest=rest, bus=bus, signer=signer)
    executor = None
    if live:
        executor = CoinbaseExecutor(rest, symbol=settings.symbol, store=store, run_id=run_id,
                                    user_ws_url=cb.user_ws_url, signer=signer)
    engine = build_engine(settings, mode=Mode.LIVE if live else Mode.PAPER, feed=feed, executor=executor,
                          store=store, bus=bus, preset=preset, run_id=run_id)
    feed.bus = engine.bus  # feed health goes where the engine's listeners are
    feed.clock = engine.clock
    return engine


def fee_schedule_from_summary(summary: TransactionSummary) -> FeeSchedule:
    """The account's current maker/taker rates as the simulator's fee schedule."""
    tier = summary.fee_tier
    return FeeSchedule.flat(float(tier.taker_fee_rate), float(tier.maker_fee_rate))


async def use_account_fee_tier(engine: Engine) -> FeeSchedule | None:
    """Paper mode with keys: simulate with the account's real fee tier (invariant 6). None without keys."""
    feed = engine.feed
    rest = getattr(feed, "rest", None)
    if not isinstance(rest, CoinbaseRest) or not rest.authenticated:
        return None
    schedule = fee_schedule_from_summary(await rest.transaction_summary())
    executor = engine.executor
    if isinstance(executor, SimExecutor):
        executor.fees = schedule
        executor.volume = None  # the exchange already applied the 30-day volume when it chose the tier
    return schedule


# --- crash-only restart ---------------------------------------------------------------------------


def stored_fills(store: Store, run_id: str) -> list[Fill]:
    rows = store.cursor().execute(
        "SELECT id, order_id, client_order_id, symbol, side, price, size, fee, liquidity, epoch_us(ts) FROM fills "
        "WHERE run_id = ? ORDER BY ts, id", [run_id]).fetchall()
    return [Fill(id=r[0], order_id=r[1], client_order_id=r[2], symbol=r[3], side=Side(r[4]), price=float(r[5]),
                 size=float(r[6]), fee=float(r[7]), liquidity=Liquidity(r[8]), ts=int(r[9]) * 1000) for r in rows]


def stored_open_orders(store: Store, run_id: str, fills: list[Fill]) -> list[Order]:
    rows = store.cursor().execute(
        "SELECT o.id, o.client_order_id, o.exchange_order_id, o.symbol, o.side, o.type, o.size, o.price, o.trail, "
        "coalesce((SELECT to_status FROM order_transitions t WHERE t.order_id = o.id ORDER BY seq DESC LIMIT 1), "
        "o.status), epoch_us(o.created_at), o.metadata FROM orders o WHERE o.run_id = ?", [run_id]).fetchall()
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


async def recover_from_store(engine: Engine, executor: CoinbaseExecutor, store: Store) -> tuple[int, int]:
    """Crash-only start of a live run that was interrupted: rebuild from the store, then reconcile.

    1. the ledger is rebuilt by replaying the stored fills (write-through, so nothing booked is lost);
    2. orders stored as open are loaded with status and history from the stored transitions and their
       filled size from the stored fills; the order sequence continues after the highest stored id
       (a checkpoint's sequence can be older than the last order written);
    3. trailing orders only armed in the engine (never sent) keep their trailing state when a checkpoint
       restored it (`recovery.restore_latest` first), else they are cancelled and the policy re-arms;
    4. `CoinbaseExecutor.reconcile` asks the exchange about the rest; its reports go through the order
       manager (state machine, ledger, store) like any other report.

    Returns (orders reconciled, reports applied). Call before `engine.run()`, after `restore_latest` if
    the policy and trailing book should come back too. The store's rows win over the checkpoint's (the
    checkpoint can be up to an interval older than the last order or fill written).
    """
    run_id = engine.run_id
    fills = stored_fills(store, run_id)
    pf = Portfolio(engine.symbol, engine.portfolio.initial_cash)
    for f in fills:
        pf.apply_fill(f)
    engine.portfolio.__dict__.update(pf.__dict__)
    seqs = [int(r[0].rsplit("-", 1)[1]) for r in store.cursor().execute(
        "SELECT id FROM orders WHERE run_id = ?", [run_id]).fetchall()]
    engine.orders._seq = max(seqs, default=0)
    db_open = {o.id: o for o in stored_open_orders(store, run_id, fills)}
    om = engine.orders
    # a checkpoint restored first may list orders the store has closed since: the store wins
    for oid in [oid for oid in om.open if oid not in db_open]:
        order = om.open.pop(oid)
        st = om.trailing_state(order)
        if st is not None:
            om.trailing.remove(st)
    to_reconcile: list[Order] = []
    for o in db_open.values():
        restored = om.orders.get(o.id)
        st = om.trailing_state(restored) if restored is not None else None
        if st is not None:
            if "trigger" not in o.metadata:
                continue  # still armed, with its trailing anchor from the checkpoint
            om.trailing.remove(st)  # it fired after the checkpoint: the store's row is the truth
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


def resume_live_run(engine: Engine, store: Store) -> bool:
    """Prepare a fresh live engine to resume its interrupted run: the newest checkpoint now, and the
    store-first recovery (`recover_from_store`) when `engine.run()` starts. False when the run has no
    checkpoint (the recovery still runs: the store alone is enough to rebuild the ledger and orders)."""
    executor = engine.executor
    if not isinstance(executor, CoinbaseExecutor):
        raise StateCorruption("only a live Coinbase engine can resume a live run")
    restored = restore_latest(engine, store, engine.run_id)

    async def recover() -> None:
        await executor.start()
        checked, applied = await recover_from_store(engine, executor, store)
        engine.log("info", f"resumed live run {engine.run_id}: {checked} order(s) reconciled, "
                           f"{applied} report(s) applied")

    engine.set_recovery(recover)
    return restored


def latest_live_run(store: Store) -> str | None:
    """The run id of the newest live run that still has orders open in the store (the one to resume
    after a crash: pass it to `build_coinbase_engine(run_id=...)`, then `restore_latest` and
    `recover_from_store` before `engine.run()`)."""
    row = store.cursor().execute(
        "SELECT run_id FROM orders WHERE mode = 'live' AND status IN ('PENDING', 'SUBMITTED', 'PARTIAL') "
        "ORDER BY created_at DESC LIMIT 1").fetchone()
    return str(row[0]) if row else None
