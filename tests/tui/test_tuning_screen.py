"""The self-tuning screen (key `u`) on a paper session over real candles: the version in force, the
adaptive values, and `r` running the daily loop in its worker process."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable, Static

from tests.conftest import HOURLY_CDD
from tests.tui.conftest import SLICE, real_candles
from tests.tuning.streams import StreamFeed
from tests.tuning.test_daily import better_job
from trdr_tui.config import load_settings
from trdr_tui.core.clock import SimClock
from trdr_tui.engine.assembly import build_engine
from trdr_tui.market.importer import load_candle_file
from trdr_tui.store import Store
from trdr_tui.store.candles import CandleRepository
from trdr_tui.tui.app import make_app
from trdr_tui.tui.screens.tuning import TuningScreen
from trdr_tui.tuning.daily import attach_self_tuning

SIZE = (140, 40)


async def test_u_shows_the_version_in_force_and_r_adopts_a_better_one(cockpit_store: Store) -> None:
    # the bars stream on a simulated clock (an hour every 20 ms): no daily run of its own during the test
    settings = load_settings(overrides={"tuning": {"daily_interval_hours": 8_000.0}})
    bars = real_candles()
    CandleRepository(cockpit_store).insert("BTC-USD", "1h", load_candle_file(HOURLY_CDD)[:SLICE.start])
    done: list[bool] = []
    engine = build_engine(settings, mode="paper", store=cockpit_store, clock=SimClock(int(bars.ts[0])),
                          feed=StreamFeed(bars, settings.symbol, settings.timeframe, pause_s=0.02,
                                          until=lambda: bool(done)))
    tuner = attach_self_tuning(engine, cockpit_store, job=better_job)
    assert tuner is not None
    app = make_app(settings, engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("u")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TuningScreen)
        version = screen.query_one("#tuning-version", Static)
        assert "the configuration as loaded" in str(version.render())
        table = screen.query_one("#tuning-values", DataTable)
        assert table.row_count == 4
        await pilot.press("r")
        for _ in range(600):
            if tuner.last_verdict is not None:
                break
            await asyncio.sleep(0.05)
        assert tuner.last_verdict is not None and tuner.last_verdict.startswith("adopted")
        screen.refresh_status()
        await pilot.pause()
        text = str(version.render())
        assert tuner.version_name is not None and tuner.version_name in text and "adopted" in text
        assert "last run" in str(screen.query_one("#tuning-daily", Static).render())
        done.append(True)
        await pilot.press("escape")
        assert not isinstance(app.screen, TuningScreen)


async def test_u_in_a_replay_says_where_self_tuning_runs(make_cockpit: object) -> None:
    app = make_cockpit()  # type: ignore[operator]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("u")
        await pilot.pause()
        assert not isinstance(app.screen, TuningScreen)
        assert any("real paper and live sessions" in str(n.message) for n in app._notifications)
