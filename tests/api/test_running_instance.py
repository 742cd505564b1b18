"""While a headless bot holds the database: WebSocket channels, metrics, other `trdr` commands, stop."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.api.conftest import REPO, Bot, candle_slice, isolated_env
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


def test_global_options_after_a_forwarded_command(bot: Bot) -> None:
    """`--db`, `--config`, `--log-file` after the command, as the local parser accepts them (README)."""
    outputs = {}
    for argv in (("sessions", "list", "--db", str(bot.db)), ("data", "list", "--db", str(bot.db)),
                 ("params", "list", "--log-file", str(bot.dir / "other.log"), "--db", str(bot.db))):
        done = subprocess.run([sys.executable, "-m", "trdr_tui", *argv], cwd=REPO, text=True, capture_output=True,
                              timeout=120, env=isolated_env(bot.dir))
        assert done.returncode == 0, (argv, done.stderr)
        outputs[argv[0]] = done.stdout
    assert "No candles stored" in outputs["data"]
    assert outputs["sessions"] == trdr(bot, "sessions", "list").stdout  # the same answer as with --db before it


def test_api_port_in_use_is_bad_input_on_stderr(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "trdr_tui", "--headless", "--feed", "replay", "--data", str(candle_slice(tmp_path, 50)),
             "--api", f"127.0.0.1:{port}", "--db", str(tmp_path / "t.duckdb")],
            cwd=REPO, text=True, capture_output=True, timeout=120, env=isolated_env(tmp_path))
    assert done.returncode == 2, done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and "--api HOST:PORT" in done.stderr and "fix:" in done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert any(e["topic"] == "engine.error" and str(port) in e["event"]["message"] for e in events)


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
