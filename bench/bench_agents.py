"""Benchmark the agent panel: batch analysis per agent and streaming cost per candle.

    python bench/bench_agents.py [--candles 10000] [--repeat 7]

Uses the first N real Coinbase hourly candles when the shared data set is present (else a seeded
random walk) and prints:
- the shared feature computation (all indicators, vectorized) on N candles;
- each core agent's `analyze_batch` on N candles (PRD target < 100 ms; aim < 10 ms);
- the orchestrator's whole batch path (`precompute`: features + agents + adaptive weights + consensus);
- the streaming cost per candle: indicators alone (recurrences), each agent's `analyze`, and the whole
  panel through `Orchestrator.on_candle` (aim < 50 µs per candle);
- the experimental agents (entropy, swarm, harmonic, topology, fractal, quantum) and the rl agent (a
  policy trained for 3 episodes on the first half): `analyze_batch` on N candles, a fresh agent each
  run (PRD target < 100 ms), wall and CPU time, and `analyze` per candle;
- the advanced agents (time decay, microstructure, correlation against a seeded synthetic reference
  product, sentiment): `analyze_batch` on N candles (aim < 10 ms) and `analyze` per candle, fed the
  candle ring as the orchestrator feeds it;
- Claude's chart (PRD §16.4: the last 100 candles with volume, an 800×600 PNG; aim < 100 ms), wall
  and CPU time, and the ai_pattern agent's batch path in mode `cache` (one window hash and cache
  lookup per bar; an empty cache here, so no answer is ever used and nothing is asked).
Timings are the best of `--repeat` runs (streaming: one pass, the mean per candle).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trdr_tui.agents import build_orchestrator
from trdr_tui.agents.experimental.rl import core_consensus_batch, train
from trdr_tui.agents.orchestrator import Orchestrator, OrchestratorConfig
from trdr_tui.agents.protocol import AgentContext, MarketSnapshot
from trdr_tui.agents.registry import BUILTINS, CORE_IDS, EXPERIMENTAL_IDS
from trdr_tui.agents.sources import MemoryCandles
from trdr_tui.config import convert_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.market.indicators import compute_features
from trdr_tui.market.streaming import StreamingIndicators


def load_bars(n: int) -> tuple[CandleArrays, str]:
    try:
        from tests.agents.realdata import load_cdd_hourly
        from tests.conftest import HOURLY_CDD

        if HOURLY_CDD.is_file():
            bars = load_cdd_hourly()
            if len(bars) >= n:
                return bars[:n], f"real Coinbase BTC-USD hourly, first {n}"
    except ImportError:
        pass
    rng = np.random.default_rng(42)
    close = 10_000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.concatenate(([close[0]], close[:-1]))
    wick = np.abs(rng.normal(0, 0.004, n))
    ts = (1_500_000_000 + 3600 * np.arange(n, dtype=np.int64)) * 1_000_000_000
    bars = CandleArrays(ts, opens, np.maximum(opens, close) * (1 + wick), np.minimum(opens, close) * (1 - wick),
                        close, rng.gamma(2.0, 50.0, n))
    return bars, f"seeded random walk, {n}"


def best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


async def stream_panel(bars: CandleArrays) -> tuple[float, float]:
    """(wall, CPU) seconds per candle for the whole panel; CPU time ignores time spent descheduled."""
    settings = convert_settings({})
    clock = SimClock(0)
    orch = build_orchestrator(settings, bus=EventBus(), clock=clock)
    candles = list(bars.candles())
    t0, c0 = time.perf_counter(), time.process_time()
    for c in candles:
        clock.advance_to(c.ts)
        await orch.on_candle(c)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall / len(candles), cpu / len(candles)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candles", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    bars, source = load_bars(args.candles)
    n = len(bars)
    print(f"data: {source} candles · python {platform.python_version()} · {platform.machine()}")

    features = compute_features(bars)
    t = best(lambda: compute_features(bars), args.repeat)
    print(f"\nbatch, {n} candles")
    print(f"  {'features (all indicators)':32s} {t * 1e3:8.2f} ms")
    orch = build_orchestrator(convert_settings({}), bus=EventBus(), clock=SimClock(0))
    for agent in orch.agents:
        t = best(lambda agent=agent: agent.analyze_batch(features), args.repeat)  # type: ignore[attr-defined]
        print(f"  {'agent ' + agent.id:32s} {t * 1e3:8.2f} ms")
    t = best(lambda: orch.precompute(bars), args.repeat)
    print(f"  {'orchestrator.precompute (total)':32s} {t * 1e3:8.2f} ms")

    passes = max(1, min(3, args.repeat))
    print(f"\nstreaming, per candle (mean over {n}; best of {passes} passes)")
    candles = list(bars.candles())
    rows = []

    def indicators() -> None:
        s = StreamingIndicators()
        rows[:] = [s.update(c) for c in candles]

    t = best(indicators, passes)
    print(f"  {'indicators (recurrences + windows)':32s} {t / n * 1e6:8.1f} µs")
    snaps = [MarketSnapshot(symbol="BTC-USD", now=r.ts, index=i, features=r) for i, r in enumerate(rows)]
    total_agents = 0.0
    for agent in orch.agents:
        def run(agent=agent) -> None:  # type: ignore[no-untyped-def]
            for sn in snaps:
                agent.analyze(sn)

        per = best(run, passes) / n
        total_agents += per
        print(f"  {'agent ' + agent.id + '.analyze':32s} {per * 1e6:8.1f} µs")
    print(f"  {'all five analyze calls':32s} {total_agents * 1e6:8.1f} µs")
    runs = [asyncio.run(stream_panel(bars)) for _ in range(passes)]
    wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    print(f"  {'whole panel: on_candle':32s} {wall * 1e6:8.1f} µs  (state + agents + consensus + events)")
    print(f"  {'whole panel: on_candle, CPU time':32s} {cpu * 1e6:8.1f} µs")
    advanced(bars, features, rows, args.repeat, passes)
    ai_chart(bars, features, args.repeat)
    experimental(bars, features, rows, args.repeat)


def experimental(bars: CandleArrays, features, rows, repeat: int) -> None:  # type: ignore[no-untyped-def]
    """Each experimental agent: batch on a fresh agent (no cache from an earlier run), best of `repeat`,
    wall and CPU time; streaming `analyze` per candle over the last 2,000 candles (one pass)."""
    n = len(bars)
    print(f"\nexperimental agents, {n} candles: batch (fresh agent, best of {repeat}; wall / CPU) · streaming per candle")
    candles = list(bars.candles())
    tail = 2000
    # the rl agent with a policy trained (3 episodes) on the first half of the candles
    half = compute_features(bars[: n // 2])
    policy = train(half, core_consensus_batch(half, AgentContext(symbol="BTC-USD", timeframe="1h", base_trail=0.015,
                                                                   min_trail=0.002, max_trail=0.10)),
                   fee=0.006, episodes=3, seed=1)
    for aid in (*EXPERIMENTAL_IDS, "rl"):
        walls, cpus = [], []
        params = {"rl_policy": policy.to_parameters()} if aid == "rl" else {}
        for _ in range(repeat):
            agent = Orchestrator([BUILTINS[aid]()], OrchestratorConfig(symbol="BTC-USD", params=params), bus=EventBus(),
                                 clock=SimClock(0)).agents[0]
            t0, c0 = time.perf_counter(), time.process_time()
            agent.analyze_batch(features)  # type: ignore[attr-defined]
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        ring: deque = deque(maxlen=1000)
        start = n - tail
        for c in candles[start - 1000:start]:
            ring.append(c)
        t0 = time.perf_counter()
        for i in range(start, n):
            ring.append(candles[i])
            agent.analyze(MarketSnapshot(symbol="BTC-USD", now=rows[i].ts, index=i, features=rows[i], history=ring))
        per = (time.perf_counter() - t0) / tail
        print(f"  {'agent ' + aid:32s} batch {min(walls) * 1e3:8.1f} ms / {min(cpus) * 1e3:6.1f} ms CPU   "
              f"analyze {per * 1e6:8.1f} µs")


def advanced(bars: CandleArrays, features, rows, repeat: int, passes: int) -> None:  # type: ignore[no-untyped-def]
    n = len(bars)
    rng = np.random.default_rng(7)
    r = np.diff(np.log(bars.close), prepend=np.log(bars.close[0]))
    ref_close = 50.0 * np.exp(np.cumsum(0.9 * r + rng.normal(0.0, 0.004, n)))
    ref = CandleArrays(bars.ts, ref_close, ref_close, ref_close, ref_close, bars.volume)
    source = MemoryCandles({("ETH-USD", "1h"): ref})
    ids = [i for i in BUILTINS if i not in CORE_IDS and i not in EXPERIMENTAL_IDS and i != "rl"
           and not getattr(BUILTINS[i], "paid_service", False)]
    orch = Orchestrator([BUILTINS[i]() for i in ids], OrchestratorConfig(symbol="BTC-USD",
                        params={"reference_symbol": "ETH-USD"}), bus=EventBus(), clock=SimClock(0), candles=source)
    print(f"\nadvanced agents, {n} candles: batch (best of {repeat}) · streaming per candle (best of {passes})")
    candles = list(bars.candles())
    for agent in orch.agents:
        t = best(lambda agent=agent: agent.analyze_batch(features), repeat)  # type: ignore[attr-defined]

        def run(agent=agent) -> None:  # type: ignore[no-untyped-def]
            ring: deque = deque(maxlen=1000)
            for i, (c, row) in enumerate(zip(candles, rows, strict=True)):
                ring.append(c)
                agent.analyze(MarketSnapshot(symbol="BTC-USD", now=row.ts, index=i, features=row, history=ring))

        per = best(run, passes) / n
        print(f"  {'agent ' + agent.id:32s} batch {t * 1e3:8.2f} ms   analyze {per * 1e6:8.1f} µs")


def ai_chart(bars: CandleArrays, features, repeat: int) -> None:  # type: ignore[no-untyped-def]
    from trdr_tui.agents.ai.chart import render_chart_png
    from trdr_tui.agents.ai.pattern import AIPatternAgent
    from trdr_tui.agents.ai.service import ClaudeService
    from trdr_tui.store.db import Store

    w = bars[len(bars) - 100:]

    def render() -> None:
        render_chart_png(w.ts, w.open, w.high, w.low, w.close, w.volume, title="BTC-USD 1h")

    render()  # the first picture loads fonts
    wall = best(render, repeat)
    cpu = min(_cpu(render) for _ in range(repeat))
    print(f"\nClaude's chart (100 candles + volume, 800×600 PNG, best of {repeat})")
    print(f"  {'render_chart_png':32s} {wall * 1e3:8.1f} ms wall  {cpu * 1e3:8.1f} ms CPU")
    settings = convert_settings({"symbol": "BTC-USD", "capital": 10_000, "risk_tolerance": "moderate"})
    agent = AIPatternAgent()
    orch = Orchestrator([agent], OrchestratorConfig(symbol="BTC-USD", params={
        "ai": ClaudeService(settings.ai, mode="cache", store=Store(), clock=SimClock(0))}), bus=EventBus(),
        clock=SimClock(0))
    t = best(lambda: orch.agents[0].analyze_batch(features), max(1, repeat // 3))  # type: ignore[attr-defined]
    print(f"  {'agent ai_pattern batch (cache)':32s} {t * 1e3:8.1f} ms for {len(bars)} candles "
          f"({t / len(bars) * 1e6:.1f} µs a bar)")


def _cpu(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


if __name__ == "__main__":
    main()
