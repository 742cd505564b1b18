"""The price chart: candlesticks with volume, grid levels, trailing triggers, fills and the last price.

Data arrives through `add_candle`, `set_grid`, `add_fill`, ... which only record state and mark the
chart dirty; `replot()` draws everything at once and runs at most `refresh_hz` times a second, so a fast
feed never makes the chart flicker or fall behind.
"""

from __future__ import annotations

from collections import deque
from time import perf_counter

from textual.app import RenderResult
from textual_plotext import PlotextPlot
from textual_plotext.plot import Figure, Plot

from trdr_tui.core.events import GridSnapshot
from trdr_tui.core.types import Candle, Fill, Side
from trdr_tui.tui.format import day_time, price_text, rgb, tick_indexes

MAX_CANDLES = 600
MIN_REDRAW_S = 0.25  # the chart redraws at most 4 times a second, whatever the feed rate


class CandleChart(PlotextPlot):
    """Candlesticks of the most recent bars that fit the pane (about one bar per two columns)."""

    can_focus = True
    BORDER_TITLE = "candles"

    def __init__(self, symbol: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.symbol = symbol
        self.candles: deque[Candle] = deque(maxlen=MAX_CANDLES)
        self.forming: Candle | None = None
        self.last_price: float | None = None
        self.grid: GridSnapshot | None = None
        self.triggers: dict[str, float] = {}  # order id → trigger price of an open trailing order
        self.fills: deque[Fill] = deque(maxlen=400)
        self.dirty = False
        self.redraws = 0
        self.last_redraw = -MIN_REDRAW_S

    # -- state (cheap; called at event rate) -------------------------------------------------------

    def add_candle(self, candle: Candle, *, closed: bool) -> None:
        if closed:
            if self.candles and self.candles[-1].ts == candle.ts:
                self.candles[-1] = candle
            elif not self.candles or candle.ts > self.candles[-1].ts:
                self.candles.append(candle)
            self.forming = None
        else:
            self.forming = candle
        self.last_price = candle.close
        self.dirty = True

    def set_price(self, price: float) -> None:
        self.last_price = price
        self.dirty = True

    def set_grid(self, grid: GridSnapshot) -> None:
        self.grid = grid
        self.dirty = True

    def set_trigger(self, order_id: str, trigger: float | None) -> None:
        if trigger is None:
            self.triggers.pop(order_id, None)
        else:
            self.triggers[order_id] = trigger
        self.dirty = True

    def add_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        self.dirty = True

    # -- drawing (at refresh rate) -----------------------------------------------------------------

    def refresh_if_dirty(self) -> None:
        """Redraw when something changed, at most every `MIN_REDRAW_S` (plotext is the costliest pane)."""
        now = perf_counter()
        if self.dirty and self.size.width > 0 and now - self.last_redraw >= MIN_REDRAW_S:
            self.dirty = False
            self.last_redraw = now
            self.replot()

    def on_resize(self) -> None:
        self.dirty = True

    def visible_bars(self) -> list[Candle]:
        bars = list(self.candles)
        if self.forming is not None:
            bars.append(self.forming)
        width = max(self.size.width - 12, 10)
        return bars[-max(width // 2, 5):]

    def replot(self) -> None:
        """Ask for a redraw; the figure is built in `render`, at the size the pane has then."""
        self.refresh()

    def render(self) -> RenderResult:
        self.build_figure()
        return super().render()

    def build_figure(self) -> None:
        """Draw the recorded state into a fresh figure; the only place that talks to plotext."""
        self.redraws += 1
        colours = self.app.theme_variables
        # A fresh figure each time: plotext keeps some settings across clear_figure(), which would make
        # the picture depend on the history of redraws rather than on the data alone.
        self._plot = Plot()
        plt = self.plt
        bars = self.visible_bars()
        width, height = max(self.size.width, 20), max(self.size.height, 8)
        if not bars:
            plt.plotsize(width, height)
            plt.title(f"{self.symbol}: waiting for the first candle")
            return
        volume_rows = max(3, height // 4) if height >= 14 else 0
        plt.plotsize(width, height)
        chart: Figure = plt
        if volume_rows:
            plt.subplots(2, 1)
            chart = plt.subplot(1, 1)
            chart.plotsize(width, height - volume_rows)
        xs = list(range(len(bars)))
        chart.candlestick(
            xs,
            {"Open": [b.open for b in bars], "Close": [b.close for b in bars],
             "High": [b.high for b in bars], "Low": [b.low for b in bars]},
            colors=[rgb(colours["pnl-up"]), rgb(colours["pnl-down"])],
        )
        lo = min(b.low for b in bars)
        hi = max(b.high for b in bars)
        if hi <= lo:  # a flat market: give plotext a range to scale into
            chart.ylim(lo - 1.0, hi + 1.0)
        self._draw_levels(chart, lo, hi, colours)
        self._draw_fills(chart, bars, colours)
        if self.last_price is not None:
            chart.hline(self.last_price, rgb(colours["price"]))
        chart.title(f"{self.symbol} {price_text(self.last_price)}")
        ticks = tick_indexes(len(bars), width - 10, 8)
        chart.xticks(ticks, [day_time(bars[i].ts) for i in ticks])
        if volume_rows:
            vol = plt.subplot(2, 1)
            vol.plotsize(width, volume_rows)
            volumes = [b.volume for b in bars]
            vol.bar(xs, volumes, color=rgb(colours["volume"]), width=0.6, minimum=0)
            low, high = min(volumes), max(volumes)
            span = high - low
            vol.ylim(low - span * 0.1, high) if span > 0 else vol.ylim(0.0, max(high, 1.0))
            vol.xticks([])
            vol.yticks([])

    def _draw_levels(self, chart: Figure, lo: float, hi: float, colours: dict[str, str]) -> None:
        span = hi - lo
        visible_lo, visible_hi = lo - span * 0.05, hi + span * 0.05
        if self.grid is not None:
            for level in self.grid.levels:
                if visible_lo <= level.price <= visible_hi:
                    chart.hline(level.price, rgb(colours["grid-level"]))
                if level.trigger is not None and visible_lo <= level.trigger <= visible_hi:
                    chart.hline(level.trigger, rgb(colours["trigger"]))
        for trigger in self.triggers.values():
            if visible_lo <= trigger <= visible_hi:
                chart.hline(trigger, rgb(colours["trigger"]))

    def _draw_fills(self, chart: Figure, bars: list[Candle], colours: dict[str, str]) -> None:
        if not self.fills:
            return
        first, step = bars[0].ts, (bars[1].ts - bars[0].ts) if len(bars) > 1 else 1
        for side, marker, colour in ((Side.BUY, "▲", "bid"), (Side.SELL, "▼", "ask")):
            pts = [((f.ts - first) / step, f.price) for f in self.fills if f.side == side and f.ts >= first]
            if pts:
                chart.scatter([p[0] for p in pts], [p[1] for p in pts],
                              marker=marker, color=rgb(colours[colour]))
