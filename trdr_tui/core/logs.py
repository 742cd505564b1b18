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
from trdr_tui.core.types import Decision

LEVELS = ("debug", "info", "warning", "error")
LEVEL_NO = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# Per-bar and per-tick state is debug; anything that changes money, orders or the engine is info.
DEBUG_TOPICS = ("market.", "portfolio.", "grid.", "agent.signal.", "backtest.progress")
TRADE_TOPICS = ("fill.",)
LOGGERS = ("trdr", "trdr_tui")  # the Python loggers whose records reach the files
EVENTS = logging.getLogger("trdr.events")
_ENCODER = msgspec.json.Encoder()
_OPEN: list[LogFiles] = []  # trdr's log files while they are open (engine events are written to them directly)


def check_level(level: str) -> str:
    """`level` when it is one of LEVELS; raises ConfigError naming the choices otherwise."""
    if level not in LEVELS:
        raise ConfigError(f"unknown log level '{level}'", hint=f"use one of {', '.join(LEVELS)}")
    return level


def debug_only(topic: str, min_level: str) -> bool:
    """Whether every event on `topic` logs below `min_level`: the per-bar state topics (`DEBUG_TOPICS`)
    above debug. Fills are never among them, and log events (whose level is their own) are published
    on `log.<level>` only. A subscriber that only logs need not see such a topic (`EventBus.subscribe`'s
    `wants`)."""
    return min_level != "debug" and topic.startswith(DEBUG_TOPICS)


def event_level(topic: str, event: Any) -> str:
    if isinstance(event, LogEvent):
        return event.level if event.level in LEVELS else "info"
    if topic.startswith("risk.") or (topic == "feed.health" and not getattr(event, "healthy", True)):
        return "warning"
    return "debug" if topic.startswith(DEBUG_TOPICS) else "info"


class VerdictChanges:
    """The log level of the panel's decisions: `info` when a decision's action differs from the previous
    decision on its topic (the verdict changed: HOLD → TRAIL_BUY, …), `debug` when it repeats it. A
    decision is made every bar (≈ 1.6 KB of JSON with every agent's vote); the log at info keeps what
    changes, and every decision stays in the decision log (`trdr inspect decisions`) and at debug."""

    def __init__(self) -> None:
        self._last: dict[str, Any] = {}

    def level(self, topic: str, decision: Decision) -> str:
        previous = self._last.get(topic)
        self._last[topic] = decision.action
        return "debug" if decision.action is previous else "info"


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


def log_record(record: dict[str, Any], line: str | None = None, nbytes: int | None = None) -> None:
    """Hand one event record (see `event_record`) to the log files; `line`, when given, is the record
    already encoded as one JSON object and a newline (the headless runner's stdout line), written as it
    is, and `nbytes` its length in UTF-8 bytes when known.

    With trdr's log files open (`LogFiles.open`), the line goes straight to them: one encoding and one
    write per file, without building a `logging.LogRecord` (an engine emits one or more records per
    bar). Otherwise it goes through the `trdr.events` logger, to whatever handlers are attached."""
    level = LEVEL_NO.get(str(record.get("level")), logging.INFO)
    if _OPEN:
        if line is None:
            data = _ENCODER.encode(record)
            line, nbytes = f"{data.decode()}\n", len(data) + 1
        trade = str(record.get("topic", "")).startswith(TRADE_TOPICS)
        for files in _OPEN:
            files.write_line(line, level, trade=trade, nbytes=nbytes)
    elif EVENTS.isEnabledFor(level):
        # `Logger.log` without its stack walk for the caller's file and line, which no line shows
        text = None if line is None else line[:-1]
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
    """`RotatingFileHandler` that keeps the file's size itself instead of asking the file before every
    record (the stdlib seeks to the end and asks for the position per record); it asks whether its
    path is a regular file once, when it opens it (only regular files rotate)."""

    _regular = True
    _size = 0  # bytes in the open file: read when it opens, then counted as lines are written

    def _open(self) -> Any:
        stream = super()._open()
        self._regular = os.path.isfile(self.baseFilename)
        self._size = os.path.getsize(self.baseFilename) if self._regular else 0
        return stream

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        return self._due(len(f"{self.format(record)}\n".encode()))

    def _due(self, nbytes: int) -> bool:
        if self.stream is None:
            self.stream = self._open()
        return self.maxBytes > 0 and self._regular and self._size + nbytes >= self.maxBytes

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        with suppress(Exception):  # the record itself failed to format: handled (and said) by emit
            self._size += len(f"{self.format(record)}\n".encode())

    def write_line(self, line: str, nbytes: int | None = None) -> None:
        """One formatted line (ending in a newline; `nbytes` long in UTF-8 when the caller knows) to the
        file, rotating first when it would pass `maxBytes`; flushed at once, as `emit` does."""
        if nbytes is None:
            nbytes = len(line.encode())
        self.acquire()
        try:
            if self._due(nbytes):
                self.doRollover()
            stream = self.stream
            if stream is None:
                stream = self.stream = self._open()
            stream.write(line)
            stream.flush()
            self._size += nbytes
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": line.rstrip()}))
        finally:
            self.release()


