"""The agent panel: protocol, registry (built-ins + `trdr.agents` plugins), orchestrator, core agents.

Engine entry point: `build_orchestrator(settings, bus=..., clock=..., store=..., run_id=...)`.
"""

from trdr_tui.agents.factory import build_orchestrator
from trdr_tui.agents.orchestrator import DecisionArrays, Orchestrator, OrchestratorConfig

__all__ = ["DecisionArrays", "Orchestrator", "OrchestratorConfig", "build_orchestrator"]
