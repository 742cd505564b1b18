"""SentimentAgent: contrarian at maximum pain (and at maximum euphoria), from what trdr observes.

No sentiment feed is reachable from a spot account, so the agent reads the crowd from price and
volume alone. Four fear components, each scaled to [0, 1]:

- RSI extreme: `(30 - RSI) / 20` (RSI 30 → 0, RSI 10 → 1);
- drawdown from the recent high: `(-dd - 5 %) / 15 %`, dd = close / max(high over `lookback` bars) - 1;
- capitulation volume: on a red bar, `(volume / its 20-bar average - 1.5) / 2.5`;
- how the move was funded: the share of the last `funding_window` bars' volume traded on down bars,
  `(share - 0.5) / 0.3` (a fall carried by heavy selling, not drifting on thin volume).

fear = 0.35·RSI + 0.35·drawdown + 0.15·capitulation + 0.15·funding. Maximum pain — RSI and drawdown
both past their thresholds and fear ≥ `threshold` — votes TRAIL_BUY (a trailing buy waits for the
bounce) with confidence 0.5 + 0.45·fear. Greed is the mirror (RSI above 70, the rise from the recent
low, climax volume on a green bar, the up-bar volume share) and votes TRAIL_SELL. Otherwise HOLD.
The trail widens with the extreme (panic bars swing): base × (1 + fear).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from trdr_tui.agents.advanced.windows import F64, roll, tail
from trdr_tui.agents.protocol import BUY, CODE_ACTIONS, HOLD, SELL, BaseAgent, MarketSnapshot, SignalArrays
from trdr_tui.core.types import AgentSignal, Urgency
from trdr_tui.market.indicators import Features


class SentimentAgent(BaseAgent):
    id = "sentiment"
    name = "Sentiment"
    version = "1.0.0"
    description = "contrarian at maximum pain: RSI extremes, drawdown, capitulation volume, funding of the move"

    lookback = 168  # bars for the recent high / low (a week of hours)
    funding_window = 24
    threshold = 0.5
    hold_confidence = 0.2

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, Any] | None = None  # the last batch's components, for `explain`

    def _scores(self, rsi: F64, close: F64, opens: F64, vol_ma: F64, high: F64, low: F64, open_w: F64,
                close_w: F64, volume: F64) -> dict[str, Any]:
        """Per-bar components. `rsi`, `close`, `opens`, `vol_ma` are the bars to score (shape (m,));
        `high`, `low`, `open_w`, `close_w`, `volume` the candles leading up to them, the last m of
        which are those bars (the whole history in batch, the last `lookback` in streaming)."""
        f, m = self.funding_window, rsi.shape[0]
        v_down = np.where(close_w < open_w, volume, 0.0)
        v_up = np.where(close_w > open_w, volume, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            dd = close / roll(high, self.lookback, np.max, m) - 1.0
            ru = close / roll(low, self.lookback, np.min, m) - 1.0
            ratio = volume[-m:] / vol_ma
            total = roll(volume, f, np.sum, m)
            down = roll(v_down, f, np.sum, m) / total
            up = roll(v_up, f, np.sum, m) / total
        red, green = close < opens, close > opens
        f_rsi, g_rsi = np.clip((30.0 - rsi) / 20.0, 0.0, 1.0), np.clip((rsi - 70.0) / 20.0, 0.0, 1.0)
        f_dd, g_ru = np.clip((-dd - 0.05) / 0.15, 0.0, 1.0), np.clip((ru - 0.05) / 0.15, 0.0, 1.0)
        f_cap = np.where(red, np.clip((ratio - 1.5) / 2.5, 0.0, 1.0), 0.0)
        g_cap = np.where(green, np.clip((ratio - 1.5) / 2.5, 0.0, 1.0), 0.0)
        f_fund, g_fund = np.clip((down - 0.5) / 0.3, 0.0, 1.0), np.clip((up - 0.5) / 0.3, 0.0, 1.0)
        fear = 0.35 * f_rsi + 0.35 * f_dd + 0.15 * f_cap + 0.15 * f_fund
        greed = 0.35 * g_rsi + 0.35 * g_ru + 0.15 * g_cap + 0.15 * g_fund
        with np.errstate(invalid="ignore"):
            valid = ~(np.isnan(rsi) | np.isnan(vol_ma) | np.isnan(dd) | np.isnan(down)) & (vol_ma > 0)
        buy = valid & (f_rsi > 0) & (f_dd > 0) & (fear >= self.threshold)
        sell = valid & ~buy & (g_rsi > 0) & (g_ru > 0) & (greed >= self.threshold)
        return {"valid": valid, "buy": buy, "sell": sell, "fear": fear, "greed": greed, "dd": dd, "ru": ru,
                "ratio": ratio, "down": down, "up": up, "rsi": rsi}

    def _signals(self, s: dict[str, Any]) -> tuple[npt.NDArray[np.int8], F64, F64]:
        n = s["fear"].shape[0]
        action = np.full(n, HOLD, dtype=np.int8)
        action[s["buy"]] = BUY
        action[s["sell"]] = SELL
        extreme = np.where(s["buy"], s["fear"], np.where(s["sell"], s["greed"], 0.0))
        conf = np.where(s["buy"] | s["sell"], 0.5 + 0.45 * extreme, np.where(s["valid"], self.hold_confidence, 0.0))
        trail = self.clamp_trail_array(self.context.base_trail * (1.0 + extreme))
        return action, np.clip(conf, 0.0, 1.0), trail

    def _words(self, s: dict[str, Any], i: int) -> tuple[str, Urgency]:
        if not s["valid"][i]:
            return "warming up: not enough history yet", Urgency.NORMAL
        fear, greed = float(s["fear"][i]), float(s["greed"][i])
        facts = (f"RSI {float(s['rsi'][i]):.1f}, {float(s['dd'][i]) * 100:.1f}% from the {self.lookback}-bar high, "
                 f"{float(s['ru'][i]) * 100:.1f}% above the low, volume {float(s['ratio'][i]):.1f}× average, "
                 f"{float(s['down'][i]) * 100:.0f}% of {self.funding_window}-bar volume on down bars")
        if s["buy"][i]:
            return f"maximum pain (fear {fear:.2f}): {facts}; contrarian buy", Urgency.HIGH
        if s["sell"][i]:
            return f"euphoria (greed {greed:.2f}): {facts}; contrarian sell", Urgency.HIGH
        return f"no extreme (fear {fear:.2f}, greed {greed:.2f}): {facts}", Urgency.NORMAL

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        f = snapshot.features
        w = tail(snapshot.history, self.lookback)
        if w is None:
            return self.warming_up(snapshot)
        one = np.array
        s = self._scores(one([f.rsi]), one([f.close]), one([f.open]), one([f.vol_ma]), w["high"], w["low"],
                         w["open"], w["close"], w["volume"])
        action, conf, trail = self._signals(s)
        words, urgency = self._words(s, 0)
        return self.signal(snapshot, CODE_ACTIONS[int(action[0])], float(conf[0]), float(trail[0]), words, urgency)

    def analyze_batch(self, features: Features) -> SignalArrays:
        f = features
        s = self._scores(f.rsi, f.close, f.open, f.vol_ma, f.high, f.low, f.open, f.close, f.volume)
        self._last = s
        action, conf, trail = self._signals(s)
        return SignalArrays(action, conf, trail)

    def explain(self, features: Features, i: int) -> tuple[str, Urgency]:
        if self._last is None or self._last["fear"].shape[0] != len(features):
            self.analyze_batch(features)
        assert self._last is not None
        return self._words(self._last, i)

