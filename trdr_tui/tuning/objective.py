"""The optimizer's objective: walk-forward folds after real fees, a Monte Carlo gate, a fee penalty.

A candidate (a set of config overrides) is never scored on the bars it was fitted on. The training
bars are cut by `trdr_tui.backtest.walkforward.windows` into `folds` consecutive test segments, each
preceded by `warmup_bars` of history that only warms the indicators and agents; every segment starts
flat with the configured capital and is scored on its own bars. The returns of the segments are
combined as

    score = mean(fold returns) − fee_penalty − gate_penalty

- fee penalty: fees as a share of gross profit (gross = net P&L + fees, over all folds); above
  `fee_share_limit` the excess (capped at 1) times `fee_penalty` × fees / capital is subtracted, so
  a result that fees dominate ranks below an equal one they do not;
- Monte Carlo gate: the round trips of all folds (returns on equity) are bootstrapped
  (`trdr_tui.backtest.montecarlo`, `mc_paths` paths, the config's seed); with fewer than
  `min_trades` trades or a probability of loss above `max_loss_probability` the candidate is gated
  and `gate_penalty` (1.0, i.e. −100 %) is subtracted.

With two objectives (NSGA-II) the values are (score, worst fold drawdown).

Per-dataset work is done once per process (`DatasetCache`): the fold slices, and each agent's batch
signals for each slice (they depend on the bars and the agent's own settings, not on the genome);
a trial recomputes only the weighted consensus and runs the engine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from trdr_tui.backtest import metrics
from trdr_tui.backtest.montecarlo import monte_carlo
from trdr_tui.backtest.runner import run_warmed
from trdr_tui.backtest.walkforward import windows, with_overrides
from trdr_tui.config import Settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import ConfigError

if TYPE_CHECKING:
    from trdr_tui.agents.registry import AgentRegistry

GATE_PENALTY = 1.0


class ObjectiveConfig(msgspec.Struct, frozen=True, kw_only=True):
    folds: int = 3
    warmup_bars: int = 200
    mc_paths: int = 500
    min_trades: int = 5
    max_loss_probability: float = 0.5
    fee_share_limit: float = 0.5
    fee_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.folds < 1:
            raise ConfigError("the objective needs at least one fold", hint="--folds 3")
        if not 0.0 <= self.max_loss_probability <= 1.0:
            raise ConfigError("the Monte Carlo gate's probability of loss must be within 0…1")


class Fold(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    total_return: float
    max_drawdown: float
    fees: float
    gross_pnl: float
    fills: int
    maker_fills: int
    trades: int


class Evaluation(msgspec.Struct, frozen=True, kw_only=True):
    score: float
    mean_return: float
    worst_drawdown: float
    fee_share: float | None  # fees / gross profit; None when there was no gross profit
    fee_penalty: float
    mc_loss_probability: float | None
    gated: bool
    trades: int
    folds: list[Fold]

    def attributes(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out


class DatasetCache:
    """Work that depends only on the bars, done once per process and reused by every trial."""

    def __init__(self, bars: CandleArrays, config: ObjectiveConfig) -> None:
        self.bars = bars
        self.config = config
        n = len(bars)
        test = (n - config.warmup_bars) // config.folds
        if test < 2:
            raise ConfigError(f"{n} bars are too few for {config.folds} folds after {config.warmup_bars} warm-up bars",
                              hint="use more data, fewer --folds or fewer warm-up bars")
        self.slices = [(a, b, c) for a, b, c in windows(n, config.warmup_bars, test, test)]
        self.fold_bars = [bars[a:c] for a, _, c in self.slices]
        self._signals: dict[tuple[str, int, int, int], Any] = {}
        self._features: dict[tuple[int, int, int, Any], Any] = {}
        self._registry: AgentRegistry | None = None  # plugins are looked up once, not for every panel
        self.hits = 0

    def decisions(self, settings: Settings) -> Any:
        """An agent panel whose features and agents' batch signals are reused across trials."""
        from trdr_tui.agents.factory import build_orchestrator
        from trdr_tui.agents.registry import AgentRegistry

        bus = EventBus()
        clock = SimClock(0)
        if self._registry is None:
            self._registry = AgentRegistry()
        orch = build_orchestrator(settings, bus=bus, clock=clock, registry=self._registry)
        orch.features_of = self._features_of
        for agent in orch.agents:
            original = getattr(agent, "analyze_batch", None)
            if original is not None:  # an agent without a batch mode makes the run stream, uncached
                # an instance attribute, so the panel's isinstance checks still see the agent's own class
                setattr(agent, "analyze_batch", self._memo(agent.id, original))  # noqa: B010
        return orch

    def _features_of(self, bars: CandleArrays, params: Any) -> Any:
        """`compute_features(bars, params)`, computed once per fold and indicator parameters."""
        from trdr_tui.market.indicators import compute_features

        key = (len(bars), int(bars.ts[0]) if len(bars) else 0, int(bars.ts[-1]) if len(bars) else 0, params)
        features = self._features.get(key)
        if features is None:
            features = self._features[key] = compute_features(bars, params)
        return features

    def _memo(self, agent_id: str, fn: Any) -> Any:
        def analyze_batch(features: Any) -> Any:
            ts = features.ts
            key = (agent_id, len(ts), int(ts[0]) if len(ts) else 0, int(ts[-1]) if len(ts) else 0)
            hit = self._signals.get(key)
            if hit is not None:
                self.hits += 1
                return hit
            out = fn(features)
            self._signals[key] = out
            return out

        return analyze_batch


