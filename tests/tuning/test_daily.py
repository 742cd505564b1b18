"""The daily loop of paper/live (PRD §3.5): a worker process re-optimizes on recent real candles while the
engine goes on; a better version is blended in with the learning rate, saved, recorded, logged and
resumed; a failing or killed worker changes nothing."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from tests.tuning.streams import StreamFeed
from trdr_tui.backtest.params import ParameterVersions
from trdr_tui.config import Settings, load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.clock import SimClock
from trdr_tui.core.events import LogEvent
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.loop import Engine
from trdr_tui.store.candles import CandleRepository
from trdr_tui.store.db import Store
from trdr_tui.store.sessions import ParameterRepository, SessionRepository
from trdr_tui.store.tuning import TuningRepository
from trdr_tui.tuning.apply import live_values
from trdr_tui.tuning.daily import TOPIC, DailyResult, ParametersChanged, SelfTuning, attach_self_tuning, blend

WINNER = {"trailing.distance": 0.025, "risk.max_position": 0.8}


def better_job(settings_data: dict[str, Any], bars: CandleArrays, genes: list[str], *_: Any) -> DailyResult:
    """A worker whose winner beats the version in force by 3 points out of sample."""
    from trdr_tui.config import convert_settings

    s = convert_settings(settings_data, "test")
    current = {"trailing.distance": s.trailing.distance, "risk.max_position": s.risk.max_position}
    return DailyResult(current=current, winner=WINNER, current_score=0.01, winner_score=0.04, train_score=0.05,
                       trials=3, bars=len(bars), worker_pid=os.getpid())


def failing_job(*_: Any) -> DailyResult:
    raise RuntimeError("the study blew up")


def dying_job(*_: Any) -> DailyResult:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def _settings(*, trailing_exits: bool = False, **tuning: Any) -> Settings:
    # the clock is simulated (an hour per streamed bar): only the run a test asks for happens
    return load_settings(overrides={"grid": {"trailing_exits": trailing_exits},
                                    "tuning": {"daily_trials": 3, "daily_lookback_days": 30.0,
                                               "daily_interval_hours": 8_000.0, **tuning}})


def _engine(settings: Settings, bars: CandleArrays, store: Store, **feed: Any) -> Engine:
    return build_engine(settings, mode="paper", store=store, clock=SimClock(int(bars.ts[0])),
                        feed=StreamFeed(bars, settings.symbol, settings.timeframe, **feed))


def _events(engine: Engine) -> tuple[list[ParametersChanged], list[LogEvent]]:
    changes: list[ParametersChanged] = []
    logs: list[LogEvent] = []
    engine.bus.subscribe(TOPIC, lambda _t, e: changes.append(e))
    for level in ("info", "error"):
        engine.bus.subscribe(f"log.{level}", lambda _t, e: logs.append(e) if e.fields.get("source") == "tuning"
                             else None)
    return changes, logs


async def _run_once(settings: Settings, bars: CandleArrays, store: Store, job: Any = None
                    ) -> tuple[Engine, SelfTuning, list[ParametersChanged], list[LogEvent]]:
    """A paper session that asks for a daily run at its first bar and streams until it is over."""
    box: list[SelfTuning] = []
    engine = _engine(settings, bars, store, pause_s=0.005,
                     until=lambda: bool(box) and box[0].last_verdict is not None)
    changes, logs = _events(engine)
    t = attach_self_tuning(engine, store, **({"job": job} if job is not None else {}))
    assert t is not None
    box.append(t)
    engine.bus.subscribe(engine.candle_topic, lambda _t, _e: t.run_now() if engine.bars_done == 0 else None)
    await engine.run()
    return engine, t, changes, logs


@pytest.fixture()
def stored(hourly: CandleArrays, store: Store) -> CandleArrays:
    """About six weeks of real hourly candles in the store (2018-01 … 2018-02); the session streams on."""
    CandleRepository(store).insert("BTC-USD", "1h", hourly[4000:4800])
    return hourly[4800:5400]


@pytest.mark.parametrize("trailing_exits", [False, True])
def test_trailing_distance_is_tuned_only_when_the_grid_trails_its_exits(stored: CandleArrays, store: Store,
                                                                         trailing_exits: bool) -> None:
    """With post-only take-profits (the default) nothing reads trailing.distance: neither the daily
    loop nor the adaptive values vary it; with trailing exits both do."""
    settings = _settings(trailing_exits=trailing_exits)
    assert "trailing.distance" in settings.tuning.daily_genes and "trailing.distance" in settings.tuning.adaptive_keys
    t = attach_self_tuning(_engine(settings, stored[:5], store), store)
    assert t is not None and t.adaptive is not None
    assert ("trailing.distance" in t.genes) is trailing_exits
    assert ("trailing.distance" in t.adaptive.values) is trailing_exits
    assert {"grid.swing_fraction", "risk.max_position", "agents.min_confidence"} <= set(t.genes)


async def test_the_engine_keeps_processing_bars_while_the_worker_optimizes(stored: CandleArrays,
                                                                           store: Store) -> None:
    settings = _settings()
    tuner: list[SelfTuning] = []
    seen: dict[str, int] = {}

    def finished() -> bool:
        return bool(tuner) and "start" in seen and not tuner[0].running

    engine = _engine(settings, stored, store, pause_s=0.002, until=finished)
    changes, logs = _events(engine)
    t = attach_self_tuning(engine, store)
    assert t is not None
    tuner.append(t)

    def first_bar(_topic: str, _e: object) -> None:
        if "start" not in seen:
            seen["start"] = engine.bars_done
            assert t.run_now("test")
            assert not t.run_now("again")  # one run at a time

    engine.bus.subscribe(engine.candle_topic, first_bar)
    await engine.run()
    result = t.last_result
    assert result is not None, t.last_verdict
    assert result.worker_pid != os.getpid()  # a separate process did the work
    assert result.trials == 3 and result.bars >= 720
    assert engine.bars_done - seen["start"] >= 20  # bars went through the engine meanwhile
    recorded = TuningRepository(store).changes(symbol="BTC-USD")
    assert len(recorded) == 1 and recorded[0].reason == t.last_verdict
    assert changes[-1].source == "daily" and changes[-1].reason == t.last_verdict
    assert any(e.message.startswith("daily self-tuning (test)") for e in logs)
    if recorded[0].adopted:  # which way it goes is the data's call; either way it is consistent
        assert recorded[0].to_version == t.version_id and "adopted" in t.reason
    else:
        assert t.last_verdict is not None and t.last_verdict.startswith("kept")
        assert t.version_id is None


async def test_a_better_winner_is_blended_in_saved_recorded_and_resumed(stored: CandleArrays, store: Store) -> None:
    # adaptive values on, but holding still (they need more outcomes than this session has)
    settings = _settings(trailing_exits=True, daily_genes=["trailing.distance", "risk.max_position"],
                         adaptive_min_outcomes=10_000)
    before = live_values(_engine(settings, stored[:5], store))
    engine, t, changes, logs = await _run_once(settings, stored, store, better_job)
    want = blend({k: before[k] for k in WINNER}, WINNER, 0.1)
    after = live_values(engine)
    assert after["trailing.distance"] == pytest.approx(want["trailing.distance"])
    assert after["risk.max_position"] == pytest.approx(before["risk.max_position"] + 0.1 * (0.8 - before["risk.max_position"]))
    assert after["grid.swing_fraction"] == before["grid.swing_fraction"]
    [ch] = TuningRepository(store).changes()
    assert ch.adopted and ch.symbol == "BTC-USD" and ch.from_version is None
    assert ch.changes["trailing.distance"] == [pytest.approx(before["trailing.distance"]),
                                               pytest.approx(want["trailing.distance"])]
    assert "+4.00% vs +1.00%" in ch.reason
    version = ParameterVersions(ParameterRepository(store), SessionRepository(store)).load(ch.to_version or "")
    assert version.tags == ["daily"] and version.notes == ch.reason
    assert version.parameters["trailing.distance"] == pytest.approx(want["trailing.distance"])
    assert changes[-1].adopted and changes[-1].version_id == version.id
    assert any("parameters: version" in e.message for e in logs)
    status = t.status()
    assert status.version_id == version.id and status.since_ns is not None and "adopted" in status.reason
    trail = next(a for a in status.adaptive if a["name"] == "trailing.distance")
    assert trail["value"] == pytest.approx(want["trailing.distance"])
    assert trail["last"]["reason"] == f"daily loop adopted {version.name}"

    again = _engine(settings, stored[:5], store)
    t2 = attach_self_tuning(again, store)
    assert t2 is not None and t2.version_id == version.id and t2.reason == ch.reason
    assert live_values(again)["trailing.distance"] == pytest.approx(want["trailing.distance"])


@pytest.mark.parametrize(("job", "said"), [(failing_job, "RuntimeError: the study blew up"),
                                           (dying_job, "the worker process died")])
async def test_a_failing_or_killed_worker_is_logged_and_the_version_stays(
        stored: CandleArrays, store: Store, job: Any, said: str) -> None:
    settings = _settings(adaptive=False)  # only the daily run could move the values here
    before = live_values(_engine(settings, stored[:5], store))
    engine, _t, changes, logs = await _run_once(settings, stored, store, job)
    assert engine.bars_done > 1 and not engine.running  # the run went on, and ended cleanly
    assert live_values(engine) == before
    [ch] = TuningRepository(store).changes()
    assert not ch.adopted and said in ch.reason and "the version in force stays" in ch.reason
    assert any(e.level == "error" and said in e.message for e in logs)
    assert changes[-1].adopted is False
    # a second session after a dead worker runs again
    await _run_once(settings, stored, store, failing_job)
    assert len(TuningRepository(store).changes()) == 2


async def test_too_few_stored_bars_are_refused_with_a_hint(hourly: CandleArrays, store: Store) -> None:
    settings = _settings()
    _e, t, _c, _l = await _run_once(settings, hourly[:30], store)
    assert t.last_verdict is not None and "too few" in t.last_verdict and "trdr data backfill" in t.last_verdict


def test_the_daily_keys_are_validated() -> None:
    from trdr_tui.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"risk\.stop_loss"):
        load_settings(overrides={"tuning": {"daily_genes": ["risk.stop_loss"]}})


def test_a_wall_clock_session_arms_the_daily_timer_when_it_starts(stored: CandleArrays, store: Store) -> None:
    """Attached before the event loop runs (as the CLI does), on the real clock."""
    import asyncio

    from trdr_tui.core.clock import NS_PER_SECOND, WallClock

    settings = _settings(daily_interval_hours=24.0)
    engine = build_engine(settings, mode="paper", store=store,
                          feed=StreamFeed(stored[:3], settings.symbol, settings.timeframe))
    assert isinstance(engine.clock, WallClock)
    t = attach_self_tuning(engine, store)
    assert t is not None and t.timer is None
    asyncio.run(engine.run())
    assert t.timer is not None and not t.timer.polled
    assert t.last_run_ns is None and t.status().next_run_ns is None  # the run ended: the timer was cancelled
    assert t.timer.interval_ns == 24 * 3600 * NS_PER_SECOND
