"""Optimizer speed: ms per candidate and trials per second with N worker processes.

A candidate is one call of the objective (`trdr_tui.tuning.objective.evaluate`): three walk-forward
folds after 200 warm-up bars each, on one year of the real hourly Coinbase file (2018), every agent's
signals reused from the per-dataset cache after the first call. Trials/s is a whole TPE study
(journal storage in a temporary directory) of `--trials` trials with `--workers` processes, start-up
of the workers included.

    .venv/bin/python bench/bench_optimize.py [--trials 16] [--workers 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import HOURLY

from trdr_tui.backtest.data import load_file, parse_time
from trdr_tui.config import load_settings
from trdr_tui.tuning.genome import genome
from trdr_tui.tuning.objective import DatasetCache, ObjectiveConfig, evaluate
from trdr_tui.tuning.optimizer import StudySpec, run_study


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    bars, _ = load_file(HOURLY, start=parse_time("2018-01-01", "start"), end=parse_time("2019-01-01", "end"))
    settings = load_settings()
    cfg = ObjectiveConfig()
    cache = DatasetCache(bars, cfg)
    t0 = time.perf_counter()
    evaluate(cache, settings, {})
    first = time.perf_counter() - t0
    best = float("inf")
    for i in range(args.repeat):
        t0 = time.perf_counter()
        evaluate(cache, settings, {"trailing.distance": 0.01 + 0.001 * i})
        best = min(best, time.perf_counter() - t0)
    scored = sum(c - b for _, b, c in cache.slices)
    print(f"candidate: {len(bars):,} bars (3 folds, {scored:,} scored + {3 * cfg.warmup_bars} warm-up) | "
          f"first {first * 1e3:,.0f} ms | cached {best * 1e3:,.0f} ms ({scored / best:,.0f} scored bars/s) | "
          f"signal cache hits {cache.hits}")
    with tempfile.TemporaryDirectory() as tmp:
        spec = StudySpec(name="bench", storage=str(Path(tmp) / "bench.journal"), trials=args.trials,
                         genes=genome(settings), objective=cfg)
        t0 = time.perf_counter()
        out = run_study(spec, settings, bars, workers=args.workers)
        elapsed = time.perf_counter() - t0
    done = sum(1 for t in out.trials if t.state == "COMPLETE")
    print(f"study: {done} trials with {args.workers} workers in {elapsed:.1f} s | {done / elapsed:.2f} trials/s "
          f"| best score {out.best_value:+.4f}")


if __name__ == "__main__":
    main()
