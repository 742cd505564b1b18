"""The debug inspector (PRD §6.2, key `i`): recent decisions with each agent's vote, the trace of the
order selected in the orders pane, and the agents' profiles — the data of `trdr inspect` and the API's
`/api/decisions`, `/api/orders/{id}/trace` and `/api/agents/performance`."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from trdr_tui.core.errors import TrdrError
from trdr_tui.tui.format import pct_text, price_text, ts_text
from trdr_tui.tui.inspection import Inspection

DECISIONS = 20
PROFILE_CALLS = 20


def _num(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


class InspectorScreen(ModalScreen[None]):
    """Three tables, read once when the screen opens (`r` reads again)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="inspector.close"),
        Binding("i", "close", "Close", show=False, id="inspector.close_alt"),
        Binding("r", "reload", "Reload", id="inspector.reload"),
        Binding("p", "profile", "Profile memory", id="inspector.profile"),
    ]

    def __init__(self, source: Inspection, order_id: str | None) -> None:
        super().__init__(id="inspector")
        self.source = source
        self.order_id = order_id

    def compose(self) -> ComposeResult:
        with Vertical(id="inspector-box"):
            yield Static("[b]decisions[/b] (newest first)", classes="inspector-title")
            yield DataTable(id="inspector-decisions", cursor_type="row", zebra_stripes=True)
            yield Static("", id="inspector-order-title", classes="inspector-title")
            yield DataTable(id="inspector-trace", cursor_type="none", zebra_stripes=True)
            yield Static("[b]agents[/b]", classes="inspector-title")
            yield DataTable(id="inspector-agents", cursor_type="none", zebra_stripes=True)
            yield Static("[$text-muted]esc closes · r reloads · p measures the agents' memory over their next "
                         f"{PROFILE_CALLS} calls[/]", id="inspector-foot")

    async def on_mount(self) -> None:
        await self.action_reload()

    async def action_reload(self) -> None:
        decisions = self.query_one("#inspector-decisions", DataTable)
        decisions.clear(columns=True)
        decisions.add_columns("time", "action", "conf", "trail", "votes (agent vote conf × weight)")
        for d in await self.source.decisions(DECISIONS):
            weights = d.get("weights", {})
            votes = "  ".join(f"{s['agent_id']} {s['action']} {s['confidence']:.0%}×{_num(weights.get(s['agent_id']), '.1f')}"
                              for s in d.get("signals", []))
            decisions.add_row(ts_text(d["ts"]), Text(d["action"], style="bold"), pct_text(d["confidence"]),
                              pct_text(d["trail_distance"]), votes)
        self._show_trace(await self.source.order_trace(self.order_id) if self.order_id else None)
        agents = self.query_one("#inspector-agents", DataTable)
        agents.clear(columns=True)
        agents.add_columns("agent", "weight", "scored", "success", "edge", "failures", "mean ms", "last ms",
                           "peak KiB", "kept KiB", "sampled")
        for a in await self.source.agents():
            agents.add_row(a["id"], f"{a['weight']:.2f}", str(a["scored_calls"]), _num(a["accuracy"], ".1%"),
                           _num(a["edge"], "+.4%"), str(a["failures"]), _num(a["mean_ms"], ".3f"),
                           _num(a["last_ms"], ".3f"), _num(a.get("mem_peak_kib"), ",.1f"),
                           _num(a.get("mem_retained_kib"), ",.1f"),
                           f"{a.get('mem_samples', 0)}" + (f" (+{a['mem_pending']})" if a.get("mem_pending") else ""))

    async def action_profile(self) -> None:
        """Start measuring the agents' memory (tracemalloc over their next calls); `r` shows the figures."""
        try:
            await self.source.profile_memory(PROFILE_CALLS)
        except TrdrError as exc:
            self.notify(exc.render(), title="memory profile", severity="warning", markup=False)
            return
        self.notify(f"measuring each agent's next {PROFILE_CALLS} calls; r shows the figures", timeout=4)
        await self.action_reload()

    def _show_trace(self, trace: dict[str, Any] | None) -> None:
        title = self.query_one("#inspector-order-title", Static)
        table = self.query_one("#inspector-trace", DataTable)
        table.clear(columns=True)
        table.add_columns("time", "after", "event")
        if trace is None:
            title.update("[b]order trace[/b] — no order selected in the orders pane")
            return
        o = trace["order"]
        title.update(f"[b]order {o['id']}[/b]: {o['side']} {o['type']} {o['size']:g} @ {price_text(o['price'])} — "
                     f"{o['status']}, filled {o['filled_size']:g}, fees {o['fees']:,.2f}")
        start = trace["timeline"][0]["ts"] if trace["timeline"] else 0
        for r in trace["timeline"]:
            if r["kind"] == "created":
                what = f"created {r['side']} {r['type']} {r['size']:g} @ {price_text(r['price'])}"
            elif r["kind"] == "status":
                what = f"{r['from']} → {r['to']}" + (f" ({r['reason']})" if r.get("reason") else "")
            else:
                what = f"fill {r['size']:g} @ {price_text(r['price'])} fee {r['fee']:,.4f} {r['liquidity'].lower()}"
            table.add_row(ts_text(r["ts"], seconds=True), f"+{(r['ts'] - start) / 1e9:,.0f}s", what)

    def action_close(self) -> None:
        self.dismiss(None)
