"""Trailing orders as pure functions of (state, price) (PRD §3.3.4, §9.2).

A trailing SELL tracks the highest price seen since it was created; its trigger is
`best × (1 − trail)` and it fires when the price is at or below the trigger. A trailing BUY mirrors it:
it tracks the lowest price, its trigger is `best × (1 + trail)`, it fires at or above the trigger.

Order improvement: the trigger is re-anchored to a new best only when the favourable move since the
last anchor exceeds `improvement` (a fraction; 0 re-anchors on every new extreme). `best` itself is
always exact. These functions never touch I/O, the clock or the bus; `TrailingBook` holds the live
states and applies them to a bar's price path.
"""

from __future__ import annotations

from trdr_tui.core.types import Order, Side


def initial_trigger(side: Side, price: float, trail: float) -> float:
    """The trigger of an order created at `price`: below it for a SELL, above it for a BUY."""
    return price * (1.0 - trail) if side is Side.SELL else price * (1.0 + trail)


def trail_step(
    side: Side, trail: float, best: float, anchor: float, price: float, improvement: float = 0.0
) -> tuple[float, float, float, bool]:
    """One price update → (best, anchor, trigger, fired).

    `anchor` is the best price the current trigger was computed from. Pure: same inputs, same output.
    """
    if side is Side.SELL:
        if price > best:
            best = price
        if best > anchor and (improvement <= 0.0 or (best - anchor) > anchor * improvement):
            anchor = best
        trigger = anchor * (1.0 - trail)
        return best, anchor, trigger, price <= trigger
    if price < best:
        best = price
    if best < anchor and (improvement <= 0.0 or (anchor - best) > anchor * improvement):
        anchor = best
    trigger = anchor * (1.0 + trail)
    return best, anchor, trigger, price >= trigger


def path_prices(open_: float, high: float, low: float, close: float) -> tuple[float, float, float, float]:
    """The `ohlc-path` intrabar order: open → the extreme nearer the open → the other extreme → close.

    Ties (open equally far from both extremes) go to the low first: the pessimistic path for a long book.
    """
    if high - open_ < open_ - low:
        return open_, high, low, close
    return open_, low, high, close


class TrailingState:
    """A live trailing order: the order plus the numbers the pure step function needs."""

    __slots__ = ("anchor", "best", "expires_ns", "improvement", "order", "side", "trail", "trigger")

    def __init__(self, order: Order, price: float, trail: float, *, improvement: float = 0.0,
                 expires_ns: int | None = None) -> None:
        if not 0.0 < trail < 1.0:
            raise ValueError(f"trail distance must be a fraction between 0 and 1, got {trail}")
        self.order = order
        self.side = order.side
        self.trail = trail
        self.best = price
        self.anchor = price
        self.trigger = initial_trigger(order.side, price, trail)
        self.improvement = improvement
        self.expires_ns = expires_ns

    def update(self, price: float) -> bool:
        """Apply one price; True when the order fires at this price.

        `trail_step` inlined (this runs once per bar per armed order in backtests); a property test
        holds the two to the same results.
        """
        if self.side is Side.SELL:
            if price > self.best:
                self.best = best = price
                anchor = self.anchor
                if best > anchor and (self.improvement <= 0.0 or (best - anchor) > anchor * self.improvement):
                    self.anchor = best
                    self.trigger = best * (1.0 - self.trail)
            return price <= self.trigger
        if price < self.best:
            self.best = best = price
            anchor = self.anchor
            if best < anchor and (self.improvement <= 0.0 or (anchor - best) > anchor * self.improvement):
                self.anchor = best
                self.trigger = best * (1.0 + self.trail)
        return price >= self.trigger


def walk_path(state: TrailingState, prices: tuple[float, ...]) -> float | None:
    """Run a trailing order along a bar's price path; return the fill price if it fires, else None.

    The path is continuous between its points, so a trigger crossed between two points fills at the
    trigger itself; one already crossed at the first point (a gap at the open) fills at that price.
    A single-point path (the `close` price model) fills at that point.
    """
    for k, p in enumerate(prices):
        before = state.trigger
        if state.update(p):
            # At the first point nothing came before it in this bar: fill there (a gap, or the close
            # model's only price). Later points: the previous point did not fire, so the price crossed
            # the trigger (which an adverse move leaves unchanged) inside the segment.
            return p if k == 0 else before
    return None
