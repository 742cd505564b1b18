"""QuantumSuperpositionAgent: a volume-weighted density of recent prices and where its mass moves.

The name is a metaphor; the method is a kernel density estimate (Rosenblatt 1956, Parzen 1962). Over
the last `span` bars, each bar's typical price (high + low + close)/3 is a Gaussian kernel weighted by
the bar's volume; the bandwidth is Silverman's rule, 1.06 σ n_eff^(−1/5), with σ the volume-weighted
standard deviation and n_eff = (Σv)²/Σv² (Kish's effective sample size). This density (the "wave
function") usually has several modes (the "superposition"). A volume spike — the bar's volume at least
`spike` × the mean of the `span` bars before it — "collapses" it: the mode nearest the spike bar's
close is the one the market confirmed.

The signal is where the mass moves: the shift of the volume-weighted mean price from the previous bar's
window to this one, in bandwidths. On a spike bar with a shift of at least `min_shift` bandwidths the
agent votes that way (up → TRAIL_BUY, down → TRAIL_SELL) with confidence 0.4 + 0.5 × the weight share
within one bandwidth of the confirmed mode. Otherwise HOLD, naming the modes.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from trdr_tui.agents.experimental.base import F64, Scores, WindowAgent
from trdr_tui.agents.protocol import BUY, HOLD, SELL
from trdr_tui.core.types import Urgency


def weighted_stats(x: F64, w: F64) -> tuple[F64, F64, F64]:
    """Row-wise volume-weighted mean, the previous window's mean, and the Silverman bandwidth of x
    with weights w (shape (m, n + 1)): the window is columns 1 … n, the previous one columns 0 … n-1.
    Moments are taken about each row's last value (no cancellation at large prices). (m,) each."""
    ref = x[:, -1:]
    d = x - ref
    wd = w * d
    sw = w[:, 1:].sum(axis=1)
    swd = wd[:, 1:].sum(axis=1)
    sw_prev = sw - w[:, -1] + w[:, 0]
    swd_prev = swd - wd[:, -1] + wd[:, 0]
    safe, safe_prev = np.where(sw > 0, sw, 1.0), np.where(sw_prev > 0, sw_prev, 1.0)
    mean_d = swd / safe
    var = np.maximum((wd[:, 1:] * d[:, 1:]).sum(axis=1) / safe - mean_d**2, 0.0)
    n_eff = sw**2 / np.maximum((w[:, 1:] ** 2).sum(axis=1), 1e-300)
    bw = 1.06 * np.sqrt(var) * np.maximum(n_eff, 1.0) ** -0.2
    return mean_d + ref[:, 0], swd_prev / safe_prev + ref[:, 0], bw


def density(x: F64, w: F64, bandwidth: F64, grid: F64) -> F64:
    """Weighted Gaussian KDE of each row of points x (weights w, shape (m, n); bandwidths (m,)) on its
    row of `grid` (shape (m, g)), normalised to sum to 1 over the grid. Shape (m, g)."""
    z = (grid[:, :, None] - x[:, None, :]) / bandwidth[:, None, None]
    d = (np.exp(-0.5 * z * z) * w[:, None, :]).sum(axis=2)
    return np.asarray(d / np.maximum(d.sum(axis=1, keepdims=True), 1e-300), dtype=np.float64)


def peaks(d: F64) -> npt.NDArray[np.bool_]:
    """The local maxima of each row of a density on a grid (plateaus count at their first point), shape kept."""
    left = np.concatenate((np.full((d.shape[0], 1), True), d[:, 1:] > d[:, :-1]), axis=1)
    right = np.concatenate((d[:, :-1] >= d[:, 1:], np.full((d.shape[0], 1), True)), axis=1)
    return np.asarray(left & right)


