"""What one run produced: fills, trades, orders, decisions and the equity curve (see docs/trading.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from trdr_tui.core.types import Decision, Fill, Order, Trade
from trdr_tui.market.arrays import F64, I64

if TYPE_CHECKING:
    from trdr_tui.engine.loop import Engine


class EquityCurve(msgspec.Struct, frozen=True):
    """Per processed bar: close time (ns), equity, price, cash and position after the bar."""

    ts: I64
    equity: F64
    price: F64
    cash: F64
    position: F64


class RunRecord:
    """What one run produced; the backtest runner reads it (see docs/trading.md)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def fills(self) -> list[Fill]:
        return self._engine.portfolio.fills

    @property
    def trades(self) -> list[Trade]:
        return self._engine.portfolio.trades

    @property
    def orders(self) -> list[Order]:
        return list(self._engine.orders.orders.values())

    @property
    def decisions(self) -> list[Decision]:
        return self._engine._decisions_seen

    @property
    def rejections(self) -> list[Any]:
        return self._engine.orders.rejections

    @property
    def rejected_orders(self) -> int:
        return len(self._engine.orders.rejections)

    @property
    def fees(self) -> float:
        return self._engine.portfolio.fees

    @property
    def initial_cash(self) -> float:
        return self._engine.portfolio.initial_cash

    @property
    def bars(self) -> int:
        return self._engine._bars_done

    @property
    def final_equity(self) -> float:
        e = self._engine
        return e.portfolio.equity(e.last_price) if e._bars_done else e.portfolio.initial_cash

    def equity_curve(self) -> EquityCurve:
        """Built after the fact from the ledger's change points: no per-bar work during the run."""
        return self._engine._equity_curve()
