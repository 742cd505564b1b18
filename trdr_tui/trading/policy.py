"""What a policy may use, and what the engine asks of it.

A policy (the grid, a preset) turns each closed bar's decision into orders. It never sees the engine:
at start the engine hands it a `PolicyContext` — the order manager, the portfolio, the clock, the risk
manager, a window on the recent bars and a sink for grid pictures — and the policy keeps what it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.clock import Clock
from trdr_tui.core.events import GridSnapshot
from trdr_tui.core.types import Decision
from trdr_tui.trading.orders import OrderManager
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.risk import RiskManager


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyContext:
    """The engine's parts a policy works with.

    - `orders`: places and cancels orders (every one goes through the risk manager);
      `orders.fill_listeners` / `orders.fsm.listeners` report fills and order transitions;
    - `portfolio`: cash, position and closed trades (quote currency, base units);
    - `clock`: the time (ns since the epoch) — a SimClock in backtests;
    - `risk`: the risk manager (`position_limit(price)` caps a BUY, in base units);
    - `recent_bars(n)`: the last `n` closed bars up to the one being processed (fewer at the start);
    - `bar_index()`: the index of the bar being processed in this run (0 for the first);
    - `publish_grid(snapshot)`: the grid changed — publish it (and, in paper/live, persist it);
    - `grid_wanted()`: whether anyone would see a published grid now (a listener, the agents' view of the
      book, paper/live checkpoints); when not, a policy may skip building the snapshot;
    - `log(level, message, **fields)`: a notable action (a stop, a regime exit), published on `log.<level>`.
    """

    orders: OrderManager
    portfolio: Portfolio
    clock: Clock
    risk: RiskManager
    recent_bars: Callable[[int], CandleArrays]
    bar_index: Callable[[], int]
    publish_grid: Callable[[GridSnapshot], None]
    grid_wanted: Callable[[], bool]
    log: Callable[..., None]


class Policy(Protocol):
    """What the engine asks each closed bar, after the trailing book saw the bar's prices.

    `bind` is called once, before the first bar. A policy may set `idle_only = True` when it never
    acts while any of its orders is open; the engine then skips the call on those bars (a backtest
    hot-path saving, same results). `state` / `restore` carry its checkpoint (plain builtins).
    """

    name: str
    idle_only: bool

    def bind(self, ctx: PolicyContext) -> None: ...

    def on_bar(self, ts: int, close: float, decision: Decision | None) -> None: ...

    def state(self) -> dict[str, object]: ...

    def restore(self, state: dict[str, object]) -> None: ...


@runtime_checkable
class PreparedPolicy(Protocol):
    """A policy with per-dataset work: a backtest calls `prepare(close)` with every bar's close
    (quote currency, float64, one per bar of the run) before the first bar, so that indicators are
    computed once, vectorized, and read by bar index (`PolicyContext.bar_index`)."""

    def prepare(self, close: npt.NDArray[np.float64]) -> None: ...
