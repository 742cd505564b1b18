"""A key the exchange rejects (HTTP 401) stops `trdr` before paper or live starts, with the same clear
error as `trdr account`: which key, where it came from, how to fix it; exit code 2 (bad configuration).
Real `trdr` processes against the fake exchange run on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from trdr_tui.exchange.coinbase_auth import generate_ec_key_pem


def unknown_key(key_file: Path, tmp_path: Path) -> Path:
    """A well-formed CDP key file the fake does not accept (same key name, another private key)."""
    other = tmp_path / "rejected.json"
    other.write_text(json.dumps({"name": json.loads(key_file.read_text())["name"],
                                 "privateKey": generate_ec_key_pem()}))
    other.chmod(0o600)
    return other


@pytest.mark.parametrize("mode", [[], ["--live"]], ids=["paper", "live"])
def test_a_rejected_key_stops_paper_and_live_at_start(standalone_fake: tuple[str, Path], tmp_path: Path,
                                                      mode: list[str]) -> None:
    rest, key_file = standalone_fake
    rejected = unknown_key(key_file, tmp_path)
    env = {**os.environ, "TRDR_COINBASE_REST_URL": rest, "TRDR_COINBASE_KEY_FILE": str(rejected),
           "TRDR_COINBASE_WS_URL": rest.replace("http", "ws") + "/ws"}
    for name in ("TRDR_COINBASE_API_KEY", "TRDR_COINBASE_API_SECRET"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-m", "trdr_tui", "--db", str(tmp_path / "t.duckdb"), "--log-file",
                           str(tmp_path / "l.log"), "--no-api", "--headless", *mode],
                          cwd=REPO, env=env, text=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr + proc.stdout[-2000:]
    err = proc.stderr
    assert "Coinbase rejected the API key organizations/" in err and "401" in err
    assert f"TRDR_COINBASE_KEY_FILE {rejected}" in err  # where the key came from
    assert "fix:" in err and "clock" in err and "trdr account" in err
    assert '"CandleEvent"' not in proc.stdout  # nothing started
    secret = json.loads(rejected.read_text())["privateKey"]
    assert all(chunk not in err + proc.stdout for chunk in secret.splitlines()[1:-1])


def test_account_gives_the_same_error(standalone_fake: tuple[str, Path], tmp_path: Path) -> None:
    rest, key_file = standalone_fake
    rejected = unknown_key(key_file, tmp_path)
    env = {**os.environ, "TRDR_COINBASE_REST_URL": rest, "TRDR_COINBASE_KEY_FILE": str(rejected)}
    proc = subprocess.run([sys.executable, "-m", "trdr_tui", "--db", str(tmp_path / "t.duckdb"), "account"],
                          cwd=REPO, env=env, text=True, capture_output=True, timeout=60)
    assert proc.returncode == 2
    assert "Coinbase rejected the API key" in proc.stderr and f"TRDR_COINBASE_KEY_FILE {rejected}" in proc.stderr
    assert proc.stderr.count("rejected the API key") == 1  # one clear error, no log noise beside it
