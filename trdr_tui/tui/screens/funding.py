"""Booking a deposit or withdrawal in a paper run: a prompt for the amount (the cockpit's `f`)."""

from __future__ import annotations

import math
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from trdr_tui.config import MAX_CAPITAL


def parse_amount(text: str) -> float | str:
    """The amount typed ("2500", "-1,000.50"), or why it is not one."""
    try:
        amount = float(text.replace(",", "").replace("_", "").strip())
    except ValueError:
        return f"{text.strip()!r} is not a number: type e.g. 2500 to deposit or -1000 to withdraw"
    if not math.isfinite(amount) or amount == 0.0 or abs(amount) > MAX_CAPITAL:
        return f"give a non-zero amount up to {MAX_CAPITAL:,.0f}"
    return amount


class FundingScreen(ModalScreen[float | None]):
    """Dismisses with the amount (quote currency; > 0 deposit, < 0 withdrawal), or None on escape.
    A typo is explained under the field and the dialog stays open."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="funding.cancel")]

    def __init__(self, quote: str) -> None:
        super().__init__(id="funding")
        self.quote = quote

    def compose(self) -> ComposeResult:
        with Vertical(id="funding-box", classes="dialog"):
            yield Static(f"[b]Deposit or withdraw[/b] {self.quote}")
            yield Static("A positive amount deposits, a negative one withdraws; the grid is re-sized. "
                         "A withdrawal above the free cash is refused: no position is sold for it.")
            yield Input(placeholder="e.g. 2500 or -1000", id="funding-input")
            yield Static("", id="funding-error")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        amount = parse_amount(event.value)
        if isinstance(amount, str):
            self.query_one("#funding-error", Static).update(f"[$error]{amount}[/]")
            return
        self.dismiss(amount)

    def action_cancel(self) -> None:
        self.dismiss(None)
