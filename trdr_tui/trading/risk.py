"""The risk manager (PRD §3.6): every order passes `check` before it exists; a refusal is E006.

Checks, by name (the names appear in `RiskLimitExceeded.failed_checks` and `risk.rejected` events):

* `max_drawdown`   — equity is `max_drawdown` or more below its peak: no new BUYs (SELLs still allowed).
* `daily_loss`     — equity is `daily_loss_limit` or more below the day's opening equity (UTC day of
                     the Clock): no new BUYs.
* `max_position`   — a BUY would make the position worth more than `max_position` × equity.
* `max_concurrent` — a BUY would make more than `max_concurrent_trades` entries open at once
                     (open BUY orders plus lots held).
* `position_size`  — a SELL larger than the position not already claimed by open SELLs, or a
                     non-positive size.

`stop_loss` is a different kind of rule: `stop_loss_hit` says when the price is `stop_loss` below the
average entry, and the engine then closes the position. The limits come from the resolved Settings
(profile values filled in); `RiskLimits.none()` switches the caps off (the `simple-trailing` preset) but
the order still goes through `check`, so there is no path around it.
"""

from __future__ import annotations

import msgspec

from trdr_tui.config import Settings
from trdr_tui.core.clock import NS_PER_SECOND
from trdr_tui.core.errors import RiskLimitExceeded
from trdr_tui.core.types import Side
from trdr_tui.trading.portfolio import Portfolio

DAY_NS = 86_400 * NS_PER_SECOND


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_drawdown: float | None = 0.15
    daily_loss_limit: float | None = 0.05
    stop_loss: float | None = 0.02
    max_position: float | None = 0.25
    max_concurrent_trades: int | None = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> RiskLimits:
        r = settings.risk
        return cls(max_drawdown=r.max_drawdown, daily_loss_limit=r.daily_loss_limit,
                   stop_loss=r.stop_loss if r.stop_loss > 0 else None, max_position=r.max_position,
                   max_concurrent_trades=r.max_concurrent_trades)

    @classmethod
    def none(cls) -> RiskLimits:
        return cls(max_drawdown=None, daily_loss_limit=None, stop_loss=None, max_position=None,
                   max_concurrent_trades=None)


class RiskManager:
    def __init__(self, limits: RiskLimits, portfolio: Portfolio) -> None:
        self.limits = limits
        self.portfolio = portfolio
        self._day = -1
        self._day_open_equity = portfolio.initial_cash
        self.rejected = 0
        # The engine marks equity every bar only when a check needs it (backtest speed).
        self.needs_marks = limits.max_drawdown is not None or limits.daily_loss_limit is not None
        self.counts_entries = limits.max_concurrent_trades is not None
        self._buy_caps = self.needs_marks or limits.max_position is not None or self.counts_entries

    def on_mark(self, ts: int, equity: float) -> None:
        """Called with each bar's marked equity: rolls the daily-loss window at UTC midnight."""
        day = ts // DAY_NS
        if day != self._day:
            self._day = day
            self._day_open_equity = equity

    def failed_checks(self, side: Side, size: float, price: float, *, open_entries: int = 0,
                      selling: float = 0.0) -> list[str]:
        """Every check this order fails. `selling`: base units open SELL orders already claim."""
        lim = self.limits
        pf = self.portfolio
        failed: list[str] = []
        if not size > 0.0 or not price > 0.0:
            return ["position_size"]
        if side is Side.SELL:
            if size + selling > pf.position * (1.0 + 1e-9) + 1e-12:
                failed.append("position_size")
            return failed
        if not self._buy_caps:
            return failed
        equity = pf.equity(price)
        if lim.max_drawdown is not None and pf.peak_equity > 0:
            peak = max(pf.peak_equity, equity)
            if (peak - equity) / peak >= lim.max_drawdown:
                failed.append("max_drawdown")
        day_open = self._day_open_equity
        if lim.daily_loss_limit is not None and day_open > 0 and (day_open - equity) / day_open >= lim.daily_loss_limit:
            failed.append("daily_loss")
        if lim.max_position is not None and (pf.position + size) * price > lim.max_position * equity * (1 + 1e-9):
            failed.append("max_position")
        if lim.max_concurrent_trades is not None and open_entries + 1 > lim.max_concurrent_trades:
            failed.append("max_concurrent")
        return failed

    def check(self, side: Side, size: float, price: float, *, open_entries: int = 0, selling: float = 0.0) -> None:
        """Raise RiskLimitExceeded (E006) naming every failed check; return quietly when approved."""
        failed = self.failed_checks(side, size, price, open_entries=open_entries, selling=selling)
        if failed:
            self.rejected += 1
            raise RiskLimitExceeded(failed)

    def position_limit(self, price: float) -> float | None:
        """The largest BUY size the position cap still allows (None: uncapped)."""
        lim = self.limits.max_position
        if lim is None or price <= 0:
            return None
        pf = self.portfolio
        return max(lim * pf.equity(price) / price - pf.position, 0.0)

    def stop_loss_hit(self, price: float) -> bool:
        sl = self.limits.stop_loss
        pf = self.portfolio
        return sl is not None and pf.position > 0.0 and price <= pf.avg_entry * (1.0 - sl)
