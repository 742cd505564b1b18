"""`trdr params`: save, load, branch and merge parameter versions."""

from __future__ import annotations

import argparse
import json
from typing import Any

from trdr_tui.commands.context import CliContext

DESCRIPTION = """\
Parameter versions are named, tagged, immutable sets of strategy settings (grid, trailing, sizing, risk,
agents, execution, capital) with parent links, like commits. Load one into a backtest with
'trdr backtest --params NAME|ID|TAG'; that run's result is attached to the version.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("params", help="save, load, branch and merge parameter versions", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ps = p.add_subparsers(dest="params_cmd", metavar="ACTION")

    ls = ps.add_parser("list", help="versions, newest first")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=list_versions)

    sh = ps.add_parser("show", help="one version (by id, name or tag)")
    sh.add_argument("ident", metavar="NAME|ID|TAG")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(handler=show)

    sv = ps.add_parser("save", help="save the current config (plus --set overrides) as a new version")
    sv.add_argument("name")
    sv.add_argument("--tag", dest="tags", action="append", default=[], help="tag (repeatable)")
    sv.add_argument("--notes", help="what this version is for")
    sv.add_argument("--set", dest="set_items", action="append", metavar="KEY=VALUE", help="override (repeatable)")
    sv.add_argument("--from-session", metavar="ID", help="save a session's parameters and attach its result")
    sv.add_argument("--json", action="store_true")
    sv.set_defaults(handler=save)

    br = ps.add_parser("branch", help="a new version from an existing one, with changes")
    br.add_argument("base", metavar="BASE")
    br.add_argument("name")
    br.add_argument("--set", dest="set_items", action="append", metavar="KEY=VALUE", help="change (repeatable)")
    br.add_argument("--notes")
    br.add_argument("--json", action="store_true")
    br.set_defaults(handler=branch)

    mg = ps.add_parser("merge", help="merge BRANCH into TARGET as a new version")
    mg.add_argument("branch")
    mg.add_argument("target")
    mg.add_argument("--strategy", choices=["performance", "average", "best"], default="performance",
                    help="performance: numbers weighted by attached results; average: plain mean; "
                         "best: the better version's whole set (default: performance)")
    mg.add_argument("--name", help="name of the merged version (default TARGET+BRANCH)")
    mg.add_argument("--json", action="store_true")
    mg.set_defaults(handler=merge)

    df = ps.add_parser("diff", help="the keys that differ between two versions")
    df.add_argument("a")
    df.add_argument("b")
    df.add_argument("--json", action="store_true")
    df.set_defaults(handler=diff)

    tg = ps.add_parser("tag", help="add tags to a version")
    tg.add_argument("ident")
    tg.add_argument("tags", nargs="+")
    tg.set_defaults(handler=tag)

    at = ps.add_parser("attach", help="attach a backtest session's result to a version")
    at.add_argument("ident")
    at.add_argument("session")
    at.set_defaults(handler=attach)

    tu = ps.add_parser("tuning", help="self-tuning of paper/live: the daily loop's verdicts and the adaptive values")
    tu.add_argument("--limit", type=int, default=20, help="daily verdicts shown (default 20)")
    tu.add_argument("--json", action="store_true")
    tu.set_defaults(handler=tuning)

    def show_help(ctx: CliContext) -> int:
        p.print_help()
        return 2

    p.set_defaults(handler=show_help)


def _versions(ctx: CliContext) -> Any:
    from trdr_tui.backtest.params import ParameterVersions
    from trdr_tui.store.sessions import ParameterRepository, SessionRepository

    return ParameterVersions(ParameterRepository(ctx.store), SessionRepository(ctx.store))


def _now() -> int:
    from trdr_tui.core.clock import WallClock

    return WallClock().now_ns()


def _dump(v: Any) -> dict[str, Any]:
    import msgspec

    out: dict[str, Any] = msgspec.to_builtins(v)
    return out


def _print_version(ctx: CliContext, v: Any, verb: str = "") -> int:
    if getattr(ctx.args, "json", False):
        print(json.dumps(_dump(v), allow_nan=False))
        return 0
    from rich.table import Table

    from trdr_tui.commands.output import command_console

    console = command_console()
    head = f"{verb} " if verb else ""
    console.print(f"{head}[bold]{v.name}[/bold]  {v.id}  tags: {', '.join(v.tags) or '—'}  "
                  f"parents: {', '.join(v.parent_ids) or '—'}")
    if v.notes:
        console.print(v.notes)
    if v.session_id:
        console.print(f"attached result: session {v.session_id}")
    table = Table(show_header=True)
    table.add_column("parameter")
    table.add_column("value", justify="right")
    for k, val in v.parameters.items():
        table.add_row(k, str(val))
    console.print(table)
    return 0


def list_versions(ctx: CliContext) -> int:
    pv = _versions(ctx)
    versions = pv.params.list()
    if ctx.args.json:
        print(json.dumps([_dump(v) for v in versions], allow_nan=False))
        return 0
    if not versions:
        print("no parameter versions yet: 'trdr params save NAME'")
        return 0
    from rich import box
    from rich.table import Table

    from trdr_tui.backtest.report import fmt
    from trdr_tui.commands.output import command_console

    table = Table(title="parameter versions", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), show_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold", min_width=8)
    table.add_column("tags", overflow="fold")
    table.add_column("parents", overflow="fold")
    table.add_column("result", no_wrap=True)
    table.add_column("return", justify="right", no_wrap=True)
    table.add_column("Sharpe", justify="right", no_wrap=True)
    for v in versions:
        score = pv.score(v)
        sharpe = score["sharpe"] if score else None
        table.add_row(v.id, v.name, ", ".join(v.tags), ", ".join(v.parent_ids), v.session_id or "",
                      fmt(score["total_return"], "pct") if score else "",
                      f"{sharpe:.2f}" if sharpe is not None and sharpe != float("-inf") else "")
    command_console().print(table)
    return 0


def show(ctx: CliContext) -> int:
    return _print_version(ctx, _versions(ctx).load(ctx.args.ident))


def save(ctx: CliContext) -> int:
    from trdr_tui.backtest.params import parse_assignments, strategy_parameters
    from trdr_tui.config import load_settings

    pv = _versions(ctx)
    session_id = None
    if ctx.args.from_session:
        session = pv.sessions.get(ctx.args.from_session)
        params = {k: v for k, v in session.parameters.items() if k != "preset"}
        params.update(parse_assignments(ctx.args.set_items))
        session_id = session.id if session.status == "completed" else None
    else:
        settings = load_settings(ctx.args.config, overrides=parse_assignments(ctx.args.set_items) or None)
        params = strategy_parameters(settings)
    v = pv.save(ctx.args.name, params, now_ns=_now(), tags=ctx.args.tags, notes=ctx.args.notes,
                session_id=session_id)
    return _print_version(ctx, v, "saved")


def branch(ctx: CliContext) -> int:
    from trdr_tui.backtest.params import parse_assignments

    v = _versions(ctx).branch(ctx.args.base, ctx.args.name, parse_assignments(ctx.args.set_items), now_ns=_now(),
                              notes=ctx.args.notes)
    return _print_version(ctx, v, "branched")


def merge(ctx: CliContext) -> int:
    v = _versions(ctx).merge(ctx.args.branch, ctx.args.target, ctx.args.strategy, now_ns=_now(), name=ctx.args.name)
    return _print_version(ctx, v, "merged")


def diff(ctx: CliContext) -> int:
    from trdr_tui.backtest.params import diff as diff_params

    pv = _versions(ctx)
    a, b = pv.load(ctx.args.a), pv.load(ctx.args.b)
    d = diff_params(a.parameters, b.parameters)
    if ctx.args.json:
        print(json.dumps({k: {"a": x, "b": y} for k, (x, y) in d.items()}, allow_nan=False))
        return 0
    if not d:
        print(f"{a.name} and {b.name} have the same parameters")
        return 0
    from rich.table import Table

    from trdr_tui.commands.output import command_console

    table = Table(title=f"{a.name} ({a.id}) vs {b.name} ({b.id})")
    for col in ("parameter", a.name, b.name):
        table.add_column(col)
    for k, (x, y) in d.items():
        table.add_row(k, str(x), str(y))
    command_console().print(table)
    return 0


def tag(ctx: CliContext) -> int:
    pv = _versions(ctx)
    v = pv.params.add_tags(pv.load(ctx.args.ident).id, ctx.args.tags)
    print(f"{v.name} ({v.id}) tags: {', '.join(v.tags)}")
    return 0


def attach(ctx: CliContext) -> int:
    pv = _versions(ctx)
    v = pv.load(ctx.args.ident)
    session = pv.sessions.get(ctx.args.session)
    if session.status != "completed":
        from trdr_tui.core.errors import ConfigError

        raise ConfigError(f"session {session.id} is {session.status}", hint="attach a completed session")
    pv.params.attach(v.id, session.id)
    print(f"attached session {session.id} to {v.name} ({v.id})")
    return 0


def tuning(ctx: CliContext) -> int:
    """The daily loop's verdicts (newest first) and the adaptive values per symbol (docs/tuning.md)."""
    import msgspec

    from trdr_tui.store.tuning import TuningRepository

    repo = TuningRepository(ctx.store)
    changes = repo.changes(max(ctx.args.limit, 0))
    values = repo.adaptive()
    if ctx.args.json:
        print(json.dumps({"changes": msgspec.to_builtins(changes), "adaptive": msgspec.to_builtins(values)},
                         allow_nan=False))
        return 0
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from trdr_tui.core.timefmt import minute_utc

    console = Console()
    if not changes and not values:
        console.print("no self-tuning yet: it runs in paper and live sessions ([tuning] in the config)",
                      markup=False)
        return 0
    ch = Table(title="daily loop (newest first)", box=box.SIMPLE_HEAD, show_edge=False)
    for col in ("time", "symbol", "adopted", "version", "changes", "reason"):
        ch.add_column(col, overflow="fold")
    for c in changes:
        moved = ", ".join(f"{k} {a:.4g}→{b:.4g}" for k, (a, b) in c.changes.items())
        ch.add_row(minute_utc(c.ts), c.symbol or "", "yes" if c.adopted else "no", c.to_version or "", moved, c.reason)
    av = Table(title="adaptive values", box=box.SIMPLE_HEAD, show_edge=False)
    for col in ("symbol", "parameter", "value", "bounds", "confidence", "outcomes", "last adjustment"):
        av.add_column(col, overflow="fold")
    for v in values:
        last = v.history[-1] if v.history else None
        av.add_row(v.symbol, v.name, f"{v.value:.4g}", f"{v.low:.4g} … {v.high:.4g}", f"{v.confidence:.2f}",
                   f"{len(v.outcomes)} ({sum(v.outcomes)} good)",
                   f"{minute_utc(last.ts)} {last.old:.4g}→{last.new:.4g}: {last.reason}" if last else "—")
    console.print(ch)
    console.print(av)
    return 0
