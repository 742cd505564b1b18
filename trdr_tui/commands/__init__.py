"""CLI subcommands. Each module in COMMANDS exposes `register(subparsers)`; handlers take a CliContext
(`commands/context.py`). Handlers too heavy to import on every `trdr` call live in their own modules,
imported when they run: `commands/run.py` (no subcommand: the cockpit or a headless run) and
`commands/backfill.py` (`trdr data backfill`).
"""

from __future__ import annotations

from types import ModuleType

from trdr_tui.commands import (
    account,
    agents,
    attach,
    backtest,
    data,
    inspect,
    optimize,
    params,
    serve,
    sessions,
    status,
    train,
)
from trdr_tui.commands.context import CliContext

COMMANDS: list[ModuleType] = [data, backtest, optimize, agents, sessions, params, account, status, attach, inspect,
                              train, serve]

__all__ = ["COMMANDS", "CliContext"]
