"""EntropyTransitionAgent: a fall in permutation entropy (chaos → order) marks a forming trend.

Permutation entropy (Bandt & Pompe 2002, "Permutation entropy: a natural complexity measure for time
series", Phys. Rev. Lett. 88, 174102): take every run of `order` consecutive closes, replace it by its
ordinal pattern (which of the `order`! orderings it follows), and compute the Shannon entropy of the
patterns' frequencies, normalised by log(order!) so that 1 is white noise (every ordering equally
likely) and 0 a monotone series. Ties (equal closes) count as "not greater", a fixed convention.

The agent compares the entropy of the last `span` closes with that of the `span` closes ending `lag`
bars earlier. A fall of at least `min_fall` to at most `max_entropy` is a transition from disorder to
order: it votes with the drift over the last `span` closes (up → TRAIL_BUY, down → TRAIL_SELL), with
confidence 0.5 + 2 × fall (capped at 0.9). Otherwise HOLD. The trail tightens in ordered markets:
base × (0.75 + 0.5 × entropy).
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from trdr_tui.agents.experimental.base import F64, Scores, WindowAgent, sign_word
from trdr_tui.agents.protocol import BUY, HOLD, SELL
from trdr_tui.core.types import Urgency


def ordinal_codes(x: F64, order: int) -> npt.NDArray[np.int64]:
    """The ordinal pattern of every run of `order` values along the last axis, as an integer code:
    bit k set when the k-th pair (a, b), a < b, has x[a] > x[b]. Shape (..., L - order + 1); codes
    in [0, 2^(order·(order-1)/2)), of which order! occur."""
    runs = np.lib.stride_tricks.sliding_window_view(x, order, axis=-1)
    code = np.zeros(runs.shape[:-1], dtype=np.int64)
    for bit, (a, b) in enumerate(combinations(range(order), 2)):
        code |= (runs[..., a] > runs[..., b]).astype(np.int64) << bit
    return code


def pattern_counts(codes: npt.NDArray[np.int64], order: int) -> npt.NDArray[np.int64]:
    """Cumulative counts of each pattern code along a 1-D sequence of codes: shape (len + 1, bins), row t
    counting codes[:t]. Counts over codes[a:b] are row b − row a (integers: exact in any window)."""
    bins = 1 << (order * (order - 1) // 2)
    onehot = np.zeros((codes.shape[0] + 1, bins), dtype=np.int64)
    onehot[np.arange(1, codes.shape[0] + 1), codes] = 1
    return np.cumsum(onehot, axis=0)


def entropy_of_counts(counts: npt.NDArray[np.int64], order: int) -> F64:
    """Normalised Shannon entropy (0–1) of pattern counts, shape (m, bins) → (m,): −Σ p ln p / ln(order!)."""
    p = counts / counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=1)
    return np.asarray(h / math.log(math.factorial(order)), dtype=np.float64)


class EntropyTransitionAgent(WindowAgent):
    id = "entropy_transition"
    name = "Entropy transition"
    version = "1.0.0"
    description = "permutation entropy (Bandt–Pompe 2002) of closes; a fall from disorder to order votes with the drift"

    order: ClassVar[int] = 4
    span: ClassVar[int] = 96
    lag: ClassVar[int] = 48
    min_fall: ClassVar[float] = 0.06
    max_entropy: ClassVar[float] = 0.92
    window = span + lag

    def scores(self, cols: dict[str, npt.NDArray[Any]]) -> Scores:
        close = cols["close"]
        m = close.shape[0]
        d, span, lag = self.order, self.span, self.lag
        # In a batch the windows are consecutive rows of one history: patterns are coded once.
        series = close[0] if m == 1 else np.concatenate((close[0], close[1:, -1]))
        cum = pattern_counts(ordinal_codes(series, d), d)
        per = span - d + 1  # patterns in `span` closes
        first = np.arange(m)  # window j's patterns are codes[j : j + w - d + 1]
        h_then = entropy_of_counts(cum[first + per] - cum[first], d)
        h_now = entropy_of_counts(cum[first + lag + per] - cum[first + lag], d)
        drift = np.log(close[:, -1] / close[:, -span])
        fall = h_then - h_now
        on = (fall >= self.min_fall) & (h_now <= self.max_entropy)
        action = np.where(on & (drift > 0), BUY, np.where(on & (drift < 0), SELL, HOLD)).astype(np.int8)
        directional = action != HOLD
        conf = np.where(directional, np.minimum(0.5 + 2.0 * fall, 0.9), self.hold_confidence)
        trail = self.clamp_trail_array(self.context.base_trail * (0.75 + 0.5 * h_now))
        return {"action": action, "confidence": conf, "trail": trail, "h_now": h_now, "h_then": h_then,
                "drift": drift}

    def words(self, s: Scores, j: int) -> tuple[str, Urgency]:
        h, h0, drift = float(s["h_now"][j]), float(s["h_then"][j]), float(s["drift"][j])
        facts = (f"permutation entropy {h:.3f} (order {self.order}, {self.span} closes), "
                 f"{h0:.3f} {self.lag} bars earlier; drift {drift * 100:+.2f}%")
        if s["action"][j] != HOLD:
            return f"chaos → order: {facts}; a trend is forming {sign_word(drift)}", Urgency.NORMAL
        return f"no transition: {facts}", Urgency.NORMAL
