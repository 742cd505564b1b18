"""MicrostructureAgent: the bid–ask spread and the book's imbalance.

Two sources, named in every `reasoning`:

- live and paper: the best bid/ask (and their sizes) from Coinbase's `ticker` channel
  (`snapshot.quote`): spread = (ask − bid) / mid; imbalance = (bid size − ask size) / (bid size + ask size);
- backtests (no book): the Abdi–Ranaldo (2017) high–low spread estimator, two-bar version without
  look-ahead. With ηₜ = (ln Hₜ + ln Lₜ) / 2 and cₜ = ln Cₜ,
  s²ₜ = 4 (cₜ₋₁ − ηₜ₋₁)(cₜ₋₁ − ηₜ), S = √max(mean over `window` bars of s², 0).
  Source: Abdi, F. and Ranaldo, A. (2017), "A Simple Estimation of Bid-Ask Spreads from Daily
  Close, High, and Low Prices", Review of Financial Studies 30(12), 4437–4480. No imbalance is known.

Votes: a spread that would eat a large part of a trail (≥ `cost_share` of the base trail) → HOLD
with conviction (liquidity is thin, round trips cost more); the reasoning also gives the spread
against its `long_window` average. With a live book, a strong imbalance (|imbalance| ≥ `imbalance_threshold`)
leans TRAIL_BUY (bids heavier) or TRAIL_SELL. Otherwise HOLD with low conviction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from trdr_tui.agents.advanced.windows import F64, roll, tail
from trdr_tui.agents.protocol import HOLD, BaseAgent, MarketSnapshot, SignalArrays
from trdr_tui.core.types import Action, AgentSignal, Urgency
from trdr_tui.market.indicators import Features

ESTIMATOR = "Abdi–Ranaldo (2017) high–low estimator"


def abdi_ranaldo_terms(high: F64, low: F64, close: F64) -> F64:
    """4 (cₜ₋₁ − ηₜ₋₁)(cₜ₋₁ − ηₜ) per bar (shape (n,), NaN at bar 0); see the module doc."""
    eta = (np.log(high) + np.log(low)) / 2.0
    c = np.log(close)
    out = np.full(high.shape[0], np.nan)
    out[1:] = 4.0 * (c[:-1] - eta[:-1]) * (c[:-1] - eta[1:])
    return out


class MicrostructureAgent(BaseAgent):
    id = "microstructure"
    name = "Microstructure"
    version = "1.0.0"
    description = "bid-ask spread (live book, or the Abdi-Ranaldo estimator in backtests) and book imbalance"

    window = 24  # bars averaged by the estimator
    long_window = 168  # bars of the estimator's longer average
    cost_share = 0.25  # a spread this share of the base trail is expensive
    imbalance_threshold = 0.6
    hold_confidence = 0.15

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, Any] | None = None

    def _estimate(self, high: F64, low: F64, close: F64, m: int) -> tuple[F64, F64]:
        """(spread, its long average) for the last m bars from the candles leading up to them."""
        terms = abdi_ranaldo_terms(high, low, close)
        short = roll(terms, self.window, np.mean, m)
        long = roll(terms, self.long_window, np.mean, m)
        return np.sqrt(np.maximum(short, 0.0)), np.sqrt(np.maximum(long, 0.0))

    def _votes(self, spread: F64, long: F64) -> dict[str, Any]:
        base = self.context.base_trail
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(long > 0, spread / long, 1.0)
        valid = ~(np.isnan(spread) | np.isnan(long))
        costly = valid & (spread >= self.cost_share * base)
        conf = np.where(costly, np.clip(0.5 + 2.0 * (spread / base - self.cost_share), 0.5, 0.9),
                        np.where(valid, self.hold_confidence, 0.0))
        return {"valid": valid, "costly": costly, "spread": spread, "ratio": ratio, "conf": conf}

    def _words(self, v: dict[str, Any], i: int, source: str) -> tuple[str, Urgency]:
        if not v["valid"][i]:
            return "warming up: not enough history yet", Urgency.NORMAL
        s, r = float(v["spread"][i]), float(v["ratio"][i])
        head = f"spread {s * 100:.3f}% ({source}), {r:.2f}× its {self.long_window}-bar average"
        if v["costly"][i]:
            return f"{head}: round trips cost more than usual, standing aside", Urgency.HIGH
        return f"{head}: liquidity normal", Urgency.NORMAL

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        w = tail(snapshot.history, self.long_window + 1)
        if w is None:
            return self.warming_up(snapshot)
        spread, long = self._estimate(w["high"], w["low"], w["close"], 1)
        q = snapshot.quote
        if q is None:
            v = self._votes(spread, long)
            words, urgency = self._words(v, 0, ESTIMATOR)
            action = Action.HOLD
            return self.signal(snapshot, action, float(v["conf"][0]), self.context.base_trail, words, urgency)
        mid = (q.bid + q.ask) / 2.0
        live = np.array([(q.ask - q.bid) / mid if mid > 0 else np.nan])
        v = self._votes(live, long)
        words, urgency = self._words(v, 0, "Coinbase ticker best bid/ask")
        words = words.replace(f"× its {self.long_window}-bar average", f"× the estimator's {self.long_window}-bar "
                                                                         "average")
        if not v["costly"][0] and q.bid_size is not None and q.ask_size is not None and q.bid_size + q.ask_size > 0:
            imb = (q.bid_size - q.ask_size) / (q.bid_size + q.ask_size)
            if abs(imb) >= self.imbalance_threshold:
                action = Action.TRAIL_BUY if imb > 0 else Action.TRAIL_SELL
                conf = min(0.9, 0.5 + (abs(imb) - self.imbalance_threshold))
                side = "bids" if imb > 0 else "asks"
                return self.signal(snapshot, action, conf, self.context.base_trail,
                                   f"{words}; book imbalance {imb:+.2f}: {side} heavier")
        return self.signal(snapshot, Action.HOLD, float(v["conf"][0]), self.context.base_trail, words, urgency)

    def analyze_batch(self, features: Features) -> SignalArrays:
        f = features
        n = len(f)
        spread, long = self._estimate(f.high, f.low, f.close, n)
        v = self._votes(spread, long)
        self._last = v
        action: npt.NDArray[np.int8] = np.full(n, HOLD, dtype=np.int8)
        return SignalArrays(action, v["conf"], np.full(n, self.context.base_trail))

    def explain(self, features: Features, i: int) -> tuple[str, Urgency]:
        if self._last is None or self._last["spread"].shape[0] != len(features):
            self.analyze_batch(features)
        assert self._last is not None
        return self._words(self._last, i, ESTIMATOR)
