"""ns timestamps as text: exact integer truncation, UTC, the formats reports and stored results use."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trdr_tui.core.timefmt import iso_utc, minute_utc, utc_datetime

NS = 1_000_000_000
T = 1_571_302_800 * NS  # 2019-10-17 09:00:00 UTC


def test_formats() -> None:
    assert iso_utc(T) == "2019-10-17T09:00:00Z"
    assert iso_utc(np.int64(T)) == "2019-10-17T09:00:00Z"  # array elements are accepted as they are
    assert minute_utc(T) == "2019-10-17 09:00"
    assert iso_utc(T, fraction=True) == "2019-10-17T09:00:00Z"  # a whole second has no fraction
    assert iso_utc(T + 250_000_999, fraction=True) == "2019-10-17T09:00:00.250000Z"
    assert utc_datetime(T).tzinfo is dt.UTC


def test_truncates_never_rounds_up() -> None:
    last_ns = T + 60 * NS - 1  # 09:00:59.999999999
    assert iso_utc(last_ns) == "2019-10-17T09:00:59Z"
    assert minute_utc(last_ns) == "2019-10-17 09:00"
    assert iso_utc(last_ns, fraction=True) == "2019-10-17T09:00:59.999999Z"
    assert iso_utc(-1) == "1969-12-31T23:59:59Z"  # toward the past, also before the epoch


def test_minute_text_of_an_impossible_time_names_the_number() -> None:
    assert minute_utc(10**30) == f"{10**30} ns"
    with pytest.raises(OverflowError):
        iso_utc(10**30)


@given(st.integers(min_value=-(2**62), max_value=2**63 - 1))
def test_iso_equals_numpy_datetime64_in_seconds(ts: int) -> None:
    """The stored backtest results spelled times this way before; they must not change."""
    assert iso_utc(ts) == str(np.datetime64(ts, "ns").astype("datetime64[s]")) + "Z"
