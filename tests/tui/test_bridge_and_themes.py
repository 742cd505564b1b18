"""The bridge's coalescing and back-off, and themes as data files. Isolated: a scripted engine feeds the bus."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App

from tests.tui.conftest import real_candles
from tests.tui.fakes import ScriptedEngine
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.events import LogEvent, PortfolioSnapshot
from trdr_tui.core.types import Tick
from trdr_tui.tui import bridge
from trdr_tui.tui.themes import TRDR_VARIABLE_DEFAULTS, load_themes, parse_theme


class Sink(App[None]):
    """Records what reaches a handler (the main screen's role in the cockpit)."""

    def __init__(self) -> None:
        super().__init__()
        self.ticks: list[float] = []
        self.logs: list[str] = []
        self.portfolios: list[float] = []

    def on_tick_received(self, message: bridge.TickReceived) -> None:
        self.ticks.append(message.event.price)

    def on_log_received(self, message: bridge.LogReceived) -> None:
        self.logs.append(message.event.message)

    def on_portfolio_updated(self, message: bridge.PortfolioUpdated) -> None:
        self.portfolios.append(message.event.equity)


def snapshot(equity: float) -> PortfolioSnapshot:
    return PortfolioSnapshot(ts=1, symbol="BTC-USD", cash=equity, position=0.0, avg_entry=0.0, price=1.0,
                             equity=equity, realized_pnl=0.0, unrealized_pnl=0.0, fees=0.0,
                             peak_equity=equity, drawdown=0.0)


async def test_burst_coalesces_state_but_keeps_every_log_line() -> None:
    engine = ScriptedEngine(real_candles()[:2])
    app = Sink()
    async with app.run_test() as pilot:
        b = bridge.Bridge(engine.bus, app, high_water=10_000)
        b.start()
        for i in range(500):  # one synchronous burst: nothing is handled until it ends
            engine.bus.publish("market.tick.BTC-USD", Tick("BTC-USD", i, 100.0 + i))
        for i in range(50):
            engine.bus.publish("log.info", LogEvent(ts=i, level="info", source="t", message=f"line {i}"))
        await pilot.pause(0.2)
        b.stop()
    assert app.ticks[-1] == 599.0  # the newest state always arrives
    assert len(app.ticks) < 500 and b.stats.coalesced == 500 - len(app.ticks)
    assert app.logs == [f"line {i}" for i in range(50)]  # events are never dropped or reordered
    assert b.stats.received == 550


async def test_long_queue_parks_state_and_flushes_the_newest() -> None:
    engine = ScriptedEngine(real_candles()[:2])
    app = Sink()
    async with app.run_test() as pilot:
        b = bridge.Bridge(engine.bus, app, high_water=5, flush_interval=0.01)
        b.start()
        for i in range(20):
            engine.bus.publish("log.info", LogEvent(ts=i, level="info", source="t", message=f"line {i}"))
        for equity in (1.0, 2.0, 3.0):
            engine.bus.publish("portfolio.BTC-USD", snapshot(equity))
        await pilot.pause(0.3)
        b.stop()
    assert b.stats.superseded == 2  # 1.0 and 2.0 were replaced while parked
    assert app.portfolios == [3.0]
    assert len(app.logs) == 20


def test_bundled_themes_decode_with_every_trdr_variable() -> None:
    themes = load_themes()
    assert {"trdr-dark", "trdr-light", "trdr-high-contrast"} <= set(themes)
    assert themes["trdr-light"].dark is False
    for theme in themes.values():
        assert set(TRDR_VARIABLE_DEFAULTS) <= set(theme.variables), theme.name
        theme.to_color_system()  # every colour parses


def test_bad_theme_file_is_refused_with_where_and_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'primary'") as info:
        parse_theme('name = "x"\nprimery = "#ffffff"\n', "themes/x.toml")
    assert "themes/x.toml" in str(info.value)
    with pytest.raises(ConfigError, match="invalid colour"):
        parse_theme('name = "x"\nprimary = "not-a-colour"\n', "themes/x.toml")
    with pytest.raises(ConfigError, match="needs `name` and `primary`"):
        parse_theme('name = "x"\n', "themes/x.toml")


def test_tcss_uses_theme_variables_only() -> None:
    import re

    from trdr_tui.tui import app as app_module

    tcss = (Path(app_module.__file__).parent / "app.tcss").read_text(encoding="utf-8")
    assert not re.search(r"#[0-9a-fA-F]{3,8}\b", tcss)
    assert not re.search(r"\b(rgb|hsl)\(", tcss)