def modes(grid: F64, d: F64) -> list[tuple[float, float]]:
    """One row's modes as (price, share of the mass in the mode's basin — between the troughs around
    it), highest share first; `grid`, `d` shape (g,)."""
    top = np.flatnonzero(peaks(d[None, :])[0])
    cuts = np.concatenate(([0], (top[:-1] + top[1:]) // 2 + 1, [d.shape[0]]))
    # the basin boundary between two peaks is the lowest point between them
    for i in range(1, len(cuts) - 1):
        a, b = top[i - 1], top[i]
        cuts[i] = a + int(np.argmin(d[a:b + 1]))
    out = [(float(grid[p]), float(d[cuts[i]:cuts[i + 1]].sum())) for i, p in enumerate(top)]
    return sorted(out, key=lambda m: -m[1])


class QuantumSuperpositionAgent(WindowAgent):
    id = "quantum_superposition"
    name = "Quantum superposition (density model)"
    version = "1.0.0"
    description = "volume-weighted kernel density of recent prices; a volume spike confirms a mode, vote where the mass moves"

    span: ClassVar[int] = 96
    spike: ClassVar[float] = 2.5
    min_shift: ClassVar[float] = 0.1
    grid_points: ClassVar[int] = 64
    window = span + 1

    def scores(self, cols: dict[str, npt.NDArray[Any]]) -> Scores:
        tp = (cols["high"] + cols["low"] + cols["close"]) / 3.0
        v = cols["volume"]
        mean_now, mean_prev, bw = weighted_stats(tp, v)
        base = v[:, :-1].mean(axis=1)
        ratio = np.where(base > 0, v[:, -1] / np.where(base > 0, base, 1.0), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(bw > 0, (mean_now - mean_prev) / bw, 0.0)
        spike = (ratio >= self.spike) & (bw > 0)
        on = spike & (np.abs(shift) >= self.min_shift)
        action = np.where(on & (shift > 0), BUY, np.where(on & (shift < 0), SELL, HOLD)).astype(np.int8)
        close = cols["close"][:, -1]
        conf = np.full(action.shape, self.hold_confidence)
        on_rows = np.flatnonzero(on)  # the density itself only where a spike collapses it
        if on_rows.size:
            x, w, b = tp[on_rows, 1:], v[on_rows, 1:], bw[on_rows]
            mode = self._confirmed(x, w, b, close[on_rows])
            near = np.abs(x - mode[:, None]) <= b[:, None]
            conf[on_rows] = 0.4 + 0.5 * (w * near).sum(axis=1) / w.sum(axis=1)
        trail = np.full(action.shape, self.clamp_trail(self.context.base_trail))
        return {"action": action, "confidence": conf, "trail": trail, "tp": tp, "v": v, "bw": bw,
                "shift": shift, "ratio": ratio, "close": close, "mean": mean_now}

    def _grid(self, x: F64, bw: F64) -> F64:
        """Per row, `grid_points` prices from 2 bandwidths below the lowest point to 2 above the highest."""
        u = np.linspace(0.0, 1.0, self.grid_points)
        lo, hi = x.min(axis=1) - 2 * bw, x.max(axis=1) + 2 * bw
        return np.asarray(lo[:, None] + (hi - lo)[:, None] * u[None, :], dtype=np.float64)

    def _confirmed(self, x: F64, w: F64, bw: F64, close: F64) -> F64:
        """Per row, the density's mode nearest the close (the one the spike confirmed)."""
        grid = self._grid(x, bw)
        top = peaks(density(x, w, bw, grid))
        pick = np.argmin(np.where(top, np.abs(grid - close[:, None]), np.inf), axis=1)
        return np.asarray(grid[np.arange(grid.shape[0]), pick], dtype=np.float64)

    def words(self, s: Scores, j: int) -> tuple[str, Urgency]:
        bw, ratio, shift = float(s["bw"][j]), float(s["ratio"][j]), float(s["shift"][j])
        if not bw > 0:
            return "no price spread in the window: no density", Urgency.NORMAL
        x, w, b = s["tp"][j:j + 1, 1:], s["v"][j:j + 1, 1:], s["bw"][j:j + 1]
        grid = self._grid(x, b)
        found = modes(grid[0], density(x, w, b, grid)[0])
        listed = ", ".join(f"{p:,.2f} ({share * 100:.0f}%)" for p, share in found[:3])
        facts = (f"volume-weighted price density of {self.span} bars: {len(found)} mode(s) {listed}; "
                 f"mean moved {shift:+.2f} bandwidths, volume {ratio:.1f}× the window's mean")
        action = int(s["action"][j])
        if action != HOLD:
            way = "up" if action == BUY else "down"
            mode = float(self._confirmed(x, w, b, s["close"][j:j + 1])[0])
            return f"volume spike confirms the mode at {mode:,.2f}, mass moving {way}: {facts}", Urgency.HIGH
        return f"superposition (no collapse): {facts}", Urgency.NORMAL
