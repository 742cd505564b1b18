"""VolatilityAgent: ATR sets the trail distance; Bollinger bands say when price is stretched.

- Trail = `atr_mult` × ATR% (clamped to the trailing bounds). In calm markets (ATR% below
  `calm_ratio` × its 100-bar average) the trail is widened by `calm_widen`: a trail sized to a quiet
  market's tiny ATR gets shaken out by ordinary noise and pays fees for nothing.
- A close below the lower band → TRAIL_BUY (stretched down: a trailing buy waits for the bounce);
  above the upper band → TRAIL_SELL. Confidence grows with how far outside the band it closed.
- Volatility explosion (ATR% ≥ `explosive_ratio` × average): HOLD, stand aside; bands lag then.
"""

from __future__ import annotations

import numpy as np

from trdr_tui.agents.protocol import BUY, HOLD, SELL, BaseAgent, MarketSnapshot, SignalArrays
from trdr_tui.core.types import HOLD_ACTION, TRAIL_BUY_ACTION, TRAIL_SELL_ACTION, AgentSignal, Urgency
from trdr_tui.market.indicators import Features


class VolatilityAgent(BaseAgent):
    id = "volatility"
    name = "Volatility"
    version = "1.0.0"
    description = "ATR trail distance (wider in calm markets); Bollinger-band stretch"

    atr_mult = 2.0
    calm_ratio = 0.7
    calm_widen = 1.3
    explosive_ratio = 2.0
    inside_confidence = 0.3

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        f = snapshot.features
        atr_pct, lower, upper = f.atr_pct, f.bb_lower, f.bb_upper
        total = atr_pct + f.atr_pct_ma + lower + upper
        if total != total:  # `any_nan` written out: one of them is NaN
            return self.warming_up(snapshot)
        ratio = atr_pct / f.atr_pct_ma
        calm = ratio < self.calm_ratio
        trail = self.clamp_trail(self.atr_mult * atr_pct * (self.calm_widen if calm else 1.0))
        width = upper - lower
        pos = (f.close - lower) / width if width > 0 else 0.5
        widened = " (calm: trail widened)" if calm else ""
        base = f"ATR {atr_pct * 100:.2f}% = {ratio:.2f}× its average; trail {trail * 100:.2f}%{widened}"  # `pct` of non-NaNs
        if ratio >= self.explosive_ratio:
            conf = min(1.0, 0.5 + (ratio - self.explosive_ratio) / 4.0)
            return self.signal(snapshot, HOLD_ACTION, conf, trail,
                               f"volatility explosion: {base}; bands lag, standing aside", Urgency.HIGH)
        if pos < 0.0:
            conf = 0.55 + 0.45 * min(1.0, -pos / 0.5)
            return self.signal(snapshot, TRAIL_BUY_ACTION, conf, trail,
                               f"close {-pos * 100:.0f}% of the band width below the lower Bollinger band; {base}")
        if pos > 1.0:
            conf = 0.55 + 0.45 * min(1.0, (pos - 1.0) / 0.5)
            return self.signal(snapshot, TRAIL_SELL_ACTION, conf, trail,
                               f"close {(pos - 1.0) * 100:.0f}% of the band width above the upper Bollinger band; {base}")
        return self.signal(snapshot, HOLD_ACTION, self.inside_confidence, trail,
                           f"inside the Bollinger bands ({pos * 100:.0f}% of the width); {base}")

    def analyze_batch(self, features: Features) -> SignalArrays:
        f = features
        n = len(f)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = f.atr_pct / f.atr_pct_ma
            width = f.bb_upper - f.bb_lower
            pos = np.where(width > 0, (f.close - f.bb_lower) / width, 0.5)
        valid = ~(np.isnan(f.atr_pct) | np.isnan(f.atr_pct_ma) | np.isnan(f.bb_lower) | np.isnan(f.bb_upper))
        widen = np.where(ratio < self.calm_ratio, self.calm_widen, 1.0)
        trail = self.clamp_trail_array(self.atr_mult * f.atr_pct * widen)
        explosive = valid & (ratio >= self.explosive_ratio)
        below = valid & ~explosive & (pos < 0.0)
        above = valid & ~explosive & ~below & (pos > 1.0)
        action = np.full(n, HOLD, dtype=np.int8)
        action[below] = BUY
        action[above] = SELL
        conf = np.where(valid, self.inside_confidence, 0.0)
        conf = np.where(explosive, np.minimum(1.0, 0.5 + (ratio - self.explosive_ratio) / 4.0), conf)
        conf = np.where(below, 0.55 + 0.45 * np.minimum(1.0, -pos / 0.5), conf)
        conf = np.where(above, 0.55 + 0.45 * np.minimum(1.0, (pos - 1.0) / 0.5), conf)
        trail = np.where(valid, trail, self.context.base_trail)
        return SignalArrays(action, np.clip(conf, 0.0, 1.0), trail)
