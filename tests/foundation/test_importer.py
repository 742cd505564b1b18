"""Candle file import on the real data files: formats, validation, and errors that name the line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BITFINEX_1H, DAILY_2011, DAILY_CDD, HOURLY_CDD
from tests.foundation.conftest import edit_line, replace_field
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import DataError
from trdr_tui.market import importer
from trdr_tui.market.importer import detect_csv_layout, load_candle_file, read_candle_file
from trdr_tui.resources import demo_data_path

HOUR = 3600 * 10**9


def ns(text: str) -> int:
    """'2017-07-01 11:00' (UTC) → ns since the epoch, computed independently of the importer."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


# file, format, timeframe, count, first bar, last bar (open time, open, high, low, close, base volume),
# values read off the published files.
KNOWN = [
    (HOURLY_CDD, "CryptoDataDownload CSV", "1h", 20_111,
     ("2017-07-01 11:00", 2505.56, 2513.38, 2495.12, 2509.17, 114.6),
     ("2019-10-17 09:00", 8051.0, 8056.83, 8021.23, 8035.88, 61.25)),
    (DAILY_CDD, "CryptoDataDownload CSV", "1d", 1_770,
     ("2014-12-01 00:00", 300.0, 370.0, 300.0, 370.0, 0.05656),
     ("2019-10-17 00:00", 7993.54, 8070.0, 7937.01, 8034.32, 1570.08)),
    (BITFINEX_1H, "Bitfinex CSV", "1h", 17_583,
     ("2017-07-01 11:00", 2505.56, 2513.38, 2495.12, 2509.17, 114.6),
     ("2019-07-04 01:00", 11849.99, 11880.0, 11790.01, 11849.69, 303.61)),
    (DAILY_2011, "OHLCV CSV", "1d", 5_152,
     ("2011-08-18 00:00", 10.9, 10.9, 10.9, 10.9, 0.48990826),
     ("2025-09-24 00:00", 112017.21, 113950.0, 111066.07, 113700.11, 2759.81435394)),
]


def _bar(c: CandleArrays, i: int) -> tuple[int, float, float, float, float, float]:
    k = c.candle(i)
    return (k.ts, k.open, k.high, k.low, k.close, k.volume)


@pytest.mark.parametrize(("path", "fmt", "tf", "count", "first", "last"), KNOWN, ids=lambda v: getattr(v, "name", None))
def test_real_file_reads_with_known_first_and_last_bars(
    path: Path, fmt: str, tf: str, count: int, first: tuple, last: tuple
) -> None:
    parsed = read_candle_file(path)  # timeframe inferred
    c = parsed.candles
    assert (parsed.format, parsed.timeframe, len(c), parsed.rows_read, parsed.duplicates) == (fmt, tf, count, count, 0)
    assert _bar(c, 0) == (ns(first[0]), *first[1:])
    assert _bar(c, len(c) - 1) == (ns(last[0]), *last[1:])
    assert np.all(np.diff(c.ts) > 0), "ascending, no duplicates"
    assert c.ts.dtype == np.int64 and c.close.dtype == np.float64


def test_newest_first_files_come_out_oldest_first() -> None:
    first_data_line = HOURLY_CDD.read_text().splitlines()[2]
    assert first_data_line.startswith("2019-10-17 09-AM")  # the file is newest first …
    c = read_candle_file(HOURLY_CDD, "1h").candles
    assert c.ts[0] == ns("2017-07-01 11:00") and c.ts[-1] == ns("2019-10-17 09:00")  # … the arrays are not


def test_hourly_file_has_no_gaps_or_outliers() -> None:
    parsed = read_candle_file(HOURLY_CDD, "1h")
    assert parsed.gaps == () and parsed.outliers == ()
    assert parsed.file_symbol == "BTCUSD"


def test_daily_file_reports_its_real_gap_and_outliers() -> None:
    parsed = read_candle_file(DAILY_CDD, "1d")
    assert [(g.start, g.end, g.missing) for g in parsed.gaps] == [(ns("2019-03-20"), ns("2019-03-31"), 12)]
    kinds = {(o.ts, o.kind) for o in parsed.outliers}
    assert (ns("2017-04-15"), "range") in kinds  # a published bar with high/low ≈ 19,850×
    assert (ns("2015-01-14"), "body") in kinds  # the January 2015 crash day


@pytest.mark.parametrize("path", [HOURLY_CDD, DAILY_CDD, BITFINEX_1H, DAILY_2011], ids=lambda p: p.name)
def test_fast_and_exact_readers_agree(path: Path) -> None:
    layout = detect_csv_layout(path)
    fast = importer._read_csv_fast(path, layout)
    exact = importer._read_csv_exact(path, layout)
    assert fast is not None, "clean real files take the fast path"
    for field in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(np.sort(getattr(fast, field)), np.sort(getattr(exact, field)), err_msg=field)
    np.testing.assert_array_equal(fast.ts, exact.ts)  # same order too


