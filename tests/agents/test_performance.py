"""Performance tracking and adaptive weights: streaming tracker = batch counts; formula and bounds."""

from __future__ import annotations

import numpy as np

from trdr_tui.agents.performance import (
    AdaptiveConfig,
    AgentStats,
    PerformanceTracker,
    adapted_weight,
    batch_adapted_weights,
    batch_stats,
)
from trdr_tui.agents.protocol import BUY, HOLD, SELL


def test_batch_weights_equal_the_scalar_formula_exactly() -> None:
    rng = np.random.default_rng(7)
    cfg = AdaptiveConfig(min_weight=0.2, max_weight=3.0)
    n = rng.integers(0, 500, 300)
    hits = (n * rng.random(300)).astype(np.int64)
    sums = rng.normal(0, 0.05, 300) * n
    for base in (0.0, 0.5, 1.0, 2.0):
        got = batch_adapted_weights(base, n, hits, sums, cfg)
        want = [adapted_weight(base, AgentStats(n=int(a), hits=int(b), signed_sum=float(c)), cfg)
                for a, b, c in zip(n, hits, sums, strict=True)]
        assert got.tolist() == want  # bit for bit: backtests adapt exactly like live runs


def test_weights_are_bounded_and_neutral_without_history() -> None:
    cfg = AdaptiveConfig(min_weight=0.2, max_weight=3.0)
    assert adapted_weight(1.0, AgentStats(), cfg) == 1.0
    assert adapted_weight(2.0, AgentStats(n=1000, hits=1000, signed_sum=50.0), cfg) == 3.0
    assert adapted_weight(1.0, AgentStats(n=1000, hits=0, signed_sum=-50.0), cfg) == 0.2
    assert adapted_weight(0.0, AgentStats(n=1000, hits=1000, signed_sum=50.0), cfg) == 0.0  # muted stays muted


def test_tracker_counts_equal_batch_counts() -> None:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    action = rng.choice([HOLD, BUY, SELL], 400).astype(np.int8)
    valid = np.arange(400) >= 50
    horizon = 24
    tracker = PerformanceTracker(["a"], horizon)
    for i in range(400):
        outcomes = tracker.resolve(i, i, float(close[i]))
        for o in outcomes:
            assert o.resolved_ts - o.signal_ts == horizon
        if valid[i] and action[i] != HOLD:
            tracker.record(i, i, float(close[i]), (("a", int(action[i])),))
        if i >= horizon:
            counts, hits, sums = batch_stats(close, action, valid, horizon)
            st = tracker.stats["a"]
            assert (st.n, st.hits) == (counts[i - horizon], hits[i - horizon])
            assert st.signed_sum == sums[i - horizon]
