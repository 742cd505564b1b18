"""Timers the engine runs on its Clock (checkpoints today)."""

from __future__ import annotations

from trdr_tui.core.clock import Clock, SimClock, TimerCallback, TimerHandle


class PeriodicTimer:
    """Calls `callback(now)` every `interval_ns` of clock time, at most once per clock step.

    A SimClock moved by a whole bar (an hour) crosses a short interval (60 s) many times in one step;
    catching up on every crossing would repeat the same work on the same state. So a due timer fires
    once and the next firing is one interval after the time it fired at, which is the end of the step.
    On a SimClock the engine polls it right after each step it makes (the clock's own timers fire
    inside the step, at their own times); on a real clock the clock's timer calls it.
    """

    __slots__ = ("_handle", "callback", "clock", "interval_ns", "next_ns", "polled")

    def __init__(self, clock: Clock, interval_ns: int, callback: TimerCallback) -> None:
        if interval_ns <= 0:
            raise ValueError(f"a periodic timer needs a positive interval, got {interval_ns} ns")
        self.clock = clock
        self.interval_ns = interval_ns
        self.callback = callback
        self.next_ns = clock.now_ns() + interval_ns
        self.polled = isinstance(clock, SimClock)
        self._handle: TimerHandle | None = None if self.polled else clock.call_at(self.next_ns, self._on_timer)

    def poll(self, now_ns: int) -> None:
        """After a clock step to `now_ns`: fire once if due, then schedule from `now_ns`."""
        if now_ns >= self.next_ns:
            self.next_ns = now_ns + self.interval_ns
            self.callback(now_ns)

    def _on_timer(self, _when_ns: int) -> None:
        now = self.clock.now_ns()
        self.next_ns = now + self.interval_ns
        self._handle = self.clock.call_at(self.next_ns, self._on_timer)
        self.callback(now)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.next_ns = 2**63 - 1
