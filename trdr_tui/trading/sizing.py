"""Position sizing (PRD §3.3.1): the quote a grid level commits (`trading.grid.level_quote`), capped by
the cash available, by Kelly (with a safety factor) and by the risk manager's position limit, then
rounded with Decimal to the product's size increment. Below the product's minimum size there is no
order (None).

The Kelly cap reads recent evidence only: round trips that closed within the last
`kelly_lookback_days` of the clock's time, and only once there are `kelly_min_trades` of them. A run
of losers caps buys to nothing (a cool-off); when those trades age out of the window the cap lifts
and the bot buys again. Using every trade since the start would turn one bad stretch into a
permanent stop.
"""

from __future__ import annotations

import functools
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import msgspec

from trdr_tui.core.types import Side, Trade

NS_PER_DAY = 86_400 * 1_000_000_000
_NOISE = Decimal("0.000001")  # of one increment


def to_decimal(value: float | Decimal) -> Decimal:
    """The one float → Decimal conversion for money: a float becomes the number its shortest
    round-trip repr spells (0.1 → Decimal('0.1'), never the binary expansion 0.1000000000000000055…);
    a numpy float64 the same as the Python float it equals; an int or a Decimal exactly."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    return Decimal(repr(float(value)))


class Increments(msgspec.Struct, frozen=True, kw_only=True):
    """A product's steps, exact: `base` for sizes (units of the base currency), `price` for limit and
    stop prices (quote currency per unit: Coinbase's price_increment, else its quote_increment).
    A step ≤ 0 means no rounding. Results are quantized to the step (`0.01000000` for 0.01 on 1e-8)."""

    base: Decimal
    price: Decimal

    def floor_size(self, size: float | Decimal) -> Decimal:
        """Down to the base increment — except float noise: a size within a millionth of an increment
        below a multiple of it (0.9999999999999999 for 1; a position summed from fills,
        0.09499999999999999 for 0.095) counts as that multiple instead of losing a whole increment."""
        if type(size) is float and size > 0.0:  # a level's lot and the position: floored at every grid pass
            return _floored_size(size, self.base)
        return _floor_size(to_decimal(size), self.base)

    def round_price(self, price: float | Decimal, side: Side) -> Decimal:
        """To the price increment: down for a BUY, up for a SELL (never more aggressive than asked)."""
        if type(price) is float and price > 0.0:  # a grid asks for the same few level prices again and again
            return _rounded_price(price, self.price, side)
        return _round_price(to_decimal(price), self.price, side)


def _floor_size(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    units = value / step
    nearest = units.to_integral_value(rounding=ROUND_HALF_EVEN)
    if abs(units - nearest) <= _NOISE:
        return (nearest * step).quantize(step)
    return _to_step(units, step, ROUND_FLOOR)


@functools.lru_cache(maxsize=4096)
def _floored_size(size: float, step: Decimal) -> Decimal:
    """`Increments.floor_size` of a float, remembered (a pure function; Decimals are immutable)."""
    return _floor_size(to_decimal(size), step)


def _round_price(value: Decimal, step: Decimal, side: Side) -> Decimal:
    if step <= 0:
        return value
    return _to_step(value / step, step, ROUND_FLOOR if side is Side.BUY else ROUND_CEILING)


@functools.lru_cache(maxsize=4096)
def _rounded_price(price: float, step: Decimal, side: Side) -> Decimal:
    """`Increments.round_price` of a float, remembered (a pure function; Decimals are immutable)."""
    return _round_price(to_decimal(price), step, side)


@functools.lru_cache(maxsize=64)
def _decimal(text: str) -> Decimal:
    """A ProductSpec's decimal string, parsed once."""
    return Decimal(text)


def price_step(price_increment: Decimal, quote_increment: Decimal) -> Decimal:
    """The price tick: the price increment when the exchange gives one (> 0), else the quote increment."""
    return price_increment if price_increment > 0 else quote_increment


@functools.lru_cache(maxsize=32)
def _increments(base_increment: str, price_increment: str, quote_increment: str) -> Increments:
    """A ProductSpec's steps, parsed once per distinct spec (the sizer asks on every order)."""
    return Increments(base=Decimal(base_increment),
                      price=price_step(Decimal(price_increment or 0), Decimal(quote_increment)))


def _to_step(units: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (units.to_integral_value(rounding=rounding) * step).quantize(step)


class ProductSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What the exchange accepts for one product (Coinbase `/products/{id}`), as exact decimal strings.

    `price_increment` is the price tick when the exchange gives one ("" → `quote_increment`).
    """

    symbol: str = "BTC-USD"
    base_increment: str = "0.00000001"
    quote_increment: str = "0.01"
    price_increment: str = ""
    base_min_size: str = "0.00000001"
    quote_min_size: str = "1"

    @property
    def increments(self) -> Increments:
        return _increments(self.base_increment, self.price_increment, self.quote_increment)

    def round_size(self, size: float) -> Decimal | None:
        """Floor to the base increment (float noise snaps, see `Increments.floor_size`); None when
        that is not above zero or below the minimum size."""
        if not size > 0.0:
            return None
        d = self.increments.floor_size(size)
        return d if d >= _decimal(self.base_min_size) and d > 0 else None

    def round_price(self, price: float, side: Side) -> Decimal:
        """To the price increment: down for a BUY limit, up for a SELL limit (never worse than asked)."""
        return self.increments.round_price(price, side)

    def meets_minimums(self, size: Decimal, price: float) -> bool:
        """At least the minimum size, and worth at least the minimum order value at `price`."""
        return size >= _decimal(self.base_min_size) and size * to_decimal(price) >= _decimal(self.quote_min_size)


def kelly_fraction(win_rate: float, reward_risk: float) -> float:
    """Kelly: W − (1 − W) / R, floored at 0. `reward_risk` is average win / average loss (inf: no losses)."""
    if reward_risk <= 0.0:
        return 0.0
    return max(win_rate - (1.0 - win_rate) / reward_risk, 0.0)


def trade_stats(trades: list[Trade], min_trades: int = 20) -> tuple[float, float] | None:
    """(win rate, reward/risk) from closed round trips; None until there are enough to mean anything.

    Only losers gives reward/risk 0 (Kelly 0); only winners gives inf (Kelly = win rate = 1).
    """
    if len(trades) < min_trades or not trades:
        return None
    wins = [t.pnl for t in trades if t.pnl > 0]
    losses = [-t.pnl for t in trades if t.pnl < 0]
    if not wins and not losses:
        return None
    if not losses:
        return len(wins) / len(trades), float("inf")
    if not wins:
        return 0.0, 0.0
    return len(wins) / len(trades), (sum(wins) / len(wins)) / (sum(losses) / len(losses))


def recent_trades(trades: list[Trade], now_ns: int, lookback_ns: int) -> list[Trade]:
    """The round trips that closed in (now − lookback, now]. `trades` is in closing order (the
    ledger appends as exits fill), so the scan stops at the first older one."""
    cutoff = now_ns - lookback_ns
    k = len(trades)
    while k > 0 and trades[k - 1].exit_ts > cutoff:
        k -= 1
    return [t for t in trades[k:] if t.exit_ts <= now_ns]


class Sizer:
    def __init__(self, product: ProductSpec, *, kelly_safety: float = 0.5, kelly_lookback_days: float = 30.0,
                 kelly_min_trades: int = 20) -> None:
        self.product = product
        self.kelly_safety = kelly_safety
        self.kelly_lookback_ns = int(kelly_lookback_days * NS_PER_DAY)
        self.kelly_min_trades = kelly_min_trades

    def kelly_cap(self, trades: list[Trade], now_ns: int) -> float | None:
        """Safety × Kelly fraction from the trades in the lookback window; None: too little evidence."""
        stats = trade_stats(recent_trades(trades, now_ns, self.kelly_lookback_ns), self.kelly_min_trades)
        return None if stats is None else kelly_fraction(*stats) * self.kelly_safety

    def level_size(self, *, quote: float, available: float, price: float, now_ns: int,
                   trades: list[Trade] | None = None, risk_limit: float | None = None) -> Decimal | None:
        """Base units for spending `quote` (quote currency) at `price`, exact; None when the rounded size
        is below the product's minimum.

        The quote is capped by `available` and by Kelly (cap × available, from the round trips closed
        within the lookback window of `now_ns`, the engine clock's time); the size by `risk_limit`
        (base units, the risk manager's position limit).
        """
        if not (available > 0.0 and price > 0.0 and quote > 0.0):
            return None
        quote = min(quote, available)
        cap = self.kelly_cap(trades, now_ns) if trades else None
        if cap is not None:
            quote = min(quote, available * cap)
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
