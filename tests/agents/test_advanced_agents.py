"""The advanced agents (time decay, microstructure, correlation, sentiment): crafted series, the
real hourly data (batch equals streaming on every bar), the read-only book and missing reference data."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.agents.conftest import HOUR_NS, T0, bars_from_closes, crash
from trdr_tui.agents.advanced.correlation import CorrelationAgent
from trdr_tui.agents.advanced.microstructure import MicrostructureAgent, abdi_ranaldo_terms
from trdr_tui.agents.advanced.sentiment import SentimentAgent
from trdr_tui.agents.advanced.time_decay import TimeDecayAgent
from trdr_tui.agents.orchestrator import Orchestrator, OrchestratorConfig
from trdr_tui.agents.protocol import ACTION_CODES, OpenOrderView
from trdr_tui.agents.sources import MemoryCandles
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import NotAvailable
from trdr_tui.core.events import GridLevel, GridSnapshot
from trdr_tui.core.types import Action, OrderType, Side, Tick

REAL_SLICE = 6000  # bars of the real file for parity (every agent's windows fill many times over)


def reference_for(bars: CandleArrays, seed: int = 7, beta: float = 0.9) -> CandleArrays:
    """A correlated 'second product': beta × our log returns plus its own noise."""
    rng = np.random.default_rng(seed)
    r = np.diff(np.log(bars.close), prepend=np.log(bars.close[0]))
    close = 50.0 * np.exp(np.cumsum(beta * r + rng.normal(0.0, 0.004, len(bars))))
    return bars_from_closes(close, start=int(bars.ts[0]))


def panel(agent: object, candles: MemoryCandles | None = None, reference: str = "ETH-USD") -> Orchestrator:
    return Orchestrator([agent], OrchestratorConfig(symbol="BTC-USD", params={"reference_symbol": reference}),  # type: ignore[list-item]
                        bus=EventBus(), clock=SimClock(0), candles=candles)


async def stream(orch: Orchestrator, bars: CandleArrays, ticks: dict[int, Tick] | None = None) -> list:
    out = []
    for i, c in enumerate(bars.candles()):
        if ticks and i in ticks:
            orch.on_tick(ticks[i])
        d = await orch.on_candle(c)
        out.append(None if d is None else d.signals[0])
    return out


def assert_parity(make, bars: CandleArrays) -> tuple[np.ndarray, list]:
    """Batch equals streaming on every bar: actions equal, confidence and trail within 1e-9, and the
    batch bar's reasoning (`explain`) is the streaming one."""
    batch = make()
    arrays = batch.precompute(bars)
    signals = asyncio.run(stream(make(), bars))
    idx = [i for i, s in enumerate(signals) if s is not None]
    assert np.array_equal(arrays.valid, [s is not None for s in signals])
    assert np.array_equal([ACTION_CODES[signals[i].action] for i in idx], arrays.agent_action[idx, 0])
    np.testing.assert_allclose([signals[i].confidence for i in idx], arrays.agent_confidence[idx, 0],
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([signals[i].trail_distance for i in idx], arrays.agent_trail[idx, 0], rtol=1e-9)
    for i in (idx[0], idx[len(idx) // 2], idx[-1]):
        d = batch.decision_at(i)
        assert d is not None and d.signals[0].reasoning == signals[i].reasoning
    return arrays.agent_action[idx, 0], signals


@pytest.mark.parametrize("make_agent", [TimeDecayAgent, MicrostructureAgent, SentimentAgent])
def test_real_data_batch_equals_streaming(make_agent, real_bars: CandleArrays) -> None:
    actions, _ = assert_parity(lambda: panel(make_agent()), real_bars[:REAL_SLICE])
    if make_agent is not MicrostructureAgent:  # the spread agent never votes a side from candles alone
        assert (actions == 1).sum() > 0 and (actions == 2).sum() > 0


def test_correlation_real_data_batch_equals_streaming(real_bars: CandleArrays) -> None:
    bars = real_bars[:REAL_SLICE]
    ref = MemoryCandles({("ETH-USD", "1h"): reference_for(bars)})
    actions, signals = assert_parity(lambda: panel(CorrelationAgent(), ref), bars)
    assert (actions == 1).sum() > 0 and (actions == 2).sum() > 0
    assert any("ρ" in s.reasoning and "ETH-USD" in s.reasoning for s in signals if s is not None)


def test_sentiment_buys_maximum_pain_and_explains_it() -> None:
    bars = crash(n_calm=250, n_crash=15)
    sig = asyncio.run(stream(panel(SentimentAgent()), bars))[-1]
    assert sig.action is Action.TRAIL_BUY and sig.confidence > 0.7
    assert "maximum pain" in sig.reasoning and "RSI" in sig.reasoning


def test_sentiment_holds_in_a_quiet_market() -> None:
    closes = 100.0 * (1 + 0.002 * np.sin(np.arange(300) * 0.7))
    sig = asyncio.run(stream(panel(SentimentAgent()), bars_from_closes(closes)))[-1]
    assert sig.action is Action.HOLD and "no extreme" in sig.reasoning


def test_time_decay_tightens_the_trail_on_a_stale_price() -> None:
    n = 300
    moving = 100.0 * np.exp(0.01 * np.arange(n))  # +1 % a bar: never dwells
    flat = np.concatenate((100.0 * np.exp(0.01 * np.arange(250)), np.full(50, 100.0 * np.exp(2.49))))
    flat[-1] *= 0.9995  # the low end of the flat range
    moving_sig = asyncio.run(stream(panel(TimeDecayAgent()), bars_from_closes(moving)))[-1]
    stale_sig = asyncio.run(stream(panel(TimeDecayAgent()), bars_from_closes(flat, wick=0.001)))[-1]
    assert moving_sig.action is Action.HOLD and "price moving" in moving_sig.reasoning
    assert "stale price" in stale_sig.reasoning
    assert stale_sig.trail_distance < moving_sig.trail_distance
    assert stale_sig.action is Action.TRAIL_BUY


class FrozenBook:
    """A BookView as the engine gives it: frozen copies of the grid and the orders."""

    def __init__(self, grid: GridSnapshot | None, orders: tuple[OpenOrderView, ...]) -> None:
        self._grid, self._orders = grid, orders

    def grid(self) -> GridSnapshot | None:
        return self._grid

    def open_orders(self) -> tuple[OpenOrderView, ...]:
        return self._orders


def test_time_decay_reads_the_book_and_the_panel_then_streams() -> None:
    bars = bars_from_closes(100.0 * np.exp(0.001 * np.sin(np.arange(200) / 5)))
    last_ts = int(bars.ts[-1])
    old = OpenOrderView(id="o1", side=Side.BUY, type=OrderType.TRAILING, created_ts=last_ts - 40 * HOUR_NS,
                        size=0.1, trail=0.015, trigger=101.0)
    grid = GridSnapshot(ts=last_ts, symbol="BTC-USD", center=100.0, spacing=1.0,
                        levels=(GridLevel(price=100.0, side=Side.BUY, state="armed"),))
    orch = panel(TimeDecayAgent())
    orch.attach_book(FrozenBook(grid, (old,)))
    with pytest.raises(NotAvailable, match="time_decay"):
        orch.precompute(bars)
    orch.clock.advance_to(last_ts + HOUR_NS)  # type: ignore[attr-defined]
    sig = asyncio.run(stream(orch, bars))[-1]
    assert "grid level 100.00" in sig.reasoning
    assert "trailing order(s) stale, the oldest a buy" in sig.reasoning
    assert sig.trail_distance < 0.015
    with pytest.raises(AttributeError):
        old.size = 1.0  # type: ignore[misc]  # what agents see is frozen


def test_abdi_ranaldo_recovers_a_known_spread() -> None:
    # Simulate a mid price (random walk) observed through trades at bid or ask: the estimator should
    # find the quoted spread (Abdi & Ranaldo 2017, simulation design of §2).
    rng = np.random.default_rng(3)
    spread, per_bar, n = 0.004, 60, 3000
    mid = np.exp(np.cumsum(rng.normal(0.0, 0.0006, n * per_bar)))
    trades = mid * (1 + spread / 2 * rng.choice([-1.0, 1.0], n * per_bar))
    t = trades.reshape(n, per_bar)
    est = np.sqrt(max(np.nanmean(abdi_ranaldo_terms(t.max(1), t.min(1), t[:, -1])), 0.0))
    assert est == pytest.approx(spread, rel=0.25)


def test_microstructure_names_its_source_and_reads_the_live_book() -> None:
    closes = 100.0 * (1 + 0.003 * np.sin(np.arange(250) * 0.9))
    bars = bars_from_closes(closes)
    sig = asyncio.run(stream(panel(MicrostructureAgent()), bars))[-1]
    assert "Abdi–Ranaldo (2017)" in sig.reasoning
    last = len(bars) - 1
    heavy_bids = Tick("BTC-USD", int(bars.ts[last]), 100.0, 0.1, bid=99.99, ask=100.01, bid_size=9.0, ask_size=1.0)
    sig = asyncio.run(stream(panel(MicrostructureAgent()), bars, {last: heavy_bids}))[-1]
    assert "Coinbase ticker" in sig.reasoning and sig.action is Action.TRAIL_BUY
    assert "imbalance +0.80" in sig.reasoning
    wide = Tick("BTC-USD", int(bars.ts[last]), 100.0, 0.1, bid=99.5, ask=100.5, bid_size=9.0, ask_size=1.0)
    sig = asyncio.run(stream(panel(MicrostructureAgent()), bars, {last: wide}))[-1]
    assert sig.action is Action.HOLD and sig.confidence >= 0.5 and "standing aside" in sig.reasoning


def test_correlation_without_reference_data_is_unavailable_and_the_panel_goes_on(real_bars: CandleArrays) -> None:
    bars = real_bars[:400]
    orch = panel(CorrelationAgent(), MemoryCandles({}))
    arrays = orch.precompute(bars)
    assert (arrays.agent_confidence[:, 0] == 0.0).all() and (arrays.agent_action[:, 0] == 0).all()
    sig = asyncio.run(stream(panel(CorrelationAgent(), MemoryCandles({})), bars))[-1]
    assert sig.confidence == 0.0
    assert "trdr data backfill --symbol ETH-USD --timeframe 1h" in sig.reasoning


def test_correlation_buys_when_cheap_against_a_correlated_reference() -> None:
    n = 300
    rng = np.random.default_rng(5)
    common = np.cumsum(rng.normal(0.0, 0.01, n))
    ours = 100.0 * np.exp(common + rng.normal(0.0, 0.001, n))
    ref_close = 50.0 * np.exp(common + rng.normal(0.0, 0.001, n))
    ours[-1] *= 0.98  # ours drops 2 % while the reference does not
    bars = bars_from_closes(ours)
    ref = MemoryCandles({("ETH-USD", "1h"): bars_from_closes(ref_close, start=T0)})
    sig = asyncio.run(stream(panel(CorrelationAgent(), ref), bars))[-1]
    assert sig.action is Action.TRAIL_BUY, sig.reasoning
    assert "cheap against ETH-USD" in sig.reasoning


def test_stateful_parts_survive_a_checkpoint(real_bars: CandleArrays) -> None:
    bars = real_bars[:600]
    whole = asyncio.run(stream(panel(SentimentAgent()), bars))
    first = panel(SentimentAgent())
    asyncio.run(stream(first, bars[:400]))
    resumed = panel(SentimentAgent())
    resumed.set_state(first.get_state())
    rest = asyncio.run(stream(resumed, bars[400:]))
    assert [s.action for s in rest] == [s.action for s in whole[400:]]
