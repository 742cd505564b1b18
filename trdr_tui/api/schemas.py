"""Request and response bodies of the control API (JSON), as msgspec structs.

The OpenAPI document (`openapi.py`) is generated from these types, so the schema a client sees and the
validation the server applies are the same code. Times are integer nanoseconds since the Unix epoch
(UTC); money is in the quote currency (USD for BTC-USD); sizes in base units; returns and drawdowns are
fractions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from trdr_tui.core.types import Mode, OrderStatus, OrderType, Side


class Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A request body: unknown fields are refused (a typo never passes silently)."""


class ErrorBody(msgspec.Struct, kw_only=True):
    error: str  # what went wrong
    hint: str = ""  # how to fix it
    code: str = ""  # E-code when the error has one


class Health(msgspec.Struct, kw_only=True):
    status: Literal["ok"] = "ok"
    version: str
    uptime_seconds: float


class Status(msgspec.Struct, kw_only=True):
    mode: Mode
    symbol: str
    running: bool
    paused: bool
    stopped: bool
    run_id: str
    bars: int
    last_price: float
    equity: float
    position: float
    open_orders: int
    fills: int
    uptime_seconds: float
    engine_time: int  # ns, the engine clock (simulated in a replay)


class Ack(msgspec.Struct, kw_only=True):
    ok: bool
    detail: str
    status: Status


class ModeRequest(Body):
    mode: Literal["paper", "live"]
    confirm: Literal["live"] | None = None  # required ("live") to switch to live trading


class FundingRequest(Body):
    """A deposit (`amount` > 0) or withdrawal (< 0) of quote currency, booked now (paper runs only)."""

    amount: float


class AgentInfo(msgspec.Struct, kw_only=True):
    id: str
    weight: float  # in force, after adaptive scaling
    base_weight: float  # as the user set it


class AgentList(msgspec.Struct, kw_only=True):
    agents: list[AgentInfo]


class WeightRequest(Body):
    weight: float  # from 0 (mute) to [agents] max_weight: the document states the bounds (openapi_document)


class ProfileRequest(Body):
    # the next calls of each agent to measure; a whole number (JSON Schema lets 10.0 stand for 10)
    calls: Annotated[float, msgspec.Meta(ge=1, le=1000, multiple_of=1)] = 20
    agents: list[str] | None = None  # default: every agent of the panel


class Performance(msgspec.Struct, kw_only=True):
    ts: int
    equity: float
    cash: float
    position: float
    price: float
    realized_pnl: float
    unrealized_pnl: float
    total_pnl: float  # realized + unrealized − fees (realized is gross of fees: trading/portfolio.py)
    total_return: float
    fees: float
    drawdown: float
    max_drawdown: float
    trades: int
    wins: int
    win_rate: float | None


class TradeOut(msgspec.Struct, kw_only=True):
    symbol: str
    entry_order_id: str
    exit_order_id: str
    entry_ts: int
    exit_ts: int
    entry_price: float
    exit_price: float
    size: float
    pnl: float
    fees: float


class TradeList(msgspec.Struct, kw_only=True):
    total: int
    trades: list[TradeOut]


class AgentPerformance(msgspec.Struct, kw_only=True):
    id: str
    weight: float
    scored_calls: int  # directional calls scored so far (agents/performance.py)
    hits: int
    accuracy: float | None
    edge: float | None  # mean signed return per scored call
    failures: int  # timeouts, exceptions and invalid signals (E005) in the recent failure log
    last_ms: float | None  # time of the last call, milliseconds
    mean_ms: float | None
    # memory of its update, sampled on request (POST /api/agents/profile; api/profiling.py), KiB
    mem_samples: int = 0  # calls measured so far
    mem_pending: int = 0  # calls still to measure
    mem_peak_kib: float | None = None  # mean peak working memory of a call
    mem_peak_max_kib: float | None = None
    mem_retained_kib: float | None = None  # left allocated by the latest sampled call (negative: it freed more)


class AgentPerformanceList(msgspec.Struct, kw_only=True):
    agents: list[AgentPerformance]


class ExecutionQuality(msgspec.Struct, kw_only=True):
    orders: int
    fills: int
    maker_fills: int
    taker_fills: int
    fees: float
    avg_slippage_bps: float | None  # signed against the order's reference price; positive = worse
    avg_fill_seconds: float | None  # order created → fill, engine time
    failed_orders: int  # rejected or expired orders
    risk_rejections: int


class OrderOut(msgspec.Struct, kw_only=True):
    id: str
    client_order_id: str
    side: Side
    type: OrderType
    size: float
    status: OrderStatus
    created_ts: int
    price: float | None
    filled_size: float
    avg_fill_price: float
    fees: float


class BacktestRequestBody(Body):
    start: str | None = None  # YYYY-MM-DD, inclusive; None = the data's first day
    end: str | None = None
    preset: Literal["default", "simple-trailing"] = "default"


class BacktestJob(msgspec.Struct, kw_only=True):
    id: str
    status: Literal["running", "done", "failed"]
    done: int  # bars replayed so far
    total: int
    error: str | None = None


class BacktestResults(msgspec.Struct, kw_only=True):
    id: str
    stats: dict[str, Any]


class ConfigDoc(msgspec.Struct, kw_only=True):
    config: dict[str, Any]
    restart_required: list[str] = msgspec.field(default_factory=list)


class ConfigPut(Body):
    config: dict[str, Any]


class CliRequest(Body):
    argv: list[str]


class CliResult(msgspec.Struct, kw_only=True):
    code: int
    stdout: str
    stderr: str


class OrderTrace(msgspec.Struct, kw_only=True):
    order: OrderOut
    timeline: list[dict[str, Any]]  # {"ts", "kind": "created" | "status" | "fill", ...} in time order


class Decisions(msgspec.Struct, kw_only=True):
    decisions: list[dict[str, Any]]
