"""Switching mode: pick paper, live or backtest; going live needs credentials and typed confirmation."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from trdr_tui.core.types import Mode

CONFIRM_WORD = "live"


class ModeScreen(ModalScreen[Mode | None]):
    """Choose a mode; dismisses with it (or None on escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="mode.cancel")]

    def __init__(self, current: Mode) -> None:
        super().__init__(id="mode")
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="mode-box", classes="dialog"):
            yield Static(f"[b]Switch mode[/b] · now [b]{self.current.value}[/b]")
            yield OptionList(
                Option("paper    simulated fills on live or replayed data", id=Mode.PAPER.value),
                Option("live     real orders with real money on Coinbase", id=Mode.LIVE.value),
                Option("backtest run a backtest on stored data", id=Mode.BACKTEST.value),
                id="mode-options",
            )

    def on_mount(self) -> None:
        """The current mode is pre-selected: enter on it keeps the mode (never a step towards live)."""
        options = self.query_one(OptionList)
        options.highlighted = options.get_option_index(self.current.value)

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        assert event.option.id is not None
        chosen = Mode(event.option.id)
        self.dismiss(None if chosen == self.current else chosen)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmLiveScreen(ModalScreen[bool]):
    """Going live is explicit: the user types the word `live` and presses enter; anything else cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="confirm.cancel")]

    def __init__(self, symbol: str, capital: float) -> None:
        super().__init__(id="confirm-live")
        self.symbol = symbol
        self.capital = capital

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="dialog"):
            yield Static("[b $error]Trade real money?[/]")
            yield Static(f"trdr will place real orders for {self.symbol} on Coinbase with up to "
                         f"{self.capital:,.2f} of capital. The paper engine stops first (checkpoint written).")
            yield Static(f"Type [b]{CONFIRM_WORD}[/b] and press enter to confirm; esc cancels.")
            yield Input(placeholder=CONFIRM_WORD, id="confirm-input")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip().lower() == CONFIRM_WORD)

    def action_cancel(self) -> None:
        self.dismiss(False)


class LogFilterScreen(ModalScreen[str | None]):
    """A one-line prompt for the log pane's text filter (empty clears it)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="filter.cancel")]

    def __init__(self, current: str) -> None:
        super().__init__(id="log-filter")
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="filter-box", classes="dialog"):
            yield Static("Show log lines containing (empty shows all):")
            yield Input(self.current, id="filter-input")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
