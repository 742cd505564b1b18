"""What recovery reads back: the store's readers, migration 3 (armed orders written before ARMED
existed) and checkpoints written before it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.types import Fill, Liquidity, Mode, Order, OrderStatus, OrderTransition, OrderType, Side
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.recovery import engine_state, restore_engine
from trdr_tui.store.db import Store
from trdr_tui.store.orders import (
    RunRepository,
    latest_live_run,
    max_order_seq,
    stored_fills,
    stored_open_orders,
    stored_order,
)
from trdr_tui.store.schema import MIGRATIONS

S = OrderStatus
US = 1_000  # the store keeps microseconds


def legacy_order(n: int, otype: OrderType, path: list[OrderStatus], reason: str,
                 metadata: dict[str, str | float | int | bool | None]) -> Order:
    """An order as a trdr without ARMED wrote it: armed trailing orders went PENDING → SUBMITTED ('armed')."""
    history, status = [], S.PENDING
    for k, to in enumerate(path):
        history.append(OrderTransition((n * 10 + k) * US, status, to, reason if k == 0 else "later"))
        status = to
    return Order(id=f"run-{n}", client_order_id=f"trdr-run-{n}", symbol="BTC-USD", side=Side.BUY, type=otype,
                 size=1.0, price=100.0 if otype is OrderType.LIMIT else None, trail=0.02, status=status,
                 created_ts=n * 10 * US, history=history, metadata=metadata)


def write(store: Store, orders: list[Order], mode: Mode = Mode.LIVE) -> None:
    repo = RunRepository(store, "run", mode)
    for o in orders:
        repo.update_order(o)
        for seq, t in enumerate(o.history, 1):
            repo.insert_transition(o, seq, t)


def test_migration_3_reads_armed_only_trailing_orders_as_armed(tmp_path: Path) -> None:
    db = tmp_path / "legacy.duckdb"
    with Store(db) as store:
        write(store, [
            legacy_order(1, OrderType.TRAILING, [S.SUBMITTED], "armed", {}),                       # still armed
            legacy_order(2, OrderType.TRAILING, [S.SUBMITTED], "armed", {"trigger": 101.5}),       # fired
            legacy_order(3, OrderType.TRAILING, [S.SUBMITTED, S.CANCELLED], "armed", {}),          # armed, cancelled
            legacy_order(4, OrderType.LIMIT, [S.SUBMITTED], "sent", {"post_only": True}),          # at the exchange
        ])
        # as written before migration 3: the later migrations are undone too, so that all re-run
        store.conn.execute("DROP TABLE optimization_trials; DROP TABLE parameter_changes; "
                           "DROP SEQUENCE parameter_changes_id_seq; DROP TABLE adaptive_values")
        store.conn.execute("DROP TABLE ai_responses; DROP TABLE ai_calls")
        store.conn.execute("DELETE FROM schema_migrations WHERE version >= 3")
    with Store(db) as store:
        assert store.schema_version() == max(version for version, _, _ in MIGRATIONS)
        fills: list[Fill] = []
        got = {o.id: o for o in stored_open_orders(store, "run", fills)}
        assert {oid: o.status for oid, o in got.items()} == {"run-1": S.ARMED, "run-2": S.SUBMITTED,
                                                             "run-4": S.SUBMITTED}
        assert [(t.from_status, t.to_status) for t in got["run-1"].history] == [(S.PENDING, S.ARMED)]
        assert [(t.from_status, t.to_status) for t in got["run-2"].history] == [(S.PENDING, S.SUBMITTED)]
        closed = stored_order(store, "run-3", fills)
        assert closed is not None and closed.status is S.CANCELLED
        assert [(t.from_status, t.to_status) for t in closed.history] == [(S.PENDING, S.ARMED), (S.ARMED, S.CANCELLED)]
        rows = dict(store.conn.execute("SELECT id, status FROM orders").fetchall())
        assert rows == {"run-1": "ARMED", "run-2": "SUBMITTED", "run-3": "CANCELLED", "run-4": "SUBMITTED"}


def test_the_readers_return_domain_objects(tmp_path: Path) -> None:
    with Store(tmp_path / "r.duckdb") as store:
        assert latest_live_run(store) is None and max_order_seq(store, "run") == 0
        armed = legacy_order(12, OrderType.TRAILING, [S.ARMED], "armed", {})
        done = legacy_order(3, OrderType.LIMIT, [S.SUBMITTED, S.FILLED], "sent", {})
        write(store, [armed, done])
        f = Fill(id="x1", order_id="run-3", client_order_id="trdr-run-3", symbol="BTC-USD", side=Side.BUY,
                 price=100.0, size=1.0, fee=0.6, liquidity=Liquidity.MAKER, ts=35 * US)
        RunRepository(store, "run", Mode.LIVE).insert_fill(f)
        assert stored_fills(store, "run") == [f]
        assert stored_open_orders(store, "run", [f]) == [armed]
        filled = stored_order(store, "run-3", [f])
        assert filled is not None and filled.status is S.FILLED and filled.filled_size == 1.0 and filled.fees == 0.6
        assert stored_order(store, "run-99", []) is None
        assert max_order_seq(store, "run") == 12
        assert latest_live_run(store) == "run"  # an ARMED order is an open order


def test_a_fired_trailing_order_sent_as_a_limit_is_stored_as_a_limit(tmp_path: Path) -> None:
    """Smart placement (PRD §3.4) turns a fired TRAILING order into a post-only LIMIT at the mid: the
    stored row says what was sent (the upsert used to keep the type it was first written with)."""
    with Store(tmp_path / "t.duckdb") as store:
        order = legacy_order(5, OrderType.TRAILING, [S.ARMED], "armed", {})
        write(store, [order])
        order.type, order.price, order.status = OrderType.LIMIT, 100.5, S.SUBMITTED
        order.history.append(OrderTransition(60 * US, S.ARMED, S.SUBMITTED, "limit at mid: spread 2.000%"))
        RunRepository(store, "run", Mode.LIVE).update_order(order)
        assert store.conn.execute("SELECT type, price FROM orders WHERE id = 'run-5'").fetchall() == [("LIMIT", 100.5)]
        stored = stored_order(store, "run-5", [])
        assert stored is not None and stored.type is OrderType.LIMIT


def test_a_checkpoint_written_before_armed_existed_restores_its_armed_orders(hourly: CandleArrays) -> None:
    def engine() -> Any:
        return build_engine(load_settings(), mode="paper", candles=hourly[:50], preset="simple-trailing")

    first = engine()
    order = first.orders.place_trailing(Side.BUY, size=0.01, trail=0.02, price=float(hourly.close[0]))
    state: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(engine_state(first)))
    item = state["open_orders"][0]
    assert item["order"]["status"] == "ARMED" and "trailing" in item
    item["order"]["status"] = "SUBMITTED"  # the old form: armed was SUBMITTED with a trailing snapshot
    item["order"]["history"][0]["to_status"] = "SUBMITTED"
    second = engine()
    restore_engine(second, state)
    restored = second.orders.orders[order.id]
    assert restored.status is S.ARMED and second.orders.trailing_state(restored) is not None
    assert [(t.from_status, t.to_status) for t in restored.history] == [(S.PENDING, S.ARMED)]
