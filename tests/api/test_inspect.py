"""`trdr inspect`: the real CLI against a real headless bot on the same database."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.api.conftest import Bot, isolated_env
from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trading_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    b = Bot(tmp_path_factory.mktemp("inspect"), bars=3000, speed="60")
    b.wait_for("a closed round trip", lambda s: s["fills"] >= 2 and b.get("/api/trades")["total"] >= 1)
    yield b
    b.stop()


def inspect(bot: Bot, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trdr_tui", "--db", str(bot.db), "inspect", *args], cwd=REPO,
                          env=isolated_env(bot.dir), capture_output=True, text=True, timeout=60)


def test_an_orders_trace_runs_from_creation_to_fill(trading_bot: Bot) -> None:
    order_id = trading_bot.get("/api/trades")["trades"][0]["exit_order_id"]
    out = inspect(trading_bot, "--json", "order", order_id)
    assert out.returncode == 0, out.stderr
    trace = json.loads(out.stdout)
    kinds = [r["kind"] for r in trace["timeline"]]
    assert kinds[0] == "created" and "fill" in kinds and trace["order"]["status"] == "FILLED"
    assert [r["ts"] for r in trace["timeline"]] == sorted(r["ts"] for r in trace["timeline"])
    text = inspect(trading_bot, "order", order_id)
    assert text.returncode == 0 and f"order {order_id}" in text.stdout and "→ FILLED" in text.stdout
    missing = inspect(trading_bot, "order", "no-such-order")
    assert missing.returncode == 2 and "404" in missing.stderr and "no order 'no-such-order'" in missing.stderr


def test_decisions_and_agent_profiles(trading_bot: Bot) -> None:
    out = inspect(trading_bot, "--json", "decisions", "--limit", "5")
    assert out.returncode == 0, out.stderr
    decisions = json.loads(out.stdout)["decisions"]
    assert 1 <= len(decisions) <= 5 and all(d["action"] != "HOLD" and d["signals"] for d in decisions)
    text = inspect(trading_bot, "decisions", "--limit", "1000")  # (the bot goes on deciding meanwhile)
    assert text.returncode == 0 and decisions[0]["signals"][0]["agent_id"] in text.stdout
    # piped, every reason is whole (they were cut at 70 and 100 characters)
    reasons = [s["reasoning"] for d in decisions for s in d["signals"]] + [d["reasoning"] for d in decisions]
    assert max(map(len, reasons)) > 70 and all(r in text.stdout for r in reasons)
    after = inspect(trading_bot, "decisions", "--limit", "2", "--json")  # --json after the subcommand too
    assert after.returncode == 0 and len(json.loads(after.stdout)["decisions"]) == 2, after.stderr
    profile = inspect(trading_bot, "--json", "agent")
    agents = json.loads(profile.stdout)["agents"]
    assert {a["id"] for a in agents} == {a["id"] for a in trading_bot.get("/api/agents")["agents"]}
    assert any(a["mean_ms"] is not None for a in agents)  # time per call is measured
    one = inspect(trading_bot, "agent", agents[0]["id"])
    assert one.returncode == 0 and one.stdout.count("\n") == 2 and agents[0]["id"] in one.stdout
    # memory: the next calls of one agent measured with tracemalloc while the replay goes on
    memory = inspect(trading_bot, "--json", "agent", "momentum", "--memory", "--calls", "3", "--wait", "30")
    assert memory.returncode == 0, memory.stderr
    (row,) = json.loads(memory.stdout)["agents"]
    assert row["mem_samples"] == 3 and row["mem_pending"] == 0 and row["mem_peak_kib"] > 0, row
    assert row["mem_peak_max_kib"] >= row["mem_peak_kib"] and row["mem_retained_kib"] is not None
    table = inspect(trading_bot, "agent", "momentum")
    assert table.returncode == 0 and "peak KiB" in table.stdout and f"{row['mem_peak_kib']:,.1f}" in table.stdout
    unknown = inspect(trading_bot, "agent", "nope")
    assert unknown.returncode == 2 and "no agent 'nope'" in unknown.stderr
    assert inspect(trading_bot, "decisions", "--limit", "0").returncode == 2


async def test_the_attached_cockpits_inspector_reads_the_bot(trading_bot: Bot) -> None:
    from trdr_tui.api.client import RemoteEngine
    from trdr_tui.config import load_settings
    from trdr_tui.tui.inspection import RemoteInspection, inspection_for

    remote = await RemoteEngine.connect(trading_bot.url, trading_bot.token, stop_remote=False)
    try:
        source = inspection_for(remote, load_settings(None))
        assert isinstance(source, RemoteInspection)
        order_id = trading_bot.get("/api/trades")["trades"][0]["exit_order_id"]
        trace = await source.order_trace(order_id)
        assert trace is not None and trace["order"]["id"] == order_id and trace["timeline"][0]["kind"] == "created"
        assert await source.order_trace("no-such-order") is None
        decisions = await source.decisions(3)
        assert 1 <= len(decisions) <= 3 and all(d["signals"] for d in decisions)
        assert [a["id"] for a in await source.agents()] == [a["id"] for a in trading_bot.get("/api/agents")["agents"]]
    finally:
        await remote.stop()
