"""Does the slippage minimizer (PRD §3.4, `[slippage]`) pay after fees? Runs, on the development period
(2017-07 → 2018-12, where the default is decided) and the held-out one (2019-01 → 2019-10, to confirm),
each strategy that places trailing orders with the minimizer off and on, at the configured retail fees:
the grid with trailing exits (`grid.trailing_exits = true`) and the `simple-trailing` preset. Prints
fills, maker share, return, Sharpe, Sortino, max drawdown, Calmar, fees and fees / gross per run.

    .venv/bin/python bench/bench_slippage.py [--data FILE]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench_strategy_oos import COLUMNS, DATA, PERIODS, _row, _slice

from trdr_tui.backtest.runner import evaluate, run_engine
from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.market.importer import load_candle_file

VARIANTS: tuple[tuple[str, str | None, dict[str, Any]], ...] = (
    ("grid, trailing exits", None, {"grid": {"trailing_exits": True}}),
    ("simple-trailing", "simple-trailing", {}),
)


def run(bars: CandleArrays, preset: str | None, overrides: dict[str, Any], enabled: bool) -> list[str]:
    settings = load_settings(overrides={**overrides, "slippage": {"enabled": enabled}})
    data, _engine = run_engine(settings, bars, preset=preset)
    results, _ = evaluate(data, bars, settings, monte_carlo_paths=0)
    return _row(results["fills"], results["maker_share"], results, results["fees_paid"], data.initial_capital)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args(argv)
    bars = load_candle_file(args.data)
    for title, start, end in PERIODS:
        part = _slice(bars, start, end)
        print(f"\n{title}: {start} → {end} (exclusive), 10,000 USD, fees from [fees]")
        print(f"| {'strategy':<34} | " + " | ".join(f"{c:>10}" for c in COLUMNS) + " |")
        print("|" + "-" * 36 + "|" + "|".join("-" * 12 for _ in COLUMNS) + "|")
        for name, preset, overrides in VARIANTS:
            for enabled in (False, True):
                cells = run(part, preset, overrides, enabled)
                label = f"{name}, minimizer {'on' if enabled else 'off'}"
                print(f"| {label:<34} | " + " | ".join(f"{c:>10}" for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
