"""The fake's market: one product, a price path from real candles, accounts with holds, orders and fills.

Matching is simple on purpose: an order fills in full (or by `partial_fill_fraction`) when the price
path trades through its limit, as maker; one that crosses the book on entry fills at once, as taker.
Nothing here speaks HTTP or WebSocket.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from trdr_testkit.fake_coinbase.prices import price_path, synthetic_candles
from trdr_testkit.fake_coinbase.wire import dec, iso
from trdr_tui.core.types import Candle

ORDER_KINDS = {"market_market_ioc": "market", "limit_limit_gtc": "limit_gtc", "limit_limit_gtd": "limit_gtd",
               "stop_limit_stop_limit_gtc": "stop_gtc"}
"""Supported `order_configuration` keys → the fake's order kind."""
MARKET_TRADES_KEPT = 500


class Reject(Exception):
    """An order the exchange refuses (answered `success: false`): `reason` is Coinbase's failure code."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason, self.message = reason, message
        super().__init__(message)


class InvalidRequest(Exception):
    """A malformed order request (answered HTTP 400): `reason` is the error code, `text` the message."""

    def __init__(self, reason: str, text: str) -> None:
        self.reason, self.text = reason, text
        super().__init__(text)


@dataclass
class FakeOrder:
    """One order as the exchange keeps it; sizes in base currency, prices and values in quote currency."""

    order_id: str
    client_order_id: str
    product_id: str
    side: str
    config: dict[str, Any]
    kind: str
    base_size: Decimal
    quote_size: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    stop_up: bool
    post_only: bool
    created_ns: int
    status: str = "OPEN"
    triggered: bool = False
    filled: Decimal = Decimal(0)
    filled_value: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    fills: int = 0
    last_fill_ns: int | None = None
    reject_reason: str = ""

    @property
    def tif(self) -> str:
        """Coinbase's time-in-force name for this order's kind."""
        if self.kind == "market":
            return "IMMEDIATE_OR_CANCEL"
        return "GOOD_UNTIL_DATE_TIME" if self.kind.endswith("gtd") else "GOOD_UNTIL_CANCELLED"

    @property
    def avg(self) -> Decimal:
        """Average fill price (0 before the first fill)."""
        return self.filled_value / self.filled if self.filled else Decimal(0)


@dataclass
class FakeFill:
    """One fill: `commission` in quote currency, `liquidity` MAKER or TAKER, `ts_ns` UNIX nanoseconds."""

    trade_id: str
    order_id: str
    product_id: str
    side: str
    price: Decimal
    size: Decimal
    commission: Decimal
    liquidity: str
    ts_ns: int


class Market:
    """One product's market and the account trading it.

    `now_ns` is the wall clock (orders and fills live in real time); exchange time (`exchange_now_ns`)
    is the same unless `step_ns` is set, when it is `start_ns` plus `step_ns` per price-path step.
    Balances are in their currency; fees are rates (0.004 = 0.4 %).
    """

    def __init__(
        self,
        *,
        candles: list[Candle] | None,
        product_id: str,
        balances: dict[str, str] | None,
        maker_fee: str,
        taker_fee: str,
        step_ns: int | None,
        partial_fill_fraction: Decimal | None,
        now_ns: Callable[[], int],
        start_ns: int | None,
    ) -> None:
        self.history = candles or synthetic_candles()
        self.path = price_path(self.history)
        self.product_id = product_id
        self.base, self.quote = product_id.split("-")
        self.balances = {k: Decimal(v) for k, v in (balances or {"USD": "10000", self.base: "0"}).items()}
        self.maker_fee, self.taker_fee = Decimal(maker_fee), Decimal(taker_fee)
        self.step_ns = step_ns
        self.partial_fill_fraction = partial_fill_fraction
        self.orders: dict[str, FakeOrder] = {}
        self.by_client_id: dict[str, str] = {}
        self.fills: list[FakeFill] = []
        self.market_trades: list[dict[str, Any]] = []
        self.index = 0
        self.price = Decimal(str(round(self.path[0], 2)))
        self.base_increment = Decimal("0.00000001")
        self.quote_increment = Decimal("0.01")
        self.base_min_size = Decimal("0.00001")
        self.quote_min_size = Decimal("1")
        self.now_ns = now_ns
        self.t0 = start_ns if start_ns is not None else now_ns()
        self._trade_seq = itertools.count(1)

    def exchange_now_ns(self) -> int:
        """Exchange time: wall time, or — with `step_ns` — start time plus steps (accelerated markets)."""
        if self.step_ns is not None:
            return self.t0 + self.index * self.step_ns
        return self.now_ns()

    def bid_ask(self) -> tuple[Decimal, Decimal]:
        """The best bid and ask: one quote increment either side of the last price."""
        return self.price - self.quote_increment, self.price + self.quote_increment

    # -- the price path --------------------------------------------------------------------------

    def advance(self) -> None:
        """Move the price to the next point of the path (wrapping round at its end)."""
        self.index += 1
        raw = self.path[self.index % len(self.path)]
        self.price = Decimal(str(raw)).quantize(self.quote_increment)

    def record_trade(self) -> dict[str, Any]:
        """One market trade at the current price (kept among the last 500), returned as the REST ticker
        lists it."""
        trade = {"trade_id": str(next(self._trade_seq)), "product_id": self.product_id, "price": dec(self.price),
                 "size": "0.01", "time": iso(self.exchange_now_ns()),
                 "side": "BUY" if self.index % 2 else "SELL", "exchange": "coinbase"}
        self.market_trades.append(trade)
        del self.market_trades[:-MARKET_TRADES_KEPT]
        return trade

    def match_resting(self) -> Iterator[FakeOrder]:
        """Match every open order against the current price; yields each one the price reached (its
        stop triggered and its limit crossed), after filling it."""
        for o in list(self.orders.values()):
            if o.status == "OPEN" and self._cross(o):
                yield o

    def _cross(self, o: FakeOrder) -> bool:
        p = self.price
        if not o.triggered:
            if o.stop_price is not None and ((o.stop_up and p >= o.stop_price) or (not o.stop_up and p <= o.stop_price)):
                o.triggered = True
            else:
                return False
        if o.limit_price is None:
            return False
        crosses = (o.side == "BUY" and p <= o.limit_price) or (o.side == "SELL" and p >= o.limit_price)
        if not crosses:
            return False
        size = o.base_size - o.filled
        if self.partial_fill_fraction is not None:
            size = min(size, max(o.base_size * self.partial_fill_fraction, self.base_min_size))
        self._fill(o, o.limit_price, size, "MAKER")
        return True

    # -- the account -----------------------------------------------------------------------------

    def holds(self) -> dict[str, Decimal]:
        """Funds held by open resting orders, per currency (buys hold price × size plus the taker fee)."""
        holds: dict[str, Decimal] = {}
        for o in self.orders.values():
            if o.status != "OPEN" or o.kind == "market":
                continue
            left = o.base_size - o.filled
            if o.side == "BUY":
                price = o.limit_price or self.price
                holds[self.quote] = holds.get(self.quote, Decimal(0)) + left * price * (1 + self.taker_fee)
            else:
                holds[self.base] = holds.get(self.base, Decimal(0)) + left
        return holds

    def available(self, currency: str) -> Decimal:
        """Balance minus holds."""
        return self.balances.get(currency, Decimal(0)) - self.holds().get(currency, Decimal(0))

    def transfer(self, currency: str, amount: Decimal) -> Decimal:
        """A deposit (`amount` > 0) or withdrawal (< 0) of `currency` made outside trading (as at
        coinbase.com); returns the new balance. A withdrawal can take only the available balance (not
        what open orders hold): a larger one raises Reject("INSUFFICIENT_FUND") and changes nothing."""
        if amount < 0 and -amount > self.available(currency):
            raise Reject("INSUFFICIENT_FUND", f"withdrawal of {-amount} {currency} exceeds the available "
                                              f"{self.available(currency)}")
        self.balances[currency] = self.balances.get(currency, Decimal(0)) + amount
        return self.balances[currency]

    # -- orders ----------------------------------------------------------------------------------

    def order_by_client_id(self, coid: str) -> FakeOrder | None:
        """The order placed with client_order_id `coid`, if any."""
        oid = self.by_client_id.get(coid)
        return self.orders.get(oid) if oid else None

    def new_order(self, coid: str, body: dict[str, Any]) -> FakeOrder:
        """An order from a create-order request body, checked against the product rules and the
        available funds but not yet placed. Raises `InvalidRequest` for a malformed body, `Reject`
        for one the exchange refuses (precision, minimum size, funds, post-only crossing)."""
        side = body.get("side")
        if side not in ("BUY", "SELL"):
            raise InvalidRequest("INVALID_ARGUMENT", "side must be BUY or SELL")
        kind, inner = self._parse_config(body)
        base = self._decimal(inner, "base_size", self.base_increment)
        quote = self._decimal(inner, "quote_size", self.quote_increment)
        limit = self._decimal(inner, "limit_price", self.quote_increment)
        stop = self._decimal(inner, "stop_price", self.quote_increment)
        if kind != "market" and (base is None or limit is None):
            raise InvalidRequest("INVALID_ARGUMENT", "base_size and limit_price are required")
        if kind == "market" and base is None and quote is None:
            raise InvalidRequest("INVALID_ARGUMENT", "base_size or quote_size is required")
        ref = limit or self.price
        size = base if base is not None else (quote or Decimal(0)) / ref
        if base is not None and base < self.base_min_size:
            raise Reject("INVALID_BASE_SIZE_TOO_SMALL", "size below base_min_size")
        if size * ref < self.quote_min_size:
            raise Reject("INVALID_QUOTE_SIZE_TOO_SMALL", "order value below quote_min_size")
        if side == "BUY" and self.available(self.quote) < size * ref * (1 + self.taker_fee):
            raise Reject("INSUFFICIENT_FUND", "Insufficient balance in source account")
        if side == "SELL" and self.available(self.base) < size:
            raise Reject("INSUFFICIENT_FUND", "Insufficient balance in source account")
        post_only = bool(inner.get("post_only", False))
        bid, ask = self.bid_ask()
        if post_only and limit is not None and ((side == "BUY" and limit >= ask) or (side == "SELL" and limit <= bid)):
            raise Reject("INVALID_LIMIT_PRICE_POST_ONLY", "post-only limit price would cross the book")
        return FakeOrder(
            order_id=str(uuid.uuid4()), client_order_id=coid, product_id=self.product_id, side=side,
            config=body["order_configuration"], kind=kind, base_size=size.quantize(self.base_increment, ROUND_FLOOR),
            quote_size=quote, limit_price=limit, stop_price=stop,
            stop_up=inner.get("stop_direction") == "STOP_DIRECTION_STOP_UP", post_only=post_only,
            created_ns=self.now_ns(), triggered=kind != "stop_gtc",
        )

    @staticmethod
    def _parse_config(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        config = body.get("order_configuration")
        if not isinstance(config, dict) or len(config) != 1:
            raise InvalidRequest("INVALID_ARGUMENT", "order_configuration must hold one order type")
        kind, inner = next(iter(config.items()))
        if kind not in ORDER_KINDS or not isinstance(inner, dict):
            raise InvalidRequest("UNSUPPORTED_ORDER_CONFIGURATION", f"unsupported {kind}")
        return ORDER_KINDS[kind], inner

    @staticmethod
    def _decimal(inner: dict[str, Any], key: str, step: Decimal) -> Decimal | None:
        if key not in inner:
            return None
        raw = inner[key]
        if not isinstance(raw, str):
            raise InvalidRequest("INVALID_ARGUMENT", f"{key} must be a decimal string")
        value = Decimal(raw)
        if value != value.quantize(step, rounding=ROUND_FLOOR) or value <= 0:
            raise Reject("INVALID_SIZE_PRECISION" if "size" in key else "INVALID_PRICE_PRECISION",
                         f"{key} {raw} does not fit the increment {step}")
        return value

    def place(self, o: FakeOrder) -> None:
        """Book the order and fill what crosses the book at once (a market order's remainder is cancelled)."""
        self.orders[o.order_id] = o
        self.by_client_id[o.client_order_id] = o.order_id
        bid, ask = self.bid_ask()
        if o.kind == "market":
            self._fill(o, ask if o.side == "BUY" else bid, o.base_size, "TAKER")
            if o.status == "OPEN":
                o.status = "CANCELLED"  # IOC remainder
            return
        if not o.triggered or o.limit_price is None:
            return
        if o.side == "BUY" and o.limit_price >= ask:
            self._fill(o, ask, o.base_size, "TAKER")
        elif o.side == "SELL" and o.limit_price <= bid:
            self._fill(o, bid, o.base_size, "TAKER")

    def _fill(self, o: FakeOrder, price: Decimal, size: Decimal, liquidity: str) -> None:
        size = min(size, o.base_size - o.filled).quantize(self.base_increment, ROUND_FLOOR)
        if size <= 0:
            return
        rate = self.maker_fee if liquidity == "MAKER" else self.taker_fee
        value = price * size
        fee = (value * rate).quantize(Decimal("0.0000000001"))
        if o.side == "BUY":
            self.balances[self.quote] = self.balances.get(self.quote, Decimal(0)) - value - fee
            self.balances[self.base] = self.balances.get(self.base, Decimal(0)) + size
        else:
            self.balances[self.base] = self.balances.get(self.base, Decimal(0)) - size
            self.balances[self.quote] = self.balances.get(self.quote, Decimal(0)) + value - fee
        now = self.now_ns()  # orders and fills live in real time; only the market may be accelerated
        o.filled += size
        o.filled_value += value
        o.fees += fee
        o.fills += 1
        o.last_fill_ns = now
        if o.filled >= o.base_size:
            o.status = "FILLED"
        self.fills.append(FakeFill(str(uuid.uuid4()), o.order_id, o.product_id, o.side, price, size, fee,
                                   liquidity, now))

    def cancel(self, order_id: str) -> str:
        """Cancel an open order: "" when cancelled, else Coinbase's failure reason."""
        o = self.orders.get(order_id)
        if o is None:
            return "UNKNOWN_CANCEL_ORDER"
        if o.status != "OPEN":
            return "INVALID_CANCEL_REQUEST"
        o.status = "CANCELLED"
        return ""

    def editable(self, order_id: str) -> FakeOrder | None:
        """The order if it can be edited (an open GTC limit order), else None."""
        o = self.orders.get(order_id)
        if o is None or o.status != "OPEN" or o.kind != "limit_gtc":
            return None
        return o

    @staticmethod
    def edit(o: FakeOrder, size: str, price: str) -> None:
        """Give an editable order a new size (base currency) and limit price (decimal strings)."""
        o.base_size = Decimal(size)
        o.limit_price = Decimal(price)
        o.config = {"limit_limit_gtc": {**o.config["limit_limit_gtc"], "base_size": size, "limit_price": price}}
