"""The read-only view of the grid and the open orders that the engine hands to the agent panel.

Agents may look, never touch: every call returns frozen copies (`OpenOrderView`, `GridSnapshot`),
built when asked, so nothing an agent holds can change an order or the grid.
"""

from __future__ import annotations

from trdr_tui.agents.protocol import OpenOrderView
from trdr_tui.core.events import GridSnapshot
from trdr_tui.trading.orders import OrderManager


class EngineBook:
    """Implements `agents.protocol.BookView` over an engine's order manager and its last grid picture."""

    __slots__ = ("last_grid", "orders")

    def __init__(self, orders: OrderManager) -> None:
        self.orders = orders
        self.last_grid: GridSnapshot | None = None  # set by the engine whenever the policy publishes one

    def grid(self) -> GridSnapshot | None:
        return self.last_grid

    def open_orders(self) -> tuple[OpenOrderView, ...]:
        triggers = {st.order.id: st.trigger for st in self.orders.trailing}
        return tuple(OpenOrderView(id=o.id, side=o.side, type=o.type, created_ts=o.created_ts, size=o.remaining,
                                   price=o.price, trail=o.trail, trigger=triggers.get(o.id))
                     for o in self.orders.open.values())
