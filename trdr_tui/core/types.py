"""Domain types shared by every package.

Times are integer nanoseconds since the Unix epoch (UTC), as given by the Clock.
Prices and sizes are float64 inside the engine; Decimal only at the exchange boundary.
"""

from __future__ import annotations

import enum
from typing import Final

import msgspec


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class Action(enum.StrEnum):
    """What an agent (or the consensus) wants done."""

    TRAIL_BUY = "TRAIL_BUY"
    TRAIL_SELL = "TRAIL_SELL"
    HOLD = "HOLD"


class OrderType(enum.StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    TRAILING = "TRAILING"
    STOP_LIMIT = "STOP_LIMIT"


class OrderStatus(enum.StrEnum):
    PENDING = "PENDING"
    ARMED = "ARMED"  # in the engine's trigger book (a trailing order), not yet sent to the executor
    SUBMITTED = "SUBMITTED"
    PARTIAL = "PARTIAL"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class Liquidity(enum.StrEnum):
    MAKER = "MAKER"
    TAKER = "TAKER"


class Mode(enum.StrEnum):
    BACKTEST = "backtest"
    PAPER = "paper"
    LIVE = "live"


# The members the per-bar, per-level and per-order loops read, as plain module constants: on Python 3.11
# reading a member from its Enum class goes through `EnumType.__getattr__`'s hook (≈ 0.1 µs, about 15× a
# module global). Import these in hot code; elsewhere `Side.BUY` reads better.
BUY_SIDE: Final = Side.BUY
SELL_SIDE: Final = Side.SELL
HOLD_ACTION: Final = Action.HOLD
TRAIL_BUY_ACTION: Final = Action.TRAIL_BUY
TRAIL_SELL_ACTION: Final = Action.TRAIL_SELL
LIMIT_ORDER: Final = OrderType.LIMIT
ARMED_STATUS: Final = OrderStatus.ARMED
PENDING_STATUS: Final = OrderStatus.PENDING
SUBMITTED_STATUS: Final = OrderStatus.SUBMITTED
PARTIAL_STATUS: Final = OrderStatus.PARTIAL
FILLED_STATUS: Final = OrderStatus.FILLED
MAKER_LIQUIDITY: Final = Liquidity.MAKER
BACKTEST_MODE: Final = Mode.BACKTEST


class Urgency(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class Candle(msgspec.Struct, frozen=True, array_like=True):
    """One OHLCV bar; `ts` is the bar's open time."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class Tick(msgspec.Struct, frozen=True):
    """A market update between bars: last trade price and, when known, the top of book."""

    symbol: str
    ts: int
    price: float
    size: float = 0.0
    bid: float | None = None
    ask: float | None = None
    bid_size: float | None = None  # base units quoted at the best bid (ticker `best_bid_quantity`)
    ask_size: float | None = None


MarketUpdate = Tick


class OrderTransition(msgspec.Struct, frozen=True):
    ts: int
    from_status: OrderStatus
    to_status: OrderStatus
    reason: str = ""


class Order(msgspec.Struct, kw_only=True):
    """An order as the engine tracks it. Its status changes only through the state machine."""

    id: str
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    size: float
    created_ts: int
    price: float | None = None
    trail: float | None = None
    status: OrderStatus = OrderStatus.PENDING
    filled_size: float = 0.0
    avg_fill_price: float = 0.0
    fees: float = 0.0
    exchange_order_id: str | None = None
    history: list[OrderTransition] = msgspec.field(default_factory=list)
    metadata: dict[str, str | float | int | bool | None] = msgspec.field(default_factory=dict)

    @property
    def remaining(self) -> float:
        return max(self.size - self.filled_size, 0.0)


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    price: float
    size: float
    fee: float
    liquidity: Liquidity
    ts: int

    @property
    def notional(self) -> float:
        return self.price * self.size


class AgentSignal(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str
    action: Action
    confidence: float
    trail_distance: float
    reasoning: str
    urgency: Urgency = Urgency.NORMAL
    ts: int = 0


class Decision(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The orchestrator's consensus for one market update.

    Untracked by the cyclic GC (`gc=False`): a backtest holds one per bar, and a Decision refers to
    nothing that could refer back to it (numbers, strings, agent signals, a dict of floats)."""

    ts: int
    action: Action
    confidence: float
    trail_distance: float
    signals: tuple[AgentSignal, ...] = ()
    weights: dict[str, float] = msgspec.field(default_factory=dict)
    meta_resolved: bool = False
    reasoning: str = ""


class Position(msgspec.Struct, kw_only=True):
    symbol: str
    size: float = 0.0
    avg_entry: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    """A round trip: an entry and the exit that closed it."""

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

    @property
    def duration_ns(self) -> int:
        return self.exit_ts - self.entry_ts
