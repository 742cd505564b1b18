"""The trdr cockpit: a Textual app hosting the engine in its own event loop.

`make_app(settings, engine, ...)` is the one way to build it, used by the CLI and by the tests. The
engine runs as a Textual worker on the same loop; the bridge turns its events into messages for the
main screen; user actions call the engine's control surface (`EngineControl`) and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import gc
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from time import perf_counter
from typing import ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.theme import Theme
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from trdr_tui.config import Settings
from trdr_tui.core.engine_api import EngineControl
from trdr_tui.core.errors import ConfigError, TrdrError
from trdr_tui.core.events import LogEvent
from trdr_tui.core.types import Candle, Mode
from trdr_tui.tui.bridge import Bridge, LogReceived
from trdr_tui.tui.inspection import inspection_for
from trdr_tui.tui.screens.backtest import BacktestFormScreen
from trdr_tui.tui.screens.funding import FundingScreen
from trdr_tui.tui.screens.help import HelpScreen
from trdr_tui.tui.screens.inspector import InspectorScreen
from trdr_tui.tui.screens.main import MAIN_BINDINGS, MainScreen
from trdr_tui.tui.screens.mode import ConfirmLiveScreen, LogFilterScreen, ModeScreen
from trdr_tui.tui.services import BacktestRunner, CredentialCheck, ModeSwitcher
from trdr_tui.tui.themes import TRDR_VARIABLE_DEFAULTS, load_themes

WEIGHT_STEP = 0.1
STOP_TIMEOUT_S = 30.0


PALETTE_HELP: dict[str, str] = {
    "help": "Show every key binding",
    "quit": "Stop the engine (shutdown checkpoint) and leave",
    "toggle_pause": "Pause or resume placing new orders",
    "choose_mode": "Switch between paper, live and backtest",
    "backtest": "Open the backtest form",
    "weight_up": "Raise the selected agent's weight",
    "weight_down": "Lower the selected agent's weight",
    "cycle_theme": "Next colour theme",
    "next_pane": "Move focus to the next pane",
    "previous_pane": "Move focus to the previous pane",
    "log_level": "Cycle the minimum log level shown",
    "log_filter": "Filter log lines by text",
}


# Where the action's name does not read as its title (`choose_mode`: Textual's App owns `switch_mode`).
PALETTE_TITLES: dict[str, str] = {"choose_mode": "Switch mode"}


class TrdrApp(App[int]):
    """The cockpit. State shown on screen lives in the panes; the app holds the engine handle."""

    CSS_PATH = "app.tcss"
    TITLE = "trdr"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
        Binding("t", "cycle_theme", "Theme", show=False, id="cycle_theme"),
        Binding("ctrl+p", "command_palette", "Palette", show=False, id="command_palette"),
    ]

    def __init__(
        self,
        settings: Settings,
        engine: EngineControl,
        *,
        themes: dict[str, Theme],
        backtest_runner: BacktestRunner | None = None,
        mode_switcher: ModeSwitcher | None = None,
        credential_check: CredentialCheck | None = None,
        start_engine: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.engine = engine
        self.backtest_runner = backtest_runner
        self.mode_switcher = mode_switcher
        self.credential_check = credential_check
        self.start_engine = start_engine
        self.trdr_themes = themes
        self.bridge: Bridge | None = None
        self.stopping = False
        self.engine_error: BaseException | None = None
        self.first_frame_at: float | None = None
        self.engine_finished = False
        for theme in themes.values():
            self.register_theme(theme)
        self.theme = settings.tui.theme
        self.set_keymap(dict(settings.tui.keys))

    # -- set-up ----------------------------------------------------------------------------------

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Textual's notification, as plain text unless `markup=True`: trdr's messages carry error texts,
        paths and install commands (`pip install 'trdr-tui[ai]'`) whose brackets Rich would eat."""
        if timeout is None:
            super().notify(message, title=title, severity=severity, markup=markup)
        else:
            super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def action_help_quit(self) -> None:
        """Ctrl-C (Textual's binding, which no longer quits) says which key does: Textual's own hint is
        markup, which `notify` above shows as plain text."""
        quits = [(not active.binding.show, key) for key, active in self.active_bindings.items()
                 if active.binding.action in ("quit", "app.quit")]
        if quits:  # the key the footer shows first (`q`, or where [tui.keys] moved it)
            self.notify(f"Press {min(quits)[1]} to quit trdr", title="Do you want to quit?")

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(TRDR_VARIABLE_DEFAULTS)

    def get_default_screen(self) -> Screen[None]:
        weights = self.engine.agent_weights()
        return MainScreen(symbol=self.engine.symbol, mode=self.engine.mode.value,
                             weights=weights, threshold=self.settings.agents.min_confidence)

    @property
    def main(self) -> MainScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen

    def on_ready(self) -> None:
        """After the first frame: the panes exist, so the engine may start publishing."""
        self.first_frame_at = perf_counter()
        # Everything built so far lives as long as the app: keep it out of the collector's full passes,
        # which otherwise stall the loop for tens of milliseconds under a fast feed.
        gc.freeze()
        self.set_interval(1.0 / self.settings.tui.refresh_hz, self.refresh_panes, name="refresh-panes")
        self.main.status.paused = self.engine.paused
        self.attach_engine(self.engine)

    def attach_engine(self, engine: EngineControl) -> None:
        """Bridge the engine's bus to the main screen and (unless told not to) start it as a worker."""
        self.engine = engine
        self.engine_finished = False
        self.bridge = Bridge(engine.bus, self.main)
        self.bridge.start()
        self.main.status.mode = engine.mode.value
        if self.start_engine:
            self.run_worker(self._run_engine(engine), name="engine", group="engine", exit_on_error=False)

    async def _run_engine(self, engine: EngineControl) -> None:
        await engine.run()

    def refresh_panes(self) -> None:
        if self.screen_stack and isinstance(self.screen_stack[0], MainScreen):
            self.main.refresh_panes()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker outcomes land: engine failures are shown, never swallowed."""
        if event.worker.group != "engine":
            return
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self.engine_finished = True
        clock_ts = self.engine.clock.now_ns()
        if event.state == WorkerState.ERROR:
            self.engine_error = event.worker.error
        if not (self.screen_stack and isinstance(self.screen_stack[0], MainScreen)):
            return  # the app is already shutting down: nothing left to show it on (engine_error is kept)
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            text = error.render() if isinstance(error, TrdrError) else f"{type(error).__name__}: {error}"
            self.main.logs.add(LogEvent(ts=clock_ts, level="error", source="engine", message=text))
            self.main.status.running = False
            self.notify(text, title="engine stopped", severity="error", timeout=10)
        elif event.state == WorkerState.SUCCESS and not self.stopping:
            # through the main screen's queue, behind the engine's own last events
            done = LogEvent(ts=clock_ts, level="info", source="engine", message="engine finished (end of feed); q quits")
            if self.bridge is not None:
                self.main.post_message(LogReceived("log.info", done, self.bridge.stats))
            self.main.status.running = False

    # -- command palette -------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for action, help_text in PALETTE_HELP.items():
            title = PALETTE_TITLES.get(action, action.replace("_", " ").capitalize())
            yield SystemCommand(f"trdr: {title}", help_text, partial(self.run_action, action))

    def binding_rows(self) -> list[tuple[str, str, str]]:
        """(key as shown, description, binding id) for every trdr binding, after remapping."""
        rows: dict[str, tuple[str, str, str]] = {}
        for active in self.main.active_bindings.values():
            binding = active.binding
            if binding.id and "." not in binding.id:
                key = self.get_key_display(binding)
                if binding.id in rows:  # a binding on several keys lists them all
                    key = f"{rows[binding.id][0]}, {key}"
                rows[binding.id] = (key, binding.description, binding.id)
        order = [b.id for b in (*MAIN_BINDINGS, *self.BINDINGS) if isinstance(b, Binding)]
        return sorted(rows.values(), key=lambda r: order.index(r[2]) if r[2] in order else len(order))

    # -- actions ---------------------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.binding_rows()))

    def action_inspect(self) -> None:
        source = inspection_for(self.engine, self.settings)
        if source is None:
            self.notify("this engine has no inspector data", severity="warning")
        elif not isinstance(self.screen, InspectorScreen):
            self.push_screen(InspectorScreen(source, self.main.orders.selected))

    def action_tuning(self) -> None:
        """The self-tuning screen (tui/screens/tuning.py) of a real paper/live session."""
        from trdr_tui.tui.screens.tuning import TuningScreen
        from trdr_tui.tuning.daily import ATTACHMENT

        tuner = getattr(self.engine, "attachments", {}).get(ATTACHMENT)
        if tuner is None:
            self.notify("self-tuning runs in real paper and live sessions (not in replays or backtests), "
                        "with \\[tuning] adaptive or daily on", severity="warning")
        elif not isinstance(self.screen, TuningScreen):
            self.push_screen(TuningScreen(tuner))

    async def action_quit(self) -> None:
        """Graceful: the engine stops and writes its shutdown checkpoint before the app exits."""
        if self.stopping:
            return
        self.stopping = True
        self.notify("stopping: writing the shutdown checkpoint…", timeout=STOP_TIMEOUT_S)
        code = 0
        try:
            await asyncio.wait_for(self.engine.stop("shutdown"), timeout=STOP_TIMEOUT_S)
        except Exception as exc:  # the app must still leave; the CLI reports the failure
            self.engine_error = exc
            code = 1
        if self.bridge is not None:
            self.bridge.stop()
        self.exit(code, return_code=code)

    def action_toggle_pause(self) -> None:
        if self.engine.paused:
            self.engine.resume()
        else:
            self.engine.pause()
        self.main.status.paused = self.engine.paused
        self.notify("paused: no new orders" if self.engine.paused else "resumed", timeout=2)

    def action_cycle_theme(self) -> None:
        names = sorted(self.trdr_themes)
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]

    def watch_theme(self, theme: str) -> None:
        if self.screen_stack and isinstance(self.screen_stack[0], MainScreen):
            main = self.main
            main.chart.dirty = True
            main.grid.dirty = True
            main.orders.dirty = True

    def action_weight_up(self) -> None:
        self._nudge_weight(+WEIGHT_STEP)

    def action_weight_down(self) -> None:
        self._nudge_weight(-WEIGHT_STEP)

    def _nudge_weight(self, delta: float) -> None:
        """Move the selected agent's base weight by one step (clamped to [agents] min/max_weight).

        The engine applies, publishes and persists it; adaptive weighting may then scale the weight in
        force, which is what the panel shows.
        """
        agents = self.main.agents
        agent_id = agents.selected
        if agent_id is None:
            self.notify("no agent selected", severity="warning")
            return
        lo, hi = self.settings.agents.min_weight, self.settings.agents.max_weight
        current = base_weights(self.engine).get(agent_id, agents.weights.get(agent_id, 1.0))
        new = round(min(max(current + delta, lo), hi), 6)
        if new == current:
            self.notify(f"{agent_id} weight stays {current:.2f} (limits {lo}–{hi})", severity="warning", timeout=3)
            return
        try:
            self.engine.set_agent_weight(agent_id, new)
        except TrdrError as exc:
            self.notify(exc.render(), title="weight not changed", severity="error")
            return
        effective = self.engine.agent_weights().get(agent_id, new)
        agents.set_weights({agent_id: effective})
        self.notify(f"{agent_id}: weight {current:.2f} → {new:.2f} (in force {effective:.2f})", timeout=3)

    def action_next_pane(self) -> None:
        self._move_pane(+1)

    def action_previous_pane(self) -> None:
        self._move_pane(-1)

    def _move_pane(self, delta: int) -> None:
        panes = self.main.pane_widgets()
        focused = self.focused
        index = -1
        for i, pane in enumerate(panes):
            if focused is pane or (isinstance(focused, Widget) and pane in focused.ancestors):
                index = i
        panes[(index + delta) % len(panes)].focus()

    def action_log_level(self) -> None:
        level = self.main.logs.cycle_level()
        self.notify(f"logs: {level} and above", timeout=2)

    def action_log_filter(self) -> None:
        def apply(text: str | None) -> None:
            if text is not None:
                self.main.logs.text_filter = text

        self.push_screen(LogFilterScreen(self.main.logs.text_filter), apply)

    def action_export_chart(self) -> None:
        """Write the chart's last 100 candles as an 800×600 PNG (Claude's renderer) to the current
        directory, named after the symbol and the last bar's time."""
        candles = list(self.main.chart.candles)
        if not candles:
            self.notify("no candles to export yet", severity="warning", timeout=3)
            return
        self._export_chart(candles)

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def _export_chart(self, candles: list[Candle]) -> None:
        from trdr_tui.agents.ai.chart import CANDLES, render_candles_png

        symbol = self.engine.symbol
        stamp = datetime.fromtimestamp(candles[-1].ts / 1e9, tz=UTC).strftime("%Y%m%d-%H%M")
        path = Path(f"trdr-chart-{symbol}-{stamp}.png").resolve()
        try:
            png = render_candles_png(candles, title=f"{symbol} {self.settings.timeframe}", last=CANDLES)
            path.write_bytes(png)
        except (TrdrError, OSError) as exc:
            text = exc.render() if isinstance(exc, TrdrError) else f"cannot write {path}: {exc}"
            self.call_from_thread(self.notify, text, title="chart not exported", severity="error", timeout=10)
            return
        self.call_from_thread(self.notify, f"chart saved to {path}", timeout=5)

    def action_backtest(self) -> None:
        if not isinstance(self.screen, BacktestFormScreen):
            self.push_screen(BacktestFormScreen(self.settings, self.backtest_runner))

    def action_funding(self) -> None:
        """A deposit or withdrawal in a paper run: the amount from a dialog, booked by `engine.fund`.
        Live runs read them from the exchange account, so the key only says so there."""
        if self.engine.mode is Mode.LIVE:
            self.notify("live: deposit or withdraw at Coinbase; trdr reads the account's balance and re-sizes "
                        "the grid itself", title="not booked here", severity="warning", timeout=8)
            return
        quote = self.engine.symbol.split("-", 1)[-1]
        self.push_screen(FundingScreen(quote), self._fund)

    def _fund(self, amount: float | None) -> None:
        if amount is None:
            return
        try:
            self.engine.fund(amount)
        except TrdrError as exc:
            self.notify(exc.message, title="funding refused", severity="error", timeout=10)
            return
        kind = "deposit" if amount > 0 else "withdrawal"
        self.notify(f"{kind} of {abs(amount):,.2f} booked; the grid is re-sized", timeout=4)

    def action_choose_mode(self) -> None:
        self.push_screen(ModeScreen(self.engine.mode), self._mode_chosen)

    def _mode_chosen(self, mode: Mode | None) -> None:
        if mode is None or mode == self.engine.mode:
            return
        if mode == Mode.BACKTEST:
            self.action_backtest()
            return
        if mode == Mode.LIVE:
            reason = self.credential_check() if self.credential_check is not None else "no credential check"
            if reason is not None:
                self.notify(f"live trading refused: {reason}", title="still paper", severity="error", timeout=10)
                return
        if self.mode_switcher is None:
            self.notify(f"switching to {mode.value} is not available in this session; restart with "
                        f"{'--live' if mode == Mode.LIVE else 'no --live'}", severity="error", timeout=10)
            return
        if mode == Mode.LIVE:
            self.push_screen(ConfirmLiveScreen(self.engine.symbol, self.settings.capital),
                             partial(self._confirmed, mode))
        else:
            self._confirmed(mode, True)

    def _confirmed(self, mode: Mode, ok: bool | None) -> None:
        if not ok:
            self.notify(f"stayed in {self.engine.mode.value}", timeout=3)
            return
        self.run_worker(self._switch_engine(mode), name="switch-mode", group="switch", exclusive=True)

    async def _switch_engine(self, mode: Mode) -> None:
        with contextlib.suppress(TrdrError):  # switch_engine has shown it
            await self.switch_engine(mode)

    async def switch_engine(self, mode: Mode) -> None:
        """Stop the running engine (checkpoint), build one for `mode`, bridge it and start it: the switch
        behind `m` and the control API's. Raises TrdrError when the new engine cannot be built (the old
        one is bridged again)."""
        assert self.mode_switcher is not None
        old = self.engine
        await old.stop(f"switch to {mode.value}")
        for worker in self.workers:
            if worker.group == "engine":
                await worker.wait()
        if self.bridge is not None:
            self.bridge.stop()
        try:
            new = await self.mode_switcher(mode)
        except TrdrError as exc:
            self.notify(exc.render(), title=f"could not switch to {mode.value}", severity="error", timeout=10)
            self.attach_engine(old)
            raise
        self.attach_engine(new)
        self.notify(f"now in {mode.value} mode", timeout=4)


