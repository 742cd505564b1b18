"""The end of a run writes the DecisionSource's buffered decision-log rows (flush/close on stop)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.engine.assembly import build_engine
from trdr_tui.store.db import Store


def logged(store: Store, run_id: str) -> int:
    return int(store.conn.execute("SELECT count(*) FROM agent_decisions WHERE run_id = ?", [run_id]).fetchone()[0])


async def test_a_streamed_backtest_writes_its_last_partial_batch_of_decision_rows(hourly: CandleArrays,
                                                                                tmp_path: Path) -> None:
    """Backtests log decisions in batches of `backtest.batch_size` rows (5000): 300 bars are one
    partial batch, which only the engine's flush at the end of the run writes."""
    bars = hourly[:300]
    with Store(tmp_path / "d.duckdb") as store:
        paper = build_engine(load_settings(), mode="paper", candles=bars, store=store, run_id="p-1")
        await paper.run()  # paper logs each decision as it happens: the reference count
        expected = logged(store, "p-1")
        assert expected > 300

        engine = build_engine(load_settings(), mode="backtest", candles=bars, store=store, run_id="b-1")
        engine.batch_decisions = False  # the per-candle path, whose rows are buffered
        await engine.run()
        assert engine.decision_arrays is None
        assert logged(store, "b-1") == expected


async def test_stopping_mid_run_writes_the_decisions_so_far(hourly: CandleArrays, tmp_path: Path) -> None:
    bars = hourly[:400]
    with Store(tmp_path / "s.duckdb") as store:
        engine = build_engine(load_settings(), mode="backtest", candles=bars, store=store, run_id="s-1")
        engine.batch_decisions = False

        async def stop_soon() -> None:
            while engine.record.bars < 200:
                await asyncio.sleep(0)
            await engine.stop("user quit")

        stopper = asyncio.get_running_loop().create_task(stop_soon())
        await engine.run()
        await stopper
        done = engine.record.bars
        assert 200 <= done < len(bars)
        reference = build_engine(load_settings(), mode="paper", candles=bars[:done], store=store, run_id="r-1")
        await reference.run()
        assert logged(store, "s-1") == logged(store, "r-1") > 0
