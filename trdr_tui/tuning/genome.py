"""The optimizer's genome (PRD §12.2 `StrategyGenome`, §13.5): each gene is one config key and its range.

`GENES` is the one table: a new structural knob is one more line. Agent weights are added per enabled
agent (`agents.weights.<id>`). A trial's values are dotted config overrides, applied and validated
like any config by `trdr_tui.backtest.walkforward.with_overrides`.

Position size: with stocked levels (`grid.seed_inventory`, the default) the capital per level is
`risk.max_position / levels` (`trading.grid.level_fraction`) and `sizing.base_fraction` has no effect,
so `genome` leaves that gene out (and refuses it by name); without stocking both are in force.
Likewise `trailing.distance` is read only by trailing orders: with post-only take-profits
(`grid.trailing_exits = false`, the default) it is left out (`inert_keys`).

| PRD genome field       | config key                          | range          |
|------------------------|-------------------------------------|----------------|
| agentWeights[i]        | agents.weights.<id>                 | 0.2 … 3.0      |
| gridSpacing            | grid.swing_fraction, grid.min_spacing | 0.1 … 1.0, 0.005 … 0.05 |
| trailDistanceBase      | trailing.distance                   | 0.005 … 0.03   |
| confidenceThreshold    | agents.min_confidence               | 0.5 … 0.9      |
| maxDrawdown            | risk.max_drawdown                   | 0.05 … 0.25    |
| positionSize           | risk.max_position; sizing.base_fraction unstocked | 0.1 … 1.0; 0.01 … 0.10 |
| maxConcurrent          | risk.max_concurrent_trades          | 1 … 10         |
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from trdr_tui.config import Settings
from trdr_tui.core.errors import ConfigError


class Gene(msgspec.Struct, frozen=True, kw_only=True):
    key: str           # dotted config key
    low: float
    high: float
    log: bool = False  # sample on a log scale (spacings, distances)
    integer: bool = False
    doc: str = ""
    searched: bool = True  # in the default search; False: only when asked for by name (`--genes`)


GENES: tuple[Gene, ...] = (
    Gene(key="grid.swing_fraction", low=0.1, high=1.0, doc="grid spacing as a share of the average swing"),
    Gene(key="grid.min_spacing", low=0.005, high=0.05, log=True, doc="grid spacing floor"),
    Gene(key="trailing.distance", low=0.005, high=0.03, log=True, doc="trail base"),
    Gene(key="agents.min_confidence", low=0.5, high=0.9, doc="confidence threshold"),
    Gene(key="risk.max_drawdown", low=0.05, high=0.25, doc="drawdown halt"),
    Gene(key="sizing.base_fraction", low=0.01, high=0.10, doc="position size (share of capital)"),
    Gene(key="risk.max_position", low=0.1, high=1.0,
         doc="position cap; a stocked grid spreads it over its levels (its capital)"),
    Gene(key="risk.max_concurrent_trades", low=1, high=10, integer=True, doc="max concurrent trades"),
    # Not in the default search: a stop on the average entry sits inside a grid spaced a few percent apart
    # and closes the position its levels are working (the structural loss the fee-aware grid removed;
    # the grid's own exit is the regime exit below its lowest level). Ask for it with --genes.
    Gene(key="risk.stop_loss", low=0.0, high=0.15, doc="stop-loss on the average entry (0 = none)", searched=False),
    Gene(key="grid.levels", low=4, high=30, integer=True, doc="grid levels"),
)
AGENT_WEIGHT_RANGE = (0.2, 3.0)


def inert_keys(settings: Settings) -> dict[str, tuple[str, str]]:
    """Keys of `GENES` (and of `config.LIVE_TUNABLE`) the strategy of `settings` never reads, each with
    why and what to search instead. The optimizer, the daily loop, the adaptive values and the cockpit's
    backtest form leave them out (`tuned_keys`): a search over them would be wasted trials."""
    out: dict[str, tuple[str, str]] = {}
    if settings.grid.seed_inventory:
        out["sizing.base_fraction"] = ("has no effect with stocked grid levels (grid.seed_inventory = true)",
                                       "the capital per level is risk.max_position / grid.levels: "
                                       "search risk.max_position")
    if not settings.grid.trailing_exits:
        out["trailing.distance"] = ("has no effect without trailing orders: the grid's take-profits are post-only "
                                    "limits (grid.trailing_exits = false)",
                                    "set grid.trailing_exits = true to trail the exits, or search "
                                    "grid.swing_fraction")
    return out


def tuned_keys(settings: Settings, keys: Iterable[str]) -> list[str]:
    """`keys` without those the strategy of `settings` never reads (`inert_keys`), in their order."""
    inert = inert_keys(settings)
    return [k for k in keys if k not in inert]


def genome(settings: Settings, only: Iterable[str] | None = None) -> list[Gene]:
    """The genes for `settings`: `GENES` plus one weight per enabled agent; `only` keeps the listed keys
    (or key prefixes such as `agents.weights`). Raises ConfigError for a key nobody knows or one the
    strategy never reads (`inert_keys`)."""
    lo, hi = AGENT_WEIGHT_RANGE
    inert = inert_keys(settings)
    genes = [g for g in GENES if g.key not in inert] + [
        Gene(key=f"agents.weights.{a}", low=lo, high=hi, doc=f"weight of agent {a}") for a in settings.agents.enabled]
    if only is None:
        return [g for g in genes if g.searched]
    wanted = list(only)
    for w in wanted:
        if w in inert:
            why, hint = inert[w]
            raise ConfigError(f"'{w}' {why}", hint=hint)
    out = [g for g in genes if any(g.key == w or g.key.startswith(w + ".") for w in wanted)]
    known = {g.key for g in genes}
    for w in wanted:
        if not any(k == w or k.startswith(w + ".") for k in known):
            raise ConfigError(f"'{w}' is not a gene the optimizer knows",
                              hint="one of: " + ", ".join(sorted(known)))
    return out


def parse_genes(items: Sequence[str] | None) -> dict[str, tuple[float, float]]:
    """`KEY=LOW:HIGH` strings (from --range) → range overrides."""
    out: dict[str, tuple[float, float]] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        lo, sep2, hi = raw.partition(":")
        try:
            if not sep or not sep2:
                raise ValueError
            low, high = float(lo), float(hi)
        except ValueError:
            raise ConfigError(f"--range expects KEY=LOW:HIGH, got {item!r}",
                              hint="e.g. --range trailing.distance=0.01:0.03") from None
        if not low < high:
            raise ConfigError(f"--range {item!r}: LOW must be below HIGH")
        out[key.strip()] = (low, high)
    return out


def with_ranges(genes: Sequence[Gene], ranges: Mapping[str, tuple[float, float]]) -> list[Gene]:
    keys = {g.key for g in genes}
    for k in ranges:
        if k not in keys:
            raise ConfigError(f"--range names '{k}', which is not in the genome",
                              hint="one of: " + ", ".join(sorted(keys)))
    return [msgspec.structs.replace(g, low=ranges[g.key][0], high=ranges[g.key][1]) if g.key in ranges else g
            for g in genes]


def suggest(trial: Any, genes: Sequence[Gene]) -> dict[str, Any]:
    """One value per gene from an Optuna trial (`suggest_int` / `suggest_float`)."""
    out: dict[str, Any] = {}
    for g in genes:
        if g.integer:
            out[g.key] = trial.suggest_int(g.key, int(g.low), int(g.high))
        else:
            out[g.key] = trial.suggest_float(g.key, g.low, g.high, log=g.log)
    return out


def current_values(settings: Settings, genes: Sequence[Gene]) -> dict[str, Any]:
    """The settings' value of each gene (the starting point a study enqueues first)."""
    data = settings.to_dict()
    out: dict[str, Any] = {}
    for g in genes:
        value: Any = data
        for part in g.key.split("."):
            value = value[part]
        out[g.key] = min(max(value, g.low), g.high) if not g.integer else int(min(max(value, g.low), g.high))
    return out
