"""Assemble paper and live engines on Coinbase: the one place the Coinbase parts are wired together.

    engine = build_coinbase_engine(settings, live=False, store=store)   # paper: no keys needed
    engine = build_coinbase_engine(settings, live=True, store=store)    # live: credentials required

    # resume a live run after a crash (`store.orders.latest_live_run` names it)
    engine = build_coinbase_engine(settings, live=True, store=store, run_id=latest_live_run(store))
    resume_live_run(engine, store)

Paper = CoinbaseFeed (WebSocket, REST fallback) + SimExecutor; live = CoinbaseFeed + CoinbaseExecutor.
With the correlation agent enabled (and no preset), the feed also subscribes to `[agents]
reference_symbol` on the same socket; its closed bars reach the agent at once and the store
(`agents.sources.LiveCandles`), so a restart and `trdr data list` see them.
A new run (no `run_id`) starts with the history its rules need (`engine.warmup`): the last
`history_bars` closed bars, backfilled into the store and fed through the engine before the first live
bar, placing no orders. A live run also reads the account's balances every `[funding]
account_check_seconds` (`AccountWatch`) and books a deposit, a withdrawal or coins sent in or out that
it finds there (PRD §3.3.3).
URLs come from `[coinbase]` (or TRDR_COINBASE_REST_URL / _WS_URL / _USER_WS_URL), so the same code runs
against Coinbase or any compatible server. The live confirmation prompt is the caller's job.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal

from trdr_tui.agents.sources import LiveCandles
from trdr_tui.config import Settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.errors import CredentialsError, StateCorruption, TrdrError
from trdr_tui.core.opevents import OperatorEvents
from trdr_tui.core.types import Mode, Order
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.loop import Engine
from trdr_tui.engine.recovery import check_balances, check_unknown_orders, recover_from_store, restore_latest
from trdr_tui.engine.warmup import history_bars, warm_start
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor
from trdr_tui.exchange.coinbase_feed import CoinbaseFeed
from trdr_tui.exchange.coinbase_models import TransactionSummary
from trdr_tui.exchange.coinbase_rest import CoinbaseRest
from trdr_tui.exchange.credentials import Credentials, load_credentials
from trdr_tui.exchange.fees import FeeSchedule
from trdr_tui.exchange.sim_executor import SimExecutor
from trdr_tui.store.db import Store
from trdr_tui.store.orders import POSITION_EPSILON, latest_live_run
from trdr_tui.trading.portfolio import Overdraft, overdraft_note
from trdr_tui.trading.sizing import to_decimal


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
    reference = reference_candles(settings, store, preset)
    feed = CoinbaseFeed(settings.symbol, settings.timeframe, ws_url=cb.ws_url, rest=rest, bus=bus, signer=signer,
                        references=[settings.agents.reference_symbol] if reference is not None else [],
                        on_reference=reference.add_bar if reference is not None else None)
    executor = None
    if live:
        executor = CoinbaseExecutor(rest, symbol=settings.symbol, store=store, run_id=run_id,
                                    user_ws_url=cb.user_ws_url, signer=signer)
    engine = build_engine(settings, mode=Mode.LIVE if live else Mode.PAPER, feed=feed, executor=executor,
                          store=store, bus=bus, preset=preset, run_id=run_id, candle_source=reference)
    feed.bus = engine.bus  # feed health goes where the engine's listeners are
    feed.clock = engine.clock
    if run_id is None:  # a resumed run's agents and grid come back from its checkpoint
        feed.history = warm_start(engine, rest, store, history_bars(settings, preset))
    events.bind(engine.bus, engine.clock)
    engine.orders.overdraft_listeners.append(
        lambda order, fill, od: report_overdraft(events, engine.symbol, order, od))

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
            watch_account(engine, live_executor)

        engine.set_recovery(start_live)
    return engine


def report_overdraft(events: OperatorEvents, symbol: str, order: Order, od: Overdraft) -> None:
    """A fill the exchange made beyond the ledger was booked (`Portfolio.overdrafts`): a warning operator
    event naming the order, the amounts and what to check."""
    what, check = overdraft_note(symbol, od)
    events.emit(f"ledger.overdraft:{order.id}", "warning", "ledger", f"{what}. Check: {check}",
                order_id=order.id, client_order_id=order.client_order_id, fill_id=od.fill_id, side=od.side.value,
                order_size=order.size, lacked_base=float(od.base), lacked_quote=float(od.quote),
                contributed=float(od.value), check=check)


def reference_candles(settings: Settings, store: Store | None, preset: str | None) -> LiveCandles | None:
    """Where the correlation agent reads its reference product in paper/live: stored bars with the
    feed's live bars on top; None when no agent needs one (a preset, or `correlation` not enabled)."""
    if preset is not None or "correlation" not in settings.agents.enabled:
        return None
    return LiveCandles(store, timeframe=settings.timeframe)


