"""Candle files → validated CandleArrays → the store.

Reads what users actually download: CryptoDataDownload CSVs (a banner line above the header, dates
like `2019-10-17 09-AM`, newest first), Bitfinex-style CSVs, any OHLCV CSV whose header names its
columns (in any order; times as Unix seconds/ms/µs/ns or ISO 8601; names like `Open Price`,
`price_open`, `open_time`; comma, semicolon, tab or bar delimited, decimal commas with `;`; UTF-8,
UTF-16 or Windows-1252 text), Binance kline CSVs (with or without their header), Coinbase candle JSON
(`{"candles": [{"start", "low", "high", "open", "close", "volume"}]}` with numbers as strings) and
OHLCV arrays (`[[time, open, high, low, close, volume], ...]` as ccxt writes them, time in ms; or
Coinbase Exchange's `[[time, low, high, open, close, volume], ...]` in seconds).

Two CSV parsers, one meaning. The fast one lets DuckDB split and cast the whole file in C++; it is
used whenever the file is clean. The exact one walks the file line by line in Python and knows the
line number of every value; it runs only when the fast one finds anything wrong (or cannot read the
file), so that the error names the file, the line and the field. Both feed the same vectorised
validation, and a test proves they give identical candles on the real files.

Nothing is written until the whole file has parsed and validated; the write is one transaction.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib.abc import Traversable
from importlib.resources import as_file
from pathlib import Path
from typing import Literal

import duckdb
import msgspec
import numpy as np
import numpy.typing as npt

from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import DataError
from trdr_tui.core.timefmt import minute_utc
from trdr_tui.core.timeframes import (
    NS_PER_SECOND,
    Gap,
    find_gaps,
    infer_timeframe,
    median_spacing_ns,
    timeframe_ns,
)
from trdr_tui.store.candles import CandleRepository, InsertResult, ResampleResult, check_resample
from trdr_tui.store.db import Store

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

TimeKind = Literal["unix_s", "unix_ms", "unix_us", "unix_ns", "ampm", "iso"]
Field = Literal["time", "open", "high", "low", "close", "volume"]
PRICE_FIELDS: tuple[Field, ...] = ("open", "high", "low", "close")
VALUE_FIELDS: tuple[Field, ...] = ("open", "high", "low", "close", "volume")

# Outlier thresholds (PRD §14.2): reported, never refused — real markets do move like this.
OUTLIER_BODY = 0.5  # |close / open − 1| above 50 %
OUTLIER_RANGE = 2.0  # high / low above 2
OUTLIER_JUMP = 0.5  # |open / previous close − 1| above 50 % between neighbouring bars

# Values no market prints: refused, not reported. A price of 10^12 or more in any quote currency, or
# a base volume of 10^18 or more, is a wrong unit, a shifted digit or a corrupted value.
MAX_PRICE = 1e12
MAX_VOLUME = 1e18

# Plausible bar times: 1990-01-01 … 2200-01-01 UTC. Outside that a unit or format went wrong.
MIN_TS = 631_152_000 * NS_PER_SECOND
MAX_TS = 7_258_118_400 * NS_PER_SECOND

FIX_ROWS = "fix or delete the bad rows and import again; nothing was stored"
TIMEFRAME_HINT = ("if the file holds bars of another timeframe, drop --timeframe (the file's own is detected) or "
                  "give the one it holds; otherwise fix or delete the bad rows and import again; nothing was stored")
_HEADER_SCAN_LINES = 10
_SNIFF_BYTES = 64 * 1024

# --- column names ---------------------------------------------------------------------------------

# Header names (normalised: lower case, spaces and dashes as underscores) for each field, best first.
_TIME_NAMES = ("unix_timestamp", "unix", "timestamp", "time", "ts", "start", "open_time", "date", "datetime",
               "date_time")
# Otherwise a name is read as words (`Open Price` → open, price; `openTime` → open, time). A time column has
# a time word; the bar's open time is preferred over its close time (Binance `open_time`/`close_time`).
_TIME_WORDS = frozenset({"time", "timestamp", "date", "datetime", "ts", "unix", "epoch", "start", "period"})
_BAR_END_WORDS = frozenset({"close", "end"})
# A price column is one price word plus words that only say "price" or its currency.
_PRICE_WORDS: dict[str, Field] = {
    "open": "open", "opening": "open", "o": "open",
    "high": "high", "highest": "high", "h": "high",
    "low": "low", "lowest": "low", "l": "low",
    "close": "close", "closing": "close", "c": "close",
}
_PRICE_NOISE = frozenset({"price", "px", "rate", "last", "usd", "usdt", "usdc", "eur", "gbp", "quote"})
# Volume in the base currency (BTC for BTC-USD). CryptoDataDownload's `volume` beside `volume_btc` and
# Bitfinex's `VolumeTo` are quote-currency volumes and are not used.
_BASE_VOLUME_NAMES = ("volumefrom", "volume_from", "volume_base", "base_volume")
_PLAIN_VOLUME_NAMES = ("volume", "vol", "v", "volume_traded")
_VOLUME_QUALIFIERS = frozenset({"traded", "total"})  # CoinAPI `volume_traded` is base volume too
_QUOTE_SUFFIXES = frozenset({"usd", "usdt", "usdc", "eur", "gbp", "quote", "to"})

_AMPM = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{1,2})-(AM|PM)$", re.IGNORECASE)
_UNIX = re.compile(r"^\d+(\.\d+)?$")
_UNIX_US_FACTOR: dict[str, float] = {"unix_s": 1e6, "unix_ms": 1e3, "unix_us": 1.0, "unix_ns": 1e-3}
_NS_PER_UNIT: dict[str, int] = {"unix_s": 10**9, "unix_ms": 10**6, "unix_us": 10**3, "unix_ns": 1}


def _normalise(name: str) -> str:
    return name.strip().strip('"').strip().lower().replace(" ", "_").replace("-", "_")


def _words(name: str) -> list[str]:
    """`Open Price` → [open, price]; `price_open` → [price, open]; `openTime` → [open, time]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name.strip().strip('"'))
    return re.findall(r"[a-z0-9]+", spaced.lower())