def evaluate(cache: DatasetCache, base: Settings, overrides: Mapping[str, Any], *, seed: int | None = None) -> Evaluation:
    """Score one candidate on the cached folds (see the module docstring for the formula)."""
    cfg = cache.config
    settings = with_overrides(base, overrides)
    folds: list[Fold] = []
    trade_r: list[np.ndarray] = []
    for idx, ((a, b, _c), bars) in enumerate(zip(cache.slices, cache.fold_bars, strict=True)):
        w = b - a  # bars of warm-up before the scored segment: they warm the agents and place no orders
        run, start_equity = run_warmed(settings, bars, w, engine_kwargs={"decisions": cache.decisions(settings)})
        eq = run.equity[w:]
        test_start = int(bars.ts[w])
        in_test = run.fills.ts >= test_start
        fees = float(run.fills.fee[in_test].sum())
        net = float(eq[-1] - start_equity)
        trades_in = run.trades.entry_ts >= test_start
        folds.append(Fold(index=idx, total_return=net / start_equity,
                          max_drawdown=float(metrics.max_drawdown(eq, start_equity)),
                          fees=fees, gross_pnl=net + fees, fills=int(in_test.sum()),
                          maker_fills=int((run.fills.maker & in_test).sum()), trades=int(trades_in.sum())))
        r = metrics.trade_returns_on_equity(run.trades, run.ts, run.equity, run.initial_capital)
        trade_r.append(np.asarray(r)[trades_in])
    returns = np.array([f.total_return for f in folds])
    mean_return = float(returns.mean())
    fees = sum(f.fees for f in folds)
    gross = sum(f.gross_pnl for f in folds)
    capital = base.capital
    fee_share = fees / gross if gross > 0 else None
    ratio = fee_share if fee_share is not None else (math.inf if fees > 0 else 0.0)
    excess = min(max(ratio - cfg.fee_share_limit, 0.0), 1.0)
    fee_pen = cfg.fee_penalty * excess * fees / capital / len(folds)
    all_r = np.concatenate(trade_r) if trade_r else np.zeros(0)
    p_loss = None
    if all_r.shape[0] > 0 and cfg.mc_paths > 0:
        mc = monte_carlo(all_r, paths=cfg.mc_paths, seed=base.backtest.seed if seed is None else seed)
        p_loss = mc.probability_of_loss if mc is not None else None
    gated = all_r.shape[0] < cfg.min_trades or (p_loss is not None and p_loss > cfg.max_loss_probability)
    score = mean_return - fee_pen - (GATE_PENALTY if gated else 0.0)
    return Evaluation(score=score, mean_return=mean_return,
                      worst_drawdown=float(max(f.max_drawdown for f in folds)), fee_share=fee_share,
                      fee_penalty=fee_pen, mc_loss_probability=p_loss, gated=gated, trades=int(all_r.shape[0]),
                      folds=folds)