def watch_account(engine: Engine, executor: CoinbaseExecutor) -> AccountWatch:
    """Start a live run's `AccountWatch` (once its ledger is reconciled with the account); it stops
    when the run ends."""
    watch = AccountWatch(engine, executor, interval_s=engine.settings.funding.account_check_seconds)
    watch.start()
    engine.on_close(watch.stop)
    return watch


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
        watch_account(engine, executor)

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


async def account_totals(rest: CoinbaseRest, symbol: str) -> tuple[Decimal, Decimal]:
    """What the account holds of `symbol`'s base and quote currencies (available + on hold, exact)."""
    base_ccy, quote_ccy = symbol.split("-", 1)
    totals = {base_ccy: Decimal(0), quote_ccy: Decimal(0)}
    for acct in await rest.list_accounts():
        if acct.currency in totals:
            totals[acct.currency] += acct.available_balance.value + (
                acct.hold.value if acct.hold is not None else Decimal(0))
    return totals[base_ccy], totals[quote_ccy]


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
    base, quote = await account_totals(rest, engine.symbol)
    notes = check_balances(engine, float(base), float(quote))
    engine.log("info", f"ledger of run {engine.run_id} reconciled with the account's balances",
               base=float(base), quote=float(quote))
    return notes


QUOTE_TOLERANCE = Decimal("0.01")  # quote currency: smaller differences are rounding, not money moved
BASE_TOLERANCE = Decimal(repr(POSITION_EPSILON))
STEADY_READS = 2  # a quote change must read the same this many times in a row, no fill booked between
OUTSIDE_READS = 3  # a base change (no funding: a fill not listed yet, or coins moved) is re-based after this many