def _price_field(name: str) -> Field | None:
    words = _words(name)
    fields = {_PRICE_WORDS[w] for w in words if w in _PRICE_WORDS}
    rest = [w for w in words if w not in _PRICE_WORDS and w not in _PRICE_NOISE]
    if len(fields) != 1 or rest or sum(w in _PRICE_WORDS for w in words) != 1:
        return None
    return fields.pop()


def _time_rank(name: str) -> int | None:
    """None for a column that is not a time; lower is better (0: the bar's open time, 2: its close time)."""
    words = set(_words(name))
    if not words & _TIME_WORDS:
        return None
    if words & _BAR_END_WORDS:
        return 2
    return 0 if words & {"open", "start"} else 1


# --- results --------------------------------------------------------------------------------------


class Outlier(msgspec.Struct, frozen=True):
    ts: int
    kind: Literal["body", "range", "jump"]
    detail: str


class ParsedCandles(msgspec.Struct, frozen=True):
    """A file read, validated, sorted and de-duplicated; nothing stored yet."""

    path: str
    format: str
    timeframe: str
    candles: CandleArrays
    rows_read: int
    duplicates: int
    gaps: tuple[Gap, ...]
    outliers: tuple[Outlier, ...]
    warnings: tuple[str, ...] = ()
    file_symbol: str | None = None  # the symbol the file names (its symbol column, a Binance file name), e.g. "BTCUSD"

    @property
    def missing_bars(self) -> int:
        return sum(g.missing for g in self.gaps)


class CsvLayout(msgspec.Struct, frozen=True):
    """What format detection found out about a CSV file."""

    format: str
    header_line: int  # 1-based line number of the header row
    columns: tuple[str, ...]  # header names as written in the file
    time_col: int
    time_kind: TimeKind
    value_cols: dict[str, int]  # field → column index; no "volume" key when the file has none
    symbol_col: int | None = None
    delimiter: str = ","
    decimal_comma: bool = False  # values like 42000,5 (with a ";" or tab delimiter)
    encoding: str = "utf-8-sig"  # how the text is decoded (a BOM, if any, is dropped)

    def column_name(self, field: str) -> str:
        index = self.time_col if field == "time" else self.value_cols.get(field)
        return self.columns[index] if index is not None else field


class _Columns(msgspec.Struct):
    """Parsed values in file order, with a way to say where row i came from."""

    ts: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    locate: Callable[[int], str] | None = None  # row index → "line 17" / "candles[3]"
    field_name: Callable[[str], str] = str  # field → the name the file uses

    def values(self, field: str) -> F64:
        arr: F64 = getattr(self, field)
        return arr


# --- public entry points ----------------------------------------------------------------------------


def read_candle_file(path: str | Path | Traversable, timeframe: str | None = None) -> ParsedCandles:
    """Read, detect, validate, sort and de-duplicate a candle file. Raises DataError; stores nothing.

    `timeframe` None means: infer it from the spacing of the bars. `path` may be a packaged resource
    (e.g. `resources.demo_data_path()`).
    """
    if not isinstance(path, str | Path):
        with as_file(path) as real:
            return read_candle_file(real, timeframe)
    p = Path(path)
    if p.is_dir():
        inside = sorted(f.name for f in p.iterdir() if f.is_file() and f.suffix.lower() in (".csv", ".json", ".txt"))
        raise DataError(f"{p} is a directory, not a candle file",
                        hint="name one file in it" + (f", e.g. {p / inside[0]} (it holds {len(inside)} "
                                                       f"csv/json/txt file{'s' if len(inside) != 1 else ''})"
                                                       if inside else ": it holds no .csv, .json or .txt file"))
    if not p.is_file():
        raise DataError(f"candle file {p} does not exist", hint="check the path")
    try:
        head, encoding = _read_head(p)
    except OSError as exc:
        raise DataError(f"cannot read {p}: {exc.strerror}") from None
    if not head.strip():
        raise DataError(f"candle file {p} is empty", hint="export the candles again: a header line such as "
                        "timestamp,open,high,low,close,volume, then one line per bar")
    if head.lstrip().startswith(("{", "[")):
        fmt, json_cols = _read_json(p)
        return _finish(p, fmt, json_cols, timeframe)
    layout = detect_csv_layout(p, head, encoding)
    warnings = [] if "volume" in layout.value_cols else ["the file has no volume column: volume stored as 0"]
    cols = _read_csv_fast(p, layout)
    if cols is None:  # a value DuckDB could not cast (or a file it could not read): go line by line
        cols = _read_csv_exact(p, layout)
    return _finish(p, layout.format, cols, timeframe, warnings, file_symbol=_file_symbol(p, layout),
                   relocate=lambda: _read_csv_exact(p, layout))


def load_candle_file(path: str | Path | Traversable, timeframe: str | None = None) -> CandleArrays:
    """Candles straight from a file, without a store (e.g. `trdr backtest --data FILE`)."""
    return read_candle_file(path, timeframe).candles


# --- format detection -------------------------------------------------------------------------------


_BINARY_MAGIC = {b"PK\x03\x04": "a ZIP archive", b"\x1f\x8b": "a gzip archive", b"BZh": "a bzip2 archive",
                 b"\xfd7zXZ": "an xz archive", b"PAR1": "a Parquet file"}
_DELIMITERS = (",", ";", "\t", "|")


