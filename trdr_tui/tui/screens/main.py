"""The cockpit: candles, agents, grid, orders, logs and the status bar, fed by the bridge's messages.

Handlers only record state and mark panes dirty; the app's refresh timer redraws dirty panes at
`tui.refresh_hz`, so the screen never redraws more often than a terminal can show.
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.screen import Screen
from textual.widgets import Footer

from trdr_tui.core.fsm import OPEN
from trdr_tui.tui import bridge
from trdr_tui.tui.widgets.agents import AgentPanel, AgentTable
from trdr_tui.tui.widgets.candles import CandleChart
from trdr_tui.tui.widgets.grid import GridTable
from trdr_tui.tui.widgets.logs import LogPane, fill_line, order_line, risk_line
from trdr_tui.tui.widgets.orders import OrdersPanel, OrderTable
from trdr_tui.tui.widgets.status import StatusBar

COMPACT_FOOTER_BELOW = 100  # columns: narrower, the footer drops its spacing so every key hint fits (80×24)

# Cockpit bindings live on the main screen (so typing in a form never trades); each has an id for
# `[tui.keys]` and appears in the command palette and the help screen.
MAIN_BINDINGS: list[BindingType] = [
    Binding("space", "app.toggle_pause", "Pause", id="pause"),
    Binding("m", "app.choose_mode", "Mode", id="switch_mode"),
    Binding("b", "app.backtest", "Backtest", id="backtest"),
    Binding("f", "app.funding", "Deposit/withdraw", show=False, id="funding"),
    Binding("plus", "app.weight_up", "Weight+", id="weight_up"),
    Binding("minus", "app.weight_down", "Weight-", id="weight_down"),
    Binding("tab", "app.next_pane", "Next pane", show=False, id="next_pane"),
    Binding("shift+tab", "app.previous_pane", "Previous pane", show=False, id="previous_pane"),
    Binding("right", "app.next_pane", "Pane right", show=False, priority=True, id="pane_right"),
    Binding("left", "app.previous_pane", "Pane left", show=False, priority=True, id="pane_left"),
    Binding("l", "app.log_level", "Log level", show=False, id="log_level"),
    Binding("slash", "app.log_filter", "Filter logs", show=False, id="log_filter"),
    Binding("e", "app.export_chart", "Export chart", show=False, id="export_chart"),
    Binding("i", "app.inspect", "Inspect", show=False, id="inspector"),
    Binding("u", "app.tuning", "Self-tuning", show=False, id="tuning"),
]


class MainScreen(Screen[None]):
    """Five panes and a status bar. Focus order (tab, arrows): candles, agents, grid, orders, logs."""

    BINDINGS: ClassVar[list[BindingType]] = MAIN_BINDINGS

    def __init__(self, *, symbol: str, mode: str, weights: dict[str, float], threshold: float) -> None:
        super().__init__(id="main")
        self.symbol = symbol
        self.mode = mode
        self.weights = weights
        self.threshold = threshold

    def compose(self) -> ComposeResult:
        with Container(id="panes"):
            yield CandleChart(self.symbol, id="candles")
            with Vertical(id="side"):
                yield AgentPanel(self.weights, self.threshold, id="agents")
                yield GridTable(id="grid")
            yield OrdersPanel(id="orders")
            yield LogPane(id="logs")
        yield StatusBar(mode=self.mode, symbol=self.symbol, id="status")
        yield Footer()

    # -- panes -----------------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self.query_one(Footer).compact = event.size.width < COMPACT_FOOTER_BELOW

    def on_mount(self) -> None:
        # Panes are looked up once: handlers run at event rate and must not query the DOM each time.
        self.chart = self.query_one(CandleChart)
        self.agents = self.query_one(AgentPanel)
        self.grid = self.query_one(GridTable)
        self.orders = self.query_one(OrdersPanel)
        self.logs = self.query_one(LogPane)
        self.status = self.query_one(StatusBar)

    def pane_widgets(self) -> list[CandleChart | AgentTable | GridTable | OrderTable | LogPane]:
        return [self.chart, self.query_one(AgentTable), self.grid, self.query_one(OrderTable), self.logs]

    def refresh_panes(self) -> None:
        """Redraw whatever changed since the last frame (called by the app's refresh timer)."""
        if not self.chart.is_attached:
            return
        self.chart.refresh_if_dirty()
        self.grid.refresh_if_dirty()
        self.orders.refresh_if_dirty()
        self.logs.refresh_if_dirty()

    # -- bridge messages -------------------------------------------------------------------------

    def on_candle_received(self, message: bridge.CandleReceived) -> None:
        event = message.event
        if event.symbol == self.symbol:
            self.chart.add_candle(event.candle, closed=event.closed)
            self.grid.set_price(event.candle.close)

    def on_tick_received(self, message: bridge.TickReceived) -> None:
        if message.event.symbol == self.symbol:
            self.chart.set_price(message.event.price)
            self.grid.set_price(message.event.price)
            self.status.price = message.event.price

    def on_portfolio_updated(self, message: bridge.PortfolioUpdated) -> None:
        self.status.set_portfolio(message.event)

    def on_grid_updated(self, message: bridge.GridUpdated) -> None:
        self.chart.set_grid(message.event)
        self.grid.set_grid(message.event)

    def on_status_updated(self, message: bridge.StatusUpdated) -> None:
        self.status.set_status(message.event)

    def on_feed_health_updated(self, message: bridge.FeedHealthUpdated) -> None:
        self.status.set_feed(message.event)

    def on_signal_received(self, message: bridge.SignalReceived) -> None:
        self.agents.set_signal(message.event)

    def on_decision_made(self, message: bridge.DecisionMade) -> None:
        self.agents.set_decision(message.event)

    def on_weights_updated(self, message: bridge.WeightsUpdated) -> None:
        self.agents.set_weights(message.event.weights)

    def on_order_changed(self, message: bridge.OrderChanged) -> None:
        event = message.event
        self.orders.add_order_event(event)
        order = event.order
        trigger = order.metadata.get("trigger")
        is_open = event.transition.to_status in OPEN
        if isinstance(trigger, float) and is_open:
            self.chart.set_trigger(order.id, trigger)
        else:
            self.chart.set_trigger(order.id, None)
        line = order_line(event)
        if line is not None:
            self.logs.add(line)

    def on_fill_received(self, message: bridge.FillReceived) -> None:
        self.orders.add_fill(message.event)
        self.chart.add_fill(message.event)
        self.logs.add(fill_line(message.event))

    def on_risk_rejected(self, message: bridge.RiskRejected) -> None:
        line, key = risk_line(message.event)
        self.logs.add(line, key=key)

    def on_log_received(self, message: bridge.LogReceived) -> None:
        self.logs.add(message.event)
