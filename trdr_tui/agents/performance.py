"""Tracks how each agent's directional calls turned out, and turns that into adaptive weights.

A TRAIL_BUY (TRAIL_SELL) at bar t is scored at bar t + `horizon` by the close-to-close move in its
favour: `signed_return = close[t+h] / close[t] - 1` (negated for sells); a hit when positive.
HOLD is not scored. From an agent's counts:

    accuracy = (hits + prior/2) / (n + prior)            shrunk towards 50 % while n is small
    edge     = Σ signed_return / (n + prior)              profit contribution per call
    factor   = 2·accuracy · (1 + ½·tanh(edge / 1 %))
    weight   = clamp(base weight × factor, min_weight, max_weight)    (a base weight of 0 stays 0)

The same counts are computed for a whole history in `batch_stats`, so backtests in batch mode
and streaming runs adapt identically.
"""

from __future__ import annotations

import math
from collections import deque

import msgspec
import numpy as np
import numpy.typing as npt

from trdr_tui.agents.protocol import BUY, CODE_ACTIONS, SELL, Outcome


class AdaptiveConfig(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = True
    horizon: int = 24  # bars until a call is scored
    every: int = 24  # bars between weight updates
    prior: float = 10.0
    min_weight: float = 0.2
    max_weight: float = 3.0


class AgentStats(msgspec.Struct, kw_only=True):
    n: int = 0
    hits: int = 0
    signed_sum: float = 0.0


def performance_factor(stats: AgentStats, prior: float) -> float:
    acc = (stats.hits + prior / 2.0) / (stats.n + prior)
    edge = stats.signed_sum / (stats.n + prior)
    return 2.0 * acc * (1.0 + 0.5 * math.tanh(edge / 0.01))


def adapted_weight(base: float, stats: AgentStats, cfg: AdaptiveConfig) -> float:
    if base <= 0.0:
        return 0.0
    return min(max(base * performance_factor(stats, cfg.prior), cfg.min_weight), cfg.max_weight)


def batch_adapted_weights(base: float, n: npt.NDArray[np.int64], hits: npt.NDArray[np.int64],
                          signed_sum: npt.NDArray[np.float64], cfg: AdaptiveConfig) -> npt.NDArray[np.float64]:
    """`adapted_weight` for many update bars at once (the same operations, so the same floats)."""
    if base <= 0.0:
        return np.zeros(n.shape[0], dtype=np.float64)
    prior = cfg.prior
    acc = (hits + prior / 2.0) / (n + prior)
    edge = signed_sum / (n + prior)
    # math.tanh, not np.tanh: numpy's vectorized tanh may differ in the last bit, and backtests must
    # adapt bit for bit like the streaming path.
    tanh = np.array([math.tanh(x) for x in (edge / 0.01).tolist()], dtype=np.float64)
    factor = 2.0 * acc * (1.0 + 0.5 * tanh)
    return np.minimum(np.maximum(base * factor, cfg.min_weight), cfg.max_weight)


class PerformanceTracker:
    """Streaming: `record` directional calls, `resolve` them `horizon` bars later."""

    def __init__(self, agent_ids: list[str], horizon: int) -> None:
        self.horizon = horizon
        self.stats: dict[str, AgentStats] = {a: AgentStats() for a in agent_ids}
        self._pending: deque[tuple[int, int, float, tuple[tuple[str, int], ...]]] = deque()

    def record(self, index: int, ts: int, close: float, calls: tuple[tuple[str, int], ...]) -> None:
        if calls:
            self._pending.append((index, ts, close, calls))

    def due(self, index: int) -> bool:
        """True if a call is ready to be scored at bar `index` (`resolve` would return outcomes)."""
        pending = self._pending
        return bool(pending) and pending[0][0] <= index - self.horizon

    def resolve(self, index: int, ts: int, close: float) -> list[Outcome]:
        out: list[Outcome] = []
        pending = self._pending
        stats = self.stats
        while pending and pending[0][0] <= index - self.horizon:
            _, t_ts, t_close, calls = pending.popleft()
            move = close / t_close - 1.0
            for agent_id, code in calls:
                signed = move if code == BUY else -move
                st = stats.get(agent_id)
                if st is None:
                    st = stats[agent_id] = AgentStats()
                hit = signed > 0.0
                st.n += 1
                if hit:
                    st.hits += 1
                st.signed_sum += signed
                out.append(Outcome(agent_id=agent_id, signal_ts=t_ts, resolved_ts=ts, action=CODE_ACTIONS[code],
                                   signed_return=signed, hit=hit))
        return out

    def get_state(self) -> dict[str, object]:
        return {"stats": {a: msgspec.to_builtins(s) for a, s in self.stats.items()},
                "pending": [[i, t, c, [list(x) for x in calls]] for i, t, c, calls in self._pending]}

    def set_state(self, state: dict[str, object]) -> None:
        stats = state.get("stats", {})
        assert isinstance(stats, dict)
        self.stats = {a: msgspec.convert(s, AgentStats) for a, s in stats.items()}
        pending = state.get("pending", [])
        assert isinstance(pending, list)
        self._pending = deque((int(i), int(t), float(c), tuple((str(a), int(k)) for a, k in calls))
                              for i, t, c, calls in pending)


def batch_stats(close: npt.NDArray[np.float64], action: npt.NDArray[np.int8], valid: npt.NDArray[np.bool_],
                horizon: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Cumulative (n, hits, signed_sum) of one agent's calls made at bars ≤ t, for every t.

    The counts known at bar u are those at index u - horizon (calls resolved by then).
    """
    n = close.shape[0]
    move = np.zeros(n, dtype=np.float64)
    if n > horizon:
        move[:n - horizon] = close[horizon:] / close[:n - horizon] - 1.0
    called = valid & ((action == BUY) | (action == SELL))
    signed = np.where(action == BUY, move, -move)
    signed = np.where(called, signed, 0.0)
    counts = np.cumsum(called.astype(np.int64))
    hits = np.cumsum((called & (signed > 0.0)).astype(np.int64))
    # Sequential sum in bar order, like the streaming tracker (np.cumsum is sequential).
    sums = np.cumsum(signed)
    return counts, hits, sums