def _read_head(path: Path) -> tuple[str, str]:
    """The first 64 KiB as text and the encoding to read the file with: UTF-8 (BOM or not), UTF-16 with
    a BOM, else Windows-1252. Raises DataError for a compressed or binary file."""
    with path.open("rb") as f:
        raw = f.read(_SNIFF_BYTES)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace"), "utf-16"
    for magic, what in _BINARY_MAGIC.items():
        if raw.startswith(magic):
            raise DataError(f"{path.name} is {what}, not a text candle file", where=str(path),
                            hint="extract the CSV or JSON inside it and import that")
    if b"\x00" in raw:
        raise DataError(f"{path.name} holds NUL bytes: not a text candle file (UTF-16 without a byte-order mark?)",
                        where=str(path), hint="save it as UTF-8 CSV")
    try:
        return codecs.getincrementaldecoder("utf-8-sig")().decode(raw, final=len(raw) < _SNIFF_BYTES), "utf-8-sig"
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), "cp1252"


def _split(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def detect_csv_layout(path: Path, head: str | None = None, encoding: str | None = None) -> CsvLayout:
    """Find the header row (skipping banner lines), map its columns and recognise the time format, the
    delimiter and the decimal mark. A file without a header is read only in Binance's kline layout;
    otherwise the error says which columns the header lacks."""
    if head is None or encoding is None:
        head, encoding = _read_head(path)
    lines = head.splitlines()
    best: tuple[int, int, list[str], list[str]] | None = None  # (found, line index, names, missing fields)
    for i, line in enumerate(lines[:_HEADER_SCAN_LINES]):
        for delimiter in _DELIMITERS:
            names = _split(line, delimiter)
            if len(names) < 5:
                continue
            mapping = _map_columns(names)
            if isinstance(mapping, list):
                found = 5 - len(mapping)
                if not _all_numbers(names) and (best is None or found > best[0]):
                    best = (found, i, names, mapping)
                continue
            time_col, value_cols, symbol_col = mapping
            first = _first_data_row(lines, i + 1, delimiter)
            if first is None:
                raise DataError(f"{path} has a header but no candle rows", where=f"{path}:{i + 1}")
            line_no, fields = first
            if len(fields) != len(names):
                raise DataError(
                    f"line {line_no} has {len(fields)} fields, the header has {len(names)}"
                    + (" — the line looks truncated" if len(fields) < len(names) else ""),
                    where=f"{path}:{line_no}", hint="repair or delete that line, then import again",
                )
            return CsvLayout(
                format=_format_name(lines[:i], names),
                header_line=i + 1,
                columns=tuple(n.strip() for n in names),
                time_col=time_col,
                time_kind=_sample_time_kind(path, line_no, names[time_col], fields[time_col]),
                value_cols=value_cols,
                symbol_col=symbol_col,
                delimiter=delimiter,
                decimal_comma=delimiter != "," and bool(_DECIMAL_COMMA.match(fields[value_cols["close"]].strip())),
                encoding=encoding,
            )
    binance = _binance_klines(path, lines, encoding)
    if binance is not None:
        return binance
    if best is not None:
        _, i, names, missing = best
        raise DataError(
            f"line {i + 1} looks like a header ({', '.join(n.strip() for n in names)}) but has no "
            f"{' / '.join(missing)} column",
            where=f"{path}:{i + 1}",
            hint="rename the columns to time (or timestamp/date), open, high, low, close, volume; names such as "
                 "'Open Price' or 'price_open' also work",
        )
    first = _first_data_row(lines, 0, ",")
    if first is not None and _all_numbers(first[1]):
        raise DataError(
            f"{path.name} has no header line: line {first[0]} is already numbers", where=f"{path}:{first[0]}",
            hint="add a header line naming the columns, such as: timestamp,open,high,low,close,volume",
        )
    raise DataError(
        f"cannot find a header row naming time, open, high, low and close columns in the first "
        f"{_HEADER_SCAN_LINES} lines of {path}",
        where=str(path),
        hint="add a header line such as: timestamp,open,high,low,close,volume",
    )


_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
# Binance kline files (data.binance.vision) have no header: open_time, open, high, low, close, volume,
# close_time, quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore.
_BINANCE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
                    "taker_buy_volume", "taker_buy_quote_volume", "ignore")


def _all_numbers(fields: Sequence[str]) -> bool:
    return bool(fields) and all(_NUMBER.match(f.strip()) for f in fields)


def _binance_klines(path: Path, lines: Sequence[str], encoding: str) -> CsvLayout | None:
    """A headerless file whose rows have Binance's kline shape (12 numbers, close_time after open_time,
    low ≤ open, close ≤ high in the first rows); None when it does not."""
    rows = [_split(line, ",") for line in lines[:_HEADER_SCAN_LINES] if line.strip()]
    if not rows or not all(len(r) == len(_BINANCE_COLUMNS) and _all_numbers(r) for r in rows):
        return None
    for r in rows:
        t, o, h, low, c, _, t_end = (float(x) for x in r[:7])
        if not (t_end > t and low <= min(o, c) and h >= max(o, c)):
            return None
    kind = _time_kind(rows[0][0].strip())
    if kind not in ("unix_ms", "unix_us"):
        return None
    return CsvLayout(format="Binance klines CSV", header_line=0, columns=_BINANCE_COLUMNS, time_col=0,
                     time_kind=kind, value_cols={"open": 1, "high": 2, "low": 3, "close": 4, "volume": 5},
                     encoding=encoding)


def _sample_time_kind(path: Path, line_no: int, name: str, raw: str) -> TimeKind:
    sample = raw.strip()
    kind = _time_kind(sample)
    if kind is None:
        raise DataError(
            f"line {line_no}, field '{name.strip()}': cannot read {sample!r} as a time",
            where=f"{path}:{line_no}",
            hint="times must be Unix seconds/milliseconds or ISO 8601 like 2019-10-17 09:00 (UTC)",
        )
    return kind


