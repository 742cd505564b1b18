"""The grid pane: levels with their state, distance from price, P&L and time spent there, as a heat map.

The heat is the share of time the price has spent at a level (the longest-held level is hottest); the
P&L column is coloured by sign. Colours come from the theme (`heat-cold`, `heat-hot`, `pnl-up`, ...).

A level's P&L is its own round trips (each take-profit against the lot it closes) plus its lot held at
the price. Levels at and above the centre never hold a lot (the grid buys below it; sells rest there as the
take-profits of the levels below, state `exit`), so their P&L reads `—`.

States as shown: `idle`, `armed` (a BUY near the price), `trailing` (its BUY works), `held` (its BUY
filled: it holds a lot, while its take-profit SELL works one level up — the grid's `filled`, which on
screen read as if that SELL had filled), `exit` (a take-profit SELL rests at this level).
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from trdr_tui.core.events import GridSnapshot
from trdr_tui.core.types import Side
from trdr_tui.tui.format import blend, duration_text, money_text, pct_text, price_text

SHOWN_STATE = {"filled": "held"}
"""The grid's level states under another name on screen (module docstring)."""


class GridTable(DataTable[Text]):
    BORDER_TITLE = "grid"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.snapshot: GridSnapshot | None = None
        self.price: float | None = None
        self.dirty = False

    # Fixed widths: columns never jump while prices stream in.
    COLUMNS = (("level", "price", 10), ("side", "side", 4), ("state", "state", 8), ("dist", "dist", 7),
               ("P&L", "pnl", 9), ("time", "time", 7))

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for label, key, width in self.COLUMNS:
            self.add_column(label, key=key, width=width)

    def set_grid(self, snapshot: GridSnapshot) -> None:
        self.snapshot = snapshot
        self.dirty = True

    def set_price(self, price: float) -> None:
        if price != self.price:
            self.price = price
            self.dirty = True

    def refresh_if_dirty(self) -> None:
        if self.dirty:
            self.dirty = False
            self.rebuild()

    def rebuild(self) -> None:
        """Rows from the latest snapshot, highest level first (keeps the cursor row)."""
        snap = self.snapshot
        cursor = self.cursor_row
        self.clear()  # columns have fixed widths: nothing to re-measure, no layout pass
        if snap is None:
            self.border_subtitle = "no grid yet"
            return
        colours = self.app.theme_variables
        price = self.price if self.price is not None else snap.center
        longest = max((lv.time_at_level_ns for lv in snap.levels), default=0) or 1
        for level in sorted(snap.levels, key=lambda lv: lv.price, reverse=True):
            heat = blend(colours["heat-cold"], colours["heat-hot"], level.time_at_level_ns / longest)
            base = Style(bgcolor=heat)
            side_colour = colours["bid"] if level.side == Side.BUY else colours["ask"]
            pnl_colour = colours["pnl-up"] if level.pnl >= 0 else colours["pnl-down"]
            holds_lots = level.price < snap.center * (1.0 - 1e-12)  # the grid buys below the centre only
            dist = (level.price - price) / price if price else 0.0
            self.add_row(
                Text(price_text(level.price), style=base),
                Text(level.side.value, style=base + Style(color=side_colour)),
                Text(SHOWN_STATE.get(level.state, level.state), style=base + Style(bold=level.state in ("trailing", "armed", "exit"))),
                Text(pct_text(dist, signed=True), style=base),
                Text(money_text(level.pnl, signed=True) if holds_lots else "—", style=base + Style(color=pnl_colour)),
                Text(duration_text(level.time_at_level_ns), style=base),
            )
        self.border_subtitle = f"spacing {pct_text(snap.spacing)} · centre {price_text(snap.center)}"
        if self.row_count:
            self.move_cursor(row=min(cursor, self.row_count - 1), animate=False)
