"""Columnar candles (numpy) for whole-history work: backtests, batch indicators, import."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import numpy as np
import numpy.typing as npt

from trdr_tui.core.types import Candle

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class CandleArrays(msgspec.Struct, frozen=True):
    """Bars in ascending time. `ts` is int64 nanoseconds (bar open, UTC); the rest float64."""

    ts: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def __getitem__(self, key: slice) -> CandleArrays:
        return CandleArrays(self.ts[key], self.open[key], self.high[key], self.low[key], self.close[key],
                            self.volume[key])

    def candle(self, i: int) -> Candle:
        return Candle(int(self.ts[i]), float(self.open[i]), float(self.high[i]), float(self.low[i]),
                      float(self.close[i]), float(self.volume[i]))

    def candles(self) -> Iterator[Candle]:
        ts, o, h, lo, c, v = (a.tolist() for a in (self.ts, self.open, self.high, self.low, self.close, self.volume))
        for i in range(len(ts)):
            yield Candle(ts[i], o[i], h[i], lo[i], c[i], v[i])

    @classmethod
    def from_candles(cls, candles: list[Candle]) -> CandleArrays:
        if not candles:
            return cls.empty()
        a = np.array([(c.open, c.high, c.low, c.close, c.volume) for c in candles], dtype=np.float64)
        return cls(np.array([c.ts for c in candles], dtype=np.int64), a[:, 0].copy(), a[:, 1].copy(),
                   a[:, 2].copy(), a[:, 3].copy(), a[:, 4].copy())

    @classmethod
    def empty(cls) -> CandleArrays:
        z = np.empty(0, dtype=np.float64)
        return cls(np.empty(0, dtype=np.int64), z, z.copy(), z.copy(), z.copy(), z.copy())