def _map_columns(names: Sequence[str]) -> tuple[int, dict[str, int], int | None] | list[str]:
    """(time column, field → column, symbol column), or the fields the header has no column for."""
    norm = [_normalise(n) for n in names]
    index = {n: i for i, n in reversed(list(enumerate(norm)))}  # first occurrence wins

    def pick(candidates: Sequence[str]) -> int | None:
        return next((index[c] for c in candidates if c in index), None)

    value_cols: dict[str, int] = {}
    missing: list[str] = []
    for field in PRICE_FIELDS:
        col = next((i for i, n in enumerate(names) if _price_field(n) == field), None)
        if col is None:
            missing.append(field)
        else:
            value_cols[field] = col
    time_col = pick(_TIME_NAMES)
    if time_col is None:
        ranked = [(rank, i) for i, n in enumerate(names) if (rank := _time_rank(n)) is not None]
        time_col = min(ranked)[1] if ranked else None
    if time_col is None:
        missing.insert(0, "time")
    if missing:
        return missing
    assert time_col is not None
    volume = pick(_BASE_VOLUME_NAMES)
    if volume is None:
        volume = next((i for i, n in enumerate(norm)
                       if n.startswith("volume_") and n[len("volume_"):] not in _QUOTE_SUFFIXES
                       and n[len("volume_"):] not in _VOLUME_QUALIFIERS), None)
    if volume is None:
        volume = pick(_PLAIN_VOLUME_NAMES)
    if volume is not None:
        value_cols["volume"] = volume
    return time_col, value_cols, pick(("symbol", "pair", "product_id", "ticker"))


def _first_data_row(lines: Sequence[str], start: int, delimiter: str) -> tuple[int, list[str]] | None:
    """(1-based line number, fields) of the first non-blank line at or after index `start`."""
    for k in range(start, len(lines)):
        if lines[k].strip():
            return k + 1, _split(lines[k], delimiter)
    return None


def _time_kind(sample: str) -> TimeKind | None:
    if _UNIX.match(sample):
        v = float(sample)
        if v < 1e11:
            return "unix_s"
        if v < 1e14:
            return "unix_ms"
        if v < 1e17:
            return "unix_us"
        return "unix_ns"
    if _AMPM.match(sample):
        return "ampm"
    if _parse_iso(sample) is not None:
        return "iso"
    return None


def _format_name(banner: Sequence[str], names: Sequence[str]) -> str:
    norm = {_normalise(n) for n in names}
    if any("cryptodatadownload" in line.lower() for line in banner):
        return "CryptoDataDownload CSV"
    if {"volumefrom", "volumeto"} <= norm:
        return "Bitfinex CSV"
    return "OHLCV CSV"


# --- CSV: fast path (DuckDB) --------------------------------------------------------------------------


def _time_sql(kind: TimeKind, col: str) -> str:
    if kind in _UNIX_US_FACTOR:
        return f"CAST(round(TRY_CAST({col} AS DOUBLE) * {_UNIX_US_FACTOR[kind]!r}) AS BIGINT)"
    if kind == "ampm":
        return f"epoch_us(try_strptime(trim({col}), '%Y-%m-%d %I-%p'))"
    return f"epoch_us(TRY_CAST(trim({col}) AS TIMESTAMPTZ))"


def _read_csv_fast(path: Path, layout: CsvLayout) -> _Columns | None:
    """DuckDB's CSV reader; None when any value does not cast cleanly (the exact reader then explains) or
    the file is not UTF-8 (the exact reader decodes it)."""
    if layout.encoding != "utf-8-sig":
        return None
    ncols = len(layout.columns)
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(ncols)) + "}"
    v = layout.value_cols

    def number(col: int) -> str:
        return f"replace(c{col}, ',', '.')" if layout.decimal_comma else f"c{col}"

    selects = [f"{_time_sql(layout.time_kind, f'c{layout.time_col}')} AS ts_us"]
    for field in VALUE_FIELDS:
        selects.append(f"TRY_CAST({number(v[field])} AS DOUBLE) AS {field}" if field in v
                       else f"0.0::DOUBLE AS {field}")
    header = f"skip={layout.header_line - 1}, header=true" if layout.header_line else "header=false"
    delim = layout.delimiter.replace("\t", "\\t")
    sql = (
        f"SELECT {', '.join(selects)} FROM read_csv(?, {header}, "
        f"columns={columns}, auto_detect=false, delim='{delim}', quote='\"', null_padding=true)"
    )
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'").fetchall()
        con.execute(f"CREATE TEMP TABLE parsed AS {sql}", [str(path)]).fetchall()
        nulls = con.execute(
            "SELECT count(*) FROM parsed WHERE ts_us IS NULL OR open IS NULL OR high IS NULL "
            "OR low IS NULL OR close IS NULL OR volume IS NULL"
        ).fetchall()
        if not nulls or nulls[0][0]:
            return None
        got = con.execute("SELECT * FROM parsed").fetchnumpy()
    except duckdb.InterruptException:  # a Ctrl-C inside the query: not a file the fast path cannot read
        raise KeyboardInterrupt from None
    except duckdb.Error:
        return None
    finally:
        con.close()
    if len(got["ts_us"]) == 0:
        return None
    def floats(field: Field) -> F64:
        return np.asarray(got[field], dtype=np.float64)

    return _Columns(
        ts=np.asarray(got["ts_us"], dtype=np.int64) * 1000,
        open=floats("open"), high=floats("high"), low=floats("low"), close=floats("close"),
        volume=floats("volume"),
        field_name=layout.column_name,
    )


# --- CSV: exact path (line by line) -------------------------------------------------------------------


