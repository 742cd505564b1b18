"""`trdr agents`: list available agents (built-in and plugins) with version, state and weight;
`trdr agents ablate`: each agent's measured contribution to the panel's backtest."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trdr_tui.commands.anywhere import path_arg
from trdr_tui.commands.context import CliContext


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("agents", help="list available agents (built-in and plugins) with version, state and weight",
                       description="List every available agent — the built-in panel and plugins from the "
                                   "'trdr.agents' entry-point group — with its version, whether [agents] enables "
                                   "it and its weight. Plugins that fail to load are listed with the reason.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run)
    actions = p.add_subparsers(dest="agents_action", metavar="ACTION")
    ab = actions.add_parser(
        "ablate", help="backtest the panel with each agent removed (and each added alone to the core panel)",
        description="Run the same backtest for the full panel, the panel without each agent, the core panel, "
                    "and the core panel plus each other agent; print each agent's contribution (return, Sharpe, "
                    "max drawdown, fills, fees) next to the full panel. Works for any registered agent id.")
    ab.add_argument("--data", dest="ab_data", type=path_arg, metavar="FILE", required=True,
                    help="candle file (CSV or Coinbase JSON)")
    ab.add_argument("--start", help="first bar, UTC (YYYY-MM-DD[THH:MM]); inclusive")
    ab.add_argument("--end", help="end, UTC (YYYY-MM-DD[THH:MM]); exclusive")
    ab.add_argument("--agents", metavar="ID[,ID]",
                    help="the full panel (default: every registered agent that needs no paid service)")
    ab.add_argument("--json", action="store_true", help="print one JSON object")
    ab.set_defaults(handler=run_ablate)


def run(ctx: CliContext) -> int:
    from trdr_tui.agents.registry import AgentRegistry
    from trdr_tui.store.decisions import load_weights

    settings = ctx.settings
    registry = AgentRegistry()
    enabled = set(settings.agents.enabled)
    saved: dict[str, float] = {}
    if Path(ctx.db_path).expanduser().is_file():  # only read weights that exist; never create a DB here
        from trdr_tui.store import Store

        try:
            with Store(ctx.db_path, read_only=True) as store:
                saved = load_weights(store)
        except Exception:  # an old or locked database: the config weights still tell the story
            saved = {}
    rows = []
    for info in registry.available():
        rows.append({
            "id": info.id, "name": info.name, "version": info.version, "source": info.source,
            "enabled": info.id in enabled, "weight": settings.agents.weights.get(info.id, 1.0),
            "saved_weight": saved.get(info.id), "description": info.description,
        })
    failed = [{"id": e.id, "target": e.target, "error": e.error} for e in registry.errors]
    missing = [a for a in settings.agents.enabled if a not in registry.ids() and registry.failed(a) is None]
    if ctx.args.json:
        print(json.dumps({"agents": rows, "failed_plugins": failed, "unknown_enabled": missing}, indent=2))
        return 0
    _print_table(rows)
    for e in failed:
        print(f"plugin '{e['id']}' ({e['target']}) failed to load: {e['error']}")
    for a in missing:
        print(f"warning: [agents] enabled lists '{a}', which no built-in or plugin provides")
    return 0


def _print_table(rows: list[dict[str, object]]) -> None:
    from rich.table import Table

    from trdr_tui.commands.output import command_console

    table = Table(title="trdr agents", title_justify="left")
    for col in ("id", "name", "version", "source", "enabled", "weight"):
        table.add_column(col, justify="right" if col == "weight" else "left")
    for r in rows:
        weight = f"{r['weight']:g}"
        if r["saved_weight"] is not None:
            weight += f" (saved {r['saved_weight']:g})"
        table.add_row(str(r["id"]), str(r["name"]), str(r["version"]), str(r["source"]),
                      "yes" if r["enabled"] else "no", weight)
    command_console().print(table)


def run_ablate(ctx: CliContext) -> int:
    from trdr_tui.agents.registry import CORE_IDS, AgentRegistry
    from trdr_tui.agents.sources import StoredCandles
    from trdr_tui.backtest import data as bt_data
    from trdr_tui.backtest.ablation import METRICS, ablate
    from trdr_tui.config import load_settings
    from trdr_tui.core.errors import ConfigError

    args = ctx.args
    start = bt_data.parse_time(args.start, "--start")
    end = bt_data.parse_time(args.end, "--end")
    if start is not None and end is not None and end <= start:
        raise ConfigError("--end must be after --start")
    registry = AgentRegistry()
    if args.agents:
        panel = [a.strip() for a in args.agents.split(",") if a.strip()]
        for a in panel:
            if a not in registry.ids():
                raise registry.unknown(a)
    else:
        panel = [i for i in registry.ids() if not getattr(registry.create(i), "paid_service", False)]
    base = load_settings(args.config)
    candles, timeframe = bt_data.load_file(args.ab_data, symbol=base.symbol, start=start, end=end)
    settings = load_settings(args.config, overrides={"timeframe": timeframe})
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # one backtest per variant (minutes over a year of hourly bars): a bar on stderr, as optimize shows;
    # none with --json or when stderr is not a terminal
    with Progress(TextColumn("ablation"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True, disable=args.json or not sys.stderr.isatty()) as bar:
        task = bar.add_task("", total=None)

        def progress(label: str, k: int, total: int) -> None:
            bar.update(task, completed=k, total=total, description=label)

        result = ablate(settings, candles, panel=panel, core=CORE_IDS, candle_source=StoredCandles(ctx.store),
                        on_run=progress)
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=False, default=_nan_safe))
        return 0
    from rich.table import Table

    from trdr_tui.commands.output import command_console

    table = Table(title=f"agent ablation: {len(candles)} {timeframe} bars", title_justify="left")
    for col in ("run", "return", "Sharpe", "max DD", "fills", "fees"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for r in result.runs:
        v = r.metrics
        table.add_row(r.label, f"{v['total_return'] * 100:+.2f}%", f"{v['sharpe']:.2f}", f"{v['max_drawdown'] * 100:.2f}%",
                      f"{v['fills']:.0f}", f"{v['fees_paid']:,.2f}")
    command_console().print(table)
    contrib = Table(title="contribution = full − without (and core+agent − core)", title_justify="left")
    contrib.add_column("agent")
    for m in METRICS:
        contrib.add_column(m, justify="right")
    for row in result.contributions():
        for key, tag in (("contribution", ""), ("alone_with_core", " (alone)")):
            if key in row:
                c = row[key]
                contrib.add_row(row["agent"] + tag, f"{c['total_return'] * 100:+.2f} pp", f"{c['sharpe']:+.2f}",
                                f"{c['max_drawdown'] * 100:+.2f} pp", f"{c['fills']:+.0f}", f"{c['fees_paid']:+,.2f}")
    command_console().print(contrib)
    return 0


def _nan_safe(value: object) -> object:
    return None if isinstance(value, float) and value != value else str(value)
