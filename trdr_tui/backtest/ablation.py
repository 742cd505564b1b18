"""Agent ablation: each agent's measured contribution to the panel's backtest.

    table = ablate(settings, candles, panel=["volatility", …, "sentiment"], core=CORE_IDS)

Runs the same backtest (same engine, data, fees and seed) for:

- `full`: the whole `panel`;
- `without:<id>` for every agent in the panel: the panel with that agent removed;
- `core`: the core panel alone, and `core+<id>` for every panel agent outside the core.

An agent's contribution is the full panel's figure minus the figure without it (positive: the panel
does better with it); its stand-alone effect is `core+<id>` minus `core`. Figures per run: total return,
Sharpe ratio, max drawdown (a positive fraction), fills and fees paid (quote currency), as
`evaluate` computes them (`backtest/metrics.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from trdr_tui.agents.protocol import CandleSource
from trdr_tui.backtest.runner import evaluate, run_engine
from trdr_tui.config import Settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import ConfigError

METRICS = ("total_return", "sharpe", "max_drawdown", "fills", "fees_paid")

ProgressHook = Callable[[str, int, int], None]


class AblationRun(msgspec.Struct, frozen=True, kw_only=True):
    label: str  # "full", "without:<id>", "core", "core+<id>"
    agents: tuple[str, ...]
    metrics: dict[str, float]


class AblationResult(msgspec.Struct, frozen=True, kw_only=True):
    runs: tuple[AblationRun, ...]
    panel: tuple[str, ...]
    core: tuple[str, ...]

    def run(self, label: str) -> AblationRun | None:
        return next((r for r in self.runs if r.label == label), None)

    def contributions(self) -> list[dict[str, Any]]:
        """Per agent: its contribution (full − without) and, outside the core, its stand-alone effect
        (core+agent − core), for every metric."""
        full, core = self.run("full"), self.run("core")
        out = []
        for aid in self.panel:
            row: dict[str, Any] = {"agent": aid}
            without = self.run(f"without:{aid}")
            if full is not None and without is not None:
                row["contribution"] = {m: full.metrics[m] - without.metrics[m] for m in METRICS}
            added = self.run(f"core+{aid}")
            if core is not None and added is not None:
                row["alone_with_core"] = {m: added.metrics[m] - core.metrics[m] for m in METRICS}
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"panel": list(self.panel), "core": list(self.core),
                "runs": [{"label": r.label, "agents": list(r.agents), **r.metrics} for r in self.runs],
                "contributions": self.contributions()}


def ablate(settings: Settings, candles: CandleArrays, *, panel: Sequence[str], core: Sequence[str],
           candle_source: CandleSource | None = None, on_run: ProgressHook | None = None) -> AblationResult:
    """Backtest every variant of the panel (see the module doc) and collect their figures.

    Raises ConfigError when the panel is empty or names an agent twice."""
    panel_t, core_t = tuple(panel), tuple(a for a in core if a in panel)
    if not panel_t:
        raise ConfigError("the ablation panel is empty", hint="enable agents in [agents] enabled or pass --agents")
    if len(set(panel_t)) != len(panel_t):
        raise ConfigError(f"an agent appears twice in the ablation panel: {list(panel_t)}")
    variants: list[tuple[str, tuple[str, ...]]] = [("full", panel_t)]
    variants += [(f"without:{a}", tuple(x for x in panel_t if x != a)) for a in panel_t if len(panel_t) > 1]
    extra = [a for a in panel_t if a not in core_t]
    if core_t and extra:
        variants.append(("core", core_t))
        variants += [(f"core+{a}", (*core_t, a)) for a in extra]
    runs = []
    for k, (label, agents) in enumerate(variants):
        if on_run is not None:
            on_run(label, k, len(variants))
        s = msgspec.structs.replace(settings, agents=msgspec.structs.replace(settings.agents, enabled=agents))
        kwargs = {"candle_source": candle_source} if candle_source is not None else None
        run, _ = run_engine(s, candles, engine_kwargs=kwargs)
        results, _curves = evaluate(run, candles, s, monte_carlo_paths=0)
        runs.append(AblationRun(label=label, agents=agents,
                                metrics={m: float(results[m] if results[m] is not None else float("nan"))
                                         for m in METRICS}))
    return AblationResult(runs=tuple(runs), panel=panel_t, core=core_t)