def _read_csv_exact(path: Path, layout: CsvLayout) -> _Columns:
    """Parse every line in Python, raising DataError at the first value that does not read."""
    try:
        text = path.read_text(encoding=layout.encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"not {layout.encoding} text ({exc.reason} at byte {exc.start})", where=str(path),
                        hint="save the file as UTF-8 CSV") from None
    lines = io.StringIO(text)
    for _ in range(layout.header_line):
        lines.readline()
    reader = csv.reader(lines, delimiter=layout.delimiter)
    ncols = len(layout.columns)
    parse_time = _time_parser(layout.time_kind)
    value_cols = [(f, layout.value_cols.get(f)) for f in VALUE_FIELDS]
    ts: list[int] = []
    vals: dict[str, list[float]] = {f: [] for f in VALUE_FIELDS}
    line_numbers: list[int] = []
    for fields in reader:
        line_no = layout.header_line + reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        where = f"{path}:{line_no}"
        if len(fields) != ncols:
            raise DataError(
                f"line {line_no} has {len(fields)} fields, the header has {ncols} "
                f"({', '.join(layout.columns)})" + (" — the line looks truncated" if len(fields) < ncols else ""),
                where=where, hint="repair or delete that line, then import again",
            )
        raw_time = fields[layout.time_col].strip()
        t = parse_time(raw_time)
        if t is None:
            raise DataError(
                f"line {line_no}, field '{layout.columns[layout.time_col]}': cannot read {raw_time!r} as a time "
                f"(expected {_TIME_KIND_TEXT[layout.time_kind]}, like the first row)",
                where=where, hint="fix the time on that line",
            )
        ts.append(t)
        for field, col in value_cols:
            if col is None:
                vals[field].append(0.0)
                continue
            raw = fields[col].strip()
            number = _to_float(raw.replace(",", ".", 1) if layout.decimal_comma else raw)
            if number is None:
                raise DataError(
                    f"line {line_no}, field '{layout.columns[col]}': {raw!r} is not a number",
                    where=where, hint="fix the value on that line (plain decimal numbers, no thousands separators)",
                )
            vals[field].append(number)
        line_numbers.append(line_no)
    if not ts:
        raise DataError(f"{path} has a header but no candle rows", where=str(path))
    lines_arr = np.asarray(line_numbers, dtype=np.int64)
    return _Columns(
        ts=np.asarray(ts, dtype=np.int64),
        **{f: np.asarray(vals[f], dtype=np.float64) for f in VALUE_FIELDS},
        locate=lambda i: f"line {int(lines_arr[i])}",
        field_name=layout.column_name,
    )


_TIME_KIND_TEXT: dict[str, str] = {
    "unix_s": "Unix seconds",
    "unix_ms": "Unix milliseconds",
    "unix_us": "Unix microseconds",
    "unix_ns": "Unix nanoseconds",
    "ampm": "a date and hour like 2019-10-17 09-AM",
    "iso": "an ISO 8601 time like 2019-10-17 09:00",
}


def _to_float(raw: str) -> float | None:
    if not raw or "_" in raw:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def _time_parser(kind: TimeKind) -> Callable[[str], int | None]:
    if kind in _UNIX_US_FACTOR:
        factor = _UNIX_US_FACTOR[kind]

        def parse_unix(raw: str) -> int | None:
            if not _UNIX.match(raw):
                return None
            return round(float(raw) * factor) * 1000

        return parse_unix
    if kind == "ampm":
        return _parse_ampm
    return _parse_iso


def _parse_ampm(raw: str) -> int | None:
    m = _AMPM.match(raw)
    if m is None:
        return None
    hour = int(m.group(2))
    if not 1 <= hour <= 12:
        return None
    hour = hour % 12 + (12 if m.group(3).upper() == "PM" else 0)
    day = _parse_iso(m.group(1))
    return None if day is None else day + hour * 3600 * NS_PER_SECOND


def _parse_iso(raw: str) -> int | None:
    """ISO 8601 date or date-time; no offset means UTC. Returns ns since the epoch."""
    try:
        dt = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1000


# data.binance.vision names its kline files SYMBOL-INTERVAL-YYYY-MM[-DD].csv
_BINANCE_FILE_NAME = re.compile(r"([A-Z0-9]{5,})-\d+[smhdwM]-\d{4}-\d{2}(?:-\d{2})?\.csv", re.IGNORECASE)


def _file_symbol(path: Path, layout: CsvLayout) -> str | None:
    """The symbol the file names: its symbol column (every row; a file mixing symbols raises DataError
    naming the first line that differs), else a name in data.binance.vision's pattern; None when it names none."""
    if layout.symbol_col is None:
        named = _BINANCE_FILE_NAME.fullmatch(path.name)
        return named.group(1).upper() if named else None
    first: str | None = None
    with path.open(encoding=layout.encoding, errors="replace", newline="") as f:
        rows = csv.reader(f, delimiter=layout.delimiter)
        for _ in range(layout.header_line + 1):
            next(rows, None)
        for line_no, fields in enumerate(rows, start=layout.header_line + 2):
            value = fields[layout.symbol_col].strip() if layout.symbol_col < len(fields) else ""
            if not value:
                continue
            if first is None:
                first = value
            elif _bare(value) != _bare(first):
                raise DataError(f"the file mixes symbols: {first!r} above, {value!r} on this line",
                                where=f"{path}:{line_no}", hint="import one symbol per file; nothing was stored")
    return first


# --- JSON ------------------------------------------------------------------------------------------


class _CoinbaseCandle(msgspec.Struct):
    start: str | int
    low: str | float
    high: str | float
    open: str | float
    close: str | float
    volume: str | float


class _CoinbaseCandles(msgspec.Struct):
    candles: list[_CoinbaseCandle]


