"""Property tests: any valid series round-trips through any supported layout; any single corrupted
value is refused naming its own line."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trdr_tui.core.errors import DataError
from trdr_tui.market.importer import read_candle_file

HOUR_S = 3600
START_S = 1_500_000_000 // HOUR_S * HOUR_S


@st.composite
def series(draw: st.DrawFn) -> dict[str, list]:
    n = draw(st.integers(3, 60))
    prices = st.floats(0.01, 1e6, allow_nan=False, allow_infinity=False)
    opens, closes = draw(st.lists(prices, min_size=n, max_size=n)), draw(st.lists(prices, min_size=n, max_size=n))
    ups = draw(st.lists(st.floats(0, 0.2), min_size=n, max_size=n))
    downs = draw(st.lists(st.floats(0, 0.2), min_size=n, max_size=n))
    vols = draw(st.lists(st.floats(0, 1e7, allow_nan=False), min_size=n, max_size=n))
    highs = [max(o, c) * (1 + u) for o, c, u in zip(opens, closes, ups, strict=True)]
    lows = [min(o, c) * (1 - d) for o, c, d in zip(opens, closes, downs, strict=True)]
    # mostly hourly, with a few gaps (fewer than a third of the steps, so the bars still read as 1h)
    steps = draw(st.lists(st.sampled_from([2, 3, 24]), max_size=(n - 1) // 3))
    steps = steps + [1] * (n - 1 - len(steps))
    draw(st.randoms()).shuffle(steps)
    ts = [START_S + HOUR_S * h for h in np.cumsum([0, *steps]).tolist()]
    return {"ts": ts, "open": opens, "high": highs, "low": lows, "close": closes, "volume": vols}


def _time_text(t: int, fmt: str) -> str:
    dt = datetime.fromtimestamp(t, tz=UTC)
    return {"unix": str(t), "ms": str(t * 1000), "iso": dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "space": dt.strftime("%Y-%m-%d %H:%M"), "ampm": dt.strftime("%Y-%m-%d %I-%p")}[fmt]


def _write(path: Path, s: dict[str, list], order: list[str], fmt: str, newest_first: bool) -> list[int]:
    """Write the series; returns the file line number of each bar."""
    idx = list(range(len(s["ts"])))
    if newest_first:
        idx.reverse()
    lines = [",".join(order)]
    line_of = [0] * len(idx)
    for i in idx:
        cells = {"time": _time_text(s["ts"][i], fmt), **{k: repr(s[k][i]) for k in ("open", "high", "low", "close",
                                                                                   "volume")}}
        lines.append(",".join(cells[c] for c in order))
        line_of[i] = len(lines)
    path.write_text("\n".join(lines) + "\n")
    return line_of


layouts = st.tuples(
    st.permutations(["time", "open", "high", "low", "close", "volume"]),
    st.sampled_from(["unix", "ms", "iso", "space", "ampm"]),
    st.booleans(),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(series(), layouts)
def test_valid_series_round_trip(s: dict[str, list], layout: tuple) -> None:
    order, fmt, newest_first = layout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.csv"
        _write(path, s, list(order), fmt, newest_first)
        c = read_candle_file(path, "1h").candles
    np.testing.assert_array_equal(c.ts, np.array(s["ts"], dtype=np.int64) * 10**9)
    for k in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(c, k), np.array(s[k]))


CORRUPTIONS = ["text", "negative", "nan", "empty", "high_low", "low_high", "cut"]


@settings(max_examples=25, deadline=None)
@given(series(), layouts, st.data())
def test_single_corruption_names_its_line(s: dict[str, list], layout: tuple, data: st.DataObject) -> None:
    order, fmt, newest_first = list(layout[0]), layout[1], layout[2]
    bar = data.draw(st.integers(0, len(s["ts"]) - 1))
    kind = data.draw(st.sampled_from(CORRUPTIONS))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.csv"
        line_of = _write(path, s, order, fmt, newest_first)
        lines = path.read_text().splitlines()
        cells = dict(zip(order, lines[line_of[bar] - 1].split(","), strict=True))
        if kind == "cut":
            lines[line_of[bar] - 1] = ",".join(cells[c] for c in order[:3])
        else:
            if kind == "high_low":
                cells["high"] = repr(min(s["open"][bar], s["close"][bar]) * 0.5)
            elif kind == "low_high":
                cells["low"] = repr(max(s["open"][bar], s["close"][bar]) * 2 + 1)
            else:
                field = data.draw(st.sampled_from(["open", "high", "low", "close"]))
                cells[field] = {"text": "12a", "negative": "-3", "nan": "nan", "empty": ""}[kind]
            lines[line_of[bar] - 1] = ",".join(cells[c] for c in order)
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(DataError) as err:
            read_candle_file(path, "1h")
    assert f"line {line_of[bar]}," in str(err.value) or f"line {line_of[bar]} " in str(err.value), str(err.value)
