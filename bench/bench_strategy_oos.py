"""The strategy table out of sample: the default configuration against buy-and-hold and fixed grids.

Splits the hourly Coinbase BTC-USD file into the development period (2017-07 → 2018-12, where the
defaults were chosen) and the held-out period (2019-01 → 2019-10, never used to choose anything) and
runs, on each, with the configured retail fees (`[fees]`: 0.40 % maker / 0.60 % taker at the lowest
tier): the default configuration through the engine, buy-and-hold, and classic fixed grids at 1.5 %
and 3 % spacing. Prints one table per period: fills, maker share, total and annualized return,
Sharpe, Sortino, max drawdown, Calmar, fees, and fees as a share of gross profit (P&L before fees;
"n/a" when the gross P&L is not positive).

    .venv/bin/python bench/bench_strategy_oos.py [--data FILE] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from trdr_tui.backtest import metrics
from trdr_tui.backtest.baselines import BaselineResult, buy_and_hold, fixed_grid
from trdr_tui.backtest.runner import evaluate, fee_rates, run_engine
from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.market.importer import load_candle_file

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "coinbase_btcusd_1h_2017-07_2019-10.cdd.csv"
PERIODS = (("2017-07 → 2018-12 (development)", "2017-07-01", "2019-01-01"),
           ("2019-01 → 2019-10 (held out)", "2019-01-01", "2019-11-01"))
COLUMNS = ("fills", "maker", "total", "annual", "Sharpe", "Sortino", "max DD", "Calmar", "fees", "fees/gross")


def _ns(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1e9)


def _slice(bars: CandleArrays, start: str, end: str) -> CandleArrays:
    idx = np.flatnonzero((bars.ts >= _ns(start)) & (bars.ts < _ns(end)))
    return bars[int(idx[0]): int(idx[-1]) + 1]


def _row(fills: int, maker: float | None, stats: dict[str, Any], fees: float, initial: float) -> list[str]:
    gross = float(stats["final_equity"]) - initial + fees
    return [f"{fills:,}", "n/a" if maker is None else f"{maker:.0%}", f"{stats['total_return']:+.2%}",
            f"{stats['annualized_return']:+.2%}", f"{stats['sharpe']:.2f}", f"{stats['sortino']:.2f}",
            f"{stats['max_drawdown']:.2%}", f"{stats['calmar']:.2f}", f"{fees:,.2f}",
            f"{fees / gross:.0%}" if gross > 0 else "n/a"]


def _baseline_row(b: BaselineResult, ts: np.ndarray, initial: float) -> list[str]:
    stats = metrics.equity_stats(b.equity, ts, initial)
    return _row(b.fills, b.maker_fills / b.fills if b.fills else None, stats, b.fees_paid, initial)


def _bot(bars: CandleArrays, overrides: dict[str, Any]) -> tuple[Any, dict[str, Any], list[str]]:
    settings = load_settings(overrides=overrides)
    run, _engine = run_engine(settings, bars)
    results, _ = evaluate(run, bars, settings, monte_carlo_paths=0)
    return run, results, _row(results["fills"], results["maker_share"], results, results["fees_paid"],
                              run.initial_capital)


def table(bars: CandleArrays, overrides: dict[str, Any]) -> list[tuple[str, list[str]]]:
    settings = load_settings(overrides=overrides)
    run, results, row = _bot(bars, overrides)
    initial = run.initial_capital
    rows = [("default configuration", row)]
    maker, taker = fee_rates(settings, None)
    rows.append(("buy-and-hold", _baseline_row(buy_and_hold(bars, initial, taker), run.ts, initial)))
    for spacing in (0.015, 0.03):
        grid = fixed_grid(bars, initial, spacing=spacing, levels=settings.grid.levels, maker_fee=maker,
                          taker_fee=taker)
        rows.append((f"fixed grid {spacing:.1%}", _baseline_row(grid, run.ts, initial)))
    if results["halts"]:
        rows.append(("  (halts: " + "; ".join(f"{h['at']} → {h['resumed_at']}" for h in results["halts"]) + ")",
                     []))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override one setting (JSON value), e.g. --set grid.swing_fraction=0.45")
    args = ap.parse_args(argv)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    bars = load_candle_file(args.data)
    for title, start, end in PERIODS:
        print(f"\n{title}: {start} → {end} (exclusive), 10,000 USD, fees from [fees]")
        print(f"| {'strategy':<22} | " + " | ".join(f"{c:>10}" for c in COLUMNS) + " |")
        print("|" + "-" * 24 + "|" + "|".join("-" * 12 for _ in COLUMNS) + "|")
        for name, cells in table(_slice(bars, start, end), overrides):
            if cells:
                print(f"| {name:<22} | " + " | ".join(f"{c:>10}" for c in cells) + " |")
            else:
                print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
