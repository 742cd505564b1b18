"""The correlation agent's reference product in paper mode: a second product on the same WebSocket.

The fake streams BTC-USD (real 2019 hourly bars) and a reference product with its own price path; the
paper engine built from settings (correlation enabled, nothing stored for the reference) builds the
reference's bars from its trades, stores them and hands them to the agent, whose reasoning turns from
"unavailable" into a correlation figure once it has a window of aligned bars.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from tests.exchange.conftest import real_candles
from tests.exchange.test_e2e_engine import run_until
from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.agents.advanced.correlation import CorrelationAgent
from trdr_tui.config import load_settings
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.types import AgentSignal, Candle
from trdr_tui.engine.coinbase import build_coinbase_engine
from trdr_tui.exchange.coinbase_feed import CoinbaseFeed
from trdr_tui.exchange.coinbase_rest import CoinbaseRest
from trdr_tui.store import Store
from trdr_tui.store.candles import CandleRepository

NS = 1_000_000_000
REF = "ETH-USD"


def reference_path(bars: list[Candle]) -> list[Candle]:
    """A product of its own that moves with BTC most of the time: BTC/30 with a slow wobble."""
    out = []
    for i, c in enumerate(bars):
        k = (1 + 0.01 * math.sin(i / 7.0)) / 30.0
        out.append(Candle(c.ts, round(c.open * k, 2), round(c.high * k * 1.001, 2), round(c.low * k * 0.999, 2),
                          round(c.close * k, 2), c.volume * 3))
    return out


def two_product_fake(offset: int = 1000) -> FakeExchange:
    candles = real_candles()[offset:]
    return FakeExchange(candles=candles, heartbeat_s=0.05, step_ns=15 * 60 * NS, start_ns=candles[0].ts,
                        step_interval_s=0.005, data_products={REF: reference_path(candles)})


async def test_paper_engine_streams_the_reference_to_the_agent_and_the_store(tmp_path: Path,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trdr_tui.agents.advanced.correlation")
    fake = two_product_fake()
    await fake.start()
    env = {"TRDR_COINBASE_REST_URL": fake.rest_url, "TRDR_COINBASE_WS_URL": fake.ws_url,
           "TRDR_COINBASE_USER_WS_URL": fake.user_ws_url}
    settings = load_settings(env=env, overrides={"agents.enabled": ["momentum", "correlation"],
                                                 "agents.reference_symbol": REF})
    db = tmp_path / "paper.duckdb"
    store = Store(db)
    assert CandleRepository(store).count(REF, "1h") == 0
    engine = build_coinbase_engine(settings, live=False, store=store)
    feed = engine.feed
    assert isinstance(feed, CoinbaseFeed) and feed.references == [REF]
    said: list[AgentSignal] = []
    engine.bus.subscribe("agent.signal.correlation", lambda _t, s: said.append(s))
    window = CorrelationAgent.window
    try:
        await run_until(engine, feed, lambda: any(s.reasoning.startswith("ρ ") for s in said), timeout=60)
    finally:
        await feed.rest.close()
        await fake.stop()
    # the subscribe messages name both products
    subs = [m for m in fake.subscribe_messages if m.get("channel") == "market_trades"]
    assert subs and subs[0]["product_ids"] == ["BTC-USD", REF]
    # it started without reference data (the engine may run behind the fast fake, so by its first
    # streamed bar the reference bars can already be there)
    assert "unavailable: no stored ETH-USD 1h candles" in caplog.text
    assert "ETH-USD 1h candles now available" in caplog.text
    first = next(s for s in said if s.reasoning.startswith("ρ "))
    assert f"with {REF} over {window} bars" in first.reasoning
    assert engine.record.bars > window  # it took a window of aligned bars, not a lucky first one
    # the reference bars are the fake's own bars for those hours, and they are in the store
    store.sync()
    stored = CandleRepository(store).load(REF, "1h")
    real = {c.ts: c for c in fake.data_products[REF].history}
    assert len(stored) >= window
    for c in stored.candles():
        assert c.close == pytest.approx(real[c.ts].close, abs=0.006)
        assert real[c.ts].low - 0.006 <= c.low <= c.high <= real[c.ts].high + 0.006
    assert CandleRepository(store).count("BTC-USD", "1h") == 0  # only the reference is kept this way
    store.close()
    reopened = Store(db)  # a restart sees them
    assert CandleRepository(reopened).count(REF, "1h") == len(stored)
    reopened.close()


async def test_feed_builds_reference_bars_apart_from_the_stream() -> None:
    fake = two_product_fake()
    await fake.start()
    got: list[tuple[str, Candle]] = []
    rest = CoinbaseRest(fake.rest_url)
    feed = CoinbaseFeed("BTC-USD", "1h", ws_url=fake.ws_url, rest=rest, references=[REF, "BTC-USD"],
                        on_reference=lambda s, c: got.append((s, c)), close_grace_s=0)
    main: list[Candle] = []
    try:
        await feed.start()
        while len(main) < 6:
            item = await feed.get(timeout=10)
            if isinstance(item, Candle):
                main.append(item)
                assert item.close > 1000  # only BTC-USD bars reach the stream
    finally:
        await feed.stop()
        await rest.close()
        await fake.stop()
    assert feed.references == [REF]  # the traded product is never its own reference
    assert {s for s, _ in got} == {REF}
    ref_ts = [c.ts for _, c in got]
    assert ref_ts == sorted(set(ref_ts))  # each bucket once, in order
    assert set(c.ts for c in main[1:]) <= set(ref_ts)  # every BTC bar's hour has its reference bar by then
    real = {c.ts: c for c in fake.data_products[REF].history}
    assert all(c.close == pytest.approx(real[c.ts].close, abs=0.006) for _, c in got)


def test_reference_equal_to_the_symbol_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match="reference_symbol"):
        load_settings(env={}, overrides={"agents.enabled": ["correlation"], "agents.reference_symbol": "BTC-USD"})
    # without the correlation agent the setting is unused and left alone
    load_settings(env={}, overrides={"agents.enabled": ["momentum"], "agents.reference_symbol": "BTC-USD"})


def test_fake_refuses_its_traded_product_as_a_data_product() -> None:
    with pytest.raises(ValueError, match="traded product"):
        FakeExchange(data_products={"BTC-USD": real_candles()[:10]})
