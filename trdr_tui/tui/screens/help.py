"""The help screen: every binding with the key it is on now (after the user's remapping)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable


class HelpScreen(ModalScreen[None]):
    """Lists (key, action, binding id); any of the listed keys closes it again."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_help", "Close", id="help.close"),
        Binding("question_mark", "dismiss_help", "Close", show=False, id="help.close_alt"),
        Binding("q", "dismiss_help", "Close", show=False, id="help.close_q"),
    ]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__(id="help")
        self.rows = rows

    def compose(self) -> ComposeResult:
        # title and foot on the border: every row fits an 80×24 terminal (the table scrolls beyond that)
        box = Vertical(id="help-box")
        box.border_title = "[b]trdr keys[/b] · remap any in [b]\\[tui.keys][/b]: binding_id = \"key\""
        box.border_subtitle = "esc closes · ctrl+p searches every action"
        with box:
            yield DataTable(id="help-table", cursor_type="none", zebra_stripes=True, show_cursor=False)

    def on_mount(self) -> None:
        table: DataTable[Text] = self.query_one(DataTable)
        table.add_columns("key", "does", "binding id")
        for key, description, binding_id in self.rows:
            table.add_row(Text(key, style="bold"), Text(description), Text(binding_id, style="italic"))

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
