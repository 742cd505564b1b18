"""Where agents read stored candles of other products (`agents.protocol.CandleSource`)."""

from __future__ import annotations

from trdr_tui.core.arrays import CandleArrays
from trdr_tui.store.candles import CandleRepository
from trdr_tui.store.db import Store


class StoredCandles:
    """Candles from the `candles` table of a Store (`trdr data import` / `trdr data backfill`)."""

    def __init__(self, store: Store) -> None:
        self.repo = CandleRepository(store)

    def candles(self, symbol: str, timeframe: str) -> CandleArrays | None:
        got = self.repo.load(symbol, timeframe)
        return got if len(got) else None


class MemoryCandles:
    """Candles held in memory by (symbol, timeframe): tests and callers that loaded them already."""

    def __init__(self, data: dict[tuple[str, str], CandleArrays]) -> None:
        self.data = dict(data)

    def candles(self, symbol: str, timeframe: str) -> CandleArrays | None:
        got = self.data.get((symbol, timeframe))
        return got if got is not None and len(got) else None