class AccountWatch:
    """Deposits and withdrawals in a live run, read from the account (PRD §3.3.3).

    Each read (`check`, every `interval_s` seconds) first books what the exchange already did for the
    orders followed (`executor.sync_all`, then `settle`), then compares the account's balances with the
    ledger: residual = account total (available + hold) − ledger, for base and quote. The first read is
    the baseline (money of the user's beside the run stays there, as at the start). Later:

    * a quote residual that moved by more than 0.01 while the base residual did not, and reads the same
      on `STEADY_READS` reads in a row with no fill booked between them, is a deposit (> 0) or a
      withdrawal (< 0): booked exactly through `engine.fund(source="account")` (ledger, grid resize,
      log, `funding.<symbol>` event, a `funding` checkpoint in the journal);
    * a fill the exchange made that the engine has not booked yet moves the base residual too, so it is
      never taken for funding; a base residual that stays moved for `OUTSIDE_READS` reads with no fill
      booked between them is coins sent in or out: booked as a contribution in kind valued at the last
      price (`engine.transfer`; coins out beyond the position were not the run's), never as P&L; a
      quote change seen with it (coins sold or bought outside the run) is booked as cash funding;
    * a withdrawal larger than the run's free cash already left the account (the exchange balance is
      the truth): the run's capital shrank. The open BUYs are cancelled and re-sized, and the ledger's
      cash books up to all of it (`engine.fund(at_exchange=True)`, a warning says how much); what the
      cash did not hold was money of the user's beside the run and is re-based. trdr never sells a
      position to pay it.

    Residuals count what `Portfolio.overdrafts` booked as contributions from the account (a fill the
    exchange made beyond the ledger), so such a fill is not taken for a withdrawal.

    Read failures are logged and the next read tries again. `checks` counts reads, `booked` the
    changes booked."""

    def __init__(self, engine: Engine, executor: CoinbaseExecutor, *, interval_s: float) -> None:
        self.engine = engine
        self.executor = executor
        self.interval_s = interval_s
        self.baseline: tuple[Decimal, Decimal] | None = None  # (base, quote) residuals
        self.checks = 0
        self.booked = 0
        self._seen: tuple[Decimal, Decimal, int] | None = None  # last differing residuals and fills booked then
        self._times = 0  # how many reads in a row saw `_seen`
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="account-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except TrdrError as exc:
                self.engine.log("warning", f"reading the account's balances failed: {exc.message}")
            await asyncio.sleep(self.interval_s)

    async def residuals(self) -> tuple[Decimal, Decimal]:
        """(base, quote): what the account holds beyond the ledger, after booking the fills listed."""
        await self.executor.sync_all()
        await self.executor.settle()
        await self.engine.orders.settle()
        base, quote = await account_totals(self.executor.rest, self.engine.symbol)
        pf = self.engine.portfolio
        covered_base = sum((o.base for o in pf.overdrafts), Decimal(0))
        covered_quote = sum((o.quote for o in pf.overdrafts), Decimal(0))
        return base - pf.position_exact + covered_base, quote - pf.cash_exact + covered_quote

    async def check(self) -> Decimal | None:
        """One read. Returns the amount booked (quote currency), or None."""
        self.checks += 1
        base_r, quote_r = await self.residuals()
        if self.baseline is None:
            self.baseline = (base_r, quote_r)
            return None
        d_base, d_quote = base_r - self.baseline[0], quote_r - self.baseline[1]
        if abs(d_base) <= BASE_TOLERANCE and abs(d_quote) <= QUOTE_TOLERANCE:
            self._seen, self._times = None, 0
            return None
        seen = (base_r, quote_r, len(self.engine.portfolio.fills))
        self._times = self._times + 1 if seen == self._seen else 1
        self._seen = seen
        if abs(d_base) > BASE_TOLERANCE:
            if self._times >= OUTSIDE_READS:
                return self._transfer(d_base, d_quote)
            return None
        if self._times < STEADY_READS:
            return None
        self._seen, self._times = None, 0
        return self._fund(d_quote)

    def _fund(self, d_quote: Decimal) -> Decimal:
        """Book a steady quote change as funding (a withdrawal beyond the free cash up to the ledger's
        cash); the part not booked is re-based. Returns the amount booked."""
        assert self.baseline is not None
        pf = self.engine.portfolio
        cash = pf.cash_exact
        self.engine.fund(d_quote, source="account", at_exchange=True)
        booked = pf.cash_exact - cash
        self.baseline = (self.baseline[0], self.baseline[1] + d_quote - booked)
        self.booked += 1
        return booked

    def _transfer(self, d_base: Decimal, d_quote: Decimal) -> Decimal | None:
        """Coins moved outside the run's fills, steady for `OUTSIDE_READS` reads: booked in kind at the
        mark (and a quote change with it as cash funding); the part not booked is re-based. Returns the
        quote value booked, or None when nothing was."""
        assert self.baseline is not None
        engine = self.engine
        base_ccy = engine.symbol.split("-", 1)[0]
        try:
            result = engine.transfer(d_base)
        except StateCorruption as exc:  # no price yet: read again later
            engine.log("warning", f"{d_base:+} {base_ccy} moved outside the run's fills: {exc.message}")
            return None
        booked_base = result.base if result.base is not None else Decimal(0)
        self.baseline = (self.baseline[0] + d_base - booked_base, self.baseline[1])
        self._seen, self._times = None, 0
        engine.log("warning", f"the account's {base_ccy} moved by {d_base:+} outside the run's fills: booked "
                              f"{booked_base:+} {base_ccy} as a contribution in kind at {engine.last_price} "
                              "(not P&L)", base=float(d_base), booked=float(booked_base))
        value = to_decimal(result.amount)
        if abs(d_quote) > QUOTE_TOLERANCE:
            value += self._fund(d_quote)
        self.booked += 1
        return value
