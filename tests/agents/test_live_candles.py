"""LiveCandles: stored candles with a live feed's bars on top, written to the store."""

from __future__ import annotations

from pathlib import Path

from trdr_tui.agents.sources import LiveCandles
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.types import Candle
from trdr_tui.store import Store
from trdr_tui.store.candles import CandleRepository

H = 3600 * 1_000_000_000


def bar(i: int, close: float) -> Candle:
    return Candle(i * H, close, close + 1, close - 1, close, 2.0)


def test_live_bars_merge_with_stored_ones_and_reach_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.duckdb")
    repo = CandleRepository(store)
    repo.insert("ETH-USD", "1h", CandleArrays.from_candles([bar(0, 10.0), bar(1, 11.0)]), source="import")
    live = LiveCandles(store, timeframe="1h")
    assert live.candles("ETH-USD", "1h") is not None and len(live.candles("ETH-USD", "1h")) == 2  # type: ignore[arg-type]
    live.add_bar("ETH-USD", bar(3, 13.0))
    live.add_bar("ETH-USD", bar(1, 99.0))  # already stored: the stored bar stays
    live.add_bar("ETH-USD", bar(2, 12.0))  # a repaired bar arriving after a later one
    got = live.candles("ETH-USD", "1h")
    assert got is not None
    assert got.ts.tolist() == [0, H, 2 * H, 3 * H]
    assert got.close.tolist() == [10.0, 11.0, 12.0, 13.0]
    assert live.candles("BTC-USD", "1h") is None
    stored = repo.load("ETH-USD", "1h")
    assert stored.close.tolist() == [10.0, 11.0, 12.0, 13.0]
    store.close()


def test_without_stored_bars_the_live_ones_alone() -> None:
    live = LiveCandles(None, timeframe="1h")
    assert live.candles("ETH-USD", "1h") is None
    live.add_bar("ETH-USD", bar(5, 50.0))
    got = live.candles("ETH-USD", "1h")
    assert got is not None and got.close.tolist() == [50.0]