def _read_json(path: Path) -> tuple[str, _Columns]:
    """(format, columns) of Coinbase Advanced Trade candles (`{"candles": [...]}` or a bare list of them)
    or OHLCV arrays: ccxt's `[[time_ms, open, high, low, close, volume], ...]` or Coinbase Exchange's
    `[[time_s, low, high, open, close, volume], ...]`. The time unit is recognised by magnitude; the
    column order by the unit (ms → ccxt), or by the order in which every row is a consistent bar."""
    raw = path.read_bytes()
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise DataError(f"not valid JSON: {exc}", where=str(path), hint="is the file complete?") from None
    if isinstance(doc, list) and doc and isinstance(doc[0], list):
        rows = [_json_array_row(path, i, r) for i, r in enumerate(doc)]
        fmt, names = _array_order(rows)
        if fmt == _EXCHANGE_ARRAYS:  # [t, low, high, open, close, v] → (t, open, high, low, close, v)
            rows = [(r[0], r[3], r[2], r[1], r[4], r[5]) for r in rows]
        label = "{}[{}]"
    else:
        if isinstance(doc, list):
            doc = {"candles": doc}
        try:
            parsed = msgspec.convert(doc, _CoinbaseCandles)
        except msgspec.ValidationError as exc:
            raise DataError(f"not Coinbase candle JSON: {exc}", where=str(path),
                            hint='expected {"candles": [{"start", "low", "high", "open", "close", "volume"}]}') from None
        rows = [
            (c.start, c.open, c.high, c.low, c.close, c.volume) for c in parsed.candles
        ]
        fmt, names = "Coinbase candles JSON", ("start", *VALUE_FIELDS)
        label = "candles[{1}]"
    if not rows:
        raise DataError("the JSON holds no candles", where=str(path))
    unit = _json_unit(rows[0][0])
    ts: list[int] = []
    vals: dict[str, list[float]] = {f: [] for f in VALUE_FIELDS}
    for i, row in enumerate(rows):
        where = f"{path} " + label.format(path.name, i)
        t = _json_time(row[0], unit)
        if t is None:
            raise DataError(f"field '{names[0]}': cannot read {_json_text(row[0])} as a Unix time", where=where)
        ts.append(t)
        for field, value, name in zip(VALUE_FIELDS, row[1:], names[1:], strict=True):
            number = _json_number(value)
            if number is None:
                raise DataError(f"field '{name}': {_json_text(value)} is not a number", where=where,
                                hint="fix or delete that candle and import again; nothing was stored")
            vals[field].append(number)
    return fmt, _Columns(
        ts=np.asarray(ts, dtype=np.int64),
        **{f: np.asarray(vals[f], dtype=np.float64) for f in VALUE_FIELDS},
        locate=lambda i: label.format(path.name, i),
        field_name=lambda f: names[0] if f == "time" else f,
    )


_CCXT_ARRAYS = "OHLCV arrays JSON (ccxt)"
_EXCHANGE_ARRAYS = "Coinbase Exchange candles JSON"
# Element names in the order each array layout writes them (after the time).
_ARRAY_NAMES: dict[str, tuple[str, ...]] = {
    _CCXT_ARRAYS: ("[0] time", "[1] open", "[2] high", "[3] low", "[4] close", "[5] volume"),
    _EXCHANGE_ARRAYS: ("[0] time", "[3] open", "[2] high", "[1] low", "[4] close", "[5] volume"),
}


def _array_order(rows: Sequence[tuple[object, ...]]) -> tuple[str, tuple[str, ...]]:
    """Which array layout: by the time unit (ccxt writes ms, Coinbase Exchange seconds), unless only the
    other layout gives bars with low ≤ open, close ≤ high on every row."""
    by_unit = _CCXT_ARRAYS if _json_unit(rows[0][0]) != "unix_s" else _EXCHANGE_ARRAYS
    other = _EXCHANGE_ARRAYS if by_unit == _CCXT_ARRAYS else _CCXT_ARRAYS
    if not _consistent(rows, by_unit) and _consistent(rows, other):
        by_unit = other
    return by_unit, _ARRAY_NAMES[by_unit]


def _consistent(rows: Sequence[tuple[object, ...]], layout: str) -> bool:
    o, h, low, c = (1, 2, 3, 4) if layout == _CCXT_ARRAYS else (3, 2, 1, 4)
    for r in rows:
        v = [_json_number(r[k]) for k in (o, h, low, c)]
        if any(x is None for x in v):
            continue
        vo, vh, vl, vc = (float(x) for x in v if x is not None)
        if not (vl <= min(vo, vc) and vh >= max(vo, vc)):
            return False
    return True


def _json_array_row(path: Path, i: int, row: object) -> tuple[object, ...]:
    if not isinstance(row, list) or len(row) < 6:
        raise DataError("expected an array of 6 values [time, open, high, low, close, volume]",
                        where=f"{path} [{i}]")
    return tuple(row[:6])


def _json_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return _to_float(value.strip())
    if isinstance(value, int | float):
        return float(value)
    return None  # null, a list, an object: not a number


def _json_text(value: object) -> str:
    """A JSON value as the file writes it (null, not None)."""
    return msgspec.json.encode(value).decode()[:40]


def _json_unit(value: object) -> TimeKind:
    number = _json_number(value)
    if number is None or (isinstance(value, str) and not value.strip().isdigit()):
        return "iso"
    kind = _time_kind(str(int(number)))
    return kind if kind is not None else "unix_s"


def _json_time(value: object, unit: TimeKind) -> int | None:
    """ns since the epoch from Unix time in `unit` (ms, µs, ... as an int, float or digits) or ISO text."""
    if isinstance(value, str) and unit == "iso":
        return _parse_iso(value.strip())
    number = _json_number(value)
    if number is None or unit not in _UNIX_US_FACTOR or not math.isfinite(number):
        return None
    us = number * _UNIX_US_FACTOR[unit]
    if not MIN_TS // 1000 <= us <= MAX_TS // 1000:
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return int(value) * _NS_PER_UNIT[unit]  # exact for integers
    return round(us) * 1000


# --- validation, order, duplicates ------------------------------------------------------------------


