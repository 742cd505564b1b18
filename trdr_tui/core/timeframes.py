"""Candle timeframes ('1m' … '1d') and the time grid: bar length, gaps, inferring a timeframe.

A bar of timeframe T opens at a multiple of T since the Unix epoch (UTC): hourly bars on the hour,
daily bars at 00:00 UTC, 4-hour bars at 00:00, 04:00, … UTC.
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt

from trdr_tui.core.errors import DataError

NS_PER_SECOND = 1_000_000_000

TIMEFRAME_SECONDS: dict[str, int] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14_400,
    "6h": 21_600,
    "1d": 86_400,
}


def timeframe_seconds(timeframe: str) -> int:
    """Length of one bar in seconds; a DataError lists the valid names for anything else."""
    try:
        return TIMEFRAME_SECONDS[timeframe]
    except KeyError:
        raise DataError(
            f"unknown timeframe {timeframe!r}",
            hint=f"use one of: {', '.join(TIMEFRAME_SECONDS)}",
        ) from None


def timeframe_ns(timeframe: str) -> int:
    return timeframe_seconds(timeframe) * NS_PER_SECOND


def timeframe_for_seconds(seconds: int) -> str | None:
    for name, secs in TIMEFRAME_SECONDS.items():
        if secs == seconds:
            return name
    return None


class Gap(msgspec.Struct, frozen=True):
    """Missing bars: `start` and `end` are the open times of the first and last missing bar (ns)."""

    start: int
    end: int
    missing: int


def find_gaps(ts: npt.NDArray[np.int64], step_ns: int) -> list[Gap]:
    """Missing ranges in ascending, de-duplicated, aligned bar open times."""
    if ts.shape[0] < 2:
        return []
    d = np.diff(ts)
    at = np.flatnonzero(d > step_ns)
    return [Gap(int(ts[i]) + step_ns, int(ts[i + 1]) - step_ns, int(d[i] // step_ns) - 1) for i in at]


def median_spacing_ns(ts: npt.NDArray[np.int64]) -> int | None:
    """The typical distance between consecutive bars (ascending, de-duplicated `ts`); None below 2 bars.

    The median, not the minimum, so a file with a few gaps still reads as its true timeframe.
    """
    if ts.shape[0] < 2:
        return None
    return int(np.median(np.diff(ts)))


def infer_timeframe(ts: npt.NDArray[np.int64]) -> str | None:
    """The named timeframe matching the bars' typical spacing, or None when none matches."""
    spacing = median_spacing_ns(ts)
    if spacing is None or spacing % NS_PER_SECOND:
        return None
    return timeframe_for_seconds(spacing // NS_PER_SECOND)
