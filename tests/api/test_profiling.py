"""The inspector's per-agent memory profile (api/profiling.py): tracemalloc over sampled update calls."""

from __future__ import annotations

import tracemalloc

from tests.agents.conftest import load_cdd_hourly
from tests.agents.test_advanced_agents import panel, reference_for
from trdr_tui.agents.advanced.correlation import CorrelationAgent
from trdr_tui.agents.sources import MemoryCandles
from trdr_tui.api.profiling import AgentMemoryProfiler, MemoryStats, profiler_for

WARM = 700  # bars streamed before sampling: every window below is full
SAMPLED = 8


async def profile_correlation(window: int) -> tuple[MemoryStats, CorrelationAgent]:
    bars = load_cdd_hourly()[:WARM + SAMPLED]
    agent = CorrelationAgent()
    agent.window = window
    orch = panel(agent, MemoryCandles({("ETH-USD", "1h"): reference_for(bars)}))
    candles = list(bars.candles())
    for c in candles[:WARM]:
        await orch.on_candle(c)
    prof = profiler_for(orch)
    assert prof is profiler_for(orch)  # one per panel, shared by the API and the cockpit
    assert prof.sample(orch.agents, SAMPLED) == ["correlation"]
    assert tracemalloc.is_tracing()
    for c in candles[WARM:]:
        decision = await orch.on_candle(c)
        assert decision is not None and decision.signals[0].agent_id == "correlation"
    return prof.stats["correlation"], agent


async def test_the_memory_of_an_update_is_measured_and_grows_with_the_window() -> None:
    small, agent = await profile_correlation(24)
    assert not tracemalloc.is_tracing()  # switched off again after the last sampled call
    assert "analyze" not in vars(agent)  # the class's own method again
    big, _ = await profile_correlation(480)
    assert small.samples == big.samples == SAMPLED and small.pending == big.pending == 0
    assert small.peak_mean is not None and big.peak_mean is not None
    assert small.peak_mean > 0
    # the rolling statistics allocate (window × bars) arrays: 20× the window, several times the memory
    assert big.peak_mean > 4 * small.peak_mean, (small, big)
    assert big.peak_max >= big.peak_mean


def test_bad_sample_sizes_are_refused() -> None:
    prof = AgentMemoryProfiler()
    for calls in (0, 1001):
        try:
            prof.sample([], calls)
        except ValueError as exc:
            assert "calls must be in [1, 1000]" in str(exc)
        else:
            raise AssertionError("accepted")
