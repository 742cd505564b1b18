"""`trdr account`: check Coinbase credentials; show balances, fee tier and trading rules."""

from __future__ import annotations

import argparse

from trdr_tui.commands import CliContext
from trdr_tui.core.errors import NotAvailable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("account", help="check Coinbase credentials; show balances, fee tier and trading rules", description="check Coinbase credentials; show balances, fee tier and trading rules")
    p.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    raise NotAvailable("'trdr account' is not yet available in this version")