class _TradesOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "trdr_record", None)
        return isinstance(data, dict) and str(data.get("topic", "")).startswith(TRADE_TOPICS)


def side_path(path: Path, kind: str) -> Path:
    """`trdr.log` → `trdr.<kind>.log` (the errors and trades files beside the main log)."""
    return path.with_name(f"{path.stem}.{kind}{path.suffix or '.log'}")


class _LogFile(_RotatingFile):
    """A log file that, when it cannot be written (a full disk) or a record cannot be (text that is not
    valid Unicode), says so on stderr once for each of the two and drops those records, instead of a
    traceback per record."""

    _warned: frozenset[bool] = frozenset()  # which kinds were said: True the file, False a record
    trades_only = False  # the trades file: fills only (`_TradesOnly`), at any level

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        disk = isinstance(exc, OSError)
        if disk in self._warned:
            return
        self._warned = self._warned | {disk}
        if disk:
            why = getattr(exc, "strerror", None) or exc
            sys.stderr.write(f"trdr: warning: cannot write the log file {self.baseFilename} ({why}); "
                             "its records are dropped: free disk space\n")
        else:
            sys.stderr.write(f"trdr: warning: a record could not be written to the log file {self.baseFilename} "
                             f"({exc}); records like it are dropped, the others are written\n")


class LogFiles:
    """The three rotating JSON log files, attached to the `trdr` and `trdr_tui` loggers until `close()`."""

    def __init__(self, path: Path, handlers: list[logging.Handler], level: str) -> None:
        self.path = path
        self.handlers = handlers
        self.level = level
        self._levels = {name: logging.getLogger(name).level for name in LOGGERS}

    def write_line(self, line: str, level: int, *, trade: bool, nbytes: int | None = None) -> None:
        """One engine-event line (see `log_record`; `nbytes` its UTF-8 length when known) to each file
        that takes its level (the trades file takes fills only, at any level)."""
        for handler in self.handlers:
            if isinstance(handler, _LogFile) and (trade if handler.trades_only else level >= handler.level):
                handler.write_line(line, nbytes)

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
                    handler.trades_only = True
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
        _OPEN.append(files)
        return files

    def close(self) -> None:
        if self in _OPEN:
            _OPEN.remove(self)
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
        self.min_level = check_level(min_level)
        self.min_index = LEVELS.index(min_level)
        self._bus: EventBus | None = None
        self._sub: Subscription | None = None
        self.clock = clock
        self.verdicts = VerdictChanges()
        self.bind(bus, clock)

    def bind(self, bus: EventBus, clock: Clock) -> None:
        if bus is self._bus:
            return
        self.close()
        self._bus, self.clock = bus, clock
        self._sub = bus.subscribe("*", self.on_event, wants=self.wants)

    def wants(self, topic: str) -> bool:
        """The topics whose events may reach the files (the bus asks once per topic)."""
        return not debug_only(topic, self.min_level)

    def on_event(self, topic: str, event: Any) -> None:
        level = self.verdicts.level(topic, event) if type(event) is Decision else event_level(topic, event)
        if LEVELS.index(level) >= self.min_index or topic.startswith(TRADE_TOPICS):
            log_record(event_record(topic, event, level, self.clock.now_ns()))

    def close(self) -> None:
        if self._bus is not None and self._sub is not None:
            self._bus.unsubscribe(self._sub)
        self._bus = self._sub = None
