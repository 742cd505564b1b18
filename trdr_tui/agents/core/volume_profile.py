"""VolumeProfileAgent: volume spikes against their 20-bar average, whale bars, and the rolling VWAP.

- Spike (volume ≥ `spike_ratio` × average) on a down bar closing below VWAP: capitulation →
  TRAIL_BUY. On an up bar closing above VWAP: buying climax → TRAIL_SELL. Confidence grows with
  the spike; a whale bar (≥ `whale_ratio` × average) is urgent.
- A spike that closes on the other side of VWAP, or no spike: HOLD, with where price sits against
  VWAP as context.
"""

from __future__ import annotations

import numpy as np

from trdr_tui.agents.protocol import BUY, HOLD, SELL, BaseAgent, MarketSnapshot, SignalArrays
from trdr_tui.core.types import HOLD_ACTION, TRAIL_BUY_ACTION, TRAIL_SELL_ACTION, AgentSignal, Urgency
from trdr_tui.market.indicators import Features


class VolumeProfileAgent(BaseAgent):
    id = "volume_profile"
    name = "Volume profile"
    version = "1.0.0"
    description = "volume spikes vs their average, whale bars, rolling VWAP"

    spike_ratio = 2.5
    whale_ratio = 4.0
    spike_hold_confidence = 0.4
    hold_confidence = 0.3

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        f = snapshot.features
        vol_ma, vwap = f.vol_ma, f.vwap
        total = vol_ma + vwap
        if total != total or vol_ma <= 0:  # `any_nan` written out: one of them is NaN
            return self.warming_up(snapshot)
        trail = self.context.base_trail
        ratio = f.volume / vol_ma
        close = f.close
        dev = close / vwap - 1.0
        where = f"close {dev * 100:.2f}% vs 24-bar VWAP"  # `pct` of a number (close and VWAP are positive)
        if ratio >= self.spike_ratio:
            conf = min(0.95, 0.55 + 0.1 * (ratio - self.spike_ratio))
            whale = ratio >= self.whale_ratio
            urgency = Urgency.HIGH if whale else Urgency.NORMAL
            kind = "whale bar" if whale else "volume spike"
            if close < f.open and close < vwap:
                return self.signal(snapshot, TRAIL_BUY_ACTION, conf, trail,
                                   f"{kind} ({ratio:.1f}× average) on a down bar below VWAP: capitulation; {where}",
                                   urgency)
            if close > f.open and close > vwap:
                return self.signal(snapshot, TRAIL_SELL_ACTION, conf, trail,
                                   f"{kind} ({ratio:.1f}× average) on an up bar above VWAP: buying climax; {where}",
                                   urgency)
            return self.signal(snapshot, HOLD_ACTION, self.spike_hold_confidence, trail,
                               f"{kind} ({ratio:.1f}× average) without a clear side; {where}")
        return self.signal(snapshot, HOLD_ACTION, self.hold_confidence, trail,
                           f"volume normal ({ratio:.1f}× average); {where}")

    def analyze_batch(self, features: Features) -> SignalArrays:
        f = features
        n = len(f)
        valid = ~(np.isnan(f.vol_ma) | np.isnan(f.vwap))
        valid &= np.where(valid, f.vol_ma, 0.0) > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = f.volume / f.vol_ma
        spike = valid & (ratio >= self.spike_ratio)
        with np.errstate(invalid="ignore"):
            buy = spike & (f.close < f.open) & (f.close < f.vwap)
            sell = spike & ~buy & (f.close > f.open) & (f.close > f.vwap)
        action = np.full(n, HOLD, dtype=np.int8)
        action[buy] = BUY
        action[sell] = SELL
        conf = np.where(valid, self.hold_confidence, 0.0)
        conf = np.where(spike, self.spike_hold_confidence, conf)
        conf = np.where(buy | sell, np.minimum(0.95, 0.55 + 0.1 * (ratio - self.spike_ratio)), conf)
        return SignalArrays(action, np.clip(conf, 0.0, 1.0), np.full(n, self.context.base_trail))
