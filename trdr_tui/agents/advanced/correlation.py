"""CorrelationAgent: cross-asset correlation and mean reversion against a reference product.

The reference (`[agents] reference_symbol`, e.g. ETH-USD) comes from stored candles
(`context.candles`: `trdr data import FILE --symbol ETH-USD` or `trdr data backfill --symbol ETH-USD`),
aligned to our bars by open time (the latest reference bar at or before ours, at most
`max_lag_bars` old). Over the last `window` bars:

- ρ: Pearson correlation of the two products' log returns;
- z: the z-score of the log price ratio ln(P / P_ref) against its `window`-bar mean and (population)
  standard deviation.

When the products move together (ρ ≥ `min_correlation`) and ours is unusually cheap against the
reference (z ≤ −`z_entry`) → TRAIL_BUY (the ratio tends to revert); unusually rich (z ≥ `z_entry`)
→ TRAIL_SELL. Confidence grows with |z| and ρ. Otherwise HOLD.

Without reference data the agent is unavailable: it votes HOLD at confidence 0 (no influence),
says in `reasoning` which command fetches the data, and the panel goes on. In paper and live the
engine subscribes to the reference on the same WebSocket and adds its closed bars to
`context.candles` (`agents.sources.LiveCandles`): the streaming `analyze` looks again on every bar
while the data is missing, so the agent becomes available once the reference bars arrive (it still
needs `window` + 1 aligned bars before it shows ρ and z).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import numpy as np
import numpy.typing as npt

from trdr_tui.agents.advanced.windows import F64, roll, tail
from trdr_tui.agents.protocol import BUY, CODE_ACTIONS, HOLD, SELL, BaseAgent, MarketSnapshot, SignalArrays
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.timeframes import timeframe_ns
from trdr_tui.core.types import AgentSignal, Urgency
from trdr_tui.market.indicators import Features

log = logging.getLogger(__name__)


# the unavailable reasons already logged, per candle source: an ablation builds this agent once per
# variant on one source and says it once; another run (its own source) says it again
_WARNED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


class CorrelationAgent(BaseAgent):
    id = "correlation"
    name = "Correlation"
    version = "1.0.0"
    description = "correlation and mean reversion of the price ratio against a reference product"

    window = 72
    min_correlation = 0.5
    z_entry = 2.0
    max_lag_bars = 2
    hold_confidence = 0.2

    def __init__(self) -> None:
        super().__init__()
        self.reference = ""
        self._ref: CandleArrays | None = None
        self._unavailable = ""
        self._last: dict[str, Any] | None = None

    def initialize(self, context: Any) -> None:
        super().initialize(context)
        self.reference = str(context.params.get("reference_symbol", ""))
        self._load()

    def _load(self) -> None:
        c = self.context
        before = self._unavailable
        source = c.candles
        self._ref = source.candles(self.reference, c.timeframe) if source is not None and self.reference else None
        if not self.reference:
            self._unavailable = "unavailable: no reference product configured (set [agents] reference_symbol)"
        elif self._ref is None:
            self._unavailable = (f"unavailable: no stored {self.reference} {c.timeframe} candles; fetch them with "
                                 f"`trdr data backfill --symbol {self.reference} --timeframe {c.timeframe} --start "
                                 f"YYYY-MM-DD` or `trdr data import FILE --symbol {self.reference}`")
        else:
            self._unavailable = ""
        warned = _WARNED.setdefault(source, set()) if source is not None else set()
        if self._unavailable and self._unavailable != before and self._unavailable not in warned:
            warned.add(self._unavailable)
            log.warning("agent '%s' %s", self.id, self._unavailable)
        elif before and not self._unavailable:
            warned.discard(before)  # a later loss of the data is news again
            log.info("agent '%s': %s %s candles now available", self.id, self.reference, c.timeframe)

    def _aligned(self, ts: npt.NDArray[np.int64]) -> F64:
        """The reference close at or before each bar open (NaN when missing or older than the lag)."""
        ref = self._ref
        if ref is None:
            return np.full(ts.shape[0], np.nan)
        idx = np.searchsorted(ref.ts, ts, side="right") - 1
        ok = idx >= 0
        at = np.where(ok, idx, 0)
        fresh = ok & (ts - ref.ts[at] <= self.max_lag_bars * timeframe_ns(self.context.timeframe))
        return np.where(fresh, ref.close[at], np.nan)

    def _stats(self, close: F64, ref_close: F64, m: int) -> dict[str, Any]:
        """ρ and z for the last m bars from the closes leading up to them (both shape (≥ m + window,))."""
        w = self.window
        x, y = np.log(close), np.log(ref_close)
        rx = np.concatenate(([np.nan], np.diff(x)))
        ry = np.concatenate(([np.nan], np.diff(y)))
        mx, my = roll(rx, w, np.mean, m), roll(ry, w, np.mean, m)
        sx, sy = roll(rx, w, np.std, m), roll(ry, w, np.std, m)
        cov = roll(rx * ry, w, np.mean, m) - mx * my
        spread = x - y
        mean, sd = roll(spread, w, np.mean, m), roll(spread, w, np.std, m)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = cov / (sx * sy)
            z = (spread[-m:] - mean) / sd
        valid = np.isfinite(rho) & np.isfinite(z)
        together = valid & (rho >= self.min_correlation)
        buy = together & (z <= -self.z_entry)
        sell = together & (z >= self.z_entry)
        strength = np.clip(np.abs(z) - self.z_entry, 0.0, 2.0) / 2.0
        conf = np.where(buy | sell, 0.5 + 0.4 * strength * np.clip(rho, 0.0, 1.0) + 0.05,
                        np.where(valid, self.hold_confidence, 0.0))
        return {"valid": valid, "buy": buy, "sell": sell, "rho": rho, "z": z, "conf": np.clip(conf, 0.0, 1.0)}

    def _arrays(self, s: dict[str, Any]) -> tuple[npt.NDArray[np.int8], F64, F64]:
        n = s["z"].shape[0]
        action = np.full(n, HOLD, dtype=np.int8)
        action[s["buy"]] = BUY
        action[s["sell"]] = SELL
        return action, s["conf"], np.full(n, self.context.base_trail)

    def _words(self, s: dict[str, Any], i: int) -> tuple[str, Urgency]:
        if self._unavailable:
            return self._unavailable, Urgency.NORMAL
        if not s["valid"][i]:
            return f"no aligned {self.reference} history for the last {self.window} bars yet", Urgency.NORMAL
        rho, z = float(s["rho"][i]), float(s["z"][i])
        facts = f"ρ {rho:.2f} with {self.reference} over {self.window} bars, price ratio z {z:+.2f}"
        if s["buy"][i]:
            return f"{facts}: cheap against {self.reference}, expecting the ratio to revert", Urgency.NORMAL
        if s["sell"][i]:
            return f"{facts}: rich against {self.reference}, expecting the ratio to revert", Urgency.NORMAL
        if rho < self.min_correlation:
            return f"{facts}: moving apart, no pair signal", Urgency.NORMAL
        return f"{facts}: ratio within its usual range", Urgency.NORMAL

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        if self._ref is None and self.reference and self.context.candles is not None:
            self._load()  # live: the reference's bars may have arrived since
        if self._unavailable:
            return self.signal(snapshot, CODE_ACTIONS[HOLD], 0.0, self.context.base_trail, self._unavailable)
        w = tail(snapshot.history, self.window + 1)
        if w is None:
            return self.warming_up(snapshot)
        ref = self._ref
        if ref is not None and int(w["ts"][-1]) > int(ref.ts[-1]) and self.context.candles is not None:
            self._ref = self.context.candles.candles(self.reference, self.context.timeframe) or ref  # live: newer rows
        s = self._stats(w["close"], self._aligned(w["ts"]), 1)
        action, conf, trail = self._arrays(s)
        words, urgency = self._words(s, 0)
        return self.signal(snapshot, CODE_ACTIONS[int(action[0])], float(conf[0]), float(trail[0]), words, urgency)

    def analyze_batch(self, features: Features) -> SignalArrays:
        n = len(features)
        if self._unavailable:
            return SignalArrays(np.full(n, HOLD, dtype=np.int8), np.zeros(n), np.full(n, self.context.base_trail))
        s = self._stats(features.close, self._aligned(features.ts), n)
        self._last = s
        return SignalArrays(*self._arrays(s))

    def explain(self, features: Features, i: int) -> tuple[str, Urgency]:
        if self._unavailable:
            return self._unavailable, Urgency.NORMAL
        if self._last is None or self._last["z"].shape[0] != len(features):
            self.analyze_batch(features)
        assert self._last is not None
        return self._words(self._last, i)