def test_volume_is_base_currency_volume() -> None:
    # CryptoDataDownload has volume_btc and volume (USD); Bitfinex VolumeFrom (BTC) and VolumeTo (USD).
    cdd = detect_csv_layout(HOURLY_CDD)
    assert cdd.column_name("volume") == "volume_btc"
    assert detect_csv_layout(BITFINEX_1H).column_name("volume") == "VolumeFrom"
    assert detect_csv_layout(DAILY_2011).column_name("volume") == "volume"


def test_bundled_demo_data_is_real_hourly_coinbase() -> None:
    demo = load_candle_file(demo_data_path(), "1h")  # a packaged resource, not a str
    full = read_candle_file(HOURLY_CDD, "1h").candles
    assert len(demo) > 24 * 180
    start = int(np.searchsorted(full.ts, demo.ts[0]))
    window = full[start:start + len(demo)]
    for field in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(demo, field), getattr(window, field))


# --- other layouts, built from the real hourly series --------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> CandleArrays:
    return read_candle_file(HOURLY_CDD, "1h").candles[-500:]


def _write_csv(path: Path, header: str, rows: list[str], *, newline: str = "\n", bom: bool = False) -> Path:
    text = newline.join([header, *rows]) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def _assert_same(a: CandleArrays, b: CandleArrays) -> None:
    for field in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts // 10**9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("variant", ["unix_s", "unix_ms", "iso_z", "iso_offset", "quoted_crlf_bom_blank"])
