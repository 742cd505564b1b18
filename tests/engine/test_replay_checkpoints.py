"""A max-speed replay checkpoints once per market day, and no more often than once per wall second."""

from __future__ import annotations

from pathlib import Path

import pytest

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.engine import loop
from trdr_tui.engine.assembly import REPLAY_MAX_SPEED_CHECKPOINT_WALL_S, build_replay_engine
from trdr_tui.store.db import Store


def auto_checkpoints(store: Store, run_id: str) -> int:
    store.sync()
    row = store.conn.execute("SELECT count(*) FROM checkpoints WHERE run_id = ? AND type = 'auto'", [run_id]).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("wall_ns_per_day", [0, 500_000_000, 2_000_000_000])
async def test_max_speed_replay_spaces_its_checkpoints_by_market_day_and_wall_time(
        hourly: CandleArrays, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wall_ns_per_day: int) -> None:
    bars = hourly[:24 * 20]  # 20 market days
    wall = [0]

    def monotonic_ns() -> int:  # the wall clock the checkpoint timer reads (once per market day)
        wall[0] += wall_ns_per_day
        return wall[0]

    monkeypatch.setattr(loop.time, "monotonic_ns", monotonic_ns)
    with Store(tmp_path / "r.duckdb") as store:
        replay = build_replay_engine(load_settings(), bars, speed=None, store=store, log=[])
        assert replay.checkpoint_min_wall_ns == REPLAY_MAX_SPEED_CHECKPOINT_WALL_S * 1e9
        await replay.run()
        written = auto_checkpoints(store, replay.run_id)
    days = len(bars) // 24  # market days the replay crosses
    if wall_ns_per_day == 0:  # the whole replay within one wall second: only the first due checkpoint
        assert written == 1
    elif wall_ns_per_day < 1_000_000_000:  # half a wall second per market day: every other one
        assert written in (days // 2, days // 2 + 1)
    else:  # more than a wall second per market day: every market day's
        assert written == days


async def test_a_paced_replay_checkpoints_every_market_day(hourly: CandleArrays, tmp_path: Path) -> None:
    with Store(tmp_path / "r.duckdb") as store:
        replay = build_replay_engine(load_settings(), hourly[:24 * 3], speed=1e6, store=store, log=[])
        assert replay.checkpoint_min_wall_ns == 0
