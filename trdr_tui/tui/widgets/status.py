"""The status bar: mode, symbol, last price, equity, P&L, drawdown, feed health, PAUSED, engine time.

The time shown is the engine clock's (the last event's timestamp), never the wall clock, so a replay
shows market time and snapshots are reproducible.
"""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from trdr_tui.core.events import EngineStatus, FeedHealth, PortfolioSnapshot
from trdr_tui.tui.format import money_text, pct_text, price_text, ts_text


class StatusBar(Static):
    mode: reactive[str] = reactive("paper")
    symbol: reactive[str] = reactive("")
    price: reactive[float | None] = reactive(None)
    equity: reactive[float | None] = reactive(None)
    pnl: reactive[float | None] = reactive(None)
    drawdown: reactive[float | None] = reactive(None)
    feed_ok: reactive[bool | None] = reactive(None)
    feed_detail: reactive[str] = reactive("")
    paused: reactive[bool] = reactive(False)
    running: reactive[bool] = reactive(False)
    engine_ts: reactive[int] = reactive(0)

    def __init__(self, *, mode: str, symbol: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.set_reactive(StatusBar.mode, mode)
        self.set_reactive(StatusBar.symbol, symbol)

    def set_portfolio(self, snap: PortfolioSnapshot) -> None:
        self.price = snap.price
        self.equity = snap.equity
        self.pnl = snap.realized_pnl + snap.unrealized_pnl - snap.fees
        self.drawdown = snap.drawdown
        self.engine_ts = max(self.engine_ts, snap.ts)

    def set_status(self, status: EngineStatus) -> None:
        self.mode = status.mode.value
        self.symbol = status.symbol
        self.paused = status.paused
        self.running = status.running
        if status.last_price is not None:
            self.price = status.last_price
        self.engine_ts = max(self.engine_ts, status.ts)

    def set_feed(self, health: FeedHealth) -> None:
        self.feed_ok = health.healthy
        self.feed_detail = health.source if health.healthy else (health.detail or health.source)

    def render(self) -> str:
        mode_style = "$error" if self.mode == "live" else "$primary"
        parts = [f"[b reverse {mode_style}] {self.mode.upper()} [/]", f"[b]{self.symbol}[/]",
                 f"[$price]{price_text(self.price)}[/]"]
        if self.equity is not None:
            parts.append(f"eq {money_text(self.equity)}")
        if self.pnl is not None:
            colour = "$pnl-up" if self.pnl >= 0 else "$pnl-down"
            parts.append(f"P&L [{colour}]{money_text(self.pnl, signed=True)}[/]")
        if self.drawdown is not None:
            parts.append(f"dd {pct_text(self.drawdown)}")
        if self.feed_ok is not None:
            feed_colour = "$success" if self.feed_ok else "$error"
            parts.append(f"[{feed_colour}]feed {'ok' if self.feed_ok else 'DOWN'}[/] {self.feed_detail}")
        if self.paused:
            parts.append("[b reverse $warning] PAUSED [/]")
        parts.append(f"[$text-muted]{ts_text(self.engine_ts)}[/]")
        return " │ ".join(parts)
