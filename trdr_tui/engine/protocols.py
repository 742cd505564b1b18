"""The parts an engine runs on, and the optional capabilities it uses when a part has them.

A capability is a `runtime_checkable` protocol: the engine asks `isinstance(part, Capability)` once,
when it starts, instead of probing attributes bar by bar. The required seams (`Executor`,
`DecisionSource`) live in `core.engine_api`; these add what some parts can do beyond them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from trdr_tui.config import PriceModel
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import Clock
from trdr_tui.core.engine_api import DecisionSource, Executor
from trdr_tui.core.events import PortfolioSnapshot
from trdr_tui.core.types import Candle, Decision, Mode, Tick
from trdr_tui.engine.record import RunState
from trdr_tui.engine.timers import PeriodicTimer
from trdr_tui.store.orders import RunRepository
from trdr_tui.trading.funding import FundingSchedule
from trdr_tui.trading.orders import OrderManager
from trdr_tui.trading.policy import Policy
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.risk import RiskManager


class Feed(Protocol):
    """A market data source: closed candles (and, live, ticks between them), oldest first."""

    symbol: str
    timeframe: str
    timeframe_ns: int

    def __aiter__(self) -> AsyncIterator[Candle | Tick]: ...


@runtime_checkable
class ArrayFeed(Protocol):
    """A feed that holds its whole history: a backtest runs it in the synchronous batch loop unless it is
    `paced` (candles per second for a person to watch), which streams it instead."""

    arrays: CandleArrays

    @property
    def paced(self) -> bool: ...


@runtime_checkable
class ClosableFeed(Protocol):
    """A feed that can be told to end its iteration (a live stream), so `Engine.stop` returns."""

    async def close(self) -> None: ...


@runtime_checkable
class BarExecutor(Protocol):
    """An executor that matches resting orders against each closed bar (the simulator).

    `on_bar(high, low, close, volume)`: prices in quote currency, volume in base units."""

    def on_bar(self, high: float, low: float, close: float, volume: float) -> None: ...


class DecisionArraysLike(Protocol):
    """Per-bar batch decisions: `valid` (False during warm-up), `action` codes 0 HOLD / 1 TRAIL_BUY /
    2 TRAIL_SELL, `confidence` in [0, 1], `trail_distance` as a fraction, `ts` bar open times in ns."""

    ts: npt.NDArray[np.int64]
    valid: npt.NDArray[np.bool_]
    action: npt.NDArray[np.int8]
    confidence: npt.NDArray[np.float64]
    trail_distance: npt.NDArray[np.float64]

    def __len__(self) -> int: ...


@runtime_checkable
class BatchDecisionSource(Protocol):
    """A DecisionSource with a backtest batch path: every bar's decision computed once, vectorized.

    `precompute(bars)` raises NotAvailable when some agent cannot batch (the run then streams);
    `decision_at(i)` is the full Decision (with every agent's signal) for bar i, None during warm-up."""

    def precompute(self, bars: CandleArrays) -> Any: ...

    def decision_at(self, i: int) -> Decision | None: ...


@runtime_checkable
class StatefulDecisionSource(Protocol):
    """A DecisionSource whose own state (market buffers, adaptive weights, agent state) goes into
    checkpoints, so a restart does not start its indicators cold."""

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class AdaptiveDecisionSource(Protocol):
    """A DecisionSource that scales the user-set weights (`base_weights`) into the weights in force."""

    def base_weights(self) -> dict[str, float]: ...


@runtime_checkable
class BookAwareDecisionSource(Protocol):
    """A DecisionSource whose agents see the grid and the open orders (read-only, `agents.protocol.BookView`)
    and the top of the book between bars (`on_tick`)."""

    def attach_book(self, book: Any) -> None: ...

    def on_tick(self, tick: Tick) -> None: ...


@runtime_checkable
class ClosableDecisionSource(Protocol):
    """Writes what it buffered (decision-log rows, adapted weights) and releases its agents at run end."""

    async def close(self) -> None: ...


@runtime_checkable
class FlushableDecisionSource(Protocol):
    """Writes what it buffered without releasing anything (also used after a failed run)."""

    def flush(self) -> None: ...


class EngineParts(Protocol):
    """The engine as its own step and recovery modules see it (`engine.loop.Engine` implements it): its
    parts, where the run is, and the few engine actions they call. Kept here so that `step` and
    `recovery` do not import the loop that imports them."""

    clock: Clock
    bus: EventBus
    feed: Feed
    executor: Executor
    portfolio: Portfolio
    orders: OrderManager
    risk: RiskManager
    policy: Policy
    decisions: DecisionSource | None
    price_model: PriceModel
    run_id: str
    run_state: RunState
    checkpoints: RunRepository | None
    polled_timer: PeriodicTimer | None
    funding: FundingSchedule | None
    candle_topic: str
    portfolio_topic: str
    decision_topic: str

    @property
    def mode(self) -> Mode: ...

    @property
    def symbol(self) -> str: ...

    @property
    def running(self) -> bool: ...

    @property
    def paused(self) -> bool: ...

    @property
    def bars_done(self) -> int: ...

    @property
    def last_price(self) -> float: ...

    @last_price.setter
    def last_price(self, price: float) -> None: ...

    def pause(self) -> None: ...

    def agent_weights(self) -> dict[str, float]: ...

    def set_recovery(self, recovery: Callable[[], Awaitable[object]]) -> None: ...

    def log(self, level: str, message: str, **fields: str | float | int | bool | None) -> None: ...

    def on_decision(self, decision: Decision) -> None: ...

    def close_at_stop(self, price: float) -> None: ...

    def snapshot(self) -> PortfolioSnapshot: ...
