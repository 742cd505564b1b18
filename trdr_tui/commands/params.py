"""`trdr params`: save, load, branch and merge parameter versions."""

from __future__ import annotations

import argparse

from trdr_tui.commands import CliContext
from trdr_tui.core.errors import NotAvailable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("params", help="save, load, branch and merge parameter versions", description="save, load, branch and merge parameter versions")
    p.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    raise NotAvailable("'trdr params' is not yet available in this version")
