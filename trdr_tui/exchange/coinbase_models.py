"""Typed Coinbase Advanced Trade REST responses (msgspec) and exact-money helpers.

Rounding to a product's increments is `trading.sizing.Increments` (the one implementation, shared
with the sizer's ProductSpec); `Product.increments` gives it the exchange's steps.

Unknown fields are tolerated (Coinbase adds fields without notice); a missing required field or a
wrong type is an invalid response (E004). Money fields arrive as JSON strings and decode to Decimal.
Fields Coinbase sometimes sends as "" are kept as `str` and read through `dec()`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from trdr_tui.core.errors import InvalidResponse, RejectError
from trdr_tui.core.types import Candle, Side
from trdr_tui.trading.sizing import Increments, price_step, to_decimal

NS = 1_000_000_000

GRANULARITY = {
    "1m": ("ONE_MINUTE", 60),
    "5m": ("FIVE_MINUTE", 300),
    "15m": ("FIFTEEN_MINUTE", 900),
    "30m": ("THIRTY_MINUTE", 1800),
    "1h": ("ONE_HOUR", 3600),
    "2h": ("TWO_HOUR", 7200),
    "4h": ("FOUR_HOUR", 14400),
    "6h": ("SIX_HOUR", 21600),
    "1d": ("ONE_DAY", 86400),
}
GRANULARITY_SECONDS = {name: secs for name, secs in GRANULARITY.values()}


def dec(text: str | Decimal | float | int | None) -> Decimal:
    """A Decimal from an exchange field; "" and None read as 0, a number converts as `to_decimal` does.

    Raises InvalidResponse (E004) for text that is not a number.
    """
    if text is None or text == "":
        return Decimal(0)
    if not isinstance(text, str):
        return to_decimal(text)
    try:
        return Decimal(text)
    except InvalidOperation:
        raise InvalidResponse(f"not a number: {text!r}") from None


def fmt(value: Decimal) -> str:
    """Decimal as the plain string Coinbase expects (no exponent, no trailing zeros)."""
    text = format(value.normalize(), "f")
    return text


class _Model(msgspec.Struct, kw_only=True):
    pass


class Amount(_Model):
    value: Decimal
    currency: str


class Account(_Model):
    uuid: str
    currency: str
    available_balance: Amount
    hold: Amount | None = None
    name: str = ""
    type: str = ""
    active: bool = True
    ready: bool = True


class AccountsPage(_Model):
    accounts: list[Account]
    has_next: bool = False
    cursor: str = ""


class InvalidOrderSize(RejectError):
    """A size or price that the product's trading rules refuse (checked before sending)."""


class Product(_Model):
    product_id: str
    base_increment: Decimal
    quote_increment: Decimal
    base_min_size: Decimal
    base_max_size: Decimal
    quote_min_size: Decimal
    quote_max_size: Decimal
    status: str
    price: str = ""
    price_increment: str = ""
    base_currency_id: str = ""
    quote_currency_id: str = ""
    trading_disabled: bool = False
    cancel_only: bool = False
    limit_only: bool = False
    post_only: bool = False
    is_disabled: bool = False

    @property
    def tick(self) -> Decimal:
        """The price increment (Coinbase's price_increment, else the quote increment)."""
        return price_step(dec(self.price_increment), self.quote_increment)

    @property
    def increments(self) -> Increments:
        return Increments(base=self.base_increment, price=self.tick)

    def floor_size(self, size: float | Decimal) -> Decimal:
        """Down to the size increment; float noise just under a step snaps to it (`Increments.floor_size`)."""
        return self.increments.floor_size(size)

    def round_price(self, price: float | Decimal, side: Side) -> Decimal:
        """To the price increment: buy prices round down, sell prices up (never more aggressive than asked)."""
        return self.increments.round_price(price, side)

    def check_tradable(self) -> None:
        if self.status.lower() != "online" or self.trading_disabled or self.is_disabled or self.cancel_only:
            raise InvalidOrderSize(f"{self.product_id} is not open for new orders (status {self.status})",
                                   hint="wait until the product is online again")

    def check_size(self, base_size: Decimal, price: Decimal | None) -> None:
        if base_size <= 0 or base_size < self.base_min_size:
            raise InvalidOrderSize(
                f"size {fmt(base_size)} is below {self.product_id}'s minimum {fmt(self.base_min_size)}",
                hint="increase the order size")
        if base_size > self.base_max_size:
            raise InvalidOrderSize(f"size {fmt(base_size)} is above the maximum {fmt(self.base_max_size)}")
        if price is not None and base_size * price < self.quote_min_size:
            raise InvalidOrderSize(
                f"order value {fmt(base_size * price)} is below the minimum {fmt(self.quote_min_size)}",
                hint="increase the order size")


class BookLevel(_Model):
    price: Decimal
    size: Decimal


class PriceBook(_Model):
    product_id: str
    bids: list[BookLevel]
    asks: list[BookLevel]
    time: str = ""


class BestBidAsk(_Model):
    pricebooks: list[PriceBook]


class ApiCandle(_Model):
    start: str
    low: Decimal
    high: Decimal
    open: Decimal
    close: Decimal
    volume: Decimal

    def to_candle(self) -> Candle:
        try:
            ts = int(self.start) * NS
        except ValueError:
            raise InvalidResponse(f"candle start {self.start!r} is not UNIX seconds") from None
        return Candle(ts, float(self.open), float(self.high), float(self.low), float(self.close), float(self.volume))


class CandlesResponse(_Model):
    candles: list[ApiCandle]


class MarketTrade(_Model):
    trade_id: str
    product_id: str
    price: Decimal
    size: Decimal
    time: str
    side: str = ""


class TickerResponse(_Model):
    trades: list[MarketTrade]
    best_bid: str = ""
    best_ask: str = ""


