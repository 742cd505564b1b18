from __future__ import annotations

import asyncio

import pytest

from trdr_tui.core.bus import EventBus, topic_matches
from trdr_tui.core.clock import SimClock


def test_simclock_fires_timers_in_time_order_each_at_its_own_time() -> None:
    clock = SimClock(start_ns=100)
    seen: list[tuple[str, int]] = []
    clock.call_at(300, lambda t: seen.append(("b", t)))
    clock.call_at(200, lambda t: seen.append(("a", t)))
    cancelled = clock.call_at(250, lambda t: seen.append(("x", t)))
    cancelled.cancel()
    clock.advance_to(260)
    assert seen == [("a", 200)]
    assert clock.now_ns() == 260
    clock.advance_to(1000)
    assert seen == [("a", 200), ("b", 300)]


def test_simclock_refuses_to_go_back() -> None:
    clock = SimClock(start_ns=10)
    with pytest.raises(ValueError, match="back in time"):
        clock.advance_to(5)


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("order.*", "order.abc", True),
        ("order.*", "order.abc.filled", True),
        ("order.*", "orders.abc", False),
        ("market.candle.BTC-USD", "market.candle.BTC-USD", True),
        ("market.candle.BTC-USD", "market.candle.ETH-USD", False),
        ("*", "anything", True),
    ],
)
def test_topic_matching(pattern: str, topic: str, expected: bool) -> None:
    assert topic_matches(pattern, topic) is expected


async def test_bus_dispatch_unsubscribe_errors_and_replay() -> None:
    errors: list[BaseException] = []
    bus = EventBus(on_error=lambda t, e, exc: errors.append(exc))
    got: list[tuple[str, object]] = []
    async_got: list[object] = []

    def broken(topic: str, event: object) -> None:
        raise RuntimeError("boom")

    async def async_handler(topic: str, event: object) -> None:
        await asyncio.sleep(0)
        async_got.append(event)

    sub = bus.subscribe("order.*", lambda t, e: got.append((t, e)))
    bus.subscribe("order.*", broken)
    bus.subscribe("fill.*", async_handler)
    log = bus.record()
    bus.publish("order.1", "submitted")
    bus.publish("fill.BTC-USD", "f1")
    bus.publish("market.tick.BTC-USD", "ignored by all")
    await bus.drain()
    assert got == [("order.1", "submitted")]
    assert async_got == ["f1"]
    assert len(errors) == 1 and str(errors[0]) == "boom"

    bus.unsubscribe(sub)
    bus.publish("order.2", "x")
    assert got == [("order.1", "submitted")]

    other = EventBus()
    replayed: list[object] = []
    other.subscribe("*", lambda t, e: replayed.append((t, e)))
    assert log.replay(other) == 4
    assert replayed[:3] == [("order.1", "submitted"), ("fill.BTC-USD", "f1"), ("market.tick.BTC-USD", "ignored by all")]


def test_a_subscriber_gets_only_the_topics_it_wants_asked_once_per_topic() -> None:
    bus = EventBus()
    asked: list[str] = []
    got: list[tuple[str, object]] = []
    everything: list[str] = []

    def wants(topic: str) -> bool:
        asked.append(topic)
        return not topic.startswith("agent.signal.")

    bus.subscribe("*", lambda t, e: got.append((t, e)), wants=wants)
    for _ in range(3):
        bus.publish("agent.signal.momentum", "signal")
        bus.publish("decision.BTC-USD", "decision")
    assert got == [("decision.BTC-USD", "decision")] * 3
    assert asked == ["agent.signal.momentum", "decision.BTC-USD"]  # the answers are kept with the topic
    assert not bus.has_subscribers("agent.signal.momentum")  # nobody wants it: publishers may skip it

    sub = bus.subscribe("agent.signal.*", lambda t, e: everything.append(t))  # a new listener: topics resolved again
    assert bus.has_subscribers("agent.signal.momentum")
    bus.publish("agent.signal.momentum", "signal")
    assert everything == ["agent.signal.momentum"] and len(got) == 3
    bus.unsubscribe(sub)
    assert not bus.has_subscribers("agent.signal.momentum")