def base_weights(engine: EngineControl) -> dict[str, float]:
    """The weights the user sets (before adaptive scaling): `+`/`-` step from these, since stepping
    from the weights in force would let adaptation turn a `+` into a lower weight."""
    return engine.agent_base_weights()


def check_keymap(keys: dict[str, str]) -> None:
    """Refuse unknown binding ids in `[tui.keys]` with a suggestion, before the app starts."""
    known = [b.id for b in (*MAIN_BINDINGS, *TrdrApp.BINDINGS) if isinstance(b, Binding) and b.id]
    for binding_id, key in keys.items():
        if binding_id not in known:
            guess = difflib.get_close_matches(binding_id, known, n=1)
            hint = f"did you mean '{guess[0]}'?" if guess else f"binding ids: {', '.join(known)}"
            raise ConfigError(f"unknown binding id '{binding_id}' in [tui.keys]", hint=hint)
        if not key.strip():
            raise ConfigError(f"empty key for binding '{binding_id}' in [tui.keys]", hint='e.g. pause = "p"')


def make_app(
    settings: Settings,
    engine: EngineControl,
    *,
    backtest_runner: BacktestRunner | None = None,
    mode_switcher: ModeSwitcher | None = None,
    credential_check: CredentialCheck | None = None,
    start_engine: bool = True,
    themes: dict[str, Theme] | None = None,
) -> TrdrApp:
    """Build the cockpit for a (not yet running) engine. Validates the theme and keymap first."""
    themes = themes if themes is not None else load_themes()
    if settings.tui.theme not in themes:
        guess = difflib.get_close_matches(settings.tui.theme, list(themes), n=1)
        hint = f"did you mean '{guess[0]}'?" if guess else f"themes: {', '.join(sorted(themes))}"
        raise ConfigError(f"unknown theme '{settings.tui.theme}' in [tui] theme", hint=hint)
    check_keymap(dict(settings.tui.keys))
    return TrdrApp(settings, engine, themes=themes, backtest_runner=backtest_runner,
                   mode_switcher=mode_switcher, credential_check=credential_check, start_engine=start_engine)
