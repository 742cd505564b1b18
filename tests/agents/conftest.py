"""Fixtures for agent tests: crafted price series, the real hourly data, panels and stub agents."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests.agents.realdata import load_cdd_hourly
from trdr_tui.agents.protocol import AgentContext, BaseAgent, MarketSnapshot
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.types import Action, AgentSignal

HOUR_NS = 3_600_000_000_000
T0 = 1_500_000_000 * 1_000_000_000 // HOUR_NS * HOUR_NS

CONTEXT = AgentContext(symbol="BTC-USD", timeframe="1h", base_trail=0.015, min_trail=0.002, max_trail=0.10)


def bars_from_closes(closes: np.ndarray, volumes: np.ndarray | None = None, wick: float = 0.002,
                     start: int = T0) -> CandleArrays:
    """Candles whose open is the previous close and whose wicks reach `wick` beyond the body."""
    closes = np.asarray(closes, dtype=np.float64)
    n = closes.shape[0]
    opens = np.concatenate(([closes[0]], closes[:-1]))
    highs = np.maximum(opens, closes) * (1.0 + wick)
    lows = np.minimum(opens, closes) * (1.0 - wick)
    vol = np.full(n, 100.0) if volumes is None else np.asarray(volumes, dtype=np.float64)
    ts = start + np.arange(n, dtype=np.int64) * HOUR_NS
    return CandleArrays(ts, opens, highs, lows, closes, vol)


def _wiggle(n: int) -> np.ndarray:
    """Small deterministic noise (±0.25 %), so that no series is perfectly smooth."""
    i = np.arange(n)
    return 0.0015 * np.sin(i * 1.7) + 0.001 * np.sin(i * 0.37 + 1.0)


def uptrend(n: int = 300) -> CandleArrays:
    """A clean uptrend: +0.4 % a bar with a 12-bar zigzag (so swings exist)."""
    i = np.arange(n)
    closes = 100.0 * np.exp(0.004 * i + 0.012 * np.sin(2 * math.pi * i / 12)) * (1 + _wiggle(n))
    return bars_from_closes(closes)


def sideways(n: int = 300) -> CandleArrays:
    """A range: ±3 % around 100 with a 40-bar period, ending at a trough (the bottom of the range)."""
    i = np.arange(n) - n + 1 + 30  # the last bar sits 3/4 through a cycle: the trough
    closes = 100.0 * (1 + 0.03 * np.sin(2 * math.pi * i / 40)) * (1 + _wiggle(n))
    return bars_from_closes(closes)


def crash(n_calm: int = 250, n_crash: int = 15) -> CandleArrays:
    """A calm market, then -3 % a bar on triple volume."""
    calm = 100.0 * (1 + _wiggle(n_calm))
    drop = calm[-1] * np.cumprod(np.full(n_crash, 0.97))
    vols = np.concatenate((np.full(n_calm, 100.0), np.full(n_crash, 300.0)))
    return bars_from_closes(np.concatenate((calm, drop)), vols)


def volume_spike(n: int = 250, up: bool = False, ratio: float = 5.0) -> CandleArrays:
    """A quiet range whose last bar moves 1 % (down, or up) on `ratio` × the usual volume."""
    closes = 100.0 * (1 + _wiggle(n))
    closes[-1] = closes[-2] * (1.01 if up else 0.99)
    vols = np.full(n, 100.0)
    vols[-1] = 100.0 * ratio
    return bars_from_closes(closes, vols)


SERIES: dict[str, Callable[[], CandleArrays]] = {
    "uptrend": uptrend, "range": sideways, "crash": crash, "spike_down": volume_spike,
    "spike_up": lambda: volume_spike(up=True),
}


@pytest.fixture(scope="session")
def real_bars() -> CandleArrays:
    return load_cdd_hourly()


# --- stub agents for orchestrator tests ---------------------------------------------------------


class FixedAgent(BaseAgent):
    """Always says the same thing."""

    version = "0.0.1"

    def __init__(self, agent_id: str, action: Action = Action.HOLD, confidence: float = 0.5,
                 trail: float = 0.02) -> None:
        super().__init__()
        self.id = agent_id  # type: ignore[misc]
        self.name = agent_id  # type: ignore[misc]
        self.action, self.confidence, self.trail = action, confidence, trail
        self.calls = 0
        self.seen_now: list[int] = []

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        self.calls += 1
        self.seen_now.append(snapshot.now)
        return AgentSignal(agent_id=self.id, action=self.action, confidence=self.confidence,
                           trail_distance=self.trail, reasoning=f"fixed {self.action.value}", ts=snapshot.features.ts)


class HangingAgent(FixedAgent):
    """A coroutine agent that never answers."""

    async def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:  # type: ignore[override]
        self.calls += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class RaisingAgent(FixedAgent):
    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        self.calls += 1
        raise RuntimeError("boom")


class AsyncAgent(FixedAgent):
    """A coroutine agent that answers after yielding to the loop."""

    async def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:  # type: ignore[override]
        await asyncio.sleep(0)
        return FixedAgent.analyze(self, snapshot)


class BadSignalAgent(FixedAgent):
    def analyze(self, snapshot: MarketSnapshot) -> Any:
        self.calls += 1
        return AgentSignal(agent_id=self.id, action=Action.TRAIL_BUY, confidence=1.7, trail_distance=0.02,
                           reasoning="overconfident")


class BlockingAgent(FixedAgent):
    """A synchronous agent that declares itself CPU-heavy: it runs in a worker thread."""

    blocking = True

    def __init__(self, agent_id: str, delay_s: float, **kw: Any) -> None:
        super().__init__(agent_id, **kw)
        self.delay_s = delay_s

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        import time

        time.sleep(self.delay_s)
        return FixedAgent.analyze(self, snapshot)
