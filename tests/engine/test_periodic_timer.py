"""Periodic timers (auto checkpoints): a due timer fires once per clock step, then counts from there."""

from __future__ import annotations

from typing import Any

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.clock import SimClock, TimerCallback, TimerHandle
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.timers import PeriodicTimer
from trdr_tui.store.db import Store

S = 1_000_000_000
HOUR = 3600 * S


def test_a_sim_clock_step_across_many_intervals_fires_once_and_reschedules_from_the_step() -> None:
    clock = SimClock(0)
    fired: list[int] = []
    timer = PeriodicTimer(clock, 60 * S, fired.append)
    for k in range(1, 4):  # three hourly steps, each crossing sixty 60 s intervals
        clock.advance_to(k * HOUR)
        timer.poll(clock.now_ns())
    assert fired == [HOUR, 2 * HOUR, 3 * HOUR]
    assert timer.next_ns == 3 * HOUR + 60 * S
    clock.advance_to(3 * HOUR + 30 * S)
    timer.poll(clock.now_ns())  # not due yet
    assert fired == [HOUR, 2 * HOUR, 3 * HOUR]
    timer.cancel()
    clock.advance_to(5 * HOUR)
    timer.poll(clock.now_ns())
    assert len(fired) == 3


class ManualClock:
    """A clock that is not a SimClock: its timers fire when the test says so, at the time it sets."""

    def __init__(self) -> None:
        self.now = 0
        self.timers: list[tuple[int, TimerCallback]] = []

    def now_ns(self) -> int:
        return self.now

    def call_at(self, when_ns: int, callback: TimerCallback) -> TimerHandle:
        self.timers.append((when_ns, callback))
        return TimerHandle(when_ns, callback)


def test_on_a_real_clock_a_late_firing_reschedules_from_the_current_time() -> None:
    clock = ManualClock()
    fired: list[int] = []
    PeriodicTimer(clock, 60 * S, fired.append)  # type: ignore[arg-type]
    assert [w for w, _ in clock.timers] == [60 * S]
    clock.now = 10 * 60 * S  # the loop was busy: the timer runs ten intervals late
    clock.timers[-1][1](60 * S)
    assert fired == [600 * S]
    assert [w for w, _ in clock.timers] == [60 * S, 660 * S]  # one next firing, not nine catch-ups


async def test_a_replay_with_a_60_s_checkpoint_interval_does_timer_work_once_per_hourly_bar(
        hourly: CandleArrays, tmp_path: Any) -> None:
    bars = hourly[:48]
    with Store(tmp_path / "t.duckdb") as store:
        engine = build_engine(load_settings(), mode="paper", candles=bars, preset="simple-trailing", store=store,
                              run_id="t-1", checkpoint_interval_s=60)
        assert isinstance(engine.clock, SimClock)
        clock = engine.clock
        calls = {"scheduled": 0, "checkpoints": 0}
        call_at = clock.call_at
        checkpoint = engine.checkpoint

        def counting_call_at(when: int, cb: TimerCallback) -> TimerHandle:
            calls["scheduled"] += 1
            return call_at(when, cb)

        def counting_checkpoint(kind: str = "manual") -> None:
            calls["checkpoints"] += 1
            checkpoint(kind)

        clock.call_at = counting_call_at  # type: ignore[method-assign]
        engine.checkpoint = counting_checkpoint  # type: ignore[method-assign]
        await engine.run()
        # no timer queued per crossed minute; one auto checkpoint per bar after the first, plus shutdown
        assert calls["scheduled"] < len(bars)
        assert calls["checkpoints"] == len(bars)
        autos = store.conn.execute("SELECT count(*) FROM checkpoints WHERE type = 'auto'").fetchone()[0]
        assert autos == len(bars) - 1
