"""The Q-learning agent: what it learns on crafted markets, the seed, batch = streaming with a trained
policy on real data, checkpoints, and `trdr train rl` saving the table the agent then loads."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from tests.agents.conftest import CONTEXT, bars_from_closes
from tests.agents.test_advanced_agents import assert_parity, stream
from tests.conftest import HOURLY_CDD
from trdr_tui.agents import build_orchestrator
from trdr_tui.agents.experimental.rl import (
    QPolicy,
    RLTradingAgent,
    core_consensus_batch,
    evaluate,
    train,
)
from trdr_tui.agents.orchestrator import Orchestrator, OrchestratorConfig
from trdr_tui.cli import main
from trdr_tui.config import convert_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.types import Action
from trdr_tui.market.indicators import compute_features
from trdr_tui.store import Store
from trdr_tui.store.sessions import ParameterRepository

FEE = 0.006  # Coinbase's entry-tier taker fee


def trained(bars: CandleArrays, episodes: int = 3, seed: int = 1) -> QPolicy:
    f = compute_features(bars)
    return train(f, core_consensus_batch(f, CONTEXT), fee=FEE, episodes=episodes, seed=seed)


def panel(policy: QPolicy | None) -> Orchestrator:
    params = {"rl_policy": policy.to_parameters()} if policy is not None else {}
    return Orchestrator([RLTradingAgent()], OrchestratorConfig(symbol="BTC-USD", params=params), bus=EventBus(),
                        clock=SimClock(0))


def trend(n: int, step: float, seed: int = 3) -> CandleArrays:
    rng = np.random.default_rng(seed)
    return bars_from_closes(100 * np.exp(np.cumsum(step + rng.normal(0, 0.002, n))))


def test_learns_to_hold_a_rising_market_and_to_stay_out_of_a_falling_one() -> None:
    # +0.3 % a bar (noise 0.2 %): buy once and hold; −0.3 % a bar: never buy. Fees are paid on every trade.
    for step, long_is_right in ((0.003, True), (-0.003, False)):
        bars = trend(1500, step)
        policy = trained(bars, episodes=10)
        f = compute_features(bars)
        result = evaluate(policy, f, core_consensus_batch(f, CONTEXT))
        if long_is_right:
            assert 1 <= result.trades <= 3 and result.total_return > 0.5 * result.buy_and_hold > 0
        else:
            assert result.buy_and_hold < -0.9 and result.total_return > -0.05


def test_one_seed_one_table(real_bars: CandleArrays) -> None:
    bars = real_bars[:2500]
    a, b, c = trained(bars, seed=5), trained(bars, seed=5), trained(bars, seed=6)
    assert a.q == b.q and a.visits == b.visits
    assert a.q != c.q  # exploration follows the seed


def test_batch_equals_streaming_with_a_trained_policy(real_bars: CandleArrays) -> None:
    policy = trained(real_bars[:3000])
    actions, signals = assert_parity(lambda: panel(policy), real_bars[3000:4500])
    assert (actions == 1).sum() > 0 and (actions == 2).sum() > 0
    assert any("policy goes long" in s.reasoning for s in signals if s is not None)


def test_position_survives_a_checkpoint(real_bars: CandleArrays) -> None:
    policy = trained(real_bars[:3000])
    bars = real_bars[3000:3800]
    whole = asyncio.run(stream(panel(policy), bars))
    first = panel(policy)
    asyncio.run(stream(first, bars[:500]))
    resumed = panel(policy)
    resumed.set_state(json.loads(json.dumps(first.get_state())))
    rest = asyncio.run(stream(resumed, bars[500:]))
    assert [(s.action, s.reasoning) for s in rest] == [(s.action, s.reasoning) for s in whole[500:]]


def test_without_a_policy_it_says_how_to_train_one(real_bars: CandleArrays) -> None:
    sig = asyncio.run(stream(panel(None), real_bars[:200]))[-1]
    assert sig.action is Action.HOLD and sig.confidence == 0.0
    assert "trdr train rl --data FILE" in sig.reasoning


def test_train_rl_saves_a_version_the_agent_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "t.duckdb"
    base = ["--db", str(db), "train", "rl", "--data", str(HOURLY_CDD), "--start", "2017-07-01", "--end", "2017-09-01"]
    assert main([*base, "--episodes", "0"]) == 2  # refused before anything is written
    assert "--episodes must be at least 1" in capsys.readouterr().err
    assert main([*base, "--test-start", "2017-08-01"]) == 2
    assert "unseen in training" in capsys.readouterr().err
    runs = []
    for _ in range(2):
        assert main([*base, "--episodes", "2", "--test-start", "2017-09-01", "--test-end", "2017-10-01", "--json"]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0]["test"]["bars"] > 500 and runs[0]["train"]["bars"] > 1000
    with Store(db) as store:
        repo = ParameterRepository(store)
        a, b = (repo.find(r["version"]) for r in runs)
        assert a.parameters == b.parameters and "rl-policy" in a.tags  # same seed, same table
        settings = convert_settings({"agents": {"enabled": ["volatility", "rl"], "rl_policy": runs[1]["version"]}})
        orch = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0), store=store)
        agent = orch.agents[1]
        assert isinstance(agent, RLTradingAgent) and agent.policy is not None
        assert agent.policy.q == QPolicy.from_parameters(a.parameters).q
