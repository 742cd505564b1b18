"""Assemble paper and live engines on Coinbase: the one place the Coinbase parts are wired together.

    engine = build_coinbase_engine(settings, live=False, store=store)   # paper: no keys needed
    engine = build_coinbase_engine(settings, live=True, store=store)    # live: credentials required

    # resume a live run after a crash (`store.orders.latest_live_run` names it)
    engine = build_coinbase_engine(settings, live=True, store=store, run_id=latest_live_run(store))
    resume_live_run(engine, store)

Paper = CoinbaseFeed (WebSocket, REST fallback) + SimExecutor; live = CoinbaseFeed + CoinbaseExecutor.
URLs come from `[coinbase]` (or TRDR_COINBASE_REST_URL / _WS_URL / _USER_WS_URL), so the same code runs
against Coinbase or any compatible server. The live confirmation prompt is the caller's job.
"""

from __future__ import annotations

from trdr_tui.config import Settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.errors import CredentialsError, StateCorruption
from trdr_tui.core.opevents import OperatorEvents
from trdr_tui.core.types import Mode
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.loop import Engine
from trdr_tui.engine.recovery import check_balances, check_unknown_orders, recover_from_store, restore_latest
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor
from trdr_tui.exchange.coinbase_feed import CoinbaseFeed
from trdr_tui.exchange.coinbase_models import TransactionSummary
from trdr_tui.exchange.coinbase_rest import CoinbaseRest
from trdr_tui.exchange.credentials import Credentials, load_credentials
from trdr_tui.exchange.fees import FeeSchedule
from trdr_tui.exchange.sim_executor import SimExecutor
from trdr_tui.store.db import Store
from trdr_tui.store.orders import latest_live_run


def build_coinbase_engine(settings: Settings, *, live: bool, store: Store | None, bus: EventBus | None = None,
                          preset: str | None = None, credentials: Credentials | None = None,
                          run_id: str | None = None) -> Engine:
    creds = credentials or load_credentials(settings)
    if live and creds is None:
        raise CredentialsError("live trading needs Coinbase API credentials",
                               hint="set TRDR_COINBASE_API_KEY and TRDR_COINBASE_API_SECRET, or TRDR_COINBASE_KEY_FILE")
    signer = creds.signer() if creds is not None else None
    cb = settings.coinbase
    events = OperatorEvents()  # retries, rejections, recoveries, auth failures: on the engine's bus below
    rest = CoinbaseRest(cb.rest_url, signer=signer, events=events,
                        key_label=f"{creds.key_name} from {creds.source}" if creds is not None else "")
    feed = CoinbaseFeed(settings.symbol, settings.timeframe, ws_url=cb.ws_url, rest=rest, bus=bus, signer=signer)
    executor = None
    if live:
        executor = CoinbaseExecutor(rest, symbol=settings.symbol, store=store, run_id=run_id,
                                    user_ws_url=cb.user_ws_url, signer=signer)
    engine = build_engine(settings, mode=Mode.LIVE if live else Mode.PAPER, feed=feed, executor=executor,
                          store=store, bus=bus, preset=preset, run_id=run_id)
    feed.bus = engine.bus  # feed health goes where the engine's listeners are
    feed.clock = engine.clock
    events.bind(engine.bus, engine.clock)

    async def release() -> None:  # the feed's and the executor's tasks, then the HTTP session they share
        if executor is not None:
            await executor.stop()
        await feed.stop()
        await rest.close()
        events.flush()

    engine.on_close(release)
    if executor is not None:
        live_executor = executor

        async def start_live() -> None:  # a new live run: its ledger against the account first
            await reconcile_account(engine, live_executor, store)

        engine.set_recovery(start_live)
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


def resume_live_run(engine: Engine, store: Store) -> bool:
    """Prepare a fresh live engine to resume its interrupted run: the newest checkpoint now, and the
    store-first recovery (`engine.recovery.recover_from_store`) when `engine.run()` starts. False when the run has no
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
        # what the exchange already did for the orders followed (fills of an order whose answer was lost
        # in the crash) is booked before the ledger is compared with the account's balances
        await executor.retry_failed()
        await executor.sync_all()
        await executor.settle()
        await reconcile_account(engine, executor, store)

    engine.set_recovery(recover)
    return restored


def build_coinbase_run(settings: Settings, *, live: bool, store: Store, preset: str | None = None
                       ) -> tuple[Engine, bool]:
    """The engine `trdr` runs on Coinbase market data: paper (simulated fills) or live (real orders).

    Live is crash-only: when the store holds an interrupted live run (`store.orders.latest_live_run`), that
    run is resumed (`resume_live_run`: ledger and orders rebuilt from the store, then reconciled with the
    exchange by client_order_id) instead of starting a new one beside it. Returns (engine, resumed).
    """
    run_id = latest_live_run(store) if live else None
    engine = build_coinbase_engine(settings, live=live, store=store, run_id=run_id, preset=preset)
    if run_id is None:
        return engine, False
    resume_live_run(engine, store)
    return engine, True


async def reconcile_account(engine: Engine, executor: CoinbaseExecutor, store: Store | None) -> list[str]:
    """A live start, new or resumed: the exchange must not know orders of this run that the store
    does not (`recovery.check_unknown_orders`), and the account's balances must cover the ledger
    (`recovery.check_balances`; a surplus is reported, a shortfall refuses). Returns the differences
    reported. Raises StateCorruption (E007) before anything is sent."""
    rest = executor.rest
    if store is not None:
        prefix = f"trdr-{engine.run_id}-"
        orders = await rest.list_orders(product_ids=[engine.symbol])
        check_unknown_orders(store, engine.run_id, [o.client_order_id for o in orders
                                                    if o.client_order_id.startswith(prefix)])
    base_ccy, quote_ccy = engine.symbol.split("-", 1)
    totals = {base_ccy: 0.0, quote_ccy: 0.0}
    for acct in await rest.list_accounts():
        if acct.currency in totals:
            totals[acct.currency] += float(acct.available_balance.value) + (
                float(acct.hold.value) if acct.hold is not None else 0.0)
    notes = check_balances(engine, totals[base_ccy], totals[quote_ccy])
    engine.log("info", f"ledger of run {engine.run_id} reconciled with the account's balances",
               base=totals[base_ccy], quote=totals[quote_ccy])
    return notes
