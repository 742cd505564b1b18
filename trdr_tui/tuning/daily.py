"""Self-tuning of a real paper or live session (PRD §3.5): adaptive values and the daily loop.

`attach_self_tuning(engine, store)` gives a paper/live engine a `SelfTuning` (found again as
`engine.attachments["self_tuning"]`); backtests and replays get none, so they never read or write the
stored state.

Adaptive values (`tuning/adaptive.py`): each closed round trip is fed to them; a value that moves is
set in the engine at once (`tuning/apply.py`), logged with its reason and stored (through the
journal in front of the store).

The daily loop: every `tuning.daily_interval_hours` of clock time (and on request: `run_now`, key `u`
then `r` in the cockpit) a worker PROCESS (`ProcessPoolExecutor`, spawned) runs `optimize_recent` on
the last `tuning.daily_lookback_days` of candles (stored candles, plus the bars this run streamed):

1. the first 1 − `daily_holdout_fraction` of the bars: an Optuna study (TPE, `daily_trials` trials)
   over `daily_genes` (less those the strategy never reads, `genome.inert_keys`), scored by the walk-forward objective (`tuning/objective.py`, `daily_folds`
   folds after `backtest.warmup_bars` of warm-up); the first trial is the version in force;
2. the rest (after the same warm-up): the version in force and the winner are run once each; their
   return after fees minus the fee penalty is the out-of-sample score.

The winner is adopted only when its out-of-sample score beats the current one by `daily_margin`;
then each gene moves by the learning rate toward it (new = current + lr × (winner − current)), the
result is set in the engine, saved as a parameter version tagged `daily` (its parent: the version it
replaces) and recorded in `parameter_changes` with the reason; a run that is not adopted is recorded
too. Each outcome is a log line (`LogEvent`, fields included) and a `ParametersChanged` event on
`tuning.parameters`. The event loop only awaits the worker's future: the engine goes on with bars and
ticks meanwhile. A worker that raises or dies is logged and recorded; the engine keeps its version.

A restart resumes the version in force (the symbol's last adopted change) and the adaptive values.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import msgspec
import numpy as np

from trdr_tui.backtest.params import ParameterVersions, strategy_parameters
from trdr_tui.backtest.walkforward import with_overrides
from trdr_tui.config import Settings, convert_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.clock import NS_PER_SECOND
from trdr_tui.core.errors import ConfigError, TrdrError
from trdr_tui.core.timefmt import iso_utc
from trdr_tui.core.types import Fill, Mode, Order, Trade
from trdr_tui.engine.loop import Engine
from trdr_tui.engine.timers import PeriodicTimer
from trdr_tui.market.replay import ReplayFeed
from trdr_tui.store.candles import CandleRepository
from trdr_tui.store.db import Store
from trdr_tui.store.sessions import ParameterRepository, SessionRepository
from trdr_tui.store.tuning import ParameterChange, TuningRepository
from trdr_tui.tuning.adaptive import AdaptiveParameters, Outcome
from trdr_tui.tuning.apply import apply_live, live_values
from trdr_tui.tuning.genome import tuned_keys

ATTACHMENT = "self_tuning"
TOPIC = "tuning.parameters"
DAY_NS = 86_400 * NS_PER_SECOND
HOUR_NS = 3_600 * NS_PER_SECOND


class DailyResult(msgspec.Struct, frozen=True, kw_only=True):
    """What the worker sends back. Scores are out-of-sample returns after fees (fractions) minus the
    fee penalty; `train_score` is the winner's walk-forward score on the training part."""

    current: dict[str, float]
    winner: dict[str, float]
    current_score: float
    winner_score: float
    train_score: float
    trials: int
    bars: int
    worker_pid: int


class ParametersChanged(msgspec.Struct, frozen=True, kw_only=True):
    """On `tuning.parameters`: a daily run's verdict, or an adaptive value's move."""

    ts: int
    symbol: str
    source: str  # daily | adaptive | restored
    adopted: bool
    reason: str
    changes: dict[str, list[float]]  # key → [old, new]
    version_id: str | None = None


