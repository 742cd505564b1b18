"""The cockpit shows Claude's spend, calls and cache hits in the ai_pattern agent's row (against the
local fake Anthropic API; the real engine replays real candles in paper mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.tui.conftest import CockpitFactory, settle
from trdr_testkit.fake_anthropic import FakeAnthropic
from trdr_tui.config import load_settings
from trdr_tui.tui.widgets.agents import AgentTable

KEY = "sk-ant-cockpit-test"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    f = FakeAnthropic(api_key=KEY)
    await f.start()
    yield f
    await f.stop()


async def test_agents_pane_shows_the_ai_agents_spend_and_cache_hits(
        make_cockpit: CockpitFactory, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    settings = load_settings(overrides={
        "agents.enabled": ["volatility", "momentum", "regime", "ai_pattern"], "ai.base_url": fake.url,
        "ai.max_calls_per_hour": 2})  # two paid calls, then the hourly limit: the replay stays quick
    app = make_cockpit(settings_=settings)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        sig = app.main.agents.signals["ai_pattern"]
        row = app.main.query_one(AgentTable).get_row("ai_pattern")
    assert fake.calls == 2 and fake.problems == []
    assert "2 calls in the last hour" in sig.reasoning and sig.confidence == 0.0
    assert "AI live: $0.01 of $10.00 today · 2 calls · 0 cached · 0 E004" in sig.reasoning
    assert str(row[-1]).startswith("held back: 2 calls in the last hour")
