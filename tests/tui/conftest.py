"""Cockpit fixtures: the real engine replaying a fixed slice of real Coinbase candles, a real DuckDB file.

The replay runs at max speed on the engine's SimClock, so when the feed ends the clock is frozen at the
last bar and every pane shows the same numbers on every run (snapshot tests rely on it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.conftest import HOURLY_CDD
from trdr_tui.config import Settings, load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.engine.assembly import REPLAY_CHECKPOINT_S, build_engine, replay_feed
from trdr_tui.engine.loop import Engine
from trdr_tui.market.importer import load_candle_file
from trdr_tui.store import Store
from trdr_tui.tui.app import TrdrApp, make_app
from trdr_tui.tui.services import EngineBacktests, slice_candles
from trdr_tui.tui.widgets.candles import CandleChart

# 2017-08-01 → ~2017-08-26: a fixed slice with trending and ranging bars, fills on both sides.
SLICE = slice(720, 1320)
RUN_ID = "pilot"
PERSIST_BARS = 200

_CANDLES: CandleArrays | None = None


def real_candles() -> CandleArrays:
    global _CANDLES
    if _CANDLES is None:
        _CANDLES = load_candle_file(HOURLY_CDD)[SLICE]
    return _CANDLES


def build_real_engine(settings: Settings, store: Store | None, *, preset: str | None = None,
                      candles: CandleArrays | None = None, run_id: str = RUN_ID) -> Engine:
    """Paper mode, replay feed at max speed (SimClock), the configured agents unless a preset is named."""
    bars = candles if candles is not None else real_candles()
    return build_engine(settings, mode="paper", feed=replay_feed(settings, bars, None), store=store, preset=preset, run_id=run_id, checkpoint_interval_s=REPLAY_CHECKPOINT_S)


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def cockpit_store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "cockpit.duckdb")
    yield store  # type: ignore[misc]
    store.close()


CockpitFactory = Callable[..., TrdrApp]


@pytest.fixture
def make_cockpit(settings: Settings, cockpit_store: Store) -> CockpitFactory:
    """Build the app around a real engine; keyword arguments go to make_app.

    `persist=True` gives the engine the DuckDB file store (checkpoints, orders, weights); otherwise it
    runs without one, which is what makes a 600-bar replay take about a second.
    """

    def factory(*, preset: str | None = None, settings_: Settings | None = None,
                persist: bool = False, **kwargs: Any) -> TrdrApp:
        s = settings_ or settings
        if persist:  # the store writes every order transition: a shorter replay keeps the test quick
            engine = build_real_engine(s, cockpit_store, preset=preset, candles=real_candles()[:PERSIST_BARS])
        else:
            engine = build_real_engine(s, None, preset=preset)
        kwargs.setdefault("backtest_runner", EngineBacktests(s, slice_candles(real_candles())))
        return make_app(s, engine, **kwargs)

    return factory


async def settle(pilot: Pilot[Any]) -> None:
    """Wait for the engine worker to reach the end of the replay, then draw every pane once."""
    app = pilot.app
    assert isinstance(app, TrdrApp)
    await app.workers.wait_for_complete()
    while not app.engine_finished or app.main.message_queue_size:  # the last events are handled
        await pilot.pause(0.02)
    # The chart draws in a thread and at most 4 times a second, so the last redraw may have been cut
    # short by that limit or show an earlier bar: redraw until the picture shows the final state.
    chart = app.main.query_one(CandleChart)
    chart.dirty = True
    for _ in range(200):
        app.refresh_panes()
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not chart.dirty and not chart.drawing:
            break
        await pilot.pause(0.05)
    else:
        raise AssertionError("the chart never finished drawing the final state")
