"""What the outside (TUI, headless runner, API) may ask of a running engine.

The engine implements this protocol; user actions go through it and nothing else, so risk limits
and the state machine cannot be bypassed from the UI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import msgspec

from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import Clock
from trdr_tui.core.types import Candle, Decision, Fill, Mode, Order, OrderStatus, Tick


class EngineControl(Protocol):
    bus: EventBus
    clock: Clock

    @property
    def mode(self) -> Mode: ...

    @property
    def symbol(self) -> str: ...

    @property
    def paused(self) -> bool: ...

    def pause(self) -> None:
        """Stop placing new orders; the feed, the ledger and open-order tracking continue."""

    def resume(self) -> None: ...

    def agent_weights(self) -> dict[str, float]:
        """The weights in force (after adaptive scaling)."""

    def agent_base_weights(self) -> dict[str, float]:
        """The weights the user set, before adaptive scaling: what `set_agent_weight` changes."""

    def set_agent_weight(self, agent_id: str, weight: float) -> None:
        """Change one agent's weight in the running orchestrator; published and persisted."""

    def fund(self, amount: float, *, source: str = "manual") -> object:
        """Book a deposit (`amount` > 0) or withdrawal (< 0) of quote currency now and resize the grid.
        Raises RejectError for one made by hand in live mode (the exchange balance is the source there)
        and InsufficientFunds (E002) for a withdrawal above the free cash; nothing changes then."""

    async def run(self) -> None:
        """Run until the feed ends or `stop` is called."""

    async def stop(self, reason: str = "shutdown") -> None:
        """Stop gracefully and write a shutdown checkpoint."""


# --- the seams between the engine and its swappable parts ----------------------------------------


class ExecutionReport(msgspec.Struct, frozen=True, kw_only=True):
    """What an executor says about an order: a status change and/or a fill."""

    ts: int
    order_id: str
    client_order_id: str
    status: OrderStatus
    fill: Fill | None = None
    exchange_order_id: str | None = None
    reason: str = ""
    at_exchange: bool = False  # the fill was made by a real exchange: the money moved, it is always booked


ReportHandler = Callable[[ExecutionReport], None]


class Executor(Protocol):
    """Sends orders somewhere and reports back. SimExecutor (backtest, paper) and CoinbaseExecutor (live).

    Trailing logic lives in the engine (Coinbase has no trailing order type): executors only see
    market and limit orders. `submit` is called after the order has been stored (write-ahead).
    Reports go to the handler given to `bind`, in the order they happen.
    """

    name: str

    def bind(self, on_report: ReportHandler) -> None: ...

    async def submit(self, order: Order) -> None: ...

    async def cancel(self, order: Order) -> None: ...

    async def reconcile(self, known_open: list[Order]) -> list[ExecutionReport]:
        """At start-up: the exchange's truth about orders we think are open (crash-only design)."""
        ...

    def on_tick(self, tick: Tick) -> None: ...


@runtime_checkable
class ImmediateExecutor(Protocol):
    """An executor that can act synchronously (the simulator): the order manager calls these instead of
    scheduling `submit`/`cancel` as tasks, so a backtest needs no await per order."""

    def submit_now(self, order: Order) -> None: ...

    def cancel_now(self, order: Order) -> None: ...


class DecisionSource(Protocol):
    """The orchestrator as the engine sees it.

    Optional, used when present: `base_weights()` (the user-set weights before adaptive scaling; without
    it the weights in force are the base), `close()` (sync or async) or else `flush()` (called when a
    run ends or stops, so buffered decision-log rows and adapted weights are written), `precompute`/
    `decision_at` (the backtest batch path), `get_state`/`set_state` (checkpoints).
    """

    async def on_candle(self, candle: Candle) -> Decision | None:
        """Streaming (paper, live): update market state, run the agents, return the consensus."""
        ...

    def weights(self) -> dict[str, float]: ...

    def set_weight(self, agent_id: str, weight: float) -> None: ...