def _first_problem(cols: _Columns, timeframe: str | None) -> tuple[int, str, str, int, str] | None:
    """The earliest bad row (in file order): (row, field, what is wrong, how many bad rows in all)."""
    checks: list[tuple[npt.NDArray[np.bool_], str, Callable[[int], str], str]] = []  # (…, hint)

    def not_finite(a: F64) -> Callable[[int], str]:
        return lambda i: f"{a[i]} is not a finite number"

    def not_positive(a: F64) -> Callable[[int], str]:
        return lambda i: f"price {a[i]:.12g} must be above 0"

    for f in VALUE_FIELDS:
        arr = cols.values(f)
        checks.append((~np.isfinite(arr), f, not_finite(arr), FIX_ROWS))
    for f in PRICE_FIELDS:
        arr = cols.values(f)
        checks.append((np.isfinite(arr) & (arr <= 0), f, not_positive(arr), FIX_ROWS))
    def implausible(a: F64) -> Callable[[int], str]:
        return lambda i: f"price {a[i]:.12g} is not plausible (10^12 or more): a unit or digit is wrong"

    for f in PRICE_FIELDS:
        arr = cols.values(f)
        checks.append((np.isfinite(arr) & (arr >= MAX_PRICE), f, implausible(arr), FIX_ROWS))
    checks.append((cols.volume < 0, "volume", lambda i: f"volume {cols.volume[i]:.12g} must not be negative", FIX_ROWS))
    checks.append((np.isfinite(cols.volume) & (cols.volume >= MAX_VOLUME), "volume",
                   lambda i: f"volume {cols.volume[i]:.12g} is not plausible (10^18 or more)", FIX_ROWS))
    top = np.maximum(cols.open, cols.close)
    bottom = np.minimum(cols.open, cols.close)
    checks.append((cols.high < top, "high",
                   lambda i: f"high {cols.high[i]:.12g} is below max(open, close) = {top[i]:.12g}", FIX_ROWS))
    checks.append((cols.low > bottom, "low",
                   lambda i: f"low {cols.low[i]:.12g} is above min(open, close) = {bottom[i]:.12g}", FIX_ROWS))
    checks.append(((cols.ts < MIN_TS) | (cols.ts > MAX_TS), "time",
                   lambda i: f"{minute_utc(int(cols.ts[i]))} is outside 1990–2200; is the time unit right?", FIX_ROWS))
    if timeframe is not None:
        step = timeframe_ns(timeframe)
        checks.append((cols.ts % step != 0, "time",
                       lambda i: f"{minute_utc(int(cols.ts[i]))} is not on a {timeframe} boundary (UTC)", TIMEFRAME_HINT))
    first: tuple[int, str, str, str] | None = None
    bad_rows = np.zeros(len(cols.ts), dtype=bool)
    for mask, field, describe, hint in checks:
        hits = np.flatnonzero(mask)
        if hits.size == 0:
            continue
        bad_rows |= mask
        if first is None or hits[0] < first[0]:
            first = (int(hits[0]), field, describe(int(hits[0])), hint)
    if first is None:
        return None
    return first[0], first[1], first[2], int(bad_rows.sum()), first[3]


def _locate(cols: _Columns, row: int) -> str:
    return cols.locate(row) if cols.locate else f"row {row + 1}"


def _raise_problem(path: Path, cols: _Columns, problem: tuple[int, str, str, int, str]) -> None:
    row, field, what, count, hint = problem
    loc = _locate(cols, row)
    more = f" ({count - 1} more bad rows after it)" if count > 1 else ""
    raise _Problem(
        f"{loc}, field '{cols.field_name(field)}': {what}{more}",
        where=f"{path}:{loc.removeprefix('line ')}" if loc.startswith("line ") else f"{path} {loc}",
        hint=hint,
    )


def _sort_order(cols: _Columns) -> I64:
    order: I64 = np.argsort(cols.ts, kind="stable")
    return order


