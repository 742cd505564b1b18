"""Time constraints on orders (PRD §3.3.1 `TimeConstraints`): maximum duration, blackout periods,
absolute expiry.

Every rule reads the time the order manager is given: the bar's close time in a backtest (the
SimClock), the engine's clock in paper and live. All windows are UTC.

* **Maximum duration** (`time_constraints.limit_max_duration_hours`): a resting limit order older than
  this is cancelled ("time limit reached"); the policy re-places it on a later bar at the size and
  price it would choose then (PRD `reassessOrder`). Trailing orders keep their own limit,
  `trailing.max_duration_hours` (EXPIRED).
* **Blackouts** (`time_constraints.blackouts`): inside a window no new BUY is placed (refused like a
  risk check, E006 `blackout`), and as a window starts the open BUYs are cancelled. SELLs go on: they
  only reduce the position, and a stop must never wait for a window to end.
* **Expiry** (`time_constraints.expires_at`): from that instant on the same holds for good: no new BUY,
  open BUYs cancelled once; SELLs (take-profits, stops) still close what is held.
"""

from __future__ import annotations

from trdr_tui.config import WEEKDAYS, Blackout, TimeConstraintsConfig, parse_hhmm, parse_utc

NS_PER_MINUTE = 60_000_000_000
MINUTES_PER_DAY = 24 * 60
HOUR_NS = 60 * NS_PER_MINUTE
# 1970-01-01 was a Thursday: (days since the epoch + EPOCH_WEEKDAY) % 7 is 0 on Mondays
EPOCH_WEEKDAY = 3


class Window:
    """One blackout window as minutes of the UTC day and the weekdays (0 = Monday) it starts on."""

    __slots__ = ("days", "end", "label", "start")

    def __init__(self, blackout: Blackout) -> None:
        self.start = parse_hhmm(blackout.start, "start")
        end = parse_hhmm(blackout.end, "end")
        self.end = end if end > self.start else end + MINUTES_PER_DAY  # past midnight
        self.days = frozenset(WEEKDAYS.index(d) for d in blackout.days) if blackout.days else frozenset(range(7))
        days = ",".join(blackout.days) if blackout.days else "daily"
        self.label = f"blackout {blackout.start}-{blackout.end} UTC ({days})"

    def contains(self, now_ns: int) -> bool:
        """Whether `now_ns` (ns since the epoch) lies in [start, end) of a window starting on one of its days
        (today's, or yesterday's running past midnight)."""
        minute = now_ns // NS_PER_MINUTE
        day, of_day = divmod(minute, MINUTES_PER_DAY)
        for back in (0, 1):
            if (day - back + EPOCH_WEEKDAY) % 7 in self.days:
                t = of_day + back * MINUTES_PER_DAY
                if self.start <= t < self.end:
                    return True
        return False


class TimeConstraints:
    """The configured constraints, asked by the order manager (`OrderManager.constraints`)."""

    def __init__(self, windows: list[Window], expires_ns: int | None, limit_max_duration_ns: int | None) -> None:
        self.windows = windows
        self.expires_ns = expires_ns
        self.limit_max_duration_ns = limit_max_duration_ns
        self._blocked = ""  # why BUYs were refused at the last `on_time` ("" : they were not)

    @classmethod
    def from_config(cls, cfg: TimeConstraintsConfig) -> TimeConstraints | None:
        """None when nothing is configured (the order manager then does no per-bar work for it)."""
        windows = [Window(b) for b in cfg.blackouts]
        expires = parse_utc(cfg.expires_at, "expires_at") if cfg.expires_at else None
        limit = int(cfg.limit_max_duration_hours * HOUR_NS) if cfg.limit_max_duration_hours > 0 else None
        if not windows and expires is None and limit is None:
            return None
        return cls(windows, expires, limit)

    def entry_block(self, now_ns: int) -> str:
        """Why a new BUY may not be placed at `now_ns` ("expired" or the blackout's label), "" when it may."""
        if self.expires_ns is not None and now_ns >= self.expires_ns:
            return "expired"
        for w in self.windows:
            if w.contains(now_ns):
                return w.label
        return ""

    def became_blocked(self, now_ns: int) -> str:
        """The reason when BUYs just became blocked (a window started, the expiry passed) since the last
        call, else "": the caller cancels the open BUYs once per start."""
        reason = self.entry_block(now_ns)
        started = reason if reason and reason != self._blocked else ""
        self._blocked = reason
        return started
