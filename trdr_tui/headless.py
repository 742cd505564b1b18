"""`trdr --headless`: the same engine with no UI, for servers.

Every event becomes one JSON line on stdout and in the log file: `{"ts", "time", "level", "topic",
"type", "event"}` (times from the engine clock). SIGINT/SIGTERM ask the engine to stop; it writes its
shutdown checkpoint and the process exits 0. When the feed ends (a replay), a final `Summary` line
reports what happened. Engine failures exit 1 with the error as the last line.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec

from trdr_tui.core.engine_api import EngineControl
from trdr_tui.core.errors import TrdrError
from trdr_tui.core.events import CandleEvent, LogEvent, OrderEvent, PortfolioSnapshot
from trdr_tui.core.timefmt import iso_utc
from trdr_tui.core.types import Fill

if TYPE_CHECKING:
    from trdr_tui.api.host import ApiLaunch
    from trdr_tui.engine.loop import Engine

LEVELS = ("debug", "info", "warning", "error")
# Per-bar and per-tick state is debug; anything that changes money, orders or the engine is info.
DEBUG_TOPICS = ("market.", "portfolio.", "grid.", "agent.signal.", "backtest.progress")


def event_level(topic: str, event: Any) -> str:
    if isinstance(event, LogEvent):
        return event.level if event.level in LEVELS else "info"
    if topic.startswith("risk.") or (topic == "feed.health" and not getattr(event, "healthy", True)):
        return "warning"
    return "debug" if topic.startswith(DEBUG_TOPICS) else "info"


def event_ts(event: Any, fallback: int) -> int:
    ts = getattr(event, "ts", None)
    if isinstance(event, CandleEvent):
        ts = event.candle.ts
    elif isinstance(event, OrderEvent):
        ts = event.transition.ts
    return ts if isinstance(ts, int) else fallback


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
        self.min_index = LEVELS.index(min_level)
        self.encoder = msgspec.json.Encoder()
        self.summary = Summary(reason="running", start_equity=capital)
        self.order_ids: set[str] = set()
        self.sub = engine.bus.subscribe("*", self.on_event)

    def on_event(self, topic: str, event: Any) -> None:
        self._count(event)
        level = event_level(topic, event)
        if LEVELS.index(level) >= self.min_index:
            ts = event_ts(event, self.engine.clock.now_ns())
            self.write({"ts": ts, "time": iso_utc(ts, fraction=True), "level": level, "topic": topic,
                        "type": type(event).__name__, "event": event})

    def _count(self, event: Any) -> None:
        s = self.summary
        if isinstance(event, CandleEvent) and event.closed:
            s.bars += 1
            s.first_bar = s.first_bar or iso_utc(event.candle.ts, fraction=True)
            s.last_bar = iso_utc(event.candle.ts, fraction=True)
        elif isinstance(event, OrderEvent):
            self.order_ids.add(event.order.id)
            s.orders = len(self.order_ids)
        elif isinstance(event, Fill):
            s.fills += 1
        elif isinstance(event, PortfolioSnapshot):
            if s.start_equity is None:
                s.start_equity = event.equity
            s.final_equity = event.equity
            s.fees = event.fees
            s.price = event.price
            s.position = event.position
            s.max_drawdown = max(s.max_drawdown, event.drawdown)

    def write(self, record: dict[str, Any]) -> None:
        line = self.encoder.encode(record).decode() + "\n"
        for sink in self.sinks:
            sink.write(line)

    def finish(self, reason: str) -> Summary:
        s = self.summary
        s.reason = reason
        if s.start_equity and s.final_equity is not None:
            s.total_return = s.final_equity / s.start_equity - 1.0
        ts = self.engine.clock.now_ns()
        self.write({"ts": ts, "time": iso_utc(ts, fraction=True), "level": "info", "topic": "run.summary", "type": "Summary",
                    "event": s})
        for sink in self.sinks:
            sink.flush()
        self.engine.bus.unsubscribe(self.sub)
        return s


async def run_headless(engine: Engine, *, stdout: IO[str], log_path: Path | None,
                       min_level: str = "info", capital: float | None = None,
                       handle_signals: bool = True, api: ApiLaunch | None = None) -> int:
    """Run the engine to the end of its feed or to a stop signal; returns the process exit code.

    With `api`, the control API serves this engine while it runs (and announces itself beside the
    database); it closes when the run ends."""
    log_file: IO[str] | None = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("a", encoding="utf-8")
    sinks = [stdout] if log_file is None else [stdout, log_file]
    logger = JsonLogger(engine, sinks, min_level=min_level, capital=capital)
    stop_reason: list[str] = []
    loop = asyncio.get_running_loop()
    stops: set[asyncio.Task[None]] = set()

    def request_stop(name: str) -> None:
        if not stop_reason:
            stop_reason.append(f"signal {name}")
            task = loop.create_task(engine.stop(f"signal {name}"))
            stops.add(task)
            task.add_done_callback(stops.discard)

    installed: list[signal.Signals] = []
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, request_stop, sig.name)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread / not supported
                pass
    code = 0
    try:
        if api is not None:
            await api.start(lambda: engine)
        await engine.run()
        if stops:
            await asyncio.gather(*stops)
        reason = stop_reason[0] if stop_reason else "end of feed"
    except TrdrError as exc:
        logger.write({"ts": engine.clock.now_ns(), "time": iso_utc(engine.clock.now_ns(), fraction=True), "level": "error",
                      "topic": "engine.error", "type": type(exc).__name__, "event": {"message": exc.render()}})
        reason, code = f"error: {exc.message}", 1
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        if api is not None:
            await api.stop()
    logger.finish(reason)
    if log_file is not None:
        log_file.close()
    return code
