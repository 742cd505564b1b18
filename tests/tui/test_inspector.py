"""The inspector screen (key `i`) on the real engine after a replay of real candles."""

from __future__ import annotations

from textual.widgets import DataTable

from tests.tui.conftest import CockpitFactory, settle
from trdr_tui.tui.screens.inspector import DECISIONS, InspectorScreen
from trdr_tui.tui.screens.main import MainScreen

SIZE = (140, 50)


async def test_i_shows_decisions_the_selected_orders_trace_and_agent_profiles(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        engine = app.engine
        order_id = app.main.orders.selected
        assert order_id is not None
        order = engine.orders.orders[order_id]
        await pilot.press("i")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        decisions = screen.query_one("#inspector-decisions", DataTable)
        newest = engine.record.decisions[-1]
        assert decisions.row_count == min(DECISIONS, len(engine.record.decisions)) > 0
        assert str(decisions.get_row_at(0)[1]) == newest.action.value
        trace = screen.query_one("#inspector-trace", DataTable)
        fills = [f for f in engine.portfolio.fills if f.order_id == order_id]
        assert trace.row_count == 1 + len(order.history) + len(fills)
        assert str(trace.get_row_at(0)[2]).startswith(f"created {order.side.value}")
        agents = screen.query_one("#inspector-agents", DataTable)
        assert [str(r[0]) for r in (agents.get_row_at(i) for i in range(agents.row_count))] == list(
            engine.agent_base_weights())
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_p_measures_the_agents_memory_while_the_engine_runs() -> None:
    """On a paced replay (the agents run bar by bar): `p` samples their next calls, `r` shows the KiB."""
    from tests.tui.conftest import real_candles
    from trdr_tui.api.profiling import profiler_for
    from trdr_tui.config import load_settings
    from trdr_tui.engine.assembly import build_engine, replay_feed
    from trdr_tui.tui.app import make_app
    from trdr_tui.tui.screens.inspector import PROFILE_CALLS

    settings = load_settings()
    # 200 paced bars at 20 a second: ten seconds in which to press the keys (the pace keeps to the wall clock)
    engine = build_engine(settings, mode="paper", feed=replay_feed(settings, real_candles()[:400], 20.0))
    app = make_app(settings, engine)
    async with app.run_test(size=SIZE) as pilot:
        while engine.bars_done == 0:
            await pilot.pause(0.05)
        await pilot.press("i")
        await pilot.pause()
        await pilot.press("p")
        stats = profiler_for(engine.decisions).stats
        assert set(stats) == set(engine.agent_base_weights())
        while any(st.pending for st in stats.values()) and not engine.stopped:
            await pilot.pause(0.05)
        assert all(st.samples == PROFILE_CALLS for st in stats.values())
        await pilot.press("r")
        await pilot.pause()
        agents = app.screen.query_one("#inspector-agents", DataTable)
        rows = [agents.get_row_at(i) for i in range(agents.row_count)]
        peak = {str(r[0]): float(str(r[8]).replace(",", "")) for r in rows}
        assert all(kib > 0 for kib in peak.values()), peak
        assert {str(r[0]): str(r[10]) for r in rows} == {a: str(PROFILE_CALLS) for a in peak}
