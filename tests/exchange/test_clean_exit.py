"""A paper session on the (fake) exchange ends without leaking its HTTP session: no aiohttp
"Unclosed client session" warning, no ResourceWarning, on a clean exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import HOURLY_CDD, REPO


@pytest.fixture
def fake_urls(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`python -m trdr_testkit.fake_coinbase` stepping a bar every 0.2 s: its REST and WebSocket URLs."""
    proc = subprocess.Popen([sys.executable, "-m", "trdr_testkit.fake_coinbase", "--key-file",
                             str(tmp_path / "key.json"), "--data", str(HOURLY_CDD), "--bars", "300",
                             "--step-interval", "0.05", "--accelerate", "900"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY"), line + proc.stdout.read()
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        yield {"TRDR_COINBASE_REST_URL": fields["rest"], "TRDR_COINBASE_WS_URL": fields["ws"],
               "TRDR_COINBASE_USER_WS_URL": fields["user_ws"]}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_paper_session_exits_without_unclosed_sessions(fake_urls: dict[str, str], tmp_path: Path) -> None:
    env = {**os.environ, **fake_urls, "TRDR_LOG_LEVEL": "debug", "PYTHONWARNINGS": "always::ResourceWarning"}
    env.pop("TRDR_COINBASE_KEY_FILE", None)
    proc = subprocess.Popen([sys.executable, "-X", "dev", "-m", "trdr_tui", "--db", str(tmp_path / "t.duckdb"),
                             "--log-file", str(tmp_path / "l.log"), "--no-api", "--headless"],
                            cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the feed has reached the exchange over REST and WebSocket
        line = proc.stdout.readline()
        if not line or '"CandleEvent"' in line:
            break
    proc.send_signal(signal.SIGINT)
    out = proc.stdout.read()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err + out[-2000:]
    assert '"CandleEvent"' in line, err
    assert "Unclosed client session" not in err and "Unclosed connector" not in err, err
    assert "ResourceWarning" not in err, err
