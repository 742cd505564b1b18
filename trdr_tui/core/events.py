"""The events the engine publishes on the EventBus, and their topics.

Every consumer (store, TUI, headless log, API) subscribes to these; nothing reaches into the engine.

| topic                         | event             |
|-------------------------------|-------------------|
| `market.candle.<symbol>`      | CandleEvent       |
| `market.tick.<symbol>`        | Tick              |
| `feed.health`                 | FeedHealth        |
| `agent.signal.<agent_id>`     | AgentSignal       |
| `decision.<symbol>`           | Decision          |
| `order.<order_id>`            | OrderEvent        |
| `fill.<symbol>`               | Fill              |
| `portfolio.<symbol>`          | PortfolioSnapshot |
| `grid.<symbol>`               | GridSnapshot      |
| `risk.rejected`               | RiskRejection     |
| `agents.weights`              | WeightsChanged    |
| `engine.status`               | EngineStatus      |
| `backtest.progress`           | BacktestProgress  |
| `log.<level>`                 | LogEvent          |
"""

from __future__ import annotations

import msgspec

from trdr_tui.core.types import Candle, Mode, Order, OrderTransition, Side


def candle_topic(symbol: str) -> str:
    return f"market.candle.{symbol}"


def tick_topic(symbol: str) -> str:
    return f"market.tick.{symbol}"


def order_topic(order_id: str) -> str:
    return f"order.{order_id}"


class CandleEvent(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    timeframe: str
    candle: Candle
    closed: bool = True  # False while the bar is still forming (live feeds)


class FeedHealth(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    source: str  # "replay" | "coinbase-ws" | "coinbase-rest"
    healthy: bool
    detail: str = ""
    latency_ms: float | None = None


class OrderEvent(msgspec.Struct, frozen=True, kw_only=True):
    order: Order
    transition: OrderTransition


class PortfolioSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    symbol: str
    cash: float
    position: float
    avg_entry: float
    price: float
    equity: float
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    peak_equity: float
    drawdown: float


class GridLevel(msgspec.Struct, frozen=True, kw_only=True):
    price: float
    side: Side
    state: str  # "idle" | "armed" | "trailing" | "filled" | "exit" (the take-profit of the level below rests here)
    trigger: float | None = None
    pnl: float = 0.0
    time_at_level_ns: int = 0


class GridSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    symbol: str
    center: float
    spacing: float
    levels: tuple[GridLevel, ...]


class RiskRejection(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    symbol: str
    side: Side
    size: float
    failed_checks: tuple[str, ...]


class WeightsChanged(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    weights: dict[str, float]
    source: str = "user"  # "user" | "adaptive" | "config"


class EngineStatus(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    mode: Mode
    symbol: str
    running: bool
    paused: bool
    last_price: float | None = None
    detail: str = ""


class FundingChange(msgspec.Struct, frozen=True, kw_only=True):
    """A deposit (`amount` > 0) or withdrawal (< 0) of quote currency, booked (`applied`) or refused
    (`reason` says why). `source`: "schedule" (`[funding] events`), "manual" (cockpit or API, paper),
    "account" (seen in a live account's balances). Equity before and after at the last price."""

    ts: int
    symbol: str
    amount: float
    source: str
    applied: bool
    equity_before: float
    equity_after: float
    orders_resized: int = 0
    reason: str = ""


def funding_topic(symbol: str) -> str:
    return f"funding.{symbol}"


class BacktestProgress(msgspec.Struct, frozen=True, kw_only=True):
    done: int
    total: int


class LogEvent(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    level: str  # "debug" | "info" | "warning" | "error"
    source: str
    message: str
    fields: dict[str, str | float | int | bool | None] = msgspec.field(default_factory=dict)
