"""Further products the fake streams for market data only (a reference product, e.g. ETH-USD beside
BTC-USD): each with its own candle history and price path, stepped in lockstep with the traded
product's path, so one exchange time stamps both. No orders, no accounts: only the products, candles
and ticker endpoints and the `market_trades` / `ticker` channels know them.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from trdr_testkit.fake_coinbase.prices import price_path
from trdr_testkit.fake_coinbase.wire import dec, iso
from trdr_tui.core.types import Candle

MARKET_TRADES_KEPT = 500


class DataProduct:
    """One market-data-only product: `history` (the candles endpoint's bars, oldest first) and the
    price path walked from them (four points per bar); prices in quote currency, 0.01 steps."""

    quote_increment = Decimal("0.01")

    def __init__(self, product_id: str, candles: list[Candle]) -> None:
        if not candles:
            raise ValueError(f"product {product_id} needs candles for its price path")
        self.product_id = product_id
        self.base, self.quote = product_id.split("-")
        self.history = candles
        self.path = price_path(candles)
        self.price = Decimal(str(self.path[0])).quantize(self.quote_increment)
        self.market_trades: list[dict[str, Any]] = []
        self._trade_seq = itertools.count(1)

    def bid_ask(self) -> tuple[Decimal, Decimal]:
        """One quote increment either side of the last price."""
        return self.price - self.quote_increment, self.price + self.quote_increment

    def advance_to(self, index: int) -> None:
        """Move the price to point `index` of the path (wrapping round at its end)."""
        self.price = Decimal(str(self.path[index % len(self.path)])).quantize(self.quote_increment)

    def record_trade(self, ts_ns: int, index: int) -> dict[str, Any]:
        """One market trade at the current price, stamped `ts_ns` (exchange time); trade ids count per
        product, as Coinbase's do."""
        trade = {"trade_id": str(next(self._trade_seq)), "product_id": self.product_id, "price": dec(self.price),
                 "size": "0.1", "time": iso(ts_ns), "side": "BUY" if index % 2 else "SELL", "exchange": "coinbase"}
        self.market_trades.append(trade)
        del self.market_trades[:-MARKET_TRADES_KEPT]
        return trade

    def product_json(self) -> dict[str, Any]:
        """The products endpoint's answer (a plain spot product, trading enabled)."""
        return {
            "product_id": self.product_id, "price": dec(self.price), "price_percentage_change_24h": "0.5",
            "volume_24h": "1000", "base_increment": "0.00000001", "quote_increment": dec(self.quote_increment),
            "price_increment": dec(self.quote_increment), "quote_min_size": "1", "quote_max_size": "100000000",
            "base_min_size": "0.00001", "base_max_size": "10000", "base_name": self.base, "quote_name": self.quote,
            "watched": False, "is_disabled": False, "new": False, "status": "online", "cancel_only": False,
            "limit_only": False, "post_only": False, "trading_disabled": False, "auction_mode": False,
            "product_type": "SPOT", "quote_currency_id": self.quote, "base_currency_id": self.base,
            "product_venue": "CBE",
        }
