"""`trdr data`: import candle files, list coverage, find gaps, backfill from Coinbase."""

from __future__ import annotations

import argparse

from trdr_tui.commands import CliContext
from trdr_tui.core.errors import NotAvailable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("data", help="import candle files, list coverage, find gaps, backfill",
                       description="Manage the candle store.")
    p.set_defaults(handler=lambda ctx: (p.print_help(), 2)[1])


def run(ctx: CliContext) -> int:
    raise NotAvailable("'trdr data' is not yet available in this version")
