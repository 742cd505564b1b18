"""The one engine for backtest, paper and live: Clock + Feed + Executor are swapped, nothing else.

Every closed bar goes through the one per-bar step (`engine/step.py`). Backtests run it in a
synchronous loop over the feed's arrays with decisions precomputed for every bar, yielding to the event
loop only between chunks of bars; paper and live await each candle's decision and run the same step per
candle from an async feed, and between candles apply ticks to the trailing book. See docs/trading.md
for the run record.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import numpy as np

from trdr_tui.config import PriceModel, Settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import Clock, SimClock
from trdr_tui.core.engine_api import DecisionSource, Executor
from trdr_tui.core.errors import (
    InsufficientFunds,
    NotAvailable,
    RejectError,
    RiskLimitExceeded,
    StateCorruption,
)
from trdr_tui.core.events import (
    BacktestProgress,
    EngineStatus,
    FundingChange,
    GridSnapshot,
    LogEvent,
    PortfolioSnapshot,
    WeightsChanged,
    candle_topic,
    funding_topic,
)
from trdr_tui.core.types import (
    BACKTEST_MODE,
    HOLD_ACTION,
    Action,
    Candle,
    Decision,
    Fill,
    Mode,
    Order,
    Side,
    Tick,
    Trade,
)
from trdr_tui.engine.book import EngineBook
from trdr_tui.engine.protocols import (
    AdaptiveDecisionSource,
    ArrayFeed,
    BatchDecisionSource,
    BookAwareDecisionSource,
    ClosableDecisionSource,
    ClosableFeed,
    Feed,
    FlushableDecisionSource,
)
from trdr_tui.engine.record import BarHistory, RunRecord, RunState
from trdr_tui.engine.recovery import engine_state, reconcile, restore_engine
from trdr_tui.engine.step import BarStep
from trdr_tui.engine.timers import PeriodicTimer
from trdr_tui.store.orders import RunRepository
from trdr_tui.trading.funding import (
    FundingResult,
    FundingSchedule,
    apply_funding,
    apply_transfer,
    time_weighted,
)
from trdr_tui.trading.orders import OrderManager
from trdr_tui.trading.policy import Policy, PolicyContext, PreparedPolicy
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.risk import Halt, RiskManager
from trdr_tui.trading.sizing import to_decimal

CHUNK = 16384  # bars per synchronous slice of a backtest between yields to the event loop
RECENT_BARS = 2000  # closed candles kept in streaming runs (grid spacing reads the last 720)
ACTIONS = (Action.HOLD, Action.TRAIL_BUY, Action.TRAIL_SELL)  # the batch action codes 0, 1, 2

__all__ = ["CHUNK", "Engine", "Feed"]


class Engine:
    """Implements core.engine_api.EngineControl. Build it with `trdr_tui.engine.build_engine`."""

    def __init__(self, *, settings: Settings, mode: Mode, clock: Clock, bus: EventBus, feed: Feed,
                 executor: Executor, portfolio: Portfolio, orders: OrderManager, risk: RiskManager,
                 policy: Policy, decisions: DecisionSource | None = None, price_model: PriceModel = "ohlc-path",
                 run_id: str | None = None, checkpoints: RunRepository | None = None,
                 checkpoint_interval_ns: int | None = None, batch_decisions: bool = True,
                 trade_from_ns: int | None = None) -> None:
        self.settings = settings
        self._mode = mode
        self.clock = clock
        self.bus = bus
        self.feed = feed
        self.executor = executor
        self.portfolio = portfolio
        self.orders = orders
        self.risk = risk
        self.policy = policy
        self.decisions = decisions
        self.batch_decisions = batch_decisions
        self.price_model = price_model
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.checkpoints = checkpoints
        self.checkpoint_interval_ns = checkpoint_interval_ns
        # a SimClock run may also space its auto checkpoints by wall time (a max-speed replay crosses
        # market days faster than a checkpoint is worth writing); 0: market time alone decides
        self.checkpoint_min_wall_ns = 0
        self.run_state = RunState()
        self.failure: BaseException | None = None  # what ended run() by raising (recovery.restore_after_corruption)
        if trade_from_ns is not None:  # warm-up: bars opening before it feed the agents but place no orders
            self.run_state.trade_from_ns = trade_from_ns
        self.history = BarHistory(portfolio.initial_cash, feed.timeframe_ns)
        self.decisions_seen: list[Decision] = []  # the actionable decisions, in order
        self.record = RunRecord(portfolio, orders, self.run_state, self.history, self.decisions_seen)
        self.decision_arrays: Any = None  # the DecisionSource's batch output, when it has one
        self.polled_timer: PeriodicTimer | None = None  # the checkpoint timer when the engine polls it
        self.funding: FundingSchedule | None = None  # scheduled deposits/withdrawals (engine.assembly)
        self._checkpoint_timer: PeriodicTimer | None = None
        self._stream_step: BarStep | None = None  # reused bar to bar while its listeners stay the same
        self._symbol = feed.symbol
        self._running = False
        self._stop_requested = False
        self._stopped = False
        self._stop_reason = "shutdown"
        self._done = asyncio.Event()
        # crash-only start: set by a restore (reconcile) or a live resume (store-first recovery)
        self._recovery: Callable[[], Awaitable[object]] | None = None
        self._closers: list[Callable[[], Awaitable[object]]] = []
        # parts a higher layer attached to this run, by name (the self-tuning: tuning/daily.py)
        self.attachments: dict[str, Any] = {}
        self._ticks = 0
        self._recent: deque[Candle] = deque(maxlen=RECENT_BARS)  # streaming runs (backtests read arrays)
        self.candle_topic = candle_topic(self._symbol)
        self.portfolio_topic = f"portfolio.{self._symbol}"
        self.decision_topic = f"decision.{self._symbol}"
        self._batch_source: BatchDecisionSource | None = None  # set when the decisions were precomputed
        self._fill_topic = f"fill.{self._symbol}"
        orders.fill_listeners.append(self._on_fill)
        risk.halt_listeners.append(self._on_halt)
        self.book = EngineBook(orders)  # what agents may see of the grid and the orders, read-only
        self._book_source = decisions if isinstance(decisions, BookAwareDecisionSource) else None
        if self._book_source is not None:
            self._book_source.attach_book(self.book)
        policy.bind(PolicyContext(orders=self.orders, portfolio=self.portfolio, clock=self.clock, risk=self.risk,
                                  recent_bars=self.recent_bars,
                                  bar_index=functools.partial(getattr, self.run_state, "bar_index"),
                                  publish_grid=self.publish_grid, grid_wanted=self.grid_wanted, log=self.log))

    # -- EngineControl ---------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def paused(self) -> bool:
        return self.run_state.paused

    @property
    def running(self) -> bool:
        return self._running

    @property
    def last_price(self) -> float:
        """The last close or trade price seen (quote currency); 0.0 before the first."""
        return self.run_state.last_price

    @last_price.setter
    def last_price(self, price: float) -> None:
        self.run_state.last_price = price

    @property
    def stopped(self) -> bool:
        """The run has ended (stopped, failed or reached the end of its feed); it cannot run again."""
        return self._stopped

    @property
    def bars_done(self) -> int:
        """Closed bars processed so far."""
        return self.run_state.bars_done

    def pause(self) -> None:
        self.run_state.paused = True
        self._status("paused")

    def resume(self) -> None:
        self.run_state.paused = False
        self._status("resumed")

    def agent_weights(self) -> dict[str, float]:
        return dict(self.decisions.weights()) if self.decisions is not None else {}

    def agent_base_weights(self) -> dict[str, float]:
        src = self.decisions
        if src is None:
            return {}
        if isinstance(src, AdaptiveDecisionSource):
            return dict(src.base_weights())
        return dict(src.weights())  # no adaptation: the weights in force are the base

    def set_agent_weight(self, agent_id: str, weight: float) -> None:
        if self.decisions is None:
            raise RejectError("this engine runs a preset without agents: there are no weights to set",
                              hint="start the engine with the agents (no --preset)")
        published: list[object] = []
        sub = self.bus.subscribe("agents.weights", lambda _t, e: published.append(e))
        try:
            self.decisions.set_weight(agent_id, weight)  # the source validates the id and the value
        finally:
            self.bus.unsubscribe(sub)
        weights = self.decisions.weights()
        if not published:  # a source that does not announce its own changes
            self.bus.publish("agents.weights", WeightsChanged(ts=self.clock.now_ns(), weights=dict(weights)))
        if self.checkpoints is not None:
            self.checkpoints.save_weights(weights, self.clock.now_ns())

    async def run(self) -> None:
        if self._running:
            raise StateCorruption("engine.run() called while already running")
        if self._stopped or self.bars_done:
            raise RejectError("this engine has already run", hint="build a new engine (build_engine) for another run")
        self._running = True
        self._status("started")
        if self._recovery is not None:
            await self._recovery()
        self._arm_checkpoint_timer()
        try:
            feed = self.feed
            if (self._mode is Mode.BACKTEST and isinstance(feed, ArrayFeed) and not feed.paced
                    and isinstance(self.clock, SimClock) and self._batch_ready(feed.arrays)):
                await self._run_arrays(feed.arrays)
            else:
                await self._run_stream()
        except BaseException as exc:
            # No shutdown checkpoint from a run that failed: its state may be what went wrong, and a
            # restart should resume from the last good checkpoint. The fills and orders so far are kept.
            self._running = False
            self._stopped = True
            self.failure = exc
            if self.checkpoints is not None:
                self.checkpoints.flush()
            self._flush_decisions()
            self._status(f"failed: {type(exc).__name__}: {exc}")
            await self._release()
            self._done.set()
            raise
        self._running = False
        try:
            await self._shutdown("shutdown" if not self._stop_requested else self._stop_reason)
        finally:
            await self._release()
            self._done.set()

    def set_recovery(self, recovery: Callable[[], Awaitable[object]]) -> None:
        """Run `recovery` at the start of `run()`, before the first bar (crash-only restart). A later call
        replaces an earlier one (a live resume replaces the plain reconcile a restore sets)."""
        if self._running:
            raise StateCorruption("set_recovery() after the engine started")
        self._recovery = recovery

    def on_close(self, close: Callable[[], Awaitable[object]]) -> None:
        """Run `close` once the run has ended, cleanly or not, after the shutdown checkpoint (the Coinbase
        parts release their tasks and HTTP session there)."""
        self._closers.append(close)

    async def _release(self) -> None:
        closers, self._closers = self._closers, []
        for close in closers:
            try:
                await close()
            except Exception as exc:  # a failure to release is logged, never raised over the run's end
                self.log("warning", f"closing after the run: {type(exc).__name__}: {exc}")

    async def stop(self, reason: str = "shutdown") -> None:
        """Ask the run to end; returns once the shutdown checkpoint is written.

        A feed that can be closed (`ClosableFeed`) is closed so that a live stream stops waiting.
        """
        self._stop_requested = True
        self._stop_reason = reason
        if not self._running:
            await self._shutdown(reason)
            await self._release()
            return
        if isinstance(self.feed, ClosableFeed):
            await self.feed.close()
        await self._done.wait()

    # -- the backtest loop -----------------------------------------------------------------------

    def _batch_ready(self, arrays: CandleArrays) -> bool:
        """No decisions, or a DecisionSource with a batch path (`BatchDecisionSource`). A source whose
        agents cannot batch raises NotAvailable: the run streams instead."""
        src = self.decisions
        if src is None:
            return True
        if not self.batch_decisions or not isinstance(src, BatchDecisionSource):
            return False
        try:
            self.decision_arrays = src.precompute(arrays)
        except NotAvailable as exc:
            self.log("info", f"decisions stream bar by bar: {exc.message}")
            return False
        self._batch_source = src
        if len(self.decision_arrays) != len(arrays):
            raise StateCorruption(f"batch decisions cover {len(self.decision_arrays)} bars, the feed has {len(arrays)}")
        return True

    def _batch_decisions(self, n: int) -> list[Decision | None]:
        """Per bar: a light Decision (no per-agent signals) for actionable bars, None otherwise.
        The full Decision with every agent's signal is built (`decision_at`) only for listeners."""
        a = self.decision_arrays
        if a is None:
            return [None] * n
        return [Decision(ts=t, action=ACTIONS[x], confidence=c, trail_distance=d) if v else None
                for v, t, x, c, d in zip(a.valid[:n].tolist(), a.ts[:n].tolist(), a.action[:n].tolist(),
                                         a.confidence[:n].tolist(), a.trail_distance[:n].tolist(), strict=True)]

    async def _run_arrays(self, arrays: CandleArrays) -> None:
        self.history.arrays = arrays
        n = len(arrays)
        if isinstance(self.policy, PreparedPolicy):
            self.policy.prepare(arrays.close)
        # Python sequences index far faster than numpy scalars. Tuples of plain numbers drop out of the
        # cyclic GC's tracking after its first pass, so big series are not rescanned by every collection.
        # They and the per-bar decisions (Decisions are untracked) are built with the cyclic GC off: their
        # allocations would otherwise start collections that rescan the sequences while they grow.
        gc_on = gc.isenabled()
        gc.disable()
        try:
            decisions = self._batch_decisions(n)
            ts_l = tuple(arrays.ts.tolist())
            tf = self.feed.timeframe_ns
            now_l = tuple((arrays.ts + tf).tolist())
            o_l = tuple(arrays.open.tolist())
            h_l = tuple(arrays.high.tolist())
            l_l = tuple(arrays.low.tolist())
            c_l = tuple(arrays.close.tolist())
            v_l = tuple(arrays.volume.tolist())
        finally:
            if gc_on:
                gc.enable()
        progress = self.bus.has_subscribers("backtest.progress")
        for start in range(0, n, CHUNK):
            end = min(start + CHUNK, n)
            # Listeners are looked up once per chunk: within a chunk nothing else runs on the event loop,
            # so only a handler we call ourselves could subscribe, and it is picked up at the next chunk.
            step = BarStep(self)
            # The cyclic GC would otherwise walk every live object a few times per chunk for the few
            # cycles a chunk creates; it is switched off only while our own synchronous code runs.
            gc_on = gc.isenabled()
            gc.disable()
            try:
                step.run(start, start, end, ts_l, now_l, o_l, h_l, l_l, c_l, v_l, decisions)
            finally:
                if gc_on:
                    gc.enable()
            if progress:
                self.bus.publish("backtest.progress", BacktestProgress(done=end, total=n))
            await asyncio.sleep(0)
            if self._stop_requested:
                break

    # -- the streaming loop (paper, live, paced replay) ------------------------------------------

    async def _run_stream(self) -> None:
        async for item in self.feed:
            if isinstance(item, Tick):
                self.on_tick(item)
            else:
                await self.on_candle(item)
            await self.orders.settle()
            if self._stop_requested:
                break

    def on_tick(self, tick: Tick) -> None:
        """Between bars: trailing orders follow the trade price; the simulator matches resting orders."""
        self._ticks += 1
        self.executor.on_tick(tick)
        if self._book_source is not None:
            self._book_source.on_tick(tick)
        if tick.bid is not None and tick.ask is not None:
            self.orders.book = (tick.bid, tick.ask)
        if self.orders.trailing:
            self.orders.expire(self.clock.now_ns())
            self.orders.on_prices((tick.price,))
        self.last_price = tick.price

    async def on_candle(self, candle: Candle) -> None:
        """One closed candle through the per-bar step (streaming).

        A simulated clock reaches the bar's close before the DecisionSource sees the candle (its
        decisions carry that time); a real clock is where it is."""
        clock = self.clock
        close_ts = candle.ts + self.feed.timeframe_ns
        if isinstance(clock, SimClock):
            clock.advance_to(max(close_ts, clock.now_ns()))
            if self.polled_timer is not None:
                self.polled_timer.poll(clock.now_ns())
        decision = await self.decisions.on_candle(candle) if self.decisions is not None else None
        i = self.history.streamed
        self.history.append(close_ts, candle.close)
        self._recent.append(candle)
        step = self._stream_step
        if step is None or not step.current(self):
            step = self._stream_step = BarStep(self)
        step.run(i, 0, 1, (candle.ts,), (clock.now_ns(),), (candle.open,), (candle.high,), (candle.low,),
                          (candle.close,), (candle.volume,), (decision,))

    # -- shared pieces ---------------------------------------------------------------------------

    def on_decision(self, decision: Decision) -> None:
        """The bar's decision: kept in the record when actionable; in a batch run the full decision
        (every agent's signal) is built and published only when someone listens (a streaming source
        publishes its own)."""
        if decision.action is not HOLD_ACTION:
            self.decisions_seen.append(decision)
        src = self._batch_source
        if src is not None and self.bus.has_subscribers(self.decision_topic):
            full = src.decision_at(self.run_state.bar_index)
            if full is not None:
                self.bus.publish(self.decision_topic, full)

    def _on_fill(self, order: Order, fill: Fill, trade: Trade | None) -> None:
        pf = self.portfolio
        self.history.mark(self.run_state.bar_index, pf.cash, pf.position)
        topic = self._fill_topic
        if self.bus.has_subscribers(topic):
            self.bus.publish(topic, fill)

    # -- funding changes (trading/funding.py, docs/trading.md) ------------------------------------

    def fund(self, amount: float | Decimal, *, source: str = "manual", at_exchange: bool = False) -> FundingResult:
        """Book a deposit (`amount` > 0) or withdrawal (< 0) of quote currency at the clock's time and
        resize the grid (`trading.funding.apply_funding`), then record it (`funded`).

        `source` "manual" (the cockpit, the API) is refused in live mode: there the exchange account's
        balance is the source, and the engine books what it sees there as "account". Raises RejectError
        for that, InsufficientFunds (E002) for a withdrawal above the free cash (reported too),
        ValueError for a zero or non-finite amount; nothing changes then. `at_exchange`: the account
        already shows it (live): a withdrawal above the free cash is booked up to the cash, never
        refused (`trading.funding.apply_funding`)."""
        if source == "manual" and self._mode is Mode.LIVE:
            raise RejectError("a live run books no deposits or withdrawals by hand",
                              hint="deposit or withdraw at Coinbase: the engine reads the account's balance and "
                                   "books the change itself")
        try:
            result = apply_funding(amount, orders=self.orders, policy=self.policy, at_exchange=at_exchange)
        except InsufficientFunds as exc:
            self.funding_refused(self.clock.now_ns(), float(amount), exc.message, source)
            raise
        self.funded(result, source)
        return result

    def transfer(self, size: Decimal, *, source: str = "account") -> FundingResult:
        """Book coins sent in (`size` > 0, base units) or out (< 0) of a live account outside the run's
        fills, valued at the last price, as a contribution in kind (`trading.funding.apply_transfer`),
        then record it like a funding change (`funded`). Raises StateCorruption before the first price."""
        if not self.last_price > 0.0:
            raise StateCorruption("a coin transfer is valued at the mark, and no price has been seen yet",
                                  hint="it is booked at a later read, once a price is known")
        result = apply_transfer(size, to_decimal(self.last_price), orders=self.orders, policy=self.policy)
        self.funded(result, source)
        return result

    def funded(self, result: FundingResult, source: str) -> None:
        """A funding change was booked: mark the equity curve, log it, publish `funding.<symbol>`, and in
        paper/live write a `funding` checkpoint (one journal record: the ledger with its flows and the
        schedule's position, so a crash neither loses it nor applies it twice)."""
        pf = self.portfolio
        self.history.mark(self.run_state.bar_index, pf.cash, pf.position)
        kind = "deposit" if result.amount > 0 else "withdrawal"
        if result.base is not None:
            kind = f"{abs(result.base)} {self._symbol.split('-')[0]} {'in' if result.base > 0 else 'out'}, in kind"
        self.log("info", f"funding ({source}): {kind} of {abs(result.amount):,.2f}; equity "
                         f"{result.equity_before:,.2f} -> {result.equity_after:,.2f}, "
                         f"{result.cancelled} BUY order(s) re-sized", amount=result.amount, source=source)
        if result.beyond_free:
            rest = (f" ({-result.amount:,.2f} booked: the ledger's cash; the rest was not the run's)"
                    if result.requested != result.amount else "")
            self.log("warning", f"funding ({source}): the account's withdrawal of {-result.requested:,.2f} exceeded "
                                f"the run's free cash: its capital shrank{rest}; {result.cancelled} BUY order(s) "
                                "cancelled and re-sized; positions are never sold for it",
                     amount=result.amount, requested=result.requested, source=source)
        topic = funding_topic(self._symbol)
        if self.bus.has_subscribers(topic):
            self.bus.publish(topic, FundingChange(ts=result.ts, symbol=self._symbol, amount=result.amount,
                                                  source=source, applied=True, equity_before=result.equity_before,
                                                  equity_after=result.equity_after,
                                                  orders_resized=result.cancelled))
        if self._mode is not Mode.BACKTEST:
            self.checkpoint("funding")

    def funding_refused(self, ts: int, amount: float, reason: str, source: str) -> None:
        """A funding change was refused (`reason`): logged as a warning and published; nothing booked."""
        self.log("warning", f"funding ({source}) refused: {reason}", amount=amount, source=source)
        topic = funding_topic(self._symbol)
        if self.bus.has_subscribers(topic):
            equity = self.portfolio.equity(self.last_price)
            self.bus.publish(topic, FundingChange(ts=ts, symbol=self._symbol, amount=amount, source=source,
                                                  applied=False, equity_before=equity, equity_after=equity,
                                                  reason=reason))

    def _on_halt(self, halt: Halt) -> None:
        """The drawdown halt started or lifted: log it and show it in the status line."""
        detail = f"halted: {halt.reason}" if halt.resumed_ts is None else f"resumed: {halt.resume_reason}"
        self.log("warning", f"drawdown {detail}", halted_at=halt.ts)
        self._status(detail)

    def close_at_stop(self, price: float) -> None:
        """The stop-loss hit at `price`: close the position at market, cancelling open exits first so
        the sizes never overlap."""
        for st in list(self.orders.trailing):
            if st.order.side is Side.SELL:
                self.orders.cancel(st.order, "replaced by stop-loss")
        for order in list(self.orders.open.values()):
            if order.side is Side.SELL:
                self.orders.cancel(order, "replaced by stop-loss")
        if self.portfolio.position > 0.0:
            with contextlib.suppress(RiskLimitExceeded):
                self.orders.place_market(Side.SELL, self.portfolio.position, price=price, reason="stop-loss")
            self.log("warning", f"stop-loss: closed the position at {price}")

    def grid_wanted(self) -> bool:
        """Someone would see a grid snapshot now: paper/live (checkpoints, the cockpit), agents that read
        the book while streaming (precomputed decisions never do: `precompute` refuses book readers), or
        a listener on `grid.<symbol>`. A batch backtest without them skips building snapshots."""
        return self._mode is not BACKTEST_MODE or (self._book_source is not None and self._batch_source is None) \
            or self.bus.has_subscribers(f"grid.{self._symbol}")

    def publish_grid(self, snap: GridSnapshot) -> None:
        """The policy's grid changed: publish it, and in paper/live persist it at once."""
        self.book.last_grid = snap
        topic = f"grid.{self._symbol}"
        if self.bus.has_subscribers(topic):
            self.bus.publish(topic, snap)
        if self.checkpoints is not None and self._mode is not Mode.BACKTEST:
            grid = self.policy.state().get("grid", {})
            if not isinstance(grid, dict):
                raise StateCorruption(f"policy {self.policy.name} keeps its grid as {type(grid).__name__}, not a dict")
            self.checkpoints.save_grid(self._symbol, snap.ts, grid)

    def recent_bars(self, n: int) -> CandleArrays:
        """The last `n` closed bars up to the one being processed."""
        arrays = self.history.arrays
        if arrays is not None:
            end = self.run_state.bar_index + 1
            return arrays[max(end - n, 0):end]
        recent = list(self._recent)[-n:]
        return CandleArrays.from_candles(recent)

    def snapshot(self) -> PortfolioSnapshot:
        pf = self.portfolio
        price = self.run_state.last_price
        equity = pf.equity(price)
        peak = max(pf.peak_equity, equity)
        return PortfolioSnapshot(ts=self.clock.now_ns(), symbol=self._symbol, cash=pf.cash, position=pf.position,
                                 avg_entry=pf.avg_entry, price=price, equity=equity,
                                 realized_pnl=pf.realized_pnl, unrealized_pnl=pf.unrealized_pnl(price),
                                 fees=pf.fees, peak_equity=peak,
                                 drawdown=(peak - equity) / peak if peak > 0 else 0.0)

    def performance(self) -> tuple[float, float]:
        """(total return, max drawdown) of the run so far with deposits, withdrawals and contributions in
        kind taken out (time-weighted, `trading.funding.time_weighted`, as the backtests measure): the
        equity after each bar, then the equity now at the last price."""
        curve = self.record.equity_curve() if self.bars_done else None
        pf = self.portfolio
        now = self.clock.now_ns()
        equity = np.asarray([] if curve is None else curve.equity, dtype=np.float64)
        ts = np.asarray([] if curve is None else curve.ts, dtype=np.int64)
        equity = np.append(equity, pf.equity(self.last_price))  # the equity now, after the bars
        ts = np.append(ts, max([now, *ts[-1:].tolist()]))
        return time_weighted(equity, ts, pf.contributions(), pf.initial_cash)

    def log(self, level: str, message: str, **fields: str | float | int | bool | None) -> None:
        topic = f"log.{level}"
        if self.bus.has_subscribers(topic):
            self.bus.publish(topic, LogEvent(ts=self.clock.now_ns(), level=level, source="engine",
                                             message=message, fields=fields))

    def _status(self, detail: str) -> None:
        if self.bus.has_subscribers("engine.status"):
            self.bus.publish("engine.status", EngineStatus(
                ts=self.clock.now_ns(), mode=self._mode, symbol=self._symbol, running=self._running,
                paused=self.paused, last_price=self.last_price or None, detail=detail))

    # -- checkpoints (engine/recovery.py) ---------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything needed to resume (recovery.engine_state)."""
        return engine_state(self)

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from a checkpoint's state before `run` (recovery.restore_engine)."""
        restore_engine(self, state)

    async def reconcile(self) -> int:
        """Ask the executor about the orders we think are at the exchange (recovery.reconcile)."""
        return await reconcile(self)

    def checkpoint(self, kind: str = "manual") -> None:
        if self.checkpoints is not None:
            self.checkpoints.save_checkpoint(kind, self._mode, self.clock.now_ns(), self.state())

    def _arm_checkpoint_timer(self) -> None:
        interval = self.checkpoint_interval_ns
        if self.checkpoints is None or not interval:
            return

        last = [-1, -1]  # (bar index, ticks) at the last auto checkpoint
        last_wall = [-(2**62)]  # the first due checkpoint is always written

        def fire(_now: int) -> None:
            if not self._running:
                return
            seen = [self.run_state.bar_index, self._ticks]
            if seen == last:  # a real clock's interval may pass with nothing new to save
                return
            wall = time.monotonic_ns()
            if wall - last_wall[0] < self.checkpoint_min_wall_ns:
                return
            last[:] = seen
            last_wall[0] = wall
            self.checkpoint("auto")

        timer = PeriodicTimer(self.clock, interval, fire)
        self._checkpoint_timer = timer
        self.polled_timer = timer if timer.polled else None

    async def _shutdown(self, reason: str) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._checkpoint_timer is not None:
            self._checkpoint_timer.cancel()
        await self.orders.settle()
        self.checkpoint("shutdown")
        try:
            await self._close_decisions()
        finally:
            if self.checkpoints is not None:
                self.checkpoints.flush()
        self._status(f"stopped: {reason}")

    async def _close_decisions(self) -> None:
        """The run is over: the DecisionSource writes what it buffered (the last partial batch of
        decision-log rows, adapted weights) and releases its agents."""
        src = self.decisions
        if isinstance(src, ClosableDecisionSource):
            await src.close()
        else:
            self._flush_decisions()

    def _flush_decisions(self) -> None:
        """A failed run keeps its agents as they are but still writes the decision rows it buffered;
        a failure to write is logged, not raised over the error that ended the run."""
        src = self.decisions
        if not isinstance(src, FlushableDecisionSource):
            return
        try:
            src.flush()
        except Exception as exc:
            self.log("error", f"could not write the buffered decisions: {type(exc).__name__}: {exc}")
