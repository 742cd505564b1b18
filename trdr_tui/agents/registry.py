"""The agent registry: built-in agents plus plugins from the `trdr.agents` entry-point group.

A plugin is a package that declares, in its `pyproject.toml`:

    [project.entry-points."trdr.agents"]
    my_agent = "my_package.agents:MyAgent"

The entry point's name is the agent id used in config (`[agents] enabled`, `[agents.weights]`); it
must load to a class (or zero-argument factory) whose instances satisfy `protocol.Agent`. A plugin
that fails to import, has the wrong shape or reuses a built-in id is reported by name (`errors`)
and skipped; the others still load. Each plugin is instantiated once at discovery to read its name
and version, so constructors must be cheap (connect to services in `initialize`, not `__init__`).
"""

from __future__ import annotations

import difflib
import functools
import sys
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points

import msgspec

from trdr_tui.agents.advanced.correlation import CorrelationAgent
from trdr_tui.agents.advanced.microstructure import MicrostructureAgent
from trdr_tui.agents.advanced.sentiment import SentimentAgent
from trdr_tui.agents.advanced.time_decay import TimeDecayAgent
from trdr_tui.agents.ai.pattern import AIPatternAgent
from trdr_tui.agents.core.market_structure import MarketStructureAgent
from trdr_tui.agents.core.momentum import MomentumAgent
from trdr_tui.agents.core.regime import RegimeAgent
from trdr_tui.agents.core.volatility import VolatilityAgent
from trdr_tui.agents.core.volume_profile import VolumeProfileAgent
from trdr_tui.agents.experimental.entropy import EntropyTransitionAgent
from trdr_tui.agents.experimental.fractal import FractalMemoryAgent
from trdr_tui.agents.experimental.harmonic import HarmonicResonanceAgent
from trdr_tui.agents.experimental.quantum import QuantumSuperpositionAgent
from trdr_tui.agents.experimental.rl import RLTradingAgent
from trdr_tui.agents.experimental.swarm import SwarmIntelligenceAgent
from trdr_tui.agents.experimental.topology import TopologicalShapeAgent
from trdr_tui.agents.protocol import Agent
from trdr_tui.core.errors import ConfigError

ENTRY_POINT_GROUP = "trdr.agents"

AgentFactory = Callable[[], Agent]

BUILTINS: dict[str, AgentFactory] = {
    VolatilityAgent.id: VolatilityAgent,
    MomentumAgent.id: MomentumAgent,
    VolumeProfileAgent.id: VolumeProfileAgent,
    MarketStructureAgent.id: MarketStructureAgent,
    RegimeAgent.id: RegimeAgent,
    TimeDecayAgent.id: TimeDecayAgent,
    MicrostructureAgent.id: MicrostructureAgent,
    CorrelationAgent.id: CorrelationAgent,
    SentimentAgent.id: SentimentAgent,
    AIPatternAgent.id: AIPatternAgent,
    EntropyTransitionAgent.id: EntropyTransitionAgent,
    SwarmIntelligenceAgent.id: SwarmIntelligenceAgent,
    HarmonicResonanceAgent.id: HarmonicResonanceAgent,
    TopologicalShapeAgent.id: TopologicalShapeAgent,
    FractalMemoryAgent.id: FractalMemoryAgent,
    QuantumSuperpositionAgent.id: QuantumSuperpositionAgent,
    RLTradingAgent.id: RLTradingAgent,
}
CORE_IDS: tuple[str, ...] = ("volatility", "momentum", "volume_profile", "market_structure", "regime")
EXPERIMENTAL_IDS: tuple[str, ...] = ("entropy_transition", "swarm", "harmonic_resonance", "topological_shape",
                                     "fractal_memory", "quantum_superposition")


class AgentInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    version: str
    source: str  # "built-in" or "plugin (<distribution or module>)"
    description: str = ""


class PluginError(msgspec.Struct, frozen=True, kw_only=True):
    """A plugin that could not be loaded: its entry-point name, where it points, and why."""

    id: str
    target: str
    error: str