def test_generic_csv_variants(tmp_path: Path, reference: CandleArrays, variant: str) -> None:
    c = reference
    rows = []
    for i in reversed(range(len(c))):  # newest first, columns in an unusual order
        t = int(c.ts[i])
        if variant == "unix_s":
            when = str(t // 10**9)
        elif variant == "unix_ms":
            when = str(t // 10**6)
        elif variant == "iso_offset":  # the same instant written in UTC+02:00
            when = datetime.fromtimestamp(t // 10**9, tz=UTC).astimezone(
                datetime.fromisoformat("2000-01-01T00:00:00+02:00").tzinfo).isoformat()
        else:
            when = _iso(t)
        fields = [repr(float(c.close[i])), repr(float(c.volume[i])), when, repr(float(c.low[i])),
                  repr(float(c.open[i])), repr(float(c.high[i]))]
        if variant.startswith("quoted"):
            fields = [f'"{f}"' for f in fields]
        rows.append(",".join(fields))
    header = "Close,Volume,Time,Low,Open,High"
    if variant.startswith("quoted"):
        rows.insert(100, "")
        path = _write_csv(tmp_path / "v.csv", header, rows, newline="\r\n", bom=True)
    else:
        path = _write_csv(tmp_path / "v.csv", header, rows)
    parsed = read_candle_file(path, "1h")
    assert parsed.format == "OHLCV CSV"
    _assert_same(parsed.candles, c)


def test_coinbase_json_matches_the_csv(tmp_path: Path, reference: CandleArrays) -> None:
    c = reference[-300:]
    candles = [
        {"start": str(int(c.ts[i]) // 10**9), "low": str(c.low[i]), "high": str(c.high[i]), "open": str(c.open[i]),
         "close": str(c.close[i]), "volume": str(c.volume[i])}
        for i in reversed(range(len(c)))  # the API answers newest first
    ]
    path = tmp_path / "candles.json"
    path.write_text(json.dumps({"candles": candles}, indent=2))
    parsed = read_candle_file(path)
    assert (parsed.format, parsed.timeframe) == ("Coinbase candles JSON", "1h")
    _assert_same(parsed.candles, c)


def test_exchange_api_array_json(tmp_path: Path, reference: CandleArrays) -> None:
    c = reference[-50:]
    rows = [[int(c.ts[i]) // 10**9, c.low[i], c.high[i], c.open[i], c.close[i], c.volume[i]] for i in range(len(c))]
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(rows))
    _assert_same(read_candle_file(path, "1h").candles, c)


def test_json_bad_number_names_candle_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    good = {"start": "1571302800", "low": "1", "high": "3", "open": "2", "close": "2", "volume": "5"}
    path.write_text(json.dumps({"candles": [good, {**good, "start": "1571299200", "high": "n/a"}]}))
    with pytest.raises(DataError) as err:
        read_candle_file(path)
    assert "candles[1]" in str(err.value) and "'high'" in str(err.value) and "n/a" in str(err.value)


def test_identical_duplicates_are_dropped(tmp_path: Path) -> None:
    lines = HOURLY_CDD.read_text().splitlines()
    path = tmp_path / "dup.csv"
    path.write_text("\n".join([*lines[:12], lines[10], *lines[12:]]) + "\n")
    parsed = read_candle_file(path, "1h")
    assert (parsed.rows_read, parsed.duplicates, len(parsed.candles)) == (20_112, 1, 20_111)


# --- refused files: the error names the file, the line and the field; nothing is returned -----------


def _refused(path: Path, *needles: str) -> str:
    with pytest.raises(DataError) as err:
        read_candle_file(path, "1h")
    text = str(err.value)
    assert str(path) in text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    return text


def test_high_below_low_is_refused_with_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    # line 1000: 2019-09-05 08-PM,BTCUSD,10536.12,10580.73,10510.27,... → high below the low
    edit_line(HOURLY_CDD, bad, 1000, lambda ln: replace_field(ln, 3, "10500.00"))
    _refused(bad, f"{bad}:1000", "line 1000", "field 'high'", "10500")


def test_non_numeric_price_is_refused_with_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    edit_line(HOURLY_CDD, bad, 5000, lambda ln: replace_field(ln, 5, "abc"))
    _refused(bad, f"{bad}:5000", "line 5000", "field 'close'", "'abc' is not a number")


def test_truncated_line_is_refused_with_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    edit_line(HOURLY_CDD, bad, 7777, lambda ln: ln[: len(ln) // 2].rsplit(",", 1)[0])
    _refused(bad, "line 7777", "truncated")


def test_file_cut_off_mid_line_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "cut.csv"
    text = HOURLY_CDD.read_text()
    bad.write_text(text[: len(text) - 30])  # the download stopped inside the last line
    _refused(bad, "line 20113", "truncated")


@pytest.mark.parametrize(
    ("field_index", "value", "needle"),
    [(2, "nan", "not a finite number"), (5, "-5", "must be above 0"), (6, "-1", "must not be negative"),
     (4, "0", "must be above 0")],
)
def test_bad_values_are_refused_with_line(tmp_path: Path, field_index: int, value: str, needle: str) -> None:
    bad = tmp_path / "bad.csv"
    edit_line(HOURLY_CDD, bad, 300, lambda ln: replace_field(ln, field_index, value))
    _refused(bad, "line 300", needle)


def test_misaligned_time_is_refused(tmp_path: Path, reference: CandleArrays) -> None:
    rows = [f"{_iso(int(t))},1,2,0.5,1.5,3" for t in reference.ts[:50]]
    rows[20] = rows[20].replace(":00:00Z", ":30:00Z", 1)
    path = _write_csv(tmp_path / "m.csv", "timestamp,open,high,low,close,volume", rows)
    _refused(path, "line 22", "not on a 1h boundary")


def test_hourly_bars_read_as_daily_say_to_drop_the_timeframe() -> None:
    """The whole hourly file read with timeframe 1d: the fix offered is the timeframe, not editing rows."""
    with pytest.raises(DataError) as err:
        read_candle_file(HOURLY_CDD, "1d")
    assert "not on a 1d boundary" in str(err.value)
    assert err.value.hint is not None and "drop --timeframe" in err.value.hint


def test_conflicting_duplicates_are_refused_naming_both_lines(tmp_path: Path) -> None:
    lines = HOURLY_CDD.read_text().splitlines()
    twin = replace_field(lines[10], 6, "999.5")  # same hour as line 11, different volume
    path = tmp_path / "conflict.csv"
    path.write_text("\n".join([*lines[:40], twin, *lines[40:]]) + "\n")
    text = _refused(path, "two different candles", "line 11", "line 41")
    assert "2019-10-17" in text


def test_wrong_timeframe_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="the bars are 1d apart but --timeframe is 1h"):
        read_candle_file(DAILY_CDD, "1h")


def test_file_without_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nohead.csv"
    path.write_text("1571302800,8021.23,8056.83,8051,8035.88,61.25\n")
    with pytest.raises(DataError, match="header"):
        read_candle_file(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_candle_file(tmp_path / "nope.csv")


def test_truncated_first_row_is_refused_with_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    edit_line(HOURLY_CDD, bad, 3, lambda ln: ln[:12])  # the first data row, which format detection reads
    _refused(bad, f"{bad}:3", "line 3", "truncated")


def test_windows_1252_file_is_decoded_and_a_bad_value_named(tmp_path: Path) -> None:
    """Not UTF-8: read as Windows-1252, so a stray byte is reported as the value it is on its line."""
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"timestamp,open,high,low,close,volume\n2019-10-17T09:00:00Z,1,2,0.5,1.5,3\n"
                     b"2019-10-17T10:00:00Z,1,2,0.5,1.5,3\xe9\n")
    with pytest.raises(DataError, match=r"latin1.csv:3: line 3, field 'volume': '3\u00e9' is not a number"):
        read_candle_file(path, "1h")


def test_a_ctrl_c_inside_the_fast_csv_read_is_an_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB turns a Ctrl-C inside its CSV read into InterruptException; the importer must not take it
    for a file its fast path cannot read and carry on with the slow one (the Ctrl-C was lost)."""
    import duckdb

    from trdr_tui.market import importer

    class Interrupted:
        def execute(self, *_args: object) -> None:
            raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")

        def close(self) -> None:
            pass

    monkeypatch.setattr(importer.duckdb, "connect", lambda *a, **k: Interrupted())
    with pytest.raises(KeyboardInterrupt):
        read_candle_file(HOURLY_CDD, "1h")
