"""Simulated execution for backtests and paper trading: real fees, slippage, honest fills.

* Market orders and triggered trailing orders fill at once at the reference price (the trigger price
  or, for a gap, the bar's price; see `trading.trailing.walk_path`) moved against the order by the
  slippage model: half-spread + impact × (size / bar volume). They take liquidity: taker fee.
  Like Coinbase market orders they are immediate-or-cancel: at most `max_volume_share` of the bar's
  volume fills (at the price impacted by the filled size); the rest is cancelled with the reason, and
  a bar without volume fills nothing. Ideal-arithmetic presets switch this cap off (`taker_volume_cap`).
* Unknown volume (`volume_known = False`: candles from a file without a volume column, stored as 0):
  every bar is treated as deep enough — no volume cap, no size impact, for market and resting orders
  alike. Fills are then optimistic for large orders; the backtest says so in its output and results.
* No simulated price can be ≤ 0: slippage moves a price by at most `MAX_SLIPPAGE` of it.
* Resting (post-only) limit orders fill only when the price trades *through* the limit (a BUY needs
  a low strictly below it, a SELL a high strictly above it), at the limit price, at most
  `max_volume_share` of the bar's volume per bar (partial fills), and pay the maker fee.
* Fees come from the volume-tier schedule (`exchange.fees`), using the 30-day volume traded so far.
* With the product's `Increments`, every fill is on them, as at the exchange: a size (an IOC or a
  partial fill's share of the bar's volume too) floored to the size step, a taker price rounded
  against the taker to the price tick (up for a BUY, down for a SELL); a limit order's price is on the
  tick already (the order manager rounds it). What is left of an order is computed exactly (Decimal).

Reports go to the bound handler synchronously and in order. The engine calls `submit_now` directly in
backtests (no await per order); `submit` is the async face the Executor protocol asks for.
"""

from __future__ import annotations

import math
from decimal import Decimal

from trdr_tui.config import ExecutionConfig
from trdr_tui.core.clock import Clock
from trdr_tui.core.engine_api import ExecutionReport, ReportHandler
from trdr_tui.core.errors import StateCorruption
from trdr_tui.core.types import (
    BUY_SIDE,
    FILLED_STATUS,
    LIMIT_ORDER,
    MAKER_LIQUIDITY,
    PARTIAL_STATUS,
    SELL_SIDE,
    SUBMITTED_STATUS,
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    Side,
    Tick,
)
from trdr_tui.exchange.fees import FeeSchedule, VolumeTracker
from trdr_tui.trading.sizing import Increments, to_decimal

MAX_SLIPPAGE = 0.5  # a fill is never moved further than half its reference price (keeps prices > 0)


class SlippageModel:
    """Half-spread plus size impact, as a fraction of price. Zero for ideal-arithmetic presets."""

    __slots__ = ("half_spread", "impact")

    def __init__(self, half_spread: float = 0.0, impact: float = 0.0) -> None:
        self.half_spread = half_spread
        self.impact = impact

    @classmethod
    def from_config(cls, cfg: ExecutionConfig) -> SlippageModel:
        return cls(cfg.half_spread, cfg.impact_coefficient)

    def fraction(self, size: float, bar_volume: float) -> float:
        impact = self.impact * (size / bar_volume) if self.impact and bar_volume > 0.0 else 0.0
        return min(self.half_spread + impact, MAX_SLIPPAGE)

    def adjust(self, side: Side, price: float, size: float, bar_volume: float) -> float:
        if not (self.half_spread or self.impact):
            return price
        f = self.fraction(size, bar_volume)
        return price * (1.0 + f) if side is Side.BUY else price * (1.0 - f)


