"""The log pane: engine log lines, levelled and filterable (minimum level and a text filter).

Lines are kept in a bounded buffer; the pane draws the tail of the lines that pass the filter (newest at
the bottom), or an earlier window when the user scrolls back with the arrow and page keys. A line longer
than the pane wraps onto the rows below it (the pane is narrow; an order's fill must be readable). Drawing the
tail from the buffer, rather than appending to a scrolling log, keeps a fast feed cheap: one render per
frame whatever the number of new lines.

A line that repeats the one before it (same level, source and dedupe key, by default its message) is not
added again: the newest copy replaces it and the line shows its count (`×3`), as syslog's "last message
repeated" does, so a refusal the grid meets on every level of every bar takes one line.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import ClassVar

import msgspec
from rich.console import Group
from rich.text import Text
from textual.app import RenderResult
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widget import Widget

from trdr_tui.core.events import LogEvent, OrderEvent, RiskRejection
from trdr_tui.core.types import Fill, OrderStatus
from trdr_tui.tui.format import price_text, short_ts

LEVELS = ("debug", "info", "warning", "error")
LEVEL_COLOUR = {"debug": "muted", "info": "foreground", "warning": "warning", "error": "error"}
MAX_LINES = 2000
# What an order's transition to each status is called in the log (fills are logged from their own events,
# so a transition to PARTIAL or FILLED adds no line).
ORDER_VERBS = {OrderStatus.ARMED: ("info", "armed"), OrderStatus.SUBMITTED: ("info", "placed"),
               OrderStatus.CANCELLED: ("info", "cancelled"), OrderStatus.EXPIRED: ("info", "expired"),
               OrderStatus.REJECTED: ("warning", "rejected")}


def order_line(event: OrderEvent) -> LogEvent | None:
    """The log line of an order transition (placed, armed, cancelled, expired, rejected), None for the
    transitions fills already tell (PARTIAL, FILLED) and the internal ones."""
    verb = ORDER_VERBS.get(event.transition.to_status)
    if verb is None:
        return None
    level, word = verb
    order = event.order
    trigger = order.metadata.get("trigger")
    where = (f"trigger {price_text(trigger)}" if order.status is OrderStatus.ARMED and isinstance(trigger, float)
             else f"@ {price_text(order.price)}" if order.price is not None else "at market")
    why = f" ({event.transition.reason})" if event.transition.reason else ""
    return LogEvent(ts=event.transition.ts, level=level, source="order",
                    message=f"{word} {order.side.value} {order.type.value.lower()} {order.size:.6g} {where}{why} · {order.id}")


def fill_line(fill: Fill) -> LogEvent:
    """The log line of one fill: side, size, price, fee and liquidity, and the order it filled."""
    return LogEvent(ts=fill.ts, level="info", source="order",
                    message=f"filled {fill.side.value} {fill.size:.6g} @ {price_text(fill.price)} fee {fill.fee:.2f}"
                            f" {fill.liquidity.value.lower()} · {fill.order_id}")


def risk_line(rejection: RiskRejection) -> tuple[LogEvent, tuple[str, ...]]:
    """The log line of a risk refusal and its dedupe key (side and failed checks, not the size, which
    differs from level to level): repeated refusals fold into one line with a count."""
    checks = ", ".join(rejection.failed_checks)
    line = LogEvent(ts=rejection.ts, level="warning", source="risk",
                    message=f"{rejection.side.value.lower()} refused: {checks} (size {rejection.size:.6g})")
    return line, (rejection.side.value, *rejection.failed_checks)


class LogPane(Widget, can_focus=True):
    BORDER_TITLE = "logs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "back(1)", "Older", show=False, id="logs.older"),
        Binding("down", "back(-1)", "Newer", show=False, id="logs.newer"),
        Binding("pageup", "page(1)", "Older page", show=False, id="logs.page_older"),
        Binding("pagedown", "page(-1)", "Newer page", show=False, id="logs.page_newer"),
        Binding("end", "follow", "Newest", show=False, id="logs.newest"),
    ]

    min_level: reactive[str] = reactive("info")
    text_filter: reactive[str] = reactive("")
    lines_back: reactive[int] = reactive(0)  # lines back from the newest; 0 follows the feed

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: deque[LogEvent] = deque(maxlen=MAX_LINES)
        self.dirty = False
        self._last_key: Hashable = None

    def add(self, event: LogEvent, *, key: Hashable = None) -> None:
        """Append `event`, or fold it into the newest line when that line has the same level, source and
        `key` (default: the message); the folded line carries the count in `fields["repeats"]`."""
        full_key = (event.level, event.source, event.message if key is None else key)
        if self.entries and full_key == self._last_key:
            repeats = int(self.entries[-1].fields.get("repeats") or 1) + 1
            event = msgspec.structs.replace(event, fields={**event.fields, "repeats": repeats})
            self.entries[-1] = event
        else:
            self.entries.append(event)
        self._last_key = full_key
        self.dirty = True

    def refresh_if_dirty(self) -> None:
        if self.dirty:
            self.dirty = False
            self.refresh()

    def accepts(self, event: LogEvent) -> bool:
        level = event.level if event.level in LEVELS else "info"
        if LEVELS.index(level) < LEVELS.index(self.min_level):
            return False
        needle = self.text_filter.lower()
        return not needle or needle in event.message.lower() or needle in event.source.lower()

    def shown_entries(self) -> list[LogEvent]:
        return [e for e in self.entries if self.accepts(e)]

    def window(self) -> list[LogEvent]:
        """The lines on screen: the newest whose wrapped rows fit, shifted back by `lines_back` lines."""
        return [event for event, _ in self._window_texts()]

    def _window_texts(self) -> list[tuple[LogEvent, Text]]:
        lines = self.shown_entries()
        height = max(self.content_region.height, 1)
        width = max(self.content_region.width, 1)
        end = len(lines) - min(self.lines_back, max(len(lines) - 1, 0))
        shown: list[tuple[LogEvent, Text]] = []
        rows = 0
        for event in reversed(lines[:end]):
            text = self._line(event)
            need = len(text.wrap(self.app.console, width))
            if shown and rows + need > height:
                break
            shown.append((event, text))
            rows += need
        shown.reverse()
        return shown

    def render(self) -> RenderResult:
        return Group(*(text for _, text in self._window_texts()))

    def _update_subtitle(self) -> None:
        back = f" · {self.lines_back} back" if self.lines_back else ""
        filt = f" · '{self.text_filter}'" if self.text_filter else ""
        self.border_subtitle = f"≥ {self.min_level}{filt}{back}"

    def _line(self, event: LogEvent) -> Text:
        colours = self.app.theme_variables
        colour = colours.get(LEVEL_COLOUR.get(event.level, "foreground"), colours["foreground"])
        line = Text(overflow="fold")
        line.append(f"{short_ts(event.ts)} ", style=colours["muted"])
        line.append(f"{event.level[:4].upper():4} ", style=colour)
        line.append(f"{event.source}: ", style="bold")
        line.append(event.message)
        repeats = event.fields.get("repeats")
        if isinstance(repeats, int) and repeats > 1:
            line.append(f" ×{repeats}", style=f"bold {colour}")
        return line

    def cycle_level(self) -> str:
        self.min_level = LEVELS[(LEVELS.index(self.min_level) + 1) % len(LEVELS)]
        return self.min_level

    def on_mount(self) -> None:
        self._update_subtitle()

    def watch_min_level(self) -> None:
        self.lines_back = 0
        self._update_subtitle()
        self.refresh()

    def watch_text_filter(self) -> None:
        self.lines_back = 0
        self._update_subtitle()
        self.refresh()

    def watch_lines_back(self) -> None:
        self._update_subtitle()
        self.refresh()

    def action_back(self, lines: int) -> None:
        self.lines_back = max(0, min(self.lines_back + lines, max(len(self.shown_entries()) - 1, 0)))

    def action_page(self, pages: int) -> None:
        self.action_back(pages * max(self.content_region.height - 1, 1))

    def action_follow(self) -> None:
        self.lines_back = 0
