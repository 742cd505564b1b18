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
        """The parts that fit the bar's width: mode, price, a feed that is down, PAUSED and the time always;
        the others are left out when too narrow, in this order: feed ok, drawdown, equity, symbol, P&L."""
        parts = self._parts()
        width = self.content_size.width
        while width and sum(len(plain) for _, _, plain in parts) + 3 * (len(parts) - 1) > width:
            rank, at = max((r, i) for i, (r, _, _) in enumerate(parts))
            if rank == 0:
                break
            del parts[at]
        return " │ ".join(markup for _, markup, _ in parts)

    def _parts(self) -> list[tuple[int, str, str]]:
        """(rank, markup, plain text): rank 0 is never left out, the highest goes first."""
        mode_style = "$error" if self.mode == "live" else "$primary"
        price = price_text(self.price)
        parts = [(0, f"[b reverse {mode_style}] {self.mode.upper()} [/]", f" {self.mode.upper()} "),
                 (2, f"[b]{self.symbol}[/]", self.symbol), (0, f"[$price]{price}[/]", price)]
        if self.equity is not None:
            eq = f"eq {money_text(self.equity)}"
            parts.append((3, eq, eq))
        if self.pnl is not None:
            colour = "$pnl-up" if self.pnl >= 0 else "$pnl-down"
            pnl = money_text(self.pnl, signed=True)
            parts.append((1, f"P&L [{colour}]{pnl}[/]", f"P&L {pnl}"))
        if self.drawdown is not None:
            dd = f"dd {pct_text(self.drawdown)}"
            parts.append((4, dd, dd))
        if self.feed_ok is not None:
            feed_colour = "$success" if self.feed_ok else "$error"
            feed = f"feed {'ok' if self.feed_ok else 'DOWN'}"
            parts.append((5 if self.feed_ok else 0, f"[{feed_colour}]{feed}[/] {self.feed_detail}",
                          f"{feed} {self.feed_detail}"))
        if self.paused:
            parts.append((0, "[b reverse $warning] PAUSED [/]", " PAUSED "))
        when = ts_text(self.engine_ts)
        parts.append((0, f"[$text-muted]{when}[/]", when))
        return parts
