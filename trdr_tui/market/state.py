"""MarketState: the latest candles in a ring buffer plus streaming indicators, fed one candle at a time.

The orchestrator owns one per symbol. `update(candle)` is O(1): it pushes the candle into the ring
and into the streaming indicators and returns that bar's `FeatureRow`. A checkpoint stores the ring;
restoring replays it into fresh indicators (the ring holds far more bars than any indicator needs
to converge, so restored values match an uninterrupted run to float rounding).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.types import Candle
from trdr_tui.market.indicators import IndicatorParams
from trdr_tui.market.streaming import FeatureRow, StreamingIndicators


class MarketState:
    def __init__(self, symbol: str, params: IndicatorParams | None = None, *, capacity: int = 1000) -> None:
        self.symbol = symbol
        self.params = params or IndicatorParams()
        if capacity < self.params.warmup:
            raise ValueError(f"ring capacity {capacity} is smaller than the indicator warm-up ({self.params.warmup})")
        self.capacity = capacity
        self.candles: deque[Candle] = deque(maxlen=capacity)
        # the ring again as `[ts, open, high, low, close, volume]` rows, what a checkpoint stores: kept
        # as candles arrive, so a checkpoint copies a list instead of converting the whole ring
        self._rows: deque[list[float]] = deque(maxlen=capacity)
        self.indicators = StreamingIndicators(self.params)
        self.features: FeatureRow | None = None
        self.count = 0  # candles seen since the start (not only those in the ring)
        self._warmup = self.params.warmup

    @property
    def index(self) -> int:
        """0-based index of the latest candle."""
        return self.count - 1

    @property
    def ready(self) -> bool:
        """True once every windowed feature has had enough bars."""
        return self.count >= self._warmup

    @property
    def last(self) -> Candle | None:
        return self.candles[-1] if self.candles else None

    def update(self, candle: Candle) -> FeatureRow:
        row = self.indicators.update(candle)  # raises on out-of-order candles before changing anything
        self.candles.append(candle)
        self._rows.append([candle.ts, candle.open, candle.high, candle.low, candle.close, candle.volume])
        self.features = row
        self.count += 1
        return row

    def arrays(self) -> CandleArrays:
        """The ring as columns (oldest first), for agents that want raw history."""
        return CandleArrays.from_candles(list(self.candles))

    def get_state(self) -> dict[str, Any]:
        """The ring as `[ts, open, high, low, close, volume]` rows, oldest first."""
        return {"symbol": self.symbol, "count": self.count, "candles": list(self._rows)}

    def set_state(self, state: dict[str, Any]) -> None:
        candles = [Candle(int(r[0]), *(float(x) for x in r[1:6])) for r in state.get("candles", [])]
        fresh = MarketState(self.symbol, self.params, capacity=self.capacity)
        for c in candles:
            fresh.update(c)
        self.candles, self.indicators, self.features = fresh.candles, fresh.indicators, fresh.features
        self._rows = fresh._rows
        self.count = int(state.get("count", len(candles)))
