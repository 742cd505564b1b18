"""MarketStructureAgent: support and resistance from confirmed swings, structure breaks, SMA 20/50.

In order of precedence:
1. Structure break with the trend: close above the last swing high while SMA20 > SMA50 → TRAIL_BUY;
   close below the last swing low while SMA20 < SMA50 → TRAIL_SELL.
2. Trend structure: higher highs and higher lows with SMA20 > SMA50 → TRAIL_BUY (buy the dips);
   lower highs and lower lows with SMA20 < SMA50 → TRAIL_SELL.
3. Price within `near_atr` ATRs above support → TRAIL_BUY; within that distance below resistance →
   TRAIL_SELL.
4. Otherwise HOLD.
Swings are confirmed `swing_lookback` bars after they happen, so nothing here looks ahead.
"""

from __future__ import annotations

import math

import numpy as np

from trdr_tui.agents.protocol import BUY, HOLD, SELL, BaseAgent, MarketSnapshot, SignalArrays
from trdr_tui.core.types import HOLD_ACTION, TRAIL_BUY_ACTION, TRAIL_SELL_ACTION, AgentSignal
from trdr_tui.market.indicators import Features

NAN = math.nan


class MarketStructureAgent(BaseAgent):
    id = "market_structure"
    name = "Market structure"
    version = "1.0.0"
    description = "swing support/resistance, structure breaks, SMA 20/50 trend"

    break_confidence = 0.7
    trend_confidence = 0.6
    level_confidence = 0.55
    hold_confidence = 0.3
    near_atr = 0.5

    def __init__(self) -> None:
        super().__init__()
        # the swings change only when a new one is confirmed: their text is kept until then
        self._levels_of: tuple[float, float] = (NAN, NAN)
        self._levels = ""

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        f = snapshot.features
        sma_fast, sma_slow, swing_high, swing_low = f.sma_fast, f.sma_slow, f.swing_high, f.swing_low
        total = sma_fast + sma_slow + f.atr + swing_high + swing_low
        if total != total:  # `any_nan` written out: one of them is NaN
            return self.warming_up(snapshot)
        trail = self.context.base_trail
        up = sma_fast > sma_slow
        down = sma_fast < sma_slow
        trend = "SMA20 > SMA50" if up else ("SMA20 < SMA50" if down else "SMA20 = SMA50")
        if self._levels_of != (swing_low, swing_high):  # equal (positive) prices format alike
            self._levels_of = (swing_low, swing_high)
            self._levels = f"support {swing_low:.2f}, resistance {swing_high:.2f}"
        levels = self._levels
        if f.close > f.swing_high and up:
            return self.signal(snapshot, TRAIL_BUY_ACTION, self.break_confidence, trail,
                               f"break above the last swing high {f.swing_high:.2f} with {trend}")
        if f.close < f.swing_low and down:
            return self.signal(snapshot, TRAIL_SELL_ACTION, self.break_confidence, trail,
                               f"break below the last swing low {f.swing_low:.2f} with {trend}")
        if up and f.swing_high > f.prev_swing_high and f.swing_low > f.prev_swing_low:
            return self.signal(snapshot, TRAIL_BUY_ACTION, self.trend_confidence, trail,
                               f"higher highs and higher lows with {trend}; {levels}")
        if down and f.swing_high < f.prev_swing_high and f.swing_low < f.prev_swing_low:
            return self.signal(snapshot, TRAIL_SELL_ACTION, self.trend_confidence, trail,
                               f"lower highs and lower lows with {trend}; {levels}")
        band = self.near_atr * f.atr
        if f.swing_low <= f.close <= f.swing_low + band:
            return self.signal(snapshot, TRAIL_BUY_ACTION, self.level_confidence, trail,
                               f"at support ({levels}); {trend}")
        if f.swing_high - band <= f.close <= f.swing_high:
            return self.signal(snapshot, TRAIL_SELL_ACTION, self.level_confidence, trail,
                               f"at resistance ({levels}); {trend}")
        return self.signal(snapshot, HOLD_ACTION, self.hold_confidence, trail, f"between levels ({levels}); {trend}")

    def analyze_batch(self, features: Features) -> SignalArrays:
        f = features
        n = len(f)
        valid = ~(np.isnan(f.sma_fast) | np.isnan(f.sma_slow) | np.isnan(f.atr) | np.isnan(f.swing_high)
                  | np.isnan(f.swing_low))
        with np.errstate(invalid="ignore"):
            up = f.sma_fast > f.sma_slow
            down = f.sma_fast < f.sma_slow
            band = self.near_atr * f.atr
            rules = [
                (valid & (f.close > f.swing_high) & up, BUY, self.break_confidence),
                (valid & (f.close < f.swing_low) & down, SELL, self.break_confidence),
                (valid & up & (f.swing_high > f.prev_swing_high) & (f.swing_low > f.prev_swing_low), BUY,
                 self.trend_confidence),
                (valid & down & (f.swing_high < f.prev_swing_high) & (f.swing_low < f.prev_swing_low), SELL,
                 self.trend_confidence),
                (valid & (f.swing_low <= f.close) & (f.close <= f.swing_low + band), BUY, self.level_confidence),
                (valid & (f.swing_high - band <= f.close) & (f.close <= f.swing_high), SELL, self.level_confidence),
            ]
        action = np.full(n, HOLD, dtype=np.int8)
        conf = np.where(valid, self.hold_confidence, 0.0)
        decided = np.zeros(n, dtype=bool)
        for mask, code, c in rules:
            hit = mask & ~decided
            action[hit] = code
            conf[hit] = c
            decided |= hit
        return SignalArrays(action, conf, np.full(n, self.context.base_trail))
