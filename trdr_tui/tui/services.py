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

from trdr_tui.core.engine_api import EngineControl
from trdr_tui.core.types import Mode

ProgressCallback = Callable[[int, int], None]


class BacktestRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A backtest as the form describes it. Dates are inclusive UTC days; None means the data's edge."""

    start: str | None = None  # YYYY-MM-DD
    end: str | None = None
    preset: str = "default"  # "default" (the configured strategy) | "simple-trailing"
    overrides: dict[str, Any] = msgspec.field(default_factory=dict)  # dotted config keys


class BacktestOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What the results screen shows: the equity curves and the statistics (JSON keys of `trdr backtest`)."""

    ts: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    buy_and_hold: npt.NDArray[np.float64]
    stats: dict[str, Any]
    session_id: str | None = None


class BacktestRunner(Protocol):
    """Runs one backtest to completion (called in a thread worker); reports (done, total) bars."""

    def __call__(self, request: BacktestRequest, progress: ProgressCallback) -> BacktestOutcome: ...


ModeSwitcher = Callable[[Mode], Awaitable[EngineControl]]
"""Builds a new engine for a mode once the old one has stopped (paper ↔ live)."""

CredentialCheck = Callable[[], str | None]
"""None when live trading may start; otherwise the reason it may not (never the secret itself)."""
