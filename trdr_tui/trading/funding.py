"""Funding changes (PRD §3.3.3 `onFundingChange`): a deposit or withdrawal changes the capital, and the
grid's sizing and open orders follow it.

`apply_funding` books the amount in the ledger (`Portfolio.fund`: cash and contributions change, P&L
does not), scales the risk manager's peak and day-open equity alike (a withdrawal is no drawdown, a
deposit no profit), then resizes:

* the policy re-derives its capital per level from the new equity (`Resizable.resize`; the grid's
  `level_quote`);
* open BUY orders are cancelled, and the policy re-places them at the new size on a later bar
  (cancel/replace). A deposit that raises the capital per level by 10 % or less leaves them (PRD:
  "> 10 % increase worth updating"); a withdrawal always re-validates them.

A withdrawal larger than the free cash (cash less what open BUY orders may still spend) is refused
whole with InsufficientFunds (E002) and changes nothing: a position is never sold to pay for it.
Unless it already happened at the exchange (`at_exchange`, a live account's balance is the truth):
then the run's capital shrank, the open BUYs are cancelled and what the ledger's cash holds of it is
booked (at most all of it; the rest was money of the user's beside the run).

`apply_transfer` books coins sent in or out (a live account's base balance moved outside the run's
fills) as a contribution in kind valued at the mark (`Portfolio.transfer`), never as P&L, and resizes
the same way.

`FundingSchedule` applies the configured `[funding] events` when the order manager's time check
passes their time (bar time in backtests, the clock in paper runs). `performance_curve` removes the
flows from an equity curve (time-weighted), so returns, Sharpe and drawdown measure trading only.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from trdr_tui.config import FundingConfig, parse_utc
from trdr_tui.core.errors import InsufficientFunds
from trdr_tui.core.types import Side
from trdr_tui.trading.orders import OrderManager
from trdr_tui.trading.sizing import to_decimal

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
RESIZE_THRESHOLD = 0.10  # PRD §3.3.3: a deposit re-sizes open orders when the size grows by more than this


@runtime_checkable
class Resizable(Protocol):
    """A policy whose sizing follows the capital: `quote` is its capital per level (quote currency),
    `resize(equity)` re-derives it from `equity` (quote currency)."""

    quote: float

    def resize(self, equity: float) -> None: ...


class FundingResult:
    """What one funding change did: the amount (quote, + deposit / − withdrawal), equity before and
    after (at the last marked price), and how many open BUY orders were cancelled for re-sizing."""

    __slots__ = ("amount", "base", "beyond_free", "cancelled", "equity_after", "equity_before", "requested", "ts")

    def __init__(self, ts: int, amount: float, equity_before: float, equity_after: float, cancelled: int, *,
                 requested: float | None = None, base: Decimal | None = None, beyond_free: bool = False) -> None:
        self.ts = ts
        self.amount = amount  # booked (quote; a coin transfer's value at the mark)
        self.requested = amount if requested is None else requested  # what the account showed (quote)
        self.base = base  # a coin transfer: the size booked (base units, signed); None for cash
        self.beyond_free = beyond_free  # a withdrawal at the exchange above the free cash (capital shrank)
        self.equity_before = equity_before
        self.equity_after = equity_after
        self.cancelled = cancelled


def free_cash(orders: OrderManager) -> float:
    """Cash less what the open BUY orders may still spend (quote currency)."""
    pf = orders.portfolio
    return pf.cash - orders.committed_cash(pf.last_price)


def apply_funding(exact_amount: float | Decimal, *, orders: OrderManager, policy: object,
                  at_exchange: bool = False) -> FundingResult:
    """Book a deposit (`exact_amount` > 0) or withdrawal (< 0) of quote currency at the clock's time and
    resize (module doc). A Decimal (an exchange balance's difference) is booked exactly.

    Raises InsufficientFunds when a withdrawal exceeds the free cash, ValueError for a zero or
    non-finite amount; nothing changes then. `at_exchange`: the withdrawal already left the account:
    beyond the free cash it is booked up to the ledger's cash (`FundingResult.requested` keeps the
    whole amount) after the open BUYs are cancelled, never refused."""
    amount = float(exact_amount)
    if not (np.isfinite(amount) and amount != 0.0):
        raise ValueError(f"a funding change needs a non-zero finite amount, got {exact_amount}")
    pf = orders.portfolio
    ts = orders.clock.now_ns()
    requested = amount
    beyond_free = False
    if amount < 0.0:
        free = free_cash(orders)
        if -amount > free:
            beyond_free = True
            if not at_exchange:
                raise InsufficientFunds(
                    f"withdrawal of {-amount:,.2f} refused: free cash is {free:,.2f} (cash {pf.cash:,.2f}, "
                    f"{pf.cash - free:,.2f} held by open BUY orders)",
                    hint="withdraw at most the free cash, or cancel BUY orders first; trdr never sells a "
                         "position to pay a withdrawal")
            exact_amount = max(to_decimal(exact_amount), -pf.cash_exact)
            amount = float(exact_amount)
    before = pf.equity(pf.last_price)
    if amount != 0.0:
        pf.fund(exact_amount, ts)
    after = pf.equity(pf.last_price)
    cancelled = _resize(orders, policy, amount if amount != 0.0 else requested, before, after)
    return FundingResult(ts, amount, before, after, cancelled, requested=requested, beyond_free=beyond_free)


def apply_transfer(size: Decimal, mark: Decimal, *, orders: OrderManager, policy: object) -> FundingResult:
    """Book coins sent in (`size` > 0, base units) or out (< 0) at the clock's time, valued at `mark`
    (quote per base unit): a contribution in kind (`Portfolio.transfer`; coins out beyond the position
    are not the run's and are not booked), then resize like a deposit or a withdrawal. The result's
    `amount` is the value booked, `base` the size booked, `requested` the value of `size`."""
    pf = orders.portfolio
    ts = orders.clock.now_ns()
    before = pf.equity(pf.last_price)
    booked = pf.transfer(size, mark, ts)
    after = pf.equity(pf.last_price)
    value = float(booked * mark)
    cancelled = _resize(orders, policy, value, before, after) if booked else 0
    return FundingResult(ts, value, before, after, cancelled, requested=float(size * mark), base=booked)


def _resize(orders: OrderManager, policy: object, amount: float, before: float, after: float) -> int:
    """After a funding change of `amount` (quote): the risk manager's peak and day-open follow, the policy
    re-derives its size, and the open BUYs are cancelled to be re-placed at it (a deposit that moves the
    size by ≤ 10 % leaves them). Returns how many were cancelled."""
    orders.risk.on_funding(before, after)
    replace = True
    if isinstance(policy, Resizable):
        old = policy.quote
        policy.resize(after)
        replace = amount < 0.0 or not old > 0.0 or policy.quote > old * (1.0 + RESIZE_THRESHOLD)
    cancelled = 0
    if replace:
        kind = "deposit" if amount > 0 else "withdrawal"
        for order in [o for o in orders.open.values() if o.side is Side.BUY]:
            orders.cancel(order, f"funding: {kind} of {abs(amount):,.2f}, re-sized")
            cancelled += 1
    return cancelled


class FundingSchedule:
    """The configured events, applied in time order as the order manager's time check passes them.

    `applied` and `refused` (with the reason) keep what happened; `listeners` hear each applied change
    (the engine marks its equity curve, publishes and checkpoints it), `refusal_listeners` each refused
    one (time, amount, reason): the engine logs and publishes both outcomes. `state()` and
    `restore()` carry the schedule's position through a checkpoint (a restart neither applies an event
    twice nor skips one)."""

    def __init__(self, cfg: FundingConfig, orders: OrderManager, policy: object) -> None:
        self.events = sorted((parse_utc(e.at, "at"), e.amount) for e in cfg.events)
        self.orders = orders
        self.policy = policy
        self.applied: list[FundingResult] = []
        self.refused: list[tuple[int, float, str]] = []
        self.listeners: list[Callable[[FundingResult], None]] = []
        self.refusal_listeners: list[Callable[[int, float, str], None]] = []
        self._next = 0

    def on_time(self, now_ns: int) -> None:
        """Apply every event due at `now_ns` (ns since the epoch) not applied yet."""
        while self._next < len(self.events) and self.events[self._next][0] <= now_ns:
            at, amount = self.events[self._next]
            self._next += 1
            try:
                result = apply_funding(amount, orders=self.orders, policy=self.policy)
            except InsufficientFunds as exc:
                self.refused.append((at, amount, exc.message))
                for refusal in self.refusal_listeners:
                    refusal(at, amount, exc.message)
                continue
            self.applied.append(result)
            for listener in self.listeners:
                listener(result)

    @property
    def done(self) -> int:
        """Events handled so far (applied or refused): a checkpoint keeps it so none is applied twice."""
        return self._next

    def skip(self, n: int) -> None:
        """At a start: the first `n` events were handled before it (or are dated before it)."""
        self._next = max(self._next, min(n, len(self.events)))

    def state(self) -> dict[str, Any]:
        """The schedule's position for a checkpoint: `done` events handled (applied, refused or skipped
        at the start), the last of them at `through_ns` (ns; None when none)."""
        through = self.events[self._next - 1][0] if self._next else None
        return {"done": self._next, "through_ns": through}

    def restore(self, state: dict[str, Any]) -> str | None:
        """The position a checkpoint's `state()` saved, replacing the start's skip: events due while
        the bot was down are applied at the next time check, none handled before is applied again.
        When the configured events changed since (the checkpoint's count no longer ends at its
        `through_ns`), every event dated at or before `through_ns` counts as handled, and the returned
        text says so (None otherwise)."""
        done, through = int(state.get("done", 0)), state.get("through_ns")
        if done == 0 or through is None:
            self._next = 0
            return None
        if done <= len(self.events) and self.events[done - 1][0] == through:
            self._next = done
            return None
        self._next = sum(1 for at, _ in self.events if at <= through)
        return (f"the funding events changed since the checkpoint: the {self._next} event(s) dated at or before "
                f"the last one handled count as handled")


def performance_curve(equity: F64, ts: I64, flows: list[tuple[int, float]], initial: float) -> F64:
    """The equity curve with the deposits and withdrawals taken out, time-weighted (GIPS time-weighted
    return): bar i's return is (E_i − F_i) / E_{i−1} − 1, where F_i is the net flow booked at or before
    bar i's close time `ts[i]` and after bar i−1's (E_{−1} = `initial`); the curve is
    `initial` × Π (1 + r). Shapes: `equity`, `ts` one per bar (quote currency, ns); returns float64.
    Without flows it is `equity` itself."""
    if not flows or equity.shape[0] == 0:
        return equity
    flow = np.zeros(equity.shape[0])
    at = np.searchsorted(ts, np.asarray([t for t, _ in flows], dtype=np.int64), side="left")
    for k, (_, amount) in zip(at.tolist(), flows, strict=True):
        if k < flow.shape[0]:
            flow[k] += amount
    prev = np.concatenate(([initial], equity[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(prev > 0.0, (equity - flow) / prev, 1.0)
    out: F64 = (initial * np.cumprod(growth)).astype(np.float64)
    return out


def time_weighted(equity: F64, ts: I64, flows: list[tuple[int, float]], initial: float) -> tuple[float, float]:
    """(total return, max drawdown) of an equity curve with the contributions taken out: the curve of
    `performance_curve` (the one the backtests' metrics read), its last point over `initial` − 1, and
    its largest fall from a running peak (fractions). Shapes as `performance_curve`; (0, 0) for none."""
    curve = performance_curve(equity, ts, flows, initial)
    if curve.shape[0] == 0 or not initial > 0:
        return 0.0, 0.0
    peak = np.maximum.accumulate(np.concatenate(([initial], curve)))[1:]
    drawdown = float(np.max((peak - curve) / np.where(peak > 0, peak, 1.0)))
    return float(curve[-1] / initial - 1.0), max(drawdown, 0.0)
