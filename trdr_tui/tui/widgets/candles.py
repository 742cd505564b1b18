"""The price chart: candlesticks with volume, grid levels, trailing triggers, fills and the last price.

Data arrives through `add_candle`, `set_grid`, `add_fill`, ... which only record state and mark the
chart dirty. Drawing with plotext costs tens of milliseconds, so it never happens on the event loop:
`refresh_if_dirty` (called by the app's refresh timer) takes an immutable `ChartSpec` of the state and
hands it to a thread worker, which returns the finished picture; the widget then just shows it. At
most one picture is in the making, and the chart redraws at most every `MIN_REDRAW_S`, so a fast feed
never makes it flicker or hold up the rest of the screen.
"""

from __future__ import annotations

import io
from collections import deque
from functools import partial
from time import perf_counter

import msgspec
from rich.console import Console
from rich.segment import Segment
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget
from textual.worker import Worker, WorkerState
from textual_plotext.plot import Figure, Plot

from trdr_tui.core.events import GridSnapshot
from trdr_tui.core.types import Candle, Fill, Side
from trdr_tui.tui.format import day_time, price_text, rgb, tick_indexes

MAX_CANDLES = 600
MIN_REDRAW_S = 0.25  # the chart redraws at most 4 times a second, whatever the feed rate


class ChartSpec(msgspec.Struct, frozen=True):
    """Everything one picture shows, copied from the widget so a worker thread can draw it safely."""

    symbol: str
    width: int
    height: int
    bars: tuple[Candle, ...]
    last_price: float | None
    grid: GridSnapshot | None
    triggers: tuple[float, ...]
    fills: tuple[Fill, ...]
    colours: dict[str, str]
    plot_theme: str


def draw_chart(spec: ChartSpec) -> list[Strip]:
    """The picture for a spec: pure, so the same data and size always give the same picture.

    A fresh figure each time: plotext keeps some settings across clear_figure(), which would make the
    picture depend on the history of redraws rather than on the data alone.
    """
    plt = Plot()
    width, height = max(spec.width, 20), max(spec.height, 8)
    plt.plotsize(width, height)
    plt.theme(spec.plot_theme)
    bars = list(spec.bars)
    if not bars:
        plt.title(f"{spec.symbol}: waiting for the first candle")
        return _picture(plt, width, height)
    colours = spec.colours
    volume_rows = max(3, height // 4) if height >= 14 else 0
    chart: Figure = plt
    if volume_rows:
        plt.subplots(2, 1)
        chart = plt.subplot(1, 1)
        chart.plotsize(width, height - volume_rows)
    xs = list(range(len(bars)))
    chart.candlestick(
        xs,  # type: ignore[arg-type]  # plotext takes numeric x positions too; its annotation names only dates
        {"Open": [b.open for b in bars], "Close": [b.close for b in bars],
         "High": [b.high for b in bars], "Low": [b.low for b in bars]},
        colors=[rgb(colours["pnl-up"]), rgb(colours["pnl-down"])],
    )
    lo = min(b.low for b in bars)
    hi = max(b.high for b in bars)
    if hi <= lo:  # a flat market: give plotext a range to scale into
        chart.ylim(lo - 1.0, hi + 1.0)
    _draw_levels(chart, spec, lo, hi)
    _draw_fills(chart, spec, bars)
    if spec.last_price is not None:
        chart.hline(spec.last_price, rgb(colours["price"]))
    chart.title(f"{spec.symbol} {price_text(spec.last_price)}")
    ticks = tick_indexes(len(bars), width - 10, 8)
    chart.xticks([float(t) for t in ticks], [day_time(bars[i].ts) for i in ticks])
    if volume_rows:
        vol = plt.subplot(2, 1)
        vol.plotsize(width, volume_rows)
        volumes = [b.volume for b in bars]
        vol.bar(xs, volumes, color=rgb(colours["volume"]), width=0.6, minimum=0)
        low, high = min(volumes), max(volumes)
        span = high - low
        if span > 0:
            vol.ylim(low - span * 0.1, high)
        else:
            vol.ylim(0.0, max(high, 1.0))
        vol.xticks([])
        vol.yticks([])
    return _picture(plt, width, height)


def _picture(plt: Plot, width: int, height: int) -> list[Strip]:
    """The figure as screen lines, ready to show: decoding plotext's ANSI output is the costly part,
    so it happens here (in the drawing thread), not when the screen repaints."""
    plt._set_size(width, height)  # textual-plotext's own render does the same (its issue #5)
    return text_strips(Text.from_ansi(plt.build()), width)


def text_strips(text: Text, width: int) -> list[Strip]:
    console = Console(width=width, color_system="truecolor", legacy_windows=False, file=io.StringIO())
    lines = console.render_lines(text, console.options.update_width(width), pad=True)
    return [Strip(line, width) for line in lines]


def _draw_levels(chart: Figure, spec: ChartSpec, lo: float, hi: float) -> None:
    span = hi - lo
    visible_lo, visible_hi = lo - span * 0.05, hi + span * 0.05
    level_colour, trigger_colour = rgb(spec.colours["grid-level"]), rgb(spec.colours["trigger"])
    if spec.grid is not None:
        for level in spec.grid.levels:
            if visible_lo <= level.price <= visible_hi:
                chart.hline(level.price, level_colour)
            if level.trigger is not None and visible_lo <= level.trigger <= visible_hi:
                chart.hline(level.trigger, trigger_colour)
    for trigger in spec.triggers:
        if visible_lo <= trigger <= visible_hi:
            chart.hline(trigger, trigger_colour)


def _draw_fills(chart: Figure, spec: ChartSpec, bars: list[Candle]) -> None:
    if not spec.fills:
        return
    first, step = bars[0].ts, (bars[1].ts - bars[0].ts) if len(bars) > 1 else 1
    for side, marker, colour in ((Side.BUY, "▲", "bid"), (Side.SELL, "▼", "ask")):
        pts = [((f.ts - first) / step, f.price) for f in spec.fills if f.side == side and f.ts >= first]
        if pts:
            chart.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker,
                          color=rgb(spec.colours[colour]))


