"""The exchange outbox in a real DuckDB file: write-ahead rows, typed entries, read back after a restart."""

from __future__ import annotations

from pathlib import Path

from trdr_tui.core.types import Order, OrderType, Side
from trdr_tui.store import Store
from trdr_tui.store.fills import stored_fill_ids
from trdr_tui.store.outbox import Outbox, OutboxEntry

CONFIG = {"market_market_ioc": {"base_size": "0.01"}}


def _order(n: int) -> Order:
    return Order(id=f"run-{n}", client_order_id=f"trdr-run-{n}", symbol="BTC-USD", side=Side.SELL,
                 type=OrderType.MARKET, size=0.01, created_ts=0)


def test_a_restarted_outbox_reads_the_stored_request(db_path: Path) -> None:
    with Store(db_path) as store:
        box = Outbox(store, "run")
        box.put(_order(1), "BTC-USD", CONFIG, 1_000_000)
        box.update("trdr-run-1", 2_000_000, state="failed", error="timeout", attempts=3)
        assert [e.client_order_id for e in box.failed()] == ["trdr-run-1"]
    with Store(db_path) as store:
        entry = Outbox(store, "run").get("trdr-run-1")
        assert entry == OutboxEntry(client_order_id="trdr-run-1", order_id="run-1", product_id="BTC-USD", side="SELL",
                                    configuration=CONFIG, state="failed", attempts=3, last_error="timeout")
        row = store.conn.execute("SELECT run_id, epoch_us(created_at), epoch_us(updated_at) FROM exchange_outbox"
                                 ).fetchone()
        assert row == ("run", 1_000, 2_000)  # ns in, microsecond TIMESTAMPs stored
        assert Outbox(store, "run").get("trdr-run-2") is None


def test_update_keeps_what_it_is_not_told(store: Store) -> None:
    box = Outbox(store, "run")
    box.put(_order(1), "BTC-USD", CONFIG, 0)
    box.update("trdr-run-1", 1, state="accepted", exchange_order_id="ex-1", attempts=1)
    box.update("trdr-run-1", 2, state="failed", error="lost")
    mem = box.get("trdr-run-1")
    assert mem is not None and (mem.state, mem.exchange_order_id, mem.attempts, mem.last_error) == (
        "failed", "ex-1", 1, "lost")
    stored = Outbox(store, "run").get("trdr-run-1")
    assert stored == mem


def test_without_a_store_the_outbox_lives_in_memory() -> None:
    box = Outbox(None)
    box.put(_order(1), "BTC-USD", CONFIG, 0)
    box.update("trdr-run-1", 1, state="failed")
    assert [e.order_id for e in box.failed()] == ["run-1"]
    assert box.get("trdr-run-9") is None


def test_stored_fill_ids_of_some_orders(store: Store) -> None:
    store.conn.execute(
        "INSERT INTO fills VALUES ('t1', 'run-1', 'c1', 'run', 'BTC-USD', 'BUY', 1, 1, 0, 'TAKER', make_timestamp(0)),"
        " ('t2', 'run-2', 'c2', 'run', 'BTC-USD', 'BUY', 1, 1, 0, 'TAKER', make_timestamp(0))")
    assert stored_fill_ids(store, ["run-1", "run-3"]) == {"t1"}
    assert stored_fill_ids(store, []) == set()
