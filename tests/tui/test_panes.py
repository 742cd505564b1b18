"""What the log and orders panes show after a real replay: orders and fills at info, repeated risk
refusals folded into one line, orders in time order."""

from __future__ import annotations

from tests.tui.conftest import CockpitFactory, settle
from trdr_tui.core.events import RiskRejection
from trdr_tui.core.types import Side
from trdr_tui.tui.widgets.orders import OrderTable

SIZE = (120, 40)


async def test_log_pane_shows_orders_and_fills_at_the_default_level(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        logs, orders = app.main.logs, app.main.orders
        assert logs.min_level == "info"
        shown = [e.message for e in logs.shown_entries() if e.source == "order"]
        fills = [f for fs in orders.fills.values() for f in fs]
        assert fills  # the slice trades
        filled = [m for m in shown if m.startswith("filled ")]
        assert len(filled) == len(fills)
        first = min(fills, key=lambda f: f.ts)
        assert any(f"@ {first.price:,.2f} fee {first.fee:.2f}" in m and first.order_id in m for m in filled)
        placed = [m for m in shown if m.startswith("placed ")]
        assert len(placed) == sum(any(t.to_status.value == "SUBMITTED" for t in ts) for ts in orders.transitions.values())
        assert any(m.startswith("cancelled ") for m in shown)


async def test_repeated_risk_refusals_take_one_line_with_a_count(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        logs = app.main.logs
        before = len(logs.entries)
        bus = app.engine.bus
        for bar in range(2):  # two bars, three levels each, refused for the same reason at different sizes
            for k in range(3):
                bus.publish("risk.rejected", RiskRejection(ts=bar, symbol="BTC-USD", side=Side.BUY,
                                                           size=0.01 * (k + 1), failed_checks=("max_position",)))
        bus.publish("risk.rejected", RiskRejection(ts=3, symbol="BTC-USD", side=Side.BUY, size=0.01,
                                                   failed_checks=("max_drawdown",)))
        while app.main.message_queue_size:
            await pilot.pause(0.01)
        new = list(logs.entries)[before:]
        assert [(e.message.split(" (")[0], e.fields.get("repeats")) for e in new] == [
            ("buy refused: max_position", 6), ("buy refused: max_drawdown", None)]
        assert "(size 0.03)" in new[0].message  # the newest refusal's size
        logs.refresh_if_dirty()
        await pilot.pause()
        assert "×6" in "".join(str(line) for line in logs.render().renderables)  # type: ignore[union-attr]


async def test_orders_pane_lists_orders_by_time_newest_last(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        panel = app.main.orders
        table = panel.query_one(OrderTable)
        ids = [row.value for row in table.rows]
        created = [panel.orders[i].created_ts for i in ids]
        assert len(ids) > 5 and created == sorted(created)
        assert {panel.orders[i].status.value for i in ids} >= {"FILLED", "CANCELLED"}
        assert panel.selected == ids[-1] and table.cursor_row == len(ids) - 1  # following the newest


def test_the_configs_key_actions_are_the_cockpits_binding_ids() -> None:
    """The config checks `[tui.keys]` against KEY_ACTIONS without importing Textual: it must list exactly
    the cockpit's rebindable bindings."""
    from textual.binding import Binding

    from trdr_tui.config import KEY_ACTIONS
    from trdr_tui.tui.app import TrdrApp
    from trdr_tui.tui.screens.main import MAIN_BINDINGS

    keys = {b.id: b.key for b in (*MAIN_BINDINGS, *TrdrApp.BINDINGS) if isinstance(b, Binding) and b.id}
    assert keys == KEY_ACTIONS  # the ids, and the default keys the config checks remaps against
