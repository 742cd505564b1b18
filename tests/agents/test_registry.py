"""Registry: built-ins plus `trdr.agents` entry-point plugins from a real installed distribution;
broken plugins are reported by name and skipped; `trdr agents` lists everything."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from trdr_tui.agents import build_orchestrator
from trdr_tui.agents.registry import ENTRY_POINT_GROUP, AgentRegistry
from trdr_tui.cli import main
from trdr_tui.config import convert_settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import ConfigError

PLUGIN_MODULE = '''
from trdr_tui.agents.protocol import BaseAgent
from trdr_tui.core.types import Action, AgentSignal


class EchoAgent(BaseAgent):
    id = "echo"
    name = "Echo"
    version = "2.1.0"
    description = "holds, always"

    def analyze(self, snapshot):
        return AgentSignal(agent_id=self.id, action=Action.HOLD, confidence=0.5, trail_distance=0.01,
                           reasoning="echo")


class Impostor(EchoAgent):
    id = "momentum"
'''

ENTRY_POINTS = f"""[{ENTRY_POINT_GROUP}]
echo = trdr_demo_plugin:EchoAgent
broken = trdr_missing_module_xyz:Agent
momentum = trdr_demo_plugin:Impostor
"""


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed distribution 'trdr-demo-plugin' declaring three agents: one good, two bad."""
    site = tmp_path / "site"
    dist = site / "trdr_demo_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: trdr-demo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "trdr_demo_plugin.py").write_text(PLUGIN_MODULE)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    sys.modules.pop("trdr_demo_plugin", None)


def test_builtins_only_without_plugins() -> None:
    reg = AgentRegistry(load_plugins=False)
    assert reg.ids() == ["volatility", "momentum", "volume_profile", "market_structure", "regime",
                         "time_decay", "microstructure", "correlation", "sentiment", "ai_pattern",
                         "entropy_transition", "swarm", "harmonic_resonance", "topological_shape", "fractal_memory",
                         "quantum_superposition", "rl"]
    assert all(i.source == "built-in" and i.version == "1.0.0" for i in reg.available())


def test_plugins_load_and_broken_ones_are_reported_by_name(plugin_site: Path) -> None:
    reg = AgentRegistry()
    assert "echo" in reg.ids()
    info = reg.info("echo")
    assert info.version == "2.1.0" and info.source == "plugin (trdr-demo-plugin)"
    errors = {e.id: e.error for e in reg.errors}
    assert set(errors) == {"broken", "momentum"}
    assert "ModuleNotFoundError" in errors["broken"]
    assert "built-in" in errors["momentum"]
    assert reg.info("momentum").source == "built-in"  # the impostor did not replace it


def test_panel_skips_a_failed_plugin_and_reports_it(plugin_site: Path) -> None:
    bus = EventBus()
    logs: list[object] = []
    bus.subscribe("log.warning", lambda _t, ev: logs.append(ev))
    settings = convert_settings({"agents": {"enabled": ["volatility", "echo", "broken"],
                                            "weights": {"echo": 2.0, "broken": 1.0}}})
    orch = build_orchestrator(settings, bus=bus, clock=SimClock(0))
    assert [a.id for a in orch.agents] == ["volatility", "echo"]
    assert orch.weights() == {"volatility": 1.0, "echo": 2.0}
    assert any("broken" in ev.message and "E005" in ev.message for ev in logs)  # type: ignore[attr-defined]


def test_unknown_agent_is_a_config_error_with_a_suggestion() -> None:
    settings = convert_settings({"agents": {"enabled": ["volatility", "momentun"]}})
    with pytest.raises(ConfigError, match="did you mean 'momentum'"):
        build_orchestrator(settings, bus=EventBus(), clock=SimClock(0))
    settings = convert_settings({"agents": {"weights": {"regim": 2.0}}})
    with pytest.raises(ConfigError, match="regim"):
        build_orchestrator(settings, bus=EventBus(), clock=SimClock(0))


def test_cli_lists_agents_with_version_state_and_weight(plugin_site: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "trdr.toml"
    cfg.write_text('[agents]\nenabled = ["volatility", "momentum", "echo"]\n[agents.weights]\nmomentum = 1.5\n')
    db = tmp_path / "none.duckdb"
    assert main(["--config", str(cfg), "--db", str(db), "agents", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["id"]: r for r in out["agents"]}
    assert rows["momentum"]["weight"] == 1.5 and rows["momentum"]["enabled"] is True
    assert rows["regime"]["enabled"] is False
    assert rows["echo"]["version"] == "2.1.0" and rows["echo"]["enabled"] is True
    assert {f["id"] for f in out["failed_plugins"]} == {"broken", "momentum"}
    assert not db.exists()  # listing agents never creates a database
    assert main(["--config", str(cfg), "--db", str(db), "agents"]) == 0
    text = capsys.readouterr().out
    assert "echo" in text and "2.1.0" in text and "plugin 'broken'" in text


def test_saved_weights_are_restored_and_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trdr_tui.store import Store
    from trdr_tui.store.decisions import save_weights

    db = tmp_path / "trdr.duckdb"
    with Store(db) as store:
        save_weights(store, {"momentum": 2.5, "regime": 0.4}, 1_700_000_000 * 10**9)
        settings = convert_settings({})
        live = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0), store=store, restore_weights=True)
        assert live.weights()["momentum"] == 2.5 and live.weights()["regime"] == 0.4
        backtest = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0), store=store)
        assert backtest.weights()["momentum"] == 1.0  # backtests depend on the config alone
    assert main(["--db", str(db), "agents", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["agents"]}
    assert rows["momentum"]["saved_weight"] == 2.5 and rows["volatility"]["saved_weight"] is None
