"""The experimental agents: crafted series whose answer the method knows, batch = streaming on real
data, checkpoints, the run's seed, and the path without the `experimental` extra."""

from __future__ import annotations

import asyncio
import json
import math
import sys

import numpy as np
import pytest

from tests.agents.conftest import bars_from_closes
from tests.agents.test_advanced_agents import assert_parity, stream
from trdr_tui.agents.experimental.entropy import (
    EntropyTransitionAgent,
    entropy_of_counts,
    ordinal_codes,
    pattern_counts,
)
from trdr_tui.agents.experimental.fractal import FractalMemoryAgent, hurst_rs
from trdr_tui.agents.experimental.harmonic import HarmonicResonanceAgent
from trdr_tui.agents.experimental.quantum import QuantumSuperpositionAgent, density, modes
from trdr_tui.agents.experimental.swarm import SwarmIntelligenceAgent, kirman_paths
from trdr_tui.agents.experimental.topology import TopologicalShapeAgent, delay_embedding, h1_summary
from trdr_tui.agents.orchestrator import Orchestrator, OrchestratorConfig
from trdr_tui.agents.registry import AgentRegistry
from trdr_tui.cli import main
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.types import Action

EXPERIMENTAL = [EntropyTransitionAgent, SwarmIntelligenceAgent, HarmonicResonanceAgent, TopologicalShapeAgent,
                FractalMemoryAgent, QuantumSuperpositionAgent]
PARITY_SLICE = 2000  # real hourly bars: every window fills several times over


def panel(*agents: object, seed: int = 7) -> Orchestrator:
    return Orchestrator(list(agents), OrchestratorConfig(symbol="BTC-USD", params={"seed": seed}),  # type: ignore[arg-type]
                        bus=EventBus(), clock=SimClock(0))


def last_signal(agent: object, bars: CandleArrays):
    return asyncio.run(stream(panel(agent), bars))[-1]


@pytest.mark.parametrize("make_agent", EXPERIMENTAL, ids=lambda a: a.id)
def test_real_data_batch_equals_streaming(make_agent, real_bars: CandleArrays) -> None:
    actions, signals = assert_parity(lambda: panel(make_agent()), real_bars[:PARITY_SLICE])
    assert all(s.reasoning for s in signals if s is not None)
    # a loop's break and a cycle that stands out from a random walk are rare: they may not vote on 2,000 bars
    if make_agent not in (TopologicalShapeAgent, HarmonicResonanceAgent):
        assert (actions == 1).sum() > 0 and (actions == 2).sum() > 0, make_agent.id


@pytest.mark.parametrize("make_agent", EXPERIMENTAL, ids=lambda a: a.id)
def test_checkpoint_round_trip(make_agent, real_bars: CandleArrays) -> None:
    bars = real_bars[:700]
    whole = asyncio.run(stream(panel(make_agent()), bars))
    first = panel(make_agent())
    asyncio.run(stream(first, bars[:450]))
    state = json.loads(json.dumps(first.get_state()))  # what a checkpoint stores
    resumed = panel(make_agent())
    resumed.set_state(state)
    rest = asyncio.run(stream(resumed, bars[450:]))
    assert [(s.action, s.confidence, s.reasoning) for s in rest] == \
           [(s.action, s.confidence, s.reasoning) for s in whole[450:]]


