"""A scripted stand-in for the engine, for isolated widget and bridge tests only.

It implements EngineControl and publishes the same event types the real engine does, from real candles,
so a widget test does not depend on the trading core's decisions. Cockpit tests use the real engine.
"""

from __future__ import annotations

import asyncio

from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.events import CandleEvent, EngineStatus, LogEvent, WeightsChanged, candle_topic
from trdr_tui.core.types import Mode


class ScriptedEngine:
    def __init__(self, candles: CandleArrays, *, symbol: str = "BTC-USD",
                 weights: dict[str, float] | None = None) -> None:
        self.bus = EventBus()
        self.clock = SimClock(int(candles.ts[0]) if len(candles) else 0)
        self.candles = candles
        self._symbol = symbol
        self._paused = False
        self._weights = dict(weights or {"momentum": 1.0, "volatility": 1.0})
        self.stopped_with: str | None = None
        self.weight_calls: list[tuple[str, float]] = []
        self._stop = asyncio.Event()

    @property
    def mode(self) -> Mode:
        return Mode.PAPER

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def agent_weights(self) -> dict[str, float]:
        return dict(self._weights)

    def agent_base_weights(self) -> dict[str, float]:
        return dict(self._weights)

    def set_agent_weight(self, agent_id: str, weight: float) -> None:
        self.weight_calls.append((agent_id, weight))
        self._weights[agent_id] = weight
        self.bus.publish("agents.weights", WeightsChanged(ts=self.clock.now_ns(), weights=dict(self._weights)))

    async def run(self) -> None:
        self.bus.publish("engine.status", EngineStatus(ts=self.clock.now_ns(), mode=Mode.PAPER,
                                                       symbol=self._symbol, running=True, paused=False))
        for candle in self.candles.candles():
            self.clock.advance_to(candle.ts)
            self.bus.publish(candle_topic(self._symbol), CandleEvent(symbol=self._symbol, timeframe="1h",
                                                                    candle=candle))
            await asyncio.sleep(0)
            if self._stop.is_set():
                break
        self.bus.publish("log.info", LogEvent(ts=self.clock.now_ns(), level="info", source="feed",
                                              message="end of data"))

    async def stop(self, reason: str = "shutdown") -> None:
        self.stopped_with = reason
        self._stop.set()
