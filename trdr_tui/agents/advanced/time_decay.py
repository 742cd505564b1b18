"""TimeDecayAgent: how long price has dwelt near one level, and how old the open trailing orders are.

A price that sits still makes waiting orders stale: a trailing order armed a day ago at a level the
market never left is unlikely to catch the move it was placed for. The agent:

- measures dwell: the share of the last `window` bars whose close is within `near_atr` × ATR of the
  current close (with an engine attached and a grid built: of the nearest grid level);
- on a stale price (dwell ≥ `stale_dwell`) votes for the side of the recent range price sits in —
  lower quarter → TRAIL_BUY, upper quarter → TRAIL_SELL — with a trail tightened in proportion to
  the dwell: base × (1 − `tighten` × (dwell − stale_dwell) / (1 − stale_dwell)), so orders placed in
  a stale market trail close;
- with an engine attached (`snapshot.book`), reports open trailing orders older than `stale_age_bars`
  and tightens the suggested trail by the same rule on their age.

It reads the book (`reads_book = True`): with an engine attached the panel streams bar by bar (the
grid depends on the decisions). Without a book both paths agree bar by bar. It never places or
changes orders; the book it sees is a frozen copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from trdr_tui.agents.advanced.windows import F64, roll, tail
from trdr_tui.agents.protocol import BUY, CODE_ACTIONS, HOLD, SELL, BaseAgent, MarketSnapshot, SignalArrays
from trdr_tui.core.timeframes import timeframe_ns
from trdr_tui.core.types import AgentSignal, OrderType, Side, Urgency
from trdr_tui.market.indicators import Features


class TimeDecayAgent(BaseAgent):
    id = "time_decay"
    name = "Time decay"
    version = "1.0.0"
    description = "time spent near a level (grid levels when trading) and the age of open trailing orders"
    reads_book = True

    window = 48
    near_atr = 0.5
    stale_dwell = 0.5
    tighten = 0.5
    edge = 0.25  # the range's lower/upper quarter
    stale_age_bars = 24
    hold_confidence = 0.2

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, Any] | None = None

    def _dwell(self, close_w: F64, level: F64, atr: F64, m: int) -> dict[str, Any]:
        """Dwell, range position and votes for the last m bars; `close_w` the closes leading up to them,
        `level` the price each bar measures dwell around (its close, or the nearest grid level)."""
        w = self.window
        lo, hi = roll(close_w, w, np.min, m), roll(close_w, w, np.max, m)
        near = self.near_atr * atr
        win = np.lib.stride_tricks.sliding_window_view(close_w[-(m + w - 1):], w) if close_w.shape[0] >= w else None
        if win is None:
            dwell = np.full(m, np.nan)
        else:
            lead = np.full(m - win.shape[0], np.nan)
            dwell = np.concatenate((lead, np.mean(np.abs(win - level[-win.shape[0]:, None]) <= near[-win.shape[0]:, None],
                                                  axis=1)))
        close = close_w[-m:]
        with np.errstate(divide="ignore", invalid="ignore"):
            pos = np.where(hi > lo, (close - lo) / (hi - lo), 0.5)
        valid = ~(np.isnan(dwell) | np.isnan(atr) | np.isnan(lo))
        stale = valid & (dwell >= self.stale_dwell)
        buy = stale & (pos <= self.edge)
        sell = stale & (pos >= 1.0 - self.edge)
        excess = np.clip((dwell - self.stale_dwell) / (1.0 - self.stale_dwell), 0.0, 1.0)
        trail = self.clamp_trail_array(np.where(stale, self.context.base_trail * (1.0 - self.tighten * excess),
                                                self.context.base_trail))
        conf = np.where(buy | sell, 0.45 + 0.3 * excess, np.where(valid, self.hold_confidence, 0.0))
        return {"valid": valid, "stale": stale, "buy": buy, "sell": sell, "dwell": dwell, "pos": pos,
                "trail": trail, "conf": np.clip(conf, 0.0, 1.0)}

    def _arrays(self, s: dict[str, Any]) -> tuple[npt.NDArray[np.int8], F64, F64]:
        action = np.full(s["dwell"].shape[0], HOLD, dtype=np.int8)
        action[s["buy"]] = BUY
        action[s["sell"]] = SELL
        return action, s["conf"], s["trail"]

    def _words(self, s: dict[str, Any], i: int, around: str = "the close") -> tuple[str, Urgency]:
        if not s["valid"][i]:
            return "warming up: not enough history yet", Urgency.NORMAL
        d, p = float(s["dwell"][i]), float(s["pos"][i])
        facts = (f"{d * 100:.0f}% of the last {self.window} bars within {self.near_atr:g} ATR of {around}; "
                 f"price at {p * 100:.0f}% of the range")
        if s["stale"][i]:
            side = " → buy the low end" if s["buy"][i] else " → sell the high end" if s["sell"][i] else ""
            return f"stale price: {facts}; trail tightened to {float(s['trail'][i]) * 100:.2f}%{side}", Urgency.NORMAL
        return f"price moving: {facts}", Urgency.NORMAL

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        f = snapshot.features
        w = tail(snapshot.history, self.window)
        if w is None:
            return self.warming_up(snapshot)
        level, around = f.close, "the close"
        grid = snapshot.book.grid() if snapshot.book is not None else None
        if grid is not None and grid.levels:
            nearest = min(grid.levels, key=lambda lv: abs(lv.price - f.close))
            level, around = nearest.price, f"the grid level {nearest.price:,.2f}"
        s = self._dwell(w["close"], np.array([level]), np.array([f.atr]), 1)
        action, conf, trail = self._arrays(s)
        words, urgency = self._words(s, 0, around)
        t = float(trail[0])
        if snapshot.book is not None:
            t, note = self._order_ages(snapshot, t)
            if note:
                words, urgency = f"{words}; {note}", Urgency.HIGH
        return self.signal(snapshot, CODE_ACTIONS[int(action[0])], float(conf[0]), t, words, urgency)

    def _order_ages(self, snapshot: MarketSnapshot, trail: float) -> tuple[float, str]:
        """The trail tightened for stale open trailing orders, and a sentence about them ('' if none)."""
        assert snapshot.book is not None
        bar = timeframe_ns(self.context.timeframe)
        stale = [(o, (snapshot.now - o.created_ts) / bar) for o in snapshot.book.open_orders()
                 if o.type is OrderType.TRAILING and (snapshot.now - o.created_ts) / bar >= self.stale_age_bars]
        if not stale:
            return trail, ""
        order, age = max(stale, key=lambda x: x[1])
        excess = min(1.0, (age - self.stale_age_bars) / self.stale_age_bars)
        tightened = self.clamp_trail(min(trail, self.context.base_trail * (1.0 - self.tighten * excess)))
        side = "buy" if order.side is Side.BUY else "sell"
        return tightened, (f"{len(stale)} trailing order(s) stale, the oldest a {side} {age:.0f} bars old; "
                           f"suggested trail {tightened * 100:.2f}%")

    def analyze_batch(self, features: Features) -> SignalArrays:
        n = len(features)
        s = self._dwell(features.close, features.close, features.atr, n)
        self._last = s
        return SignalArrays(*self._arrays(s))

    def explain(self, features: Features, i: int) -> tuple[str, Urgency]:
        if self._last is None or self._last["dwell"].shape[0] != len(features):
            self.analyze_batch(features)
        assert self._last is not None
        return self._words(self._last, i)
