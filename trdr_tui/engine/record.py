"""What one run produced: fills, trades, orders, decisions and the equity curve (see docs/trading.md)."""

from __future__ import annotations

import msgspec
import numpy as np

from trdr_tui.core.arrays import F64, I64, CandleArrays
from trdr_tui.core.events import RiskRejection
from trdr_tui.core.types import Decision, Fill, Order, Trade
from trdr_tui.trading.orders import OrderManager
from trdr_tui.trading.portfolio import Portfolio


class RunState:
    """Where a run is: written by the per-bar step, read by the engine's controls and checkpoints."""

    __slots__ = ("bar_index", "bars_done", "last_price", "paused", "trade_from_ns")

    def __init__(self) -> None:
        self.bar_index = 0  # the bar being processed (or the last one processed)
        self.bars_done = 0  # closed bars fully processed
        self.last_price = 0.0  # quote currency: the last close or trade price seen
        self.paused = False  # no new orders; the feed, the ledger and open-order tracking go on
        self.trade_from_ns = -(2**63)  # bars opening before this (ns) are warm-up: no new orders


class EquityCurve(msgspec.Struct, frozen=True):
    """Per processed bar: close time (ns), equity, price, cash and position after the bar (quote
    currency, base units)."""

    ts: I64
    equity: F64
    price: F64
    cash: F64
    position: F64


class BarHistory:
    """The bars a run processed and the ledger's change points, from which the equity curve is rebuilt
    after the fact (no per-bar work during the run).

    Backtests point `arrays` at the feed's history; streaming runs append each bar's close time and
    close. `mark(bar, cash, position)` is called after each fill; a later mark in the same bar wins.
    """

    def __init__(self, initial_cash: float, timeframe_ns: int) -> None:
        self.initial_cash = initial_cash
        self.timeframe_ns = timeframe_ns
        self.arrays: CandleArrays | None = None
        self._close_ts: list[int] = []
        self._close: list[float] = []
        self._marks: list[tuple[int, float, float]] = []

    def append(self, close_ts: int, close: float) -> None:
        """A streamed bar closed at `close_ts` (ns) at `close`."""
        self._close_ts.append(close_ts)
        self._close.append(close)

    @property
    def streamed(self) -> int:
        """Bars appended so far (streaming runs)."""
        return len(self._close_ts)

    def mark(self, bar: int, cash: float, position: float) -> None:
        self._marks.append((bar, cash, position))

    def equity_curve(self, n: int) -> EquityCurve:
        """The first `n` bars: each takes the last ledger change point at or before it."""
        if self.arrays is not None:
            ts = self.arrays.ts[:n] + self.timeframe_ns
            price = self.arrays.close[:n]
        else:
            ts = np.asarray(self._close_ts[:n], dtype=np.int64)
            price = np.asarray(self._close[:n], dtype=np.float64)
        cash = np.full(n, self.initial_cash)
        pos = np.zeros(n)
        marks = self._marks
        if marks:
            bars = np.fromiter((m[0] for m in marks), dtype=np.int64, count=len(marks))
            m_cash = np.fromiter((m[1] for m in marks), dtype=np.float64, count=len(marks))
            m_pos = np.fromiter((m[2] for m in marks), dtype=np.float64, count=len(marks))
            which = np.searchsorted(bars, np.arange(n), side="right") - 1
            have = which >= 0
            cash[have] = m_cash[which[have]]
            pos[have] = m_pos[which[have]]
        return EquityCurve(ts, cash + pos * price, price.copy(), cash, pos)


class RunRecord:
    """What one run produced; the backtest runner reads it. Read-only views of the run's parts."""

    def __init__(self, portfolio: Portfolio, orders: OrderManager, state: RunState, history: BarHistory,
                 decisions: list[Decision]) -> None:
        self._portfolio = portfolio
        self._orders = orders
        self._state = state
        self._history = history
        self._decisions = decisions

    @property
    def fills(self) -> list[Fill]:
        return self._portfolio.fills

    @property
    def trades(self) -> list[Trade]:
        return self._portfolio.trades

    @property
    def orders(self) -> list[Order]:
        return list(self._orders.orders.values())

    @property
    def decisions(self) -> list[Decision]:
        """The actionable decisions (TRAIL_BUY, TRAIL_SELL) the run saw, in order."""
        return self._decisions

    @property
    def rejections(self) -> list[RiskRejection]:
        return self._orders.rejections

    @property
    def rejected_orders(self) -> int:
        return len(self._orders.rejections)

    @property
    def fees(self) -> float:
        return self._portfolio.fees

    @property
    def initial_cash(self) -> float:
        return self._portfolio.initial_cash

    @property
    def bars(self) -> int:
        return self._state.bars_done

    @property
    def final_equity(self) -> float:
        pf = self._portfolio
        return pf.equity(self._state.last_price) if self._state.bars_done else pf.initial_cash

    def equity_curve(self) -> EquityCurve:
        return self._history.equity_curve(self._state.bars_done)
