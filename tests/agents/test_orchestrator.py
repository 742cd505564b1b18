"""Orchestrator: timeouts and failures (E005), weighted consensus, meta-resolution, adaptive weights,
the decision log, checkpoints, and streaming = batch on the real hourly data."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.agents.conftest import (
    AsyncAgent,
    BadSignalAgent,
    BlockingAgent,
    FixedAgent,
    HangingAgent,
    RaisingAgent,
    bars_from_closes,
    uptrend,
)
from trdr_tui.agents import build_orchestrator
from trdr_tui.agents.meta import ConflictContext, Resolution, RuleBasedResolver
from trdr_tui.agents.orchestrator import (
    WEIGHTS_TOPIC,
    Orchestrator,
    OrchestratorConfig,
    consensus_trail,
    tally,
)
from trdr_tui.agents.performance import AdaptiveConfig
from trdr_tui.agents.protocol import ACTION_CODES, MarketSnapshot
from trdr_tui.config import convert_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import AgentFailed, ConfigError
from trdr_tui.core.events import LogEvent, WeightsChanged
from trdr_tui.core.types import Action, AgentSignal, Decision, Urgency
from trdr_tui.market.indicators import IndicatorParams
from trdr_tui.store import Store
from trdr_tui.store.decisions import DecisionLog, load_weights

B, S, H = Action.TRAIL_BUY, Action.TRAIL_SELL, Action.HOLD
HOUR = 3_600_000_000_000
WARM = IndicatorParams().warmup


def make(agents: list[Any], *, store: Store | None = None, log: DecisionLog | None = None,
         resolver: Any = None, **cfg: Any) -> tuple[Orchestrator, EventBus, SimClock, list[tuple[str, Any]]]:
    bus = EventBus()
    seen: list[tuple[str, Any]] = []
    bus.subscribe("*", lambda topic, ev: seen.append((topic, ev)))
    clock = SimClock(0)
    defaults: dict[str, Any] = {"symbol": "BTC-USD", "timeout_s": 0.05, "min_confidence": 0.3,
                                "disagreement_threshold": 0.99, "adaptive": AdaptiveConfig(enabled=False)}
    config = OrchestratorConfig(**{**defaults, **cfg})
    orch = Orchestrator(agents, config, bus=bus, clock=clock, resolver=resolver, store=store, decision_log=log)
    return orch, bus, clock, seen


async def feed(orch: Orchestrator, clock: SimClock, bars: CandleArrays) -> list[Decision | None]:
    out = []
    for c in bars.candles():
        clock.advance_to(c.ts + HOUR)  # the bar has closed
        out.append(await orch.on_candle(c))
    return out


def flat(n: int) -> CandleArrays:
    return bars_from_closes(100.0 * (1 + 0.002 * np.sin(np.arange(n) * 1.3)))


async def test_no_decision_during_warm_up_then_one_per_candle() -> None:
    orch, _, clock, _ = make([FixedAgent("a", B, 0.9)])
    out = await feed(orch, clock, flat(WARM + 3))
    assert all(d is None for d in out[: WARM - 1])
    assert all(isinstance(d, Decision) for d in out[WARM - 1:])


async def test_agents_get_the_clock_now() -> None:
    a = FixedAgent("a", B, 0.9)
    orch, _, clock, _ = make([a])
    bars = flat(WARM + 2)
    await feed(orch, clock, bars)
    assert a.seen_now == [int(t) + HOUR for t in bars.ts[WARM - 1:]]


async def test_hanging_agent_is_skipped_at_the_timeout() -> None:
    hang = HangingAgent("hang")
    orch, _, clock, seen = make([FixedAgent("a", B, 0.9), hang, AsyncAgent("slowpoke", B, 0.8)])
    out = await feed(orch, clock, flat(WARM))
    d = out[-1]
    assert d is not None and d.action == B
    assert [s.agent_id for s in d.signals] == ["a", "slowpoke"]  # the async agent still answered
    assert hang.calls == 1
    err = orch.failures[-1]
    assert isinstance(err, AgentFailed) and err.code == "E005" and err.agent_id == "hang"
    assert "timeout" in str(err)
    logs = [ev for topic, ev in seen if topic == "log.warning"]
    assert isinstance(logs[-1], LogEvent) and logs[-1].fields["agent"] == "hang" and logs[-1].fields["code"] == "E005"


async def test_raising_and_invalid_agents_are_skipped() -> None:
    orch, _, clock, _ = make([RaisingAgent("boom"), FixedAgent("a", S, 0.9), BadSignalAgent("liar")])
    d = (await feed(orch, clock, flat(WARM)))[-1]
    assert d is not None and d.action == S and [s.agent_id for s in d.signals] == ["a"]
    reasons = {e.agent_id: str(e) for e in orch.failures}
    assert "RuntimeError: boom" in reasons["boom"]
    assert "confidence 1.7" in reasons["liar"]


async def test_an_agent_failing_every_bar_is_one_warning_and_a_count() -> None:
    """A broken agent fails every bar: each failure is kept (`failures`, bounded), but the log gets its
    first warning and, when the window ends or the panel closes, one line counting the repeats."""
    orch, _, clock, seen = make([RaisingAgent("boom"), FixedAgent("a", S, 0.9)])
    await feed(orch, clock, flat(WARM + 30))
    await orch.close()
    warnings = [e for t, e in seen if t == "log.warning"]
    assert len(orch.failures) == 31 and len(warnings) == 2, [w.message for w in warnings]
    assert warnings[0].fields["agent"] == "boom" and warnings[0].fields["code"] == "E005"
    assert warnings[1].fields["repeated"] == 30 and "repeated 30 more times" in warnings[1].message


async def test_a_failure_text_no_log_could_write_is_escaped() -> None:
    """A plugin's exception text with a lone surrogate: its warning is kept and logged escaped (the JSON
    logs and the log files cannot write the surrogate, so the warning vanished)."""
    class Surrogate(FixedAgent):
        def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
            raise RuntimeError("boom \ud800")

    orch, _, clock, seen = make([Surrogate("odd", B, 0.9), FixedAgent("a", S, 0.9)])
    await feed(orch, clock, flat(WARM))
    (warning, *_) = [e for t, e in seen if t == "log.warning"]
    assert "boom \\ud800" in warning.message and "boom \\ud800" in str(orch.failures[-1])
    msgspec.json.encode(warning)  # what the JSON logs do with it


async def test_weights_change_the_decision(store: Store) -> None:
    orch, _, clock, seen = make([FixedAgent("a", B, 0.9), FixedAgent("b", S, 0.8), FixedAgent("c", H, 0.3)],
                                store=store)
    d = (await feed(orch, clock, flat(WARM)))[-1]
    assert d is not None and d.action == B
    assert d.confidence == pytest.approx(0.9 / (0.9 + 0.8 + 0.3))
    orch.set_weight("b", 3.0)
    bars = flat(WARM + 1)[WARM:]
    d2 = (await feed(orch, clock, bars))[-1]
    assert d2 is not None and d2.action == S and d2.weights["b"] == 3.0
    assert d2.confidence == pytest.approx(2.4 / (0.9 + 2.4 + 0.3))
    changed = [ev for topic, ev in seen if topic == WEIGHTS_TOPIC]
    assert isinstance(changed[-1], WeightsChanged) and changed[-1].source == "user"
    assert changed[-1].weights["b"] == 3.0
    assert load_weights(store)["b"] == 3.0
    orch.set_weight("a", 0.0)  # muted: still runs, no longer counts
    d3 = (await feed(orch, clock, flat(WARM + 2)[WARM + 1:]))[-1]
    assert d3 is not None and d3.action == S


async def test_bad_weights_are_refused_and_change_nothing() -> None:
    orch, _, _, _ = make([FixedAgent("a", B, 0.9)])
    for bad in (float("nan"), -0.5, 3.5, 1e308):  # the range is [0, max_weight] (3 by default)
        with pytest.raises(ConfigError, match=r"must be a number from 0 to 3 \(\[agents\] max_weight\)"):
            orch.set_weight("a", bad)
    with pytest.raises(ConfigError, match="no agent 'zz'"):
        orch.set_weight("zz", 1.0)
    assert orch.weights() == {"a": 1.0}


class SpyResolver:
    name = "spy"

    def __init__(self) -> None:
        self.calls: list[ConflictContext] = []

    async def resolve(self, context: ConflictContext) -> Resolution:
        self.calls.append(context)
        return Resolution(action=Action.TRAIL_SELL, confidence=0.77, reasoning="spy says sell")


async def test_disagreement_triggers_the_meta_step() -> None:
    spy = SpyResolver()
    orch, _, clock, _ = make([FixedAgent("a", B, 0.8), FixedAgent("b", S, 0.6)], resolver=spy,
                             disagreement_threshold=0.4)
    d = (await feed(orch, clock, flat(WARM)))[-1]
    assert d is not None and d.meta_resolved and d.action == S and d.confidence == 0.77
    assert "spy says sell" in d.reasoning
    ctx = spy.calls[-1]
    assert ctx.leader == B and ctx.disagreement == pytest.approx(0.6 / 0.8)


async def test_agreement_skips_the_meta_step() -> None:
    spy = SpyResolver()
    orch, _, clock, _ = make([FixedAgent("a", B, 0.8), FixedAgent("b", H, 0.3)], resolver=spy,
                             disagreement_threshold=0.4)
    d = (await feed(orch, clock, flat(WARM)))[-1]
    assert d is not None and not d.meta_resolved and d.action == B and spy.calls == []


async def test_a_failing_resolver_falls_back_to_the_rules() -> None:
    class Broken:
        name = "broken"

        def resolve(self, context: ConflictContext) -> Resolution:
            raise RuntimeError("model offline")

    orch, _, clock, _ = make([FixedAgent("a", B, 0.9), FixedAgent("b", S, 0.4)], resolver=Broken(),
                             disagreement_threshold=0.4)
    d = (await feed(orch, clock, flat(WARM)))[-1]
    assert d is not None and d.meta_resolved and "meta: leader kept" in d.reasoning
    assert orch.failures[-1].agent_id == "meta:broken"


def _ctx(**kw: Any) -> ConflictContext:
    base: dict[str, Any] = {"ts": 0, "signals": (), "weights": {}, "buy_score": 0.8, "sell_score": 0.6,
                            "hold_score": 0.2, "disagreement": 0.75, "leader": B, "confidence": 0.5}
    return ConflictContext(**{**base, **kw})


def test_rule_based_resolver() -> None:
    r = RuleBasedResolver(min_margin=0.25)
    assert r.resolve(_ctx(regime="volatile")).action == H
    sided = r.resolve(_ctx(regime="trending", regime_action=S))
    assert sided.action == S and sided.confidence == pytest.approx(0.6 / 1.6 * (1 - 0.75 / 2))
    assert r.resolve(_ctx()).action == H  # margin 0.2/1.4 < 0.25
    kept = r.resolve(_ctx(buy_score=1.2, sell_score=0.6, disagreement=0.5, confidence=0.6))
    assert kept.action == B and kept.confidence == pytest.approx(0.6 * 0.75)


async def test_min_confidence_gates_directional_decisions() -> None:
    orch, _, clock, _ = make([FixedAgent("a", B, 0.5), FixedAgent("b", H, 0.45)], min_confidence=0.6)
    d = (await feed(orch, clock, flat(WARM)))[-1]
    assert d is not None and d.action == H and "below the minimum confidence" in d.reasoning
    assert d.confidence == pytest.approx(0.45 / 0.95)


@pytest.mark.parametrize(("profile", "expected"), [("conservative", 0.7), ("moderate", 0.6), ("aggressive", 0.5)])
def test_min_confidence_comes_from_the_resolved_settings(profile: str, expected: float) -> None:
    orch = build_orchestrator(convert_settings({"risk_tolerance": profile}), bus=EventBus(), clock=SimClock(0))
    assert orch.config.min_confidence == expected
    explicit = convert_settings({"risk_tolerance": profile, "agents": {"min_confidence": 0.55}})
    assert build_orchestrator(explicit, bus=EventBus(), clock=SimClock(0)).config.min_confidence == 0.55


async def test_adaptive_weights_follow_performance_within_bounds(store: Store) -> None:
    bull, bear = FixedAgent("bull", B, 0.8), FixedAgent("bear", S, 0.8)
    adapt = AdaptiveConfig(enabled=True, horizon=24, every=24, min_weight=0.2, max_weight=1.5)
    orch, _, clock, seen = make([bull, bear], adaptive=adapt, store=store)
    await feed(orch, clock, uptrend(400))  # every 24-bar move in this series is up
    w = orch.weights()
    assert w["bull"] == 1.5 and w["bear"] == 0.2  # clamped at the bounds
    assert bull.outcomes > 100 and bull.hits == bull.outcomes and bear.hits == 0
    adaptive = [ev for topic, ev in seen if topic == WEIGHTS_TOPIC and ev.source == "adaptive"]
    assert adaptive and adaptive[-1].weights == w
    orch.flush()
    assert load_weights(store) == w


async def test_decision_log_rows_per_agent_and_consensus(store: Store) -> None:
    log = DecisionLog(store, "run-1", batch_size=1)
    orch, _, clock, _ = make([FixedAgent("a", B, 0.9), FixedAgent("b", H, 0.3)], log=log)
    decisions = [d for d in await feed(orch, clock, flat(WARM + 4)) if d is not None]
    rows = log.rows()
    assert len(rows) == 3 * len(decisions) == 15
    assert [r["agent_id"] for r in rows[:3]] == ["a", "b", "consensus"]
    assert rows[2]["signal"] == decisions[0].action.value and rows[2]["reasoning"] == decisions[0].reasoning
    assert rows[0]["execution_time_ms"] >= 0 and rows[0]["weight"] == 1.0


async def test_decision_log_batches_until_flush(store: Store) -> None:
    log = DecisionLog(store, "run-2", batch_size=1000)
    orch, _, clock, _ = make([FixedAgent("a", B, 0.9)], log=log)
    await feed(orch, clock, flat(WARM + 9))
    assert log.rows() == [] and len(log) == 20
    orch.flush()
    assert len(log.rows()) == 20


async def test_checkpoint_round_trip_continues_identically(real_bars: CandleArrays) -> None:
    settings = convert_settings({})
    bars = real_bars[:700]
    a = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0))
    clock = SimClock(0)
    await feed(a, clock, bars[:600])
    state = a.get_state()
    b = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0))
    b.set_state(state)
    da = await feed(a, clock, bars[600:])
    db = await feed(b, SimClock(int(bars.ts[599])), bars[600:])
    assert [d.action for d in da if d] == [d.action for d in db if d]
    np.testing.assert_allclose([d.confidence for d in da if d], [d.confidence for d in db if d], rtol=1e-9)


# --- streaming = batch on the real data --------------------------------------------------------


async def test_real_data_streaming_equals_batch(real_bars: CandleArrays, store: Store) -> None:
    settings = convert_settings({})
    stream = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0))
    clock = SimClock(0)
    decisions = await feed(stream, clock, real_bars)
    batch_bus = EventBus()
    published: list[WeightsChanged] = []
    batch_bus.subscribe(WEIGHTS_TOPIC, lambda _t, ev: published.append(ev))
    batch = build_orchestrator(settings, bus=batch_bus, clock=SimClock(0), store=store, run_id="bt",
                               log_batch_size=5000)
    arrays = batch.precompute(real_bars)
    valid = np.array([d is not None for d in decisions])
    assert np.array_equal(valid, arrays.valid)
    idx = np.flatnonzero(valid)
    got = [d for d in decisions if d is not None]
    assert np.array_equal([ACTION_CODES[d.action] for d in got], arrays.action[idx])
    np.testing.assert_allclose([d.confidence for d in got], arrays.confidence[idx], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([d.trail_distance for d in got], arrays.trail_distance[idx], rtol=1e-9)
    assert np.array_equal([d.meta_resolved for d in got], arrays.meta_resolved[idx])
    per_agent = np.array([[ACTION_CODES[s.action] for s in d.signals] for d in got])
    assert np.array_equal(per_agent, arrays.agent_action[idx])
    # adaptive weights evolve bit for bit alike
    assert stream.weights() == {a: float(w) for a, w in zip(arrays.agent_ids, arrays.weights[-1], strict=True)}
    # every kind of outcome occurs on two years of real data
    counts = np.bincount(arrays.action[idx], minlength=3)
    assert counts.min() > 100 and arrays.meta_resolved.sum() > 100
    # decision_at rebuilds the same decision, and replays the adaptive weight changes on the bus
    for i in (int(idx[0]), 5000, 12345, len(real_bars) - 1):
        d = batch.decision_at(i)
        s = decisions[i]
        assert d is not None and s is not None
        assert d.action == s.action and d.confidence == pytest.approx(s.confidence, rel=1e-9)
        assert [x.reasoning for x in d.signals] == [x.reasoning for x in s.signals]
    assert published and published[-1].source == "adaptive"
    # the batch decision log: one row per agent and one consensus row per valid bar, in one insert
    n_rows = store.conn.execute("SELECT count(*) FROM agent_decisions WHERE run_id = 'bt'").fetchone()
    assert n_rows is not None and n_rows[0] == len(idx) * (len(arrays.agent_ids) + 1)


async def test_blocking_agents_run_in_a_thread_under_the_timeout() -> None:
    orch, _, clock, _ = make([BlockingAgent("quick", 0.0, action=B, confidence=0.9),
                              BlockingAgent("stuck", 0.3, action=S, confidence=0.9)], timeout_s=0.05)
    d = (await feed(orch, clock, flat(WARM)))[-1]
    assert d is not None and [s.agent_id for s in d.signals] == ["quick"] and d.action == B
    assert orch.failures[-1].agent_id == "stuck" and "timeout" in str(orch.failures[-1])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([B, S, H]), st.floats(0, 1), st.floats(0.002, 0.1),
                          st.sampled_from([0.0, 0.2, 1.0, 2.5])), min_size=1, max_size=6),
       st.floats(0.0, 1.0), st.floats(0.0, 1.0))
async def test_consensus_streaming_equals_batch_for_any_votes(votes: list[tuple[Action, float, float, float]],
                                                              threshold: float, min_conf: float) -> None:
    """The scalar and the vectorized consensus agree on arbitrary panels, weights and thresholds."""
    agents = [FixedAgent(f"a{j}", act, c, t) for j, (act, c, t, _) in enumerate(votes)]
    orch, _, _, _ = make(agents, disagreement_threshold=threshold, min_confidence=min_conf)
    for j, (_, _, _, w) in enumerate(votes):
        orch._weights[f"a{j}"] = w
    row = flat(1).candle(0)
    from trdr_tui.market.streaming import FeatureRow

    feat = FeatureRow(ts=row.ts, open=row.open, high=row.high, low=row.low, close=row.close, volume=row.volume)
    signals = [a.analyze(MarketSnapshot(symbol="X", now=0, index=0, features=feat)) for a in agents]
    d = orch._decide(feat, signals)  # the rule-based resolver answers at once
    assert isinstance(d, Decision)
    k = len(votes)
    arr = orch._batch_consensus(
        np.array([row.ts]), np.array([True]),
        np.array([[ACTION_CODES[v[0]] for v in votes]], dtype=np.int8), np.array([[v[1] for v in votes]]),
        np.array([[v[2] for v in votes]]), np.array([[v[3] for v in votes]]), None, np.ones(1), np.zeros(k))
    assert ACTION_CODES[d.action] == int(arr.action[0])
    assert d.confidence == pytest.approx(float(arr.confidence[0]), rel=1e-12, abs=1e-15)
    assert d.trail_distance == pytest.approx(float(arr.trail_distance[0]), rel=1e-12)
    assert d.meta_resolved == bool(arr.meta_resolved[0])
    assert 0.0 <= d.confidence <= 1.0



@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([B, S, H]), st.floats(0, 1), st.floats(0.002, 0.1),
                          st.sampled_from([0.0, 0.2, 1.0, 2.5])), min_size=0, max_size=12),
       st.floats(0.0, 1.0), st.floats(0.0, 1.0))
async def test_one_bar_consensus_is_the_batch_formula_bit_for_bit(votes: list[tuple[Action, float, float, float]],
                                                                 threshold: float, min_conf: float) -> None:
    """Streaming runs the batch formula on a one-bar panel: equal floats, not just close ones, for any
    panel size (also 8 and more agents, where a numpy sum would add pairwise) and for no votes at all."""
    agents = [FixedAgent(f"a{j}", act, c, t) for j, (act, c, t, _) in enumerate(votes)]
    orch, _, _, _ = make(agents, disagreement_threshold=threshold, min_confidence=min_conf)
    for j, (_, _, _, w) in enumerate(votes):
        orch._weights[f"a{j}"] = w
    row = flat(1).candle(0)
    from trdr_tui.market.streaming import FeatureRow

    feat = FeatureRow(ts=row.ts, open=row.open, high=row.high, low=row.low, close=row.close, volume=row.volume)
    signals = [a.analyze(MarketSnapshot(symbol="X", now=0, index=0, features=feat)) for a in agents]
    d = orch._decide(feat, signals)  # the rule-based resolver answers at once
    assert isinstance(d, Decision)
    k = len(votes)
    arr = orch._batch_consensus(
        np.array([row.ts]), np.array([True]),
        np.array([[ACTION_CODES[v[0]] for v in votes]], dtype=np.int8).reshape(1, k),
        np.array([[v[1] for v in votes]]).reshape(1, k), np.array([[v[2] for v in votes]]).reshape(1, k),
        np.array([[v[3] for v in votes]]).reshape(1, k), None, np.ones(1), np.zeros(k))
    assert (ACTION_CODES[d.action], d.confidence, d.trail_distance, d.meta_resolved) == (
        int(arr.action[0]), float(arr.confidence[0]), float(arr.trail_distance[0]), bool(arr.meta_resolved[0]))


def test_votes_are_added_in_panel_order() -> None:
    """Σ weight × confidence is added agent by agent from 0, as a loop over the panel would: a pairwise
    numpy sum of these twelve votes would give 1.0000000000000007."""
    weights = np.array([[1.0] + [1e-16] * 11])
    votes = tally(np.full((1, 12), 1, dtype=np.int8), np.ones((1, 12)), weights)
    den = num = 0.0
    for w in weights[0]:
        den += float(w)
        num += float(w) * 0.05
    assert votes.buy[0] == den == 1.0 and votes.sell[0] == votes.hold[0] == 0.0
    assert votes.leader[0] == ACTION_CODES[B] and votes.confidence[0] == 1.0 and votes.disagreement[0] == 0.0
    trail = consensus_trail(np.zeros((1, 12), dtype=np.int8), np.ones((1, 12)), weights, np.full((1, 12), 0.05),
                            np.array([ACTION_CODES[H]], dtype=np.int8), np.ones(1),
                            base_trail=0.015, min_trail=0.002, max_trail=0.10)
    assert trail[0] == num / den

def test_precompute_on_short_or_empty_history() -> None:
    orch = build_orchestrator(convert_settings({}), bus=EventBus(), clock=SimClock(0))
    short = orch.precompute(flat(50))
    assert len(short) == 50 and not short.valid.any() and (short.action == 0).all()
    assert orch.decision_at(10) is None
    empty = orch.precompute(CandleArrays.empty())
    assert len(empty) == 0


async def test_plain_string_actions_are_normalised_and_unknown_ones_rejected() -> None:
    class StringAgent(FixedAgent):
        def analyze(self, snapshot: MarketSnapshot) -> Any:
            return AgentSignal(agent_id=self.id, action=self.action, confidence=0.9,  # type: ignore[arg-type]
                               trail_distance=0.02, reasoning="plain string")

    class WordyAgent(FixedAgent):
        def analyze(self, snapshot: MarketSnapshot) -> Any:
            return AgentSignal(agent_id=self.id, action=Action.TRAIL_BUY, confidence="very",  # type: ignore[arg-type]
                               trail_distance=0.02, reasoning="not a number")

    ok, bad = StringAgent("ok", "TRAIL_SELL"), StringAgent("bad", "SHORT")  # type: ignore[arg-type]
    orch, _, clock, _ = make([ok, bad, WordyAgent("wordy")])
    d = (await feed(orch, clock, flat(WARM)))[-1]
    assert d is not None and d.action is Action.TRAIL_SELL and [s.agent_id for s in d.signals] == ["ok"]
    assert d.signals[0].action is Action.TRAIL_SELL
    reasons = {e.agent_id: str(e) for e in orch.failures}
    assert "'SHORT'" in reasons["bad"] and "'very'" in reasons["wordy"]


@pytest.mark.parametrize(("field", "value", "said"), [
    ("reasoning", b"bytes", "reasoning is bytes, not text"),
    ("reasoning", None, "reasoning is NoneType, not text"),
    ("reasoning", "half \ud800 a pair", "lone surrogate"),
    ("ts", "abc", "ts 'abc' is not a time"),
    ("ts", -5, "ts -5 is not a time"),
    ("ts", 1.5e18, "ts 1.5e+18 is not a time"),
    ("ts", 2**70, "is not a time"),
    ("ts", True, "ts True is not a time"),
    ("urgency", "bogus", "urgency 'bogus' is not low, normal or high"),
    ("urgency", "lo\ud800w", "is not low, normal or high"),
    ("urgency", ["high"], "urgency ['high'] is not"),
])
async def test_a_signal_the_store_or_logs_could_not_take_is_rejected(field: str, value: Any, said: str) -> None:
    """A plugin's signal is a Struct msgspec does not type-check when it is built: a reasoning that is not
    text (or not valid Unicode) or a ts that is not a time would reach the decision log's writer, whose
    failure stops the engine, and the JSON logs. It is rejected here (E005, naming the agent) instead."""
    class LooseAgent(FixedAgent):
        def analyze(self, snapshot: MarketSnapshot) -> Any:
            fields: dict[str, Any] = {"reasoning": "fine", "ts": 0, field: value}
            return AgentSignal(agent_id=self.id, action=Action.TRAIL_BUY, confidence=0.9, trail_distance=0.02,
                               **fields)

    orch, _, clock, _ = make([LooseAgent("loose", B, 0.9), FixedAgent("a", S, 0.9)])
    d = (await feed(orch, clock, flat(WARM)))[-1]
    assert d is not None and [s.agent_id for s in d.signals] == ["a"]
    failure = orch.failures[-1]
    assert failure.agent_id == "loose" and failure.code == "E005" and said in str(failure), str(failure)


async def test_a_signal_without_a_time_is_taken_at_the_bars() -> None:
    class NoClock(FixedAgent):
        def analyze(self, snapshot: MarketSnapshot) -> Any:
            return AgentSignal(agent_id=self.id, action=Action.TRAIL_BUY, confidence=0.9, trail_distance=0.02,
                               reasoning="no clock", ts=None)  # type: ignore[arg-type]

    orch, _, clock, _ = make([NoClock("plugin", B, 0.9)])
    d = (await feed(orch, clock, flat(WARM)))[-1]
    assert d is not None and [(s.agent_id, s.ts) for s in d.signals] == [("plugin", 0)] and not orch.failures


async def test_a_numpy_time_and_a_plain_string_urgency_are_taken_as_they_mean() -> None:
    class NumpyAgent(FixedAgent):
        def analyze(self, snapshot: MarketSnapshot) -> Any:
            return AgentSignal(agent_id=self.id, action=Action.TRAIL_BUY, confidence=0.9, trail_distance=0.02,
                               reasoning="numpy clock", ts=np.int64(snapshot.now),  # type: ignore[arg-type]
                               urgency="high")  # type: ignore[arg-type]

    orch, _, clock, _ = make([NumpyAgent("plugin", B, 0.9)])
    d = (await feed(orch, clock, flat(WARM)))[-1]
    assert d is not None and not orch.failures
    (sig,) = d.signals
    assert type(sig.ts) is int and sig.ts == clock.now_ns() and sig.urgency is Urgency.HIGH


def test_invalid_batch_output_is_refused_whole() -> None:
    from trdr_tui.agents.protocol import SignalArrays
    from trdr_tui.core.errors import NotAvailable

    class BadBatch(FixedAgent):
        def analyze_batch(self, features: Any) -> SignalArrays:
            n = len(features)
            conf = np.full(n, 0.5)
            conf[7] = 1.5
            return SignalArrays(np.zeros(n, dtype=np.int8), conf, np.full(n, 0.02))

    orch, _, _, _ = make([BadBatch("bad")])
    with pytest.raises(NotAvailable, match="bar 7"):
        orch.precompute(flat(200))
    assert orch.batch_arrays is None and orch.failures[-1].agent_id == "bad"
