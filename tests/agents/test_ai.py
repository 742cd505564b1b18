"""Claude in trdr: the chart, the answers, the key, the service, the ai_pattern agent and the AI
meta-resolver — all against the local fake Anthropic API (`trdr_testkit.fake_anthropic`) with the
real `anthropic` SDK pointed at it. Nothing here reaches the real service."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from tests.agents.conftest import bars_from_closes
from tests.agents.realdata import load_cdd_hourly
from tests.backtest.test_cli_backtest import HOURLY_REL, run_json
from tests.conftest import REPO
from trdr_testkit.fake_anthropic import FakeAnthropic, serve_in_thread
from trdr_testkit.fake_anthropic.server import png_size
from trdr_tui.agents.ai.answers import PatternAnswer, check_levels, decode_answer
from trdr_tui.agents.ai.chart import render_chart_png
from trdr_tui.agents.ai.pattern import TOOL as PATTERN_TOOL
from trdr_tui.agents.ai.resolver import AIMetaResolver
from trdr_tui.agents.ai.service import ClaudeService, deprecation_of, read_api_key
from trdr_tui.agents.factory import build_orchestrator
from trdr_tui.agents.meta import ConflictContext
from trdr_tui.agents.orchestrator import Orchestrator, OrchestratorConfig
from trdr_tui.agents.protocol import BaseAgent, MarketSnapshot
from trdr_tui.config import Settings, load_settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import InvalidResponse
from trdr_tui.core.types import Action, AgentSignal
from trdr_tui.engine.assembly import build_engine
from trdr_tui.store import Store

KEY = "sk-ant-test-0123456789"
ENV = {"ANTHROPIC_API_KEY": KEY}
T_WALL = 1_790_000_000 * 10**9  # the budget's (simulated) wall clock
N_BARS = 122  # warm-up is 113 bars: 10 bars with a vote
SHORT = 114  # 2 bars with a vote
PANEL = ["volatility", "momentum", "regime", "ai_pattern"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    f = FakeAnthropic(api_key=KEY, model="claude-sonnet-4-6", delay_s=6.0)
    await f.start()
    yield f
    await f.stop()


def ai_settings(fake: FakeAnthropic | None, **overrides: Any) -> Settings:
    base: dict[str, Any] = {"agents.enabled": PANEL, "ai.timeout_seconds": 3.0}
    if fake is not None:
        base["ai.base_url"] = fake.url
    return load_settings(env={}, overrides={**base, **overrides})


def service(settings: Settings, store: Store, *, mode: str = "live", clock: SimClock | None = None,
            bus: EventBus | None = None, env: dict[str, str] | None = None) -> ClaudeService:
    return ClaudeService.from_settings(settings, mode=mode, store=store, clock=clock or SimClock(T_WALL), bus=bus,
                                       env=ENV if env is None else env)


def real_bars(n: int = N_BARS, start: int = 9000):
    return load_cdd_hourly()[start:start + n]


async def stream(orch: Orchestrator, bars) -> list[Any]:
    return [await orch.on_candle(c) for c in bars.candles()]


# -- the chart ---------------------------------------------------------------------------------------


def test_chart_is_a_deterministic_800x600_png() -> None:
    b = real_bars(100)
    png = render_chart_png(b.ts, b.open, b.high, b.low, b.close, b.volume, title="BTC-USD 1h")
    assert png_size(png) == (800, 600)
    assert png == render_chart_png(b.ts, b.open, b.high, b.low, b.close, b.volume, title="BTC-USD 1h")
    other = render_chart_png(b.ts, b.open, b.high * 1.01, b.low, b.close, b.volume, title="BTC-USD 1h")
    assert other != png
    with pytest.raises(ValueError, match="non-empty arrays of one length"):
        render_chart_png(b.ts[:0], b.open[:0], b.high[:0], b.low[:0], b.close[:0], b.volume[:0])


# -- the answers -------------------------------------------------------------------------------------


def test_pattern_tool_schema_asks_for_every_field_of_the_prd() -> None:
    schema = PATTERN_TOOL["input_schema"]
    assert schema["type"] == "object"
    assert set(schema["required"]) == {"pattern", "support", "resistance", "momentum", "action", "confidence",
                                       "trail_distance"}
    assert schema["properties"]["confidence"]["maximum"] == 100
    assert schema["properties"]["action"]["enum"] == ["TRAIL_BUY", "TRAIL_SELL", "WAIT"]


def test_answers_out_of_range_or_malformed_are_e004() -> None:
    good = {"pattern": "flag", "support": 90.0, "resistance": 110.0, "momentum": "BULLISH", "action": "WAIT",
            "confidence": 40, "trail_distance": 1.2}
    a = decode_answer(good, PatternAnswer, where="t")
    check_levels(a, 95.0, 105.0, where="t")
    for bad in ({**good, "confidence": 101}, {**good, "trail_distance": 0}, {**good, "action": "BUY"},
                {**good, "extra": 1}, {k: v for k, v in good.items() if k != "support"}, '{"pattern": "fl'):
        with pytest.raises(InvalidResponse) as err:
            decode_answer(bad, PatternAnswer, where="t")
        assert err.value.code == "E004"
    with pytest.raises(InvalidResponse, match="outside"):
        check_levels(decode_answer({**good, "support": 9000.0, "resistance": 9100.0}, PatternAnswer, where="t"),
                     95.0, 105.0, where="t")
    with pytest.raises(InvalidResponse, match="above resistance"):
        check_levels(decode_answer({**good, "support": 104.0, "resistance": 96.0}, PatternAnswer, where="t"),
                     95.0, 105.0, where="t")


# -- the key -----------------------------------------------------------------------------------------


def test_key_from_the_environment_or_a_private_file(tmp_path: Path) -> None:
    cfg = ai_settings(None).ai
    assert read_api_key(cfg, ENV) == (KEY, "")
    key, why = read_api_key(cfg, {})
    assert key is None and "ANTHROPIC_API_KEY" in why
    path = tmp_path / "anthropic_api_key"
    path.write_text(KEY + "\n")
    path.chmod(0o644)
    filed = ai_settings(None, **{"ai.key_file": str(path)}).ai
    key, why = read_api_key(filed, {})
    assert key is None and f"chmod 600 {path}" in why and KEY not in why
    path.chmod(0o600)
    assert read_api_key(filed, {}) == (KEY, "")


async def test_the_key_never_reaches_logs_or_the_database(fake: FakeAnthropic, store: Store,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = ai_settings(fake)
    svc = service(settings, store)
    assert KEY not in repr(svc)
    orch = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0), ai=svc)
    await stream(orch, real_bars(SHORT))
    fake.script.extend(["out_of_range", "529"])
    await stream(build_orchestrator(settings, bus=EventBus(), clock=SimClock(0), ai=svc), real_bars(SHORT, 9100))
    assert svc.calls == 4 and svc.invalid == 1
    assert KEY not in caplog.text
    dumped = json.dumps([store.conn.execute(f"SELECT * FROM {t}").fetchall() for t in ("ai_calls", "ai_responses")],
                        default=str)
    assert KEY not in dumped


# -- the ai_pattern agent in the panel -----------------------------------------------------------------


async def test_agent_reads_the_chart_and_votes(fake: FakeAnthropic, store: Store) -> None:
    settings = ai_settings(fake)
    svc = service(settings, store)
    orch = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0), ai=svc)
    decisions = [d for d in await stream(orch, real_bars()) if d is not None]
    assert len(decisions) == N_BARS - 112 and fake.calls == len(decisions)
    assert fake.problems == []  # model, headers, tool schema, a real 800×600 PNG: all as required
    sig = {s.agent_id: s for s in decisions[-1].signals}["ai_pattern"]
    assert sig.action in (Action.TRAIL_BUY, Action.TRAIL_SELL) and sig.confidence == pytest.approx(0.72)
    assert sig.trail_distance == pytest.approx(0.015)
    assert "(Claude, live)" in sig.reasoning and "channel" in sig.reasoning
    assert f"{len(decisions)} calls" in sig.reasoning and "$" in sig.reasoning  # spend and calls, shown in the pane
    body = fake.requests[-1]
    assert body["tool_choice"] == {"type": "tool", "name": "report_chart_analysis"}
    text = next(b["text"] for b in body["messages"][0]["content"] if b["type"] == "text")
    assert "Analyze this 1h chart for BTC-USD" in text and "TRAIL_DISTANCE: [percentage]" in text
    rows = store.conn.execute("SELECT count(*), sum(cost_usd), min(input_tokens) FROM ai_calls").fetchone()
    assert rows[0] == fake.calls and rows[1] > 0 and rows[2] > 640
    assert svc.status().spend_today_usd == pytest.approx(rows[1])


@pytest.mark.parametrize("behaviour", ["malformed_json", "bad_fields", "out_of_range", "no_tool"])
async def test_a_malformed_answer_never_reaches_the_decision(fake: FakeAnthropic, store: Store,
                                                             behaviour: str) -> None:
    settings = ai_settings(fake)
    svc = service(settings, store)
    orch = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0), ai=svc)
    bars = list(real_bars(SHORT).candles())
    for c in bars[:-1]:
        await orch.on_candle(c)
    fake.script.append(behaviour)
    before = svc.invalid
    decision = await orch.on_candle(bars[-1])
    assert decision is not None
    assert "ai_pattern" not in {s.agent_id for s in decision.signals}  # skipped for that bar
    assert svc.invalid == before + 1
    assert orch.failures[-1].agent_id == "ai_pattern" and "E004" in str(orch.failures[-1])
    n = store.conn.execute("SELECT count(*) FROM ai_responses").fetchone()[0]
    assert n == fake.calls - 1  # the invalid answer was not cached


@pytest.mark.parametrize(("behaviour", "words"), [("429", "rate limited by Anthropic (429)"),
                                                  ("529", "overloaded (529)"), ("500", "HTTP 500"),
                                                  ("timeout", "no answer within 3 s (timeout)")])
async def test_service_failures_make_the_agent_unavailable(fake: FakeAnthropic, store: Store, behaviour: str,
                                                           words: str) -> None:
    settings = ai_settings(fake)
    orch = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0), ai=service(settings, store))
    bars = list(real_bars(SHORT).candles())
    for c in bars[:-1]:
        await orch.on_candle(c)
    fake.script.append(behaviour)
    decision = await orch.on_candle(bars[-1])
    assert decision is not None
    sig = {s.agent_id: s for s in decision.signals}["ai_pattern"]
    assert sig.action is Action.HOLD and sig.confidence == 0.0
    assert sig.reasoning.startswith("unavailable: ") and words in sig.reasoning


async def test_without_a_key_the_agent_is_unavailable_and_asks_nothing(fake: FakeAnthropic, store: Store) -> None:
    settings = ai_settings(fake)
    orch = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0), ai=service(settings, store, env={}))
    decisions = [d for d in await stream(orch, real_bars()) if d is not None]
    sig = {s.agent_id: s for s in decisions[-1].signals}["ai_pattern"]
    assert sig.confidence == 0.0 and "no Anthropic API key" in sig.reasoning
    assert fake.calls == 0


# -- cache: reproducible and free re-runs --------------------------------------------------------------


async def run_backtest_engine(settings: Settings, bars, svc: ClaudeService) -> Any:
    engine = build_engine(settings, mode="backtest", candles=bars, ai=svc)
    await engine.run()
    return engine


async def test_a_rerun_backtest_makes_zero_api_calls(fake: FakeAnthropic, db_path: Path) -> None:
    bars = real_bars(N_BARS)
    settings = ai_settings(fake)
    with Store(db_path) as store:
        first = await run_backtest_engine(settings, bars, service(settings, store, mode="live"))
    paid = fake.calls
    assert paid == N_BARS - 112
    for mode in ("live", "cache"):  # live reads the cache first; cache never asks
        with Store(db_path) as store:
            svc = service(settings, store, mode=mode)
            again = await run_backtest_engine(settings, bars, svc)
        assert fake.calls == paid, mode
        assert svc.cache_hits >= paid and svc.calls == 0
        assert again.record.final_equity == first.record.final_equity
        assert [(f.ts, f.price, f.size) for f in again.record.fills] == \
               [(f.ts, f.price, f.size) for f in first.record.fills]


async def test_cache_mode_batch_equals_streaming_and_uncached_bars_hold(fake: FakeAnthropic, store: Store) -> None:
    bars = real_bars(N_BARS + 4)
    settings = ai_settings(fake)
    live = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0), ai=service(settings, store))
    await stream(live, bars[0:N_BARS])  # the last 4 bars stay uncached
    cached = service(settings, store, mode="cache")
    streaming = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0), ai=cached)
    decisions = await stream(streaming, bars)
    batch = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0), ai=service(settings, store, mode="cache"))
    arrays = batch.precompute(bars)
    j = arrays.agent_ids.index("ai_pattern")
    for i, d in enumerate(decisions):
        if d is None:
            continue
        sig = {s.agent_id: s for s in d.signals}["ai_pattern"]
        assert int(arrays.agent_action[i, j]) == {Action.HOLD: 0, Action.TRAIL_BUY: 1, Action.TRAIL_SELL: 2}[sig.action]
        assert float(arrays.agent_confidence[i, j]) == sig.confidence
        assert int(arrays.action[i]) == {Action.HOLD: 0, Action.TRAIL_BUY: 1, Action.TRAIL_SELL: 2}[d.action]
        if i >= N_BARS:
            assert sig.action is Action.HOLD and sig.confidence == 0.0 and sig.reasoning.startswith("not cached")
            assert batch.decision_at(i) is not None
    assert fake.calls == N_BARS - 112


def test_cli_backtest_ai_live_then_cache(tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with serve_in_thread(FakeAnthropic(api_key=KEY)) as fake:
        config = tmp_path / "trdr.toml"
        config.write_text('symbol = "BTC-USD"\ncapital = 10000\nrisk_tolerance = "moderate"\n'
                          f'[agents]\nenabled = {json.dumps(PANEL)}\n[ai]\nbase_url = "{fake.url}"\n')
        args = ["--config", str(config), "--db", str(db_path), "backtest", "--data", str(HOURLY_REL),
                "--start", "2019-06-01", "--end", "2019-06-06T02:00", "--json", "--monte-carlo", "0", "--no-session"]
        first = run_json(capsys, *args, "--ai", "live")
        paid = fake.calls
        assert paid == 122 - 112 and fake.problems == []
        again = run_json(capsys, *args, "--ai", "cache")
        live_again = run_json(capsys, *args, "--ai", "live")
        assert fake.calls == paid  # re-runs are free
    for r in (again, live_again):
        assert {k: r[k] for k in ("total_return", "fills", "final_equity")} == \
               {k: first[k] for k in ("total_return", "fills", "final_equity")}


# -- cost control --------------------------------------------------------------------------------------


async def test_budget_stops_normal_calls_and_lets_critical_ones_through(fake: FakeAnthropic, store: Store) -> None:
    clock = SimClock(T_WALL)
    settings = ai_settings(fake, **{"ai.daily_budget_usd": 0.02})
    bus = EventBus()
    warnings: list[Any] = []
    bus.subscribe("log.warning", lambda _t, ev: warnings.append(ev))
    svc = service(settings, store, clock=clock, bus=bus)
    orch = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0), ai=svc)
    decisions = [d for d in await stream(orch, real_bars()) if d is not None]
    spent = svc.spend_today()
    assert 0 < spent <= 0.02 and 0 < fake.calls < len(decisions)  # stopped before the budget was passed
    last = {s.agent_id: s for s in decisions[-1].signals}["ai_pattern"]
    assert last.confidence == 0.0 and last.reasoning.startswith("held back: daily budget reached")
    assert any(ev.fields.get("code") == "budget" for ev in warnings)
    # a critical call is made even over the budget
    resolver = AIMetaResolver(svc, symbol="BTC-USD")
    calls = fake.calls
    res = await resolver.resolve(conflict(disagreement=0.95))
    assert fake.calls == calls + 1 and res.reasoning.startswith("meta (Claude, live)")
    res = await resolver.resolve(conflict(disagreement=0.5))  # normal: refused, rules decide
    assert fake.calls == calls + 1 and "daily budget reached" in res.reasoning
    # a new UTC day, a new budget
    clock.advance_to(T_WALL + 86_400 * 10**9)
    assert svc.refusal("normal") == ""


async def test_max_calls_per_hour(fake: FakeAnthropic, store: Store) -> None:
    clock = SimClock(T_WALL)
    svc = service(ai_settings(fake, **{"ai.max_calls_per_hour": 3}), store, clock=clock)
    resolver = AIMetaResolver(svc, symbol="BTC-USD")
    for i in range(5):
        await resolver.resolve(conflict(disagreement=0.5 + i / 100))
    assert fake.calls == 3 and "3 calls in the last hour" in svc.refusal("normal")
    clock.advance_to(T_WALL + 3_601 * 10**9)
    await resolver.resolve(conflict(disagreement=0.6))
    assert fake.calls == 4


# -- the AI meta-resolver -------------------------------------------------------------------------------


def conflict(disagreement: float = 0.8) -> ConflictContext:
    sigs = (AgentSignal(agent_id="up", action=Action.TRAIL_BUY, confidence=0.9, trail_distance=0.01, reasoning="up"),
            AgentSignal(agent_id="down", action=Action.TRAIL_SELL, confidence=0.9 * disagreement,
                        trail_distance=0.01, reasoning="down"))
    return ConflictContext(ts=0, signals=sigs, weights={"up": 1.0, "down": 1.0}, buy_score=0.9,
                           sell_score=0.9 * disagreement, hold_score=0.0, disagreement=disagreement,
                           leader=Action.TRAIL_BUY, confidence=0.9 / (0.9 + 0.9 * disagreement))


class Fixed(BaseAgent):
    """A crafted agent that always votes the same."""

    def __init__(self, agent_id: str, action: Action, confidence: float) -> None:
        super().__init__()
        self.id = agent_id  # type: ignore[misc]
        self.vote = (action, confidence)

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        return self.signal(snapshot, self.vote[0], self.vote[1], 0.01, f"always {self.vote[0].value}")


async def test_split_panel_is_resolved_by_claude_with_rules_as_fallback(fake: FakeAnthropic, store: Store) -> None:
    settings = ai_settings(fake, **{"ai.meta_resolver": True, "agents.enabled": ["volatility"]})
    svc = service(settings, store)
    resolver = AIMetaResolver(svc, symbol="BTC-USD")
    orch = Orchestrator([Fixed("up", Action.TRAIL_BUY, 0.9), Fixed("down", Action.TRAIL_SELL, 0.8)],
                        OrchestratorConfig(symbol="BTC-USD", min_confidence=0.5), bus=EventBus(), clock=SimClock(0),
                        resolver=resolver)
    resolver.attach(orch.state)
    bars = list(bars_from_closes(100 + np.sin(np.arange(115) / 5)).candles())
    decisions = [await orch.on_candle(c) for c in bars]
    d = decisions[-1]
    assert d is not None and d.meta_resolved and d.action is Action.HOLD
    assert "meta (Claude, live): the sides cancel out" in d.reasoning
    text = fake.requests[-1]["messages"][0]["content"][0]["text"]
    assert "up: TRAIL_BUY at 90%" in text and "Market: last close" in text and "24-bar change" in text
    fake.script.append("out_of_range")
    d = await orch.on_candle(msgspec.structs.replace(bars[-1], ts=bars[-1].ts + 3_600 * 10**9))
    assert d is not None and d.meta_resolved and "(Claude: invalid answer (E004))" in d.reasoning
    assert svc.invalid == 1


def test_factory_installs_the_ai_resolver_only_when_enabled(fake: FakeAnthropic, store: Store) -> None:
    on = ai_settings(fake, **{"ai.meta_resolver": True, "agents.enabled": ["volatility", "regime"]})
    orch = build_orchestrator(on, bus=EventBus(), clock=SimClock(0), ai=service(on, store))
    assert orch.resolver.name == "claude"
    off = build_orchestrator(on, bus=EventBus(), clock=SimClock(0), ai_mode="off")
    assert off.resolver.name == "rules"


# -- model deprecation ---------------------------------------------------------------------------------


def test_a_deprecated_model_is_warned_about_at_start(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    assert deprecation_of("claude-sonnet-4-5") is not None  # listed by the installed SDK
    assert deprecation_of(load_settings(env={}).ai.model) is None  # the shipped default is current
    bus = EventBus()
    seen: list[Any] = []
    bus.subscribe("log.warning", lambda _t, ev: seen.append(ev))
    caplog.set_level(logging.WARNING)
    service(ai_settings(None, **{"ai.model": "claude-sonnet-4-5"}), store, mode="cache", bus=bus)
    assert "'claude-sonnet-4-5' is deprecated (end of life" in caplog.text
    assert seen and seen[0].fields["code"] == "deprecated"
