"""Where agents read stored candles of other products (`agents.protocol.CandleSource`)."""

from __future__ import annotations

from trdr_tui.agents.protocol import CandleSource
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.types import Candle
from trdr_tui.store.candles import CandleRepository, insert_bar_rows
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


class LiveCandles:
    """Stored candles with the bars a live feed closes on top (paper/live: the reference product's
    bars from `CoinbaseFeed(references=...)`).

    `add` makes a closed bar visible to `candles()` at once and hands it to the store: through the
    journal writer's deferred rows when one runs (off the hot path, DESIGN.md invariant 11; not
    journaled, as `trdr data backfill` can fetch a lost bar again), else in its own transaction. A bar
    already stored is kept as stored. `candles()` merges `base` (stored candles, read when first asked
    and again whenever it has nothing) with the bars added since, by open time."""

    def __init__(self, store: Store | None, base: CandleSource | None = None, *, timeframe: str = "",
                 source: str = "coinbase-ws") -> None:
        self.store = store
        self.timeframe = timeframe  # of the bars `add_bar` takes
        self.base = base if base is not None else StoredCandles(store) if store is not None else None
        self.source = source
        self._live: dict[tuple[str, str], dict[int, Candle]] = {}
        self._stored: dict[tuple[str, str], CandleArrays | None] = {}
        self._merged: dict[tuple[str, str], CandleArrays | None] = {}

    def add(self, symbol: str, timeframe: str, candle: Candle) -> None:
        """One closed bar of `symbol` (open time `candle.ts`, ns)."""
        key = (symbol, timeframe)
        self._live.setdefault(key, {})[candle.ts] = candle
        self._merged.pop(key, None)
        if self.store is None:
            return
        row: list[object] = [symbol, timeframe, candle.ts, candle.open, candle.high, candle.low, candle.close,
                             candle.volume, self.source]
        writer = self.store.writer
        if writer is not None:
            writer.defer_rows("candles", [row], insert_bar_rows)
        else:
            with self.store.transaction() as cur:
                insert_bar_rows(cur, [row])

    def add_bar(self, symbol: str, candle: Candle) -> None:
        """`add` at `timeframe` (the feed's `on_reference`)."""
        self.add(symbol, self.timeframe, candle)

    def candles(self, symbol: str, timeframe: str) -> CandleArrays | None:
        key = (symbol, timeframe)
        if key in self._merged:
            return self._merged[key]
        stored = self._stored.get(key)
        if stored is None and self.base is not None:
            stored = self._stored[key] = self.base.candles(symbol, timeframe)
        live = self._live.get(key, {})
        if stored is not None and live:
            known = set(stored.ts.tolist())
            rows = list(stored.candles()) + [c for ts, c in live.items() if ts not in known]
            merged: CandleArrays | None = CandleArrays.from_candles(sorted(rows, key=lambda c: c.ts))
        elif live:
            merged = CandleArrays.from_candles(sorted(live.values(), key=lambda c: c.ts))
        else:
            merged = stored
        if merged is not None:
            self._merged[key] = merged
        return merged
