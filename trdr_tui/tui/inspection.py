"""What the inspector screen reads (PRD §6.2), in the control API's shapes: recent decisions
(`/api/decisions`), an order's trace (`/api/orders/{id}/trace`) and the agents' profiles
(`/api/agents/performance`). A local engine is read in this process through the API's own Controller; a
remote one (`trdr attach`) through its API."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from trdr_tui.api.client import RemoteEngine
from trdr_tui.api.control import ApiError, Controller, Hooks
from trdr_tui.config import Settings
from trdr_tui.core.engine_api import EngineControl
from trdr_tui.core.errors import StopError, TrdrError
from trdr_tui.engine.loop import Engine


class Inspection(Protocol):
    async def decisions(self, limit: int) -> list[dict[str, Any]]:
        """Actionable decisions, newest first."""
        ...

    async def agents(self) -> list[dict[str, Any]]:
        """Per agent: weight, scored calls, accuracy, edge, failures, last/mean call time (ms or None)."""
        ...

    async def order_trace(self, order_id: str) -> dict[str, Any] | None:
        """{"order", "timeline"} of an order of this run; None when the run has no such order."""
        ...

    async def profile_memory(self, calls: int) -> None:
        """Measure the memory of every agent's next `calls` calls (api/profiling.py)."""
        ...


class LocalInspection:
    """The engine of this process. Call times come from the orchestrator's last call (no mean here)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.control = Controller(lambda: engine, Hooks(settings=settings))

    async def decisions(self, limit: int) -> list[dict[str, Any]]:
        return list(msgspec.to_builtins(self.control.decisions(limit))["decisions"])

    async def agents(self) -> list[dict[str, Any]]:
        timings = getattr(self.engine.decisions, "last_timings", None) or {}
        self.control.note_agent_times(dict(timings))
        return list(msgspec.to_builtins(self.control.agent_performance())["agents"])

    async def order_trace(self, order_id: str) -> dict[str, Any] | None:
        try:
            return dict(msgspec.to_builtins(self.control.order_trace(order_id)))
        except ApiError:
            return None

    async def profile_memory(self, calls: int) -> None:
        try:
            self.control.profile_memory(None, calls)
        except ApiError as exc:
            raise TrdrError(exc.message, hint=exc.hint) from None


class RemoteInspection:
    """The engine behind `trdr attach`, asked over its control API."""

    def __init__(self, engine: RemoteEngine) -> None:
        self.engine = engine

    async def decisions(self, limit: int) -> list[dict[str, Any]]:
        return list((await self.engine.fetch(f"/api/decisions?limit={limit}"))["decisions"])

    async def agents(self) -> list[dict[str, Any]]:
        return list((await self.engine.fetch("/api/agents/performance"))["agents"])

    async def order_trace(self, order_id: str) -> dict[str, Any] | None:
        try:
            return dict(await self.engine.fetch(f"/api/orders/{order_id}/trace"))
        except StopError:
            return None

    async def profile_memory(self, calls: int) -> None:
        await self.engine.fetch("/api/agents/profile", {"calls": calls})


def inspection_for(engine: EngineControl, settings: Settings) -> Inspection | None:
    """The source for the cockpit's engine; None for an engine of another kind (a test double)."""
    if isinstance(engine, Engine):
        return LocalInspection(engine, settings)
    if isinstance(engine, RemoteEngine):
        return RemoteInspection(engine)
    return None
