"""`trdr --headless`: the same engine with no UI, for servers.

Every event at or above the log level (docs/operations.md, "Logs") becomes one JSON line on stdout and
in the log file: `{"ts", "time", "level", "topic",
"type", "event"}` (times from the engine clock). SIGINT/SIGTERM ask the engine to stop; it writes its
shutdown checkpoint and the process exits 0. When stdout's reader goes away (`trdr --headless | head`:
EPIPE), the engine stops the same way, with its checkpoint; the lines go on to the log file only and
the process exits 1 (output cut short, as for any command). When the feed ends (a replay), a final `Summary` line
reports what happened. A failure is an `engine.error` line and `trdr: error:` on stderr; the process
exits with its `exit_code` (1 a runtime failure, 2 bad input such as an `--api` port already in use).

With a `rebuild` function (paper or live on Coinbase market data), the control API can switch the
mode (`PUT /api/trading/mode`): the running engine stops and writes its checkpoint, exactly as for the
cockpit's `m`, and an engine for the new mode takes its place in the same process. When the new one
cannot be built, the old mode is rebuilt (it resumes from its checkpoint) and the request fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

import msgspec

from trdr_tui.core import stop_signals
from trdr_tui.core.engine_api import EngineControl
from trdr_tui.core.errors import TrdrError
from trdr_tui.core.events import CandleEvent, LogEvent, OrderEvent, PortfolioSnapshot
from trdr_tui.core.logs import (
    LEVELS,
    TRADE_TOPICS,
    VerdictChanges,
    debug_only,
    event_level,
    event_record,
    log_record,
)
from trdr_tui.core.timefmt import iso_utc
from trdr_tui.core.types import Decision, Fill, Mode
from trdr_tui.engine.loop import Engine

if TYPE_CHECKING:
    from trdr_tui.api.host import ApiLaunch
    from trdr_tui.engine.loop import Engine

ROUTES_KEPT = 4096  # topics whose routing is remembered (one per order in a long run)
# the topics of the events the summary counts (`JsonLogger._counters`): wanted at any level
COUNTED_TOPICS = ("market.candle.", "order.", "fill.", "portfolio.")


class Summary(msgspec.Struct, kw_only=True):
    """The last line of a run: what it did, in numbers."""

    reason: str
    bars: int = 0
    orders: int = 0
    fills: int = 0
    fees: float = 0.0
    first_bar: str | None = None
    last_bar: str | None = None
    start_equity: float | None = None
    final_equity: float | None = None
    total_return: float | None = None
    max_drawdown: float = 0.0
    price: float | None = None
    position: float | None = None


class JsonLogger:
    """Bus subscriber writing JSON lines to every sink; counts what the summary reports."""

    def __init__(self, engine: EngineControl, sinks: list[IO[str]], *, min_level: str = "info",
                 capital: float | None = None) -> None:
        if min_level not in LEVELS:
            raise TrdrError(f"unknown log level '{min_level}'", hint=f"use one of {', '.join(LEVELS)}")
        self.engine = engine
        self.sinks = sinks
        self.on_broken_pipe: Callable[[], None] | None = None  # a sink's reader went away (EPIPE)
        self.min_level = min_level
        self.min_index = LEVELS.index(min_level)
        self.encoder = msgspec.json.Encoder()
        self._summary = Summary(reason="running", start_equity=capital)
        self._portfolio: PortfolioSnapshot | None = None  # the last one: its figures end the summary (`summary`)
        self.order_ids: set[str] = set()
        self._first_bar_ns: int | None = None  # the bars counted (formatted for the summary at the end)
        self._last_bar_ns: int | None = None
        # what the summary counts, by event type (a dict lookup per event, not four isinstance calls)
        self._counters: dict[type, Callable[[Any], None]] = {
            CandleEvent: self._count_candle, OrderEvent: self._count_order, Fill: self._count_fill,
            PortfolioSnapshot: self._count_portfolio}
        # (level, shown, logged) per topic whose level the topic alone decides (see `event_level`)
        self._routes: dict[str, tuple[str, bool, bool]] = {}
        self._shown = {level: i >= self.min_index for i, level in enumerate(LEVELS)}  # by level
        self.verdicts = VerdictChanges()
        self.sub = engine.bus.subscribe("*", self.on_event, wants=self.wants)

    @property
    def summary(self) -> Summary:
        """What the run did so far (the last portfolio snapshot's figures taken when asked)."""
        event = self._portfolio
        s = self._summary
        if event is not None:
            s.final_equity = event.equity
            s.fees = event.fees
            s.price = event.price
            s.position = event.position
        return s

    def bind(self, engine: EngineControl) -> None:
        """Follow a new engine (a mode switch); the summary goes on counting."""
        self.engine.bus.unsubscribe(self.sub)
        self.engine = engine
        self.sub = engine.bus.subscribe("*", self.on_event, wants=self.wants)

    def wants(self, topic: str) -> bool:
        """The topics whose events are counted or may be written (the bus asks once per topic): not the
        per-bar debug topics above debug (`core.logs.debug_only`: agent signals, grid snapshots, …),
        unless the summary counts what they carry."""
        return topic.startswith(COUNTED_TOPICS) or not debug_only(topic, self.min_level)

    def on_event(self, topic: str, event: Any) -> None:
        kind = type(event)
        if kind is Decision:  # info when the verdict changes, debug when it repeats (core.logs); not counted
            level = self.verdicts.level(topic, event)
            if self._shown[level]:
                self.write(event_record(topic, event, level, self.engine.clock.now_ns()))
            return
        count = self._counters.get(kind)
        if count is not None:
            count(event)
        route = self._routes.get(topic)
        if route is None:
            level = event_level(topic, event)
            shown = self._shown[level]
            route = (level, shown, shown or topic.startswith(TRADE_TOPICS))  # fills reach the trades log at any level
            if not isinstance(event, LogEvent) and topic != "feed.health" and len(self._routes) < ROUTES_KEPT:
                self._routes[topic] = route
        level, shown, logged = route
        if logged:
            self.write(event_record(topic, event, level, self.engine.clock.now_ns()), stdout=shown)

    def _count_candle(self, event: CandleEvent) -> None:
        if event.closed:
            self._summary.bars += 1
            ts = event.candle.ts
            if self._first_bar_ns is None:
                self._first_bar_ns = ts
            self._last_bar_ns = ts

    def _count_order(self, event: OrderEvent) -> None:
        self.order_ids.add(event.order.id)
        self._summary.orders = len(self.order_ids)

    def _count_fill(self, _event: Fill) -> None:
        self._summary.fills += 1

    def _count_portfolio(self, event: PortfolioSnapshot) -> None:
        """The first snapshot's equity (without a starting capital) and the largest drawdown now; the
        last snapshot's figures when the summary is read."""
        self._portfolio = event
        s = self._summary
        if s.start_equity is None:
            s.start_equity = event.equity
        if event.drawdown > s.max_drawdown:  # (as `max` keeps the first of equals, and a NaN never wins)
            s.max_drawdown = event.drawdown

    def write(self, record: dict[str, Any], *, stdout: bool = True) -> None:
        """One record to the sinks (stdout) and to the log files (core/logs.py)."""
        data = self.encoder.encode(record)
        line = f"{data.decode()}\n"
        if stdout:
            for sink in list(self.sinks):
                try:
                    sink.write(line)
                except BrokenPipeError:
                    self._drop_sink(sink)
        log_record(record, line, len(data) + 1)

    def _drop_sink(self, sink: IO[str]) -> None:
        """The reader of `sink` went away: write nothing more there, and say so once (`on_broken_pipe`)."""
        self.sinks.remove(sink)
        with contextlib.suppress(OSError, ValueError):  # what the sink still buffers goes nowhere, quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sink.fileno())
            os.close(devnull)
        if self.on_broken_pipe is not None:
            self.on_broken_pipe()

    def finish(self, reason: str) -> Summary:
        s = self.summary
        s.reason = reason
        if self._first_bar_ns is not None and self._last_bar_ns is not None:
            s.first_bar = iso_utc(self._first_bar_ns, fraction=True)
            s.last_bar = iso_utc(self._last_bar_ns, fraction=True)
        if s.start_equity and s.final_equity is not None:
            engine = self.engine  # a local engine measures time-weighted, contributions out (Engine.performance)
            s.total_return = engine.performance()[0] if isinstance(engine, Engine) else \
                s.final_equity / s.start_equity - 1.0
        ts = self.engine.clock.now_ns()
        self.write({"ts": ts, "time": iso_utc(ts, fraction=True), "level": "info", "topic": "run.summary", "type": "Summary",
                    "event": s})
        for sink in list(self.sinks):
            try:
                sink.flush()
            except BrokenPipeError:
                self._drop_sink(sink)
        self.engine.bus.unsubscribe(self.sub)
        return s


async def run_headless(engine: Engine, *, stdout: IO[str], min_level: str = "info", capital: float | None = None,
                       handle_signals: bool = True, api: ApiLaunch | None = None,
                       rebuild: Callable[[Mode], Engine] | None = None) -> int:
    """Run the engine to the end of its feed or to a stop signal; returns the process exit code.

    With `api`, the control API serves this engine while it runs (and announces itself beside the
    database); it closes when the run ends. With `rebuild` (builds a fresh engine for a mode; raises
    TrdrError), the API may switch modes: see the module docstring."""
    logger = JsonLogger(engine, [stdout], min_level=min_level, capital=capital)
    current = [engine]
    stop_reason: list[str] = []
    switches: list[tuple[Mode, asyncio.Future[None]]] = []
    loop = asyncio.get_running_loop()
    stops: set[asyncio.Task[None]] = set()

    def request_stop(reason: str) -> None:
        if not stop_reason:
            stop_reason.append(reason)
            task = loop.create_task(current[0].stop(reason))
            stops.add(task)
            task.add_done_callback(stops.discard)

    async def switch_mode(mode: Mode) -> None:
        """The API's mode switch: stop this engine (checkpoint) and let the run loop start the next."""
        if stop_reason or switches:
            raise TrdrError("the run is stopping or already switching mode", hint="try again in a moment")
        done: asyncio.Future[None] = loop.create_future()
        switches.append((mode, done))
        await current[0].stop(f"switch to {mode.value}")
        await done

    if api is not None and rebuild is not None:
        api.hooks.mode_switcher = switch_mode

    pipe_closed: list[bool] = []

    def stdout_closed() -> None:
        """EPIPE on stdout: stop as for SIGTERM (checkpoint), exit 1 (output cut short)."""
        if not pipe_closed:
            pipe_closed.append(True)
            print("trdr: stdout was closed: stopping (the shutdown checkpoint is written; the log file has "
                  "every line)", file=sys.stderr)
        request_stop("stdout closed")

    logger.on_broken_pipe = stdout_closed

    installed: list[signal.Signals] = []
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, request_stop, f"signal {sig.name}")
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread / not supported
                pass
    early = stop_signals.take() if installed else None  # one that came while the run was starting
    code = 0
    try:
        if api is not None:
            await api.start(lambda: current[0])
        if early is not None:  # the engine starts and stops at once, as for a signal while it runs
            request_stop(f"signal {early.name}")
        # Everything built so far lives as long as the run (modules, the engine, the candles): keep it out
        # of the collector's full passes, which would otherwise walk it again and again (as the cockpit does)
        gc.freeze()
        while True:
            await current[0].run()
            if not switches:
                break
            mode, done = switches.pop()
            if stop_reason:
                done.set_exception(TrdrError("the run was stopped before the mode switch"))
                break
            assert rebuild is not None
            previous = current[0].mode
            try:
                current[0] = rebuild(mode)
                done.set_result(None)
            except TrdrError as exc:
                done.set_exception(exc)
                current[0] = rebuild(previous)
            logger.bind(current[0])
            if api is not None:
                api.announce(current[0])
        if stops:
            await asyncio.gather(*stops)
        reason = stop_reason[0] if stop_reason else "end of feed"
    except TrdrError as exc:
        e = current[0]
        logger.write({"ts": e.clock.now_ns(), "time": iso_utc(e.clock.now_ns(), fraction=True), "level": "error",
                      "topic": "engine.error", "type": type(exc).__name__, "event": {"message": exc.render()}})
        print(f"trdr: error: {exc}", file=sys.stderr)  # stdout is for machines; the operator reads stderr
        reason, code = f"error: {exc.message}", exc.exit_code  # 2: bad input, e.g. --api on a port in use
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        if api is not None:
            await api.stop()
    logger.finish(reason)
    return 1 if pipe_closed and code == 0 else code
