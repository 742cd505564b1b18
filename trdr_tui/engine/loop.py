"""The one engine for backtest, paper and live: Clock + Feed + Executor are swapped, nothing else.

Per closed bar, in this order (DESIGN.md "the way one market update travels"):

1. the Clock moves to the bar's close time (`ts + timeframe`); due timers (checkpoints) fire;
2. `market.candle.<symbol>` is published (only when someone listens);
3. the executor matches resting limit orders against the bar;
4. armed trailing orders walk the bar's price path (`close`: the close only; `ohlc-path`: open →
   nearer extreme → other extreme → close) and fire → fills → ledger;
5. the stop-loss rule closes a losing position;
6. unless paused, the policy turns the bar's decision into new orders (sized, risk-checked);
7. the portfolio is marked (peak equity, daily loss window) and `portfolio.<symbol>` published.

Backtests run steps 1–7 in a synchronous loop over the feed's arrays, yielding to the event loop only
between chunks of bars; paper and live run the same steps per candle from an async feed, and between
candles apply ticks to the trailing book. See docs/trading.md for the run record.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import numpy as np

from trdr_tui.config import PriceModel, Settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import Clock, SimClock
from trdr_tui.core.engine_api import DecisionSource, Executor
from trdr_tui.core.errors import NotAvailable, RejectError, RiskLimitExceeded, StateCorruption
from trdr_tui.core.events import (
    BacktestProgress,
    CandleEvent,
    EngineStatus,
    GridSnapshot,
    LogEvent,
    PortfolioSnapshot,
    WeightsChanged,
    candle_topic,
)
from trdr_tui.core.types import Action, Candle, Decision, Fill, Mode, Order, Side, Tick, Trade
from trdr_tui.engine.record import EquityCurve, RunRecord
from trdr_tui.engine.recovery import engine_state, reconcile, restore_engine
from trdr_tui.engine.timers import PeriodicTimer
from trdr_tui.exchange.sim_executor import SimExecutor
from trdr_tui.market.arrays import CandleArrays
from trdr_tui.trading.orders import OrderManager
from trdr_tui.trading.policy import Policy, PolicyContext
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.risk import RiskManager
from trdr_tui.trading.trailing import path_prices

CHUNK = 16384  # bars per synchronous slice of a backtest between yields to the event loop
RECENT_BARS = 2000  # closed candles kept in streaming runs (grid spacing reads the last 720)
ACTIONS = (Action.HOLD, Action.TRAIL_BUY, Action.TRAIL_SELL)  # the batch action codes 0, 1, 2


class Feed(Protocol):
    """A market data source: closed candles (and, live, ticks between them).

    Optional: `arrays` (CandleArrays) for the synchronous backtest loop, `paced` (True: stream it
    instead), `close()` (sync or async) to end the iteration when the engine stops.
    """

    symbol: str
    timeframe: str
    timeframe_ns: int

    def __aiter__(self) -> AsyncIterator[Candle | Tick]: ...


class Engine:
    """Implements core.engine_api.EngineControl. Build it with `trdr_tui.engine.build_engine`."""

    def __init__(self, *, settings: Settings, mode: Mode, clock: Clock, bus: EventBus, feed: Feed,
                 executor: Executor, portfolio: Portfolio, orders: OrderManager, risk: RiskManager,
                 policy: Policy, decisions: DecisionSource | None = None, price_model: PriceModel = "ohlc-path",
                 run_id: str | None = None, checkpoints: Any = None, checkpoint_interval_ns: int | None = None,
                 batch_decisions: bool = True) -> None:
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
        self._checkpoint_timer: PeriodicTimer | None = None
        self.record = RunRecord(self)
        self.last_price = 0.0
        self._symbol = feed.symbol
        self._paused = False
        self._running = False
        self._stop_requested = False
        self._stopped = False
        self._stop_reason = "shutdown"
        self._done = asyncio.Event()
        self._bars_done = 0
        self._bar_index = 0
        self._decisions_seen: list[Decision] = []
        # crash-only start: replaces the plain reconcile when set (e.g. a live run resumed from the store)
        self._recovery: Callable[[], Awaitable[object]] | None = None
        self._ticks = 0
        # ledger change points: (bar index, cash, position) after each fill; equity rebuilt from them
        self._marks: list[tuple[int, float, float]] = []
        # streaming runs keep the bars here (backtests read the feed's arrays)
        self._live_ts: list[int] = []
        self._live_close: list[float] = []
        self._arrays: CandleArrays | None = None
        self._recent: deque[Candle] = deque(maxlen=RECENT_BARS)
        self.decision_arrays: Any = None  # the DecisionSource's batch output, when it has one
        self._tf_ns = feed.timeframe_ns
        self._candle_topic = candle_topic(self._symbol)
        self._portfolio_topic = f"portfolio.{self._symbol}"
        self._decision_topic = f"decision.{self._symbol}"
        self._fill_topic = f"fill.{self._symbol}"
        orders.fill_listeners.append(self._on_fill)
        policy.bind(PolicyContext(orders=self.orders, portfolio=self.portfolio, clock=self.clock, risk=self.risk,
                                  recent_bars=self.recent_bars, publish_grid=self.publish_grid))

    # -- EngineControl ---------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def running(self) -> bool:
        return self._running

    def pause(self) -> None:
        self._paused = True
        self._status("paused")

    def resume(self) -> None:
        self._paused = False
        self._status("resumed")

    def agent_weights(self) -> dict[str, float]:
        return dict(self.decisions.weights()) if self.decisions is not None else {}

    def agent_base_weights(self) -> dict[str, float]:
        src = self.decisions
        if src is None:
            return {}
        base = getattr(src, "base_weights", None)  # optional in DecisionSource: no adaptation, no base
        return dict(base()) if callable(base) else dict(src.weights())

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
        if self._stopped or self._bars_done:
            raise RejectError("this engine has already run", hint="build a new engine (build_engine) for another run")
        self._running = True
        self._status("started")
        if self._recovery is not None:
            await self._recovery()
        self._arm_checkpoint_timer()
        try:
            arrays = getattr(self.feed, "arrays", None)
            if (self._mode is Mode.BACKTEST and arrays is not None and not getattr(self.feed, "paced", False)
                    and isinstance(self.clock, SimClock) and self._batch_ready(arrays)):
                await self._run_arrays(arrays)
            else:
                await self._run_stream()
        except BaseException as exc:
            # No shutdown checkpoint from a run that failed: its state may be what went wrong, and a
            # restart should resume from the last good checkpoint. The fills and orders so far are kept.
            self._running = False
            self._stopped = True
            if self.checkpoints is not None:
                self.checkpoints.flush()
            self._flush_decisions()
            self._status(f"failed: {type(exc).__name__}: {exc}")
            self._done.set()
            raise
        self._running = False
        try:
            await self._shutdown("shutdown" if not self._stop_requested else self._stop_reason)
        finally:
            self._done.set()

    def set_recovery(self, recovery: Callable[[], Awaitable[object]]) -> None:
        """Run `recovery` at the start of `run()` instead of the plain reconcile (crash-only restart)."""
        if self._running:
            raise StateCorruption("set_recovery() after the engine started")
        self._recovery = recovery

    async def stop(self, reason: str = "shutdown") -> None:
        """Ask the run to end; returns once the shutdown checkpoint is written.

        A feed with a `close()` (sync or async) is closed so that a live stream stops waiting.
        """
        self._stop_requested = True
        self._stop_reason = reason
        if not self._running:
            await self._shutdown(reason)
            return
        close = getattr(self.feed, "close", None)
        if callable(close):
            result = close()
            if inspect.isawaitable(result):
                await result
        await self._done.wait()

    # -- the backtest loop -----------------------------------------------------------------------

    def _batch_ready(self, arrays: CandleArrays) -> bool:
        """No decisions, or a DecisionSource with a batch path (`precompute(bars)` → per-bar arrays with
        `valid`, `action` codes 0/1/2, `confidence`, `trail_distance`; `decision_at(i)` → full Decision).
        A source whose agents cannot batch raises NotAvailable: the run streams instead."""
        src = self.decisions
        if src is None:
            return True
        if not self.batch_decisions or not hasattr(src, "precompute") or not hasattr(src, "decision_at"):
            return False
        try:
            self.decision_arrays = src.precompute(arrays)
        except NotAvailable as exc:
            self.log("info", f"decisions stream bar by bar: {exc.message}")
            return False
        if len(self.decision_arrays) != len(arrays):
            raise StateCorruption(f"batch decisions cover {len(self.decision_arrays)} bars, the feed has {len(arrays)}")
        return True

    def _batch_decisions(self) -> list[Decision | None] | None:
        """Per bar: a light Decision (no per-agent signals) for actionable bars, None otherwise.
        The full Decision with every agent's signal is built (`decision_at`) only for listeners."""
        a = self.decision_arrays
        if a is None:
            return None
        out: list[Decision | None] = [None] * len(a)
        valid = a.valid.tolist()
        act = a.action.tolist()
        conf = a.confidence.tolist()
        trail = a.trail_distance.tolist()
        ts = a.ts.tolist()
        for i in range(len(out)):
            if valid[i]:
                out[i] = Decision(ts=ts[i], action=ACTIONS[act[i]], confidence=conf[i], trail_distance=trail[i])
        return out

    async def _run_arrays(self, arrays: CandleArrays) -> None:
        self._arrays = arrays
        n = len(arrays)
        decisions = self._batch_decisions()
        # Python sequences index far faster than numpy scalars. Tuples of plain numbers drop out of the
        # cyclic GC's tracking after its first pass, so big series are not rescanned by every collection.
        ts_l = tuple(arrays.ts.tolist())
        o_l = tuple(arrays.open.tolist())
        h_l = tuple(arrays.high.tolist())
        l_l = tuple(arrays.low.tolist())
        c_l = tuple(arrays.close.tolist())
        v_l = tuple(arrays.volume.tolist())
        progress = self.bus.has_subscribers("backtest.progress")
        for start in range(0, n, CHUNK):
            end = min(start + CHUNK, n)
            # The cyclic GC would otherwise walk every live object a few times per chunk for the few
            # cycles a chunk creates; it is switched off only while our own synchronous code runs.
            gc_on = gc.isenabled()
            gc.disable()
            try:
                self._run_chunk(start, end, ts_l, o_l, h_l, l_l, c_l, v_l, decisions)
            finally:
                if gc_on:
                    gc.enable()
            if progress:
                self.bus.publish("backtest.progress", BacktestProgress(done=end, total=n))
            await asyncio.sleep(0)
            if self._stop_requested:
                break

    def _run_chunk(self, start: int, end: int, ts_l: Sequence[int], o_l: Sequence[float], h_l: Sequence[float],
                   l_l: Sequence[float], c_l: Sequence[float], v_l: Sequence[float],
                   decisions: list[Decision | None] | None) -> None:
        """The hot loop: plain locals, no awaits, events built only for listeners."""
        clock = self.clock
        assert isinstance(clock, SimClock)
        advance = clock.advance_to
        timer = self._checkpoint_timer if self._checkpoint_timer is not None and self._checkpoint_timer.polled \
            else None
        tf = self._tf_ns
        bus = self.bus
        # Listeners are looked up once per chunk: within a chunk nothing else runs on the event loop,
        # so only a handler we call ourselves could subscribe, and it is picked up at the next chunk.
        candle_subs = bus.has_subscribers(self._candle_topic)
        portfolio_subs = bus.has_subscribers(self._portfolio_topic)
        ctopic = self._candle_topic
        ptopic = self._portfolio_topic
        orders = self.orders
        trailing = orders.trailing
        on_prices = orders.on_prices
        on_price = orders.on_price
        executor = self.executor
        on_bar = getattr(executor, "on_bar", None)
        resting = getattr(executor, "resting", None)
        sim = executor if isinstance(executor, SimExecutor) else None
        set_market = getattr(executor, "set_market", None) if sim is None else None
        policy_bar = self.policy.on_bar
        idle_only = bool(getattr(self.policy, "idle_only", False))
        open_orders = orders.open
        risk = self.risk
        needs_marks = risk.needs_marks
        stop_loss = risk.limits.stop_loss
        pf = self.portfolio
        close_only = self.price_model == "close"
        timeframe = self.feed.timeframe
        symbol = self._symbol
        for i in range(start, end):
            self._bar_index = i
            c = c_l[i]
            now = ts_l[i] + tf
            advance(now)
            if timer is not None and now >= timer.next_ns:
                timer.poll(now)
            if candle_subs:
                bus.publish(ctopic, CandleEvent(symbol=symbol, timeframe=timeframe,
                                                candle=Candle(ts_l[i], o_l[i], h_l[i], l_l[i], c, v_l[i])))
            if resting:
                on_bar(h_l[i], l_l[i], c, v_l[i])  # type: ignore[misc]
            elif sim is not None:  # fills in this bar see its close and volume
                sim.last_price = c
                sim.bar_volume = v_l[i]
            elif set_market is not None:
                set_market(c, v_l[i])
            if orders.expiring:
                orders.expire(now)
            if trailing:
                if close_only:
                    on_price(c)
                else:
                    on_prices(path_prices(o_l[i], h_l[i], l_l[i], c))
            self.last_price = c
            if stop_loss is not None and pf.position > 0.0 and risk.stop_loss_hit(c):
                self._stop_loss(c)
            decision = decisions[i] if decisions is not None else None
            if decision is not None:
                self._on_decision(decision)
            if not self._paused and not (idle_only and open_orders):
                try:  # noqa: SIM105 - try/except is the cheap form in the hot loop
                    policy_bar(now, c, decision)
                except RiskLimitExceeded:
                    pass  # recorded and published by the order manager
            if needs_marks:
                risk.on_mark(now, pf.mark(c))
            if portfolio_subs:
                bus.publish(ptopic, self.snapshot())
        self._bars_done = end

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
        if tick.bid is not None and tick.ask is not None:
            self.orders.book = (tick.bid, tick.ask)
        if self.orders.trailing:
            self.orders.expire(self.clock.now_ns())
            self.orders.on_prices((tick.price,))
        self.last_price = tick.price

    async def on_candle(self, candle: Candle) -> None:
        """One closed candle through the full pipeline (streaming)."""
        if isinstance(self.clock, SimClock):
            self.clock.advance_to(max(candle.ts + self._tf_ns, self.clock.now_ns()))
            self._poll_timers(self.clock.now_ns())
        decision = await self.decisions.on_candle(candle) if self.decisions is not None else None
        i = len(self._live_ts)
        self._bar_index = i
        self._live_ts.append(candle.ts + self._tf_ns)
        self._live_close.append(candle.close)
        self._recent.append(candle)
        now = self.clock.now_ns()
        if self.bus.has_subscribers(self._candle_topic):
            self.bus.publish(self._candle_topic, CandleEvent(symbol=self._symbol, timeframe=self.feed.timeframe,
                                                             candle=candle))
        self.executor.on_candle(candle)
        self.orders.expire(now)
        if self.orders.trailing:
            prices = (candle.close,) if self.price_model == "close" else path_prices(
                candle.open, candle.high, candle.low, candle.close)
            self.orders.on_prices(prices)
        self.last_price = candle.close
        if self.risk.stop_loss_hit(candle.close):
            self._stop_loss(candle.close)
        if decision is not None:
            self._on_decision(decision)
        if not self._paused:
            with contextlib.suppress(RiskLimitExceeded):  # recorded and published by the order manager
                self.policy.on_bar(now, candle.close, decision)
        if self.risk.needs_marks:
            self.risk.on_mark(now, self.portfolio.mark(candle.close))
        if self.bus.has_subscribers(self._portfolio_topic):
            self.bus.publish(self._portfolio_topic, self.snapshot())
        self._bars_done = i + 1

    # -- shared pieces ---------------------------------------------------------------------------

    def _on_decision(self, decision: Decision) -> None:
        if decision.action is not Action.HOLD:  # the record keeps the actionable ones
            self._decisions_seen.append(decision)
        if self.decision_arrays is not None:  # batch: light decisions, the full one only for listeners
            if self.bus.has_subscribers(self._decision_topic):
                full = self.decisions.decision_at(self._bar_index)  # type: ignore[union-attr]
                if full is not None:
                    self.bus.publish(self._decision_topic, full)
            return
        # streaming: the source published its decision already

    def _on_fill(self, order: Order, fill: Fill, trade: Trade | None) -> None:
        pf = self.portfolio
        self._marks.append((self._bar_index, pf.cash, pf.position))
        topic = self._fill_topic
        if self.bus.has_subscribers(topic):
            self.bus.publish(topic, fill)

    def _stop_loss(self, price: float) -> None:
        """Close the position at market: cancel open exits first so the sizes never overlap."""
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

    def publish_grid(self, snap: GridSnapshot) -> None:
        """The policy's grid changed: publish it, and in paper/live persist it at once."""
        topic = f"grid.{self._symbol}"
        if self.bus.has_subscribers(topic):
            self.bus.publish(topic, snap)
        if self.checkpoints is not None and self._mode is not Mode.BACKTEST:
            self.checkpoints.save_grid(self._symbol, snap.ts, self.policy.state().get("grid", {}))

    def recent_bars(self, n: int) -> CandleArrays:
        """The last `n` closed bars up to the one being processed."""
        if self._arrays is not None:
            end = self._bar_index + 1
            return self._arrays[max(end - n, 0):end]
        recent = list(self._recent)[-n:]
        return CandleArrays.from_candles(recent)

    def snapshot(self) -> PortfolioSnapshot:
        pf = self.portfolio
        price = self.last_price
        equity = pf.equity(price)
        peak = max(pf.peak_equity, equity)
        return PortfolioSnapshot(ts=self.clock.now_ns(), symbol=self._symbol, cash=pf.cash, position=pf.position,
                                 avg_entry=pf.avg_entry, price=price, equity=equity,
                                 realized_pnl=pf.realized_pnl, unrealized_pnl=pf.unrealized_pnl(price),
                                 fees=pf.fees, peak_equity=peak,
                                 drawdown=(peak - equity) / peak if peak > 0 else 0.0)

    def log(self, level: str, message: str, **fields: str | float | int | bool | None) -> None:
        topic = f"log.{level}"
        if self.bus.has_subscribers(topic):
            self.bus.publish(topic, LogEvent(ts=self.clock.now_ns(), level=level, source="engine",
                                             message=message, fields=fields))

    def _status(self, detail: str) -> None:
        if self.bus.has_subscribers("engine.status"):
            self.bus.publish("engine.status", EngineStatus(
                ts=self.clock.now_ns(), mode=self._mode, symbol=self._symbol, running=self._running,
                paused=self._paused, last_price=self.last_price or None, detail=detail))

    def _equity_curve(self) -> EquityCurve:
        n = self._bars_done
        if self._arrays is not None:
            ts = self._arrays.ts[:n] + self._tf_ns
            price = self._arrays.close[:n]
        else:
            ts = np.asarray(self._live_ts[:n], dtype=np.int64)
            price = np.asarray(self._live_close[:n], dtype=np.float64)
        cash = np.full(n, self.portfolio.initial_cash)
        pos = np.zeros(n)
        marks = self._marks
        if marks:
            bars = np.fromiter((m[0] for m in marks), dtype=np.int64, count=len(marks))
            m_cash = np.fromiter((m[1] for m in marks), dtype=np.float64, count=len(marks))
            m_pos = np.fromiter((m[2] for m in marks), dtype=np.float64, count=len(marks))
            # every bar takes the last change point at or before it (later marks in a bar win)
            which = np.searchsorted(bars, np.arange(n), side="right") - 1
            have = which >= 0
            cash[have] = m_cash[which[have]]
            pos[have] = m_pos[which[have]]
        return EquityCurve(ts, cash + pos * price, price.copy(), cash, pos)

    # -- checkpoints (engine/recovery.py) ---------------------------------------------------------

    @property
    def bars_done(self) -> int:
        """Closed bars processed so far."""
        return self._bars_done

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

        def fire(_now: int) -> None:
            if not self._running:
                return
            seen = [self._bar_index, self._ticks]
            if seen != last:  # a real clock's interval may pass with nothing new to save
                last[:] = seen
                self.checkpoint("auto")

        self._checkpoint_timer = PeriodicTimer(self.clock, interval, fire)

    def _poll_timers(self, now: int) -> None:
        timer = self._checkpoint_timer
        if timer is not None and timer.polled:
            timer.poll(now)

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
        decision-log rows, adapted weights) and releases its agents. `close()` (sync or async) when
        it has one, else `flush()`."""
        src = self.decisions
        if src is None:
            return
        close = getattr(src, "close", None)
        if callable(close):
            result = close()
            if inspect.isawaitable(result):
                await result
            return
        self._flush_decisions()

    def _flush_decisions(self) -> None:
        """A failed run keeps its agents as they are but still writes the decision rows it buffered;
        a failure to write is logged, not raised over the error that ended the run."""
        flush = getattr(self.decisions, "flush", None)
        if not callable(flush):
            return
        try:
            flush()
        except Exception as exc:
            self.log("error", f"could not write the buffered decisions: {type(exc).__name__}: {exc}")
