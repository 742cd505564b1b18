"""`trdr optimize`: an Optuna study over the genome, scored out of sample (`tuning.objective`).

Samplers (Optuna): `tpe` (default, `TPESampler(multivariate=True)`), `cmaes` (`CmaEsSampler`; the
integer genes are sampled independently), `nsga2` (`NSGAIISampler`, two objectives: maximize the
score, minimize the worst fold drawdown).

Storage: every study lives in an Optuna storage so that it survives a crash and can be shared.

- a PostgreSQL URL (`postgresql://user@host:port/db`, Optuna's RDB storage through SQLAlchemy and
  psycopg): many machines run workers against one study;
- anything else is a file path for Optuna's `JournalStorage` (an append-only journal with a file
  lock): a crashed run is resumed by running the same command again (same `--study` name).

Workers: `workers` processes (spawned, each loading the bars once into its `DatasetCache`) share
the trials the study still lacks (`trials` less those already finished): each runs its own share,
so the study ends with exactly `trials` trials, the configuration as it stands (the first trial of a
new study) among them. Optuna's `MaxTrialsCallback` (counting finished trials; a trial left running
by a killed worker is not counted) also stops every worker once the study holds `trials`, which
bounds workers on several machines sharing one study (each machine shares out what was missing when
it started, so they may overshoot by up to one trial per worker). The calling process only watches
the storage and reports progress. With one worker the study runs in the calling process. A single
worker with a seed is deterministic.

Ctrl-C: the workers never see SIGINT. The calling process blocks it while it starts them (a blocked
signal stays blocked across fork and exec, so a worker re-importing the entry script cannot be
interrupted, and a Ctrl-C meant for the calling process waits until each worker has read its whole
start-up data), then each worker ignores it for good. On KeyboardInterrupt the calling process stops
its workers itself (SIGTERM, then SIGKILL after `STOP_SECONDS`) before it lets the interrupt go on;
the trials they finished are in the storage. A worker asked to stop, or whose calling process is gone
(killed), stops after its current trial.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import msgspec

from trdr_tui.backtest.walkforward import with_overrides
from trdr_tui.config import Settings, convert_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import ConfigError, NotAvailable
from trdr_tui.store.tuning import TrialRecord
from trdr_tui.tuning.genome import Gene, current_values, suggest
from trdr_tui.tuning.objective import DatasetCache, Evaluation, ObjectiveConfig, evaluate

Sampler = Literal["tpe", "cmaes", "nsga2"]
SAMPLERS: tuple[str, ...] = ("tpe", "cmaes", "nsga2")
# (finished trials, total, best score so far or None)
Progress = Callable[[int, int, float | None], None]
POLL_SECONDS = 0.5
STOP_SECONDS = 5.0  # a worker asked to stop (SIGTERM) gets this long to finish its trial before SIGKILL


class StudySpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    storage: str           # postgresql://… or a journal file path
    sampler: str = "tpe"
    trials: int = 50
    seed: int = 42
    genes: list[Gene] = msgspec.field(default_factory=list)
    objective: ObjectiveConfig = msgspec.field(default_factory=ObjectiveConfig)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {self.sampler!r}", hint="use one of: " + ", ".join(SAMPLERS))
        if self.trials < 1:
            raise ConfigError("--trials must be at least 1")
        if not self.genes:
            raise ConfigError("the genome is empty", hint="leave out --genes, or name at least one key")

    @property
    def multi_objective(self) -> bool:
        return self.sampler == "nsga2"


class OptimizationOutcome(msgspec.Struct, kw_only=True):
    study_name: str
    method: str
    best_parameters: dict[str, Any]
    best_value: float
    best_attributes: dict[str, Any]
    trials: list[TrialRecord]
    convergence: list[float | None]  # best score after each trial, in trial order


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - optuna is a runtime dependency
        raise NotAvailable(f"the optimizer needs Optuna ({exc})", hint="pip install optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def make_storage(target: str) -> Any:
    """An Optuna storage: RDB for a `postgresql://` (or `sqlite://`) URL, else a journal file."""
    optuna = _optuna()
    if "://" in target:
        scheme = target.split("://", 1)[0]
        if not scheme.startswith(("postgresql", "sqlite")):
            raise ConfigError(f"storage {target.split('@')[-1]!r} is neither PostgreSQL nor a file path",
                              hint="use postgresql://user@host:port/db, or a file path for a local journal")
        if scheme == "postgresql":  # SQLAlchemy's default driver would be psycopg2; we ship psycopg 3
            target = "postgresql+psycopg://" + target.split("://", 1)[1]
        try:
            with warnings.catch_warnings():  # heartbeats (stale trials of killed workers → FAIL) are "experimental"
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(target, heartbeat_interval=60, grace_period=120)
        except Exception as exc:
            # the URL may carry a password: name only the host part
            raise ConfigError(f"cannot open the study storage at {target.split('@')[-1]}: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                              hint="check that the server runs and the database exists") from None
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(target))


def make_sampler(name: str, seed: int) -> Any:
    optuna = _optuna()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.NSGAIISampler(seed=seed)


def open_study(spec: StudySpec, base: Settings) -> Any:
    """Create or load the study; a new study first tries the configuration as it stands."""
    optuna = _optuna()
    directions = ["maximize", "minimize"] if spec.multi_objective else ["maximize"]
    study = optuna.create_study(study_name=spec.name, storage=make_storage(spec.storage),
                                sampler=make_sampler(spec.sampler, spec.seed), directions=directions,
                                load_if_exists=True)
    if not study.trials:
        study.set_user_attr("genes", [g.key for g in spec.genes])
        study.enqueue_trial(current_values(base, spec.genes), skip_if_exists=True)
    return study


def objective_for(spec: StudySpec, cache: DatasetCache, base: Settings) -> Callable[[Any], Any]:
    def objective(trial: Any) -> Any:
        overrides = suggest(trial, spec.genes)
        try:
            ev: Evaluation = evaluate(cache, base, overrides, seed=spec.seed)
        except ConfigError as exc:  # an inconsistent combination (e.g. min above max): not a candidate
            trial.set_user_attr("invalid", exc.message)
            raise _optuna().TrialPruned(exc.message) from None
        for k, v in ev.attributes().items():
            trial.set_user_attr(k, v)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        return (ev.score, ev.worst_drawdown) if spec.multi_objective else ev.score

    return objective


def work(spec: StudySpec, settings_data: dict[str, Any], bars: CandleArrays,
         callbacks: Sequence[Any] = (), share: int | None = None) -> None:
    """One worker: run `share` trials (None: `spec.trials`), stopping early once the shared study holds
    `spec.trials` finished trials."""
    optuna = _optuna()
    base = convert_settings(settings_data, "optimizer worker")
    cache = DatasetCache(bars, spec.objective)
    study = open_study(spec, base)
    # finished trials count; a trial left RUNNING by a killed worker does not block a resumed study
    stop = optuna.study.MaxTrialsCallback(spec.trials, states=(optuna.trial.TrialState.COMPLETE,
                                                               optuna.trial.TrialState.PRUNED))
    study.optimize(objective_for(spec, cache, base), n_trials=spec.trials if share is None else share,
                   callbacks=[stop, *callbacks],
                   gc_after_trial=False)


def _worker_main(spec_raw: bytes, settings_data: dict[str, Any], bars: CandleArrays, share: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the calling process's to handle (module docstring)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # ignored now: a pending one is dropped
    # Asked to stop (SIGTERM): finish the trial under way and leave, never raise in the middle of Optuna's
    # storage code (its journal's file lock would be left behind, or a half-released one logged as a failure)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    spec = msgspec.msgpack.decode(spec_raw, type=StudySpec)
    parent = mp.parent_process()

    def wind_down(study: Any, _trial: Any) -> None:
        if stopping or (parent is not None and not parent.is_alive()):
            study.stop()

    if not stopping:
        work(spec, settings_data, bars, callbacks=[wind_down], share=share)


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """SIGINT held back for the block: a Ctrl-C arriving meanwhile raises KeyboardInterrupt as the block ends.

    Two parts, because a signal sent to the process goes to any of its threads that does not block it (DuckDB's
    and the store's threads included) while Python runs its handler in the main thread: SIGINT is blocked in
    this thread (POSIX `pthread_sigmask`; a process started within inherits the mask), and, in the main
    thread, the Python-level handler only notes the signal until the block ends."""
    import threading

    came: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: came.append(signum)) if main else None
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)  # one pending here is handled now (noted)
        if main:  # a handler not set from Python reads None: Python's default then
            signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
        if came:
            raise KeyboardInterrupt


def start_workers(procs: Sequence[Any]) -> None:
    """Start the processes with SIGINT blocked, so that they inherit it blocked (module docstring)."""
    from multiprocessing import resource_tracker

    # the first spawn starts the resource tracker, which blocks and then *unblocks* SIGINT around its own
    # start: started first, before the block, it leaves the mask alone
    resource_tracker.ensure_running()
    with sigint_deferred():
        for p in procs:
            p.start()


def stop_workers(procs: Sequence[Any], timeout: float = STOP_SECONDS) -> None:
    """Terminate (SIGTERM) the live processes, wait up to `timeout` s for them all, SIGKILL the rest."""
    live = [p for p in procs if p.is_alive()]
    for p in live:
        p.terminate()
    deadline = time.monotonic() + timeout
    for p in live:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in live:
        if p.is_alive():
            p.kill()
            p.join()


def shares(missing: int, workers: int) -> list[int]:
    """`missing` trials split over at most `workers` workers as evenly as possible (no empty share)."""
    return [n for n in (missing // workers + (1 if i < missing % workers else 0) for i in range(workers)) if n > 0]


def run_study(spec: StudySpec, base: Settings, bars: CandleArrays, *, workers: int = 1,
              on_progress: Progress | None = None) -> OptimizationOutcome:
    """Run (or resume) the study with `workers` processes and return its winner and every trial."""
    optuna = _optuna()
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    DatasetCache(bars, spec.objective)  # too few bars fail here, before any process starts
    study = open_study(spec, base)
    data = base.to_dict()
    if workers == 1:
        def report(st: Any, _t: Any) -> None:
            if on_progress is not None:
                on_progress(*_progress(st, spec))

        work(spec, data, bars, callbacks=[report])
    else:
        ctx = mp.get_context("spawn")
        raw = msgspec.msgpack.encode(spec)
        missing = spec.trials - len(_counted(study))
        procs = [ctx.Process(target=_worker_main, args=(raw, data, bars, n), daemon=True)
                 for n in shares(missing, workers)]
        try:
            start_workers(procs)
            while any(p.is_alive() for p in procs):
                for p in procs:
                    p.join(POLL_SECONDS / len(procs))
                if on_progress is not None:
                    on_progress(*_progress(study, spec))
        finally:
            with sigint_deferred():  # a second Ctrl-C does not leave workers behind
                stop_workers([p for p in procs if p.pid is not None])
        failed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
        if failed and not _finished(study):
            raise NotAvailable(f"{len(failed)} optimizer worker(s) failed (exit codes {failed})",
                               hint="run with --workers 1 to see the error")
    study = optuna.load_study(study_name=spec.name, storage=make_storage(spec.storage))
    if on_progress is not None:
        on_progress(*_progress(study, spec))
    return outcome_of(study, spec, base)


def _counted(study: Any) -> list[Any]:
    """The trials that count toward `trials` (finished or pruned: what `MaxTrialsCallback` counts)."""
    optuna = _optuna()
    return list(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                          optuna.trial.TrialState.PRUNED)))


def _finished(study: Any) -> list[Any]:
    optuna = _optuna()
    return list(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def _progress(study: Any, spec: StudySpec) -> tuple[int, int, float | None]:
    done = _finished(study)
    best = max((t.values[0] for t in done), default=None)
    return len(done), spec.trials, best


def outcome_of(study: Any, spec: StudySpec, base: Settings) -> OptimizationOutcome:
    """The winner (see `pick_winner`), every trial as a TrialRecord and the convergence history."""
    records, convergence = trial_records(study)
    winner = pick_winner(study, spec, base)
    return OptimizationOutcome(study_name=spec.name, method=f"optuna/{spec.sampler}",
                               best_parameters=dict(winner.params), best_value=float(winner.values[0]),
                               best_attributes=dict(winner.user_attrs), trials=records, convergence=convergence)


def stored_trials(spec: StudySpec) -> list[TrialRecord]:
    """Every trial the study's storage holds (none when the study was never created there), in number
    order; for a study stopped before its end."""
    optuna = _optuna()
    try:
        study = optuna.load_study(study_name=spec.name, storage=make_storage(spec.storage))
    except KeyError:  # interrupted before the study was created
        return []
    return trial_records(study)[0]


def trial_records(study: Any) -> tuple[list[TrialRecord], list[float | None]]:
    """Every trial of `study` as a TrialRecord, in number order, and the best score after each."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    records: list[TrialRecord] = []
    convergence: list[float | None] = []
    best: float | None = None
    for t in trials:
        value = t.values[0] if t.values else None
        if value is not None and (best is None or value > best):
            best = value
        convergence.append(best)
        duration = t.duration.total_seconds() * 1e3 if t.duration is not None else None
        records.append(TrialRecord(number=t.number, state=t.state.name, value=value,
                                   values=list(t.values) if t.values else None, best_so_far=best,
                                   parameters=dict(t.params), attributes=dict(t.user_attrs), duration_ms=duration))
    return records, convergence


def pick_winner(study: Any, spec: StudySpec, base: Settings) -> Any:
    """Single objective: the best score. NSGA-II: on the Pareto front, the best score among the trials
    whose worst fold drawdown is within `risk.max_drawdown`, else the front's smallest drawdown."""
    if not _finished(study):
        raise NotAvailable("the study has no finished trial", hint="run more trials; see the trial errors")
    if not spec.multi_objective:
        return study.best_trial
    front = study.best_trials
    within = [t for t in front if t.values[1] <= base.risk.max_drawdown]
    if within:
        return max(within, key=lambda t: t.values[0])
    return min(front, key=lambda t: t.values[1])


def winner_settings(base: Settings, outcome: OptimizationOutcome) -> Settings:
    return with_overrides(base, outcome.best_parameters)
