"""Walk-forward analysis (PRD §13.4): optimize on a window, trade the next one, roll on.

Each window's training bars go to the optimizer hook, which returns the best parameter overrides;
the window's test bars (never seen by the optimizer) are then run with those overrides. The
out-of-sample returns, window by window, show whether tuning on the past carried into the future.

Each test window is warmed like a deployed bot starts (`engine.warmup`): the `warm_bars` bars before
it (default `engine.warmup.history_bars`, 720 hourly bars for the default grid) go through the same
run first, placing no orders (`runner.run_warmed`, as the optimizer's folds), so the agents, the
grid's trend gate and its spacing window are armed at the window's first bar; the window's return,
Sharpe and drawdown are measured from the equity at its start. Nothing after a window's last bar is
read for it.

The hook defaults to a small exhaustive grid search over a few settings (`grid_search`); the
self-tuning package can pass its own optimizer instead. Runs go through the same engine as every
backtest, each test window starting flat with the configured capital.

Robustness score (0…1): half the share of windows with a positive out-of-sample return, half the
walk-forward efficiency clipped to [0, 1] — the mean out-of-sample growth per bar divided by the
mean in-sample growth per bar (0 when in-sample growth is not positive). 1 means every window made
money and kept all of its in-sample pace; 0 means none made money and none kept any.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
import numpy as np

from trdr_tui.backtest import metrics
from trdr_tui.config import Settings, convert_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.timefmt import iso_utc

Overrides = dict[str, Any]
# (bars, settings, warm) → {"total_return", "sharpe", ...}: one backtest's statistics over bars[warm:],
# the first `warm` bars only warming the run (no orders)
Evaluate = Callable[[CandleArrays, Settings, int], dict[str, Any]]
# (train bars, base settings, search space, evaluate) → (best overrides, best score, every trial)
Optimizer = Callable[[CandleArrays, Settings, Mapping[str, Sequence[Any]], Evaluate],
                     tuple[Overrides, float, list[dict[str, Any]]]]

# The default grid's own knobs: its spacing (a fraction of the recent swing) and the capital it spreads
# over its levels. (trailing.distance and grid.min_spacing, the old defaults, change nothing with
# post-only take-profits and a fee floor above 0.5 %: every candidate scored the same.)
DEFAULT_SEARCH: dict[str, list[Any]] = {
    "grid.swing_fraction": [0.6, 0.8, 1.0],
    "risk.max_position": [0.3, 0.5],
}
OBJECTIVES = ("sharpe", "total_return", "calmar", "sortino")


class WalkForwardWindow(msgspec.Struct, kw_only=True):
    index: int
    train_start: str
    train_end: str
    test_start: str
    test_end: str
    best_parameters: Overrides
    train_score: float
    train_return: float
    test_return: float
    test_sharpe: float | None
    test_max_drawdown: float
    test_buy_and_hold_return: float


class WalkForwardResult(msgspec.Struct, kw_only=True):
    objective: str
    train_bars: int
    test_bars: int
    step_bars: int
    warm_bars: int  # bars before each test window that warm it (fewer when the data has fewer)
    search_space: dict[str, list[Any]]
    windows: list[WalkForwardWindow]
    mean_test_return: float | None
    compounded_test_return: float | None
    share_positive: float | None
    efficiency: float | None
    parameter_stability: float | None
    robustness_score: float | None
    # bars after the last test window (fewer than one more window): traded by no window, not in the figures
    untested_bars: int = 0
    untested_from: str | None = None  # the first of them (ISO UTC), None when there are none

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out


WINDOW_COLUMNS = ("window", "test start", "test end", "parameters chosen", "in-sample", "out-of-sample",
                  "buy-and-hold")


def window_rows(walk: Mapping[str, Any], fmt: Callable[[Any, str], str]) -> list[tuple[str, ...]]:
    """One row per window of a `WalkForwardResult.to_dict()` for tables (`WINDOW_COLUMNS`): the test
    period, the parameters the training window chose (`key=value`, short key names), returns as `fmt`
    renders fractions with kind "pct"."""
    rows: list[tuple[str, ...]] = []
    for w in walk.get("windows", []):
        chosen = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in (w.get("best_parameters") or {}).items())
        rows.append((str(w.get("index")), str(w.get("test_start", "")), str(w.get("test_end", "")), chosen or "—",
                     fmt(w.get("train_return"), "pct"), fmt(w.get("test_return"), "pct"),
                     fmt(w.get("test_buy_and_hold_return"), "pct")))
    return rows


def with_overrides(settings: Settings, overrides: Mapping[str, Any]) -> Settings:
    """A copy of `settings` with dotted overrides applied and validated like any config."""
    if not overrides:
        return settings
    data = settings.to_dict()
    for dotted, value in overrides.items():
        target = data
        parts = dotted.split(".")
        for p in parts[:-1]:
            if not isinstance(target.get(p), dict):
                raise ConfigError(f"unknown setting '{dotted}'", where="walk-forward search space")
            target = target[p]
        target[parts[-1]] = value
    return convert_settings(data, "walk-forward search space")


def score_of(stats: Mapping[str, Any], objective: str) -> float:
    value = stats.get(objective)
    return float(value) if value is not None and math.isfinite(float(value)) else -math.inf


def grid_search(train: CandleArrays, base: Settings, space: Mapping[str, Sequence[Any]],
                evaluate: Evaluate, objective: str = "sharpe") -> tuple[Overrides, float, list[dict[str, Any]]]:
    """Try every combination; ties go to the earliest (the order the space lists them)."""
    keys = list(space)
    best: Overrides = {}
    best_score = -math.inf
    trials: list[dict[str, Any]] = []
    for combo in itertools.product(*(space[k] for k in keys)):
        overrides = dict(zip(keys, combo, strict=True))
        stats = evaluate(train, with_overrides(base, overrides), 0)
        s = score_of(stats, objective)
        trials.append({"parameters": overrides, "score": s if math.isfinite(s) else None,
                       "total_return": stats.get("total_return")})
        if s > best_score or not trials[:-1]:
            best, best_score = overrides, s
    return best, best_score, trials


def windows(n: int, train_bars: int, test_bars: int, step_bars: int) -> list[tuple[int, int, int]]:
    """(train start, test start, test end) index triples that fit in n bars."""
    if train_bars < 2 or test_bars < 2 or step_bars < 1:
        raise ConfigError("walk-forward needs at least 2 training bars, 2 test bars and a step of 1")
    out = []
    start = 0
    while start + train_bars + test_bars <= n:
        out.append((start, start + train_bars, start + train_bars + test_bars))
        start += step_bars
    if not out:
        raise ConfigError(f"{n} bars are too few for one walk-forward window of {train_bars} + {test_bars} bars",
                          hint="use shorter windows or more data")
    return out


def check_plan(settings: Settings, bars: int, *, train_bars: int, test_bars: int, step_bars: int | None,
               search_space: Mapping[str, Sequence[Any]] | None) -> None:
    """Raise ConfigError (what `walk_forward` would raise, but before any work) unless `bars` bars hold
    at least one window and every value of the search space is a valid setting."""
    windows(bars, train_bars, test_bars, step_bars or test_bars)
    for key, values in (search_space or {}).items():
        if not values:
            raise ConfigError(f"search space for '{key}' has no values")
        for value in values:
            try:
                with_overrides(settings, {key: value})
            except ConfigError as exc:
                raise ConfigError(f"--search {key}={value!r}: {exc.message}", where=exc.where,
                                  hint=exc.hint or "e.g. --search grid.swing_fraction=0.5,0.7") from None


def _growth_per_bar(r: float, bars: int) -> float:
    return math.log1p(max(r, -1.0 + 1e-12)) / bars


def walk_forward(
    candles: CandleArrays,
    settings: Settings,
    evaluate: Evaluate,
    *,
    train_bars: int,
    test_bars: int,
    step_bars: int | None = None,
    search_space: Mapping[str, Sequence[Any]] | None = None,
    objective: str = "sharpe",
    optimizer: Optimizer | None = None,
    on_window: Callable[[WalkForwardWindow], None] | None = None,
    warm_bars: int | None = None,
) -> WalkForwardResult:
    """Optimize on each training window, trade the next test window (warmed on the `warm_bars` bars
    before it, default `engine.warmup.history_bars(settings)`); see the module doc. Raises ConfigError
    for an unknown objective, an empty search space or too few bars."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown objective {objective!r}", hint="use one of: " + ", ".join(OBJECTIVES))
    space = {k: list(v) for k, v in (search_space if search_space is not None else DEFAULT_SEARCH).items()}
    for k, v in space.items():
        if not v:
            raise ConfigError(f"search space for '{k}' has no values")
    step = step_bars or test_bars
    if warm_bars is None:
        from trdr_tui.engine.warmup import history_bars

        warm_bars = history_bars(settings)
    warm = warm_bars
    if warm < 0:
        raise ConfigError(f"walk-forward warm-up of {warm} bars", hint="use 0 or more bars")

    def default_optimizer(train: CandleArrays, base: Settings, sp: Mapping[str, Sequence[Any]],
                          ev: Evaluate) -> tuple[Overrides, float, list[dict[str, Any]]]:
        return grid_search(train, base, sp, ev, objective)

    optimize = optimizer or default_optimizer
    result_windows: list[WalkForwardWindow] = []
    plan = windows(len(candles), train_bars, test_bars, step)
    for idx, (a, b, c) in enumerate(plan):
        train, test = candles[a:b], candles[b:c]
        lead = min(warm, b)  # the warm-up bars this window gets
        best, best_score, _trials = optimize(train, settings, space, evaluate)
        train_stats = evaluate(train, with_overrides(settings, best), 0)
        test_stats = evaluate(candles[b - lead:c], with_overrides(settings, best), lead)
        bh = float(test.close[-1] / test.close[0] - 1.0)
        w = WalkForwardWindow(
            index=idx,
            train_start=iso_utc(train.ts[0]), train_end=iso_utc(train.ts[-1]),
            test_start=iso_utc(test.ts[0]), test_end=iso_utc(test.ts[-1]),
            best_parameters=best,
            train_score=best_score if math.isfinite(best_score) else float("nan"),
            train_return=float(train_stats["total_return"]),
            test_return=float(test_stats["total_return"]),
            test_sharpe=test_stats.get("sharpe"),
            test_max_drawdown=float(test_stats.get("max_drawdown") or 0.0),
            test_buy_and_hold_return=bh,
        )
        result_windows.append(w)
        if on_window is not None:
            on_window(w)
    result = summarize(result_windows, objective=objective, train_bars=train_bars, test_bars=test_bars,
                       step_bars=step, warm_bars=warm, search_space=space)
    end = plan[-1][2] if len(result_windows) == len(plan) else None  # stopped early: nothing to say
    if end is not None and end < len(candles):
        result.untested_bars, result.untested_from = len(candles) - end, iso_utc(candles.ts[end])
    return result


