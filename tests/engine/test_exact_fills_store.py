"""Fills go through the store exactly: what is written reads back as the same decimals, so a ledger
rebuilt from the store is the ledger that booked them, to the last digit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trdr_tui.core.types import Fill, Liquidity, Mode, Side
from trdr_tui.store.db import Store
from trdr_tui.store.orders import RunRepository, stored_fills
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.sizing import ProductSpec


def fill(n: int, side: Side, price: float, size: float, fee: float) -> Fill:
    return Fill(id=f"f{n}", order_id=f"o{n}", client_order_id=f"c{n}", symbol="BTC-USD", side=side, price=price,
                size=size, fee=fee, liquidity=Liquidity.TAKER, ts=(n + 1) * 1_000_000)


@pytest.mark.parametrize("batched", [False, True])
def test_stored_fills_read_back_exactly_and_rebuild_the_same_ledger(store: Store, batched: bool) -> None:
    # 10672.37 was stored as 10672.370000000001769472 by DuckDB's DOUBLE → DECIMAL cast
    fills = [fill(0, Side.BUY, 10672.37, 0.92513091, 59.2400362197),
             fill(1, Side.BUY, 11783.96, 0.78584761, 55.562380814),
             fill(2, Side.SELL, 9955.16, 0.98604005, 58.8971187849)]
    inc = ProductSpec().increments
    pf = Portfolio("BTC-USD", 100_000.0, increments=inc)
    repo = RunRepository(store, "run", Mode.LIVE, batched=batched)
    for f in fills:
        pf.apply_fill(f)
        repo.insert_fill(f)
    repo.flush()
    rows = store.cursor().execute("SELECT price, size, fee FROM fills ORDER BY id").fetchall()
    assert rows == [(Decimal("10672.37"), Decimal("0.92513091"), Decimal("59.2400362197")),
                    (Decimal("11783.96"), Decimal("0.78584761"), Decimal("55.562380814")),
                    (Decimal("9955.16"), Decimal("0.98604005"), Decimal("58.8971187849"))]
    assert stored_fills(store, "run") == fills
    again = Portfolio("BTC-USD", 100_000.0, increments=inc)
    again.rebuild_from_fills(stored_fills(store, "run"))
    assert again.to_state() == pf.to_state()
