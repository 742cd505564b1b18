"""`trdr agents`: list available agents (built-in and plugins) with version, state and weight."""

from __future__ import annotations

import argparse

from trdr_tui.commands import CliContext
from trdr_tui.core.errors import NotAvailable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("agents", help="list available agents (built-in and plugins) with version, state and weight", description="list available agents (built-in and plugins) with version, state and weight")
    p.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    raise NotAvailable("'trdr agents' is not yet available in this version")
