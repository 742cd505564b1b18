"""Reads of the `fills` table that the exchange side needs (the engine writes fills via store/orders.py)."""

from __future__ import annotations

from trdr_tui.store.db import Store


def stored_fill_ids(store: Store, order_ids: list[str]) -> set[str]:
    """The ids (exchange trade ids) of the fills stored for these orders (engine order ids)."""
    if not order_ids:
        return set()
    store.sync()
    rows = store.cursor().execute(
        "SELECT id FROM fills WHERE order_id IN (SELECT unnest(?))", [order_ids]).fetchall()
    return {r[0] for r in rows}
