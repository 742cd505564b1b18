"""RegimeAgent: classifies the market as trending, ranging, volatile or calm, and adapts the panel.

Classification (first match wins):
- volatile: ATR% ≥ `volatile_ratio` × its 100-bar average;
- trending: |SMA20 - SMA50| ≥ `trend_atr` × ATR (the averages are far apart in units of noise);
- calm: ATR% ≤ `calm_ratio` × its average;
- ranging: everything else.

It votes TRAIL_BUY in an uptrend with price above SMA20, TRAIL_SELL in a downtrend below it, and
HOLD otherwise. It adapts the others through the consensus trail distance: the orchestrator
multiplies the panel's trail by the regime's multiplier (PRD §3.5: trending 1.5, ranging 0.7,
volatile 2.0, calm 0.5), and the meta-resolution step sides with the regime's direction when the
panel disagrees.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from trdr_tui.agents.protocol import BUY, HOLD, SELL, BaseAgent, MarketSnapshot, SignalArrays
from trdr_tui.core.types import HOLD_ACTION, TRAIL_BUY_ACTION, TRAIL_SELL_ACTION, AgentSignal
from trdr_tui.market.indicators import Features
from trdr_tui.market.streaming import FeatureRow

UNKNOWN, TRENDING, RANGING, VOLATILE, CALM = 0, 1, 2, 3, 4
REGIME_NAMES = ("unknown", "trending", "ranging", "volatile", "calm")
TRAIL_MULTIPLIERS = (1.0, 1.5, 0.7, 2.0, 0.5)
_PANEL_TRAIL = tuple(f"panel trail ×{m}" for m in TRAIL_MULTIPLIERS)  # the reasoning's tail per regime


class RegimeAgent(BaseAgent):
    id = "regime"
    name = "Regime"
    version = "1.0.0"
    description = "trending / ranging / volatile / calm classifier; scales the panel's trail"

    volatile_ratio = 1.8
    calm_ratio = 0.6
    trend_atr = 2.0
    hold_confidence: ClassVar[dict[int, float]] = {UNKNOWN: 0.0, TRENDING: 0.4, RANGING: 0.4, VOLATILE: 0.6, CALM: 0.4}

    def __init__(self) -> None:
        super().__init__()
        # the last row classified and its code: the orchestrator asks again for the bar just analysed
        self._last: tuple[FeatureRow | None, int] = (None, UNKNOWN)

    # -- classification ---------------------------------------------------------------------------

    def regime_code(self, row: FeatureRow) -> int:
        last_row, last_code = self._last
        if row is last_row:
            return last_code
        code = self._classify(row)
        self._last = (row, code)
        return code

    def _classify(self, row: FeatureRow) -> int:
        atr_pct, atr_pct_ma, atr = row.atr_pct, row.atr_pct_ma, row.atr
        total = atr_pct + atr_pct_ma + row.sma_fast + row.sma_slow + atr
        if total != total or atr <= 0:  # `any_nan` written out: one of them is NaN
            return UNKNOWN
        ratio = atr_pct / atr_pct_ma
        if ratio >= self.volatile_ratio:
            return VOLATILE
        if abs(row.sma_fast - row.sma_slow) / atr >= self.trend_atr:
            return TRENDING
        if ratio <= self.calm_ratio:
            return CALM
        return RANGING

    def regime_codes(self, features: Features) -> npt.NDArray[np.int8]:
        f = features
        valid = ~(np.isnan(f.atr_pct) | np.isnan(f.atr_pct_ma) | np.isnan(f.sma_fast) | np.isnan(f.sma_slow)
                  | np.isnan(f.atr))
        valid &= np.where(valid, f.atr, 0.0) > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = f.atr_pct / f.atr_pct_ma
            strength = np.abs(f.sma_fast - f.sma_slow) / f.atr
            codes = np.select(
                [~valid, ratio >= self.volatile_ratio, strength >= self.trend_atr, ratio <= self.calm_ratio],
                [UNKNOWN, VOLATILE, TRENDING, CALM], default=RANGING)
        return codes.astype(np.int8)

    def regime_name(self, code: int) -> str:
        return REGIME_NAMES[code]

    def multiplier(self, code: int) -> float:
        return TRAIL_MULTIPLIERS[code]

    def multipliers(self, codes: npt.NDArray[np.int8]) -> npt.NDArray[np.float64]:
        return np.asarray(TRAIL_MULTIPLIERS, dtype=np.float64)[codes]

    def trail_multiplier(self, row: FeatureRow) -> float:
        return TRAIL_MULTIPLIERS[self.regime_code(row)]

    # -- voting -----------------------------------------------------------------------------------

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        f = snapshot.features
        code = self.regime_code(f)
        trail = self.context.base_trail
        if code == UNKNOWN:
            return self.warming_up(snapshot)
        sma_fast, sma_slow = f.sma_fast, f.sma_slow
        ratio = f.atr_pct / f.atr_pct_ma
        strength = abs(sma_fast - sma_slow) / f.atr
        facts = f"{REGIME_NAMES[code]} (ATR {ratio:.2f}× average, SMA gap {strength:.1f} ATR); {_PANEL_TRAIL[code]}"
        if code == TRENDING:
            conf = 0.5 + 0.4 * min(1.0, (strength - self.trend_atr) / 4.0)
            if sma_fast > sma_slow and f.close > sma_fast:
                return self.signal(snapshot, TRAIL_BUY_ACTION, conf, trail, f"uptrend: {facts}")
            if sma_fast < sma_slow and f.close < sma_fast:
                return self.signal(snapshot, TRAIL_SELL_ACTION, conf, trail, f"downtrend: {facts}")
            return self.signal(snapshot, HOLD_ACTION, self.hold_confidence[TRENDING], trail,
                               f"trend paused (price on the wrong side of SMA20): {facts}")
        return self.signal(snapshot, HOLD_ACTION, self.hold_confidence[code], trail, facts)

    def analyze_batch(self, features: Features) -> SignalArrays:
        f = features
        n = len(f)
        codes = self.regime_codes(f)
        with np.errstate(divide="ignore", invalid="ignore"):
            strength = np.abs(f.sma_fast - f.sma_slow) / f.atr
            trending = codes == TRENDING
            buy = trending & (f.sma_fast > f.sma_slow) & (f.close > f.sma_fast)
            sell = trending & ~buy & (f.sma_fast < f.sma_slow) & (f.close < f.sma_fast)
        action = np.full(n, HOLD, dtype=np.int8)
        action[buy] = BUY
        action[sell] = SELL
        hold = np.array([self.hold_confidence[c] for c in range(len(REGIME_NAMES))])[codes]
        conf = np.where(buy | sell, 0.5 + 0.4 * np.minimum(1.0, (strength - self.trend_atr) / 4.0), hold)
        return SignalArrays(action, np.clip(conf, 0.0, 1.0), np.full(n, self.context.base_trail))
