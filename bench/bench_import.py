"""Import speed on a 500,000-row candle CSV built from the real hourly Coinbase file.

The real 20,111 hourly bars are tiled with continuing timestamps until there are 500,000 rows, written
in the CryptoDataDownload layout (banner line, `2019-10-17 09-AM` dates, newest first) and as a plain
Unix-seconds OHLCV CSV. Each is imported into a fresh DuckDB file in a temporary directory.

    .venv/bin/python bench/bench_import.py [--rows 500000]

Prints rows/s for: reading + validating, storing, the whole import, and a re-import (every bar already
stored). Also times the exact line-by-line reader that runs only when a file has an error.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trdr_tui.market import importer  # noqa: E402
from trdr_tui.market.importer import import_candle_file, read_candle_file  # noqa: E402
from trdr_tui.store import Store  # noqa: E402

HOURLY = REPO.parent / "shared" / "data" / "coinbase_btcusd_1h_2017-07_2019-10.cdd.csv"
HOUR_S = 3600


def build(rows: int, out: Path, layout: str) -> Path:
    """Tile the real bars (oldest first) to `rows` bars with hourly timestamps that keep going."""
    real = read_candle_file(HOURLY, "1h").candles
    t0 = int(real.ts[0]) // 10**9
    cols = [c.tolist() for c in (real.open, real.high, real.low, real.close, real.volume)]
    n = len(real)
    path = out / f"bench_{layout}.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        if layout == "cdd":
            f.write("Timestamps are UTC timezone,https://www.CryptoDataDownload.com\n")
            w.writerow(["date", "symbol", "open", "high", "low", "close", "volume_btc", "volume"])
            for k in reversed(range(rows)):  # newest first, as published
                i = k % n
                when = datetime.fromtimestamp(t0 + k * HOUR_S, tz=UTC).strftime("%Y-%m-%d %I-%p")
                o, h, lo, c, v = (col[i] for col in cols)
                w.writerow([when, "BTCUSD", o, h, lo, c, v, round(v * c, 2)])
        else:
            w.writerow(["unix", "open", "high", "low", "close", "volume"])
            for k in range(rows):
                i = k % n
                w.writerow([t0 + k * HOUR_S, *(col[i] for col in cols)])
    return path


def bench(path: Path, workdir: Path, rows: int) -> None:
    size_mb = path.stat().st_size / 1e6
    t = time.perf_counter()
    parsed = read_candle_file(path, "1h")
    parse_s = time.perf_counter() - t
    assert len(parsed.candles) == rows, len(parsed.candles)

    db = workdir / f"{path.stem}.duckdb"
    with Store(db) as store:
        t = time.perf_counter()
        report = import_candle_file(store, path, "BTC-USD", "1h")
        import_s = time.perf_counter() - t
        assert report.stored.added == rows
        t = time.perf_counter()
        again = import_candle_file(store, path, "BTC-USD", "1h")
        reimport_s = time.perf_counter() - t
        assert again.stored.added == 0
    layout = importer.detect_csv_layout(path)
    t = time.perf_counter()
    importer._read_csv_exact(path, layout)
    exact_s = time.perf_counter() - t

    print(f"{path.name}: {rows:,} rows, {size_mb:.1f} MB ({parsed.format})")
    print(f"  read + validate      {parse_s:6.2f} s  {rows / parse_s:>12,.0f} rows/s")
    print(f"  store (DuckDB)       {import_s - parse_s:6.2f} s  {rows / max(import_s - parse_s, 1e-9):>12,.0f} rows/s"
          "  (import minus read)")
    print(f"  import, fresh db     {import_s:6.2f} s  {rows / import_s:>12,.0f} rows/s")
    print(f"  re-import, all kept  {reimport_s:6.2f} s  {rows / reimport_s:>12,.0f} rows/s")
    print(f"  exact reader alone   {exact_s:6.2f} s  {rows / exact_s:>12,.0f} rows/s  (used only to locate errors)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=500_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for layout in ("cdd", "unix"):
            path = build(args.rows, work, layout)
            bench(path, work, args.rows)


if __name__ == "__main__":
    main()
