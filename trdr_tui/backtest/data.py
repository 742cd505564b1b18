"""Where a backtest's bars come from: the candle store, or a file imported on the fly.

A file goes through the same importer and the same candle repository as `trdr data import`, into a
throwaway in-memory store, so a `--data` run sees exactly the bars a stored run would.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import ConfigError, DataError
from trdr_tui.store.db import MEMORY, Store


def parse_time(text: str | None, what: str) -> int | None:
    """`2019-01-01`, `2019-01-01T12:00` or `2019-01-01 12:00` (UTC) → ns since the epoch."""
    if text is None or text == "":
        return None
    raw = text.strip().replace(" ", "T")
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not a date", hint="use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def load_file(path: str | Path, *, symbol: str = "BTC-USD", timeframe: str | None = None,
              start: int | None = None, end: int | None = None) -> tuple[CandleArrays, str]:
    """Import `path` into an in-memory store and read back [start, end) (ns; None = unbounded).

    Returns the bars and their timeframe (as given, else inferred from the file).
    """
    from trdr_tui.market.importer import read_candle_file
    from trdr_tui.store.candles import CandleRepository

    parsed = read_candle_file(path, timeframe)
    with Store(MEMORY) as mem:
        repo = CandleRepository(mem)
        repo.insert(symbol, parsed.timeframe, parsed.candles, source=Path(path).name)
        bars = repo.load(symbol, parsed.timeframe, start, end)
    if len(bars) == 0:
        raise DataError(f"{path} has no bars in the requested range", hint="check --start/--end")
    return bars, parsed.timeframe


def load_stored(store: Store, symbol: str, timeframe: str, start: int | None = None,
                end: int | None = None) -> CandleArrays:
    from trdr_tui.store.candles import CandleRepository

    bars = CandleRepository(store).load(symbol, timeframe, start, end)
    if len(bars) == 0:
        raise DataError(f"no stored {symbol} {timeframe} candles in the requested range",
                        where=store.path,
                        hint=f"import some first: trdr data import FILE --symbol {symbol}, or pass --data FILE")
    return bars
