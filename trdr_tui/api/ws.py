"""The WebSocket channels (PRD §5.2): engine events fanned out to subscribed clients.

Client → server (JSON text frames):
    {"type": "subscribe", "channels": ["price", "trade"]}      "*" subscribes to every channel
    {"type": "subscribe", "channels": ["*"], "batch_ms": 50}  batched frames (below); 0 = one message a frame
    {"type": "unsubscribe", "channels": ["price"]}
    {"type": "command", "action": "pause" | "resume" | "stop" | "set_weight", "params": {...}}
Server → client:
    {"channel": "price", "data": {"symbol", "price", "timestamp"}}
    {"channel": "order", "data": {"type": "created" | "filled" | "cancelled" | ..., "order": {...}}}
    {"channel": "trade", "data": {"trade": <fill>, "pnl": <realized pnl of the round trip, or null>}}
    {"channel": "agent", "data": {"agentId", "signal"}}
    {"channel": "performance", "data": {"metrics": <portfolio snapshot>}}
    {"channel": "alert", "data": {"level": "info" | "warning" | "error", "message"}}
    {"channel": "status", "data": <engine status>}
    {"channel": "events", "data": {"topic", "type", "event"}}   every engine event the cockpit shows, as
        published (`EVENT_TYPES` names the types); a new subscriber first gets the recent closed candles,
        order changes and fills and the latest state of each kind (what `trdr attach` draws from)
    {"type": "ack" | "error", ...} in reply to a client message

Batched frames (as exchanges do): a client whose subscribe carried `"batch_ms": N` (1-1000) gets every
frame as a JSON array of the messages above, in publish order: the messages published within N ms of
the first one waiting, or `BATCH_MAX` messages (`queue_size` if smaller), whichever comes first. Its
replies are arrays too (one reply, sent at once after the messages published before it). Clients
asking for the same channels and the same N share one buffer: a frame is joined once and the same
bytes go to each of them. A batching client gets every message (nothing coalesces); one that falls
more than `queue_size` messages behind loses its oldest frames whole, counted as dropped. Without
`batch_ms` (or with 0) a client gets one message a frame, as listed above. The last subscribe that
names `batch_ms` sets it for the connection.

The engine never waits for a client: an event is encoded once (msgspec, to bytes) and the same bytes
are queued for every subscriber of its channel (a set kept per channel, so no client is looked at for
a channel it did not ask for), then written as a text frame without re-encoding. `price`,
`performance` and the state-like `events` (ticks, snapshots, signals, forming bars: one per topic)
coalesce (a slow client gets the latest value, not a backlog); the other channels keep up to
`queue_size` messages per client and drop the oldest beyond that, counting what was dropped.
Clients that batch are fed per shared buffer, not per client (see above).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

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
from trdr_tui.core.types import AgentSignal, Decision, Fill, OrderStatus, Tick

CHANNELS = ("price", "order", "trade", "agent", "performance", "alert", "status", "events")
COALESCED = frozenset({"price", "performance"})
# The `events` channel: every type the cockpit shows, by name. State-like ones coalesce per topic.
STATE_TYPES: tuple[type, ...] = (Tick, PortfolioSnapshot, GridSnapshot, EngineStatus, FeedHealth, AgentSignal,
                                 Decision, WeightsChanged, BacktestProgress)
EVENT_TYPES: dict[str, type] = {t.__name__: t for t in (*STATE_TYPES, CandleEvent, OrderEvent, Fill, RiskRejection,
                                                         LogEvent)}
_IS_STATE: dict[type, bool] = {t: t in STATE_TYPES for t in EVENT_TYPES.values()}  # the `events` types: state-like?
HISTORY_CANDLES = 300  # closed bars a new `events` subscriber receives first
HISTORY_OTHER = 200  # order changes, fills, refusals and log lines likewise
BATCH_MAX = 1000  # messages in one batched frame at most
BATCH_MS_MAX = 1000  # the longest flush interval a client may ask for
ORDER_TYPES = {OrderStatus.PENDING: "created", OrderStatus.FILLED: "filled", OrderStatus.CANCELLED: "cancelled"}


def _ts(event: Any) -> int:
    if isinstance(event, OrderEvent):
        return event.transition.ts
    ts = getattr(event, "ts", 0)
    return ts if isinstance(ts, int) else 0


class WsClient:
    """One connected client: its channels, its queue, and what it missed."""

    def __init__(self, ws: web.WebSocketResponse, queue_size: int) -> None:
        self.ws = ws
        self.channels: set[str] = set()
        self.queue: deque[bytes] = deque()
        self.queue_size = queue_size
        self.latest: dict[str, bytes] = {}  # coalesced channel -> newest message not yet sent
        self.batch_ms = 0  # 0: one message a frame; else the flush interval it asked for
        self.batch: Batch | None = None  # the shared buffer it is fed from when batching
        self.frames: deque[tuple[bytes, int]] = deque()  # batched frames not yet sent, with their message count
        self.backlog = 0  # messages in `frames`
        self.sent = 0  # messages sent (a batched frame counts its messages)
        self.dropped = 0
        self.coalesced = 0
        self.wake = asyncio.Event()

    def offer(self, channel: str, text: bytes, key: str | None = None) -> None:
        """Queue `text`; with a `key` (or on a coalesced channel) it replaces an unsent one of that key."""
        if key is None and channel in COALESCED:
            key = channel
        if key is not None:
            if key in self.latest:
                self.coalesced += 1
            self.latest[key] = text
        else:
            if len(self.queue) >= self.queue_size:
                self.queue.popleft()
                self.dropped += 1
            self.queue.append(text)
        self.wake.set()

    def offer_frame(self, frame: bytes, count: int) -> None:
        """Queue a batched frame of `count` messages; beyond `queue_size` unsent messages the oldest
        frames are dropped whole (the newest is always kept)."""
        self.frames.append((frame, count))
        self.backlog += count
        while self.backlog > self.queue_size and len(self.frames) > 1:
            _, lost = self.frames.popleft()
            self.backlog -= lost
            self.dropped += lost
        self.wake.set()

    def pending(self) -> bool:
        return bool(self.queue or self.latest or self.frames)

    async def pump(self) -> None:
        """Send what is queued until the socket closes."""
        while not self.ws.closed:
            await self.wake.wait()
            self.wake.clear()
            while self.pending():
                count = 1
                if self.frames:
                    text, count = self.frames.popleft()
                    self.backlog -= count
                elif self.queue:
                    text = self.queue.popleft()
                else:
                    key = next(iter(self.latest))
                    text = self.latest.pop(key)
                try:  # the bytes every subscriber shares, sent as a text frame (no per-client encoding)
                    await self.ws.send_frame(text, WSMsgType.TEXT)
                except (ConnectionError, RuntimeError):
                    return
                self.sent += count


class Batch:
    """The batching clients with the same channels and flush interval: one buffer, one frame per flush."""

    def __init__(self, channels: frozenset[str], batch_ms: int, limit: int) -> None:
        self.channels = channels
        self.batch_ms = batch_ms
        self.limit = limit
        self.clients: set[WsClient] = set()
        self.items: list[bytes] = []
        self.timer: asyncio.TimerHandle | None = None
        self.loop = asyncio.get_running_loop()

    def add(self, text: bytes) -> None:
        """Append one encoded message; flush at `limit` messages, else within the interval."""
        self.items.append(text)
        if len(self.items) >= self.limit:
            self.flush()
        elif self.timer is None:
            self.timer = self.loop.call_later(self.batch_ms / 1000, self.flush)

    def flush(self) -> None:
        """Join the waiting messages into one JSON array and queue the same bytes for every client."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.items:
            return
        frame = b"[" + b",".join(self.items) + b"]"
        count = len(self.items)
        self.items = []
        for client in self.clients:
            client.offer_frame(frame, count)


