"""While a headless bot holds the database: WebSocket channels, metrics, other `trdr` commands, stop."""

from __future__ import annotations

import subprocess
import sys

import aiohttp

from tests.api.conftest import REPO, Bot, isolated_env
from trdr_tui.api.metrics import metric_value


async def test_websocket_channels_and_commands(bot: Bot) -> None:
    headers = {"Authorization": f"Bearer {bot.token}"}
    for refused in ({}, {"Authorization": "Bearer wrong"}):
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(bot.url + "/api/ws", headers=refused):
                raise AssertionError("a WebSocket without the token was accepted")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 401
    async with aiohttp.ClientSession() as session, session.ws_connect(bot.url + "/api/ws", headers=headers) as ws:
        await ws.send_json({"type": "subscribe", "channels": ["moon"]})
        seen: dict[str, dict] = {}
        reply = None
        while reply is None:
            msg = await ws.receive_json(timeout=10)
            if msg.get("type"):
                reply = msg
        assert reply["type"] == "error" and "moon" in reply["error"]
        await ws.send_json({"type": "subscribe", "channels": ["*"]})
        while not {"price", "performance"} <= seen.keys():
            msg = await ws.receive_json(timeout=10)
            if "channel" in msg:
                seen[msg["channel"]] = msg["data"]
        assert seen["price"]["symbol"] == "BTC-USD" and seen["price"]["price"] > 0
        assert seen["performance"]["metrics"]["equity"] > 0
        await ws.send_json({"type": "command", "action": "pause", "params": {}})
        ack = None
        while ack is None:
            msg = await ws.receive_json(timeout=10)
            if msg.get("type") in ("ack", "error"):
                ack = msg
        assert ack["type"] == "ack" and ack["result"]["status"]["paused"] is True
    assert bot.get("/api/status")["paused"] is True
    bot.call("POST", "/api/trading/start")


def test_metrics_count_trades_after_a_replay(bot: Bot) -> None:
    bot.wait_for("fills", lambda s: s["fills"] >= 6)
    status, text = bot.call("GET", "/metrics")
    assert status == 200
    fills = bot.get("/api/status")["fills"]
    assert metric_value(text, "trades_total") >= 6
    assert metric_value(text, "trades_total") <= fills
    assert metric_value(text, "trades_total", {"side": "buy"}) > 0
    assert metric_value(text, "agent_latency_seconds_count") > 0
    assert metric_value(text, "agent_confidence_count", {"agent_id": "volatility"}) > 0
    assert metric_value(text, "process_resident_memory_bytes") > 10_000_000
    assert metric_value(text, "trdr_uptime_seconds") > 0
    for name in ("trading_pnl_total", "trading_win_rate", "trading_max_drawdown", "execution_slippage_bps_count",
                 "execution_fill_seconds_count", "feed_healthy"):
        assert f"\n{name}" in text or text.startswith(name), name


def trdr(bot: Bot, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trdr_tui", "--db", str(bot.db), *args], cwd=REPO, text=True,
                          capture_output=True, timeout=120, env=isolated_env(bot.dir))


def test_other_commands_work_while_the_bot_runs(bot: Bot) -> None:
    status = trdr(bot, "status")
    assert status.returncode == 0, status.stderr
    assert "paper BTC-USD" in status.stdout and "equity" in status.stdout
    listed = trdr(bot, "data", "list")
    assert listed.returncode == 0, listed.stderr
    assert "No candles stored" in listed.stdout
    sessions = trdr(bot, "sessions", "list")
    assert sessions.returncode == 0, sessions.stderr
    params = trdr(bot, "params", "list")
    assert params.returncode == 0, params.stderr
    agents = trdr(bot, "agents", "--json")
    assert agents.returncode == 0 and '"momentum"' in agents.stdout
    write = trdr(bot, "params", "save", "mine", "--tag", "x")
    assert write.returncode == 2  # refused with what to do, like any bad-input refusal (README exit codes)
    assert f"pid {bot.proc.pid}" in write.stderr and "stop it first" in write.stderr


def test_stop_through_the_api_ends_the_run_cleanly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    b = Bot(tmp_path, bars=600, speed="20")
    try:
        status, ack = b.call("POST", "/api/trading/stop")
        assert status == 202 and "stopping" in ack["detail"]
        assert b.proc.wait(timeout=60) == 0
        assert not b.discovery.exists()
        none = trdr(b, "status")
        assert none.returncode == 2 and "no trdr instance" in none.stderr  # NotAvailable: exit 2 (README)
    finally:
        b.stop()
