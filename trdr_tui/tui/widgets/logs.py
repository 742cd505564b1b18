"""The log pane: engine log lines, levelled and filterable (minimum level and a text filter).

Lines are kept in a bounded buffer so changing the filter re-renders what is already known.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import RichLog

from trdr_tui.core.events import LogEvent
from trdr_tui.tui.format import short_ts

LEVELS = ("debug", "info", "warning", "error")
LEVEL_COLOUR = {"debug": "muted", "info": "foreground", "warning": "warning", "error": "error"}
MAX_LINES = 2000


class LogPane(RichLog):
    BORDER_TITLE = "logs"

    min_level: reactive[str] = reactive("info")
    text_filter: reactive[str] = reactive("")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=MAX_LINES, wrap=False, markup=False, auto_scroll=True)
        self.entries: deque[LogEvent] = deque(maxlen=MAX_LINES)
        self.pending: list[LogEvent] = []

    def add(self, event: LogEvent) -> None:
        self.entries.append(event)
        self.pending.append(event)

    def refresh_if_dirty(self) -> None:
        if self.pending:
            pending, self.pending = self.pending, []
            for event in pending:
                if self.accepts(event):
                    self.write(self._line(event))

    def accepts(self, event: LogEvent) -> bool:
        level = event.level if event.level in LEVELS else "info"
        if LEVELS.index(level) < LEVELS.index(self.min_level):
            return False
        needle = self.text_filter.lower()
        return not needle or needle in event.message.lower() or needle in event.source.lower()

    def visible(self) -> list[LogEvent]:
        return [e for e in self.entries if self.accepts(e)]

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

    def watch_min_level(self) -> None:
        self._rerender()

    def watch_text_filter(self) -> None:
        self._rerender()

    def _rerender(self) -> None:
        if not self.is_mounted:
            return
        self.clear()
        self.pending.clear()
        for event in self.visible():
            self.write(self._line(event))
        filt = f" · '{self.text_filter}'" if self.text_filter else ""
        self.border_subtitle = f"≥ {self.min_level}{filt}"
