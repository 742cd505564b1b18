"""In-process EventBus: typed events on dotted topics, dispatched on the caller's loop.

Topics are dotted (`market.candle.BTC-USD`, `order.<id>`). A subscription pattern is an exact topic,
a prefix ending in `.*` (`order.*` matches `order.abc` and `order.abc.filled`), or `*` for all.
Synchronous handlers run at once, in subscription order (the engine relies on that for determinism);
coroutine handlers are scheduled as tasks on the running loop. A failing handler is reported to the
bus's error hook and never stops the publisher.

A subscriber may also say which topics it `wants`: a predicate on the topic, asked once per topic (the
answer is kept with the topic's resolved handlers). A topic it does not want is never dispatched to it,
which spares a per-event call for topics it would ignore anyway (e.g. a logger for the per-bar debug
topics when it logs at info); when nobody wants a topic, `has_subscribers` says so and publishers skip
building its events.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec

Handler = Callable[[str, Any], Awaitable[None] | None]
ErrorHook = Callable[[str, Any, BaseException], None]
TopicFilter = Callable[[str], bool]


class Subscription(msgspec.Struct, frozen=True):
    pattern: str
    handler: Handler
    is_async: bool
    wants: TopicFilter | None = None  # None: every topic the pattern matches


def topic_matches(pattern: str, topic: str) -> bool:
    if pattern == "*" or pattern == topic:
        return True
    if pattern.endswith(".*"):
        prefix = pattern[:-1]  # keep the dot
        return topic.startswith(prefix)
    return False


class EventLog:
    """Records (topic, event) pairs so a run can be replayed onto another bus."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, Any]] = []

    def record(self, topic: str, event: Any) -> None:
        self.entries.append((topic, event))

    def replay(self, bus: EventBus, *, topics: str = "*") -> int:
        count = 0
        for topic, event in self.entries:
            if topic_matches(topics, topic):
                bus.publish(topic, event)
                count += 1
        return count

    def encode(self) -> bytes:
        """Events as JSON lines (msgspec-encodable events only)."""
        enc = msgspec.json.Encoder()
        return b"\n".join(enc.encode({"topic": t, "type": type(e).__name__, "event": e}) for t, e in self.entries)


CACHE_TOPICS = 4096  # resolved topics kept; cleared when full (one topic per order in a long run)


class EventBus:
    def __init__(self, *, on_error: ErrorHook | None = None) -> None:
        self._subs: list[Subscription] = []
        self._cache: dict[str, tuple[Subscription, ...]] = {}
        self._log: EventLog | None = None
        self._on_error = on_error
        self._tasks: set[asyncio.Task[None]] = set()
        self.version = 0  # changes whenever who listens may change (subscribe, unsubscribe, recording)

    # -- subscriptions ---------------------------------------------------------------------------

    def subscribe(self, pattern: str, handler: Handler, *, wants: TopicFilter | None = None) -> Subscription:
        """`handler` gets the events on the topics `pattern` matches and, with `wants`, only on those
        topics for which `wants(topic)` is true (asked once per topic; it must not change its answer
        while subscribed)."""
        sub = Subscription(pattern, handler, inspect.iscoroutinefunction(handler), wants)
        self._subs.append(sub)
        self._cache.clear()
        self.version += 1
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        try:
            self._subs.remove(sub)
        except ValueError:
            return
        self._cache.clear()
        self.version += 1

    def has_subscribers(self, topic: str) -> bool:
        """Cheap check so hot paths can skip building events nobody listens to."""
        if self._log is not None:
            return True
        return bool(self._subs) and bool(self._resolve(topic))

    def _resolve(self, topic: str) -> tuple[Subscription, ...]:
        subs = self._cache.get(topic)
        if subs is None:
            subs = tuple(s for s in self._subs
                         if topic_matches(s.pattern, topic) and (s.wants is None or s.wants(topic)))
            if len(self._cache) >= CACHE_TOPICS:  # per-order topics would otherwise grow it without end
                self._cache.clear()
            self._cache[topic] = subs
        return subs

    # -- recording -------------------------------------------------------------------------------

    def record(self, log: EventLog | None = None) -> EventLog:
        self._log = log or EventLog()
        self.version += 1
        return self._log

    def stop_recording(self) -> None:
        self._log = None
        self.version += 1

    # -- publishing ------------------------------------------------------------------------------

    def publish(self, topic: str, event: Any) -> None:
        if self._log is not None:
            self._log.record(topic, event)
        for sub in self._resolve(topic):
            try:
                if sub.is_async:
                    self._spawn(sub, topic, event)
                else:
                    sub.handler(topic, event)
            except Exception as exc:  # a broken subscriber never breaks the publisher
                self._report(topic, event, exc)

    def publish_many(self, items: Iterable[tuple[str, Any]]) -> None:
        for topic, event in items:
            self.publish(topic, event)

    def _spawn(self, sub: Subscription, topic: str, event: Any) -> None:
        coro = sub.handler(topic, event)
        assert inspect.isawaitable(coro)

        async def run() -> None:
            try:
                await coro
            except Exception as exc:
                self._report(topic, event, exc)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _report(self, topic: str, event: Any, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(topic, event, exc)

    async def drain(self) -> None:
        """Wait until every scheduled async handler has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