def _duplicate_pairs(cols: _Columns, order: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
    """Positions (in sorted order) that repeat the previous bar's time, and whether their values differ."""
    ts = cols.ts[order]
    dup = np.flatnonzero(ts[1:] == ts[:-1]) + 1
    differs = np.zeros(dup.shape[0], dtype=bool)
    for f in VALUE_FIELDS:
        v = cols.values(f)[order]
        differs |= v[dup] != v[dup - 1]
    return dup, differs


def _finish(
    path: Path,
    fmt: str,
    cols: _Columns,
    timeframe: str | None,
    warnings: Sequence[str] = (),
    *,
    file_symbol: str | None = None,
    relocate: Callable[[], _Columns] | None = None,
) -> ParsedCandles:
    """Validate, sort, de-duplicate and check the timeframe. On any problem in columns that do not know
    their line numbers (the fast reader's), `relocate()` re-reads the file exactly to name the line."""
    try:
        return _finish_checked(path, fmt, cols, timeframe, warnings, file_symbol)
    except _Problem:
        if relocate is None or cols.locate is not None:
            raise
    exact = relocate()
    return _finish_checked(path, fmt, exact, timeframe, warnings, file_symbol)


class _Problem(DataError):
    """A validation failure; re-raised with line numbers when the rows can be located."""


def _finish_checked(path: Path, fmt: str, cols: _Columns, timeframe: str | None, warnings: Sequence[str],
                    file_symbol: str | None) -> ParsedCandles:
    problem = _first_problem(cols, timeframe)
    if problem is not None:
        _raise_problem(path, cols, problem)
    order = _sort_order(cols)
    dup, differs = _duplicate_pairs(cols, order)
    if differs.any():
        k = int(dup[np.argmax(differs)])
        a, b = sorted((int(order[k - 1]), int(order[k])))
        raise _Problem(
            f"two different candles for {minute_utc(int(cols.ts[a]))}: {_locate(cols, a)} and {_locate(cols, b)}",
            where=str(path), hint="keep one of them and import again; nothing was stored",
        )
    keep = np.ones(order.shape[0], dtype=bool)
    keep[dup] = False
    idx = order[keep]
    candles = CandleArrays(cols.ts[idx], cols.open[idx], cols.high[idx], cols.low[idx], cols.close[idx],
                           cols.volume[idx])
    tf = _check_timeframe(path, candles.ts, timeframe)
    if timeframe is None:  # inferred: the alignment check still has to pass
        problem = _first_problem(cols, tf)
        if problem is not None:
            _raise_problem(path, cols, problem)
    gaps, outliers = check_bars(candles, timeframe_ns(tf))
    return ParsedCandles(
        path=str(path),
        format=fmt,
        timeframe=tf,
        candles=candles,
        rows_read=len(cols.ts),
        duplicates=int(dup.shape[0]),
        gaps=gaps,
        outliers=outliers,
        warnings=tuple(warnings),
        file_symbol=file_symbol,
    )


def _check_timeframe(path: Path, ts: I64, timeframe: str | None) -> str:
    """The timeframe to store under: as given (if the bars' spacing agrees) or inferred."""
    inferred = infer_timeframe(ts)
    if timeframe is None:
        if inferred is None:
            spacing = median_spacing_ns(ts)
            seen = f"bars about {spacing // NS_PER_SECOND} s apart" if spacing else "a single bar"
            raise DataError(f"cannot tell the timeframe of {path.name} ({seen})", where=str(path),
                            hint="pass --timeframe (1m, 5m, 15m, 30m, 1h, 2h, 4h, 6h or 1d)")
        return inferred
    timeframe_ns(timeframe)  # validates the name
    if inferred is not None and inferred != timeframe:
        raise DataError(
            f"the bars are {inferred} apart but --timeframe is {timeframe}",
            where=str(path), hint=f"pass --timeframe {inferred} (or leave it out to infer it)",
        )
    return timeframe


def check_bars(candles: CandleArrays, step_ns: int) -> tuple[tuple[Gap, ...], tuple[Outlier, ...]]:
    """What `trdr data check` reports about a series of bars (sorted, unique times; `step_ns` the bar
    length in ns): its gaps (`find_gaps`) and its suspicious bars (`find_outliers`), each in time order.
    The backtest and the optimizer run the same check on the bars they are given."""
    return tuple(find_gaps(candles.ts, step_ns)), tuple(find_outliers(candles, step_ns))


def describe_outlier(o: Outlier) -> str:
    """`2017-04-15 00:00  range: high/low 19849.83×`: how `trdr data check` names a suspicious bar."""
    return f"{minute_utc(o.ts)}  {o.kind}: {o.detail}"


def find_outliers(candles: CandleArrays, step_ns: int) -> list[Outlier]:
    """Suspicious bars (PRD §14.2): a body over 50 %, a high/low range over 2×, or a 50 % jump from the
    previous bar's close to this bar's open. Reported for a human to judge, not removed."""
    out: list[Outlier] = []
    body = candles.close / candles.open - 1.0
    for i in np.flatnonzero(np.abs(body) > OUTLIER_BODY):
        out.append(Outlier(int(candles.ts[i]), "body", f"close/open {body[i]:+.0%}"))
    ratio = candles.high / candles.low
    for i in np.flatnonzero(ratio > OUTLIER_RANGE):
        out.append(Outlier(int(candles.ts[i]), "range", f"high/low {ratio[i]:.2f}×"))
    if len(candles) > 1:
        jump = candles.open[1:] / candles.close[:-1] - 1.0
        adjacent = np.diff(candles.ts) == step_ns
        for i in np.flatnonzero(adjacent & (np.abs(jump) > OUTLIER_JUMP)):
            out.append(Outlier(int(candles.ts[i + 1]), "jump", f"open vs previous close {jump[i]:+.0%}"))
    out.sort(key=lambda o: o.ts)
    return out


# --- import into the store ----------------------------------------------------------------------------


class ImportReport(msgspec.Struct, frozen=True):
    symbol: str
    parsed: ParsedCandles
    stored: InsertResult
    warnings: tuple[str, ...] = ()
    resampled: tuple[tuple[str, ResampleResult], ...] = ()


def import_candle_file(store: Store, path: str | Path, symbol: str, timeframe: str | None = None, *,
                       replace: bool = False, resample_to: Sequence[str] = (),
                       override_symbol: bool = False) -> ImportReport:
    """Read and validate the whole file, then store it in one transaction. A bad file (or a resample
    target that does not fit its timeframe) raises DataError before anything is written; bars already
    stored are kept unless `replace`. `resample_to` then builds higher timeframes from the stored bars.
    A file that names another symbol than `symbol` (ignoring case and separators: BTCUSD = BTC-USD)
    raises DataError, unless `override_symbol` (then it is stored as `symbol` with a warning)."""
    parsed = read_candle_file(path, timeframe)
    for target in resample_to:
        check_resample(parsed.timeframe, target)
    warnings = list(parsed.warnings)
    if parsed.file_symbol and _bare(parsed.file_symbol) != _bare(symbol):
        if not override_symbol:
            raise DataError(f"the file's candles are {parsed.file_symbol!r}, not {symbol}", where=str(path),
                            hint=f"pass the file's symbol (--symbol {parsed.file_symbol}), or --override-symbol to "
                                 f"store them as {symbol} anyway; nothing was stored")
        warnings.append(f"the file's candles are {parsed.file_symbol!r}; stored as {symbol} (--override-symbol)")
    repo = CandleRepository(store)
    stored = repo.insert(symbol, parsed.timeframe, parsed.candles, source=f"file:{Path(path).name}",
                         replace=replace)
    resampled = tuple((t, repo.resample(symbol, parsed.timeframe, t, replace=replace)) for t in resample_to)
    return ImportReport(symbol, parsed, stored, tuple(warnings), resampled)


def _bare(symbol: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", symbol.upper())


__all__ = [
    "CsvLayout",
    "ImportReport",
    "Outlier",
    "ParsedCandles",
    "check_bars",
    "describe_outlier",
    "detect_csv_layout",
    "find_outliers",
    "import_candle_file",
    "load_candle_file",
    "read_candle_file",
]
