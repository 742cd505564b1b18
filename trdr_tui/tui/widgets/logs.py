"""The log pane: engine log lines, levelled and filterable (minimum level and a text filter).

Lines are kept in a bounded buffer; the pane draws the tail of the lines that pass the filter (newest at
the bottom), or an earlier window when the user scrolls back with the arrow and page keys. Drawing the
tail from the buffer, rather than appending to a scrolling log, keeps a fast feed cheap: one render per
frame whatever the number of new lines.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual.app import RenderResult
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widget import Widget

from trdr_tui.core.events import LogEvent
from trdr_tui.tui.format import short_ts

LEVELS = ("debug", "info", "warning", "error")
LEVEL_COLOUR = {"debug": "muted", "info": "foreground", "warning": "warning", "error": "error"}
MAX_LINES = 2000


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

    def add(self, event: LogEvent) -> None:
        self.entries.append(event)
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
        """The lines on screen: the newest that fit, shifted back by `lines_back`."""
        lines = self.shown_entries()
        height = max(self.content_region.height, 1)
        back = min(self.lines_back, max(len(lines) - height, 0))
        end = len(lines) - back
        return lines[max(end - height, 0):end]

    def render(self) -> RenderResult:
        return Group(*(self._line(e) for e in self.window()))

    def _update_subtitle(self) -> None:
        back = f" · {self.lines_back} back" if self.lines_back else ""
        filt = f" · '{self.text_filter}'" if self.text_filter else ""
        self.border_subtitle = f"≥ {self.min_level}{filt}{back}"

    def _line(self, event: LogEvent) -> Text:
        colours = self.app.theme_variables
        colour = colours.get(LEVEL_COLOUR.get(event.level, "foreground"), colours["foreground"])
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{short_ts(event.ts)} ", style=colours["muted"])
        line.append(f"{event.level[:4].upper():4} ", style=colour)
        line.append(f"{event.source}: ", style="bold")
        line.append(event.message)
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
