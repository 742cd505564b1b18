"""Real candles for the fake exchange: its candle history and the price path its matcher walks.

Reads CryptoDataDownload hourly files (banner line, header, newest first, `2019-10-17 09-AM`),
plain `ts,open,high,low,close,volume` CSVs (UNIX seconds), and the daily 2011–2025 layout.
Each bar becomes four path points: open → the extreme nearer the open → the other extreme → close.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from trdr_tui.core.types import Candle

NS = 1_000_000_000


def _parse_time(text: str) -> int:
    text = text.strip()
    if text.isdigit():
        value = int(text)
        return value * NS if value < 10**12 else value * 1_000_000
    for pattern in ("%Y-%m-%d %I-%p", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            stamp = dt.datetime.strptime(text, pattern).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        return int(stamp.timestamp()) * NS
    raise ValueError(f"unrecognised time {text!r}")


def load_candles(path: str | Path, limit: int | None = None) -> list[Candle]:
    """Candles from a CSV, oldest first."""
    rows: list[Candle] = []
    with open(path, newline="", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    if lines and "open" not in lines[0].lower():
        lines = lines[1:]  # the CryptoDataDownload banner
    reader = csv.DictReader(lines)
    for rec in reader:
        low = {k.lower(): v for k, v in rec.items() if k}
        stamp = low.get("date") or low.get("timestamp") or low.get("ts") or low.get("time") or ""
        volume = low.get("volume_btc") or low.get("volumefrom") or low.get("volume") or "0"
        rows.append(Candle(_parse_time(stamp), float(low["open"]), float(low["high"]), float(low["low"]),
                           float(low["close"]), float(volume)))
    rows.sort(key=lambda c: c.ts)
    return rows[-limit:] if limit else rows


def price_path(candles: list[Candle]) -> list[float]:
    """Four prices per bar in a plausible intrabar order."""
    path: list[float] = []
    for c in candles:
        if abs(c.high - c.open) <= abs(c.open - c.low):
            path.extend((c.open, c.high, c.low, c.close))
        else:
            path.extend((c.open, c.low, c.high, c.close))
    return path


def synthetic_candles(n: int = 200, start_price: float = 10_000.0, start_ts: int = 1_500_000_000 * NS) -> list[Candle]:
    """A deterministic zig-zag for when no data file is given (self-contained demos only)."""
    out: list[Candle] = []
    price = start_price
    for i in range(n):
        drift = ((i * 37) % 11 - 5) / 1000.0
        o, c = price, price * (1 + drift)
        out.append(Candle(start_ts + i * 3600 * NS, o, max(o, c) * 1.003, min(o, c) * 0.997, c, 10.0))
        price = c
    return out
