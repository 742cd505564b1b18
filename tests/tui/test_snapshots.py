"""Snapshots of the cockpit's screens at 120×40 and 80×24.

The real engine replays a fixed slice of real candles at max speed on its SimClock; the snapshot is taken
once the feed has ended, so the clock is frozen at the last bar and nothing on screen reads the wall
clock. Update with `pytest tests/tui --snapshot-update` after checking the SVGs by eye.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.tui.conftest import CockpitFactory, settle
from trdr_tui.tui.screens.backtest import BacktestFormScreen, BacktestResultsScreen

SIZES = [pytest.param((120, 40), id="120x40"), pytest.param((80, 24), id="80x24")]


@pytest.mark.parametrize("size", SIZES)
def test_main_screen(snap_compare: Any, make_cockpit: CockpitFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_cockpit(), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare: Any, make_cockpit: CockpitFactory, size: tuple[int, int]) -> None:
    async def open_help(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("question_mark")

    assert snap_compare(make_cockpit(), terminal_size=size, run_before=open_help)


async def _fill_form(pilot: Pilot[Any]) -> BacktestFormScreen:
    await settle(pilot)
    await pilot.press("b")
    form = pilot.app.screen
    assert isinstance(form, BacktestFormScreen)
    form.query_one("#start", Input).value = "2017-08-05"
    form.query_one("#end", Input).value = "2017-08-20"
    form.query_one("#preset").value = "simple-trailing"  # type: ignore[attr-defined]
    await pilot.pause()
    return form


@pytest.mark.parametrize("size", SIZES)
def test_backtest_form(snap_compare: Any, make_cockpit: CockpitFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_cockpit(), terminal_size=size, run_before=_fill_form)


@pytest.mark.parametrize("size", SIZES)
def test_backtest_results(snap_compare: Any, make_cockpit: CockpitFactory, size: tuple[int, int]) -> None:
    async def run_backtest(pilot: Pilot[Any]) -> None:
        form = await _fill_form(pilot)
        await pilot.press("ctrl+r")
        await form.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(pilot.app.screen, BacktestResultsScreen)

    assert snap_compare(make_cockpit(), terminal_size=size, run_before=run_backtest)
