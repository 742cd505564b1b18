"""The agent protocol (PRD §3.2.1): what every agent, built-in or plugin, provides.

An agent looks at one `MarketSnapshot` (the latest candle, its features and the clock's `now`) and
returns an `AgentSignal`: TRAIL_BUY, TRAIL_SELL or HOLD, a confidence in [0, 1], the trail distance
it suggests (a fraction of price, 0.015 = 1.5 %), a human `reasoning` (the TUI shows it) and an
urgency. Agents never read the wall clock; `snapshot.now` is the engine clock's time.

`analyze` may be a plain method (cheap, pure computation: it runs inline) or a coroutine (I/O, e.g.
an AI agent: it runs as a task under the orchestrator's timeout). An agent whose analysis is CPU-heavy
and synchronous sets `blocking = True` and runs in a worker thread under the same timeout.

Batch mode (backtests): an agent that also implements `analyze_batch(features)` computes its signal
for every bar at once with numpy; the result must equal the streaming `analyze` bar by bar (the
core agents are tested for it on real data). An agent whose streaming `analyze` keeps windows of its
own also implements `explain(features, i)`: the words for bar i of its last batch, so rebuilding a
batch bar's reasoning never feeds its streaming windows.

What else an agent may read, all read-only:
- `snapshot.book` (`BookView`): the grid and the open orders, when an engine is attached. Agents
  never place or change orders; the engine hands them frozen copies. A panel with an agent that
  reads it (`reads_book = True`) has no batch path while a book is attached: the grid depends on
  the decisions, so no decision can be computed before the run.
- `snapshot.quote` (`Quote`): the latest best bid/ask from the live feed (paper, live); None in backtests.
- `snapshot.history`: the latest candles (the orchestrator's ring, up to 1,000 bars) for agents
  that need windows longer than one bar's features.
- `context.candles` (`CandleSource`): stored candles of other products (a reference product).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import msgspec
import numpy as np
import numpy.typing as npt

from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.events import GridSnapshot
from trdr_tui.core.types import Action, AgentSignal, Candle, OrderType, Side, Urgency
from trdr_tui.market.indicators import Features
from trdr_tui.market.streaming import FeatureRow

# Action codes used by every batch array: int8.
HOLD, BUY, SELL = 0, 1, 2
ACTION_CODES: dict[Action, int] = {Action.HOLD: HOLD, Action.TRAIL_BUY: BUY, Action.TRAIL_SELL: SELL}
CODE_ACTIONS: tuple[Action, Action, Action] = (Action.HOLD, Action.TRAIL_BUY, Action.TRAIL_SELL)


class OpenOrderView(msgspec.Struct, frozen=True, kw_only=True):
    """An open order as agents see it (a frozen copy): prices in quote currency, times in ns.
    `trigger` is a trailing order's current trigger price (None for other orders)."""

    id: str
    side: Side
    type: OrderType
    created_ts: int
    size: float
    price: float | None = None
    trail: float | None = None
    trigger: float | None = None


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    """The top of the book from the live feed (Coinbase `ticker`): prices in quote currency, sizes in
    base units (None when the channel did not say)."""

    ts: int
    bid: float
    ask: float
    bid_size: float | None = None
    ask_size: float | None = None


@runtime_checkable
class BookView(Protocol):
    """A read-only view of what the engine is trading: the last grid picture and the open orders."""

    def grid(self) -> GridSnapshot | None: ...

    def open_orders(self) -> tuple[OpenOrderView, ...]: ...


@runtime_checkable
class CandleSource(Protocol):
    """Stored candles of any product (`trdr data import` / `backfill`): all bars of `symbol` at
    `timeframe`, ascending, or None when none are stored."""

    def candles(self, symbol: str, timeframe: str) -> CandleArrays | None: ...


class AgentContext(msgspec.Struct, frozen=True, kw_only=True):
    """What an agent learns once, at `initialize`: the market it trades, the trail bounds, settings
    for agents that need them (`params`, e.g. `reference_symbol`, `ai`) and stored candles."""

    symbol: str
    timeframe: str
    base_trail: float  # the risk profile's (or configured) trail distance
    min_trail: float
    max_trail: float
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    candles: CandleSource | None = None


class MarketSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """One market update as agents see it. `index` counts the candles seen so far (0-based).
    `book` and `quote` are read-only views (see the module doc); None when there is none."""

    symbol: str
    now: int  # the engine clock, ns
    index: int
    features: FeatureRow
    book: BookView | None = None
    quote: Quote | None = None
    history: Sequence[Candle] = ()  # the latest candles, oldest first, this bar last (do not modify)


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """How one past directional signal turned out `horizon` bars later (for `update_performance`)."""

    agent_id: str
    signal_ts: int
    resolved_ts: int
    action: Action
    signed_return: float  # the price move in the signal's favour (negative: it was wrong)
    hit: bool


class SignalArrays(msgspec.Struct, frozen=True):
    """An agent's signals for every bar: action codes (int8), confidence and trail distance."""

    action: npt.NDArray[np.int8]
    confidence: npt.NDArray[np.float64]
    trail: npt.NDArray[np.float64]


@runtime_checkable
class Agent(Protocol):
    # Read-only: an agent names itself with class attributes (as BaseAgent's subclasses do) or
    # with instance attributes; the engine never writes them.
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    def initialize(self, context: AgentContext) -> None: ...

    def shutdown(self) -> None: ...

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal | Awaitable[AgentSignal]: ...

    def update_performance(self, outcome: Outcome) -> None: ...

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class BatchAgent(Agent, Protocol):
    def analyze_batch(self, features: Features) -> SignalArrays: ...


@runtime_checkable
class TrailAdjuster(Protocol):
    """An agent that classifies the market regime and scales the panel's trail (RegimeAgent).

    Regime codes are small ints; `regime_name(code)` gives "trending", "ranging", "volatile", "calm"
    or "unknown" (the meta resolver reads the name), `multiplier(code)` the trail factor.
    """

    def regime_code(self, row: FeatureRow) -> int: ...

    def regime_codes(self, features: Features) -> npt.NDArray[np.int8]: ...

    def regime_name(self, code: int) -> str: ...

    def multiplier(self, code: int) -> float: ...

    def multipliers(self, codes: npt.NDArray[np.int8]) -> npt.NDArray[np.float64]: ...


class BaseAgent:
    """Shared plumbing for agents: context, clamping, counters and a default state.

    Subclasses set `id`, `name`, `version`, optionally `params` defaults, and implement `analyze`
    (and `analyze_batch` for backtests).
    """

    id: ClassVar[str] = ""
    name: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    description: ClassVar[str] = ""
    blocking: ClassVar[bool] = False
    timeout_s: float | None = None  # None: the orchestrator's timeout

    def __init__(self) -> None:
        self.context = AgentContext(symbol="", timeframe="1h", base_trail=0.015, min_trail=0.002,
                                    max_trail=0.10)
        self.outcomes = 0
        self.hits = 0

    def initialize(self, context: AgentContext) -> None:
        self.context = context

    def shutdown(self) -> None:
        return None

    def update_performance(self, outcome: Outcome) -> None:
        self.outcomes += 1
        self.hits += int(outcome.hit)

    def get_state(self) -> dict[str, Any]:
        return {"outcomes": self.outcomes, "hits": self.hits}

    def set_state(self, state: dict[str, Any]) -> None:
        self.outcomes = int(state.get("outcomes", 0))
        self.hits = int(state.get("hits", 0))

    # -- helpers for subclasses ------------------------------------------------------------------

    def clamp_trail(self, value: float) -> float:
        c = self.context
        if value != value:
            return c.base_trail
        return min(max(value, c.min_trail), c.max_trail)

    def clamp_trail_array(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        c = self.context
        out = np.clip(values, c.min_trail, c.max_trail)
        return np.where(np.isnan(values), c.base_trail, out)

    def signal(self, snapshot: MarketSnapshot, action: Action, confidence: float, trail: float, reasoning: str,
               urgency: Urgency = Urgency.NORMAL) -> AgentSignal:
        # clamped to [0, 1] as min(max(c, 0), 1) would (NaN stays NaN), without two builtin calls
        confidence = 0.0 if confidence < 0.0 else 1.0 if confidence > 1.0 else confidence
        return AgentSignal(agent_id=self.id, action=action, confidence=confidence,
                           trail_distance=trail, reasoning=reasoning, urgency=urgency, ts=snapshot.features.ts)

    def warming_up(self, snapshot: MarketSnapshot) -> AgentSignal:
        return self.signal(snapshot, Action.HOLD, 0.0, self.context.base_trail, "warming up: not enough history yet")


def any_nan(*values: float) -> bool:
    """True if any value is NaN (features are finite or NaN, so one sum tells; cheap on floats)."""
    total = sum(values)
    return total != total