class WsHub:
    """Subscribes to the engine's bus once and fans events out to the clients of each channel."""

    def __init__(self, queue_size: int, trade_pnl: Callable[[Fill], float | None]) -> None:
        self.clients: set[WsClient] = set()
        self.queue_size = queue_size
        self.trade_pnl = trade_pnl
        self.encoder = msgspec.json.Encoder()
        self.dropped_total = 0
        self.coalesced_total = 0
        self.events_seen = 0
        self.sent_total = 0
        self.subscribers: dict[str, set[WsClient]] = {c: set() for c in CHANNELS}  # channel -> its clients
        self.batches: dict[tuple[frozenset[str], int], Batch] = {}  # (channels, batch_ms) -> shared buffer
        self.batched: dict[str, set[Batch]] = {c: set() for c in CHANNELS}  # channel -> the buffers taking it
        self._bus: EventBus | None = None
        self._sub: Subscription | None = None
        self.states: dict[str, tuple[str, Any]] = {}  # coalescing key -> newest (topic, event)
        self._state_keys: dict[str, str] = {}  # topic -> its coalescing key, for the state types (several per bar)
        self.candles: deque[tuple[str, Any]] = deque(maxlen=HISTORY_CANDLES)
        self.history: deque[tuple[str, Any]] = deque(maxlen=HISTORY_OTHER)

    def bind(self, bus: EventBus) -> None:
        """Listen to `bus` (the current engine's); a mode switch brings a new engine and a new bus."""
        if bus is self._bus:
            return
        if self._bus is not None and self._sub is not None:
            self._bus.unsubscribe(self._sub)
        self._bus = bus
        self._sub = bus.subscribe("*", self.on_event)

    def unbind(self) -> None:
        if self._bus is not None and self._sub is not None:
            self._bus.unsubscribe(self._sub)
        self._bus = self._sub = None

    @staticmethod
    def channel_of(topic: str, event: Any) -> tuple[str, dict[str, Any]] | None:
        if isinstance(event, Tick):
            return "price", {"symbol": event.symbol, "price": event.price, "timestamp": event.ts}
        if isinstance(event, CandleEvent):
            if not event.closed:
                return None
            c = event.candle
            return "price", {"symbol": event.symbol, "price": c.close, "timestamp": c.ts}
        if isinstance(event, OrderEvent):
            to = event.transition.to_status
            return "order", {"type": ORDER_TYPES.get(to, to.value.lower()), "order": event.order}
        if isinstance(event, AgentSignal):
            return "agent", {"agentId": event.agent_id, "signal": event}
        if isinstance(event, PortfolioSnapshot):
            return "performance", {"metrics": event}
        if isinstance(event, LogEvent) and event.level in ("warning", "error"):
            return "alert", {"level": event.level, "message": event.message}
        if isinstance(event, RiskRejection):
            return "alert", {"level": "warning",
                             "message": f"risk refused a {event.side.value} of {event.size:g}: "
                                        f"{', '.join(event.failed_checks)}"}
        if isinstance(event, FeedHealth):
            level = "info" if event.healthy else "warning"
            return "alert", {"level": level, "message": f"feed {event.source} "
                                                        f"{'healthy' if event.healthy else 'unhealthy'}: {event.detail}"}
        if isinstance(event, EngineStatus):
            return "status", msgspec.to_builtins(event)
        return None

    @staticmethod
    def state_key(topic: str, event: Any) -> str | None:
        """The coalescing key of an `events` message; None for an event that must not be dropped."""
        if isinstance(event, STATE_TYPES):
            return f"events:{topic}"
        if isinstance(event, CandleEvent) and not event.closed:
            return f"events:{topic}:forming"
        return None

    def remember(self, topic: str, event: Any, key: str | None) -> None:
        """Keep what a late `events` subscriber needs to draw the panes (objects, not encoded)."""
        if key is not None:
            self.states[key] = (topic, event)
        elif isinstance(event, CandleEvent):
            self.candles.append((topic, event))
        else:
            self.history.append((topic, event))

    def encode_event(self, topic: str, event: Any) -> bytes:
        return self.encoder.encode({"channel": "events", "data": {"topic": topic, "type": type(event).__name__,
                                                                  "event": event}})

    def backlog(self) -> Iterator[tuple[bytes, str | None]]:
        """(text, key) of the remembered events, oldest first, then the newest state of each kind."""
        for topic, event in (*self.candles, *sorted(self.history, key=lambda te: _ts(te[1]))):
            yield self.encode_event(topic, event), None
        for key, (topic, event) in self.states.items():
            yield self.encode_event(topic, event), key

    def send_backlog(self, client: WsClient) -> None:
        """Queue the remembered events for a new `events` subscriber (batched in frames if it batches)."""
        if not client.batch_ms:
            for frame, key in self.backlog():
                client.offer("events", frame, key)
            return
        texts = [text for text, _ in self.backlog()]
        step = min(BATCH_MAX, self.queue_size)
        for i in range(0, len(texts), step):
            chunk = texts[i:i + step]
            client.offer_frame(b"[" + b",".join(chunk) + b"]", len(chunk))

    def on_event(self, topic: str, event: Any) -> None:
        self.events_seen += 1
        state = _IS_STATE.get(type(event))  # None: a type the `events` channel does not carry
        key = None
        if state:  # the common case (several per bar), without building the key each time
            key = self._state_keys.get(topic)
            if key is None:
                key = self._state_keys[topic] = self.state_key(topic, event) or ""
            self.states[key] = (topic, event)
        elif state is not None:
            key = self.state_key(topic, event)
            self.remember(topic, event, key)
        if not self.clients:
            return
        if state is not None and (self.subscribers["events"] or self.batched["events"]):
            self.deliver("events", self.encode_event(topic, event), key)
        if isinstance(event, Fill):
            self.on_fill(topic, event)
            return
        wanted = self.channel_of(topic, event)
        if wanted is None:
            return
        channel, data = wanted
        if self.subscribers[channel] or self.batched[channel]:
            self.deliver(channel, self.encoder.encode({"channel": channel, "data": data}))

    def deliver(self, channel: str, text: bytes, key: str | None = None) -> None:
        """The same encoded message to each single-message client of `channel` and each shared buffer."""
        for client in self.subscribers[channel]:
            client.offer(channel, text, key)
        for batch in self.batched[channel]:
            batch.add(text)

    def on_fill(self, _topic: str, fill: Fill) -> None:
        """Fills reach the `trade` channel with the round trip's realized P&L when the fill closed one."""
        if self.subscribers["trade"] or self.batched["trade"]:
            self.deliver("trade", self.encoder.encode({"channel": "trade",
                                                       "data": {"trade": fill, "pnl": self.trade_pnl(fill)}}))

    def stats(self) -> dict[str, int]:
        return {"clients": len(self.clients), "events": self.events_seen,
                "sent": self.sent_total + sum(c.sent for c in self.clients),
                "dropped": self.dropped_total + sum(c.dropped for c in self.clients),
                "coalesced": self.coalesced_total + sum(c.coalesced for c in self.clients)}

    async def drain(self, timeout: float) -> None:
        """Give the clients up to `timeout` seconds to receive what is queued (before the server closes)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for batch in self.batches.values():
            batch.flush()
        while loop.time() < deadline and any(c.pending() and not c.ws.closed for c in self.clients):
            await asyncio.sleep(0.02)

    def place(self, client: WsClient, channels: set[str], batch_ms: int) -> None:
        """Feed `client` `channels`: per message, or (batch_ms > 0) from the shared buffer of the clients
        with the same channels and interval. Buffers it leaves or joins are flushed first, so it misses
        nothing and gets nothing twice."""
        if client.batch is not None:
            old = client.batch
            old.flush()
            old.clients.discard(client)
            if not old.clients:
                del self.batches[(old.channels, old.batch_ms)]
                for name in old.channels:
                    self.batched[name].discard(old)
            client.batch = None
        for subs in self.subscribers.values():
            subs.discard(client)
        client.channels, client.batch_ms = channels, batch_ms
        if not channels:
            return
        if batch_ms == 0:
            for name in channels:
                self.subscribers[name].add(client)
            return
        key = (frozenset(channels), batch_ms)
        batch = self.batches.get(key)
        if batch is None:
            batch = self.batches[key] = Batch(key[0], batch_ms, min(BATCH_MAX, self.queue_size))
            for name in channels:
                self.batched[name].add(batch)
        batch.flush()
        batch.clients.add(client)
        client.batch = batch

    def reply(self, client: WsClient, text: bytes) -> None:
        """A reply after what was published before it: a batching client's buffer is flushed first."""
        if client.batch_ms:
            if client.batch is not None:
                client.batch.flush()
            client.offer_frame(b"[" + text + b"]", 1)
        else:
            client.offer("reply", text)

    def forget(self, client: WsClient) -> None:
        self.place(client, set(), 0)
        self.clients.discard(client)
        self.sent_total += client.sent
        self.dropped_total += client.dropped
        self.coalesced_total += client.coalesced

    async def serve(self, request: web.Request, command: Callable[[str, dict[str, Any]], Any]) -> web.WebSocketResponse:
        """Run one client connection: read its messages, reply, and pump its queue."""
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
        await ws.prepare(request)
        client = WsClient(ws, self.queue_size)
        self.clients.add(client)
        pump = asyncio.get_running_loop().create_task(client.pump())
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                reply = await self._handle(client, msg.data, command)
                self.reply(client, self.encoder.encode(reply))
        finally:
            self.forget(client)
            client.wake.set()
            pump.cancel()
        return ws

    async def _handle(self, client: WsClient, text: str, command: Callable[[str, dict[str, Any]], Any]) -> dict[str, Any]:
        try:
            msg = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return {"type": "error", "error": "not JSON", "hint": 'send e.g. {"type": "subscribe", "channels": ["price"]}'}
        if not isinstance(msg, dict):
            return {"type": "error", "error": "a message is a JSON object"}
        kind = msg.get("type")
        if kind in ("subscribe", "unsubscribe"):
            channels = msg.get("channels")
            if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
                return {"type": "error", "error": "'channels' must be a list of channel names"}
            names = set(CHANNELS) if "*" in channels else set(channels)
            unknown = sorted(names - set(CHANNELS))
            if unknown:
                return {"type": "error", "error": f"unknown channels: {', '.join(unknown)}",
                        "hint": f"channels: {', '.join(CHANNELS)}"}
            batch_ms = msg.get("batch_ms", client.batch_ms)
            if type(batch_ms) is not int or not 0 <= batch_ms <= BATCH_MS_MAX:
                return {"type": "error", "error": f"'batch_ms' must be a whole number of milliseconds, "
                                                  f"0-{BATCH_MS_MAX}", "hint": "0 (or none) sends one message a frame"}
            if kind == "subscribe":
                fresh = "events" in names - client.channels
                self.place(client, client.channels | names, batch_ms)
                if fresh:
                    self.send_backlog(client)
            else:
                self.place(client, client.channels - names, batch_ms)
            return {"type": "ack", "channels": sorted(client.channels)}
        if kind == "command":
            action = msg.get("action")
            params = msg.get("params") or {}
            if not isinstance(action, str) or not isinstance(params, dict):
                return {"type": "error", "error": "a command has a string 'action' and an object 'params'"}
            result = command(action, params)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        return {"type": "error", "error": f"unknown message type {kind!r}",
                "hint": "use subscribe, unsubscribe or command"}
