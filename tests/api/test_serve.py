"""`trdr serve`: the cockpit in a real headless Chromium (Debian's package), driven over the DevTools
protocol; the page needs the control API's token; a key pressed in the page reaches the app."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.api.conftest import candle_slice, isolated_env
from tests.conftest import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until(what: str, cond: Any, timeout: float, proc: subprocess.Popen[str] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited {proc.returncode}")
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Served:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.db = directory / "web.duckdb"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data = candle_slice(directory, 400)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trdr_tui", "--db", str(self.db), "serve", "--listen", f"127.0.0.1:{self.port}",
             "--", "--feed", "replay", "--data", str(data), "--speed", "5", "--api", "127.0.0.1:0"],
            cwd=REPO, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=isolated_env(directory))
        self.token_file = directory / "api-token"

        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_until("trdr serve to listen", up, 30, self.proc)
        self.token = self.token_file.read_text(encoding="utf-8").strip()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path)
    yield s
    s.stop()


def test_the_page_needs_the_token(served: Served) -> None:
    assert get(served.url + "/")[0] == 401
    assert get(served.url + "/?token=wrong")[0] == 401
    assert get(served.url + "/static/js/textual.js")[0] == 401
    assert get(served.url + "/", {"Authorization": "Bearer wrong"})[0] == 401
    status, page = get(served.url + "/", {"Authorization": f"Bearer {served.token}"})
    assert status == 200 and "/ws" in page
    assert get(served.url + f"/?token={served.token}")[0] == 302  # sets the cookie, drops the token from the URL
    assert served.token not in page


class Page:
    """One Chromium tab over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self.ids)
        await self.ws.send_str(json.dumps({"id": n, "method": method, "params": params}))
        while True:
            msg = json.loads((await self.ws.receive(timeout=30)).data)
            if msg.get("id") == n:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))

    async def key(self, key: str, code: str, vk: int, text: str = "") -> None:
        await self.call("Input.dispatchKeyEvent", type="keyDown", key=key, code=code, windowsVirtualKeyCode=vk,
                        text=text)
        await self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=code, windowsVirtualKeyCode=vk)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (.ci/run installs Debian's chromium package)")
async def test_the_cockpit_in_headless_chromium(served: Served, tmp_path: Path) -> None:
    debug_port = free_port()
    browser = subprocess.Popen(
        [str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'chromium'}", f"--remote-debugging-port={debug_port}",
         "--remote-debugging-address=127.0.0.1", "--window-size=1600,1000", f"{served.url}/?token={served.token}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def page_target() -> str | None:
            try:
                status, body = get(f"http://127.0.0.1:{debug_port}/json/list")
            except OSError:
                return None
            pages = [t for t in json.loads(body) if t.get("type") == "page"] if status == 200 else []
            return pages[0]["webSocketDebuggerUrl"] if pages else None

        target = await asyncio.to_thread(wait_until, "chromium's DevTools", page_target, 30)
        discovery = served.dir / "web.duckdb.api.json"
        # the tab's cockpit process started: its own control API announces itself beside the database
        info = json.loads(await asyncio.to_thread(
            wait_until, "the cockpit behind the page", lambda: discovery.is_file() and discovery.read_text(), 40))
        headers = {"Authorization": f"Bearer {served.token}"}
        async with aiohttp.ClientSession() as http:

            async def status() -> dict[str, Any]:
                async with http.get(info["url"] + "/api/status", headers=headers) as r:
                    return dict(await r.json())

            deadline = time.monotonic() + 30
            while (await status())["bars"] < 3:
                assert time.monotonic() < deadline, "the cockpit's replay did not start"
                await asyncio.sleep(0.2)
            assert not (await status())["paused"]
            async with http.ws_connect(target, max_msg_size=0) as ws:
                page = Page(ws)
                await asyncio.sleep(1.0)  # the first frames reach the page
                shot = await page.call("Page.captureScreenshot", format="png")
                png = base64.b64decode(shot["data"])
                (tmp_path / "cockpit.png").write_bytes(png)
                assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a drawn page, not a blank one
                drawn = await page.call("Runtime.evaluate", returnByValue=True,
                                        expression="document.querySelectorAll('.xterm-screen').length")
                assert drawn["result"]["value"] == 1  # textual-serve's terminal, fed by the cockpit process
                # keys reach the app through xterm.js's input element (as when the user clicks the page)
                await page.call("Runtime.evaluate", expression="document.querySelector('.xterm-helper-textarea')"
                                                               ".focus()")
                await page.key(" ", "Space", 32, " ")  # space: pause
                deadline = time.monotonic() + 15
                while not (await status())["paused"]:
                    assert time.monotonic() < deadline, "the key press in the page did not pause the engine"
                    await asyncio.sleep(0.2)
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
