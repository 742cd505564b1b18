"""Coinbase Advanced Trade WebSocket connection: subscribe, watch liveness, reconnect.

One `WsConnection` keeps one socket alive for a set of channels:

- on connect it sends one subscribe message per channel (always including `heartbeats`) within the
  5 s the server allows, each with a freshly signed JWT when a signer is given (required for `user`);
- it watches `sequence_num` (a per-connection counter, +1 per message): a gap means messages were
  lost, so the socket is dropped and a new one is opened and resubscribed;
- silence longer than `silence_s` (heartbeats arrive every second) also means a dead connection;
- reconnects back off exponentially from 1 s to 30 s with jitter, and reset after a healthy stretch.

Messages are handed to `on_message(envelope)`; health changes to `on_health(healthy, detail)`.
Each drop is an operator event (`core/opevents.py`): a warning, or an error when the server refused the
subscription's JWT ("authentication failure": a rejected key, or this machine's clock off).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import msgspec

from trdr_tui.core.opevents import OperatorEvents
from trdr_tui.exchange.coinbase_auth import JwtSigner
from trdr_tui.exchange.coinbase_rest import RetryPolicy

SUBSCRIBE_DEADLINE_S = 5.0
RECONNECT = RetryPolicy(max_retries=1_000_000, initial_s=1.0, factor=2.0, cap_s=30.0, jitter=0.10)


class Envelope(msgspec.Struct, kw_only=True):
    """Every message: data channels carry `events`; errors carry `type: error` and `message`."""

    channel: str = ""
    sequence_num: int = -1
    timestamp: str = ""
    client_id: str = ""
    events: list[Any] = msgspec.field(default_factory=list)
    type: str = ""
    message: str = ""


_decoder = msgspec.json.Decoder(Envelope)


class WsDead(Exception):
    """The connection must be replaced (gap, silence, server error, close)."""


class WsConnection:
    def __init__(
        self,
        url: str,
        channels: Sequence[str],
        product_ids: Sequence[str],
        *,
        on_message: Callable[[Envelope], None],
        on_health: Callable[[bool, str], None] | None = None,
        signer: JwtSigner | None = None,
        silence_s: float = 5.0,
        reconnect: RetryPolicy = RECONNECT,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
        events: OperatorEvents | None = None,
    ) -> None:
        self.url = url
        self.events = events or OperatorEvents()
        self.channels = ["heartbeats", *[c for c in channels if c != "heartbeats"]]
        self.product_ids = list(product_ids)
        self.on_message = on_message
        self.on_health = on_health
        self.signer = signer
        self.silence_s = silence_s
        self.reconnect = reconnect
        self._session = session
        self._own_session = session is None
        self._rng = rng or random.Random()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stopping = False
        self.healthy = False
        self.connects = 0
        self.gaps = 0
        self.silences = 0
        self.messages = 0
        self.recv_ns = 0  # perf_counter_ns when the message being handled arrived (latency measurements)
        self.last_error = ""
        self.auth_failures = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and keep reconnecting until `stop()`."""
        attempt = 0
        while not self._stopping:
            delivered = False
            try:
                delivered = await self._session_once()
            except (WsDead, aiohttp.ClientError, OSError, TimeoutError) as exc:
                self.last_error = str(exc) or type(exc).__name__
                if "authentication" in self.last_error:
                    self.auth_failures += 1
                    self.events.emit(f"ws.auth:{self.url}", "error", "exchange",
                                     f"websocket {self.url}: the exchange refused the API key's token "
                                     f"({self.last_error}); check the key and this machine's clock",
                                     channels=",".join(self.channels))
                else:
                    self.events.emit(f"ws.drop:{self.url}", "warning", "exchange",
                                     f"websocket {self.url}: {self.last_error}; reconnecting")
            finally:
                self._set_health(False, self.last_error or "disconnected")
            if self._stopping:
                break
            attempt = 0 if delivered else attempt + 1
            await asyncio.sleep(self.reconnect.delay(min(attempt, 30), self._rng))

    async def stop(self) -> None:
        self._stopping = True
        ws = self._ws
        if ws is not None and not ws.closed:
            await ws.close()
        if self._session is not None and self._own_session:
            await self._session.close()
            self._session = None

    def _set_health(self, healthy: bool, detail: str) -> None:
        if healthy != self.healthy:
            self.healthy = healthy
            if self.on_health is not None:
                self.on_health(healthy, detail)

    # -- one connection --------------------------------------------------------------------------

    async def _session_once(self) -> bool:
        """One socket from connect to death. Returns True when it delivered data (resets backoff)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        self.last_error = ""
        async with self._session.ws_connect(self.url, heartbeat=30.0, max_msg_size=10 * 1024 * 1024,
                                            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0)) as ws:
            self._ws = ws
            self.connects += 1
            await asyncio.wait_for(self._subscribe(ws), SUBSCRIBE_DEADLINE_S)
            return await self._read(ws)

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        for channel in self.channels:
            msg: dict[str, Any] = {"type": "subscribe", "product_ids": self.product_ids, "channel": channel}
            if self.signer is not None:
                msg["jwt"] = self.signer.ws_jwt()  # fresh for every subscribe
            await ws.send_str(msgspec.json.encode(msg).decode())

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        last_seq: int | None = None
        delivered = False
        while not self._stopping:
            try:
                msg = await ws.receive(timeout=self.silence_s)
                self.recv_ns = time.perf_counter_ns()
            except TimeoutError:
                self.silences += 1
                raise WsDead(f"no message for {self.silence_s:.1f}s (heartbeats silent)") from None
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                raise WsDead(f"closed by server ({ws.close_code})")
            if msg.type == aiohttp.WSMsgType.ERROR:
                raise WsDead(f"socket error: {ws.exception()}")
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                env = _decoder.decode(msg.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                self.events.emit(f"ws.undecodable:{self.url}", "warning", "exchange",
                                 f"websocket {self.url}: undecodable message skipped")
                continue
            if env.type == "error":
                raise WsDead(f"server error: {env.message}")
            if env.sequence_num >= 0:
                if last_seq is not None and env.sequence_num != last_seq + 1:
                    self.gaps += 1
                    raise WsDead(f"sequence gap: {last_seq} -> {env.sequence_num}")
                last_seq = env.sequence_num
            self.messages += 1
            if env.channel != "subscriptions":
                delivered = True
                self._set_health(True, "streaming")
            self.on_message(env)
        return delivered

    async def drop(self) -> None:
        """Close the current socket (tests, or a consumer that saw inconsistent data)."""
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()
