"""The agent panel: each agent's vote, confidence, weight and reasoning; the consensus against its threshold."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from trdr_tui.core.types import Action, AgentSignal, Decision
from trdr_tui.tui.format import bar_text

ACTION_LABEL = {Action.TRAIL_BUY: "BUY", Action.TRAIL_SELL: "SELL", Action.HOLD: "HOLD"}
ACTION_COLOUR = {Action.TRAIL_BUY: "bid", Action.TRAIL_SELL: "ask", Action.HOLD: "foreground"}


class AgentTable(DataTable[Text]):
    """One row per agent; the cursor row is the selected agent (for `+`/`-`)."""

    BORDER_TITLE = "agents"


class AgentPanel(Vertical):
    """Agents table plus the consensus line. Selection survives updates (rows are keyed by agent id)."""

    selected: reactive[str | None] = reactive(None)

    class Selected(Message):
        def __init__(self, agent_id: str) -> None:
            super().__init__()
            self.agent_id = agent_id

    def __init__(self, weights: dict[str, float], threshold: float, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.weights: dict[str, float] = dict(weights)
        self.signals: dict[str, AgentSignal] = {}
        self.decision: Decision | None = None
        self.threshold = threshold

    def compose(self) -> ComposeResult:
        yield AgentTable(id="agents-table", cursor_type="row", zebra_stripes=False)
        yield Static(id="agent-why")
        yield Static(id="consensus")

    def on_mount(self) -> None:
        table = self.query_one(AgentTable)
        table.add_column("agent", key="agent", width=16)
        table.add_column("vote", key="vote", width=4)
        table.add_column("conf", key="conf", width=9)
        table.add_column("w", key="weight", width=4)
        table.add_column("why", key="why", width=40)
        for agent_id in self.weights:
            self._add_row(agent_id)
        if self.weights:
            self.selected = next(iter(self.weights))
        self._render_consensus()

    @property
    def agent_ids(self) -> list[str]:
        return list(self.weights)

    def _colour(self, name: str) -> str:
        return self.app.theme_variables.get(name, self.app.theme_variables.get("foreground", "white"))

    def _cells(self, agent_id: str) -> list[Text]:
        sig = self.signals.get(agent_id)
        weight = self.weights.get(agent_id, 0.0)
        if sig is None:
            return [Text(agent_id), Text("—"), Text(bar_text(0.0, 6)), Text(f"{weight:.1f}"), Text("")]
        colour = self._colour(ACTION_COLOUR[sig.action])
        return [
            Text(agent_id),
            Text(ACTION_LABEL[sig.action], style=colour),
            Text(f"{bar_text(sig.confidence, 6)}{sig.confidence * 100:3.0f}", style=colour),
            Text(f"{weight:.1f}"),
            Text(sig.reasoning.replace("\n", " "), overflow="ellipsis", no_wrap=True),
        ]

    def _add_row(self, agent_id: str) -> None:
        self.query_one(AgentTable).add_row(*self._cells(agent_id), key=agent_id)

    def _update_row(self, agent_id: str) -> None:
        table = self.query_one(AgentTable)
        if agent_id not in self.weights:
            self.weights[agent_id] = 1.0
        if agent_id not in {k.value for k in table.rows}:
            self._add_row(agent_id)
            return
        for col, value in zip(("agent", "vote", "conf", "weight", "why"), self._cells(agent_id), strict=True):
            table.update_cell(agent_id, col, value)

    # -- updates from the bridge -----------------------------------------------------------------

    def set_signal(self, signal: AgentSignal) -> None:
        self.signals[signal.agent_id] = signal
        self._update_row(signal.agent_id)
        if signal.agent_id == self.selected:
            self._render_why()

    def set_decision(self, decision: Decision) -> None:
        self.decision = decision
        for sig in decision.signals:
            self.signals[sig.agent_id] = sig
        for agent_id, weight in decision.weights.items():
            self.weights[agent_id] = weight
        for agent_id in {*(s.agent_id for s in decision.signals), *decision.weights}:
            self._update_row(agent_id)
        self._render_why()
        self._render_consensus()

    def why_text(self) -> str:
        """The selected agent's whole reasoning (the table's `why` column is cut to its width)."""
        sig = self.signals.get(self.selected) if self.selected is not None else None
        if sig is None:
            return ""
        return f"{sig.agent_id}: {sig.reasoning.replace(chr(10), ' ')}"

    def watch_selected(self) -> None:
        if self.is_mounted:
            self._render_why()

    def _render_why(self) -> None:
        self.query_one("#agent-why", Static).update(Text(self.why_text()), layout=False)

    def set_weights(self, weights: dict[str, float]) -> None:
        for agent_id, weight in weights.items():
            self.weights[agent_id] = weight
            self._update_row(agent_id)

    def _render_consensus(self) -> None:
        consensus = self.query_one("#consensus", Static)
        d = self.decision
        if d is None and not self.weights:
            consensus.update("[$text-muted]no agents (preset run)[/]", layout=False)
            return
        if d is None:
            consensus.update(f"consensus: waiting · threshold {self.threshold * 100:.0f}%", layout=False)
            return
        label = ACTION_LABEL[d.action]
        passes = d.confidence >= self.threshold
        mark = "≥" if passes else "<"
        colour = "$" + ACTION_COLOUR[d.action] if passes else "$text-muted"
        consensus.update(
            f"consensus [{colour}]{label} {bar_text(d.confidence, 8)} {d.confidence * 100:.0f}%[/]"
            f" {mark} {self.threshold * 100:.0f}%",
            layout=False,  # one fixed line: no layout pass at decision rate
        )

    # -- selection -------------------------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.selected = event.row_key.value
            self.post_message(self.Selected(event.row_key.value))

    def move_selection(self, delta: int) -> None:
        table = self.query_one(AgentTable)
        if table.row_count:
            table.move_cursor(row=(table.cursor_row + delta) % table.row_count)
