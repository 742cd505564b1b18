"""StateCorruption (E007) in a live run against the fake exchange: the run goes on from its last good
checkpoint only through the live resume, which rebuilds the ledger from the stored fills and reconciles
orders, fills and balances with the exchange before anything is sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from tests.exchange.conftest import FAST_RETRY
from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.config import load_settings
from trdr_tui.core.engine_api import ExecutionReport
from trdr_tui.core.errors import StateCorruption
from trdr_tui.core.types import OrderStatus, Side
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.coinbase import resume_live_run
from trdr_tui.engine.loop import Engine
from trdr_tui.engine.recovery import restore_after_corruption
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor
from trdr_tui.exchange.coinbase_feed import CoinbaseFeed
from trdr_tui.exchange.coinbase_rest import CoinbaseRest
from trdr_tui.store import Store

RUN = "e007-run"


def live_engine(rest: CoinbaseRest, fake: FakeExchange, store: Store, run_id: str = RUN) -> Engine:
    feed = CoinbaseFeed("BTC-USD", "1h", ws_url=fake.ws_url, rest=rest)
    executor = CoinbaseExecutor(rest, symbol="BTC-USD", store=store, run_id=run_id, retry=FAST_RETRY)
    return build_engine(load_settings(env={}), mode="live", feed=feed, executor=executor, store=store,
                        run_id=run_id, preset="simple-trailing", checkpoint_interval_s=3600)


async def test_a_live_run_restored_after_e007_is_reconciled_with_the_exchange(
        rest: CoinbaseRest, fake: FakeExchange, tmp_path: Path) -> None:
    store = Store(tmp_path / "live.duckdb")
    engine = live_engine(rest, fake, store)
    price = float(fake.price)
    bought = engine.orders.place_market(Side.BUY, 0.01, price=price)
    await engine.orders.settle()
    engine.checkpoint("auto")  # the last good checkpoint: one fill booked
    resting = engine.orders.place_limit(Side.BUY, 0.01, price * 0.5)
    await engine.orders.settle()
    assert bought.status is OrderStatus.FILLED and resting.status is OrderStatus.SUBMITTED
    fill = engine.portfolio.fills[0]
    bogus = msgspec.structs.replace(fill, id="bogus", order_id=resting.id, client_order_id=resting.client_order_id,
                                    size=0.02)  # twice what the resting order has left
    with pytest.raises(StateCorruption, match="exceeds what order") as err:
        engine.orders.on_report(ExecutionReport(ts=fill.ts, order_id=resting.id, status=OrderStatus.PARTIAL,
                                                client_order_id=resting.client_order_id, fill=bogus))
    engine.run_state.bars_done = 5  # it had been trading: a restore makes progress, it cannot loop

    def rebuild(run_id: str) -> Engine:
        fresh = live_engine(rest, fake, store, run_id)
        resume_live_run(fresh, store)
        return fresh

    restored = restore_after_corruption(engine, err.value, store, rebuild)
    task = asyncio.create_task(restored.run())  # the recovery (store, then exchange) runs first
    for _ in range(300):
        if resting.id in restored.orders.open and restored.portfolio.fills:
            break
        await asyncio.sleep(0.01)
    await restored.stop("test")
    await task
    pf = restored.portfolio
    assert [f.id for f in pf.fills] == [f.trade_id for f in fake.fills]  # the bogus fill was never booked
    assert pf.position == float(fake.balances["BTC"]) == pytest.approx(0.01)  # the ledger is the account's
    assert resting.id in restored.orders.open and len(fake.orders) == 2  # tracked again, nothing re-sent
    assert restored.failure is None
    store.close()