def test_all_listed_and_off_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    ids = AgentRegistry(load_plugins=False).ids()
    assert all(a.id in ids for a in EXPERIMENTAL)
    assert main(["agents", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["agents"]}
    for a in EXPERIMENTAL:
        assert rows[a.id]["enabled"] is False


# -- harmonic resonance: a pure sine ------------------------------------------------------------


def sine(n: int, period: float, end_phase: float, amp: float = 0.05) -> CandleArrays:
    """exp(amp·cos(2πt/period + φ)) with the phase at the last bar equal to `end_phase`."""
    t = np.arange(n) - (n - 1)
    return bars_from_closes(100.0 * np.exp(amp * np.cos(2 * math.pi * t / period + end_phase)))


def test_harmonic_finds_a_pure_sine_and_its_phase() -> None:
    trough = last_signal(HarmonicResonanceAgent(), sine(400, 32.0, math.pi))
    assert trough.action is Action.TRAIL_BUY
    assert "dominant cycle 32.0 bars" in trough.reasoning and "near a trough" in trough.reasoning
    crest = last_signal(HarmonicResonanceAgent(), sine(400, 32.0, 0.0))
    assert crest.action is Action.TRAIL_SELL and "near a crest" in crest.reasoning
    mid = last_signal(HarmonicResonanceAgent(), sine(400, 32.0, math.pi / 2))
    assert mid.action is Action.HOLD and "mid-cycle" in mid.reasoning
    assert "phase 90°" in mid.reasoning


def test_harmonic_reports_the_beat_of_two_cycles() -> None:
    t = np.arange(400) - 399
    closes = 100.0 * np.exp(0.05 * np.cos(2 * math.pi * t / 32) + 0.03 * np.cos(2 * math.pi * t / 16))
    sig = last_signal(HarmonicResonanceAgent(), bars_from_closes(closes))
    assert "dominant cycle 32.0 bars" in sig.reasoning and "next 16.0 bars" in sig.reasoning
    assert "beat 32.0 bars" in sig.reasoning  # |1/32 − 1/16| = 1/32


def test_harmonic_sees_no_cycle_in_noise() -> None:
    rng = np.random.default_rng(11)
    sig = last_signal(HarmonicResonanceAgent(), bars_from_closes(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))))
    assert sig.action is Action.HOLD


# -- entropy transition: white noise vs a trend --------------------------------------------------


def perm_entropy(x: np.ndarray, order: int = 4) -> float:
    cum = pattern_counts(ordinal_codes(x, order), order)
    return float(entropy_of_counts(cum[-1:] - cum[:1], order)[0])


def test_permutation_entropy_of_noise_and_of_a_trend() -> None:
    rng = np.random.default_rng(2)
    assert perm_entropy(rng.normal(size=2000)) > 0.99  # every ordering equally likely
    assert perm_entropy(np.arange(500.0)) == 0.0  # one ordering only
    # Bandt–Pompe's example: x = (4, 7, 9, 10, 6, 11, 3), order 2 → 4 rises and 2 falls, H = ln-entropy(4/6, 2/6)
    h = perm_entropy(np.array([4, 7, 9, 10, 6, 11, 3.0]), order=2)
    assert h == pytest.approx(-(4 / 6 * math.log(4 / 6) + 2 / 6 * math.log(2 / 6)) / math.log(2))


@pytest.mark.parametrize("direction", [1, -1])
def test_entropy_votes_with_a_trend_forming_out_of_noise(direction: int) -> None:
    rng = np.random.default_rng(4)
    noise = np.cumsum(rng.normal(0.0, 0.01, 260))
    trend = noise[-1] + direction * 0.004 * np.arange(1, 61) + rng.normal(0.0, 0.001, 60)
    sig = last_signal(EntropyTransitionAgent(), bars_from_closes(100 * np.exp(np.concatenate((noise, trend)))))
    assert sig.action is (Action.TRAIL_BUY if direction > 0 else Action.TRAIL_SELL), sig.reasoning
    assert "chaos → order" in sig.reasoning
    calm = last_signal(EntropyTransitionAgent(), bars_from_closes(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 320)))))
    assert calm.action is Action.HOLD and "no transition" in calm.reasoning


# -- fractal memory: Hurst of noise, persistence, mean reversion; analogs ------------------------