class TuningStatus(msgspec.Struct, kw_only=True):
    """What the cockpit shows: the version in force, when and why it changed, the loop, the values."""

    version_id: str | None
    version_name: str | None
    since_ns: int | None
    reason: str
    running: bool
    last_run_ns: int | None
    last_verdict: str | None
    next_run_ns: int | None
    values: dict[str, float]
    adaptive: list[dict[str, Any]]


def optimize_recent(settings_data: dict[str, Any], bars: CandleArrays, genes: list[str], trials: int, folds: int,
                    holdout_fraction: float, seed: int) -> DailyResult:
    """The worker's job (module docstring, steps 1–2). Raises ConfigError when the bars are too few."""
    from trdr_tui.tuning.genome import genome
    from trdr_tui.tuning.objective import DatasetCache, ObjectiveConfig, evaluate
    from trdr_tui.tuning.optimizer import StudySpec, _optuna, make_sampler, objective_for

    optuna = _optuna()
    base = convert_settings(settings_data, "daily self-tuning")
    warm = base.backtest.warmup_bars
    n = len(bars)
    holdout = check_bars(n, warm, folds, holdout_fraction)
    gs = genome(base, genes)
    train_cfg = ObjectiveConfig(folds=folds, warmup_bars=warm, mc_paths=200, min_trades=1)
    spec = StudySpec(name="daily", storage=":memory:", trials=trials, seed=seed, genes=gs, objective=train_cfg)
    current = {g.key: float(v) for g, v in zip(gs, _values(base, [g.key for g in gs]), strict=True)}
    study = optuna.create_study(direction="maximize", sampler=make_sampler("tpe", seed))
    study.enqueue_trial({g.key: min(max(current[g.key], g.low), g.high) for g in gs})
    study.optimize(objective_for(spec, DatasetCache(bars[:n - holdout], train_cfg), base), n_trials=trials,
                   gc_after_trial=False)
    best = study.best_trial
    test_cfg = ObjectiveConfig(folds=1, warmup_bars=warm, mc_paths=0, min_trades=0)
    test = DatasetCache(bars[n - holdout - warm:], test_cfg)
    winner = {k: float(v) for k, v in best.params.items()}
    return DailyResult(current=current, winner=winner, current_score=evaluate(test, base, {}, seed=seed).score,
                       winner_score=evaluate(test, base, winner, seed=seed).score,
                       train_score=float(best.value), trials=len(study.trials), bars=n, worker_pid=os.getpid())


def check_bars(n: int, warm: int, folds: int, holdout_fraction: float) -> int:
    """The held-out bars of `n`; ConfigError when `n` leaves too few for the warm-up, folds and holdout."""
    holdout = int(n * holdout_fraction)
    if holdout < 2 or n - holdout - warm < 2 * folds:
        raise ConfigError(f"{n} bars are too few for the daily loop ({warm} warm-up bars, {folds} folds, "
                          f"{holdout_fraction:.0%} held out)",
                          hint="raise tuning.daily_lookback_days, or backfill candles: trdr data backfill")
    return holdout


def _values(settings: Settings, keys: list[str]) -> list[Any]:
    data: Any = settings.to_dict()
    out = []
    for k in keys:
        v = data
        for part in k.split("."):
            v = v[part]
        out.append(v)
    return out


def blend(current: dict[str, float], winner: dict[str, float], rate: float) -> dict[str, float]:
    """current + rate × (winner − current), per key of `winner` (PRD §3.5 `blendParameters`)."""
    return {k: current[k] + rate * (w - current[k]) for k, w in winner.items()}


Job = Callable[..., DailyResult]


