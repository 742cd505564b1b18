"""Each core agent on crafted series (uptrend, range, crash, volume spike) and on the real hourly data.

The expected actions follow from each agent's documented rules; every case is checked through both
the streaming path (MarketState fed candle by candle → analyze) and the batch path (analyze_batch).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.agents.conftest import CONTEXT, SERIES, crash
from trdr_tui.agents.protocol import ACTION_CODES, CODE_ACTIONS, MarketSnapshot
from trdr_tui.agents.registry import BUILTINS, CORE_IDS
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.types import Action, AgentSignal, Urgency
from trdr_tui.market.indicators import compute_features
from trdr_tui.market.state import MarketState
from trdr_tui.market.streaming import FeatureRow, feature_row

B, S, H = Action.TRAIL_BUY, Action.TRAIL_SELL, Action.HOLD

# series → agent → expected action at the last bar
EXPECTED: dict[str, dict[str, Action]] = {
    # trend followers buy, the exhaustion detector sells into strength (with a trailing stop)
    "uptrend": {"volatility": H, "momentum": S, "volume_profile": H, "market_structure": B, "regime": B},
    # at the floor of a range: structure sees support, nothing else is stretched
    "range": {"volatility": H, "momentum": H, "volume_profile": H, "market_structure": B, "regime": H},
    # a crash: volatility and regime stand aside, momentum sees exhaustion, structure sees the break
    "crash": {"volatility": H, "momentum": B, "volume_profile": H, "market_structure": S, "regime": H},
    # a red whale bar: capitulation for volume, stretched below the band for volatility
    "spike_down": {"volatility": B, "momentum": H, "volume_profile": B, "market_structure": S, "regime": H},
    "spike_up": {"volatility": S, "momentum": H, "volume_profile": S, "market_structure": B, "regime": H},
}


def _agent(agent_id: str):  # type: ignore[no-untyped-def]
    agent = BUILTINS[agent_id]()
    agent.initialize(CONTEXT)
    return agent


def _stream_last(agent_id: str, bars: CandleArrays) -> AgentSignal:
    state = MarketState("BTC-USD")
    for c in bars.candles():
        row = state.update(c)
    out = _agent(agent_id).analyze(MarketSnapshot(symbol="BTC-USD", now=123, index=state.index, features=row))
    assert isinstance(out, AgentSignal)
    return out


@pytest.mark.parametrize("series", list(EXPECTED))
@pytest.mark.parametrize("agent_id", CORE_IDS)
def test_crafted_series(series: str, agent_id: str) -> None:
    bars = SERIES[series]()
    expected = EXPECTED[series][agent_id]
    sig = _stream_last(agent_id, bars)
    assert sig.action == expected, sig.reasoning
    assert sig.agent_id == agent_id
    assert sig.reasoning and "warming up" not in sig.reasoning
    assert 0.0 <= sig.confidence <= 1.0
    assert CONTEXT.min_trail <= sig.trail_distance <= CONTEXT.max_trail
    batch = _agent(agent_id).analyze_batch(compute_features(bars))
    assert CODE_ACTIONS[int(batch.action[-1])] == expected
    assert batch.confidence[-1] == pytest.approx(sig.confidence, rel=1e-9)
    assert batch.trail[-1] == pytest.approx(sig.trail_distance, rel=1e-9)


def test_whale_bar_is_urgent_and_crash_onset_is_capitulation() -> None:
    sig = _stream_last("volume_profile", SERIES["spike_down"]())
    assert sig.urgency == Urgency.HIGH and "whale" in sig.reasoning
    onset = crash()[:252]  # two bars into the crash: triple volume is still a spike
    assert _stream_last("volume_profile", onset).action == Action.TRAIL_BUY


def test_volatility_trail_follows_atr_and_widens_in_calm() -> None:
    agent = _agent("volatility")
    f = feature_row(compute_features(SERIES["uptrend"]()), 299)
    normal = agent.analyze(MarketSnapshot(symbol="X", now=0, index=299, features=f))
    assert normal.trail_distance == pytest.approx(2.0 * f.atr_pct)
    calm_row = f.__class__(**{**{k: getattr(f, k) for k in f.__struct_fields__}, "atr_pct_ma": f.atr_pct * 2})
    calm = agent.analyze(MarketSnapshot(symbol="X", now=0, index=299, features=calm_row))
    assert calm.trail_distance == pytest.approx(2.0 * f.atr_pct * 1.3)
    assert "calm" in calm.reasoning


def test_agents_hold_while_warming_up() -> None:
    bars = SERIES["uptrend"]()[:12]  # shorter than every window
    for agent_id in CORE_IDS:
        sig = _stream_last(agent_id, bars)
        assert sig.action == Action.HOLD and sig.confidence == 0.0, agent_id


def test_regime_multipliers_follow_the_prd() -> None:
    agent = _agent("regime")
    names = {"uptrend": "trending", "range": "ranging", "crash": "volatile"}
    mult = {"trending": 1.5, "ranging": 0.7, "volatile": 2.0}
    for series, regime in names.items():
        f = compute_features(SERIES[series]())
        row = feature_row(f, len(f) - 1)
        assert regime in agent.analyze(MarketSnapshot(symbol="X", now=0, index=0, features=row)).reasoning
        assert agent.trail_multiplier(row) == mult[regime]
        assert agent.multipliers(agent.regime_codes(f))[-1] == mult[regime]


# --- real data ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_features(real_bars: CandleArrays):  # type: ignore[no-untyped-def]
    return compute_features(real_bars)


@pytest.fixture(scope="module")
def streamed_rows(real_bars: CandleArrays) -> list[FeatureRow]:
    """The real data fed through MarketState one candle at a time."""
    state = MarketState("BTC-USD")
    return [state.update(c) for c in real_bars.candles()]


@pytest.mark.parametrize("agent_id", CORE_IDS)
def test_real_data_batch_equals_streaming(agent_id: str, streamed_rows: list[FeatureRow], real_features) -> None:  # type: ignore[no-untyped-def]
    """Streaming (features candle by candle) and batch give the same signal on every bar."""
    agent = _agent(agent_id)
    batch = agent.analyze_batch(real_features)
    n = len(streamed_rows)
    conf = np.empty(n)
    actions = np.empty(n, dtype=np.int8)
    for i, row in enumerate(streamed_rows):
        sig = agent.analyze(MarketSnapshot(symbol="BTC-USD", now=row.ts, index=i, features=row))
        actions[i] = ACTION_CODES[sig.action]
        conf[i] = sig.confidence
    assert np.array_equal(actions, batch.action)
    np.testing.assert_allclose(conf, batch.confidence, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("agent_id", CORE_IDS)
def test_real_data_every_agent_takes_both_sides(agent_id: str, real_features) -> None:  # type: ignore[no-untyped-def]
    """Over 2017-2019 (bull run, crash, range) each agent buys and sells sometimes, and mostly holds."""
    out = _agent(agent_id).analyze_batch(real_features)
    counts = np.bincount(out.action, minlength=3)
    n = len(out.action)
    assert counts[1] > 0.005 * n and counts[2] > 0.005 * n, counts
    assert np.all((out.confidence >= 0) & (out.confidence <= 1))
    assert np.all(np.isfinite(out.trail)) and np.all(out.trail > 0)


def test_real_data_momentum_buys_oversold_in_the_2018_crash(real_bars: CandleArrays, real_features) -> None:  # type: ignore[no-untyped-def]
    """Sanity on a known episode: the Feb 2018 capitulation (BTC ~6,000) makes momentum buy."""
    out = _agent("momentum").analyze_batch(real_features)
    day = (real_bars.ts >= 1517875200 * 10**9) & (real_bars.ts < 1517961600 * 10**9)  # 2018-02-06 UTC
    assert (out.action[day] == 1).any()
    assert not math.isnan(float(real_features.rsi[day][0]))


def test_momentum_reads_macd_divergence() -> None:
    """A new 20-bar low with RSI at its low too: only a positive MACD histogram makes it a divergence."""
    base = feature_row(compute_features(SERIES["range"]()), 299)
    fields = {k: getattr(base, k) for k in base.__struct_fields__}
    fields.update(rsi=35.0, rsi_min=35.0, rsi_max=60.0, rsi_slow=45.0, close_min=base.close)
    agent = _agent("momentum")
    up = agent.analyze(MarketSnapshot(symbol="X", now=0, index=0, features=FeatureRow(**{**fields, "macd_hist": 0.4})))
    down = agent.analyze(MarketSnapshot(symbol="X", now=0, index=0, features=FeatureRow(**{**fields, "macd_hist": -0.4})))
    assert up.action == Action.TRAIL_BUY and "MACD histogram +0.40" in up.reasoning
    assert down.action == Action.HOLD


def test_market_structure_levels_follow_the_swings() -> None:
    """The support/resistance text is kept between bars, and changes when a swing does."""
    base = feature_row(compute_features(SERIES["range"]()), 299)
    fields = {k: getattr(base, k) for k in base.__struct_fields__}
    agent = _agent("market_structure")

    def words(low: float, high: float) -> str:
        row = FeatureRow(**{**fields, "swing_low": low, "swing_high": high, "close": (low + high) / 2.0})
        return agent.analyze(MarketSnapshot(symbol="X", now=0, index=0, features=row)).reasoning

    assert "support 90.00, resistance 110.00" in words(90.0, 110.0)
    assert "support 90.00, resistance 110.00" in words(90.0, 110.0)
    assert "support 90.00, resistance 111.25" in words(90.0, 111.25)
    assert "support 89.50, resistance 111.25" in words(89.5, 111.25)
