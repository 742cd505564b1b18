"""TopologicalShapeAgent: persistent homology of a time-delay embedding of recent prices.

Takens (1981): the delay vectors (x_t, x_{t+τ}) of a series trace the shape of the dynamics behind
it. A market that orbits (a range with a rhythm) traces a loop; noise and trends do not. Over the last
`embed` log closes, z-normalised, the agent builds the 2-D point cloud of delay vectors (delay `tau`)
and computes its 1-dimensional persistent homology (Edelsbrunner, Letscher & Zomorodian 2002) on the
alpha complex with GUDHI (`gudhi.AlphaComplex`, precision "safe": "fast" gives wrong diagrams for
nearly collinear points, as trending prices make; for points in the plane the alpha filtration has the
homotopy type of the Čech filtration and is far smaller than Vietoris–Rips). Radii are in σ of the
window. Summaries: total persistence Σ(death − birth) of the H₁ intervals, and ‖λ₁‖∞ = max(death −
birth)/2, the sup norm of the first persistence landscape (Bubenik 2015).

Persistent homology costs a few hundred µs per window, so it is computed every `stride` bars (bars
whose open time, in bars since the epoch, is a multiple of `stride`: the same bars in batch and
streaming) and the latest result holds until the next.

Vote: a loop (‖λ₁‖∞ ≥ `loop_level` σ; a noisy circle scores about 0.4) means price is cycling in a range whose break tends to come
next: HOLD with confidence 0.3 + ‖λ₁‖∞ (at most 0.8) — stand aside. A loop at the previous computation
that is gone now is the break itself: vote the side of the move over the last `stride` bars with
confidence 0.55. Otherwise HOLD (no shape). Needs gudhi (the `experimental` extra).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from trdr_tui.agents.experimental.base import F64, Scores, WindowAgent, optional_import
from trdr_tui.agents.protocol import BUY, HOLD, SELL
from trdr_tui.core.timeframes import timeframe_ns
from trdr_tui.core.types import Urgency


def delay_embedding(x: F64, tau: int) -> F64:
    """The 2-D delay vectors (x_t, x_{t+τ}) of a series, shape (len(x) - τ, 2)."""
    return np.column_stack((x[:-tau], x[tau:]))


def h1_summary(points: F64) -> tuple[float, float]:
    """(total persistence, ‖λ₁‖∞) of the H₁ diagram of the alpha filtration of `points` (shape (n, 2)),
    radii in the points' units (GUDHI's filtration values are squared radii). Needs gudhi."""
    gudhi = optional_import("gudhi")
    assert gudhi is not None
    tree = gudhi.AlphaComplex(points=points, precision="safe").create_simplex_tree()
    tree.compute_persistence()
    bars = np.sqrt(np.asarray(tree.persistence_intervals_in_dimension(1), dtype=np.float64).reshape(-1, 2))
    life = bars[:, 1] - bars[:, 0] if bars.size else np.zeros(0)
    return float(life.sum()), float(life.max() / 2.0) if life.size else 0.0


class TopologicalShapeAgent(WindowAgent):
    id = "topological_shape"
    name = "Topological shape"
    version = "1.0.0"
    description = "persistent homology (GUDHI alpha complex) of a delay embedding: loops in price dynamics"
    requires = ("gudhi",)

    embed: ClassVar[int] = 36
    tau: ClassVar[int] = 3
    stride: ClassVar[int] = 24
    loop_level: ClassVar[float] = 0.1  # σ; the 90th percentile on hourly BTC-USD 2017–2019 (a random walk: ~0.07)
    window = 2 * stride + embed - 1

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[int, tuple[float, float]] = {}

    def _summary(self, ts: int, closes: F64) -> tuple[float, float]:
        """The H₁ summary of the `embed` closes ending at the bar opened at `ts` (cached by ts)."""
        hit = self._cache.get(ts)
        if hit is None:
            x = np.log(closes)
            sd = float(x.std())
            z = (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)
            hit = h1_summary(delay_embedding(z, self.tau))
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[ts] = hit
        return hit

    def _last_mark(self, marks: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
        """Per row, the position of the last marked bar with `embed` closes behind it, or -1."""
        w = marks.shape[1]
        pos = w - 1 - np.argmax(marks[:, ::-1], axis=1)
        ok = marks.any(axis=1) & (pos >= self.embed - 1)
        return np.where(ok, pos, -1).astype(np.int64)

    def _at(self, ts: npt.NDArray[np.int64], close: F64, pos: npt.NDArray[np.int64]) -> tuple[F64, F64]:
        """The H₁ summary at position `pos` of each row (NaN where pos is -1); each distinct bar once."""
        tp, lam = np.full(pos.shape[0], np.nan), np.full(pos.shape[0], np.nan)
        rows = np.flatnonzero(pos >= 0)
        if rows.size == 0:
            return tp, lam
        bar_ts = ts[rows, pos[rows]]
        unique, first, inverse = np.unique(bar_ts, return_index=True, return_inverse=True)
        values = np.empty((unique.shape[0], 2))
        for k, j in enumerate(rows[first].tolist()):
            p = int(pos[j])
            values[k] = self._summary(int(unique[k]), close[j, p - self.embed + 1:p + 1])
        tp[rows], lam[rows] = values[inverse, 0], values[inverse, 1]
        return tp, lam

    def scores(self, cols: dict[str, npt.NDArray[Any]]) -> Scores:
        ts, close = cols["ts"], cols["close"]
        m = close.shape[0]
        bar = timeframe_ns(self.context.timeframe)
        marks = (ts // bar) % self.stride == 0
        rows = np.arange(m)
        last = self._last_mark(marks)
        marks = marks.copy()
        marks[rows[last >= 0], last[last >= 0]] = False
        prev = self._last_mark(marks)
        tp_now, lam_now = self._at(ts, close, last)
        _, lam_then = self._at(ts, close, prev)
        drift = np.log(close[:, -1] / close[:, -1 - self.stride])
        loop = lam_now >= self.loop_level
        broke = (lam_then >= self.loop_level) & (lam_now < self.loop_level)
        action = np.where(broke & (drift > 0), BUY, np.where(broke & (drift < 0), SELL, HOLD)).astype(np.int8)
        conf = np.where(action != HOLD, 0.55, np.where(loop, np.minimum(0.3 + lam_now, 0.8), 0.1))
        conf = np.where(np.isnan(lam_now), 0.0, conf)
        trail = np.full(m, self.clamp_trail(self.context.base_trail))
        return {"action": action, "confidence": conf, "trail": trail, "tp": tp_now, "lam": lam_now,
                "lam_then": lam_then, "drift": drift}

    def words(self, s: Scores, j: int) -> tuple[str, Urgency]:
        lam, tp, then = float(s["lam"][j]), float(s["tp"][j]), float(s["lam_then"][j])
        if np.isnan(lam):
            return "warming up: no persistence computed yet", Urgency.NORMAL
        facts = (f"H₁ of the delay embedding (τ {self.tau}, {self.embed} closes): total persistence {tp:.2f}σ, "
                 f"‖λ₁‖∞ {lam:.2f}σ (previous {then:.2f}σ)")
        action = int(s["action"][j])
        if action != HOLD:
            way = "up" if action == BUY else "down"
            return f"the loop closed, regime break {way} ({float(s['drift'][j]) * 100:+.2f}%): {facts}", Urgency.HIGH
        if lam >= self.loop_level:
            return f"price is orbiting (a loop): a regime break tends to follow, standing aside; {facts}", Urgency.NORMAL
        return f"no shape: {facts}", Urgency.NORMAL
