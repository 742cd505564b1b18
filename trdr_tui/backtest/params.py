"""Parameter version control (PRD §13.2): save, load by id / name / tag, branch, merge, diff.

A parameter version is a flat mapping of dotted config keys (`grid.min_spacing`, `agents.weights.momentum`)
to values: exactly the strategy-relevant part of the settings, so applying a version is passing it to
`load_settings(overrides=...)` and it is validated like any config. Versions are immutable; branching and
merging create new versions whose `parent_ids` link back. A backtest run with `--params` attaches its
session to the version, and merges by performance read those attached results.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, Literal

from trdr_tui.config import Settings
from trdr_tui.core.errors import ConfigError
from trdr_tui.store.sessions import ParameterRepository, ParameterVersion, SessionRepository

MergeStrategy = Literal["performance", "average", "best"]
MERGE_STRATEGIES: tuple[str, ...] = ("performance", "average", "best")

# The settings that shape trading (not plumbing like URLs, paths, UI or the fee table).
PARAM_TOP_LEVEL = ("capital", "risk_tolerance")
PARAM_SECTIONS = ("grid", "trailing", "sizing", "risk", "agents", "execution")


def new_version_id() -> str:
    return "pv-" + secrets.token_hex(5)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{dotted}."))
        elif isinstance(value, tuple):
            out[dotted] = list(value)
        else:
            out[dotted] = value
    return out


def strategy_parameters(settings: Settings) -> dict[str, Any]:
    """The flat dotted parameters of `settings` that a version records."""
    full = settings.to_dict()
    out: dict[str, Any] = {k: full[k] for k in PARAM_TOP_LEVEL}
    for section in PARAM_SECTIONS:
        out.update(flatten(full[section], f"{section}."))
    out["fees.tier"] = full["fees"]["tier"]
    return dict(sorted(out.items()))


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """`key=value` strings (from --set) → {dotted key: value parsed as TOML would}."""
    from trdr_tui.config import parse_scalar

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}", hint="e.g. --set grid.swing_fraction=0.7")
        out[key] = parse_scalar(raw.strip())
    return out


def diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ (missing = None)."""
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _numeric(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _blend(values: list[Any], weights: list[float], fallback: Any) -> Any:
    """Weighted mean of numbers (ints stay ints); anything else takes `fallback`."""
    if all(_numeric(v) for v in values):
        total = sum(weights)
        mean = sum(v * w for v, w in zip(values, weights, strict=True)) / total
        return round(mean) if all(isinstance(v, int) for v in values) else mean
    return fallback


class ParameterVersions:
    """The operations of PRD §13.2 on top of the repositories."""

    def __init__(self, params: ParameterRepository, sessions: SessionRepository) -> None:
        self.params = params
        self.sessions = sessions

    def save(self, name: str, parameters: Mapping[str, Any], *, now_ns: int, tags: list[str] | None = None,
             notes: str | None = None, parent_ids: list[str] | None = None,
             session_id: str | None = None) -> ParameterVersion:
        if not name.strip():
            raise ConfigError("a parameter version needs a name", hint="e.g. trdr params save tight-grid")
        self._validate(parameters)
        version = ParameterVersion(id=new_version_id(), name=name, created_at=now_ns,
                                   parameters=dict(sorted(parameters.items())), tags=list(tags or []),
                                   parent_ids=list(parent_ids or []), notes=notes, session_id=session_id)
        return self.params.save(version)

    def load(self, ident: str) -> ParameterVersion:
        return self.params.find(ident)

    def branch(self, base: str, name: str, changes: Mapping[str, Any], *, now_ns: int,
               notes: str | None = None) -> ParameterVersion:
        parent = self.load(base)
        params = {**parent.parameters, **changes}
        # The base keeps its tags: a tag names one version (`params show TAG`), and copying it would
        # make the tag silently resolve to the branch. The branch is only marked as one.
        return self.save(name, params, now_ns=now_ns, tags=["branch"], parent_ids=[parent.id],
                         notes=notes or f"branched from {parent.name} ({parent.id})")

    def score(self, version: ParameterVersion) -> dict[str, float] | None:
        """The attached result's total return and Sharpe, if a session is attached."""
        if not version.session_id:
            return None
        results = self.sessions.results(version.session_id)
        if not results:
            return None
        return {"total_return": float(results.get("total_return") or 0.0),
                "sharpe": float(results["sharpe"]) if results.get("sharpe") is not None else float("-inf")}

    def merge(self, branch: str, target: str, strategy: str, *, now_ns: int,
              name: str | None = None) -> ParameterVersion:
        """Merge `branch` into `target`.

        - `average`: numbers are the plain mean of both; other values keep the target's.
        - `performance`: numbers are weighted by each side's attached growth (1 + total return);
          other values come from the better side.
        - `best`: the whole set of the side whose attached result has the higher Sharpe
          (total return breaks ties).
        """
        if strategy not in MERGE_STRATEGIES:
            raise ConfigError(f"unknown merge strategy {strategy!r}", hint="use one of: " + ", ".join(MERGE_STRATEGIES))
        b, t = self.load(branch), self.load(target)
        if b.id == t.id:
            raise ConfigError("cannot merge a version into itself")
        keys = sorted(set(b.parameters) | set(t.parameters))
        merged: dict[str, Any] = {}
        if strategy == "average":
            for k in keys:
                vals = [v for v in (b.parameters.get(k), t.parameters.get(k)) if v is not None]
                fallback = t.parameters.get(k, b.parameters.get(k))
                merged[k] = _blend(vals, [1.0] * len(vals), fallback) if vals else fallback
        else:
            sb, st = self.score(b), self.score(t)
            missing = [v.name for v, s in ((b, sb), (t, st)) if s is None]
            if missing:
                raise ConfigError(
                    f"merge by {strategy} needs a backtest result attached to: {', '.join(missing)}",
                    hint="run 'trdr backtest --params NAME' for each (it attaches the result), "
                         "or merge with --strategy average")
            assert sb is not None and st is not None
            b_better = (sb["sharpe"], sb["total_return"]) > (st["sharpe"], st["total_return"])
            better = b if b_better else t
            if strategy == "best":
                merged = dict(better.parameters)
            else:
                wb, wt = max(1.0 + sb["total_return"], 0.0), max(1.0 + st["total_return"], 0.0)
                if wb + wt == 0:
                    wb = wt = 1.0
                for k in keys:
                    vb, vt = b.parameters.get(k), t.parameters.get(k)
                    fallback = better.parameters.get(k, vt if vt is not None else vb)
                    if vb is None or vt is None:
                        merged[k] = fallback
                    else:
                        merged[k] = _blend([vb, vt], [wb, wt], fallback)
        return self.save(name or f"{t.name}+{b.name}", merged, now_ns=now_ns, tags=["merged"], parent_ids=[t.id, b.id],
                         notes=f"merged {b.name} ({b.id}) into {t.name} ({t.id}) using {strategy}")

    @staticmethod
    def _validate(parameters: Mapping[str, Any]) -> None:
        """A version must load as settings: refuse it now rather than at the next backtest."""
        from trdr_tui.config import convert_settings

        nested: dict[str, Any] = {}
        for dotted, value in parameters.items():
            target = nested
            parts = dotted.split(".")
            for p in parts[:-1]:
                target = target.setdefault(p, {})
            target[parts[-1]] = value
        if "fees" in nested:  # the tier name alone; the tier table comes from the config
            nested.pop("fees")
        convert_settings(nested, "parameter version")