def ar1(phi: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e, r = rng.normal(size=n), np.zeros(n)
    for i in range(1, n):
        r[i] = phi * r[i - 1] + e[i]
    return r


def test_hurst_of_noise_persistence_and_mean_reversion() -> None:
    ends = np.arange(256, 6000, 128)
    sizes = FractalMemoryAgent.sizes
    noise = hurst_rs(ar1(0.0, 6000, 1), ends, 256, sizes).mean()
    persistent = hurst_rs(ar1(0.9, 6000, 1), ends, 256, sizes).mean()
    reverting = hurst_rs(ar1(-0.7, 6000, 1), ends, 256, sizes).mean()
    assert 0.5 <= noise <= 0.6  # 0.5 plus R/S's known small-sample bias (Anis & Lloyd 1976)
    assert persistent > 0.8
    assert reverting < 0.45


def test_analogs_forecast_a_repeating_pattern() -> None:
    t = np.arange(800)
    closes = 100 * np.exp(0.03 * np.sin(2 * math.pi * t / 50) + 0.01 * np.sin(2 * math.pi * t / 25))
    n_up = None
    for end in (700, 712):
        bars = bars_from_closes(closes[:end])
        sig = last_signal(FractalMemoryAgent(), bars)
        truth = math.log(closes[end - 1 + 12] / closes[end - 1])  # what the pattern does next
        assert sig.action is (Action.TRAIL_BUY if truth > 0 else Action.TRAIL_SELL), sig.reasoning
        assert "100% of them that way" in sig.reasoning and "distance 0.00" in sig.reasoning
        n_up = truth > 0 if n_up is None else n_up
    assert n_up is not None


# -- topological shape: a circle has a hole ------------------------------------------------------


def test_persistent_homology_finds_the_hole_of_a_circle() -> None:
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * math.pi, 40, endpoint=False)
    circle = np.column_stack((np.cos(t), np.sin(t))) + rng.normal(0, 0.05, (40, 2))
    _, lam_circle = h1_summary(circle)
    _, lam_blob = h1_summary(rng.normal(size=(40, 2)))
    assert lam_circle > 0.3  # a unit circle: the loop lives from ~0.1 to ~1 (radius)
    assert lam_blob < 0.15
    # a sine's delay embedding at a quarter period is a circle too
    x = np.sin(2 * math.pi * np.arange(36) / 12)
    assert h1_summary(delay_embedding((x - x.mean()) / x.std(), 3))[1] > 0.4


def test_topology_stands_aside_while_price_orbits_and_votes_the_break() -> None:
    n = 400
    t = np.arange(n)
    orbit = 100 * np.exp(0.02 * np.sin(2 * math.pi * t / 12))
    sig = last_signal(TopologicalShapeAgent(), bars_from_closes(orbit))
    assert sig.action is Action.HOLD and "orbiting" in sig.reasoning and sig.confidence >= 0.6
    breakout = np.concatenate((orbit[:n - 60], orbit[n - 61] * np.exp(0.01 * np.arange(1, 61))))
    sig = last_signal(TopologicalShapeAgent(), bars_from_closes(breakout))
    assert sig.action is Action.TRAIL_BUY and "the loop closed, regime break up" in sig.reasoning


# -- quantum superposition: a density with two modes ---------------------------------------------


def test_density_modes_of_two_clusters() -> None:
    x = np.concatenate((np.full(30, 100.0), np.full(10, 110.0)))[None, :]
    grid = np.linspace(95, 115, 201)[None, :]
    found = modes(grid[0], density(x, np.ones_like(x), np.array([1.0]), grid)[0])
    assert [round(p) for p, _ in found] == [100, 110]
    assert found[0][1] == pytest.approx(0.75, abs=0.01) and found[1][1] == pytest.approx(0.25, abs=0.01)


