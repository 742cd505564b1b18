"""`trdr sessions`: list, show and compare stored backtest sessions."""

from __future__ import annotations

import argparse
import json
from typing import Any

from trdr_tui.commands.anywhere import path_arg
from trdr_tui.commands.context import CliContext


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sessions", help="list, show and compare stored backtest sessions",
                       description="Every 'trdr backtest' run is stored as a session: its parameters, data "
                                   "range, status and results. Ids may be shortened to a unique prefix.")
    ss = p.add_subparsers(dest="sessions_cmd", metavar="ACTION")
    ls = ss.add_parser("list", help="the newest sessions first")
    ls.add_argument("--limit", type=int, default=30)
    ls.add_argument("--status", choices=["running", "completed", "failed"])
    ls.add_argument("--json", action="store_true", help="print a JSON array")
    ls.set_defaults(handler=list_sessions)
    sh = ss.add_parser("show", help="one session's parameters and full results")
    sh.add_argument("id")
    sh.add_argument("--json", action="store_true", help="print the stored session and results as JSON")
    sh.add_argument("--report", type=path_arg, metavar="FILE.html|FILE.md", help="write the session's report")
    sh.set_defaults(handler=show)
    cp = ss.add_parser("compare", help="sessions side by side")
    cp.add_argument("ids", nargs="+", metavar="ID")
    cp.add_argument("--json", action="store_true", help="print the compared values as JSON")
    cp.set_defaults(handler=compare)

    def show_help(ctx: CliContext) -> int:
        p.print_help()
        return 2

    p.set_defaults(handler=show_help)


def _repo(ctx: CliContext) -> Any:
    from trdr_tui.store.sessions import SessionRepository

    return SessionRepository(ctx.store)


def _when(ns: int | None) -> str:
    import numpy as np

    if ns is None:
        return "?"
    return str(np.datetime64(int(ns), "ns").astype("datetime64[m]")).replace("T", " ")


def list_sessions(ctx: CliContext) -> int:
    from rich.table import Table

    from trdr_tui.commands.output import command_console


    repo = _repo(ctx)
    sessions = repo.list(limit=ctx.args.limit, status=ctx.args.status)
    rows = []
    for s in sessions:
        r = repo.results(s.id) or {}
        rows.append({"id": s.id, "name": s.name, "created_at": _when(s.created_at), "status": s.status,
                     "symbol": s.symbol, "timeframe": s.timeframe, "start": _when(s.start_ts), "end": _when(s.end_ts),
                     "total_return": r.get("total_return"), "sharpe": r.get("sharpe"),
                     "max_drawdown": r.get("max_drawdown"),
                     "buy_and_hold_return": ((r.get("baselines") or {}).get("buy_and_hold") or {}).get("total_return"),
                     "parameter_version_id": s.parameter_version_id})
    if ctx.args.json:
        print(json.dumps(rows, allow_nan=False))
        return 0
    if not rows:
        status = ctx.args.status
        print(f"no {status} sessions (`trdr sessions list` shows every status)" if status
              else "no sessions yet: run 'trdr backtest'")
        return 0
    from rich import box

    table = Table(title="backtest sessions", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), show_edge=False,
                  collapse_padding=True)
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold", min_width=8)
    table.add_column("bars (UTC)", no_wrap=True)
    for col in ("return", "Sharpe", "max DD", "B&H"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        name = r["name"] if r["status"] == "completed" else f"{r['name']} ({r['status']})"
        table.add_row(r["id"], name, f"{r['start'][2:10]}→{r['end'][2:10]}", _pct1(r["total_return"]),
                      f"{r['sharpe']:.2f}" if r["sharpe"] is not None else "—", _pct1(r["max_drawdown"]),
                      _pct1(r["buy_and_hold_return"]))
    command_console().print(table)
    return 0


def _pct1(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def show(ctx: CliContext) -> int:
    import msgspec

    from trdr_tui.backtest.report import markdown_report, write_report

    repo = _repo(ctx)
    session = repo.get(ctx.args.id)
    results = repo.results(session.id)
    if ctx.args.report is not None:
        if results is None:
            from trdr_tui.core.errors import ConfigError

            raise ConfigError(f"session {session.id} has no results ({session.status})",
                              hint="only completed sessions have a report")
        write_report(ctx.args.report, results, repo.curves(session.id))
    if ctx.args.json:
        print(json.dumps({"session": msgspec.to_builtins(session), "results": results}, allow_nan=False))
        return 0
    from rich.markdown import Markdown

    from trdr_tui.commands.output import command_console

    console = command_console()
    console.print(f"[bold]{session.name}[/bold]  {session.id}  {session.status}  created {_when(session.created_at)}")
    if session.description:
        console.print(session.description)
    if session.parameter_version_id:
        console.print(f"parameter version: {session.parameter_version_id}")
    if session.error:
        console.print(f"[red]error:[/red] {session.error}")
    if results:
        console.print(Markdown(markdown_report(results)))
    params = ", ".join(f"{k}={v}" for k, v in session.parameters.items())
    console.print(f"[dim]parameters: {params}[/dim]")
    if ctx.args.report is not None:
        console.print(f"report written to {ctx.args.report}")
    return 0


def compare(ctx: CliContext) -> int:
    from trdr_tui.backtest.report import fmt
    from trdr_tui.backtest.sessions import COMPARE_ROWS, compare_values
    from trdr_tui.backtest.sessions import compare as compare_table

    repo = _repo(ctx)
    if ctx.args.json:
        out = []
        for ident in ctx.args.ids:
            s = repo.get(ident)
            vals = compare_values(s, repo.results(s.id))
            out.append({"id": s.id, **{k: vals.get(k) for _, k, _ in COMPARE_ROWS}})
        print(json.dumps(out, allow_nan=False))
        return 0
    from rich.table import Table

    from trdr_tui.commands.output import command_console

    header, rows = compare_table(repo, ctx.args.ids, fmt)
    table = Table(title="sessions compared")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*r)
    command_console().print(table)
    return 0
