"""A real headless bot (`trdr --headless --feed replay`) in a subprocess, with its control API on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HOURLY_CDD, REPO


def candle_slice(directory: Path, bars: int) -> Path:
    lines = HOURLY_CDD.read_text(encoding="utf-8").splitlines()
    path = directory / f"slice{bars}.cdd.csv"
    path.write_text("\n".join(lines[: bars + 2]) + "\n", encoding="utf-8")
    return path


def isolated_env(directory: Path) -> dict[str, str]:
    """The environment without TRDR_* variables, with config and data homes inside `directory`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRDR_")}
    env["XDG_CONFIG_HOME"] = str(directory / "config")
    env["XDG_DATA_HOME"] = str(directory / "data")
    return env


class Bot:
    """One `trdr --headless` process; `call` speaks HTTP to its API with (or without) its token."""

    def __init__(self, directory: Path, *, bars: int = 3000, speed: str = "40", extra: tuple[str, ...] = ()) -> None:
        self.data = candle_slice(directory, bars)
        self.launch(directory, ["--feed", "replay", "--data", str(self.data), "--speed", speed, *extra],
                    isolated_env(directory))

    def launch(self, directory: Path, args: list[str], env: dict[str, str]) -> None:
        """Start `trdr --db DIR/bot.duckdb --headless --api 127.0.0.1:0 ARGS` and wait for its discovery file."""
        self.dir = directory
        self.db = directory / "bot.duckdb"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trdr_tui", "--db", str(self.db), "--headless", "--api", "127.0.0.1:0", *args],
            cwd=REPO, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self.discovery = directory / "bot.duckdb.api.json"
        deadline = time.monotonic() + 60
        while not self.discovery.is_file():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bot did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
            time.sleep(0.05)
        info = json.loads(self.discovery.read_text(encoding="utf-8"))
        self.url = info["url"]
        self.token_file = Path(info["token_file"])
        self.token = self.token_file.read_text(encoding="utf-8").strip()

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = "",
             raw: bytes | None = None) -> tuple[int, Any]:
        """(status, decoded JSON or text); token "" means the bot's own, None means no header."""
        headers = {"Content-Type": "application/json"}
        use = self.token if token == "" else token
        if use is not None:
            headers["Authorization"] = f"Bearer {use}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, payload, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            status, payload, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
        return status, json.loads(payload) if "json" in ctype else payload.decode()

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return body

    def wait_for(self, what: str, predicate: Any, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.get("/api/status")
            if predicate(status):
                return status
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.stderr:
                self.proc.stderr.close()


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    b = Bot(tmp_path_factory.mktemp("bot"))
    yield b
    b.stop()
