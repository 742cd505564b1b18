"""`trdr attach`: the cockpit (pilot) driving a real headless bot on loopback through its control API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Bot
from trdr_tui.api.client import RemoteEngine
from trdr_tui.commands.attach import resolve
from trdr_tui.config import load_settings
from trdr_tui.core.errors import ConfigError, StopError
from trdr_tui.tui.app import make_app
from trdr_tui.tui.widgets.agents import AgentTable

pytestmark = pytest.mark.slow


async def until(what: str, predicate: Callable[[], Any], pilot: Any, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def status(bot: Bot) -> dict[str, Any]:
    return await asyncio.to_thread(bot.get, "/api/status")


async def remote_weights(bot: Bot) -> dict[str, float]:
    agents = (await asyncio.to_thread(bot.get, "/api/agents"))["agents"]
    return {a["id"]: a["base_weight"] for a in agents}


async def test_the_attached_cockpit_shows_the_bot_and_pauses_reweights_and_stops_it(tmp_path: Path) -> None:
    bot = Bot(tmp_path, bars=3000, speed="30")
    try:
        remote = await RemoteEngine.connect(bot.url, bot.token)
        app = make_app(remote.settings_for(load_settings(None)), remote)
        async with app.run_test(size=(120, 40)) as pilot:
            main = app.main
            # the panes fill from the bot's events: bars (with the recent history first), grid, equity
            await until("candles on the chart", lambda: len(main.chart.candles) >= 20, pilot)
            await until("the status bar's equity", lambda: (main.status.equity or 0) > 0, pilot)
            assert main.status.mode == "paper" and app.engine.symbol == (await status(bot))["symbol"]

            await pilot.press("space")
            await until("the bot paused", lambda: app.engine.paused, pilot)
            assert (await status(bot))["paused"] is True
            await pilot.press("space")
            await pilot.pause(0.3)
            assert (await status(bot))["paused"] is False

            main.query_one(AgentTable).focus()
            await pilot.press("down")
            agent = main.agents.selected
            assert agent is not None
            before = (await remote_weights(bot))[agent]
            await pilot.press("plus")
            await pilot.pause(0.3)
            assert (await remote_weights(bot))[agent] == pytest.approx(before + 0.1)
            assert app.engine.agent_base_weights()[agent] == pytest.approx(before + 0.1)

            await pilot.press("q")  # stops the remote bot: it checkpoints and exits 0
            code = await asyncio.to_thread(bot.proc.wait, 60)
        assert code == 0
        assert app.return_code == 0 and app.engine_error is None
    finally:
        bot.stop()


async def test_detach_on_quit_leaves_the_bot_running_and_a_wrong_token_is_refused(tmp_path: Path) -> None:
    bot = Bot(tmp_path, bars=3000, speed="30")
    try:
        with pytest.raises(ConfigError, match="refused the API token"):
            await RemoteEngine.connect(bot.url, "not-the-token")
        remote = await RemoteEngine.connect(bot.url, bot.token, stop_remote=False)
        app = make_app(remote.settings_for(load_settings(None)), remote)
        async with app.run_test(size=(120, 40)) as pilot:
            await until("candles on the chart", lambda: len(app.main.chart.candles) > 0, pilot)
            await pilot.press("q")
            await until("the cockpit closed", lambda: app.return_code is not None, pilot)
        await asyncio.sleep(0.5)
        assert bot.proc.poll() is None and (await status(bot))["stopped"] is False
    finally:
        bot.stop()
    with pytest.raises(StopError, match="cannot reach trdr"):
        await RemoteEngine.connect(bot.url, bot.token)


def test_attach_resolves_the_url_and_token_and_refuses_a_bad_url(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from trdr_tui.commands.context import CliContext

    def ctx(url: str | None, token_file: Path | None = None) -> CliContext:
        return CliContext(argparse.Namespace(url=url, token_file=token_file, db=tmp_path / "none.duckdb",
                                             config=None, overrides=None, detach_on_quit=False))

    with pytest.raises(ConfigError, match="not an http"):
        resolve(ctx("127.0.0.1:8765"))
    with pytest.raises(StopError, match="no trdr instance is running"):
        resolve(ctx(None))
    token = tmp_path / "tok"
    token.write_text("abc\n")
    assert resolve(ctx("http://127.0.0.1:1", token)) == ("http://127.0.0.1:1", "abc")
    monkeypatch.setenv("TRDR_API_TOKEN", "from-env")
    assert resolve(ctx("http://127.0.0.1:1")) == ("http://127.0.0.1:1", "from-env")
