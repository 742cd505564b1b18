"""Bars per second of the `simple-trailing` preset through the full event-driven engine.

Two series: the real hourly Coinbase file (20,111 bars) and a 500,000-bar series built from it by
alternating forward and time-reversed copies (the price stays in its real range; a reversed bar swaps
its open and close). Timing covers `engine.run()` only (data loading and engine construction are
reported separately). Each figure is the best of `--repeat` runs, as wall-clock and as process CPU
time (the CPU figure is steadier on a busy machine; the wall figure is the one to compare).

    .venv/bin/python bench/bench_engine.py [--repeat 3] [--bars 500000] [--with-store]

Peer figures for the same strategy on the same machine (from the issue): backtrader ~14,000 bars/s,
NautilusTrader ~20,000, backtesting.py ~170,000, vectorbt (numba) ~4,500,000.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from pathlib import Path

import numpy as np

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.engine.assembly import build_engine
from trdr_tui.market.importer import load_candle_file
from trdr_tui.store.db import Store

REPO = Path(__file__).resolve().parent.parent
HOURLY = REPO.parent / "shared" / "data" / "coinbase_btcusd_1h_2017-07_2019-10.cdd.csv"
HOUR_NS = 3_600_000_000_000


def mirrored(bars: CandleArrays, n: int) -> CandleArrays:
    """Forward, reversed, forward, … copies of `bars` until `n` bars, on a continuing hourly clock."""
    fwd = (bars.open, bars.high, bars.low, bars.close, bars.volume)
    rev = (bars.close[::-1], bars.high[::-1], bars.low[::-1], bars.open[::-1], bars.volume[::-1])
    reps = -(-n // len(bars))
    cols = [np.concatenate([(fwd if k % 2 == 0 else rev)[j] for k in range(reps)])[:n] for j in range(5)]
    ts = int(bars.ts[0]) + HOUR_NS * np.arange(n, dtype=np.int64)
    return CandleArrays(ts, *(np.ascontiguousarray(c) for c in cols))


def run_once(bars: CandleArrays, with_store: bool) -> tuple[float, float, int, float]:
    settings = load_settings()
    t0 = time.perf_counter()
    store = Store(":memory:") if with_store else None
    engine = build_engine(settings, mode="backtest", candles=bars, preset="simple-trailing", store=store)
    build = time.perf_counter() - t0
    gc.collect()
    c1 = time.process_time()
    t1 = time.perf_counter()
    asyncio.run(engine.run())
    t2 = time.perf_counter()
    cpu = time.process_time() - c1
    engine.record.equity_curve()  # must stay cheap on long series (vectorized from change points)
    if store is not None:
        store.close()
    return build, t2 - t1, cpu, len(engine.record.fills), engine.record.final_equity


def bench(name: str, bars: CandleArrays, repeat: int, with_store: bool) -> None:
    best = best_cpu = float("inf")
    build = 0.0
    fills = 0
    final = 0.0
    for _ in range(repeat):
        build, run, cpu, fills, final = run_once(bars, with_store)
        best = min(best, run)
        best_cpu = min(best_cpu, cpu)
    print(f"{name:<22} {len(bars):>9,} bars  {len(bars) / best:>10,.0f} bars/s wall  "
          f"{len(bars) / best_cpu:>10,.0f} bars/s cpu  run {best * 1000:7.1f} ms  build {build * 1000:5.1f} ms  "
          f"fills {fills:>6,}  final equity {final:.10g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bars", type=int, default=500_000)
    ap.add_argument("--with-store", action="store_true", help="also persist orders/fills to an in-memory DuckDB")
    args = ap.parse_args()
    t = time.perf_counter()
    real = load_candle_file(HOURLY)
    print(f"loaded {len(real):,} bars in {(time.perf_counter() - t) * 1000:.0f} ms")
    long = mirrored(real, args.bars)
    print(f"mirrored series: {len(long):,} bars, close range {long.close.min():.2f} … {long.close.max():.2f}")
    suffix = " +store" if args.with_store else ""
    bench("real hourly" + suffix, real, args.repeat, args.with_store)
    bench("mirrored" + suffix, long, args.repeat, args.with_store)


if __name__ == "__main__":
    main()