class CandleChart(Widget, can_focus=True):
    """Candlesticks of the most recent bars that fit the pane (about one bar per two columns)."""

    DEFAULT_CSS = """
    CandleChart {
        width: 1fr;
        height: 1fr;
    }
    """
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
        self.drawing = False
        self.picture: list[Strip] | None = None
        self.last_cost = 0.0  # seconds the last picture took to draw (in its thread)

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

    # -- drawing (at refresh rate, off the loop) ---------------------------------------------------

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        self._theme_changed()

    def _theme_changed(self, *_: object) -> None:
        """Register the app theme's canvas colours with plotext (once per theme), then redraw."""
        from plotext._dict import themes as plotext_themes
        from textual_plotext.plot import _rgbify_theme, _sequence

        name = self.plot_theme
        if name not in plotext_themes:
            variables = self.app.theme_variables
            surface = rgb(variables["surface"])
            sequence: list[str | int | tuple[int, int, int]] = list(_sequence)
            plotext_themes[name] = _rgbify_theme(surface, surface, rgb(variables["foreground"]), "default",
                                                 sequence)
        self.dirty = True

    @property
    def plot_theme(self) -> str:
        return f"trdr-{self.app.theme}"

    def on_resize(self) -> None:
        self.dirty = True

    def visible_bars(self) -> tuple[Candle, ...]:
        bars = list(self.candles)
        if self.forming is not None:
            bars.append(self.forming)
        width = max(self.size.width - 12, 10)
        return tuple(bars[-max(width // 2, 5):])

    def spec(self) -> ChartSpec:
        return ChartSpec(self.symbol, self.size.width, self.size.height, self.visible_bars(), self.last_price,
                         self.grid, tuple(self.triggers.values()), tuple(self.fills),
                         dict(self.app.theme_variables), self.plot_theme)

    def refresh_if_dirty(self) -> None:
        """Start a picture when something changed, none is in the making and the last is old enough."""
        now = perf_counter()
        if self.dirty and not self.drawing and self.size.width > 0 and now - self.last_redraw >= MIN_REDRAW_S:
            self.dirty = False
            self.drawing = True
            self.last_redraw = now
            self.run_worker(partial(self._draw, self.spec()), thread=True, group="chart", name="chart",
                            exit_on_error=False)

    @staticmethod
    def _draw(spec: ChartSpec) -> tuple[list[Strip], float]:
        started = perf_counter()
        picture = draw_chart(spec)
        return picture, perf_counter() - started

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "chart" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        event.stop()
        self.drawing = False
        if event.state == WorkerState.SUCCESS:
            result = event.worker.result
            if result is None:
                return
            self.picture, self.last_cost = result
            self.redraws += 1
            self.refresh()
        else:  # a drawing failure is shown in the pane; the next change tries again
            self.picture = text_strips(Text(f"chart unavailable: {event.worker.error}"), self.size.width)
            self.refresh()

    def render_line(self, y: int) -> Strip:
        """Lines of the last finished picture (the Line API: no re-rendering when the screen repaints)."""
        width = self.size.width
        if self.picture is None:
            return Strip([Segment(f"{self.symbol}: waiting for data"[:width])]) if y == 0 else Strip.blank(width)
        if y < len(self.picture):
            return self.picture[y].crop_extend(0, width, None)
        return Strip.blank(width)
