"""`trdr sessions`: list, show and compare stored backtest sessions."""

from __future__ import annotations

import argparse

from trdr_tui.commands import CliContext
from trdr_tui.core.errors import NotAvailable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sessions", help="list, show and compare stored backtest sessions", description="list, show and compare stored backtest sessions")
    p.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    raise NotAvailable("'trdr sessions' is not yet available in this version")
