"""Alerts to a webhook (`[api] webhook_url`): fills, risk halts, errors and feed outages, as JSON.

    alerts = WebhookAlerts(url)          # started with the control API, bound to the engine's bus
    alerts.bind(engine.bus); alerts.start()
    ...
    await alerts.close()                 # sends what is queued (bounded wait), then stops

A message is `{"text": ..., "content": ..., "kind", "level", "ts"}`: `text` is what a Slack incoming
webhook shows, `content` what a Discord webhook shows; other receivers read `kind` (`fill`, `halt`,
`error`, `feed`) and `level`. The engine never waits: an event only appends to a bounded queue
(`QUEUE_SIZE`, the oldest dropped and counted beyond it); one task posts the queue in order. A post
that fails with a connection error, a timeout, 429 or 5xx is retried after `RETRY_S` (then dropped and
counted); any other 4xx is dropped at once. The URL (it holds the webhook's secret) never reaches a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import aiohttp

from trdr_tui.core.bus import EventBus, Subscription
from trdr_tui.core.events import FeedHealth, LogEvent
from trdr_tui.core.timefmt import iso_utc
from trdr_tui.core.types import Fill

log = logging.getLogger("trdr.api.alerts")
QUEUE_SIZE = 200
RETRY_S = (1.0, 2.0, 4.0)  # waits before the 2nd, 3rd and 4th attempt
TIMEOUT = aiohttp.ClientTimeout(total=10)


def alert_of(topic: str, event: Any) -> dict[str, Any] | None:
    """The webhook message for an event, or None when the event is not alerted."""
    if isinstance(event, Fill):
        text = (f"trdr fill: {event.side.value} {event.size:g} {event.symbol} @ {event.price:,.2f} "
                f"({event.liquidity.value.lower()}, fee {event.fee:,.2f})")
        kind, level, ts = "fill", "info", event.ts
    elif isinstance(event, LogEvent) and "halted_at" in event.fields:
        kind, level, ts, text = "halt", "warning", event.ts, f"trdr risk: {event.message}"
    elif isinstance(event, LogEvent) and event.level == "error":
        kind, level, ts, text = "error", "error", event.ts, f"trdr error ({event.source}): {event.message}"
    elif isinstance(event, FeedHealth):
        state = "restored" if event.healthy else "DOWN"
        kind, level, ts = "feed", "info" if event.healthy else "warning", event.ts
        text = f"trdr feed {event.source} {state}: {event.detail}"
    else:
        return None
    text = f"{text} [{iso_utc(ts)}]"
    return {"text": text, "content": text, "kind": kind, "level": level, "ts": ts}


class WebhookAlerts:
    """Posts alerts for the events of the bound bus to `url` (see the module docstring)."""

    def __init__(self, url: str, *, queue_size: int = QUEUE_SIZE, retry_s: tuple[float, ...] = RETRY_S) -> None:
        self.url = url
        self.queue: deque[dict[str, Any]] = deque(maxlen=queue_size)
        self.retry_s = retry_s
        self.sent = 0
        self.failed = 0  # given up after retries, or refused (4xx)
        self.dropped = 0  # pushed out of a full queue
        self._feed_down: set[str] = set()
        self._wake = asyncio.Event()
        self._bus: EventBus | None = None
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._posting = False

    def bind(self, bus: EventBus) -> None:
        if bus is self._bus:
            return
        if self._bus is not None and self._sub is not None:
            self._bus.unsubscribe(self._sub)
        self._bus = bus
        self._sub = bus.subscribe("*", self.on_event)

    def on_event(self, topic: str, event: Any) -> None:
        if isinstance(event, FeedHealth):  # an outage and its end, not every healthy heartbeat
            if event.healthy and event.source not in self._feed_down:
                return
            if not event.healthy and event.source in self._feed_down:
                return
            (self._feed_down.discard if event.healthy else self._feed_down.add)(event.source)
        message = alert_of(topic, event)
        if message is None:
            return
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
        self.queue.append(message)
        self._wake.set()

    def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.queue:
                self._posting = True
                try:
                    await self._post(self.queue.popleft())
                finally:
                    self._posting = False

    async def _post(self, message: dict[str, Any]) -> None:
        assert self._session is not None
        for attempt in range(len(self.retry_s) + 1):
            if attempt:
                await asyncio.sleep(self.retry_s[attempt - 1])
            try:
                async with self._session.post(self.url, json=message) as resp:
                    if resp.status < 300:
                        self.sent += 1
                        return
                    if resp.status != 429 and resp.status < 500:
                        log.warning("the alert webhook refused a %s alert with HTTP %d", message["kind"], resp.status)
                        break
                    why = f"HTTP {resp.status}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                why = type(exc).__name__
            log.info("alert webhook attempt %d failed (%s)", attempt + 1, why)
        else:
            log.warning("the alert webhook failed %d times; a %s alert was dropped", len(self.retry_s) + 1,
                        message["kind"])
        self.failed += 1

    async def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (waiting at most `timeout` seconds), then stop."""
        if self._bus is not None and self._sub is not None:
            self._bus.unsubscribe(self._sub)
        self._bus = self._sub = None
        if self._task is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while (self.queue or self._posting) and loop.time() < deadline:
                await asyncio.sleep(0.05)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
