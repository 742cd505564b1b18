"""The bridge from the engine's EventBus to Textual messages.

Widgets never reach into the engine: every number on screen arrives here as an event and leaves as a
typed message posted to one target (the main screen). Two mechanisms keep the UI ahead of a fast feed:

* state-like messages (tick, portfolio, grid, status, feed health, agent signal, decision, weights,
  progress) say `can_replace` to an older message of the same kind and key still in the queue, so
  Textual hands the handler only the newest;
* when the target's queue is longer than `high_water`, state-like messages are parked (newest per key
  wins) and flushed once the queue has drained — the producer backs off instead of flooding.

Event-like messages (closed candles, order transitions, fills, log lines, risk rejections) are never
dropped: each one carries information the panes accumulate.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import msgspec
from textual.message import Message
from textual.message_pump import MessagePump

from trdr_tui.core.bus import EventBus, Subscription
from trdr_tui.core.events import (
    BacktestProgress,
    CandleEvent,
    EngineStatus,
    FeedHealth,
    GridSnapshot,
    LogEvent,
    OrderEvent,
    PortfolioSnapshot,
    RiskRejection,
    WeightsChanged,
)
from trdr_tui.core.types import AgentSignal, Decision, Fill, Tick


class BridgeStats(msgspec.Struct):
    """Counters the benchmark and tests read: how much arrived, how much the UI was spared."""

    received: int = 0
    posted: int = 0
    coalesced: int = 0  # dropped in the queue by can_replace
    superseded: int = 0  # parked while the queue was long, replaced by a newer one before flushing
    max_queue: int = 0


class EngineMessage(Message, bubble=False):
    """Base of every message the bridge posts. `key` is None for messages that must not coalesce."""

    coalesce: ClassVar[bool] = False

    def __init__(self, topic: str, event: Any, stats: BridgeStats) -> None:
        super().__init__()
        self.topic = topic
        self.event = event
        self._stats = stats

    @property
    def key(self) -> str | None:
        return self.topic if self.coalesce else None

    def can_replace(self, message: Message) -> bool:
        replace = (
            self.key is not None
            and type(message) is type(self)
            and isinstance(message, EngineMessage)
            and message.key == self.key
        )
        if replace:
            self._stats.coalesced += 1
        return replace


class CandleReceived(EngineMessage):
    """A bar; a forming bar (closed=False) may be replaced by a newer state of the same bar."""

    event: CandleEvent

    @property
    def key(self) -> str | None:
        return None if self.event.closed else f"{self.topic}:{self.event.candle.ts}"


class TickReceived(EngineMessage):
    coalesce = True
    event: Tick


class PortfolioUpdated(EngineMessage):
    coalesce = True
    event: PortfolioSnapshot


class GridUpdated(EngineMessage):
    coalesce = True
    event: GridSnapshot


class StatusUpdated(EngineMessage):
    coalesce = True
    event: EngineStatus


class FeedHealthUpdated(EngineMessage):
    coalesce = True
    event: FeedHealth


class SignalReceived(EngineMessage):
    coalesce = True
    event: AgentSignal


class DecisionMade(EngineMessage):
    coalesce = True
    event: Decision


class WeightsUpdated(EngineMessage):
    coalesce = True
    event: WeightsChanged


class ProgressUpdated(EngineMessage):
    coalesce = True
    event: BacktestProgress


class OrderChanged(EngineMessage):
    event: OrderEvent


class FillReceived(EngineMessage):
    event: Fill


class RiskRejected(EngineMessage):
    event: RiskRejection


class LogReceived(EngineMessage):
    event: LogEvent


MESSAGE_FOR: dict[type, type[EngineMessage]] = {
    CandleEvent: CandleReceived,
    Tick: TickReceived,
    PortfolioSnapshot: PortfolioUpdated,
    GridSnapshot: GridUpdated,
    EngineStatus: StatusUpdated,
    FeedHealth: FeedHealthUpdated,
    AgentSignal: SignalReceived,
    Decision: DecisionMade,
    WeightsChanged: WeightsUpdated,
    BacktestProgress: ProgressUpdated,
    OrderEvent: OrderChanged,
    Fill: FillReceived,
    RiskRejection: RiskRejected,
    LogEvent: LogReceived,
}


class Bridge:
    """Subscribes to every topic on `bus` and posts the matching message to `target`."""

    def __init__(self, bus: EventBus, target: MessagePump, *, high_water: int = 256,
                 flush_interval: float = 0.05) -> None:
        self.bus = bus
        self.target = target
        self.high_water = high_water
        self.flush_interval = flush_interval
        self.stats = BridgeStats()
        self._sub: Subscription | None = None
        self._parked: dict[tuple[type, str], EngineMessage] = {}
        self._flush_handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self._sub is None:
            self._sub = self.bus.subscribe("*", self._on_event)

    def stop(self) -> None:
        if self._sub is not None:
            self.bus.unsubscribe(self._sub)
            self._sub = None
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._parked.clear()

    def _on_event(self, topic: str, event: Any) -> None:
        factory = MESSAGE_FOR.get(type(event))
        if factory is None:
            return
        stats = self.stats
        stats.received += 1
        message = factory(topic, event, stats)
        queued = self.target.message_queue_size
        if queued > stats.max_queue:
            stats.max_queue = queued
        key = message.key
        if key is not None and (queued > self.high_water or self._parked):
            self._park(message, key)
            return
        self._post(message)

    def _post(self, message: EngineMessage) -> None:
        if self.target.post_message(message):
            self.stats.posted += 1

    def _park(self, message: EngineMessage, key: str) -> None:
        slot = (type(message), key)
        if slot in self._parked:
            self.stats.superseded += 1
        self._parked[slot] = message
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(self.flush_interval, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        if self.target.message_queue_size > self.high_water:
            self._flush_handle = asyncio.get_running_loop().call_later(self.flush_interval, self._flush)
            return
        parked, self._parked = self._parked, {}
        for message in parked.values():
            self._post(message)
