"""Position sizing (PRD §3.3.1): 5 % of available capital × consensus confidence, capped by Kelly
(with a safety factor) and by the risk manager's position limit, then rounded with Decimal to the
product's size increment. Below the product's minimum size there is no order (None).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_EVEN, Decimal

import msgspec

from trdr_tui.core.types import Side, Trade

_NOISE = Decimal("0.000001")  # of one increment


class ProductSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What the exchange accepts for one product (Coinbase `/products/{id}`), as exact decimal strings."""

    symbol: str = "BTC-USD"
    base_increment: str = "0.00000001"
    quote_increment: str = "0.01"
    base_min_size: str = "0.00000001"
    quote_min_size: str = "1"

    def round_size(self, size: float) -> Decimal | None:
        """Floor to the base increment; None when that is below the minimum size.

        Float noise is not allowed to cost a whole increment: a size within a millionth of an
        increment below a multiple of it (0.9999999999999999 for 1) counts as that multiple.
        """
        if not size > 0.0:
            return None
        step = Decimal(self.base_increment)
        steps = Decimal(repr(size)) / step
        nearest = steps.to_integral_value(rounding=ROUND_HALF_EVEN)
        if abs(steps - nearest) <= _NOISE:
            steps = nearest
        d = steps.to_integral_value(rounding=ROUND_DOWN) * step
        return d if d >= Decimal(self.base_min_size) and d > 0 else None

    def round_price(self, price: float, side: Side) -> Decimal:
        """To the quote increment: down for a BUY limit, up for a SELL limit (never worse than asked)."""
        step = Decimal(self.quote_increment)
        q = Decimal(repr(price)) / step
        n = q.to_integral_value(rounding=ROUND_DOWN if side is Side.BUY else ROUND_CEILING)
        return n * step

    def round_quote(self, amount: float) -> Decimal:
        step = Decimal(self.quote_increment)
        return (Decimal(repr(amount)) / step).to_integral_value(rounding=ROUND_HALF_EVEN) * step

    def meets_minimums(self, size: Decimal, price: float) -> bool:
        return size >= Decimal(self.base_min_size) and size * Decimal(repr(price)) >= Decimal(self.quote_min_size)


def kelly_fraction(win_rate: float, reward_risk: float) -> float:
    """Kelly: W − (1 − W) / R, floored at 0. `reward_risk` is average win / average loss."""
    if reward_risk <= 0.0:
        return 0.0
    return max(win_rate - (1.0 - win_rate) / reward_risk, 0.0)


def trade_stats(trades: list[Trade], min_trades: int = 20) -> tuple[float, float] | None:
    """(win rate, reward/risk) from closed round trips; None until there are enough to mean anything."""
    if len(trades) < min_trades:
        return None
    wins = [t.pnl for t in trades if t.pnl > 0]
    losses = [-t.pnl for t in trades if t.pnl < 0]
    if not wins or not losses:
        return None
    return len(wins) / len(trades), (sum(wins) / len(wins)) / (sum(losses) / len(losses))


class Sizer:
    def __init__(self, product: ProductSpec, *, base_fraction: float = 0.05, kelly_safety: float = 0.5) -> None:
        self.product = product
        self.base_fraction = base_fraction
        self.kelly_safety = kelly_safety

    def buy_size(self, *, available: float, price: float, confidence: float,
                 trades: list[Trade] | None = None, risk_limit: float | None = None) -> Decimal | None:
        """Units to buy, exact; None when the rounded size is below the product's minimum."""
        if not (available > 0.0 and price > 0.0 and confidence > 0.0):
            return None
        quote = available * self.base_fraction * min(confidence, 1.0)
        stats = trade_stats(trades or [])
        if stats is not None:
            quote = min(quote, available * kelly_fraction(*stats) * self.kelly_safety)
        size = quote / price
        if risk_limit is not None:
            size = min(size, risk_limit)
        rounded = self.product.round_size(size)
        if rounded is None or not self.product.meets_minimums(rounded, price):
            return None
        return rounded

    def sell_size(self, *, position: float, fraction: float, price: float) -> Decimal | None:
        rounded = self.product.round_size(position * min(max(fraction, 0.0), 1.0))
        if rounded is None or not self.product.meets_minimums(rounded, price):
            return None
        return rounded
