"""`trdr status`: what the trdr instance running on this database is doing (asked through its API)."""

from __future__ import annotations

import argparse
import json

from trdr_tui.commands.context import CliContext
from trdr_tui.core.errors import StopError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="show the running trdr instance on this database (mode, P&L, orders)",
                       description="Ask the trdr instance running on this database (headless or cockpit) for "
                                   "its state through its control API. Exits 1 when none is running.")
    p.add_argument("--json", action="store_true", help="print the status and performance as JSON")
    p.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    from trdr_tui.api.host import find_instance
    from trdr_tui.commands.remote import api_call

    inst = find_instance(ctx.db_path)
    if inst is None:
        raise StopError(f"no trdr instance is running on {ctx.db_path}",
                        hint="start one with trdr --headless (it serves the control API unless --no-api)")
    status = api_call(inst, "GET", "/api/status")
    perf = api_call(inst, "GET", "/api/performance")
    if ctx.args.json:
        print(json.dumps({"instance": {"url": inst.url, "pid": inst.pid}, "status": status, "performance": perf},
                         indent=2))
        return 0
    state = "stopped" if status["stopped"] else "paused" if status["paused"] else "running"
    print(f"trdr pid {inst.pid} · {status['mode']} {status['symbol']} · {state} · API {inst.url}")
    print(f"bars {status['bars']} · price {status['last_price']:,.2f} · equity {perf['equity']:,.2f} "
          f"({perf['total_return']:+.2%}) · drawdown {perf['drawdown']:.2%} (max {perf['max_drawdown']:.2%})")
    win = "n/a" if perf["win_rate"] is None else f"{perf['win_rate']:.0%}"
    print(f"position {status['position']:g} · open orders {status['open_orders']} · fills {status['fills']} · "
          f"round trips {perf['trades']} (win rate {win}) · fees {perf['fees']:,.2f}")
    return 0
