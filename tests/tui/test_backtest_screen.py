"""The cockpit's backtest screen: both baselines beside the strategy, the run stored as a session as
`trdr backtest` stores it, and keys typed into a field staying in the field."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Static

from tests.tui.conftest import CockpitFactory, real_candles, settle
from trdr_tui.config import Settings, load_settings
from trdr_tui.store import Store
from trdr_tui.store.sessions import SessionRepository
from trdr_tui.tui.screens.backtest import BacktestFormScreen, BacktestResultsScreen
from trdr_tui.tui.screens.main import MainScreen
from trdr_tui.tui.services import EngineBacktests, slice_candles

SIZE = (120, 40)


async def _run(pilot: Pilot[Any], preset: str = "default") -> BacktestResultsScreen:
    await settle(pilot)
    await pilot.press("b")
    form = pilot.app.screen
    assert isinstance(form, BacktestFormScreen)
    form.query_one("#start", Input).value = "2017-08-05"
    form.query_one("#end", Input).value = "2017-08-20"
    form.query_one("#preset").value = preset  # type: ignore[attr-defined]
    await pilot.press("ctrl+r")
    await form.workers.wait_for_complete()
    await pilot.pause()
    results = pilot.app.screen
    assert isinstance(results, BacktestResultsScreen)
    return results


async def test_results_show_the_fixed_grid_baseline_and_the_stored_session(
        make_cockpit: CockpitFactory, settings: Settings, cockpit_store: Store) -> None:
    runner = EngineBacktests(settings, slice_candles(real_candles()), store=cockpit_store)
    app = make_cockpit(backtest_runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        results = await _run(pilot)
        stats = results.outcome.stats
        table = results.query_one("#stats", DataTable)
        assert [str(c.label) for c in table.columns.values()] == ["statistic", "strategy", "buy & hold", "fixed grid"]
        row = [str(cell) for cell in table.get_row_at(0)]  # total return
        grid_return = stats["baselines"]["fixed_grid"]["total_return"]
        assert row[0] == "total return" and row[3] == f"{grid_return * 100:+.2f}%"
        rows = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        assert rows["win rate"][1] == f"{stats['win_rate'] * 100:.2f}%"  # a share, not a gain: no sign
        assert len(results.outcome.fixed_grid) == len(results.outcome.ts)
        sid = results.outcome.session_id
        assert sid is not None and sid.startswith("bt-")
        assert f"stored as session {sid}" in str(results.query_one("#stats-note", Static).render())
    repo = SessionRepository(cockpit_store)
    session = repo.get(sid)
    assert session is not None and session.status == "completed"
    stored = repo.results(sid) or {}
    assert stored["total_return"] == stats["total_return"] and stored["session_id"] == sid


async def test_simple_trailing_results_say_it_is_the_yardstick(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        results = await _run(pilot, "simple-trailing")
        note = str(results.query_one("#stats-note", Static).render())
        assert "not stored" in note and "accounting yardstick" in note and "not a strategy to trade" in note


async def test_keys_typed_in_a_field_stay_in_the_field(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        weights = dict(app.engine.agent_base_weights())
        await pilot.press("b")
        form = app.screen
        assert isinstance(form, BacktestFormScreen)
        field = form.query_one("#capital", Input)
        field.focus()
        field.value = ""
        await pilot.press("1", "e", "+", "4", "minus", "space")
        assert field.value.startswith("1e+4")
        assert dict(app.engine.agent_base_weights()) == weights and not app.engine.paused
        await pilot.press("escape")  # in a field: leaves the field, keeps the form and its values
        assert app.screen is form and isinstance(app.focused, Button) and field.value.startswith("1e+4")
        await pilot.press("escape")  # outside a field: back to the cockpit
        assert isinstance(app.screen, MainScreen)


async def test_the_trail_field_is_offered_only_when_the_grid_trails_its_exits(
        make_cockpit: CockpitFactory, settings: Settings) -> None:
    for trailing_exits in (False, True):
        s = load_settings(overrides={"grid": {"trailing_exits": trailing_exits}})
        app = make_cockpit(settings_=s)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("b")
            form = app.screen
            assert isinstance(form, BacktestFormScreen)
            assert bool(form.query("#trail")) is trailing_exits
            form.query_one("#start", Input).value = "2017-08-05"
            assert ("trailing.distance" in form.build_request().overrides) is trailing_exits


async def test_an_empty_capital_is_refused_not_run_with_the_default(make_cockpit: CockpitFactory,
                                                                     settings: Settings) -> None:
    runs: list[Any] = []

    def recording(request: Any, progress: Any) -> Any:
        runs.append(request)
        raise AssertionError("an empty capital must not start a run")

    app = make_cockpit(backtest_runner=recording)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("b")
        form = app.screen
        assert isinstance(form, BacktestFormScreen)
        form.query_one("#capital", Input).value = "  "
        await pilot.press("ctrl+r")
        await pilot.pause()
        message = str(form.query_one("#form-message", Static).render())
        assert "capital is empty" in message and f"e.g. {settings.capital:g}" in message
        assert runs == [] and app.screen is form and not form.running
