"""The ensemble decision source: the AR forecaster, weights learned on a training window, batch =
streaming, checkpoints, and selecting it in config."""

from __future__ import annotations

import asyncio
import json

import msgspec
import numpy as np
import pytest

from tests.agents.conftest import CONTEXT, bars_from_closes
from trdr_tui.agents.ensemble import EnsembleDecisionSource, EnsembleModel, ar_forecasts, fit_ar, fit_ensemble
from trdr_tui.agents.experimental.rl import QPolicy, core_consensus_batch, train
from trdr_tui.agents.factory import build_decision_source, build_orchestrator
from trdr_tui.backtest.params import new_version_id
from trdr_tui.config import convert_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import ConfigError
from trdr_tui.market.indicators import compute_features
from trdr_tui.store import Store
from trdr_tui.store.sessions import ParameterRepository, ParameterVersion

CORE = {"agents": {"enabled": ["volatility", "momentum", "volume_profile", "market_structure", "regime"]}}


def panel():  # type: ignore[no-untyped-def]
    return build_orchestrator(convert_settings(CORE), bus=EventBus(), clock=SimClock(0))


def test_ar_fit_recovers_a_known_process_and_forecasts_with_its_filter() -> None:
    rng = np.random.default_rng(0)
    r = np.zeros(20000)
    for t in range(2, len(r)):
        r[t] = 0.0001 + 0.5 * r[t - 1] - 0.2 * r[t - 2] + rng.normal(0, 0.01)
    logc = np.concatenate(([0.0], np.cumsum(r)))
    params = fit_ar(logc, 2)
    np.testing.assert_allclose(params, [0.0001, 0.5, -0.2], atol=0.02)
    f = ar_forecasts(logc, params)
    assert f[-1] == pytest.approx(params[0] + params[1] * r[-1] + params[2] * r[-2])


@pytest.fixture(scope="module")
def fitted(real_bars: CandleArrays) -> tuple[EnsembleModel, QPolicy]:
    f = compute_features(real_bars[:3000])
    policy = train(f, core_consensus_batch(f, CONTEXT), fee=0.006, episodes=3, seed=1)
    return fit_ensemble(panel(), real_bars[3000:5000], rl_policy=policy), policy


def test_weights_are_learned_non_negative_and_sum_to_one(fitted: tuple[EnsembleModel, QPolicy],
                                                         real_bars: CandleArrays) -> None:
    model, policy = fitted
    assert model.members == ["panel", "rl", "ar"]
    assert all(w >= 0 for w in model.weights) and sum(model.weights) == pytest.approx(1.0)
    again = fit_ensemble(panel(), real_bars[3000:5000], rl_policy=policy)
    assert again == model  # deterministic
    with pytest.raises(ConfigError, match="at least 500"):
        fit_ensemble(panel(), real_bars[:400], rl_policy=None)


def test_a_member_that_predicts_gets_the_weight() -> None:
    # A market whose every 24-bar move is a steady drift up: an AR model fitted to it forecasts up and
    # the panel (contrarian core agents in a calm uptrend) mostly holds, so the forecaster earns the weight.
    rng = np.random.default_rng(2)
    r = np.zeros(3000)
    for t in range(1, len(r)):
        r[t] = 0.0004 + 0.9 * r[t - 1] + rng.normal(0, 0.001)
    model = fit_ensemble(panel(), bars_from_closes(100 * np.exp(np.cumsum(r))), rl_policy=None)
    assert model.weights[model.members.index("ar")] > 0.5


def test_batch_equals_streaming_and_checkpoint(fitted: tuple[EnsembleModel, QPolicy], real_bars: CandleArrays) -> None:
    model, policy = fitted
    bars = real_bars[5000:6200]
    batch = EnsembleDecisionSource(panel(), model, policy)
    batch.precompute(bars)
    streamed = asyncio.run(_stream(EnsembleDecisionSource(panel(), model, policy), bars))
    valid = [i for i, d in enumerate(streamed) if d is not None]
    assert len(valid) > 1000
    for i in valid:
        b, s = batch.decision_at(i), streamed[i]
        assert b is not None and s is not None
        assert b.action is s.action and b.confidence == pytest.approx(s.confidence, abs=1e-9)
    first = EnsembleDecisionSource(panel(), model, policy)
    asyncio.run(_stream(first, bars[:600]))
    resumed = EnsembleDecisionSource(panel(), model, policy)
    resumed.set_state(json.loads(json.dumps(first.get_state())))
    rest = asyncio.run(_stream(resumed, bars[600:]))
    assert [(d.action, d.reasoning) for d in rest] == [(d.action, d.reasoning) for d in streamed[600:]]  # type: ignore[union-attr]


async def _stream(src: EnsembleDecisionSource, bars: CandleArrays) -> list:
    return [await src.on_candle(c) for c in bars.candles()]


def test_selected_in_config(tmp_path, fitted: tuple[EnsembleModel, QPolicy]) -> None:  # type: ignore[no-untyped-def]
    model, policy = fitted
    with Store(tmp_path / "e.duckdb") as store:
        repo = ParameterRepository(store)
        for name, params in (("ens", model.to_parameters()), ("pol", policy.to_parameters())):
            repo.save(ParameterVersion(id=new_version_id(), name=name, created_at=1, parameters=params))
        s = convert_settings({"agents": {**CORE["agents"], "decision_source": "ensemble", "ensemble_model": "ens",
                                         "rl_policy": "pol"}})
        src = build_decision_source(s, bus=EventBus(), clock=SimClock(0), store=store)
        assert isinstance(src, EnsembleDecisionSource) and src.model == model
        assert src.rl is not None and src.rl.policy == policy
        plain = build_decision_source(convert_settings(CORE), bus=EventBus(), clock=SimClock(0), store=store)
        assert not isinstance(plain, EnsembleDecisionSource)
        no_rl = msgspec.structs.replace(s, agents=msgspec.structs.replace(s.agents, rl_policy=""))
        with pytest.raises(ConfigError, match="fitted with the rl agent"):
            build_decision_source(no_rl, bus=EventBus(), clock=SimClock(0), store=store)
    with pytest.raises(ConfigError, match="needs `ensemble_model`"):
        convert_settings({"agents": {"decision_source": "ensemble"}})


def test_a_backtest_without_a_store_reads_the_configured_database(tmp_path, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                                                  fitted: tuple[EnsembleModel, QPolicy]) -> None:
    model, _ = fitted
    db = tmp_path / "e.duckdb"
    s = convert_settings({"agents": {**CORE["agents"], "decision_source": "ensemble", "ensemble_model": "ens"}})
    monkeypatch.setenv("TRDR_DB", str(db))
    with pytest.raises(ConfigError, match="no database at"):
        build_decision_source(s, bus=EventBus(), clock=SimClock(0))
    no_rl = msgspec.structs.replace(model, members=["panel", "ar"], weights=[0.5, 0.5])
    with Store(db) as store:
        ParameterRepository(store).save(ParameterVersion(id=new_version_id(), name="ens", created_at=1,
                                                         parameters=no_rl.to_parameters()))
    src = build_decision_source(s, bus=EventBus(), clock=SimClock(0))
    assert isinstance(src, EnsembleDecisionSource) and src.model == no_rl and src.rl is None
