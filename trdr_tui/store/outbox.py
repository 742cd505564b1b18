"""The exchange outbox (`exchange_outbox`, migration 2): each order request exactly as sent, written
before it leaves the machine, so a restart can look the order up and resend the same request.

One row per `client_order_id`. The first request written stays the record: a later `put` of the same
order changes nothing. With a journal in front of the store (paper/live, store/journal.py) a `put` or
`update` is one journal record (durable before the request leaves) and reaches the table in the
writer's next batch. `state` moves sending → accepted | rejected | failed (failed: every retry
failed; the executor's recovery loop sends it again, looking it up first).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import duckdb
import msgspec

from trdr_tui.core.types import Order
from trdr_tui.store.db import Store

OutboxState = Literal["sending", "accepted", "rejected", "failed"]

_US = "make_timestamp(?)"
_COLUMNS = ("client_order_id", "order_id", "product_id", "side", "configuration", "state", "exchange_order_id",
            "attempts", "last_error")


class OutboxEntry(msgspec.Struct, kw_only=True):
    """One order request. `configuration` is the exchange's order_configuration (Decimal strings);
    empty when the request could not even be built (the product failed to load)."""

    client_order_id: str
    order_id: str
    product_id: str
    side: str  # "BUY" | "SELL"
    configuration: dict[str, Any]
    state: OutboxState
    exchange_order_id: str | None = None
    attempts: int = 0
    last_error: str | None = None


class Outbox:
    """Order requests kept in memory and, with a Store, in `exchange_outbox` (write-ahead).

    Timestamps (`now_ns`) are int ns from the engine clock, stored as microsecond TIMESTAMPs.
    """

    def __init__(self, store: Store | None, run_id: str | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self._mem: dict[str, OutboxEntry] = {}

    def put(self, order: Order, product_id: str, configuration: dict[str, Any], now_ns: int) -> None:
        """Write the request before it is sent (state `sending`). A request already written stays."""
        if order.client_order_id in self._mem:
            return  # written already: the first request stays the record
        self._mem[order.client_order_id] = OutboxEntry(
            client_order_id=order.client_order_id, order_id=order.id, product_id=product_id, side=order.side.value,
            configuration=configuration, state="sending")
        if self.store is None:
            return
        journal = self.store.writer
        if journal is not None:
            journal.append(("outbox", ("put", order.client_order_id, order.id, self.run_id, product_id,
                                       order.side.value, json.dumps(configuration), now_ns // 1000)))
            return
        try:  # a plain insert: ON CONFLICT costs ~3 ms more per order on the hot path
            with self.store.transaction() as cur:
                cur.execute(
                    f"INSERT INTO exchange_outbox (client_order_id, order_id, run_id, product_id, side, "
                    f"configuration, state, attempts, created_at, updated_at) "
                    f"VALUES (?, ?, ?, ?, ?, ?, 'sending', 0, {_US}, {_US})",
                    [order.client_order_id, order.id, self.run_id, product_id, order.side.value,
                     json.dumps(configuration), now_ns // 1000, now_ns // 1000])
        except duckdb.ConstraintException:
            pass  # already written by an earlier submit of this order: the first request stays the record

    def update(self, client_order_id: str, now_ns: int, *, state: OutboxState, exchange_order_id: str | None = None,
               error: str | None = None, attempts: int | None = None) -> None:
        """Record what became of a request. No `exchange_order_id` or `attempts` keeps the stored one;
        `error` replaces the last error (None clears it)."""
        entry = self._mem.get(client_order_id)
        if entry is not None:
            entry.state = state
            if exchange_order_id:
                entry.exchange_order_id = exchange_order_id
            entry.last_error = error
            if attempts is not None:
                entry.attempts = attempts
        if self.store is None:
            return
        journal = self.store.writer
        if journal is not None:
            journal.append(("outbox", ("update", state, exchange_order_id, error, attempts, now_ns // 1000,
                                       client_order_id)))
            return
        with self.store.transaction() as cur:
            cur.execute(
                f"UPDATE exchange_outbox SET state = ?, exchange_order_id = coalesce(?, exchange_order_id), "
                f"last_error = ?, attempts = coalesce(?, attempts), updated_at = {_US} WHERE client_order_id = ?",
                [state, exchange_order_id, error, attempts, now_ns // 1000, client_order_id])

    def reconfigure(self, client_order_id: str, configuration: dict[str, Any], now_ns: int) -> None:
        """Replace the request of an order the exchange refused as it was (state `sending` again), before
        the corrected request is sent (write-ahead): a restart re-sends this one."""
        entry = self._mem.get(client_order_id)
        if entry is not None:
            entry.configuration = configuration
            entry.state = "sending"
        if self.store is None:
            return
        journal = self.store.writer
        if journal is not None:
            journal.append(("outbox", ("configure", json.dumps(configuration), now_ns // 1000, client_order_id)))
            return
        with self.store.transaction() as cur:
            cur.execute(f"UPDATE exchange_outbox SET configuration = ?, state = 'sending', updated_at = {_US} "
                        f"WHERE client_order_id = ?", [json.dumps(configuration), now_ns // 1000, client_order_id])

    def get(self, client_order_id: str) -> OutboxEntry | None:
        """The request for an order (from memory, else from the store), or None if none was written."""
        entry = self._mem.get(client_order_id)
        if entry is not None or self.store is None:
            return entry
        row = self.store.cursor().execute(
            f"SELECT {', '.join(_COLUMNS)} FROM exchange_outbox WHERE client_order_id = ?",
            [client_order_id]).fetchone()
        if row is None:
            return None
        rec = dict(zip(_COLUMNS, row, strict=True))
        rec["configuration"] = json.loads(rec["configuration"])
        entry = msgspec.convert(rec, OutboxEntry)
        self._mem[client_order_id] = entry
        return entry

    def failed(self) -> list[OutboxEntry]:
        """The requests known in this process whose sending failed for good (for the recovery loop)."""
        return [e for e in self._mem.values() if e.state == "failed"]

