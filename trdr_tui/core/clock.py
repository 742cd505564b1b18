"""The one source of time for engine code.

`SimClock` is moved explicitly (backtests, tests); `WallClock` reads the system clock (paper, live).
Both fire timers registered with `call_at`. Nothing else in the engine may read the wall clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

NS_PER_SECOND = 1_000_000_000

TimerCallback = Callable[[int], None]


class Clock(Protocol):
    def now_ns(self) -> int: ...

    def call_at(self, when_ns: int, callback: TimerCallback) -> TimerHandle: ...


class TimerHandle:
    __slots__ = ("callback", "cancelled", "when_ns")

    def __init__(self, when_ns: int, callback: TimerCallback) -> None:
        self.when_ns = when_ns
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SimClock:
    """Simulated time: starts at `start_ns` and only moves on `advance_to`."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns
        self._timers: list[tuple[int, int, TimerHandle]] = []
        self._seq = itertools.count()

    def now_ns(self) -> int:
        return self._now

    def call_at(self, when_ns: int, callback: TimerCallback) -> TimerHandle:
        handle = TimerHandle(when_ns, callback)
        heapq.heappush(self._timers, (when_ns, next(self._seq), handle))
        return handle

    def advance_to(self, t_ns: int) -> None:
        """Move time forward to `t_ns`, firing due timers in time order (each sees its own time)."""
        if t_ns < self._now:
            raise ValueError(f"SimClock cannot go back in time: {t_ns} < {self._now}")
        timers = self._timers
        while timers and timers[0][0] <= t_ns:
            when, _, handle = heapq.heappop(timers)
            if handle.cancelled:
                continue
            self._now = max(self._now, when)
            handle.callback(self._now)
        self._now = t_ns


class WallClock:
    """Real time. Timers run on the asyncio loop."""

    def now_ns(self) -> int:
        return time.time_ns()

    def call_at(self, when_ns: int, callback: TimerCallback) -> TimerHandle:
        handle = TimerHandle(when_ns, callback)
        loop = asyncio.get_running_loop()
        delay = max((when_ns - self.now_ns()) / NS_PER_SECOND, 0.0)

        def fire() -> None:
            if not handle.cancelled:
                callback(self.now_ns())

        loop.call_later(delay, fire)
        return handle


class FrozenClock(SimClock):
    """A SimClock fixed at one instant (snapshot tests)."""

    def advance_to(self, t_ns: int) -> None:  # pragma: no cover - trivial
        raise RuntimeError("FrozenClock does not move")


def ns_to_seconds(ns: int) -> float:
    return ns / NS_PER_SECOND


def seconds_to_ns(seconds: float) -> int:
    return round(seconds * NS_PER_SECOND)
