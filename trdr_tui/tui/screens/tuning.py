"""The self-tuning screen (key `u`, PRD §3.5): the parameter version in force, when and why it changed,
the daily loop's last verdict and next run, and the adaptive values; `r` runs the daily loop now.

It reads `SelfTuning.status()` (tuning/daily.py, in memory) once a second while open."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from trdr_tui.tui.format import ts_text
from trdr_tui.tuning.daily import SelfTuning


class TuningScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="tuning.close"),
        Binding("u", "close", "Close", show=False, id="tuning.close_alt"),
        Binding("r", "run_now", "Run now", id="tuning.run_now"),
    ]

    def __init__(self, tuner: SelfTuning) -> None:
        super().__init__(id="tuning")
        self.tuner = tuner

    def compose(self) -> ComposeResult:
        with Vertical(id="tuning-box"):
            yield Static("", id="tuning-version")
            yield Static("", id="tuning-daily")
            yield DataTable(id="tuning-values", cursor_type="none", zebra_stripes=True)
            yield Static("[$text-muted]r runs the daily optimization now · esc closes[/]", id="tuning-foot")

    def on_mount(self) -> None:
        table = self.query_one("#tuning-values", DataTable)
        table.add_columns("parameter", "in force", "bounds", "confidence", "outcomes", "success",
                          "last adjustment")
        self.refresh_status()
        self.set_interval(1.0, self.refresh_status)

    def refresh_status(self) -> None:
        s = self.tuner.status()
        if s.version_id is None:
            version = f"[b]version in force:[/b] the configuration as loaded — {s.reason}"
        else:
            since = ts_text(s.since_ns) if s.since_ns is not None else "—"
            version = f"[b]version in force:[/b] {s.version_name} ({s.version_id}), since {since}\n{s.reason}"
        self.query_one("#tuning-version", Static).update(version)
        if not self.tuner.cfg.daily:
            daily = "[b]daily loop:[/b] off ([tuning] daily = false)"
        elif s.running:
            daily = "[b]daily loop:[/b] optimizing in a worker process…"
        else:
            last = f"last run {ts_text(s.last_run_ns)}: {s.last_verdict}" if s.last_run_ns is not None \
                else "not run yet"
            nxt = f"; next {ts_text(s.next_run_ns)}" if s.next_run_ns is not None else ""
            daily = f"[b]daily loop:[/b] {last}{nxt}"
        self.query_one("#tuning-daily", Static).update(daily)
        table = self.query_one("#tuning-values", DataTable)
        table.clear()
        adaptive = {a["name"]: a for a in s.adaptive}
        for key, value in s.values.items():
            a = adaptive.get(key)
            if a is None:
                table.add_row(key, f"{value:.4g}", "—", "—", "—", "—", "not adaptive")
                continue
            sr = a["success_rate"]
            last = a["last"]
            table.add_row(key, f"{value:.4g}", f"{a['low']:.4g} … {a['high']:.4g}", f"{a['confidence']:.2f}",
                          str(a["outcomes"]), "—" if sr is None else f"{sr:.0%}",
                          "—" if last is None else f"{ts_text(last['ts'])} {last['old']:.4g}→{last['new']:.4g}: "
                                                   f"{last['reason']}")

    def action_run_now(self) -> None:
        if self.tuner.run_now("requested in the cockpit"):
            self.notify("daily optimization started in a worker process")
        else:
            self.notify("a daily optimization is already running", severity="warning")
        self.refresh_status()

    def action_close(self) -> None:
        self.dismiss(None)
