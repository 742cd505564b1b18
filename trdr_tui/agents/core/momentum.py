"""MomentumAgent: RSI exhaustion confirmed on a slower timeframe, and RSI/price divergence.

- Exhaustion: RSI(14) below `oversold` while the slow RSI (56 bars ≈ the 14-period RSI of a 4×
  longer timeframe) is also below `slow_oversold` → TRAIL_BUY; the mirror image → TRAIL_SELL.
  Requiring both timeframes filters the one-bar dips of a healthy trend.
- Divergence: price closes at its 20-bar low while RSI stays `divergence_gap` points above its own
  20-bar low, or while the MACD histogram is already positive (selling is losing force) →
  TRAIL_BUY; a new 20-bar high on a weaker RSI or a negative MACD histogram → TRAIL_SELL.
- Otherwise HOLD, with the MACD histogram's sign as context.
Trailing orders make these contrarian votes safe: a trailing buy only fires after the bounce.
"""

from __future__ import annotations

import numpy as np

from trdr_tui.agents.protocol import BUY, HOLD, SELL, BaseAgent, MarketSnapshot, SignalArrays
from trdr_tui.core.types import HOLD_ACTION, TRAIL_BUY_ACTION, TRAIL_SELL_ACTION, AgentSignal
from trdr_tui.market.indicators import Features


class MomentumAgent(BaseAgent):
    id = "momentum"
    name = "Momentum"
    version = "1.0.0"
    description = "RSI exhaustion on two timeframes, RSI and MACD divergence from price"

    oversold = 30.0
    overbought = 70.0
    slow_oversold = 40.0
    slow_overbought = 60.0
    divergence_gap = 5.0
    hold_confidence = 0.3

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        f = snapshot.features
        rsi, rsi_slow, rsi_max, rsi_min, macd_hist = f.rsi, f.rsi_slow, f.rsi_max, f.rsi_min, f.macd_hist
        close, close_max, close_min = f.close, f.close_max, f.close_min
        total = rsi + rsi_slow + rsi_max + rsi_min + close_max + close_min + macd_hist
        if total != total:  # `any_nan` written out: one of them is NaN
            return self.warming_up(snapshot)
        trail = self.context.base_trail
        bull_ex = rsi < self.oversold and rsi_slow < self.slow_oversold
        bear_ex = rsi > self.overbought and rsi_slow > self.slow_overbought
        bull_div = close <= close_min and (rsi > rsi_min + self.divergence_gap or macd_hist > 0)
        bear_div = close >= close_max and (rsi < rsi_max - self.divergence_gap or macd_hist < 0)
        rsis = f"RSI {rsi:.1f}, slow RSI {rsi_slow:.1f}"
        if bull_ex or bull_div:
            conf = 0.6 + 0.35 * min(1.0, (self.oversold - f.rsi) / 20.0) if bull_ex else 0.6
            if bull_ex and bull_div:
                conf = min(conf + 0.1, 0.95)
            why = []
            if bull_ex:
                why.append(f"oversold on both timeframes ({rsis})")
            if bull_div:
                why.append(f"bullish divergence: 20-bar low close while RSI {f.rsi:.1f} (its low {f.rsi_min:.1f}), "
                           f"MACD histogram {f.macd_hist:+.2f}")
            return self.signal(snapshot, TRAIL_BUY_ACTION, conf, trail, "; ".join(why))
        if bear_ex or bear_div:
            conf = 0.6 + 0.35 * min(1.0, (f.rsi - self.overbought) / 20.0) if bear_ex else 0.6
            if bear_ex and bear_div:
                conf = min(conf + 0.1, 0.95)
            why = []
            if bear_ex:
                why.append(f"overbought on both timeframes ({rsis})")
            if bear_div:
                why.append(f"bearish divergence: 20-bar high close while RSI {f.rsi:.1f} (its high {f.rsi_max:.1f}), "
                           f"MACD histogram {f.macd_hist:+.2f}")
            return self.signal(snapshot, TRAIL_SELL_ACTION, conf, trail, "; ".join(why))
        side = "positive" if f.macd_hist > 0 else "negative"
        return self.signal(snapshot, HOLD_ACTION, self.hold_confidence, trail,
                           f"no exhaustion or divergence ({rsis}); MACD histogram {side}")

    def analyze_batch(self, features: Features) -> SignalArrays:
        f = features
        n = len(f)
        valid = ~(np.isnan(f.rsi) | np.isnan(f.rsi_slow) | np.isnan(f.rsi_max) | np.isnan(f.rsi_min)
                  | np.isnan(f.close_max) | np.isnan(f.close_min) | np.isnan(f.macd_hist))
        with np.errstate(invalid="ignore"):
            bull_ex = valid & (f.rsi < self.oversold) & (f.rsi_slow < self.slow_oversold)
            bear_ex = valid & (f.rsi > self.overbought) & (f.rsi_slow > self.slow_overbought)
            bull_div = valid & (f.close <= f.close_min) & ((f.rsi > f.rsi_min + self.divergence_gap)
                                                           | (f.macd_hist > 0))
            bear_div = valid & (f.close >= f.close_max) & ((f.rsi < f.rsi_max - self.divergence_gap)
                                                           | (f.macd_hist < 0))
        buy = bull_ex | bull_div
        sell = ~buy & (bear_ex | bear_div)
        action = np.full(n, HOLD, dtype=np.int8)
        action[buy] = BUY
        action[sell] = SELL
        conf = np.where(valid, self.hold_confidence, 0.0)
        buy_conf = np.where(bull_ex, 0.6 + 0.35 * np.minimum(1.0, (self.oversold - f.rsi) / 20.0), 0.6)
        buy_conf = np.where(bull_ex & bull_div, np.minimum(buy_conf + 0.1, 0.95), buy_conf)
        sell_conf = np.where(bear_ex, 0.6 + 0.35 * np.minimum(1.0, (f.rsi - self.overbought) / 20.0), 0.6)
        sell_conf = np.where(bear_ex & bear_div, np.minimum(sell_conf + 0.1, 0.95), sell_conf)
        conf = np.where(buy, buy_conf, np.where(sell, sell_conf, conf))
        trail = np.full(n, self.context.base_trail)
        return SignalArrays(action, np.clip(conf, 0.0, 1.0), trail)
