"""`trdr backtest`: run a backtest through the engine on stored or file data."""

from __future__ import annotations

import argparse

from trdr_tui.commands import CliContext
from trdr_tui.core.errors import NotAvailable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("backtest", help="run a backtest through the engine on stored or file data", description="run a backtest through the engine on stored or file data")
    p.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    raise NotAvailable("'trdr backtest' is not yet available in this version")
