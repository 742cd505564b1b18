"""`trdr inspect`: the debug inspector (PRD §6.2) of a running trdr, asked through its control API.

    trdr inspect decisions [--limit N]     recent actionable decisions: action, confidence, each agent's vote
    trdr inspect order ID                  an order's whole trace: creation, status changes, fills, in time order
    trdr inspect agent [ID]                an agent's profile: calls scored, success rate, edge, failures, time per call
    trdr inspect agent [ID] --memory       ... and the memory of its next calls (`--calls N`, default 20),
                                           measured with tracemalloc while sampling (api/profiling.py)
    trdr inspect checkpoint N              a stored checkpoint (offline, from --db): ledger, open orders, state

The instance is the one running on this database, or `--url` (with the token as for `trdr attach`).
`--json` prints the API's answer as it is.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from typing import Any

from trdr_tui.commands.anywhere import path_arg
from trdr_tui.commands.context import CliContext
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.timefmt import iso_utc


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("inspect", help="debug a running trdr: decisions, an order's trace, an agent's profile",
                       description="Ask a running trdr (this database's, or --url) for its agents' recent "
                                   "decisions, an order's whole trace, or an agent's profile.")
    p.add_argument("--url", help="the bot's API, e.g. http://127.0.0.1:8765 (default: the instance on this database)")
    p.add_argument("--token-file", type=path_arg, help="the bot's API token file")
    p.add_argument("--json", action="store_true", help="print the API's JSON answer")
    what = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    d = what.add_parser("decisions", help="recent actionable decisions with every agent's vote")
    d.add_argument("--limit", type=int, default=20, help="how many, newest first (1-1000, default 20)")
    o = what.add_parser("order", help="an order's creation, status changes and fills in time order")
    o.add_argument("order_id", help="the order id (see the cockpit's orders pane or GET /api/trades)")
    a = what.add_parser("agent", help="an agent's profile (all agents without ID)")
    a.add_argument("agent_id", nargs="?", help="the agent id (see trdr agents)")
    a.add_argument("--memory", action="store_true",
                   help="measure the memory of the agents' next calls (waits for them, at most --wait seconds)")
    a.add_argument("--calls", type=int, default=20, help="calls to measure with --memory (1-1000, default 20)")
    a.add_argument("--wait", type=float, default=60.0,
                   help="seconds to wait for the sampled calls (default 60; one call per bar)")
    c = what.add_parser("checkpoint", help="a stored checkpoint (read from --db; no running trdr needed)")
    c.add_argument("checkpoint_id", type=int, help="its number, as an E007 stop names it")
    for each in (d, o, a, c):  # `trdr inspect checkpoint 6 --json` as well as `trdr inspect --json checkpoint 6`
        each.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the API's JSON answer")
    p.set_defaults(handler=run)


@dataclass
class _Target:
    url: str
    secret: str

    def describe(self) -> str:
        return f"trdr at {self.url}"

    def token(self) -> str:
        return self.secret


def run(ctx: CliContext) -> int:
    from trdr_tui.commands.attach import resolve
    from trdr_tui.commands.remote import api_call

    args = ctx.args
    if args.what == "checkpoint":
        return _checkpoint(ctx)
    target = _Target(*resolve(ctx))
    if args.what == "decisions":
        if not 1 <= args.limit <= 1000:
            raise ConfigError(f"--limit must be in [1, 1000], got {args.limit}")
        data = api_call(target, "GET", f"/api/decisions?limit={args.limit}")  # type: ignore[arg-type]
        show = print_decisions
    elif args.what == "order":
        from urllib.parse import quote

        data = api_call(target, "GET", f"/api/orders/{quote(args.order_id, safe='')}/trace")  # type: ignore[arg-type]
        show = print_trace
    else:
        data = agent_profiles(target, args)
        if args.agent_id is not None:
            rows = [a for a in data["agents"] if a["id"] == args.agent_id]
            if not rows:
                raise ConfigError(f"no agent '{args.agent_id}' in the running panel",
                                  hint=f"agents: {', '.join(a['id'] for a in data['agents'])}")
            data = {"agents": rows}
        show = print_agents
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        show(data)
    return 0


def _checkpoint(ctx: CliContext) -> int:
    """A checkpoint as stored: its run, time, type and mode, then the state (ledger, open orders, policy)."""
    from trdr_tui.store.orders import checkpoint_by_id

    found = checkpoint_by_id(ctx.store, ctx.args.checkpoint_id)
    if found is None:
        raise ConfigError(f"no checkpoint #{ctx.args.checkpoint_id} in {ctx.db_path}",
                          hint="an E007 stop names the run's last good checkpoint; check --db")
    if ctx.args.json:
        print(json.dumps(found, indent=2))
        return 0
    state = found["state"]
    pf = state.get("portfolio") or {}
    print(f"checkpoint #{found['id']} of run {found['run_id']} ({found['mode']}, {found['type']}) at "
          f"{iso_utc(found['ts'])}: {state.get('bars', 0)} bars, last price {_num(state.get('last_price'), ',.2f')}")
    print(f"  ledger: cash {_num(pf.get('cash'), '')}, position {_num(pf.get('position'), '')}")
    for item in state.get("open_orders") or []:
        o = item["order"]
        print(f"  open: {o['id']} {o['side']} {o['type']} {o['size']} @ {o.get('price')} {o['status']}")
    print("  (--json prints the whole state)")
    return 0


def agent_profiles(target: _Target, args: argparse.Namespace) -> dict[str, Any]:
    """GET /api/agents/performance; with --memory, first POST /api/agents/profile and poll until the
    sampled calls are done or --wait has passed (what was measured by then is shown)."""
    from trdr_tui.commands.remote import api_call

    if not args.memory:
        return api_call(target, "GET", "/api/agents/performance")  # type: ignore[arg-type]
    if not 1 <= args.calls <= 1000 or not 0 <= args.wait <= 3600:
        raise ConfigError("--calls must be in [1, 1000] and --wait in [0, 3600] seconds")
    body = {"calls": args.calls, "agents": None if args.agent_id is None else [args.agent_id]}
    data: dict[str, Any] = api_call(target, "POST", "/api/agents/profile", body)  # type: ignore[arg-type]
    deadline = time.monotonic() + args.wait
    while any(a["mem_pending"] for a in data["agents"]) and time.monotonic() < deadline:
        time.sleep(0.2)
        data = api_call(target, "GET", "/api/agents/performance")  # type: ignore[arg-type]
    return data


def _num(x: Any, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def print_decisions(data: dict[str, Any]) -> None:
    rows = data["decisions"]
    if not rows:
        print("no actionable decision yet")
    for d in rows:
        print(f"{iso_utc(d['ts'])}  {d['action']:<10} confidence {d['confidence']:.0%}  trail {d['trail_distance']:.2%}")
        for s in d.get("signals", []):
            w = d.get("weights", {}).get(s["agent_id"])
            print(f"    {s['agent_id']:<18} {s['action']:<10} {s['confidence']:>4.0%}  w {_num(w, '.2f'):>5}  "
                  f"{s.get('reasoning', '')}")  # whole: the terminal wraps, a pipe gets every word
        if d.get("reasoning"):
            print(f"    → {d['reasoning']}")


def print_trace(data: dict[str, Any]) -> None:
    o = data["order"]
    print(f"order {o['id']} ({o['client_order_id']}): {o['side']} {o['type']} {o['size']:g} "
          f"@ {_num(o['price'], ',.2f')} — {o['status']}, filled {o['filled_size']:g} "
          f"avg {o['avg_fill_price']:,.2f}, fees {o['fees']:,.2f}")
    start = data["timeline"][0]["ts"] if data["timeline"] else 0
    for r in data["timeline"]:
        after = (r["ts"] - start) / 1e9
        if r["kind"] == "created":
            what = f"created {r['side']} {r['type']} {r['size']:g} @ {_num(r['price'], ',.2f')}"
        elif r["kind"] == "status":
            what = f"{r['from']} → {r['to']}" + (f" ({r['reason']})" if r.get("reason") else "")
        else:
            what = f"fill {r['size']:g} @ {r['price']:,.2f} fee {r['fee']:,.4f} {r['liquidity'].lower()}"
        print(f"  {iso_utc(r['ts'], fraction=True)}  +{after:>9.1f}s  {what}")


def print_agents(data: dict[str, Any]) -> None:
    """One row per agent; the memory columns (KiB) once calls were sampled (`--memory`)."""
    print(f"{'agent':<18} {'weight':>6} {'scored':>7} {'success':>8} {'edge':>9} {'failures':>8} "
          f"{'mean ms':>8} {'last ms':>8} {'peak KiB':>9} {'max KiB':>9} {'kept KiB':>9} {'sampled':>7}")
    for a in data["agents"]:
        print(f"{a['id']:<18} {a['weight']:>6.2f} {a['scored_calls']:>7} {_num(a['accuracy'], '.1%'):>8} "
              f"{_num(a['edge'], '+.4%'):>9} {a['failures']:>8} {_num(a['mean_ms'], '.3f'):>8} "
              f"{_num(a['last_ms'], '.3f'):>8} {_num(a.get('mem_peak_kib'), ',.1f'):>9} "
              f"{_num(a.get('mem_peak_max_kib'), ',.1f'):>9} {_num(a.get('mem_retained_kib'), ',.1f'):>9} "
              f"{a.get('mem_samples', 0):>7}")
