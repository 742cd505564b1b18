"""The risk manager (PRD §3.6): every order passes `check` before it exists; a refusal is E006.

Checks, by name (the names appear in `RiskLimitExceeded.failed_checks` and `risk.rejected` events):

* `max_drawdown`   — equity is `max_drawdown` or more below its peak, or the drawdown halt is in force:
                     no new BUYs (SELLs still allowed).
* `daily_loss`     — equity is `daily_loss_limit` or more below the day's opening equity (UTC day of
                     the Clock): no new BUYs.
* `max_position`   — a BUY would make the position worth more than `position_cap` × equity
                     (`max_position`; with `drawdown_scaling` shrinking to 0 at `max_drawdown`).
* `max_concurrent` — a BUY would make more than `max_concurrent_trades` entries open at once
                     (open BUY orders plus lots held).
* `position_size`  — a SELL larger than the position not already claimed by open SELLs, or a
                     non-positive size.

The drawdown halt (PRD §3.6) is explicit state: the first bar marked `max_drawdown` below the peak sets
`halted_at` (ns) and `halt_reason`, and tells `halt_listeners` (the engine logs it and publishes
`engine.status`). It recovers by a documented rule: after `halt_cooloff_hours` of clock time, or at
once when the operator calls `acknowledge_halt`, the halt lifts and the peak is re-based to the equity
at that moment, so the limit measures the drawdown from there on. Every halt is kept in `halts`.

`stop_loss` is a different kind of rule: `stop_loss_hit` says when the price is `stop_loss` below the
average entry, and the engine then closes the position. The limits come from the resolved Settings
(profile values filled in); `RiskLimits.none()` switches the caps off (the `simple-trailing` preset) but
the order still goes through `check`, so there is no path around it.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from trdr_tui.config import Settings
from trdr_tui.core.clock import NS_PER_SECOND
from trdr_tui.core.errors import RiskLimitExceeded
from trdr_tui.core.types import SELL_SIDE, Side
from trdr_tui.trading.portfolio import Portfolio

DAY_NS = 86_400 * NS_PER_SECOND


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_drawdown: float | None = 0.15
    daily_loss_limit: float | None = 0.05
    stop_loss: float | None = 0.02
    max_position: float | None = 0.25
    max_concurrent_trades: int | None = 3
    halt_cooloff_hours: float = 168.0
    drawdown_scaling: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> RiskLimits:
        r = settings.risk
        return cls(max_drawdown=r.max_drawdown, daily_loss_limit=r.daily_loss_limit,
                   stop_loss=r.stop_loss if r.stop_loss > 0 else None, max_position=r.max_position,
                   max_concurrent_trades=r.max_concurrent_trades, halt_cooloff_hours=r.halt_cooloff_hours,
                   drawdown_scaling=r.drawdown_scaling)

    @classmethod
    def none(cls) -> RiskLimits:
        return cls(max_drawdown=None, daily_loss_limit=None, stop_loss=None, max_position=None,
                   max_concurrent_trades=None)


class Halt(msgspec.Struct, kw_only=True):
    """One drawdown halt: when (ns) and why it started, and when and why it lifted (None: in force)."""

    ts: int
    reason: str
    resumed_ts: int | None = None
    resume_reason: str = ""


HaltListener = Callable[[Halt], None]


class RiskManager:
    def __init__(self, limits: RiskLimits, portfolio: Portfolio) -> None:
        self.limits = limits
        self.portfolio = portfolio
        self._day_start, self._day_end = -DAY_NS, 0  # the UTC day of the last mark: [start, end) in ns
        self._day_open_equity = portfolio.initial_cash
        # Plain attributes, read by the grid on every bar: the equity peak the drawdown is measured from
        # (re-based when a halt lifts), and whether the drawdown halt is in force (no new BUYs; set with
        # each halt in `halts` and cleared when it lifts).
        self.peak = portfolio.peak_equity
        self.halted = False
        self._equity = portfolio.initial_cash
        self._cooloff_ns = int(limits.halt_cooloff_hours * 3600 * NS_PER_SECOND)
        self.halts: list[Halt] = []
        self.halt_listeners: list[HaltListener] = []
        self.rejected = 0
        # The engine marks equity every bar only when a check needs it (backtest speed).
        self.needs_marks = limits.max_drawdown is not None or limits.daily_loss_limit is not None
        self.counts_entries = limits.max_concurrent_trades is not None
        self._buy_caps = self.needs_marks or limits.max_position is not None or self.counts_entries

    @property
    def halted_at(self) -> int | None:
        """When the halt in force started (ns); None when none is."""
        return self.halts[-1].ts if self.halted else None

    @property
    def halt_reason(self) -> str:
        return self.halts[-1].reason if self.halted else ""

    def on_mark(self, ts: int, equity: float) -> None:
        """Called with each bar's marked equity (at the clock's time `ts`): rolls the daily-loss window
        at UTC midnight; starts the drawdown halt, and lifts it once its cool-off has passed."""
        if not self._day_start <= ts < self._day_end:  # a new day (no division of big ints on every bar)
            self._day_start = ts // DAY_NS * DAY_NS
            self._day_end = self._day_start + DAY_NS
            self._day_open_equity = equity
        self._equity = equity
        lim = self.limits.max_drawdown
        if lim is None:
            return
        if equity > self.peak:
            self.peak = equity
        if self.halted:
            if ts - self.halts[-1].ts >= self._cooloff_ns:
                self._resume(ts, f"cool-off of {self.limits.halt_cooloff_hours:g} h elapsed")
            return
        peak = self.peak
        if peak > 0 and (peak - equity) / peak >= lim:
            halt = Halt(ts=ts, reason=f"max_drawdown: equity {equity:.2f} is {(peak - equity) / peak:.1%} "
                                      f"below its peak {peak:.2f} (limit {lim:.1%})")
            self.halts.append(halt)
            self.halted = True
            for listener in self.halt_listeners:
                listener(halt)

    def on_funding(self, before: float, after: float) -> None:
        """Equity moved from `before` to `after` by a deposit or withdrawal, not by trading: the peak and
        the day's opening equity are scaled alike, so neither the drawdown nor the daily loss sees it."""
        if before > 0.0:
            r = after / before
            self.peak *= r
            self._day_open_equity *= r
        self._equity = after

    def acknowledge_halt(self, ts: int) -> bool:
        """The operator lifts the halt in force now (clock time `ts`); False when none was in force."""
        if not self.halted:
            return False
        self._resume(ts, "acknowledged by the operator")
        return True

    def _resume(self, ts: int, reason: str) -> None:
        halt = self.halts[-1]
        halt.resumed_ts = ts
        halt.resume_reason = reason
        self.halted = False
        self.peak = self._equity  # the drawdown is measured from here on
        for listener in self.halt_listeners:
            listener(halt)

    def failed_checks(self, side: Side, size: float, price: float, *, open_entries: int = 0,
                      selling: float = 0.0, buying: float = 0.0) -> list[str]:
        """Every check this order fails. `selling`: base units open SELL orders already claim; `buying`: base
        units open BUY orders may still add to the position (the position cap counts them: orders resting
        at once must not add up past it)."""
        lim = self.limits
        pf = self.portfolio
        failed: list[str] = []
        if not size > 0.0 or not price > 0.0:
            return ["position_size"]
        if side is SELL_SIDE:
            if size + selling > pf.position * (1.0 + 1e-9) + 1e-12:
                failed.append("position_size")
            return failed
        if not self._buy_caps:
            return failed
        equity = pf.equity(price)
        if lim.max_drawdown is not None:
            peak = max(self.peak, equity)
            if self.halted or (peak > 0 and (peak - equity) / peak >= lim.max_drawdown):
                failed.append("max_drawdown")
        day_open = self._day_open_equity
        if lim.daily_loss_limit is not None and day_open > 0 and (day_open - equity) / day_open >= lim.daily_loss_limit:
            failed.append("daily_loss")
        if (lim.max_position is not None
                and (pf.position + buying + size) * price > self.position_cap(equity) * equity * (1 + 1e-9)):
            failed.append("max_position")
        if lim.max_concurrent_trades is not None and open_entries + 1 > lim.max_concurrent_trades:
            failed.append("max_concurrent")
        return failed

    def check(self, side: Side, size: float, price: float, *, open_entries: int = 0, selling: float = 0.0,
              buying: float = 0.0) -> None:
        """Raise RiskLimitExceeded (E006) naming every failed check; return quietly when approved."""
        failed = self.failed_checks(side, size, price, open_entries=open_entries, selling=selling, buying=buying)
        if failed:
            self.rejected += 1
            raise RiskLimitExceeded(failed)

    def position_cap(self, equity: float) -> float:
        """The position cap as a fraction of `equity`: `max_position`; with `drawdown_scaling` it shrinks
        with the drawdown budget left, like constant-proportion portfolio insurance (Black & Perold 1992):
        cap = m × cushion / equity, cushion = equity − (1 − max_drawdown) × peak, m = max_position /
        max_drawdown, so the cap is `max_position` at the peak and 0 at the drawdown limit."""
        lim = self.limits
        cap = lim.max_position if lim.max_position is not None else 1.0
        mdd = lim.max_drawdown
        if not lim.drawdown_scaling or mdd is None or not equity > 0.0:
            return cap
        peak = max(self.peak, equity)
        return min(cap, max(cap / mdd * (1.0 - (1.0 - mdd) * peak / equity), 0.0))

    def position_limit(self, price: float, *, buying: float = 0.0) -> float | None:
        """The largest BUY size (base units) the position cap still allows, after the position and what open
        BUY orders may still add (`buying`, base units); None: uncapped."""
        lim = self.limits.max_position
        if lim is None or price <= 0:
            return None
        pf = self.portfolio
        equity = pf.equity(price)
        return max(self.position_cap(equity) * equity / price - pf.position - buying, 0.0)

    def stop_loss_hit(self, price: float) -> bool:
        sl = self.limits.stop_loss
        pf = self.portfolio
        return sl is not None and pf.position > 0.0 and price <= pf.avg_entry * (1.0 - sl)