def summarize(ws: list[WalkForwardWindow], *, objective: str, train_bars: int, test_bars: int, step_bars: int,
              warm_bars: int, search_space: dict[str, list[Any]]) -> WalkForwardResult:
    test_r = np.array([w.test_return for w in ws])
    train_r = np.array([w.train_return for w in ws])
    share = float(np.count_nonzero(test_r > 0) / len(ws)) if ws else None
    efficiency = None
    if ws:
        is_g = float(np.mean([_growth_per_bar(r, train_bars) for r in train_r]))
        oos_g = float(np.mean([_growth_per_bar(r, test_bars) for r in test_r]))
        efficiency = oos_g / is_g if is_g > 0 else 0.0
    stability = None
    if len(ws) > 1:
        same = sum(1 for prev, cur in itertools.pairwise(ws) if prev.best_parameters == cur.best_parameters)
        stability = same / (len(ws) - 1)
    score = None
    if share is not None and efficiency is not None:
        score = 0.5 * share + 0.5 * min(max(efficiency, 0.0), 1.0)
    return WalkForwardResult(
        objective=objective, train_bars=train_bars, test_bars=test_bars, step_bars=step_bars, warm_bars=warm_bars,
        search_space=search_space, windows=ws,
        mean_test_return=float(test_r.mean()) if ws else None,
        compounded_test_return=float(np.prod(1.0 + test_r) - 1.0) if ws else None,
        share_positive=share, efficiency=efficiency, parameter_stability=stability, robustness_score=score,
    )


