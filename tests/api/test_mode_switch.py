"""Switching mode through the control API of a real headless bot on the fake exchange (paper ↔ live):
the same stop-checkpoint-rebuild the cockpit's `m` runs, live only with the confirmation field and
credentials."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Bot, isolated_env
from tests.conftest import HOURLY_CDD, REPO


@pytest.fixture
def fake_exchange(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`python -m trdr_testkit.fake_coinbase` stepping fast: the environment that points trdr at it."""
    key = tmp_path / "key.json"
    proc = subprocess.Popen([sys.executable, "-m", "trdr_testkit.fake_coinbase", "--key-file", str(key),
                             "--data", str(HOURLY_CDD), "--bars", "300", "--step-interval", "0.05",
                             "--accelerate", "900"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY"), line + proc.stdout.read()
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        yield {"TRDR_COINBASE_REST_URL": fields["rest"], "TRDR_COINBASE_WS_URL": fields["ws"],
               "TRDR_COINBASE_USER_WS_URL": fields["user_ws"], "TRDR_COINBASE_KEY_FILE": str(key)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class PaperBot(Bot):
    """`trdr --headless --api 127.0.0.1:0` in paper mode on the fake exchange's market data."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.launch(directory, [], {**isolated_env(directory), **env})


def test_headless_switches_paper_to_live_and_back(fake_exchange: dict[str, str], tmp_path: Path) -> None:
    bot = PaperBot(tmp_path, fake_exchange)
    try:
        paper = bot.wait_for("a paper bar", lambda s: s["mode"] == "paper" and s["bars"] >= 1)
        # live needs the explicit confirmation field; a refused request changes nothing
        status, body = bot.call("PUT", "/api/trading/mode", {"mode": "live"})
        assert status == 403 and "confirmation" in body["error"]
        assert bot.get("/api/status")["run_id"] == paper["run_id"]

        status, body = bot.call("PUT", "/api/trading/mode", {"mode": "live", "confirm": "live"})
        assert status == 200, body
        live = body["status"]
        assert live["mode"] == "live" and live["run_id"] != paper["run_id"] and not live["stopped"]
        assert json.loads(bot.discovery.read_text(encoding="utf-8"))["mode"] == "live"
        bot.wait_for("a live bar", lambda s: s["mode"] == "live" and s["bars"] >= 1 and s["running"])
        # the risk limits are the config's in the new engine too: a config put cannot lift them
        config = bot.get("/api/config")["config"]
        lifted = {**config, "risk": {**config["risk"], "max_position": 1.0}}
        status, body = bot.call("PUT", "/api/config", {"config": lifted})
        assert status == 409 and "risk.max_position" in body["error"]

        status, body = bot.call("PUT", "/api/trading/mode", {"mode": "paper"})
        assert status == 200, body
        assert body["status"]["mode"] == "paper" and body["status"]["run_id"] != live["run_id"]
        bot.wait_for("paper again", lambda s: s["mode"] == "paper" and s["running"] and s["bars"] >= 1)
    finally:
        code = bot.stop()
    assert code == 0
    assert not bot.discovery.exists()  # the instance is gone
