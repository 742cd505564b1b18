"""What the outside (TUI, headless runner, API) may ask of a running engine.

The engine implements this protocol; user actions go through it and nothing else, so risk limits
and the state machine cannot be bypassed from the UI.
"""

from __future__ import annotations

from typing import Protocol

from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import Clock
from trdr_tui.core.types import Mode


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

    def agent_weights(self) -> dict[str, float]: ...

    def set_agent_weight(self, agent_id: str, weight: float) -> None:
        """Change one agent's weight in the running orchestrator; published and persisted."""

    async def run(self) -> None:
        """Run until the feed ends or `stop` is called."""

    async def stop(self, reason: str = "shutdown") -> None:
        """Stop gracefully and write a shutdown checkpoint."""
