"""Operator events: what the exchange side did that an operator has to see, rate limited.

REST retries, sends kept for recovery, recoveries, exchange rejections and rejected API keys become
`LogEvent`s on the engine's bus (topic `log.<level>`), so the cockpit's log pane, the headless JSON
lines and the rotating JSON logs (`core/logs.py`) all show them. Before a bus is bound (or without
one, e.g. `trdr account`) they go to the `trdr.exchange` Python logger instead.

    events = OperatorEvents(window_s=60.0)
    events.bind(engine.bus, engine.clock)
    events.emit("rest.retry:ConnectionLost", "warning", "exchange", "GET /accounts: HTTP 503; retry 1 in 1.00s")

Rate limiting: the first event of a key is published at once; repeats of the same key within
`window_s` seconds of it are counted, not published, and one summary follows when the window ends
(`"<last message> (repeated N more times in W s)"`, field `repeated = N`). A burst of 100 identical
retries is therefore two lines. `flush()` publishes pending summaries at once (at shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import Clock
from trdr_tui.core.events import LogEvent

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
FieldValue = str | float | int | bool | None
log = logging.getLogger("trdr.exchange")


@dataclass
class _Window:
    """One key's current window: when it opened and the repeats seen since (the latest one kept)."""

    opened: float
    repeats: int = 0
    level: str = "info"
    source: str = ""
    message: str = ""
    fields: dict[str, FieldValue] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None


class OperatorEvents:
    """Publishes operator events (`emit`), at most one per key per `window_s` plus one summary of the
    repeats. `monotonic` (seconds) is injectable for tests."""

    def __init__(self, *, window_s: float = 60.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be above 0, got {window_s}")
        self.window_s = window_s
        self._monotonic = monotonic
        self._bus: EventBus | None = None
        self._clock: Clock | None = None
        self._windows: dict[str, _Window] = {}
        self.published = 0
        self.suppressed = 0

    def bind(self, bus: EventBus, clock: Clock) -> None:
        """Publish on `bus`, timed by `clock` (the engine's) from now on."""
        self._bus, self._clock = bus, clock

    def emit(self, key: str, level: str, source: str, message: str, **fields: FieldValue) -> bool:
        """One event of kind `key` at `level` (debug|info|warning|error). True when it was published,
        False when it was counted as a repeat (it reaches the operator in the window's summary)."""
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}")
        now = self._monotonic()
        win = self._windows.get(key)
        if win is not None and now - win.opened < self.window_s:
            win.repeats += 1
            win.level, win.source, win.message, win.fields = level, source, message, dict(fields)
            self.suppressed += 1
            if win.timer is None:
                win.timer = _call_later(win.opened + self.window_s - now, self._summarise, key)
            return False
        if win is not None:
            self._summarise(key)
        self._windows[key] = _Window(opened=now)
        self._publish(level, source, message, {"event": key, **fields})
        return True

    def flush(self) -> None:
        """Publish every pending summary now (a run that stops must not swallow its repeats)."""
        for key in list(self._windows):
            self._summarise(key)

    def _summarise(self, key: str) -> None:
        win = self._windows.pop(key, None)
        if win is None:
            return
        if win.timer is not None:
            win.timer.cancel()
        if win.repeats:
            text = f"{win.message} (repeated {win.repeats} more time{'s' if win.repeats > 1 else ''} " \
                   f"in {self.window_s:g} s)"
            self._publish(win.level, win.source, text, {"event": key, **win.fields, "repeated": win.repeats})

    def _publish(self, level: str, source: str, message: str, fields: dict[str, FieldValue]) -> None:
        self.published += 1
        bus, clock = self._bus, self._clock
        if bus is None or clock is None:
            log.log(LEVELS[level], "%s: %s", source, message)
            return
        bus.publish(f"log.{level}", LogEvent(ts=clock.now_ns(), level=level, source=source, message=message,
                                             fields=fields))


def _call_later(delay: float, callback: Callable[[str], None], key: str) -> asyncio.TimerHandle | None:
    """A summary timer on the running loop; None outside one (the next `emit` or `flush` summarises)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop.call_later(max(delay, 0.0), callback, key)