class CreateSuccess(_Model):
    order_id: str
    product_id: str = ""
    side: str = ""
    client_order_id: str = ""


class CreateFailure(_Model):
    error: str = ""
    message: str = ""
    error_details: str = ""
    preview_failure_reason: str = ""
    new_order_failure_reason: str = ""

    @property
    def reason(self) -> str:
        for r in (self.new_order_failure_reason, self.error, self.preview_failure_reason):
            if r and r != "UNKNOWN_FAILURE_REASON":
                return r
        return "UNKNOWN_FAILURE_REASON"


class CreateOrderResponse(_Model):
    success: bool
    success_response: CreateSuccess | None = None
    error_response: CreateFailure | None = None
    failure_reason: str = ""
    order_configuration: dict[str, Any] | None = None


class PreviewResponse(_Model):
    order_total: str = ""
    commission_total: str = ""
    errs: list[str] = msgspec.field(default_factory=list)
    warning: list[str] = msgspec.field(default_factory=list)
    quote_size: str = ""
    base_size: str = ""
    best_bid: str = ""
    best_ask: str = ""
    preview_id: str = ""


class EditFailure(_Model):
    edit_failure_reason: str = ""
    preview_failure_reason: str = ""


class EditResponse(_Model):
    success: bool
    errors: list[EditFailure] = msgspec.field(default_factory=list)


class CancelResult(_Model):
    success: bool
    order_id: str
    failure_reason: str = ""


class BatchCancelResponse(_Model):
    results: list[CancelResult]


class ApiOrder(_Model):
    order_id: str
    product_id: str
    side: str
    client_order_id: str
    status: str
    order_configuration: dict[str, Any] = msgspec.field(default_factory=dict)
    time_in_force: str = ""
    created_time: str = ""
    filled_size: str = ""
    average_filled_price: str = ""
    number_of_fills: str = ""
    filled_value: str = ""
    total_fees: str = ""
    order_type: str = ""
    reject_reason: str = ""
    reject_message: str = ""
    cancel_message: str = ""
    last_fill_time: str | None = None


class GetOrderResponse(_Model):
    order: ApiOrder


class ListOrdersResponse(_Model):
    orders: list[ApiOrder]
    has_next: bool = False
    cursor: str = ""


class ApiFill(_Model):
    trade_id: str
    order_id: str
    trade_time: str
    price: Decimal
    size: Decimal
    commission: Decimal
    product_id: str
    entry_id: str = ""
    liquidity_indicator: str = ""
    side: str = ""
    size_in_quote: bool = False
    sequence_timestamp: str = ""


class ListFillsResponse(_Model):
    fills: list[ApiFill]
    cursor: str = ""


class ApiFeeTier(_Model):
    taker_fee_rate: Decimal
    maker_fee_rate: Decimal
    pricing_tier: str = ""
    usd_from: str = ""
    usd_to: str = ""


class TransactionSummary(_Model):
    fee_tier: ApiFeeTier
    total_volume: float | str = 0.0
    total_fees: float | str = 0.0


class ServerTime(_Model):
    iso: str
    epochSeconds: str
    epochMillis: str = ""


class ApiErrorBody(_Model):
    error: str = ""
    code: int | str | None = None
    message: str = ""
    error_details: str = ""


# --- order configurations -----------------------------------------------------------------------


def market_ioc(*, base_size: Decimal | None = None, quote_size: Decimal | None = None) -> dict[str, Any]:
    if (base_size is None) == (quote_size is None):
        raise ValueError("a market order takes exactly one of base_size or quote_size")
    inner = {"base_size": fmt(base_size)} if base_size is not None else {"quote_size": fmt(quote_size)}  # type: ignore[arg-type]
    return {"market_market_ioc": inner}


def limit_gtc(*, base_size: Decimal, limit_price: Decimal, post_only: bool = False) -> dict[str, Any]:
    return {"limit_limit_gtc": {"base_size": fmt(base_size), "limit_price": fmt(limit_price), "post_only": post_only}}


def limit_gtd(*, base_size: Decimal, limit_price: Decimal, end_time: str, post_only: bool = False) -> dict[str, Any]:
    return {"limit_limit_gtd": {"base_size": fmt(base_size), "limit_price": fmt(limit_price),
                                "end_time": end_time, "post_only": post_only}}


def stop_limit_gtc(*, base_size: Decimal, limit_price: Decimal, stop_price: Decimal, stop_up: bool) -> dict[str, Any]:
    direction = "STOP_DIRECTION_STOP_UP" if stop_up else "STOP_DIRECTION_STOP_DOWN"
    return {"stop_limit_stop_limit_gtc": {"base_size": fmt(base_size), "limit_price": fmt(limit_price),
                                          "stop_price": fmt(stop_price), "stop_direction": direction}}


def parse_time_ns(text: str) -> int:
    """Exchange timestamps → int ns: RFC 3339 with up to 9 fractional digits ("…Z" or an offset), and
    the Go layout heartbeats use ("2023-06-23 20:31:56.121961769 +0000 UTC m=+917.52")."""
    import datetime as _dt

    t = text.strip()
    if " +0000 UTC" in t:
        t = t.split(" +0000 UTC", 1)[0].replace(" ", "T") + "Z"
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    frac_ns = 0
    dot = t.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(t) and t[end].isdigit():
            end += 1
        digits = t[dot + 1:end]
        frac_ns = int((digits + "000000000")[:9]) if digits else 0
        t = t[:dot] + t[end:]
    try:
        stamp = _dt.datetime.fromisoformat(t)
    except ValueError:
        raise InvalidResponse(f"unrecognised timestamp {text!r}") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.UTC)
    return int(stamp.timestamp()) * NS + frac_ns
