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
core agents are tested for it on real data).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable
from typing import Any, ClassVar, Protocol, runtime_checkable

import msgspec
import numpy as np
import numpy.typing as npt

from trdr_tui.core.types import Action, AgentSignal, Urgency
from trdr_tui.market.indicators import Features
from trdr_tui.market.streaming import FeatureRow

# Action codes used by every batch array: int8.
HOLD, BUY, SELL = 0, 1, 2
ACTION_CODES: dict[Action, int] = {Action.HOLD: HOLD, Action.TRAIL_BUY: BUY, Action.TRAIL_SELL: SELL}
CODE_ACTIONS: tuple[Action, Action, Action] = (Action.HOLD, Action.TRAIL_BUY, Action.TRAIL_SELL)


class AgentContext(msgspec.Struct, frozen=True, kw_only=True):
    """What an agent learns once, at `initialize`: the market it trades and the trail bounds."""

    symbol: str
    timeframe: str
    base_trail: float  # the risk profile's (or configured) trail distance
    min_trail: float
    max_trail: float
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class MarketSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """One market update as agents see it. `index` counts the candles seen so far (0-based)."""

    symbol: str
    now: int  # the engine clock, ns
    index: int
    features: FeatureRow


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
        return AgentSignal(agent_id=self.id, action=action, confidence=min(max(confidence, 0.0), 1.0),
                           trail_distance=trail, reasoning=reasoning, urgency=urgency, ts=snapshot.features.ts)

    def warming_up(self, snapshot: MarketSnapshot) -> AgentSignal:
        return self.signal(snapshot, Action.HOLD, 0.0, self.context.base_trail, "warming up: not enough history yet")


def any_nan(*values: float) -> bool:
    """True if any value is NaN (features are finite or NaN, so one sum tells; cheap on floats)."""
    total = sum(values)
    return total != total


def pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x * 100:.2f}%"