def engine_evaluate(preset: str | None = None) -> Evaluate:
    """The default evaluation: a full engine backtest of the bars (the first `warm` only warming it,
    `runner.run_warmed`), reduced to the equity statistics of the rest."""
    from trdr_tui.backtest.runner import run_warmed

    def evaluate(bars: CandleArrays, settings: Settings, warm: int) -> dict[str, Any]:
        run, start = run_warmed(settings, bars, warm, preset=preset)
        return metrics.equity_stats(run.equity[warm:], run.ts[warm:], start)

    return evaluate


def parse_window_spec(spec: str, timeframe_ns: int) -> tuple[int, int, int | None]:
    """`TRAIN:TEST[:STEP]`, each a bar count (`2000`) or a duration (`90d`, `12h`, `8w`) → bars."""
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise ConfigError(f"walk-forward windows {spec!r} must be TRAIN:TEST[:STEP]", hint="e.g. 120d:30d or 2000:500")
    units = {"h": 3_600_000_000_000, "d": 86_400_000_000_000, "w": 7 * 86_400_000_000_000}
    out: list[int] = []
    for p in parts:
        p = p.strip().lower()
        try:
            if p and p[-1] in units:
                out.append(int(float(p[:-1]) * units[p[-1]] // timeframe_ns))
            else:
                out.append(int(p))
        except ValueError:
            raise ConfigError(f"walk-forward window part {p!r} is not a number of bars or a duration",
                              hint="e.g. 120d:30d or 2000:500") from None
    return out[0], out[1], (out[2] if len(out) == 3 else None)


def parse_search(items: Sequence[str] | None) -> dict[str, list[Any]] | None:
    """`KEY=V1,V2,...` strings → a search space (values parsed as TOML scalars)."""
    if not items:
        return None
    from trdr_tui.config import parse_scalar

    space: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise ConfigError(f"--search expects KEY=V1,V2,..., got {item!r}",
                              hint="e.g. --search trailing.distance=0.01,0.02")
        space[key.strip()] = [parse_scalar(v.strip()) for v in raw.split(",") if v.strip()]
    return space
