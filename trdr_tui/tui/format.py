"""Number and time formatting shared by the panes. Times come from events (engine clock), never the wall."""

from __future__ import annotations

import math

from rich.color import Color as RichColor
from textual.color import Color

from trdr_tui.core.timefmt import utc_datetime

NS = 1_000_000_000


def ts_text(ts_ns: int | None, *, seconds: bool = False) -> str:
    """UTC time of an event, e.g. `2019-03-04 13:00`; '—' before the first event."""
    if not ts_ns:
        return "—"
    return utc_datetime(ts_ns).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def short_ts(ts_ns: int) -> str:
    return utc_datetime(ts_ns).strftime("%m-%d %H:%M")


def day_time(ts_ns: int) -> str:
    """Day of month and time (`24 09:00`): enough to tell recent orders apart in a narrow pane."""
    return utc_datetime(ts_ns).strftime("%d %H:%M")


def price_text(price: float | None) -> str:
    if price is None or not math.isfinite(price):
        return "—"
    if abs(price) >= 1000:
        return f"{price:,.2f}"
    if abs(price) >= 1:
        return f"{price:,.4f}"
    return f"{price:.6g}"


def money_text(value: float | None, *, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def pct_text(fraction: float | None, *, signed: bool = False) -> str:
    if fraction is None or not math.isfinite(fraction):
        return "—"
    return f"{fraction * 100:+.2f}%" if signed else f"{fraction * 100:.2f}%"


def duration_text(ns: int) -> str:
    seconds = ns // NS
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}"
    return f"{seconds // 86400}d{(seconds % 86400) // 3600:02d}h"


def bar_text(fraction: float, width: int = 10) -> str:
    """A confidence bar: `███████░░░` for 0.7."""
    fraction = min(max(fraction, 0.0), 1.0) if math.isfinite(fraction) else 0.0
    full = round(fraction * width)
    return "█" * full + "░" * (width - full)


def rgb(color: str) -> tuple[int, int, int]:
    """A theme colour as an (r, g, b) triple for plotext."""
    return Color.parse(color).rgb


def blend(cold: str, hot: str, amount: float) -> RichColor:
    """A heat-map colour between two theme colours."""
    amount = min(max(amount, 0.0), 1.0)
    return Color.parse(cold).blend(Color.parse(hot), amount).rich_color


def tick_indexes(n: int, plot_width: int, label_width: int) -> list[int]:
    """Evenly spaced x ticks whose labels cannot overlap (plotext drops overlapping labels arbitrarily)."""
    if n <= 0:
        return []
    fits = max(plot_width // (label_width + 3), 1)
    count = min(fits, 5, n)
    if count == 1:
        return [n - 1]
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(count)})
