"""The candlestick chart Claude looks at (PRD §16.4): the last 100 candles with volume, 800×600 PNG.

Clean on purpose (no indicators): candles above, volume below, prices on the right. The same
renderer writes the cockpit's chart export. matplotlib draws it (the Agg backend, no display and no
pyplot state, so it is safe in a worker thread); it is an optional dependency (`pip install
'trdr-tui[ai]'`): without it `render_chart_png` raises NotAvailable with the install hint.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from trdr_tui.core.errors import NotAvailable
from trdr_tui.core.types import Candle

WIDTH, HEIGHT = 800, 600  # pixels (PRD §16.4)
CANDLES = 100
INSTALL_HINT = "install the plotting extra: pip install 'trdr-tui[ai]' (matplotlib)"
UP, DOWN = "#26a69a", "#ef5350"


def matplotlib_missing() -> str:
    """'' when matplotlib can be imported, else why not (for 'unavailable' messages)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        return f"matplotlib is not installed ({exc}); {INSTALL_HINT}"
    return ""


def render_chart_png(ts: npt.NDArray[np.int64], open_: npt.NDArray[np.float64], high: npt.NDArray[np.float64],
                     low: npt.NDArray[np.float64], close: npt.NDArray[np.float64],
                     volume: npt.NDArray[np.float64], *, title: str = "", width: int = WIDTH,
                     height: int = HEIGHT) -> bytes:
    """A PNG (bytes) of the candles given (arrays of one length, ts = bar open in ns, UTC): bodies and
    wicks above, volume bars below, `title` on top; `width`×`height` pixels. The same arrays always
    give the same bytes (no timestamp in the file). Raises NotAvailable without matplotlib and
    ValueError for empty or mismatched arrays."""
    n = ts.shape[0]
    if n == 0 or any(a.shape[0] != n for a in (open_, high, low, close, volume)):
        raise ValueError("render_chart_png needs non-empty arrays of one length")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection, PolyCollection
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise NotAvailable(f"the chart renderer needs matplotlib ({exc})", hint=INSTALL_HINT) from None
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 1, height_ratios=(4, 1), hspace=0.05, left=0.06, right=0.90, top=0.94, bottom=0.08)
    price = fig.add_subplot(grid[0])
    vol = fig.add_subplot(grid[1], sharex=price)
    x = np.arange(n)
    up = close >= open_
    colours = np.where(up, UP, DOWN)
    # collections, not one patch per bar: a hundred Rectangles cost several times the whole picture
    price.add_collection(LineCollection(list(np.stack((np.stack((x, low), 1), np.stack((x, high), 1)), 1)),
                                        colors=colours, linewidths=0.8))
    bottom = np.minimum(open_, close)
    top = np.maximum(np.maximum(open_, close), bottom + (high.max() - low.min()) * 2e-3)  # a doji still shows
    price.add_collection(PolyCollection(list(_boxes(x, bottom, top)), facecolors=colours, linewidths=0))
    vol.add_collection(PolyCollection(list(_boxes(x, np.zeros(n), volume)), facecolors=colours, linewidths=0))
    pad = (high.max() - low.min()) * 0.03 or abs(high.max()) * 0.01 or 1.0
    price.set_ylim(low.min() - pad, high.max() + pad)
    vol.set_ylim(0.0, float(volume.max()) * 1.05 or 1.0)
    for ax in (price, vol):
        ax.yaxis.tick_right()
        ax.grid(True, linewidth=0.3, alpha=0.5)
        ax.set_xlim(-1, n)
    price.tick_params(labelbottom=False)
    vol.set_ylabel("volume", fontsize=8)
    vol.yaxis.set_label_position("right")
    ticks = np.linspace(0, n - 1, min(n, 6)).round().astype(int)
    vol.set_xticks(ticks, [_label(int(ts[i])) for i in ticks], fontsize=8)
    if title:
        price.set_title(title, fontsize=10)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi, metadata={"Software": None}, pil_kwargs={"compress_level": 1})
    return out.getvalue()


def render_candles_png(candles: Sequence[Candle], *, title: str = "", last: int = CANDLES) -> bytes:
    """The last `last` candles (oldest first) as a chart PNG; see `render_chart_png`."""
    bars = list(candles)[-last:]
    cols = np.array([(c.open, c.high, c.low, c.close, c.volume) for c in bars], dtype=np.float64).reshape(-1, 5)
    ts = np.array([c.ts for c in bars], dtype=np.int64)
    return render_chart_png(ts, cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4], title=title)


def _boxes(x: npt.NDArray[np.int64], bottom: npt.NDArray[np.float64],
           top: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Rectangles 0.7 bars wide as polygon vertices, shape (n, 4, 2)."""
    left, right = x - 0.35, x + 0.35
    return np.stack((np.stack((left, bottom), 1), np.stack((left, top), 1), np.stack((right, top), 1),
                     np.stack((right, bottom), 1)), 1)


def _label(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime("%m-%d %H:%M")
