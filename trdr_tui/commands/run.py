"""`trdr` with no command: the cockpit (TUI) or, with --headless, the engine alone."""

from __future__ import annotations

from trdr_tui.commands import CliContext
from trdr_tui.core.errors import NotAvailable


def run_app(ctx: CliContext) -> int:
    _ = ctx.settings  # validate the configuration first: a bad config is refused before anything starts
    raise NotAvailable("the trdr cockpit is not yet available in this version")
