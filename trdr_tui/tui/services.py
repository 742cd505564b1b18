"""What the cockpit may ask of the rest of trdr besides the running engine.

The CLI (and the tests) hand these to `make_app`; the app never builds engines or backtests itself.
When one is missing the matching screen says so plainly instead of pretending.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
import numpy as np
import numpy.typing as npt

from trdr_tui.config import Settings, convert_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.engine_api import EngineControl
from trdr_tui.core.errors import DataError
from trdr_tui.core.types import Mode
from trdr_tui.store import Store

ProgressCallback = Callable[[int, int], None]


class BacktestRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A backtest as the form describes it. Dates are inclusive UTC days; None means the data's edge."""

    start: str | None = None  # YYYY-MM-DD
    end: str | None = None
    preset: str = "default"  # "default" (the configured strategy) | "simple-trailing"
    overrides: dict[str, Any] = msgspec.field(default_factory=dict)  # dotted config keys


class BacktestOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What the results screen shows: the equity curves (the strategy's and its two baselines') and the
    statistics (JSON keys of `trdr backtest`); `session_id` when the run was stored as a session."""

    ts: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    buy_and_hold: npt.NDArray[np.float64]
    fixed_grid: npt.NDArray[np.float64]
    stats: dict[str, Any]
    session_id: str | None = None


class BacktestRunner(Protocol):
    """Runs one backtest to completion (called in a thread worker); reports (done, total) bars."""

    def __call__(self, request: BacktestRequest, progress: ProgressCallback) -> BacktestOutcome: ...


ModeSwitcher = Callable[[Mode], Awaitable[EngineControl]]
"""Builds a new engine for a mode once the old one has stopped (paper ↔ live)."""

CredentialCheck = Callable[[], str | None]
"""None when live trading may start; otherwise the reason it may not (never the secret itself)."""


CandleSource = Callable[[int | None, int | None], CandleArrays]
"""Bars in [start_ns, end_ns) (None = unbounded): the replayed data, or the candle store."""

DAY_NS = 86_400 * 1_000_000_000


def slice_candles(candles: CandleArrays) -> CandleSource:
    """A CandleSource over arrays already in memory (the session's replay data)."""

    def source(start: int | None, end: int | None) -> CandleArrays:
        lo = 0 if start is None else int(np.searchsorted(candles.ts, start, side="left"))
        hi = len(candles) if end is None else int(np.searchsorted(candles.ts, end, side="left"))
        return candles[lo:hi]

    return source


class EngineBacktests:
    """The backtest screen's runner: `trdr_tui.backtest.runner.run_backtest` on bars from a CandleSource.

    Form overrides go through the same config validation as a TOML file, so a bad value is refused
    with the usual message before any bar is replayed. With a `store`, each run is stored as a backtest
    session as `trdr backtest` stores it (`trdr sessions list` shows it; a failed run is marked failed).
    """

    def __init__(self, settings: Settings, candles: CandleSource, *, monte_carlo_paths: int = 0,
                 store: Store | None = None) -> None:
        self.settings = settings
        self.candles = candles
        self.monte_carlo_paths = monte_carlo_paths
        self.store = store

    def settings_for(self, request: BacktestRequest) -> Settings:
        data = self.settings.to_dict()
        for dotted, value in request.overrides.items():
            target = data
            *parents, leaf = dotted.split(".")
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = value
        return convert_settings(data, "backtest form")

    def __call__(self, request: BacktestRequest, progress: ProgressCallback) -> BacktestOutcome:
        from trdr_tui.backtest.data import parse_time
        from trdr_tui.backtest.params import strategy_parameters
        from trdr_tui.backtest.runner import run_backtest
        from trdr_tui.backtest.sessions import start_session
        from trdr_tui.core.clock import WallClock
        from trdr_tui.store.sessions import SessionRepository

        settings = self.settings_for(request)
        start = parse_time(request.start, "from")
        end = parse_time(request.end, "to")
        bars = self.candles(start, end + DAY_NS if end is not None else None)
        if len(bars) < 2:
            raise DataError(f"only {len(bars)} bars between {request.start or 'the start'} and "
                            f"{request.end or 'the end'}", hint="widen the range")
        preset = None if request.preset == "default" else request.preset
        params = strategy_parameters(settings)
        if preset:
            params["preset"] = preset
        repo = SessionRepository(self.store) if self.store is not None else None
        session = None
        if repo is not None:
            session = start_session(repo, name=None, description="run from the cockpit's backtest screen",
                                    symbol=settings.symbol, timeframe=settings.timeframe, start_ts=int(bars.ts[0]),
                                    end_ts=int(bars.ts[-1]), parameters=params, parameter_version_id=None,
                                    now_ns=WallClock().now_ns())
        try:
            outcome = run_backtest(settings, bars, preset=preset, on_progress=progress,
                                   monte_carlo_paths=self.monte_carlo_paths,
                                   run_id=session.id if session is not None else None)
        except BaseException as exc:
            if repo is not None and session is not None:
                repo.fail(session.id, f"{type(exc).__name__}: {exc}")
            raise
        results = outcome.results
        results["parameters"] = params
        if repo is not None and session is not None:
            results["session_id"] = session.id
            results["session_name"] = session.name
            repo.complete(session.id, results, outcome.curves)
        curves = outcome.curves
        return BacktestOutcome(ts=np.asarray(curves["ts"], dtype=np.int64),
                               equity=np.asarray(curves["equity"], dtype=np.float64),
                               buy_and_hold=np.asarray(curves["buy_and_hold"], dtype=np.float64),
                               fixed_grid=np.asarray(curves["fixed_grid"], dtype=np.float64),
                               stats=results, session_id=results.get("session_id"))
