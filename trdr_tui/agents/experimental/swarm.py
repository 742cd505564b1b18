"""SwarmIntelligenceAgent: Kirman's herding model fitted to recent bars, simulated forward.

Kirman (1993, "Ants, rationality, and recruitment", QJE 108(1)): N traders are optimists (buyers) or
pessimists. At each step one trader, chosen at random, changes its mind on its own with probability
ε; otherwise it meets another trader at random and, if that one is of the other kind, is recruited with
probability 1 − δ. With k buyers, k → k + 1 with probability (N − k)/N · (ε + (1 − ε)(1 − δ) k/(N − 1))
and k → k − 1 with probability k/N · (ε + (1 − ε)(1 − δ)(N − k)/(N − 1)) (Kirman writes ε + (1 − δ)…,
valid for small ε; this form stays a probability for any ε). The stationary share of buyers is close
to Beta(α, α), α = ε(N − 1)/((1 − ε)(1 − δ)): for α < 1 the crowd herds (the mass sits near all-buy or
all-sell).

Fitted to the last `window` bars: each bar's opinion is its close location value
(close − low)/(high − low) (0.5 for a bar without range), weighted by its volume. The method of
moments on Beta(α, α) (variance 1/(4(2α + 1))) gives α from the volume-weighted variance of the
opinions, hence ε = α(1 − δ)/(N − 1 + α(1 − δ)). The current state k₀ is N × the volume-weighted opinion of the last `recent` bars.

The signal is the emergent state: `paths` runs of the model from k₀ over `horizon` bars (N steps a
bar), driven by one block of uniform numbers drawn once from the run's seed (common random numbers:
every bar, batch or streaming, sees the same draws, so results are reproducible bar by bar). In a
herding market (α < 1) with buyers in the majority (share ≥ 0.6) and at least `min_paths` of the paths
still buyer-majority at the horizon → TRAIL_BUY (follow the herd); the mirror → TRAIL_SELL;
confidence 0.4 + the paths' margin above one half. Otherwise HOLD.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from trdr_tui.agents.experimental.base import F64, Scores, WindowAgent
from trdr_tui.agents.protocol import BUY, HOLD, SELL, AgentContext
from trdr_tui.core.types import Urgency


def kirman_paths(k0: npt.NDArray[np.int64], eps: F64, uniforms: F64, agents: int, delta: float) -> npt.NDArray[np.int64]:
    """Buyers after len(uniforms[0]) steps of Kirman's model, for each start k0 (shape (m,)) with its
    ε (shape (m,)) and each row of `uniforms` (shape (paths, steps), values in [0, 1)). Shape (m, paths)."""
    n = float(agents)
    k = np.repeat(k0[:, None], uniforms.shape[0], axis=1).astype(np.float64)
    e = eps[:, None]
    rec = (1.0 - e) * (1.0 - delta) / (n - 1.0)
    for s in range(uniforms.shape[1]):
        u = uniforms[None, :, s]
        up = (n - k) / n * (e + rec * k)
        down = k / n * (e + rec * (n - k))
        k += (u < up).astype(np.float64) - ((u >= up) & (u < up + down)).astype(np.float64)
    return k.astype(np.int64)


class SwarmIntelligenceAgent(WindowAgent):
    id = "swarm"
    name = "Swarm intelligence"
    version = "1.0.0"
    description = "Kirman's (1993) herding model fitted to bars and volume, simulated forward from the run's seed"

    window = 48
    recent: ClassVar[int] = 6
    agents: ClassVar[int] = 20
    delta: ClassVar[float] = 0.1
    horizon: ClassVar[int] = 1  # bars
    paths: ClassVar[int] = 16
    min_paths: ClassVar[float] = 0.7
    majority: ClassVar[float] = 0.6

    def __init__(self) -> None:
        super().__init__()
        self._uniforms = self._draws(0)

    def _draws(self, seed: int) -> F64:
        rng = np.random.default_rng(seed)
        return rng.random((self.paths, self.horizon * self.agents))

    def initialize(self, context: AgentContext) -> None:
        super().initialize(context)
        self._uniforms = self._draws(self.seed)

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "seed": self.seed}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.seed = int(state.get("seed", self.seed))
        self._uniforms = self._draws(self.seed)

    def scores(self, cols: dict[str, npt.NDArray[Any]]) -> Scores:
        hi, lo, close, vol = cols["high"], cols["low"], cols["close"], cols["volume"]
        rng_ = hi - lo
        with np.errstate(divide="ignore", invalid="ignore"):
            clv = np.where(rng_ > 0, (close - lo) / rng_, 0.5)
        vsum = vol.sum(axis=1)
        safe = np.where(vsum > 0, vsum, 1.0)
        mean = (vol * clv).sum(axis=1) / safe
        var = (vol * (clv - mean[:, None]) ** 2).sum(axis=1) / safe
        var = np.clip(var, 1e-6, 0.25 - 1e-6)
        alpha = np.maximum((1.0 / (4.0 * var) - 1.0) / 2.0, 1e-3)
        n = self.agents
        a = alpha * (1.0 - self.delta)
        eps = a / (n - 1 + a)
        rv, rc = vol[:, -self.recent:], clv[:, -self.recent:]
        rsum = rv.sum(axis=1)
        x0 = np.where(rsum > 0, (rv * rc).sum(axis=1) / np.where(rsum > 0, rsum, 1.0), 0.5)
        k0 = np.rint(x0 * n).astype(np.int64)
        end = kirman_paths(k0, eps, self._uniforms, n, self.delta)
        p_buy = np.mean(end > n / 2, axis=1)
        p_sell = np.mean(end < n / 2, axis=1)
        herding = (alpha < 1.0) & (vsum > 0)
        buy = herding & (x0 >= self.majority) & (p_buy >= self.min_paths)
        sell = herding & (x0 <= 1.0 - self.majority) & (p_sell >= self.min_paths)
        action = np.where(buy, BUY, np.where(sell, SELL, HOLD)).astype(np.int8)
        conf = np.where(buy, p_buy - 0.1, np.where(sell, p_sell - 0.1, self.hold_confidence))
        trail = np.full(action.shape, self.clamp_trail(self.context.base_trail))
        return {"action": action, "confidence": conf, "trail": trail, "alpha": alpha, "x0": x0,
                "p_buy": p_buy, "p_sell": p_sell}

    def words(self, s: Scores, j: int) -> tuple[str, Urgency]:
        alpha, x0 = float(s["alpha"][j]), float(s["x0"][j])
        pb, ps = float(s["p_buy"][j]), float(s["p_sell"][j])
        crowd = "the crowd herds" if alpha < 1.0 else "no herding"
        facts = (f"Kirman model α {alpha:.2f} ({crowd}), buyers {x0 * 100:.0f}% (volume-weighted close location, "
                 f"{self.recent} bars); {pb * 100:.0f}% of {self.paths} simulated paths buyer-majority and "
                 f"{ps * 100:.0f}% seller-majority after {self.horizon} bar(s)")
        action = int(s["action"][j])
        if action == BUY:
            return f"herd buying: {facts}", Urgency.NORMAL
        if action == SELL:
            return f"herd selling: {facts}", Urgency.NORMAL
        return f"no herd to follow: {facts}", Urgency.NORMAL
