"""The fake's protocol constants and how it writes times and decimals on the wire."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from trdr_tui.core.clock import NS_PER_SECOND

PREFIX = "/api/v3/brokerage"
"""Path prefix of every REST endpoint."""
WS_MARKET_PATH = "/ws"
"""WebSocket path for the market channels (heartbeats, ticker, market_trades, ...)."""
WS_USER_PATH = "/ws-user"
"""WebSocket path for the user channel (order updates; needs a JWT)."""


def iso(ns: int) -> str:
    """UNIX nanoseconds as Coinbase writes times: `2019-10-17T09:00:00.000000Z` (UTC, microseconds)."""
    stamp = dt.datetime.fromtimestamp(ns / NS_PER_SECOND, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dec(value: Decimal) -> str:
    """A decimal as Coinbase writes amounts: plain notation, no trailing zeros, zero as `"0"`."""
    return format(value.normalize(), "f") if value != 0 else "0"
