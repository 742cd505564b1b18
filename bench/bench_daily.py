"""The daily self-tuning loop of paper/live: how long one run takes, and that the engine is not held up.

A paper engine streams real hourly candles (2018-02 onward of the dev file) with a real pause between
candles, as a live feed would, on a store holding the 30 days before them. At the first candle it
asks for a daily run with the configured `[tuning]` (default 30 trials, 2 folds, a quarter held out).
Printed: the run's wall time and the worker's CPU-free share of it, the bars the engine processed
meanwhile, and the gaps between consecutive processed bars (p50 / p99 / max) against the pause — a
blocked event loop would show as a gap as long as the run.

    .venv/bin/python bench/bench_daily.py [--pause-ms 10] [--trials 30]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_engine import HOURLY

from tests.tuning.streams import StreamFeed
from trdr_tui.backtest.data import load_file
from trdr_tui.config import load_settings
from trdr_tui.core.clock import SimClock
from trdr_tui.engine.assembly import build_engine
from trdr_tui.store.candles import CandleRepository
from trdr_tui.store.db import Store
from trdr_tui.tuning.daily import attach_self_tuning


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pause-ms", type=float, default=10.0)
    ap.add_argument("--trials", type=int, default=30)
    args = ap.parse_args()
    bars = load_file(HOURLY)[0]
    settings = load_settings(overrides={"tuning": {"daily_trials": args.trials, "daily_interval_hours": 8000.0}})
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.duckdb") as store:
        CandleRepository(store).insert(settings.symbol, settings.timeframe, bars[4000:4720])
        stream = bars[4720:]
        box: list = []
        stamps: list[float] = []
        engine = build_engine(settings, mode="paper", store=store, clock=SimClock(int(stream.ts[0])),
                              feed=StreamFeed(stream, settings.symbol, settings.timeframe,
                                              pause_s=args.pause_ms / 1e3,
                                              until=lambda: bool(box) and box[0].last_verdict is not None))
        tuner = attach_self_tuning(engine, store)
        assert tuner is not None
        box.append(tuner)
        t0: list[float] = []

        def on_bar(_t: str, _e: object) -> None:
            stamps.append(time.perf_counter())
            if not t0:
                t0.append(time.perf_counter())
                tuner.run_now("bench")

        engine.bus.subscribe(engine.candle_topic, on_bar)
        await engine.run()
        wall = time.perf_counter() - t0[0]
        gaps = np.diff(np.asarray(stamps)) * 1e3
        r = tuner.last_result
        print(f"daily run: {wall:.1f} s wall ({r.trials if r else 0} trials on {r.bars if r else 0} bars)")
        print(f"verdict: {tuner.last_verdict}")
        print(f"bars processed by the engine meanwhile: {engine.bars_done - 1}")
        print(f"gap between bars (pause {args.pause_ms:g} ms): p50 {np.percentile(gaps, 50):.1f} ms, "
              f"p99 {np.percentile(gaps, 99):.1f} ms, max {gaps.max():.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
