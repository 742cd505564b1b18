"""Open and recent orders with their state-machine state; the selected order's timeline below.

Orders are listed by the time they were created, oldest at the top and the newest at the bottom, as the
log pane lists its lines (orders created on the same bar keep the order the engine created them in).

ARMED orders (trailing orders waiting in the engine's trigger book, not yet sent) show their state
in the trigger colour, the colour of the trigger lines on the chart.

The timeline is the order's transitions (as published, each stamped by the engine clock) interleaved
with its fills, so a user can see exactly how an order moved from PENDING to its end.
"""

from __future__ import annotations

from collections import OrderedDict

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from trdr_tui.core.events import OrderEvent
from trdr_tui.core.types import Fill, Order, OrderStatus, OrderTransition, Side
from trdr_tui.tui.format import day_time, price_text, short_ts

TERMINAL = {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
MAX_ORDERS = 200


class OrderTable(DataTable[Text]):
    BORDER_TITLE = "orders"


class OrdersPanel(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.orders: OrderedDict[str, Order] = OrderedDict()
        self.transitions: dict[str, list[OrderTransition]] = {}
        self.fills: dict[str, list[Fill]] = {}
        self.seen: dict[str, int] = {}  # order id → when the pane first heard of it (ties on created_ts)
        self._seen_count = 0
        self.selected: str | None = None
        self.follow = True  # show the newest order until the user picks one
        self.dirty = False

    def compose(self) -> ComposeResult:
        yield OrderTable(id="orders-table", cursor_type="row", zebra_stripes=False)
        yield Static(id="timeline")

    # Fixed widths: columns never jump while orders stream in.
    COLUMNS = (("time", "time", 8), ("side", "side", 4), ("state", "state", 9), ("price", "price", 10),
               ("size", "size", 8), ("fill", "filled", 4))

    def on_mount(self) -> None:
        self._add_columns()
        self._render_timeline()

    def _add_columns(self) -> None:
        table = self.query_one(OrderTable)
        for label, key, width in self.COLUMNS:
            table.add_column(label, key=key, width=width)

    # -- updates ---------------------------------------------------------------------------------

    def add_order_event(self, event: OrderEvent) -> None:
        order = event.order
        if order.id not in self.seen:
            self.seen[order.id] = self._seen_count
            self._seen_count += 1
        self.orders[order.id] = order
        self.orders.move_to_end(order.id)
        history = self.transitions.setdefault(order.id, [])
        if not history or history[-1] != event.transition:
            history.append(event.transition)
        while len(self.orders) > MAX_ORDERS:
            old, _ = self.orders.popitem(last=False)
            self.transitions.pop(old, None)
            self.fills.pop(old, None)
            self.seen.pop(old, None)
        self.dirty = True

    def add_fill(self, fill: Fill) -> None:
        self.fills.setdefault(fill.order_id, []).append(fill)
        self.dirty = True

    def refresh_if_dirty(self) -> None:
        if self.dirty:
            self.dirty = False
            self.rebuild()

    def rebuild(self) -> None:
        """Orders by creation time, newest at the bottom; the cursor stays on the same order."""
        table = self.query_one(OrderTable)
        colours = self.app.theme_variables
        ordered = sorted(self.orders.values(), key=lambda o: (o.created_ts, self.seen[o.id]))
        table.clear()  # columns have fixed widths: nothing to re-measure, no layout pass
        for order in ordered:
            side_colour = colours["bid"] if order.side == Side.BUY else colours["ask"]
            if order.status in TERMINAL:
                state_style = colours["muted"]
            elif order.status is OrderStatus.ARMED:  # waiting on its trigger in the engine: the trigger colour
                state_style = f"bold {colours['trigger']}"
            else:
                state_style = "bold"
            # what it filled at once it filled (even partly); before that its limit, or its trigger
            price = order.avg_fill_price if order.filled_size > 0 else \
                order.price if order.price is not None else order.metadata.get("trigger")
            table.add_row(
                Text(day_time(order.created_ts)),
                Text(order.side.value, style=side_colour),
                Text(order.status.value, style=state_style),
                Text(price_text(price if isinstance(price, float) else None)),
                Text(f"{order.size:.4g}"),
                Text(f"{order.filled_size / order.size * 100:.0f}%" if order.size else "—"),
                key=order.id,
            )
        open_count = sum(1 for o in ordered if o.status not in TERMINAL)
        table.border_subtitle = f"{open_count} open · {len(ordered) - open_count} done"
        if ordered and (self.follow or self.selected not in self.orders):
            self.selected = ordered[-1].id
        if self.selected is not None:
            table.move_cursor(row=table.get_row_index(self.selected), animate=False, scroll=not self.follow)
        if self.follow:
            table.scroll_end(animate=False, immediate=True, x_axis=False)
        self._render_timeline()

    # -- selection and timeline ------------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None and event.row_key.value != self.selected:
            table = self.query_one(OrderTable)
            if table.has_focus:  # the user moved the cursor: stop following the newest order
                self.follow = False
            self.selected = event.row_key.value
            self._render_timeline()

    def timeline_lines(self, order_id: str) -> list[str]:
        entries: list[tuple[int, int, str]] = []
        for t in self.transitions.get(order_id, []):
            why = f" ({t.reason})" if t.reason else ""
            entries.append((t.ts, 0, f"{short_ts(t.ts)} {t.from_status.value} → {t.to_status.value}{why}"))
        for f in self.fills.get(order_id, []):
            entries.append((f.ts, 1, f"{short_ts(f.ts)} fill {f.size:.6g} @ {price_text(f.price)}"
                                      f" fee {f.fee:.2f} {f.liquidity.value.lower()}"))
        return [text for _, _, text in sorted(entries)]

    def _render_timeline(self) -> None:
        timeline = self.query_one("#timeline", Static)
        if self.selected is None or self.selected not in self.orders:
            timeline.update("[$text-muted]no orders yet[/]", layout=False)  # fixed height: no layout pass
            return
        order = self.orders[self.selected]
        head = f"[b]{order.side.value} {order.type.value.lower()} {order.id}[/b]"  # the whole id: orders differ at its end
        timeline.update("\n".join([head, *self.timeline_lines(order.id)[-6:]]), layout=False)
