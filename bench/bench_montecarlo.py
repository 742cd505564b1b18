"""Seconds for a Monte Carlo bootstrap of 10,000 paths × 1,000 trades.

The trade returns resampled are real: the round trips of the `simple-trailing` preset on the hourly
Coinbase file (as fractions of equity), drawn 1,000 per path. Best of `--repeat` runs; the first
run is shown too (it includes numpy's first-touch allocation of the blocks).

    .venv/bin/python bench/bench_montecarlo.py [--paths 10000] [--trades 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import HOURLY

from trdr_tui.backtest.metrics import trade_returns_on_equity
from trdr_tui.backtest.montecarlo import monte_carlo
from trdr_tui.backtest.runner import run_engine
from trdr_tui.config import load_settings
from trdr_tui.market.importer import load_candle_file


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--paths", type=int, default=10_000)
    ap.add_argument("--trades", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    run, _ = run_engine(load_settings(), load_candle_file(HOURLY), preset="simple-trailing")
    r = trade_returns_on_equity(run.trades, run.ts, run.equity, run.initial_capital)
    print(f"resampling {len(r):,} real trade returns (simple-trailing, hourly file)")
    times = []
    result = None
    for i in range(args.repeat):
        t = time.perf_counter()
        result = monte_carlo(r, paths=args.paths, trades_per_path=args.trades, seed=42 + i)
        times.append(time.perf_counter() - t)
    assert result is not None
    print(f"{args.paths:,} paths × {args.trades:,} trades: best {min(times):.3f} s, first {times[0]:.3f} s, "
          f"median {sorted(times)[len(times) // 2]:.3f} s")
    print(f"median return {result.median_return:.4%}, 95 % interval {result.ci95_low:.4%} … {result.ci95_high:.4%}, "
          f"P(loss) {result.probability_of_loss:.2%}, expected max drawdown {result.expected_max_drawdown:.2%}")


if __name__ == "__main__":
    main()
