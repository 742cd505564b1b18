"""`trdr agents`: list available agents (built-in and plugins) with version, state and weight."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trdr_tui.commands.context import CliContext


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("agents", help="list available agents (built-in and plugins) with version, state and weight",
                       description="List every available agent — the built-in panel and plugins from the "
                                   "'trdr.agents' entry-point group — with its version, whether [agents] enables "
                                   "it and its weight. Plugins that fail to load are listed with the reason.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run)


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
    from rich.console import Console
    from rich.table import Table

    table = Table(title="trdr agents", title_justify="left")
    for col in ("id", "name", "version", "source", "enabled", "weight"):
        table.add_column(col, justify="right" if col == "weight" else "left")
    for r in rows:
        weight = f"{r['weight']:g}"
        if r["saved_weight"] is not None:
            weight += f" (saved {r['saved_weight']:g})"
        table.add_row(str(r["id"]), str(r["name"]), str(r["version"]), str(r["source"]),
                      "yes" if r["enabled"] else "no", weight)
    Console(width=120).print(table)
