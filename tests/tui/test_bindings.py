"""Every cockpit binding, pressed through Textual's pilot against the real engine and replayed real data."""

from __future__ import annotations

import asyncio

import pytest
from textual.command import CommandPalette
from textual.widgets import DataTable, Input, OptionList

from tests.tui.conftest import PERSIST_BARS, CockpitFactory, build_real_engine, real_candles, settle
from trdr_tui.config import load_settings
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.events import LogEvent
from trdr_tui.core.types import Mode
from trdr_tui.store import Store
from trdr_tui.tui.app import MAIN_BINDINGS, base_weights
from trdr_tui.tui.screens.backtest import BacktestFormScreen, BacktestResultsScreen
from trdr_tui.tui.screens.help import HelpScreen
from trdr_tui.tui.screens.main import MainScreen
from trdr_tui.tui.screens.mode import ConfirmLiveScreen, LogFilterScreen, ModeScreen
from trdr_tui.tui.widgets.agents import AgentTable
from trdr_tui.tui.widgets.candles import CandleChart
from trdr_tui.tui.widgets.grid import GridTable
from trdr_tui.tui.widgets.logs import LogPane
from trdr_tui.tui.widgets.orders import OrderTable

SIZE = (120, 40)


async def test_replay_reaches_every_pane(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main = app.main
        engine = app.engine
        assert len(main.chart.candles) == engine.record.bars == len(real_candles())
        assert main.chart.candles[-1].close == engine.last_price
        assert main.chart.redraws >= 1
        fills = engine.record.fills
        assert fills, "the slice is chosen so the preset trades"
        assert len(main.chart.fills) == len(fills)
        assert set(main.orders.orders) == {o.id for o in engine.record.orders}
        assert main.query_one(OrderTable).row_count == len(engine.record.orders)
        assert main.status.equity == pytest.approx(engine.record.final_equity)
        assert app.bridge is not None and app.bridge.stats.received > 600


async def test_plus_minus_change_the_selected_agents_weight_in_the_engine_not_the_store(
        make_cockpit: CockpitFactory, cockpit_store: Store) -> None:
    app = make_cockpit(persist=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.query_one(AgentTable).focus()
        await pilot.press("down")
        agent = app.main.agents.selected
        assert agent == list(app.engine.agent_weights())[1]
        before = base_weights(app.engine)[agent]
        await pilot.press("plus")
        assert base_weights(app.engine)[agent] == pytest.approx(before + 0.1)
        in_force = app.engine.agent_weights()[agent]
        cockpit_store.sync()  # paper mode writes through the journal: bring the database up to date
        stored = cockpit_store.conn.execute(
            "SELECT weight FROM agent_weights WHERE agent_id = ?", [agent]).fetchone()
        assert stored is None  # a replay never writes the weights a paper/live session starts with
        assert app.main.agents.weights[agent] == pytest.approx(in_force)
        await pilot.press("minus", "minus")
        assert base_weights(app.engine)[agent] == pytest.approx(before - 0.1)
        # at the configured ceiling `+` changes nothing and says so
        app.engine.set_agent_weight(agent, app.settings.agents.max_weight)
        await pilot.press("plus")
        assert base_weights(app.engine)[agent] == app.settings.agents.max_weight


async def test_help_lists_every_binding_and_closes(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed = {row[2] for row in app.screen.rows}
        expected = {b.id for b in MAIN_BINDINGS} | {"help", "quit", "cycle_theme", "command_palette"}
        assert listed == expected
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_quit_stops_engine_with_shutdown_checkpoint(make_cockpit: CockpitFactory,
                                                          cockpit_store: Store) -> None:
    app = make_cockpit(persist=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    rows = cockpit_store.conn.execute("SELECT type, mode FROM checkpoints WHERE run_id = 'pilot'").fetchall()
    assert ("shutdown", "paper") in rows


async def test_space_pauses_and_resumes_the_engine(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("space")
        assert app.engine.paused and app.main.status.paused
        assert "PAUSED" in str(app.main.status.render())
        await pilot.press("space")
        assert not app.engine.paused and not app.main.status.paused


async def test_theme_key_cycles_bundled_themes(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "trdr-dark"
        seen = [app.theme]
        for _ in range(3):
            await pilot.press("t")
            seen.append(app.theme)
        assert seen == ["trdr-dark", "trdr-high-contrast", "trdr-light", "trdr-dark"]
        assert app.theme_variables["pnl-up"].upper() == "#22C55E"


async def test_panes_cycle_with_tab_and_arrows(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        order = [CandleChart, AgentTable, GridTable, OrderTable, LogPane]
        app.main.chart.focus()
        await pilot.pause()
        for expected in [*order[1:], order[0]]:
            await pilot.press("tab")
            assert isinstance(app.focused, expected)
        await pilot.press("shift+tab")
        assert isinstance(app.focused, LogPane)
        await pilot.press("right")
        assert isinstance(app.focused, CandleChart)
        await pilot.press("left")
        assert isinstance(app.focused, LogPane)


async def test_log_level_and_filter_keys(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        logs = app.main.logs
        assert logs.min_level == "info"
        await pilot.press("l")
        assert logs.min_level == "warning"
        await pilot.press("l", "l")
        assert logs.min_level == "debug"
        await pilot.press("slash")
        assert isinstance(app.screen, LogFilterScreen)
        await pilot.press(*"finished", "enter")
        assert logs.text_filter == "finished"
        assert all("finished" in e.message for e in logs.shown_entries())


async def test_mode_key_refuses_live_without_credentials(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit(credential_check=lambda: "no Coinbase API credentials")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        assert isinstance(app.screen, ModeScreen)
        options = app.screen.query_one(OptionList)
        assert options.highlighted == options.get_option_index(Mode.PAPER.value)  # the current mode
        await pilot.press("enter")  # keeps it
        await pilot.pause()
        assert isinstance(app.screen, MainScreen) and app.engine.mode == Mode.PAPER
        await pilot.press("m")
        options = app.screen.query_one(OptionList)
        options.highlighted = options.get_option_index(Mode.LIVE.value)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert app.engine.mode == Mode.PAPER
        assert any("live trading refused" in n.message for n in app._notifications)


async def test_mode_key_goes_live_only_after_typed_confirmation(make_cockpit: CockpitFactory,
                                                               cockpit_store: Store) -> None:
    switched: list[Mode] = []

    async def switcher(mode: Mode):  # type: ignore[no-untyped-def]
        switched.append(mode)
        return build_real_engine(app.settings, cockpit_store, preset="simple-trailing", run_id="second",
                                 candles=real_candles()[:PERSIST_BARS])

    app = make_cockpit(credential_check=lambda: None, mode_switcher=switcher, persist=True)
    first = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for answer, expect_switch in (("nope", False), ("live", True)):
            await pilot.press("m")
            options = app.screen.query_one(OptionList)
            options.highlighted = options.get_option_index(Mode.LIVE.value)
            await pilot.press("enter")
            assert isinstance(app.screen, ConfirmLiveScreen)
            await pilot.press(*answer, "enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert (switched == [Mode.LIVE]) is expect_switch
        assert app.engine is not first
    rows = cockpit_store.conn.execute("SELECT run_id, type FROM checkpoints ORDER BY id").fetchall()
    assert ("pilot", "shutdown") in rows  # the first engine stopped with its checkpoint


async def test_the_api_switches_the_cockpit_through_the_m_keys_path(cockpit_store: Store) -> None:
    """PUT /api/trading/mode on a real server beside the cockpit: the engine stops with its checkpoint and
    the cockpit bridges the new one, as after `m`; live still needs the confirmation field."""
    import aiohttp

    from trdr_tui.api.control import Hooks
    from trdr_tui.api.server import ApiServer

    switched: list[Mode] = []

    async def switcher(mode: Mode):  # type: ignore[no-untyped-def]
        switched.append(mode)
        return build_real_engine(app.settings, cockpit_store, preset="simple-trailing", run_id="second",
                                 candles=real_candles()[:PERSIST_BARS])

    from trdr_tui.engine.assembly import REPLAY_CHECKPOINT_S, build_engine, replay_feed
    from trdr_tui.tui.app import make_app

    settings = load_settings()
    first = build_engine(settings, mode="paper", feed=replay_feed(settings, real_candles()[:PERSIST_BARS], 20.0),
                         store=cockpit_store, run_id="pilot", checkpoint_interval_s=REPLAY_CHECKPOINT_S)
    app = make_app(settings, first, credential_check=lambda: None, mode_switcher=switcher)
    server = ApiServer(lambda: app.engine, Hooks(settings=app.settings, credential_check=lambda: None,  # type: ignore[arg-type, return-value]
                                                 mode_switcher=app.switch_engine), token="t" * 32)
    url = await server.start("127.0.0.1", 0)
    auth = {"Authorization": "Bearer " + "t" * 32}
    try:
        async with app.run_test(size=SIZE) as pilot, aiohttp.ClientSession(headers=auth) as http:
            while first.bars_done == 0:  # a paced replay: the engine is running, not finished
                await pilot.pause(0.05)
            async with http.put(url + "/api/trading/mode", json={"mode": "live"}) as r:
                assert r.status == 403 and switched == [], await r.text()
            async with http.put(url + "/api/trading/mode", json={"mode": "live", "confirm": "live"}) as r:
                body = await r.json()
                assert r.status == 200, body
            await pilot.pause()
            assert switched == [Mode.LIVE] and app.engine is not first and body["status"]["run_id"] == "second"
            assert app.bridge is not None and app.bridge.bus is app.engine.bus
    finally:
        await server.close()
    rows = cockpit_store.conn.execute("SELECT run_id, type FROM checkpoints ORDER BY id").fetchall()
    assert ("pilot", "shutdown") in rows  # the first engine stopped with its checkpoint


async def test_mode_key_backtest_opens_the_form(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        options = app.screen.query_one(OptionList)
        options.highlighted = options.get_option_index(Mode.BACKTEST.value)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, BacktestFormScreen)


async def test_backtest_key_runs_through_to_results(make_cockpit: CockpitFactory) -> None:
    from trdr_tui.backtest.runner import run_backtest

    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("b")
        form = app.screen
        assert isinstance(form, BacktestFormScreen)
        form.query_one("#start", Input).value = "2017-08-05"
        form.query_one("#end", Input).value = "2017-08-20"
        form.query_one("#preset").value = "simple-trailing"
        await pilot.press("ctrl+r")
        await form.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, BacktestResultsScreen)
        outcome = app.screen.outcome
        table = app.screen.query_one("#stats", DataTable)
        assert table.row_count >= 10
    bars = real_candles()
    lo = int((bars.ts < 1501891200 * 10**9).sum())  # 2017-08-05 00:00 UTC
    hi = int((bars.ts < 1503273600 * 10**9).sum())  # 2017-08-21 00:00 UTC
    # run_backtest owns its event loop: call it from a thread, as the screen's worker does
    direct = await asyncio.to_thread(run_backtest, app.settings, bars[lo:hi], preset="simple-trailing",
                                     monte_carlo_paths=0)
    assert outcome.stats["final_equity"] == direct.results["final_equity"]
    assert outcome.stats["fills"] == direct.results["fills"]
    assert len(outcome.equity) == len(outcome.buy_and_hold) == hi - lo


async def test_backtest_form_refuses_bad_input_and_says_why(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("b")
        form = app.screen
        form.query_one("#start", Input).value = "2017-13-01"
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not form.running
        assert "is not a date" in str(form.query_one("#form-message").render())


async def test_backtest_without_runner_says_so(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit(backtest_runner=None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("b")
        assert app.screen.query_one("#run").disabled
        await pilot.press("ctrl+r")
        assert "no backtest runner" in str(app.screen.query_one("#form-message").render())
        await pilot.press("escape", "escape")  # the first leaves the 'from' field, the second the form
        assert isinstance(app.screen, MainScreen)


async def test_command_palette_lists_and_runs_trdr_actions(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for action in ("Pause", "Help", "Quit", "Backtest", "Switch mode", "Weight up", "Weight down",
                       "Cycle theme", "Next pane", "Log level"):
            assert any(action.lower() in t.lower() for t in titles), action
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"trdr: toggle pause")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.engine.paused


async def test_keys_are_remappable_from_config(make_cockpit: CockpitFactory) -> None:
    remapped = load_settings(overrides={"tui.keys": {"pause": "p", "cycle_theme": "f2"}})
    app = make_cockpit(settings_=remapped)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("space")
        assert not app.engine.paused
        await pilot.press("p")
        assert app.engine.paused
        await pilot.press("f2")
        assert app.theme == "trdr-high-contrast"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert ("p", "Pause", "pause") in app.screen.rows


def test_unknown_binding_id_is_refused_with_a_suggestion(make_cockpit: CockpitFactory) -> None:
    with pytest.raises(ConfigError, match="did you mean 'pause'"):
        make_cockpit(settings_=load_settings(overrides={"tui.keys": {"paus": "p"}}))


def test_unknown_theme_is_refused(make_cockpit: CockpitFactory) -> None:
    with pytest.raises(ConfigError, match="did you mean 'trdr-dark'"):
        make_cockpit(settings_=load_settings(overrides={"tui.theme": "trdr-drak"}))


async def test_log_pane_scrolls_back_and_follows_again(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        logs = app.main.logs
        logs.min_level = "debug"
        for k in range(3 * SIZE[1]):  # more lines than the pane shows, whatever the replay logged
            logs.add(LogEvent(ts=k, level="info", source="test", message=f"line {k}"))
        logs.refresh_if_dirty()
        logs.focus()
        await pilot.pause()
        newest = logs.window()[-1]
        assert newest is logs.shown_entries()[-1]
        await pilot.press("up", "up")
        assert logs.lines_back == 2 and logs.window()[-1] is logs.shown_entries()[-3]
        await pilot.press("pageup")
        assert logs.lines_back > 2
        await pilot.press("end")
        assert logs.lines_back == 0 and logs.window()[-1] is newest


async def test_e_exports_the_chart_as_a_png(make_cockpit: CockpitFactory, tmp_path, monkeypatch) -> None:
    from trdr_testkit.fake_anthropic.server import png_size

    monkeypatch.chdir(tmp_path)
    app = make_cockpit(preset="simple-trailing")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await app.workers.wait_for_complete()
        await pilot.pause()
    files = list(tmp_path.glob("trdr-chart-BTC-USD-*.png"))
    assert len(files) == 1
    assert png_size(files[0].read_bytes()) == (800, 600)
    assert any("chart saved to" in str(n.message) for n in app._notifications)


async def test_e_without_matplotlib_shows_the_install_command_whole(make_cockpit: CockpitFactory, tmp_path,
                                                                    monkeypatch) -> None:
    """The hint `pip install 'trdr-tui[ai]'` reaches the screen with its brackets (not read as markup)."""
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)  # as if matplotlib were missing
    app = make_cockpit(preset="simple-trailing")
    async with app.run_test(size=(160, 40), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await app.workers.wait_for_complete()
        await pilot.pause()
        shown = [str(toast.render()) for toast in app.screen.query("Toast")]  # what each toast draws
    assert any("pip install 'trdr-tui[ai]' (matplotlib)" in text for text in shown), shown
    assert list(tmp_path.glob("trdr-chart-*.png")) == []


async def test_ctrl_c_says_which_key_quits_in_plain_text(make_cockpit: CockpitFactory) -> None:
    """Textual's Ctrl-C hint is markup ("Press [b]ctrl+q[/b] …"); trdr's notifications are plain text, so
    it is said without tags."""
    app = make_cockpit(preset="simple-trailing")
    async with app.run_test(size=(160, 40), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+c")
        await pilot.pause()
        shown = [str(toast.render()) for toast in app.screen.query("Toast")]
        assert app.is_running
    assert any("Press q to quit trdr" in text for text in shown), shown  # the key the footer shows
    assert not any("[b]" in text for text in shown), shown


async def test_the_selected_agents_whole_reason_is_shown(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        panel = app.main.agents
        app.main.query_one(AgentTable).focus()
        for _ in range(len(panel.agent_ids)):  # each agent in turn: its reason, not the column's cut
            agent = panel.selected
            assert agent is not None
            reason = panel.signals[agent].reasoning
            await pilot.pause()
            shown = str(app.main.query_one("#agent-why").render())
            assert shown.replace("\n", "") == f"{agent}: {reason}"
            await pilot.press("down")
        assert any(len(s.reasoning) > 40 for s in panel.signals.values())  # longer than the `why` column


async def test_the_status_bar_keeps_the_time_and_paused_at_80x24(make_cockpit: CockpitFactory) -> None:
    from trdr_tui.tui.format import price_text, ts_text

    app = make_cockpit()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("space")
        await pilot.pause()
        status = app.main.status
        text = "".join(seg.text for seg in status.render_line(0))
        assert "PAUSED" in text and ts_text(status.engine_ts) in text, text
        assert "PAPER" in text and price_text(app.engine.last_price) in text


async def test_orders_show_the_fill_price_and_their_own_ids(make_cockpit: CockpitFactory) -> None:
    import msgspec

    from trdr_tui.core.events import OrderEvent
    from trdr_tui.core.types import OrderStatus
    from trdr_tui.tui.format import price_text

    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        panel = app.main.orders
        table = app.main.query_one(OrderTable)
        filled = [o for o in panel.orders.values() if o.status is OrderStatus.FILLED]
        limits = [o for o in filled if o.price is not None]  # the grid's stock order is a market BUY
        assert limits
        # a limit that filled better than its price (as a marketable or trailing order does)
        first = limits[0]
        assert first.price is not None
        better = msgspec.structs.replace(first, avg_fill_price=round(first.price * 0.99, 2))
        panel.add_order_event(OrderEvent(order=better, transition=panel.transitions[first.id][-1]))
        panel.rebuild()
        assert str(table.get_cell(first.id, "price")) == price_text(better.avg_fill_price) != price_text(first.price)
        for order in filled:
            assert str(table.get_cell(order.id, "price")) == price_text(panel.orders[order.id].avg_fill_price)
        heads = set()
        for order in list(panel.orders.values())[:5]:
            panel.selected = order.id
            panel._render_timeline()
            heads.add(str(app.main.query_one("#timeline").render()).splitlines()[0])
        assert len(heads) == min(5, len(panel.orders))  # each order its own id


async def test_a_level_holding_a_lot_reads_held_not_filled_while_its_sell_works(make_cockpit: CockpitFactory) -> None:
    """The grid's FILLED level (its BUY filled, its take-profit SELL still working) reads `held` on
    screen: `filled` read as if the SELL had filled."""
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main.query_one(GridTable)
        assert table.snapshot is not None
        table.rebuild()
        shown = [str(table.get_row_at(i)[2]) for i in range(table.row_count)]
        by_price = sorted(table.snapshot.levels, key=lambda lv: lv.price, reverse=True)
        held = [i for i, lv in enumerate(by_price) if lv.state == "filled"]
        assert held, "the slice is chosen so the stocked grid holds lots"
        assert all(shown[i] == "held" for i in held) and "filled" not in shown
        assert app.engine.record.orders and any(o.status.value == "SUBMITTED" for o in app.engine.record.orders
                                                if o.side.value == "SELL")
