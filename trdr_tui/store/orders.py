"""Repositories for one engine run: orders (write-ahead), transitions, fills, trades, checkpoints,
grid state and agent weights.

Reading a run back after a crash (`stored_fills`, `stored_open_orders`, `stored_order`,
`max_order_seq`, `latest_live_run`) returns domain objects; the engine's recovery uses only these.

Three write modes. Journaled (paper and live on a database file, `store.writer` set — see
store/journal.py): every write is one record appended to the journal (durable against a crash when
the call returns: an order's intent before it is sent) and applied to DuckDB in batches by the writer
thread; a fill and the trade it closes are one record. Write-through (no journal: an in-memory store):
every write commits before the engine goes on. Batched (backtests): rows are buffered and written in
one transaction per `batch_size` rows and at `flush()`; an order's latest state is upserted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgspec

from trdr_tui.core.fsm import OPEN
from trdr_tui.core.types import (
    Fill,
    Liquidity,
    Mode,
    Order,
    OrderStatus,
    OrderTransition,
    OrderType,
    Side,
    Trade,
)
from trdr_tui.store.db import Store

# table → (columns, SQL type of each bound value, expression per column over the bound value `v<k>`)
_TABLES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "orders": (
        "id, client_order_id, exchange_order_id, run_id, mode, symbol, side, type, size, price, trail, status, "
        "filled_size, avg_fill_price, fees, created_at, updated_at, filled_at, metadata",
        ("VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "DOUBLE",
         "DOUBLE", "DOUBLE", "VARCHAR", "DOUBLE", "DOUBLE", "DOUBLE", "BIGINT", "BIGINT", "BIGINT", "VARCHAR"),
        ("", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "ts", "ts", "ts", "json"),
    ),
    "order_transitions": (
        "order_id, seq, ts, from_status, to_status, reason",
        ("VARCHAR", "INTEGER", "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR"),
        ("", "", "ts", "", "", ""),
    ),
    "fills": (  # price, size, fee: decimal strings, cast to the DECIMAL columns exactly (see insert_fill)
        "id, order_id, client_order_id, run_id, symbol, side, price, size, fee, liquidity, ts",
        ("VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR",
         "VARCHAR", "BIGINT"),
        ("", "", "", "", "", "", "", "", "", "", "ts"),
    ),
    "trades": (
        "run_id, symbol, entry_order_id, exit_order_id, entry_ts, exit_ts, entry_price, exit_price, size, pnl, "
        "fees, duration_seconds",
        ("VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "BIGINT", "DOUBLE", "DOUBLE", "DOUBLE", "DOUBLE",
         "DOUBLE", "BIGINT"),
        ("", "", "", "", "ts", "ts", "", "", "", "", "", ""),
    ),
}
_TS = "make_timestamp(?)"  # microseconds since the epoch → TIMESTAMP
_OPEN_SQL = ", ".join(f"'{s.value}'" for s in sorted(OPEN))  # the open statuses as an SQL list
_ORDER_UPSERT = (
    " ON CONFLICT (id) DO UPDATE SET exchange_order_id = excluded.exchange_order_id, type = excluded.type, "
    "size = excluded.size, "
    "price = excluded.price, status = excluded.status, filled_size = excluded.filled_size, "
    "avg_fill_price = excluded.avg_fill_price, fees = excluded.fees, updated_at = excluded.updated_at, "
    "filled_at = excluded.filled_at, metadata = excluded.metadata"
)


def _insert_sql(table: str) -> str:
    """One INSERT that takes each column as a bound list and unnests them: a whole batch per statement
    (DuckDB's executemany runs row by row and is ~500× slower for thousands of rows)."""
    cols, types, kinds = _TABLES[table]
    unnest = ", ".join(f"unnest(?::{t}[]) AS v{k}" for k, t in enumerate(types))
    exprs = ", ".join(
        f"make_timestamp(v{k})" if kind == "ts" else f"v{k}::JSON" if kind == "json" else f"v{k}"
        for k, kind in enumerate(kinds)
    )
    sql = f"INSERT INTO {table} ({cols}) SELECT {exprs} FROM (SELECT {unnest})"
    return sql + _ORDER_UPSERT if table == "orders" else sql


_SQL = {table: _insert_sql(table) for table in _TABLES}


def write_rows(cur: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert `rows` (tuples in `_TABLES` column order) into `table` with one statement; orders upsert."""
    if rows:
        cur.execute(_SQL[table], [list(col) for col in zip(*rows, strict=True)])


def _us(ns: int | None) -> int | None:
    return None if ns is None else ns // 1000


class RunRepository:
    """Everything the engine persists for one run (`run_id`)."""

    def __init__(self, store: Store, run_id: str, mode: Mode, *, batched: bool = False,
                 batch_size: int = 5000, keep_weights: bool = True) -> None:
        self.store = store
        self.keep_weights = keep_weights  # off for backtests and replays: they never write `agent_weights`
        self.run_id = run_id
        self.mode = mode
        self.batched = batched
        self.batch_size = batch_size
        self._orders: dict[str, Order] = {}
        self._rows: dict[str, list[tuple[Any, ...]]] = {"order_transitions": [], "fills": [], "trades": []}
        self._pending = 0
        self.journal = None if batched else store.writer  # journaled: paper/live on a database file

    # -- orders ----------------------------------------------------------------------------------

    def _order_row(self, o: Order) -> tuple[Any, ...]:
        updated = o.history[-1].ts if o.history else o.created_ts
        filled_at = updated if o.status is OrderStatus.FILLED else None
        return (o.id, o.client_order_id, o.exchange_order_id, self.run_id, self.mode.value, o.symbol,
                o.side.value, o.type.value, o.size, o.price, o.trail, o.status.value, o.filled_size,
                o.avg_fill_price if o.filled_size else None, o.fees, _us(o.created_ts), _us(updated),
                _us(filled_at), json.dumps(o.metadata))

    def insert_order(self, order: Order) -> None:
        """Write-ahead: journaled or write-through, this is durable before the order can be sent."""
        self.update_order(order)

    def update_order(self, order: Order) -> None:
        if self.batched:
            self._orders[order.id] = order
            self._bump()
        elif self.journal is not None:
            self.journal.append(("orders", self._order_row(order)))
        else:
            with self.store.transaction() as cur:
                write_rows(cur, "orders", [self._order_row(order)])

    def insert_transition(self, order: Order, seq: int, t: OrderTransition) -> None:
        self._write("order_transitions", (order.id, seq, _us(t.ts), t.from_status.value, t.to_status.value,
                                            t.reason))

    def insert_fill(self, fill: Fill, trade: Trade | None = None) -> None:
        """A fill and the round trip it closes (if any), written together: one journal record, or one
        transaction (write-through), so a crash never keeps one without the other."""
        # the amounts as the decimals their floats spell (the exact ledger's reading): DuckDB's own
        # DOUBLE → DECIMAL cast is off in the last digits (10672.37 → 10672.370000000001769472)
        row = (fill.id, fill.order_id, fill.client_order_id, self.run_id, fill.symbol, fill.side.value,
               repr(fill.price), repr(fill.size), repr(fill.fee), fill.liquidity.value, _us(fill.ts))
        if trade is None:
            self._write("fills", row)
        elif self.batched:
            self._rows["fills"].append(row)
            self._rows["trades"].append(self.trade_row(trade))
            self._bump()
        elif self.journal is not None:
            self.journal.append(("fills", row), ("trades", self.trade_row(trade)))
        else:
            with self.store.transaction() as cur:
                write_rows(cur, "fills", [row])
                write_rows(cur, "trades", [self.trade_row(trade)])

    def trade_row(self, trade: Trade) -> tuple[Any, ...]:
        return (self.run_id, trade.symbol, trade.entry_order_id, trade.exit_order_id, _us(trade.entry_ts),
                _us(trade.exit_ts), trade.entry_price, trade.exit_price, trade.size, trade.pnl, trade.fees,
                trade.duration_ns // 1_000_000_000)

    def replace_trades(self, trades: Sequence[Trade]) -> None:
        """Replace this run's stored round trips with `trades` (rebuilt from its fills at a restart)."""
        rows = [self.trade_row(t) for t in trades]
        if self.journal is not None:
            self.journal.append(("trades.replace", (self.run_id, rows)))
            return
        self.flush()
        with self.store.transaction() as cur:
            cur.execute("DELETE FROM trades WHERE run_id = ?", [self.run_id])
            write_rows(cur, "trades", rows)

    def _write(self, table: str, row: tuple[Any, ...]) -> None:
        if self.batched:
            self._rows[table].append(row)
            self._bump()
        elif self.journal is not None:
            self.journal.append((table, row))
        else:
            with self.store.transaction() as cur:
                write_rows(cur, table, [row])

    def _bump(self) -> None:
        self._pending += 1
        if self._pending >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Write every buffered row in one transaction (batched mode); journaled, wait until the
        writer has applied everything so far."""
        if self.journal is not None:
            self.journal.flush()
            return
        if not self._pending:
            return
        orders = [self._order_row(o) for o in self._orders.values()]
        with self.store.transaction() as cur:
            write_rows(cur, "orders", orders)
            for table, rows in self._rows.items():
                write_rows(cur, table, rows)
        self._orders.clear()
        for rows in self._rows.values():
            rows.clear()
        self._pending = 0

    def open_orders(self) -> list[dict[str, Any]]:
        """Stored orders of this run still open (for reconciliation at start)."""
        self.flush()
        cur = self.store.cursor()
        rows = cur.execute(f"SELECT id, client_order_id, status FROM orders WHERE run_id = ? AND status IN "
                           f"({_OPEN_SQL}) ORDER BY created_at", [self.run_id]).fetchall()
        return [{"id": r[0], "client_order_id": r[1], "status": r[2]} for r in rows]

    # -- checkpoints, grid, weights --------------------------------------------------------------

    def save_checkpoint(self, kind: str, mode: Mode, ts: int, state: dict[str, Any]) -> None:
        payload = msgspec.json.encode(state).decode()
        grid = state.get("policy", {}).get("grid") if isinstance(state.get("policy"), dict) else None
        if self.journal is not None:
            ops: list[tuple[str, tuple[Any, ...]]] = [("checkpoints", (self.run_id, _us(ts), kind, mode.value, payload))]
            if grid is not None:
                ops.append(("grid_state", self._grid_row(str(state.get("symbol", "")), ts, grid)))
            self.journal.append(*ops)
            return
        self.flush()
        with self.store.transaction() as cur:
            cur.execute(f"INSERT INTO checkpoints (run_id, ts, type, mode, state) VALUES (?, {_TS}, ?, ?, ?)",
                        [self.run_id, _us(ts), kind, mode.value, payload])
            if grid is not None:
                self._save_grid(cur, str(state.get("symbol", "")), ts, grid)

    def save_grid(self, symbol: str, ts: int, grid: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.append(("grid_state", self._grid_row(symbol, ts, grid)))
            return
        with self.store.transaction() as cur:
            self._save_grid(cur, symbol, ts, grid)

    def _grid_row(self, symbol: str, ts: int, grid: dict[str, Any]) -> tuple[Any, ...]:
        return (self.run_id, symbol, _us(ts), msgspec.json.encode(grid).decode())

    def _save_grid(self, cur: Any, symbol: str, ts: int, grid: dict[str, Any]) -> None:
        cur.execute(f"INSERT INTO grid_state (run_id, symbol, updated_at, state) VALUES (?, ?, {_TS}, ?) "
                    "ON CONFLICT (run_id, symbol) DO UPDATE SET updated_at = excluded.updated_at, "
                    "state = excluded.state", list(self._grid_row(symbol, ts, grid)))

    def save_weights(self, weights: dict[str, float], ts: int) -> None:
        if not self.keep_weights:
            return
        if self.journal is not None:
            self.journal.append(*[("agent_weights", (a, float(w), _us(ts))) for a, w in weights.items()])
            return
        with self.store.transaction() as cur:
            for agent_id, w in weights.items():
                cur.execute(f"INSERT INTO agent_weights (agent_id, weight, updated_at) VALUES (?, ?, {_TS}) "
                            "ON CONFLICT (agent_id) DO UPDATE SET weight = excluded.weight, "
                            "updated_at = excluded.updated_at", [agent_id, float(w), _us(ts)])


def load_weights(store: Store) -> dict[str, float]:
    rows = store.cursor().execute("SELECT agent_id, weight FROM agent_weights ORDER BY agent_id").fetchall()
    return {str(a): float(w) for a, w in rows}


def latest_checkpoint(store: Store, run_id: str | None = None) -> tuple[str, str, dict[str, Any]] | None:
    """(run_id, type, state) of the newest checkpoint, of one run or of any."""
    store.sync()
    sql = "SELECT run_id, type, state FROM checkpoints"
    params: list[Any] = []
    if run_id is not None:
        sql += " WHERE run_id = ?"
        params.append(run_id)
    row = store.cursor().execute(sql + " ORDER BY ts DESC, id DESC LIMIT 1", params).fetchone()
    if row is None:
        return None
    return str(row[0]), str(row[1]), json.loads(row[2])


def checkpoint_ref(store: Store, run_id: str) -> tuple[int, int, str] | None:
    """(id, ts in ns, type) of the newest checkpoint of `run_id`: the last good one when the run failed
    (a failed run writes no shutdown checkpoint). None when it has none."""
    store.sync()
    row = store.cursor().execute("SELECT id, epoch_ns(ts), type FROM checkpoints WHERE run_id = ?"
                                 " ORDER BY ts DESC, id DESC LIMIT 1", [run_id]).fetchone()
    return None if row is None else (int(row[0]), int(row[1]), str(row[2]))


def checkpoint_by_id(store: Store, checkpoint_id: int) -> dict[str, Any] | None:
    """One checkpoint as {id, run_id, ts (ns), type, mode, state}; None when there is no such id."""
    store.sync()
    row = store.cursor().execute("SELECT id, run_id, epoch_ns(ts), type, mode, state FROM checkpoints WHERE id = ?",
                                 [checkpoint_id]).fetchone()
    if row is None:
        return None
    return {"id": int(row[0]), "run_id": str(row[1]), "ts": int(row[2]), "type": str(row[3]), "mode": str(row[4]),
            "state": json.loads(row[5])}


# -- reading a run back (crash recovery) ------------------------------------------------------------


def stored_fills(store: Store, run_id: str) -> list[Fill]:
    """Every fill booked in run `run_id`, oldest first (by time, then fill id)."""
    store.sync()
    rows = store.cursor().execute(
        "SELECT id, order_id, client_order_id, symbol, side, price, size, fee, liquidity, epoch_us(ts) FROM fills "
        "WHERE run_id = ? ORDER BY ts, id", [run_id]).fetchall()
    return [Fill(id=r[0], order_id=r[1], client_order_id=r[2], symbol=r[3], side=Side(r[4]), price=float(r[5]),
                 size=float(r[6]), fee=float(r[7]), liquidity=Liquidity(r[8]), ts=int(r[9]) * 1000) for r in rows]


_ORDER_SELECT = (
    "SELECT o.id, o.client_order_id, o.exchange_order_id, o.symbol, o.side, o.type, o.size, o.price, o.trail, "
    "coalesce((SELECT to_status FROM order_transitions t WHERE t.order_id = o.id ORDER BY seq DESC LIMIT 1), "
    "o.status), epoch_us(o.created_at), o.metadata FROM orders o "
)


def _stored_orders(store: Store, where: str, params: list[Any], fills: Sequence[Fill],
                   statuses: frozenset[OrderStatus] | None) -> list[Order]:
    store.sync()
    out: list[Order] = []
    for r in store.cursor().execute(_ORDER_SELECT + where, params).fetchall():
        status = OrderStatus(r[9])
        if statuses is not None and status not in statuses:
            continue
        mine = [f for f in fills if f.order_id == r[0]]
        filled = sum(f.size for f in mine)
        order = Order(id=r[0], client_order_id=r[1], exchange_order_id=r[2], symbol=r[3], side=Side(r[4]),
                      type=OrderType(r[5]), size=float(r[6]), price=float(r[7]) if r[7] is not None else None,
                      trail=r[8], status=status, created_ts=int(r[10]) * 1000, metadata=json.loads(r[11] or "{}"),
                      filled_size=filled, fees=sum(f.fee for f in mine),
                      avg_fill_price=sum(f.price * f.size for f in mine) / filled if filled else 0.0)
        order.history = [OrderTransition(int(t[0]) * 1000, OrderStatus(t[1]), OrderStatus(t[2]), t[3] or "")
                         for t in store.cursor().execute(
                             "SELECT epoch_us(ts), from_status, to_status, reason FROM order_transitions "
                             "WHERE order_id = ? ORDER BY seq", [order.id]).fetchall()]
        out.append(order)
    return out


def stored_open_orders(store: Store, run_id: str, fills: Sequence[Fill]) -> list[Order]:
    """The orders of run `run_id` still open in the store, as `Order`s: status and history from the
    stored transitions (the newest transition wins over the order row, which is written less often),
    filled size, fees and average price from `fills` (the run's `stored_fills`)."""
    return _stored_orders(store, "WHERE o.run_id = ?", [run_id], fills, OPEN)


def stored_order(store: Store, order_id: str, fills: Sequence[Fill]) -> Order | None:
    """One stored order, open or closed, read as `stored_open_orders` reads them; None when the store
    never saw it."""
    found = _stored_orders(store, "WHERE o.id = ?", [order_id], fills, None)
    return found[0] if found else None


def max_order_seq(store: Store, run_id: str) -> int:
    """The highest `<n>` of the order ids (`<run_id>-<n>`) stored for run `run_id`; 0 when it has none."""
    store.sync()
    rows = store.cursor().execute("SELECT id FROM orders WHERE run_id = ?", [run_id]).fetchall()
    return max((int(str(r[0]).rsplit("-", 1)[1]) for r in rows), default=0)


def latest_live_run(store: Store) -> str | None:
    """The run id of the newest live run when it still holds a position (its BUY fills exceed its
    SELL fills) or has orders open in the store: the one to resume after a crash or a stop. None when
    there is no live run, or the newest one is flat with nothing open."""
    store.sync()
    row = store.cursor().execute(
        "SELECT run_id FROM orders WHERE mode = 'live' ORDER BY created_at DESC LIMIT 1").fetchone()
    if row is None:
        return None
    run_id = str(row[0])
    held = store.cursor().execute(
        "SELECT coalesce(sum(CASE WHEN side = 'BUY' THEN size ELSE -size END), 0)::DOUBLE FROM fills "
        "WHERE run_id = ?", [run_id]).fetchone()
    open_rows = store.cursor().execute(
        "SELECT count(*) FROM orders o WHERE o.run_id = ? AND coalesce((SELECT to_status FROM order_transitions t "
        f"WHERE t.order_id = o.id ORDER BY seq DESC LIMIT 1), o.status) IN ({_OPEN_SQL})", [run_id]).fetchone()
    position = float(held[0]) if held else 0.0
    if (open_rows and open_rows[0]) or position > POSITION_EPSILON:
        return run_id
    return None


POSITION_EPSILON = 1e-12  # base units: below this a run's fills net to flat (float sums of exact sizes)


def stored_client_order_ids(store: Store, run_id: str) -> set[str]:
    """The `client_order_id`s of every order stored for run `run_id`."""
    store.sync()
    rows = store.cursor().execute("SELECT client_order_id FROM orders WHERE run_id = ?", [run_id]).fetchall()
    return {str(r[0]) for r in rows}


def stored_trade_count(store: Store, run_id: str) -> int:
    """How many round trips are stored for run `run_id`."""
    store.sync()
    row = store.cursor().execute("SELECT count(*) FROM trades WHERE run_id = ?", [run_id]).fetchone()
    return int(row[0]) if row else 0
