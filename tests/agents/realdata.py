"""Load the real Coinbase hourly candles (CryptoDataDownload layout) for agent and indicator tests.

The project's importer lives elsewhere; this reader only knows the one file the tests use, so these
tests do not depend on it: banner line, header, newest first, dates like `2019-10-17 09-AM` (UTC).
"""

from __future__ import annotations

import calendar
import functools
import time
from pathlib import Path

import numpy as np

from tests.conftest import HOURLY_CDD
from trdr_tui.core.arrays import CandleArrays


def _parse_ts(text: str) -> int:
    day, hour = text.split(" ")
    h, ampm = hour.split("-")
    h24 = int(h) % 12 + (12 if ampm == "PM" else 0)
    seconds = calendar.timegm(time.strptime(day, "%Y-%m-%d")) + h24 * 3600
    return seconds * 1_000_000_000


@functools.cache
def load_cdd_hourly(path: Path = HOURLY_CDD) -> CandleArrays:
    rows = path.read_text(encoding="utf-8").splitlines()[2:]
    ts, cols = [], []
    for line in reversed(rows):
        parts = line.split(",")
        ts.append(_parse_ts(parts[0]))
        cols.append((float(parts[2]), float(parts[3]), float(parts[4]), float(parts[5]), float(parts[6])))
    # The published file repeats some hours under shifted labels: order by time, keep one row per hour.
    t = np.array(ts, dtype=np.int64)
    t, first = np.unique(t, return_index=True)
    a = np.array(cols, dtype=np.float64)[first]
    return CandleArrays(t, a[:, 0].copy(), a[:, 1].copy(), a[:, 2].copy(), a[:, 3].copy(), a[:, 4].copy())