@contextlib.contextmanager
def _real_stdio() -> Iterator[None]:
    """The process's own stdout/stderr while a worker starts: the cockpit (Textual) replaces them with
    objects without a file descriptor, which multiprocessing's resource tracker would pass on (and fail
    with "bad value(s) in fds_to_keep")."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


class SelfTuning:
    """The adaptive values and the daily loop of one paper/live engine (module docstring)."""

    def __init__(self, engine: Engine, store: Store, *, job: Job = optimize_recent) -> None:
        self.engine = engine
        self.store = store
        self.cfg = engine.settings.tuning
        # only the keys this strategy reads: trailing.distance without trailing orders would be wasted trials
        self.genes = tuned_keys(engine.settings, self.cfg.daily_genes)
        self.adaptive_keys = tuned_keys(engine.settings, self.cfg.adaptive_keys)
        self.symbol = engine.symbol
        self.repo = TuningRepository(store)
        self.versions = ParameterVersions(ParameterRepository(store), SessionRepository(store))
        self.job = job
        self.version_id: str | None = None
        self.version_name: str | None = None
        self.since_ns: int | None = None
        self.reason = "the configuration as loaded"
        self.last_run_ns: int | None = None
        self.last_verdict: str | None = None
        self.last_result: DailyResult | None = None
        self.adaptive: AdaptiveParameters | None = None
        self.timer: PeriodicTimer | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._sub: Any = None
        self._status_sub: Any = None

    # -- start -----------------------------------------------------------------------------------

    def start(self) -> SelfTuning:
        """Resume the version in force and the adaptive values, then follow fills and arm the timer."""
        e = self.engine
        self._restore()
        if self.cfg.adaptive:
            self.adaptive = AdaptiveParameters.start(
                self.symbol, live_values(e), self.adaptive_keys, rate=self.cfg.learning_rate,
                window=self.cfg.adaptive_window, min_outcomes=self.cfg.adaptive_min_outcomes,
                stored=self.repo.adaptive(self.symbol))
            self._apply(self.adaptive.current(), "restored", "adaptive values as stored")
            e.orders.fill_listeners.append(self._on_fill)
        if self.cfg.daily:  # the timer is armed when the run starts (a real clock needs the running loop)
            self._status_sub = e.bus.subscribe("engine.status", self._on_status)
        e.attachments[ATTACHMENT] = self
        e.on_close(self.close)
        return self

    def _restore(self) -> None:
        adopted = self.repo.changes(1, symbol=self.symbol, adopted=True)
        if not adopted or adopted[0].to_version is None:
            return
        ch = adopted[0]
        version = self.versions.load(ch.to_version or "")
        values = {k: float(version.parameters[k]) for k in self.genes if k in version.parameters}
        self._apply(values, "restored", f"version {version.name} in force since {iso_utc(ch.ts)}")
        self.version_id, self.version_name, self.since_ns, self.reason = version.id, version.name, ch.ts, ch.reason

    def _on_status(self, _topic: str, event: Any) -> None:
        if getattr(event, "detail", None) != "started" or self.timer is not None:
            return
        e = self.engine
        self.timer = PeriodicTimer(e.clock, int(self.cfg.daily_interval_hours * HOUR_NS), self._due)
        if self.timer.polled:  # a simulated clock: checked at every closed bar
            self._sub = e.bus.subscribe(e.candle_topic, lambda _t, _ev: self._poll())

    def _poll(self) -> None:
        if self.timer is not None:
            self.timer.poll(self.engine.clock.now_ns())

    # -- adaptive values -------------------------------------------------------------------------

    def _on_fill(self, order: Order, fill: Fill, trade: Trade | None) -> None:
        if trade is None or self.adaptive is None:
            return
        moves = self.adaptive.feedback(Outcome.of(trade, order, fill))
        ts = self.engine.clock.now_ns()
        if moves:
            for name, adj in moves.items():
                self.engine.log("info", f"adaptive {name}: {adj.old:.6g} → {adj.new:.6g} ({adj.reason})",
                                source="tuning", key=name, old=adj.old, new=adj.new)
            self._apply({k: a.new for k, a in moves.items()}, "adaptive",
                        "; ".join(f"{k}: {a.reason}" for k, a in moves.items()))
        self.repo.save_adaptive(self.adaptive.records(ts))

    def _apply(self, values: dict[str, float], source: str, reason: str, *, adopted: bool = True,
               version_id: str | None = None) -> dict[str, tuple[float, float]]:
        changed = apply_live(self.engine, values) if values else {}
        if changed or source == "daily":
            self._publish(source, adopted, reason, changed, version_id)
        return changed

    def _publish(self, source: str, adopted: bool, reason: str, changed: dict[str, tuple[float, float]],
                 version_id: str | None) -> None:
        bus = self.engine.bus
        if bus.has_subscribers(TOPIC):
            bus.publish(TOPIC, ParametersChanged(ts=self.engine.clock.now_ns(), symbol=self.symbol, source=source,
                                                 adopted=adopted, reason=reason, version_id=version_id,
                                                 changes={k: [a, b] for k, (a, b) in changed.items()}))

    # -- the daily loop --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _due(self, _now: int) -> None:
        if self.engine.running and not self.engine.stopped:
            self.run_now("daily")

    def run_now(self, why: str = "requested") -> bool:
        """Start a daily run now (in the worker); False when one is already running."""
        if self.running:
            return False
        self._task = asyncio.get_running_loop().create_task(self._run(why))
        return True

    async def wait(self) -> None:
        """Until the running daily run (if any) has finished."""
        if self._task is not None:
            await asyncio.shield(self._task)

    def recent_bars(self) -> CandleArrays:
        """Stored candles of the last `daily_lookback_days` (clock time), merged with the bars this run
        streamed (they win where both have a bar)."""
        e = self.engine
        now = e.clock.now_ns()
        start = now - int(self.cfg.daily_lookback_days * DAY_NS)
        stored = CandleRepository(self.store).load(self.symbol, e.settings.timeframe, start, now)
        streamed = e.recent_bars(10**9) if e.bars_done else CandleArrays.empty()
        if len(streamed):
            streamed = streamed[int(np.searchsorted(streamed.ts, start)):]
        if not len(streamed):
            return stored
        rows = {c.ts: c for c in stored.candles()}
        for c in streamed.candles():
            rows[c.ts] = c
        return CandleArrays.from_candles([rows[t] for t in sorted(rows)])

    async def _run(self, why: str) -> None:
        e = self.engine
        started = e.clock.now_ns()
        self.last_run_ns = started
        current = live_values(e)
        settings = with_overrides(e.settings, current)
        try:
            bars = self.recent_bars()
            check_bars(len(bars), e.settings.backtest.warmup_bars, self.cfg.daily_folds,
                       self.cfg.daily_holdout_fraction)
            if not self.genes:
                raise ConfigError("no key of `daily_genes` has an effect on this strategy: "
                                  + ", ".join(self.cfg.daily_genes),
                                  hint="add grid.swing_fraction or risk.max_position to [tuning] daily_genes")
            e.log("info", f"daily self-tuning ({why}): optimizing on {len(bars)} bars in a worker process",
                  source="tuning", bars=len(bars))
            c = self.cfg
            with _real_stdio():  # the worker (and multiprocessing's resource tracker) start here
                if self._pool is None:
                    self._pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
                future = asyncio.get_running_loop().run_in_executor(
                    self._pool, self.job, settings.to_dict(), bars, list(self.genes), c.daily_trials,
                    c.daily_folds, c.daily_holdout_fraction, e.settings.backtest.seed)
            result = await future
        except asyncio.CancelledError:
            raise
        except BrokenProcessPool:
            self._discard_pool()
            self._failed("the worker process died", started)
            return
        except TrdrError as exc:
            self._failed(exc.message + (f" ({exc.hint})" if exc.hint else ""), started)
            return
        except Exception as exc:
            self._failed(f"{type(exc).__name__}: {exc}", started)
            return
        self.last_result = result
        self._decide(result, current, settings)

    def _failed(self, what: str, ts: int) -> None:
        reason = f"daily run failed: {what}; the version in force stays"
        self.last_verdict = reason
        self.engine.log("error", reason, source="tuning")
        self._record(ParameterChange(ts=ts, adopted=False, reason=reason, changes={}, run_id=self.engine.run_id,
                                     from_version=self.version_id, symbol=self.symbol))
        self._publish("daily", False, reason, {}, self.version_id)

    def _decide(self, r: DailyResult, current: dict[str, float], settings: Settings) -> None:
        e = self.engine
        c = self.cfg
        now = e.clock.now_ns()
        gain = r.winner_score - r.current_score
        scores = (f"out of sample {r.winner_score:+.2%} vs {r.current_score:+.2%} now "
                  f"({gain:+.2%}, margin {c.daily_margin:.2%}; {r.trials} trials on {r.bars} bars)")
        if not (math.isfinite(gain) and gain >= c.daily_margin):
            reason = f"kept: the winner did not beat the version in force by the margin: {scores}"
            self.last_verdict = reason
            e.log("info", reason, source="tuning", winner_score=r.winner_score, current_score=r.current_score)
            self._record(ParameterChange(ts=now, adopted=False, reason=reason, changes={}, run_id=e.run_id,
                                         from_version=self.version_id, symbol=self.symbol))
            self._publish("daily", False, reason, {}, self.version_id)
            return
        target = blend({k: current[k] for k in r.winner}, r.winner, c.learning_rate)
        reason = f"adopted: {scores}; blended {c.learning_rate:g} of the way to the winner"
        params = strategy_parameters(with_overrides(settings, target))
        name = f"daily-{self.symbol}-{iso_utc(now)}"
        version = self.versions.save(name, params, now_ns=now, tags=["daily"],
                                     parent_ids=[self.version_id] if self.version_id else [], notes=reason)
        changed = self._apply(target, "daily", reason, version_id=version.id)
        self._record(ParameterChange(ts=now, adopted=True, reason=reason, run_id=e.run_id,
                                     changes={k: [a, b] for k, (a, b) in changed.items()},
                                     from_version=self.version_id, to_version=version.id, symbol=self.symbol))
        if self.adaptive is not None:
            self.adaptive.rebase(now, target, f"daily loop adopted {version.name}")
            self.repo.save_adaptive(self.adaptive.records(now))
        self.version_id, self.version_name, self.since_ns, self.reason = version.id, version.name, now, reason
        self.last_verdict = reason
        e.log("info", f"parameters: version {version.name} ({version.id}) {reason}", source="tuning",
              version=version.id, **{k: b for k, (_a, b) in changed.items()})

    def _record(self, change: ParameterChange) -> None:
        try:
            self.repo.record_change(change)
        except Exception as exc:  # the decision stands; the record is what failed
            self.engine.log("error", f"could not record the parameter change: {type(exc).__name__}: {exc}",
                            source="tuning")

    # -- the cockpit -----------------------------------------------------------------------------

    def status(self) -> TuningStatus:
        return TuningStatus(
            version_id=self.version_id, version_name=self.version_name, since_ns=self.since_ns, reason=self.reason,
            running=self.running, last_run_ns=self.last_run_ns, last_verdict=self.last_verdict,
            next_run_ns=self.timer.next_ns if self.timer is not None and self.timer.next_ns < 2**63 - 1 else None,
            values=live_values(self.engine),
            adaptive=[] if self.adaptive is None else [
                {"name": v.name, "value": v.value, "low": v.low, "high": v.high, "confidence": v.confidence,
                 "outcomes": len(v.outcomes), "success_rate": v.success_rate,
                 "last": msgspec.to_builtins(v.history[-1]) if v.history else None}
                for v in self.adaptive.values.values()])

    # -- the end ---------------------------------------------------------------------------------

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def close(self) -> None:
        """The run has ended: stop the timer, cancel a running daily run, end the worker."""
        if self.timer is not None:
            self.timer.cancel()
        for sub in (self._sub, self._status_sub):
            if sub is not None:
                self.engine.bus.unsubscribe(sub)
        self._sub = self._status_sub = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._pool is not None:
            for p in list(getattr(self._pool, "_processes", {}).values()):  # a long study is not waited for
                p.terminate()
            self._discard_pool()


def attach_self_tuning(engine: Engine, store: Store | None, *, job: Job = optimize_recent) -> SelfTuning | None:
    """A SelfTuning for a real paper/live engine with a store and the grid policy, started; None for a
    backtest, a replay, a preset, no store, or `[tuning]` with both parts off."""
    cfg = engine.settings.tuning
    if (store is None or engine.mode is Mode.BACKTEST or isinstance(engine.feed, ReplayFeed)
            or not live_values(engine) or not (cfg.adaptive or cfg.daily)):
        return None
    return SelfTuning(engine, store, job=job).start()