def test_quantum_collapses_on_a_volume_spike_toward_the_mode_it_confirms() -> None:
    rng = np.random.default_rng(5)
    closes = np.where(np.arange(300) < 240, 100.0, 110.0) * (1 + rng.normal(0, 0.001, 300))  # 36 bars at 100, 60 at 110
    closes[-1] = 110.5
    vols = np.full(300, 100.0)
    vols[-1] = 600.0
    sig = last_signal(QuantumSuperpositionAgent(), bars_from_closes(closes, vols))
    assert sig.action is Action.TRAIL_BUY, sig.reasoning
    assert "2 mode(s) 110." in sig.reasoning and ", 100." in sig.reasoning, sig.reasoning
    assert "confirms the mode at 110." in sig.reasoning
    vols[-1] = 100.0
    quiet = last_signal(QuantumSuperpositionAgent(), bars_from_closes(closes, vols))
    assert quiet.action is Action.HOLD and "superposition (no collapse)" in quiet.reasoning


# -- swarm: Kirman's model, seeded ---------------------------------------------------------------


def test_kirman_model_herds_when_epsilon_is_small_and_mixes_when_large() -> None:
    u = np.random.default_rng(1).random((400, 2000))
    n = 20
    herd = kirman_paths(np.array([n]), np.array([0.002]), u, n, 0.1)[0]
    mixed = kirman_paths(np.array([n]), np.array([0.9]), u, n, 0.1)[0]
    assert np.mean((herd <= 2) | (herd >= n - 2)) > 0.6  # mass at the extremes (α < 1)
    assert abs(mixed.mean() / n - 0.5) < 0.05 and np.mean((mixed <= 2) | (mixed >= n - 2)) < 0.05


def herd_bars(buyers: bool) -> CandleArrays:
    """Bars that close at their high or at their low (bimodal opinions), the last ones at the high."""
    n = 200
    up = (np.arange(n) // 8) % 2 == 0
    up[-6:] = buyers
    closes = 100 * np.exp(np.cumsum(np.where(up, 0.003, -0.003)))
    opens = np.concatenate(([closes[0]], closes[:-1]))
    return CandleArrays(bars_from_closes(closes).ts, opens, np.maximum(opens, closes), np.minimum(opens, closes),
                        closes, np.full(n, 100.0))


def test_swarm_follows_a_herd_and_is_deterministic_with_the_seed() -> None:
    buy = last_signal(SwarmIntelligenceAgent(), herd_bars(True))
    assert buy.action is Action.TRAIL_BUY and "the crowd herds" in buy.reasoning, buy.reasoning
    sell = last_signal(SwarmIntelligenceAgent(), herd_bars(False))
    assert sell.action is Action.TRAIL_SELL, sell.reasoning
    runs = [asyncio.run(stream(panel(SwarmIntelligenceAgent(), seed=s), herd_bars(True))) for s in (7, 7, 8)]
    words = [[x.reasoning for x in r if x is not None] for r in runs]
    assert words[0] == words[1]
    assert words[0] != words[2]  # another seed draws other paths


# -- without the experimental extra --------------------------------------------------------------


def test_without_the_extra_the_agent_says_so_and_the_panel_goes_on(monkeypatch: pytest.MonkeyPatch,
                                                                   real_bars: CandleArrays) -> None:
    monkeypatch.setitem(sys.modules, "gudhi", None)  # `import gudhi` now raises ImportError
    from trdr_tui.agents.core.momentum import MomentumAgent

    bars = real_bars[:300]
    orch = panel(MomentumAgent(), TopologicalShapeAgent())
    arrays = orch.precompute(bars)
    assert (arrays.agent_confidence[:, 1] == 0).all() and (arrays.agent_action[:, 1] == 0).all()
    assert arrays.valid.any()
    decisions = asyncio.run(_decisions(panel(MomentumAgent(), TopologicalShapeAgent()), bars))
    sig = decisions[-1].signals[1]
    assert sig.reasoning == "unavailable: install 'trdr-tui[experimental]' (needs gudhi)"
    assert sig.confidence == 0.0 and decisions[-1].signals[0].reasoning != sig.reasoning
    assert orch.decision_at(len(bars) - 1).signals[1].reasoning == sig.reasoning  # type: ignore[union-attr]


async def _decisions(orch: Orchestrator, bars: CandleArrays) -> list:
    return [d for c in bars.candles() if (d := await orch.on_candle(c)) is not None]
