"""The backtest form (range and parameters → progress bar) and the results screen.

The run happens in a thread worker through the `BacktestRunner` the CLI supplied; progress comes back
with `call_from_thread`. Without a runner the form says so and cannot start. The results set the
strategy beside both baselines of `trdr backtest` (buy-and-hold and the fixed grid) and name the session
the run was stored as.

Keys typed into a field stay in the field: esc there leaves the field (focus moves to the Run button, or
Back when there is nothing to run) instead of closing the form and its values; esc outside a field goes
back.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, RenderResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, ProgressBar, Select, Static
from textual.worker import Worker, WorkerState
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

from trdr_tui.config import Settings
from trdr_tui.core.errors import ConfigError, TrdrError
from trdr_tui.trading.presets import PRESETS as PRESET_TABLE
from trdr_tui.tui.format import money_text, pct_text, rgb, tick_indexes, ts_text
from trdr_tui.tui.services import BacktestOutcome, BacktestRequest, BacktestRunner
from trdr_tui.tuning.genome import inert_keys

PRESETS = [("configured strategy (agents, grid, risk)", "default"), ("simple-trailing (yardstick)", "simple-trailing")]


def parse_day(text: str, field: str) -> str | None:
    """'' → None (the data's edge); 'YYYY-MM-DD' → itself; anything else → ConfigError naming the field."""
    text = text.strip()
    if not text:
        return None
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{field} '{text}' is not a date", hint="use YYYY-MM-DD, or leave it empty") from None
    return text


def parse_fraction(text: str, field: str, lo: float, hi: float) -> float | None:
    text = text.strip().rstrip("%")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{field} '{text}' is not a number", hint=f"enter a fraction between {lo} and {hi}") from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ConfigError(f"{field} {value} is out of range", hint=f"enter a fraction between {lo} and {hi}")
    return value


class BacktestFormScreen(Screen[None]):
    """Range and parameters, a Run button, a progress bar while the worker runs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="backtest.close"),
        Binding("ctrl+r", "run_backtest", "Run", id="backtest.run"),
    ]

    def __init__(self, settings: Settings, runner: BacktestRunner | None) -> None:
        super().__init__(id="backtest-form")
        self.settings = settings
        self.runner = runner
        # the trail field only where the strategy has trailing orders (else it changes nothing)
        self.trail_offered = "trailing.distance" not in inert_keys(settings)
        self.running = False
        self.outcome: BacktestOutcome | None = None

    def compose(self) -> ComposeResult:
        s = self.settings
        with VerticalScroll(id="form"):
            yield Static("[b]Backtest[/b] · the same engine as paper and live, on this session's candles", id="form-title")
            if self.runner is None:
                yield Static("[$error]The backtest runner is not available in this build:[/] "
                             "no results can be produced here. Run 'trdr backtest --help' for the command line.",
                             id="unavailable")
            with Horizontal(classes="row"):
                yield Label("from", classes="label")
                yield Input(placeholder="YYYY-MM-DD (empty: first bar)", id="start")
                yield Label("to", classes="label")
                yield Input(placeholder="YYYY-MM-DD (empty: last bar)", id="end")
            with Horizontal(classes="row"):
                yield Label("strategy", classes="label")
                yield Select(PRESETS, value="default", allow_blank=False, id="preset")
            with Horizontal(classes="row"):
                yield Label("capital", classes="label")
                yield Input(str(s.capital), id="capital", type="number")
                if self.trail_offered:
                    yield Label("trail", classes="label")
                    yield Input(str(s.trailing.distance), id="trail")
            with Horizontal(classes="row"):
                yield Label("min spacing", classes="label")
                yield Input(str(s.grid.min_spacing), id="min_spacing")
                yield Label("max spacing", classes="label")
                yield Input(str(s.grid.max_spacing), id="max_spacing")
            with Horizontal(classes="row"):
                yield Button("Run  (ctrl+r)", id="run", variant="primary", disabled=self.runner is None)
                yield Button("Back  (esc)", id="back")
            yield ProgressBar(total=100, id="progress", show_eta=False)  # 0 % until a run starts (no animation)
            yield Static(id="form-message")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#start", Input).focus()

    def build_request(self) -> BacktestRequest:
        """The form's values, validated; ConfigError says which field is wrong and how to fix it."""
        value = self._value
        start = parse_day(value("start"), "from")
        end = parse_day(value("end"), "to")
        if start and end and start > end:
            raise ConfigError(f"'from' {start} is after 'to' {end}", hint="swap the dates")
        overrides: dict[str, Any] = {}
        capital = parse_fraction(value("capital"), "capital", 1.0, 1e12)
        if capital is None:
            raise ConfigError("capital is empty",
                              hint=f"type the starting capital in {self.settings.symbol.split('-')[-1]}, "
                                   f"e.g. {self.settings.capital:g}")
        overrides["capital"] = capital
        fields = [("trail", "trailing.distance", 0.0001, 0.5)] if self.trail_offered else []
        for field, key, lo, hi in (*fields, ("min_spacing", "grid.min_spacing", 0.0001, 0.5),
                                   ("max_spacing", "grid.max_spacing", 0.0001, 0.5)):
            parsed = parse_fraction(value(field), field.replace("_", " "), lo, hi)
            if parsed is not None:
                overrides[key] = parsed
        if overrides.get("grid.min_spacing", 0) > overrides.get("grid.max_spacing", math.inf):
            raise ConfigError("min spacing is larger than max spacing", hint="lower min spacing")
        preset = self.query_one("#preset", Select).value
        return BacktestRequest(start=start, end=end, preset=str(preset), overrides=overrides)

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value

    def _say(self, text: str) -> None:
        self.query_one("#form-message", Static).update(text)

    @on(Button.Pressed, "#run")
    def _run_pressed(self) -> None:
        self.action_run_backtest()

    @on(Button.Pressed, "#back")
    def _back_pressed(self) -> None:
        self.action_close()

    def action_close(self) -> None:
        if isinstance(self.focused, Input):  # esc typed in a field: leave the field, keep the form
            run = self.query_one("#run", Button)
            (self.query_one("#back", Button) if run.disabled else run).focus()
            self._say("esc again goes back")
            return
        if self.running:
            self._say("[$warning]a backtest is running; it finishes first[/]")
            return
        self.dismiss(None)

    def action_run_backtest(self) -> None:
        if self.runner is None:
            self._say("[$error]no backtest runner in this build: nothing was run[/]")
            return
        if self.running:
            return
        try:
            request = self.build_request()
        except ConfigError as exc:
            self._say(f"[$error]{exc.render()}[/]")
            # the message line may be below a short terminal's last row (80×24): a toast is always seen
            self.notify(exc.render(), title="backtest not run", severity="error", markup=False)
            return
        self.running = True
        self.query_one("#run", Button).disabled = True
        self.query_one(ProgressBar).update(total=None, progress=0)
        self._say("running…")
        self.run_backtest(request)

    @work(thread=True, exclusive=True, exit_on_error=False, group="backtest", name="backtest")
    def run_backtest(self, request: BacktestRequest) -> BacktestOutcome:
        assert self.runner is not None
        return self.runner(request, self._progress_from_thread)

    def _progress_from_thread(self, done: int, total: int) -> None:
        self.app.call_from_thread(self.query_one(ProgressBar).update, total=total, progress=done)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "backtest":
            return
        if event.state == WorkerState.SUCCESS:
            self.running = False
            self.query_one("#run", Button).disabled = False
            outcome = event.worker.result
            assert isinstance(outcome, BacktestOutcome)
            self.outcome = outcome
            self._say("done")
            self.app.push_screen(BacktestResultsScreen(outcome))
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self.running = False
            self.query_one("#run", Button).disabled = False
            error = event.worker.error
            text = error.render() if isinstance(error, TrdrError) else f"{type(error).__name__}: {error}"
            self._say(f"[$error]backtest failed: {text}[/]")
            self.notify(text, title="backtest failed", severity="error", markup=False)


STAT_ROWS: list[tuple[str, str, str]] = [
    ("total return", "total_return", "pct"),
    ("annualized return", "annualized_return", "pct"),
    ("max drawdown", "max_drawdown", "frac"),
    ("Sharpe", "sharpe", "num"),
    ("Sortino", "sortino", "num"),
    ("Calmar", "calmar", "num"),
    ("win rate", "win_rate", "frac"),
    ("profit factor", "profit_factor", "num"),
    ("fills", "fills", "int"),
    ("round trips", "round_trips", "int"),
    ("fees paid", "fees_paid", "money"),
    ("final equity", "final_equity", "money"),
]


def stat_text(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if kind == "pct":
        return pct_text(float(value), signed=True)
    if kind == "frac":
        return pct_text(float(value))
    if kind == "money":
        return money_text(float(value))
    if kind == "int":
        return f"{int(value):,}"
    return f"{float(value):.2f}"


class EquityChart(PlotextPlot):
    """Strategy equity against buy-and-hold over the same bars."""

    def __init__(self, outcome: BacktestOutcome, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.outcome = outcome

    def render(self) -> RenderResult:
        self.build_figure()
        return super().render()

    def build_figure(self) -> None:
        """A fresh figure at the size the pane has now (plotext keeps state across clear_figure)."""
        o = self.outcome
        colours = self.app.theme_variables
        self._plot = Plot()
        plt = self.plt
        n = len(o.ts)
        if n == 0:
            plt.title("no bars in the chosen range")
            return
        step = max(1, n // max(self.size.width * 2, 50))
        xs = list(range(0, n, step))
        plt.plot(xs, o.equity[::step].tolist(), label="strategy", color=rgb(colours["primary"]))
        plt.plot(xs, o.buy_and_hold[::step].tolist(), label="buy & hold", color=rgb(colours["muted"]))
        plt.plot(xs, o.fixed_grid[::step].tolist(), label="fixed grid", color=rgb(colours["secondary"]))
        ticks = tick_indexes(n, self.size.width - 10, 10)
        plt.xticks([float(t) for t in ticks], [ts_text(int(o.ts[i]))[:10] for i in ticks])
        plt.title("equity vs the baselines")


class BacktestResultsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Back", id="results.close")]

    def __init__(self, outcome: BacktestOutcome) -> None:
        super().__init__(id="backtest-results")
        self.outcome = outcome

    def compose(self) -> ComposeResult:
        with Horizontal(id="results"):
            yield EquityChart(self.outcome, id="equity")
            with Vertical(id="stats-box"):
                yield DataTable(id="stats", cursor_type="row", zebra_stripes=True)
                yield Static(id="stats-note")
        yield Footer()

    def on_mount(self) -> None:
        o = self.outcome
        table: DataTable[Text] = self.query_one("#stats", DataTable)
        table.add_columns("statistic", "strategy", "buy & hold", "fixed grid")
        baselines: dict[str, Any] = o.stats.get("baselines", {})
        bh: dict[str, Any] = baselines.get("buy_and_hold", {})
        grid: dict[str, Any] = baselines.get("fixed_grid", {})
        colours = self.app.theme_variables
        for label, key, kind in STAT_ROWS:
            value = o.stats.get(key)
            style = ""
            if kind == "pct" and isinstance(value, float):
                style = colours["pnl-up"] if value >= 0 else colours["pnl-down"]
            table.add_row(Text(label), Text(stat_text(value, kind), style=style),
                          Text(stat_text(bh.get(key), kind)), Text(stat_text(grid.get(key), kind)))
        span = f"{ts_text(int(o.ts[0]))} → {ts_text(int(o.ts[-1]))}" if len(o.ts) else "no bars"
        table.border_title = "results"
        table.border_subtitle = span
        preset = PRESET_TABLE.get(str(o.stats.get("preset")))
        stored = f"stored as session {o.session_id}" if o.session_id else "not stored"
        note = f"\n[b]note:[/b] {preset.note}" if preset is not None and preset.note else ""
        self.query_one("#stats-note", Static).update(stored + note)

    def action_close(self) -> None:
        self.dismiss(None)
