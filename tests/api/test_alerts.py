"""Alerts to a webhook: a real aiohttp receiver on loopback, retries, refusals, a full queue, a real bot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.api.conftest import Bot
from trdr_tui.api.alerts import WebhookAlerts
from trdr_tui.config import load_settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.events import FeedHealth, LogEvent
from trdr_tui.core.types import Fill, Liquidity, Side, Tick


class Receiver:
    """A webhook endpoint: answers with the next status of `statuses` (then 200), after `delay` seconds."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.delay = delay
        self.bodies: list[dict[str, Any]] = []
        self.requests = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.bodies.append(await request.json())
        return web.Response(status=status, text="ok" if status == 200 else "no")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Receiver], Any]]:
    runners: list[web.AppRunner] = []

    async def start(receiver: Receiver) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook/secret", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook/secret"
        return receiver

    yield start
    for r in runners:
        await r.cleanup()


def fill(i: int) -> Fill:
    return Fill(id=f"f{i}", order_id="o", client_order_id="c", symbol="BTC-USD", side=Side.SELL, price=20_000.5,
                size=0.01, fee=0.5, liquidity=Liquidity.TAKER, ts=1_600_000_000_000_000_000 + i)


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_alerts_are_posted_in_order_and_retried(serve: Any) -> None:
    receiver = await serve(Receiver([500, 429]))  # the first alert needs three attempts
    alerts = WebhookAlerts(receiver.url, retry_s=(0.05, 0.05, 0.05))
    bus = EventBus()
    alerts.bind(bus)
    alerts.start()
    bus.publish("fill.BTC-USD", fill(1))
    bus.publish("market.tick.BTC-USD", Tick(symbol="BTC-USD", price=1.0, size=1.0, ts=1))  # not alerted
    bus.publish("log.warning", LogEvent(ts=2, level="warning", source="engine", message="drawdown halted: 12% > 10%",
                                        fields={"halted_at": 2}))
    bus.publish("log.error", LogEvent(ts=3, level="error", source="engine", message="disk full"))
    bus.publish("log.warning", LogEvent(ts=3, level="warning", source="agents", message="slow agent"))  # not alerted
    for healthy in (False, False, True, True):  # one outage: one alert down, one restored
        bus.publish("feed.health", FeedHealth(ts=4, source="coinbase-ws", healthy=healthy, detail="socket"))
    await alerts.close()
    assert [b["kind"] for b in receiver.bodies] == ["fill", "halt", "error", "feed", "feed"]
    assert receiver.requests == 7 and alerts.sent == 5 and alerts.failed == 0
    first = receiver.bodies[0]
    assert first["text"] == first["content"]  # Slack reads `text`, Discord `content`
    assert first["text"].startswith("trdr fill: SELL 0.01 BTC-USD @ 20,000.50 (taker, fee 0.50)")
    assert [b["level"] for b in receiver.bodies[3:]] == ["warning", "info"]
    assert "DOWN" in receiver.bodies[3]["text"] and "restored" in receiver.bodies[4]["text"]


async def test_a_refusal_is_not_retried_and_failures_give_up(serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    receiver = await serve(Receiver([400, 503, 503, 503, 503]))
    alerts = WebhookAlerts(receiver.url, retry_s=(0.01, 0.01, 0.01))
    bus = EventBus()
    alerts.bind(bus)
    alerts.start()
    bus.publish("fill.BTC-USD", fill(1))  # 400: dropped at once
    bus.publish("fill.BTC-USD", fill(2))  # 503 four times: dropped after the retries
    bus.publish("fill.BTC-USD", fill(3))  # delivered
    await alerts.close()
    assert receiver.requests == 6 and alerts.failed == 2 and [b["text"][:40] for b in receiver.bodies] == [
        "trdr fill: SELL 0.01 BTC-USD @ 20,000.50"]
    assert "secret" not in caplog.text  # the URL holds the webhook's secret


async def test_a_slow_webhook_never_holds_up_the_publisher(serve: Any) -> None:
    receiver = await serve(Receiver(delay=0.5))
    alerts = WebhookAlerts(receiver.url, queue_size=10)
    bus = EventBus()
    alerts.bind(bus)
    alerts.start()
    await asyncio.sleep(0)
    for i in range(1000):  # publishing returns at once: the alerts only queue (bounded)
        bus.publish("fill.BTC-USD", fill(i))
    assert len(alerts.queue) == 10 and alerts.dropped == 990
    await alerts.close(timeout=0.1)


def test_a_webhook_url_must_be_http(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[api]\nwebhook_url = "hooks.slack.com/x"\n')
    with pytest.raises(ConfigError, match="webhook_url"):
        load_settings(cfg)


@pytest.mark.slow
async def test_a_headless_bot_posts_its_fills(serve: Any, tmp_path: Path) -> None:
    receiver = await serve(Receiver())
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[api]\nwebhook_url = "{receiver.url}"\n')
    bot = await asyncio.to_thread(Bot, tmp_path, bars=600, speed="300", extra=("--config", str(cfg)))
    try:
        config = await asyncio.to_thread(bot.get, "/api/config")
        assert config["config"]["api"]["webhook_url"] == "***"
        code = await asyncio.to_thread(bot.proc.wait, 60)
    finally:
        bot.stop()
    assert code == 0
    fills = [b for b in receiver.bodies if b["kind"] == "fill"]
    assert fills and all(b["text"].startswith("trdr fill: ") for b in fills)
