"""Batched WebSocket frames: the hub behind a real aiohttp server on loopback, fed events the test publishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from trdr_tui.api.ws import BATCH_MAX, WsHub
from trdr_tui.core.bus import EventBus
from trdr_tui.core.events import LogEvent


class Server:
    def __init__(self, hub: WsHub, bus: EventBus, url: str) -> None:
        self.hub, self.bus, self.url = hub, bus, url

    def publish(self, first: int, count: int) -> None:
        """LogEvents numbered first..first+count-1, all at once (the loop does not run in between)."""
        for i in range(first, first + count):
            self.bus.publish("log.info", LogEvent(ts=i, level="info", source="test", message=str(i)))


async def serve(queue_size: int) -> AsyncIterator[Server]:
    bus = EventBus()
    hub = WsHub(queue_size, lambda _fill: None)
    hub.bind(bus)

    async def command(action: str, _params: dict[str, Any]) -> dict[str, Any]:
        return {"type": "ack", "action": action, "result": {}}

    async def handle(request: web.Request) -> web.StreamResponse:
        return await hub.serve(request, command)

    app = web.Application()
    app.router.add_get("/ws", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Server(hub, bus, f"http://127.0.0.1:{port}/ws")
    finally:
        await runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async for s in serve(queue_size=100_000):
        yield s


@pytest.fixture
async def small_server() -> AsyncIterator[Server]:
    async for s in serve(queue_size=50):
        yield s


async def subscribe(ws: aiohttp.ClientWebSocketResponse, **extra: Any) -> list[Any]:
    """Subscribe to `events`; returns the frames up to and including the one holding the ack."""
    await ws.send_json({"type": "subscribe", "channels": ["events"], **extra})
    frames = []
    while True:
        frame = msgspec.json.decode(await ws.receive_str(timeout=10))
        frames.append(frame)
        messages = frame if isinstance(frame, list) else [frame]
        if any(m.get("type") in ("ack", "error") for m in messages):
            return frames


async def receive_numbers(ws: aiohttp.ClientWebSocketResponse, last: int) -> tuple[list[int], list[Any]]:
    """The numbers of the LogEvents received until `last` arrives, and the raw frames."""
    numbers: list[int] = []
    frames: list[Any] = []
    while not numbers or numbers[-1] != last:
        frame = msgspec.json.decode(await ws.receive_str(timeout=10))
        frames.append(frame)
        for m in frame if isinstance(frame, list) else [frame]:
            if m.get("channel") == "events":
                numbers.append(int(m["data"]["event"]["message"]))
    return numbers, frames


async def test_batching_clients_get_every_event_in_order_and_plain_clients_single_frames(server: Server) -> None:
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(server.url) as a, session.ws_connect(server.url) as b, \
            session.ws_connect(server.url) as plain:
        for ws in (a, b):
            frames = await subscribe(ws, batch_ms=20)
            assert frames == [[{"type": "ack", "channels": ["events"]}]]
        assert (await subscribe(plain)) == [{"type": "ack", "channels": ["events"]}]
        assert len(server.hub.batches) == 1  # a and b share one buffer: each frame is joined once
        total = 2 * BATCH_MAX + 500
        server.publish(0, 2 * BATCH_MAX + 300)  # two frames flushed at BATCH_MAX, the rest by the timer
        await asyncio.sleep(0.05)
        server.publish(2 * BATCH_MAX + 300, 200)
        got_a, frames_a = await receive_numbers(a, total - 1)
        got_b, frames_b = await receive_numbers(b, total - 1)
        got_plain, frames_plain = await receive_numbers(plain, total - 1)
    assert got_a == got_b == got_plain == list(range(total))
    assert frames_a == frames_b and all(isinstance(f, list) for f in frames_a)
    assert [len(f) for f in frames_a[:2]] == [BATCH_MAX, BATCH_MAX] and len(frames_a) <= 5
    assert all(isinstance(f, dict) for f in frames_plain) and len(frames_plain) == total
    stats = server.hub.stats()
    assert stats["dropped"] == stats["coalesced"] == 0
    assert stats["sent"] == 3 * (total + 1)  # every event and the ack, for each of the three clients


async def test_a_slow_batching_client_loses_its_oldest_frames_whole_and_they_are_counted(small_server: Server) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(small_server.url) as ws:
        await subscribe(ws, batch_ms=1000)
        # 500 events while the server's loop cannot send: frames of 50 (the queue size), and only the
        # newest fits the client's 50-message queue
        small_server.publish(0, 500)
        assert small_server.hub.stats()["dropped"] == 450
        got, frames = await receive_numbers(ws, 499)
        assert got == list(range(450, 500)) and len(frames) == 1
        await ws.send_json({"type": "command", "action": "pause", "params": {}})
        reply = msgspec.json.decode(await ws.receive_str(timeout=10))
    assert reply == [{"type": "ack", "action": "pause", "result": {}}]
    stats = small_server.hub.stats()
    assert (stats["dropped"], stats["coalesced"], stats["sent"]) == (450, 0, 52)


async def test_a_reply_comes_after_the_events_published_before_it(server: Server) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url) as ws:
        await subscribe(ws, batch_ms=1000)
        server.publish(0, 10)
        await ws.send_json({"type": "command", "action": "pause", "params": {}})
        first = msgspec.json.decode(await ws.receive_str(timeout=10))
        second = msgspec.json.decode(await ws.receive_str(timeout=10))
    assert [int(m["data"]["event"]["message"]) for m in first] == list(range(10))
    assert second == [{"type": "ack", "action": "pause", "result": {}}]


@pytest.mark.parametrize("batch_ms", [-1, 1001, 2.5, "50", True])
async def test_a_bad_batch_interval_is_refused_and_changes_nothing(server: Server, batch_ms: Any) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url) as ws:
        reply = (await subscribe(ws, batch_ms=batch_ms))[-1]
        assert reply["type"] == "error" and "batch_ms" in reply["error"] and "0-1000" in reply["error"]
        assert not server.hub.batches and not server.hub.subscribers["events"]
        server.publish(0, 3)
        await ws.send_json({"type": "command", "action": "pause", "params": {}})
        reply = msgspec.json.decode(await ws.receive_str(timeout=10))
    assert reply == {"type": "ack", "action": "pause", "result": {}}  # no events, still one message a frame
