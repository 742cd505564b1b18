"""Fault injection: the live engine keeps trading through each fault, sends no order twice, loses no
fill, and the ledger agrees with the exchange at the end."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from tests.exchange.conftest import FAST_RETRY
from tests.exchange.test_e2e_engine import (
    FAST_RECONNECT,
    accelerated_fake,
    assert_exchange_and_ledger_agree,
    run_until,
)
from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.config import load_settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.types import OrderType
from trdr_tui.engine.assembly import build_engine
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor
from trdr_tui.exchange.coinbase_feed import CoinbaseFeed
from trdr_tui.exchange.coinbase_rest import CoinbaseRest
from trdr_tui.exchange.credentials import Credentials
from trdr_tui.store import Store

FAULTS = ["rest_429_html", "rest_5xx", "rest_timeout", "rest_reset", "timestamp_expired", "lose_create_response",
          "slow", "duplicate_reject", "ws_gap", "ws_drop", "ws_stale"]


async def inject(fake: FakeExchange, fault: str, counts: dict[str, int]) -> None:
    """Arm the fault again and again while the engine runs."""
    f = fake.faults
    f.timeout_s = 0.5  # the client's timeout is 0.3 s
    every = 1.0 if fault in ("rest_timeout", "duplicate_reject") else 0.2
    while True:
        await asyncio.sleep(every)
        counts[fault] = counts.get(fault, 0) + 1
        if fault == "slow":
            f.slow_s = 0.05
        elif fault == "duplicate_reject":
            # a lost answer plus an exchange that lists new orders late: the lookup misses, the resend
            # meets DUPLICATE_CLIENT_ORDER_ID, and the executor must adopt the existing order
            f.duplicate_reject = True
            f.visibility_lag_s = 0.1
            f.lose_create_response = 1
        elif fault == "ws_drop":
            await fake.drop_sockets()
        elif fault == "ws_stale":
            f.ws_stale = True
            await asyncio.sleep(0.5)
            f.ws_stale = False
        else:
            setattr(f, fault, 1)


@pytest.mark.parametrize("fault", FAULTS)
async def test_engine_recovers_from_fault(creds: Credentials, tmp_path: Path, fault: str) -> None:
    fake = accelerated_fake(creds, step_interval_s=0.01)
    await fake.start()
    store = Store(tmp_path / "live.duckdb")
    bus = EventBus()
    rest = CoinbaseRest(fake.rest_url, signer=creds.signer(), retry=FAST_RETRY, timeout_s=0.3)
    feed = CoinbaseFeed("BTC-USD", "1h", ws_url=fake.ws_url, rest=rest, bus=bus, signer=creds.signer(),
                        reconnect=FAST_RECONNECT, close_grace_s=0, silence_s=0.3, poll_interval_s=0.1)
    executor = CoinbaseExecutor(rest, symbol="BTC-USD", store=store, user_ws_url=fake.user_ws_url,
                                signer=creds.signer(), retry=FAST_RETRY, poll_interval_s=0.2,
                                recovery_interval_s=0.3, ws_reconnect=FAST_RECONNECT)
    engine = build_engine(load_settings(env={}), mode="live", feed=feed, executor=executor, store=store, bus=bus,
                          preset="simple-trailing", checkpoint_interval_s=0.5)
    await executor.start()
    counts: dict[str, int] = {}
    injector = asyncio.create_task(inject(fake, fault, counts))
    try:
        await run_until(engine, feed, lambda: len(fake.fills) >= 3, timeout=40)
    finally:
        injector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await injector
    fake.faults.__init__()  # type: ignore[misc]  # all clear: let the bot catch up
    try:
        for _ in range(200):
            await executor.retry_failed()
            await executor.sync_all()
            await executor.settle()
            if not executor.outbox.failed() and not executor._orders:
                break
            await asyncio.sleep(0.05)
    finally:
        await executor.stop()
        await rest.close()
        await fake.stop()
    assert counts.get(fault, 0) >= 1
    assert fake.fired.get(fault, 0) >= 1, f"{fault} never hit anything"
    sent = [o for o in engine.orders.orders.values() if o.type is not OrderType.TRAILING or "trigger" in o.metadata]
    # each intent that reached the exchange is exactly one exchange order, under its own client_order_id
    assert len(fake.orders) <= len(sent)
    assert {o.client_order_id for o in fake.orders.values()} <= {o.client_order_id for o in sent}
    if fault == "lose_create_response":
        assert all(n == 1 for n in fake.create_posts.values())  # looked up, never re-sent
    assert_exchange_and_ledger_agree(engine, fake, store, initial_usd=10_000.0)
    store.close()