class SimExecutor:
    """The Executor for backtest and paper modes."""

    name = "sim"

    def __init__(self, clock: Clock, fees: FeeSchedule, *, slippage: SlippageModel | None = None,
                 max_volume_share: float = 0.10, base_volume_usd: float | None = None,
                 track_volume: bool = True, taker_volume_cap: bool = True,
                 increments: Increments | None = None) -> None:
        self.clock = clock
        self.increments = increments  # None: sizes and prices as given (ideal arithmetic)
        self.fees = fees
        self.slippage = slippage or SlippageModel()
        self.max_volume_share = max_volume_share
        self.taker_volume_cap = taker_volume_cap
        # None: the configured tier stays fixed; a number: tier follows that plus traded volume
        self.volume = VolumeTracker(base_volume_usd) if base_volume_usd is not None and track_volume else None
        self.resting: dict[str, Order] = {}
        self._reach: tuple[float, float] | None = None  # on_bar's cache of the resting limits' span
        self._on_report: ReportHandler | None = None
        self._fill_seq = 0
        self.last_price = 0.0
        self.bar_volume = float("inf")  # unknown until the first bar: no cap, no impact
        self.volume_known = True  # False: bar volumes are placeholders (0), fills are not capped by them

    @classmethod
    def from_settings(cls, clock: Clock, fees: FeeSchedule, execution: ExecutionConfig,
                      base_volume_usd: float | None = None, increments: Increments | None = None) -> SimExecutor:
        return cls(clock, fees, slippage=SlippageModel.from_config(execution),
                   max_volume_share=execution.max_volume_share, base_volume_usd=base_volume_usd,
                   increments=increments)

    # -- Executor protocol -----------------------------------------------------------------------

    def bind(self, on_report: ReportHandler) -> None:
        self._on_report = on_report

    async def submit(self, order: Order) -> None:
        self.submit_now(order)

    async def cancel(self, order: Order) -> None:
        self.cancel_now(order)

    async def reconcile(self, known_open: list[Order]) -> list[ExecutionReport]:
        """A simulator's book is in memory: anything we think is open but it does not hold is gone."""
        now = self.clock.now_ns()
        return [ExecutionReport(ts=now, order_id=o.id, client_order_id=o.client_order_id,
                                status=OrderStatus.CANCELLED, reason="not known to the simulator")
                for o in known_open if o.id not in self.resting]

    def on_tick(self, tick: Tick) -> None:
        self.last_price = tick.price
        if self.resting:
            self._match(tick.price, tick.price, tick.size if tick.size > 0 else float("inf"))

    # -- the synchronous core --------------------------------------------------------------------

    def set_market(self, price: float, bar_volume: float) -> None:
        self.last_price = price
        self.bar_volume = bar_volume if self.volume_known else float("inf")

    def on_bar(self, high: float, low: float, close: float, volume: float) -> None:
        self.last_price = close
        volume = volume if self.volume_known else float("inf")
        self.bar_volume = volume
        if self.resting:
            reach = self._reach
            if reach is None:  # the highest resting BUY and the lowest resting SELL limit
                reach = self._reach = (
                    max((o.price or 0.0 for o in self.resting.values() if o.side is BUY_SIDE), default=-math.inf),
                    min((o.price or 0.0 for o in self.resting.values() if o.side is SELL_SIDE), default=math.inf))
            if low < reach[0] or high > reach[1]:  # else no limit is traded through: nothing to match
                self._match(high, low, volume * self.max_volume_share)

    def submit_now(self, order: Order) -> None:
        if self._on_report is None:
            raise StateCorruption("SimExecutor.submit before bind()", hint="the engine binds its report handler")
        if order.status is not SUBMITTED_STATUS:  # a fired trailing order is already SUBMITTED
            self._report(order, SUBMITTED_STATUS)
        if order.type is LIMIT_ORDER:
            self.resting[order.id] = order
            self._reach = None
            return
        ref = order.price if order.price is not None else self.last_price
        if not ref > 0.0:
            self._report(order, OrderStatus.REJECTED, reason="no market price to fill at")
            return
        left = remaining(order)
        size = left
        if self.taker_volume_cap:
            size = self._on_step(min(left, to_decimal(self.max_volume_share * self.bar_volume)))
        if not size > 0:
            self._report(order, OrderStatus.CANCELLED, reason="IOC: no volume in this bar to fill against")
            return
        price = self.slippage.adjust(order.side, ref, float(size), self.bar_volume)
        inc = self.increments
        if inc is not None:  # against the taker: a BUY pays the tick above, a SELL gets the tick below
            price = float(inc.round_price(price, Side.SELL if order.side is Side.BUY else Side.BUY))
        self._fill(order, price, size, left, Liquidity.TAKER)
        if order.status is OrderStatus.PARTIAL:
            self._report(order, OrderStatus.CANCELLED,
                         reason=f"IOC: filled {order.filled_size:.8g} of {order.size:.8g} "
                                f"({self.max_volume_share:.0%} of the bar's volume); remainder cancelled")

    def cancel_now(self, order: Order) -> None:
        if self.resting.pop(order.id, None) is not None:
            self._reach = None
            self._report(order, OrderStatus.CANCELLED, reason=str(order.metadata.get("cancel_reason", "cancelled")))

    def _match(self, high: float, low: float, capacity: float) -> None:
        for order in list(self.resting.values()):
            limit = order.price
            assert limit is not None
            through = low < limit if order.side is BUY_SIDE else high > limit
            if not through or capacity <= 0.0:
                continue
            left = remaining(order)
            size = self._on_step(min(left, to_decimal(capacity)))
            if not size > 0:
                continue
            capacity -= float(size)
            self._fill(order, limit, size, left, MAKER_LIQUIDITY)
            if order.status is not PARTIAL_STATUS:
                self.resting.pop(order.id, None)
                self._reach = None

    def _on_step(self, size: Decimal) -> Decimal:
        """`size` floored to the size step (unchanged without increments)."""
        return self.increments.floor_size(size) if self.increments is not None else size

    def _fill(self, order: Order, price: float, size_d: Decimal, left: Decimal, liquidity: Liquidity) -> None:
        if not price > 0.0:
            raise StateCorruption(f"simulated fill price {price} for order {order.id} is not positive")
        now = self.clock.now_ns()
        size = float(size_d)
        notional = price * size
        volume = self.volume
        rate = self.fees.rate(liquidity, volume.volume(now) if volume is not None else None)
        self._fill_seq += 1
        fill = Fill(id=f"{order.id}-f{self._fill_seq}", order_id=order.id, client_order_id=order.client_order_id,
                    symbol=order.symbol, side=order.side, price=price, size=size, fee=notional * rate,
                    liquidity=liquidity, ts=now)
        if volume is not None:
            volume.add(now, notional)
        done = size_d >= left
        self._report(order, FILLED_STATUS if done else PARTIAL_STATUS, fill=fill)

    def _report(self, order: Order, status: OrderStatus, *, fill: Fill | None = None, reason: str = "") -> None:
        assert self._on_report is not None
        self._on_report(ExecutionReport(ts=self.clock.now_ns(), order_id=order.id,
                                        client_order_id=order.client_order_id, status=status, fill=fill,
                                        reason=reason))


def remaining(order: Order) -> Decimal:
    """What is left of `order` to fill, exact: its size less what is filled (base units)."""
    size = to_decimal(order.size)
    return size if order.filled_size == 0.0 else max(size - to_decimal(order.filled_size), Decimal(0))
