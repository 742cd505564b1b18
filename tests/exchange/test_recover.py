"""Crash-only restart in one process: checkpoint, then more happens, then a fresh engine recovers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.exchange.conftest import FAST_RETRY
from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.config import load_settings
from trdr_tui.core.types import OrderStatus, Side
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.loop import Engine
from trdr_tui.engine.recovery import recover_from_store, restore_latest
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor
from trdr_tui.exchange.coinbase_feed import CoinbaseFeed
from trdr_tui.exchange.coinbase_rest import CoinbaseRest
from trdr_tui.store import Store
from trdr_tui.store.orders import latest_live_run

RUN = "recover-run"


def live_engine(rest: CoinbaseRest, fake: FakeExchange, store: Store) -> tuple[Engine, CoinbaseExecutor]:
    feed = CoinbaseFeed("BTC-USD", "1h", ws_url=fake.ws_url, rest=rest)
    executor = CoinbaseExecutor(rest, symbol="BTC-USD", store=store, run_id=RUN, retry=FAST_RETRY)
    engine = build_engine(load_settings(env={}), mode="live", feed=feed, executor=executor, store=store,
                          run_id=RUN, preset="simple-trailing", checkpoint_interval_s=3600)
    return engine, executor


async def test_orders_and_fills_after_the_checkpoint_are_not_lost(rest: CoinbaseRest, fake: FakeExchange,
                                                                  tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    store = Store(db)
    engine, executor = live_engine(rest, fake, store)
    price = float(fake.price)
    om = engine.orders
    # armed below the price, `fired` triggers when the price comes back to it; `resting` (armed at the
    # price) does not
    fired = om.place_trailing(Side.BUY, quote=1000.0, trail=0.02, price=price * 0.9)
    resting = om.place_trailing(Side.BUY, quote=500.0, trail=0.02, price=price)
    engine.checkpoint("auto")  # both armed here
    # after the checkpoint: a market order fills and is booked; then a trailing order fires, the
    # exchange fills it but the answer is lost and the process dies before it learns anything
    market = om.place_market(Side.BUY, 0.01, price=price)
    await om.settle()
    assert market.status is OrderStatus.FILLED
    fake.faults.lose_create_response = 1
    executor.retry = FAST_RETRY.__class__(max_retries=0, initial_s=0.001)
    om.on_price(price)
    await om.settle()
    assert fired.status is OrderStatus.SUBMITTED and fake.order_by_client_id(fired.client_order_id) is not None
    assert len(engine.portfolio.fills) == 1 and len(fake.fills) == 2
    store.close()  # "crash": nothing else is written

    with Store(db) as s:
        assert latest_live_run(s) == RUN  # the run to resume

    store = Store(db)
    engine2, executor2 = live_engine(rest, fake, store)
    assert restore_latest(engine2, store, RUN)  # the checkpoint knows neither fill nor the market order
    assert engine2.portfolio.fills == []
    await recover_from_store(engine2, executor2, store)
    pf = engine2.portfolio
    assert sorted(f.id for f in pf.fills) == sorted(f.trade_id for f in fake.fills)
    assert pf.position == float(fake.balances["BTC"]) and abs(pf.cash - float(fake.balances["USD"])) < 1e-6
    # the order that fired after the checkpoint is not armed again; the one still armed keeps its anchor
    assert [st.order.id for st in engine2.orders.trailing] == [resting.id]
    assert engine2.orders.sequence >= 3  # new orders will not reuse an id written after the checkpoint
    assert fired.id not in engine2.orders.open and market.id not in engine2.orders.open
    store.close()


async def test_a_resumed_live_engine_recovers_when_it_starts(rest: CoinbaseRest, fake: FakeExchange,
                                                           tmp_path: Path) -> None:
    """The path `trdr --live` takes after a crash: resume_live_run, then run() does the recovery."""
    from trdr_tui.engine.coinbase import resume_live_run

    db = tmp_path / "resume.duckdb"
    store = Store(db)
    engine, _ = live_engine(rest, fake, store)
    market = engine.orders.place_market(Side.BUY, 0.01, price=float(fake.price))
    await engine.orders.settle()
    assert market.status is OrderStatus.FILLED
    pending = engine.orders.place_limit(Side.BUY, 0.01, float(fake.price) * 0.5)
    await engine.orders.settle()
    assert pending.status is OrderStatus.SUBMITTED
    store.close()  # crash: no checkpoint was ever written

    store = Store(db)
    assert latest_live_run(store) == RUN
    engine2, _ = live_engine(rest, fake, store)
    assert resume_live_run(engine2, store) is False  # no checkpoint: the store alone rebuilds the run
    assert engine2.portfolio.fills == []
    task = asyncio.create_task(engine2.run())
    for _ in range(200):
        if engine2.portfolio.fills:
            break
        await asyncio.sleep(0.01)
    await engine2.stop("test")
    await task
    assert [f.id for f in engine2.portfolio.fills] == [f.trade_id for f in fake.fills]
    assert pending.id in engine2.orders.open  # still resting at the exchange: tracked again, not re-sent
    assert len(fake.orders) == 2
    store.close()


def open_book(engine: Engine) -> list[tuple[object, ...]]:
    """The open orders as a restart must bring them back: identity, status, terms, trailing numbers."""
    snaps = {item["order"].id: item.get("trailing") for item in engine.orders.open_state()}  # type: ignore[attr-defined]
    return sorted((o.id, o.client_order_id, o.status, o.type, o.side, o.size, o.price, o.trail, o.filled_size,
                   o.exchange_order_id, snaps[o.id]) for o in engine.orders.open.values())


async def test_checkpoint_then_store_recovery_gives_back_the_same_open_book(rest: CoinbaseRest, fake: FakeExchange,
                                                                            tmp_path: Path) -> None:
    db = tmp_path / "same.duckdb"
    store = Store(db)
    engine, _ = live_engine(rest, fake, store)
    price = float(fake.price)
    om = engine.orders
    armed = [om.place_trailing(Side.BUY, quote=300.0, trail=0.02, price=price),
             om.place_trailing(Side.BUY, size=0.01, trail=0.03, price=price * 1.01)]
    resting = om.place_limit(Side.BUY, 0.01, price * 0.5)
    await om.settle()
    om.on_price(price * 0.995)  # the anchors move: the checkpoint holds more than the arming prices
    assert [o.status for o in armed] == [OrderStatus.ARMED] * 2 and resting.status is OrderStatus.SUBMITTED
    before, seq = open_book(engine), om.sequence
    engine.checkpoint("auto")
    store.close()  # crash

    store = Store(db)
    engine2, executor2 = live_engine(rest, fake, store)
    assert restore_latest(engine2, store, RUN)
    checked, _ = await recover_from_store(engine2, executor2, store)
    assert checked == 1  # only the resting order is asked about: the armed ones never left the engine
    assert open_book(engine2) == before and engine2.orders.sequence == seq
    assert [st.order.id for st in engine2.orders.trailing] == [o.id for o in armed]
    assert len(fake.orders) == 1  # nothing was sent again
    store.close()