@functools.lru_cache(maxsize=8)
def _plugin_entry_points(path: tuple[str, ...]) -> tuple[EntryPoint, ...]:
    """The agent plugins installed on `path` (the `sys.path` of the call): reading every distribution's
    metadata takes milliseconds, and an engine (with its registry) is built per backtest and per
    optimizer trial. Keyed by the path, so a changed `sys.path` looks again; a plugin installed into a
    directory already on the path while the process runs is seen after a restart."""
    return tuple(entry_points(group=ENTRY_POINT_GROUP))


class AgentRegistry:
    """Knows every available agent and builds fresh instances of them by id."""

    def __init__(self, *, load_plugins: bool = True, plugin_entry_points: Iterable[EntryPoint] | None = None) -> None:
        self._factories: dict[str, AgentFactory] = dict(BUILTINS)
        self._info: dict[str, AgentInfo] = dict(_builtin_infos())
        self.errors: list[PluginError] = []
        if load_plugins:
            eps = plugin_entry_points if plugin_entry_points is not None else _plugin_entry_points(tuple(sys.path))
            for ep in eps:
                self._load(ep)

    def _load(self, ep: EntryPoint) -> None:
        if ep.name in BUILTINS:
            self.errors.append(PluginError(id=ep.name, target=ep.value,
                                           error=f"the id '{ep.name}' belongs to a built-in agent; rename the entry point"))
            return
        if ep.name in self._factories:
            self.errors.append(PluginError(id=ep.name, target=ep.value,
                                           error="another plugin already registered this id"))
            return
        try:
            factory = ep.load()
            if not callable(factory):
                raise TypeError(f"{ep.value} is not a class or factory")
            probe = factory()
            missing = [m for m in ("id", "name", "version", "analyze", "initialize") if not hasattr(probe, m)]
            if missing:
                raise TypeError(f"not an agent: missing {', '.join(missing)}")
            if probe.id != ep.name:
                raise TypeError(f"its id is '{probe.id}' but the entry point is named '{ep.name}'")
        except Exception as exc:  # a broken plugin must not stop the others
            self.errors.append(PluginError(id=ep.name, target=ep.value, error=f"{type(exc).__name__}: {exc}"))
            return
        dist = getattr(getattr(ep, "dist", None), "name", None) or ep.value.split(":")[0]
        self._factories[ep.name] = factory
        self._info[ep.name] = _describe(ep.name, probe, f"plugin ({dist})")

    # -- queries ---------------------------------------------------------------------------------

    def ids(self) -> list[str]:
        return list(self._factories)

    def available(self) -> list[AgentInfo]:
        return [self._info[i] for i in self._factories]

    def info(self, agent_id: str) -> AgentInfo:
        return self._info[agent_id]

    def failed(self, agent_id: str) -> PluginError | None:
        return next((e for e in self.errors if e.id == agent_id), None)

    def create(self, agent_id: str) -> Agent:
        """A fresh instance. Unknown ids raise ConfigError with a suggestion."""
        factory = self._factories.get(agent_id)
        if factory is None:
            raise self.unknown(agent_id)
        return factory()

    def unknown(self, agent_id: str) -> ConfigError:
        guess = difflib.get_close_matches(agent_id, self.ids(), n=1, cutoff=0.6)
        hint = f"did you mean '{guess[0]}'?" if guess else f"available agents: {', '.join(self.ids())}"
        return ConfigError(f"unknown agent '{agent_id}'", where="[agents] enabled", hint=hint)


@functools.cache
def _builtin_infos() -> dict[str, AgentInfo]:
    """The built-in agents' names and versions, read once per process (each is built to read them)."""
    return {aid: _describe(aid, f(), "built-in") for aid, f in BUILTINS.items()}


def _describe(agent_id: str, agent: Agent, source: str) -> AgentInfo:
    return AgentInfo(id=agent_id, name=str(getattr(agent, "name", agent_id)),
                     version=str(getattr(agent, "version", "?")), source=source,
                     description=str(getattr(agent, "description", "")))
