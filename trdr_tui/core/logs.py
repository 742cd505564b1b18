"""Structured JSON logs with rotation (PRD §6.1), written the same way by the headless runner and the cockpit.

    files = LogFiles.open(Path("trdr.log"), level="info", max_bytes=10_000_000, backups=5)
    events = EventLog(engine.bus, engine.clock, min_level="info")   # engine events into the logs
    ...
    events.close(); files.close()

Three files, each rotated by `logging.handlers.RotatingFileHandler` at `max_bytes` keeping `backups` old
copies (`trdr.log.1`, `trdr.log.2`, …):

* `trdr.log` — every record at or above the level;
* `trdr.errors.log` — records at level error and above;
* `trdr.trades.log` — fills (topic `fill.<symbol>`), whatever the level.

Each line is one JSON object. Engine events: `{"ts", "time", "level", "topic", "type", "event"}` with
`ts` in ns and `time` in ISO-8601 UTC, both from the engine clock. Records of the `trdr` and `trdr_tui`
Python loggers (API, exchange client, agents): `{"ts", "time", "level", "logger", "message"}` (plus `exc`,
the traceback, when there is one), timed by `logging` itself.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

import msgspec

from trdr_tui.core.bus import EventBus, Subscription
from trdr_tui.core.clock import Clock
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.events import CandleEvent, LogEvent, OrderEvent
from trdr_tui.core.timefmt import iso_utc

LEVELS = ("debug", "info", "warning", "error")
LEVEL_NO = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# Per-bar and per-tick state is debug; anything that changes money, orders or the engine is info.
DEBUG_TOPICS = ("market.", "portfolio.", "grid.", "agent.signal.", "backtest.progress")
TRADE_TOPICS = ("fill.",)
LOGGERS = ("trdr", "trdr_tui")  # the Python loggers whose records reach the files
EVENTS = logging.getLogger("trdr.events")


def check_level(level: str) -> str:
    """`level` when it is one of LEVELS; raises ConfigError naming the choices otherwise."""
    if level not in LEVELS:
        raise ConfigError(f"unknown log level '{level}'", hint=f"use one of {', '.join(LEVELS)}")
    return level


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


def event_record(topic: str, event: Any, level: str, now_ns: int) -> dict[str, Any]:
    """The JSON object of one engine event (times from the engine clock, `now_ns` when it has none)."""
    ts = event_ts(event, now_ns)
    return {"ts": ts, "time": iso_utc(ts, fraction=True), "level": level, "topic": topic,
            "type": type(event).__name__, "event": event}


def log_record(record: dict[str, Any], text: str | None = None) -> None:
    """Hand one event record (see `event_record`) to the log files; `text`, when given, is the record
    already encoded as one JSON object (the headless runner's stdout line), written as it is."""
    level = LEVEL_NO.get(str(record.get("level")), logging.INFO)
    if EVENTS.isEnabledFor(level):
        # `Logger.log` without its stack walk for the caller's file and line, which no line shows
        EVENTS.handle(EVENTS.makeRecord(EVENTS.name, level, "(unknown file)", 0, "%s", (record.get("topic"),), None,
                                        extra={"trdr_record": record, "trdr_text": text}))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: an engine event as it is, any other record with its logger name."""

    def __init__(self) -> None:
        super().__init__()
        self._encoder = msgspec.json.Encoder()

    def format(self, record: logging.LogRecord) -> str:
        # one record reaches up to three files, and a rotating file formats it twice (size check,
        # then write): it is encoded once and the text kept on the record
        text = getattr(record, "trdr_text", None)
        if text is None:
            text = record.trdr_text = self._format(record)
        return text

    def _format(self, record: logging.LogRecord) -> str:
        data = getattr(record, "trdr_record", None)
        if not isinstance(data, dict):
            ts = int(record.created * 1e9)
            data = {"ts": ts, "time": iso_utc(ts, fraction=True), "level": record.levelname.lower(),
                    "logger": record.name, "message": record.getMessage()}
            if record.exc_info:
                data["exc"] = self.formatException(record.exc_info)
        return self._encoder.encode(data).decode()


class _RotatingFile(logging.handlers.RotatingFileHandler):
    """`RotatingFileHandler` that asks whether its path is a regular file once, when it opens it, not
    on every record (the stdlib asks with two `stat` calls per record; only regular files rotate)."""

    _regular = True

    def _open(self) -> Any:
        stream = super()._open()
        self._regular = os.path.isfile(self.baseFilename)
        return stream

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        if self.stream is None:
            self.stream = self._open()
        if self.maxBytes <= 0 or not self._regular:
            return False
        msg = f"{self.format(record)}\n"
        self.stream.seek(0, 2)
        return bool(self.stream.tell() + len(msg) >= self.maxBytes)


class _TradesOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "trdr_record", None)
        return isinstance(data, dict) and str(data.get("topic", "")).startswith(TRADE_TOPICS)


def side_path(path: Path, kind: str) -> Path:
    """`trdr.log` → `trdr.<kind>.log` (the errors and trades files beside the main log)."""
    return path.with_name(f"{path.stem}.{kind}{path.suffix or '.log'}")


class _LogFile(_RotatingFile):
    """A log file that, when it cannot be written (a full disk), says so once on stderr and drops the
    records, instead of a traceback per record."""

    _warned = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self._warned:
            self._warned = True
            exc = sys.exc_info()[1]
            why = getattr(exc, "strerror", None) or exc
            sys.stderr.write(f"trdr: warning: cannot write the log file {self.baseFilename} ({why}); "
                             "its records are dropped: free disk space\n")


class LogFiles:
    """The three rotating JSON log files, attached to the `trdr` and `trdr_tui` loggers until `close()`."""

    def __init__(self, path: Path, handlers: list[logging.Handler], level: str) -> None:
        self.path = path
        self.handlers = handlers
        self.level = level
        self._levels = {name: logging.getLogger(name).level for name in LOGGERS}

    @classmethod
    def open(cls, path: Path, *, level: str, max_bytes: int, backups: int) -> LogFiles:
        """Create the directory and attach the handlers. Raises ConfigError for a bad level or a path
        that cannot be written (naming it)."""
        check_level(level)
        formatter = JsonFormatter()
        specs: list[tuple[Path, int, logging.Filter | None]] = [
            (path, LEVEL_NO[level], None),
            (side_path(path, "errors"), logging.ERROR, None),
            (side_path(path, "trades"), logging.DEBUG, _TradesOnly()),
        ]
        handlers: list[logging.Handler] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for file, file_level, only in specs:
                handler = _LogFile(file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
                handler.setLevel(file_level)
                handler.setFormatter(formatter)
                if only is not None:
                    handler.addFilter(only)
                handlers.append(handler)
        except OSError as exc:
            for h in handlers:
                h.close()
            raise ConfigError(f"cannot write the log file {path}: {exc.strerror}",
                              hint="pass --log-file to put it somewhere writable") from None
        files = cls(path, handlers, level)
        lowest = min(LEVEL_NO[level], logging.INFO)  # fills (info) reach the trades file at any level
        for name in LOGGERS:
            logger = logging.getLogger(name)
            logger.setLevel(lowest)
            for h in handlers:
                logger.addHandler(h)
        return files

    def close(self) -> None:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            for h in self.handlers:
                logger.removeHandler(h)
            logger.setLevel(self._levels[name])
        for h in self.handlers:
            with suppress(OSError):  # its last records cannot be flushed (a full disk): said once already
                h.close()
        self.handlers = []


class EventLog:
    """Subscribes to an engine's bus and sends its events at or above `min_level` (fills always) to the
    log files. `bind` follows a new engine (the cockpit's mode switch)."""

    def __init__(self, bus: EventBus, clock: Clock, *, min_level: str = "info") -> None:
        self.min_index = LEVELS.index(check_level(min_level))
        self._bus: EventBus | None = None
        self._sub: Subscription | None = None
        self.clock = clock
        self.bind(bus, clock)

    def bind(self, bus: EventBus, clock: Clock) -> None:
        if bus is self._bus:
            return
        self.close()
        self._bus, self.clock = bus, clock
        self._sub = bus.subscribe("*", self.on_event)

    def on_event(self, topic: str, event: Any) -> None:
        level = event_level(topic, event)
        if LEVELS.index(level) >= self.min_index or topic.startswith(TRADE_TOPICS):
            log_record(event_record(topic, event, level, self.clock.now_ns()))

    def close(self) -> None:
        if self._bus is not None and self._sub is not None:
            self._bus.unsubscribe(self._sub)
        self._bus = self._sub = None
