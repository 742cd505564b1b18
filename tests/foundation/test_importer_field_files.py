"""Files people download (Binance klines, ccxt JSON, CoinAPI/exchange exports in other encodings and
delimiters): each reads to the same candles as the real series it was written from, or is refused with
the real reason. Every file is built from a real slice of Coinbase BTC-USD hourly candles."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import HOURLY_CDD
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import DataError
from trdr_tui.market.importer import read_candle_file

HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def real() -> CandleArrays:
    return read_candle_file(HOURLY_CDD, "1h").candles[-120:]


def _same(a: CandleArrays, b: CandleArrays) -> None:
    for field in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def _kline_rows(c: CandleArrays) -> list[list[str]]:
    """Binance's 12 kline columns, times in ms."""
    rows = []
    for i in range(len(c)):
        t = int(c.ts[i]) // 10**6
        rows.append([str(t), repr(float(c.open[i])), repr(float(c.high[i])), repr(float(c.low[i])),
                     repr(float(c.close[i])), repr(float(c.volume[i])), str(t + HOUR_MS - 1),
                     repr(float(c.volume[i] * c.close[i])), "100", "1.5", "2.5", "0"])
    return rows


BINANCE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
                  "taker_buy_quote_volume,ignore")


def test_binance_klines_with_header(tmp_path: Path, real: CandleArrays) -> None:
    path = tmp_path / "BTCUSDT-1h.csv"
    path.write_text("\n".join([BINANCE_HEADER, *(",".join(r) for r in _kline_rows(real))]) + "\n")
    parsed = read_candle_file(path)
    assert parsed.timeframe == "1h"
    _same(parsed.candles, real)


def test_binance_klines_without_header(tmp_path: Path, real: CandleArrays) -> None:
    """data.binance.vision kline files have no header line: recognised by their 12-column shape."""
    path = tmp_path / "BTCUSDT-1h-2019-10.csv"
    path.write_text("\n".join(",".join(r) for r in _kline_rows(real)) + "\n")
    parsed = read_candle_file(path)
    assert (parsed.format, parsed.timeframe) == ("Binance klines CSV", "1h")
    _same(parsed.candles, real)


def test_time_columns_named_open_and_close_with_prefixed_prices(tmp_path: Path, real: CandleArrays) -> None:
    """CoinAPI's export: `time_open`/`time_close` are times, `price_open`… are the prices."""
    header = ("time_period_start,time_period_end,time_open,time_close,price_open,price_high,price_low,"
              "price_close,volume_traded,trades_count")
    rows = []
    for i in range(len(real)):
        t = int(real.ts[i]) // 10**9
        rows.append(",".join([str(t), str(t + 3600), str(t + 5), str(t + 3590), repr(float(real.open[i])),
                              repr(float(real.high[i])), repr(float(real.low[i])), repr(float(real.close[i])),
                              repr(float(real.volume[i])), "42"]))
    path = tmp_path / "coinapi.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    _same(read_candle_file(path).candles, real)


@pytest.mark.parametrize(("delimiter", "encoding", "decimal_comma"), [
    (";", "utf-8", True),       # European Excel: semicolons and decimal commas
    ("\t", "utf-16", False),    # Excel "Unicode text"
    ("|", "utf-8", False),
    (",", "cp1252", False),     # Windows export with a non-ASCII banner line
])
def test_suffixed_names_other_delimiters_and_encodings(
    tmp_path: Path, real: CandleArrays, delimiter: str, encoding: str, decimal_comma: bool
) -> None:
    def num(x: float) -> str:
        text = repr(float(x))
        return text.replace(".", ",") if decimal_comma else text

    header = delimiter.join(["Date", "Open Price", "High Price", "Low Price", "Close Price", "Volume"])
    rows = [delimiter.join([str(int(real.ts[i]) // 10**9), num(real.open[i]), num(real.high[i]), num(real.low[i]),
                            num(real.close[i]), num(real.volume[i])]) for i in range(len(real))]
    path = tmp_path / "export.csv"
    path.write_bytes("\n".join(["Exportiert am 17.10.2019 · Börse", header, *rows, ""]).encode(encoding))
    parsed = read_candle_file(path)
    assert parsed.timeframe == "1h"
    _same(parsed.candles, real)


def test_header_without_a_price_column_names_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "no_low.csv"
    path.write_text("open_time,open,high,min,close,volume\n1571302800000,1,3,0.5,2,5\n")
    with pytest.raises(DataError) as err:
        read_candle_file(path)
    text = str(err.value)
    assert "looks like a header" in text and "no low column" in text
    assert "add a header line" not in text


def test_zip_download_is_refused_with_the_reason(tmp_path: Path, real: CandleArrays) -> None:
    path = tmp_path / "BTCUSDT-1h-2019-10.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("BTCUSDT-1h-2019-10.csv", "\n".join(",".join(r) for r in _kline_rows(real)))
    with pytest.raises(DataError, match=r"is a ZIP archive.*\n  fix: extract the CSV"):
        read_candle_file(path)


def test_ccxt_ohlcv_json_in_milliseconds(tmp_path: Path, real: CandleArrays) -> None:
    """ccxt's fetch_ohlcv: [[ms, open, high, low, close, volume], ...] (was an OverflowError traceback)."""
    rows = [[int(real.ts[i]) // 10**6, float(real.open[i]), float(real.high[i]), float(real.low[i]),
             float(real.close[i]), float(real.volume[i])] for i in range(len(real))]
    path = tmp_path / "ohlcv.json"
    path.write_text(json.dumps(rows))
    parsed = read_candle_file(path)
    assert (parsed.format, parsed.timeframe) == ("OHLCV arrays JSON (ccxt)", "1h")
    _same(parsed.candles, real)


@pytest.mark.parametrize(("index", "position", "name"), [(7, 2, "high"), (0, 5, "volume"), (3, 0, "time")])
def test_ccxt_json_nulls_are_refused_with_index_and_field(
    tmp_path: Path, real: CandleArrays, index: int, position: int, name: str
) -> None:
    rows: list[list[float | None]] = [
        [int(real.ts[i]) // 10**6, float(real.open[i]), float(real.high[i]), float(real.low[i]),
         float(real.close[i]), float(real.volume[i])] for i in range(20)]
    rows[index][position] = None
    path = tmp_path / "ohlcv.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(DataError) as err:
        read_candle_file(path)
    text = str(err.value)
    assert f"ohlcv.json[{index}]: field '[{position}] {name}': " in text and "null" in text


@pytest.mark.parametrize(("column", "value"), [(3, "1e308"), (3, "2e12"), (6, "1e19")])
def test_absurd_values_are_refused_not_listed_as_outliers(tmp_path: Path, column: int, value: str) -> None:
    lines = HOURLY_CDD.read_text().splitlines()[:40]  # date,symbol,open,high,low,close,volume_btc,volume
    row = lines[10].split(",")
    row[column] = value
    lines[10] = ",".join(row)
    path = tmp_path / "absurd.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 11, field '(high|volume_btc)': .* is not plausible"):
        read_candle_file(path)
