"""What the experimental agents share: one window function for both paths, and optional libraries.

Every experimental agent scores bar i from the last `window` candles up to and including bar i, with
one function (`scores`) that takes each column as a 2-D array of windows, shape (m, window), and
returns per-window arrays of shape (m,). The batch path passes every window of the history at once
(numpy's `sliding_window_view`: no copy); the streaming path passes the one window at the end of the
orchestrator's candle ring, shape (1, window). Same formula, same reduction order, so both paths agree
bar by bar (tested on real data).

Agents that need a library from the `experimental` extra name it in `requires`. Without it they vote
HOLD at confidence 0 and say `unavailable: install 'trdr-tui[experimental]' (needs …)`; the rest of
the panel is unaffected.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from trdr_tui.agents.advanced.windows import tail
from trdr_tui.agents.protocol import CODE_ACTIONS, HOLD, AgentContext, BaseAgent, MarketSnapshot, SignalArrays
from trdr_tui.core.types import AgentSignal, Urgency
from trdr_tui.market.indicators import Features

F64 = npt.NDArray[np.float64]
Scores = dict[str, Any]
EXTRA = "trdr-tui[experimental]"
COLUMNS = ("open", "high", "low", "close", "volume")
WARMING = "warming up: not enough history yet"


def optional_import(name: str) -> Any | None:
    """The module `name`, or None when it cannot be imported (the `experimental` extra is missing)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def window_view(x: npt.NDArray[Any], window: int) -> npt.NDArray[Any]:
    """Every `window`-long run of x as rows, shape (len(x) - window + 1, window); a view, no copy."""
    return np.lib.stride_tricks.sliding_window_view(x, window)


class WindowAgent(BaseAgent):
    """An agent whose bar-i signal is a function of the last `window` candles (see the module doc).

    Subclasses set `window` and `requires`, and implement `scores(cols)` — `cols` maps open, high,
    low, close, volume (float64) and ts (int64) to arrays of windows, shape (m, window); it returns
    a dict with at least `action` (int8), `confidence` and `trail` of shape (m,) — and `words(s, j)`,
    the reasoning for window j of a `scores` result.
    """

    window: ClassVar[int] = 0
    requires: ClassVar[tuple[str, ...]] = ()  # modules from the experimental extra
    hold_confidence: ClassVar[float] = 0.2

    def __init__(self) -> None:
        super().__init__()
        self.seed = 0
        self._last: tuple[int, Scores] | None = None  # the last batch's scores, for `explain`
        self._missing: list[str] | None = None

    def initialize(self, context: AgentContext) -> None:
        super().initialize(context)
        self.seed = int(context.params.get("seed", 0))

    # -- for subclasses --------------------------------------------------------------------------

    def scores(self, cols: dict[str, npt.NDArray[Any]]) -> Scores:
        raise NotImplementedError

    def words(self, s: Scores, j: int) -> tuple[str, Urgency]:
        raise NotImplementedError

    # -- availability ----------------------------------------------------------------------------

    def unavailable(self) -> str | None:
        """None when every required library imports, else the sentence the agent answers with."""
        if self._missing is None:
            self._missing = [m for m in self.requires if optional_import(m) is None]
        if not self._missing:
            return None
        return f"unavailable: install '{EXTRA}' (needs {', '.join(self._missing)})"

    # -- both paths ------------------------------------------------------------------------------

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        reason = self.unavailable()
        if reason is not None:
            return self.signal(snapshot, CODE_ACTIONS[HOLD], 0.0, self.context.base_trail, reason)
        w = tail(snapshot.history, self.window)
        if w is None:
            return self.warming_up(snapshot)
        s = self.scores({k: v[np.newaxis, :] for k, v in w.items()})
        words, urgency = self.words(s, 0)
        return self.signal(snapshot, CODE_ACTIONS[int(s["action"][0])], float(s["confidence"][0]),
                           float(s["trail"][0]), words, urgency)

    def analyze_batch(self, features: Features) -> SignalArrays:
        n, w = len(features.close), self.window
        action = np.full(n, HOLD, dtype=np.int8)
        conf = np.zeros(n)
        trail = np.full(n, self.context.base_trail)
        self._last = None
        if self.unavailable() is not None or n < w:
            return SignalArrays(action, conf, trail)
        cols: dict[str, npt.NDArray[Any]] = {k: window_view(getattr(features, k), w) for k in (*COLUMNS, "ts")}
        s = self.scores(cols)
        self._last = (n, s)
        action[w - 1:] = s["action"]
        conf[w - 1:] = np.clip(s["confidence"], 0.0, 1.0)
        trail[w - 1:] = s["trail"]
        return SignalArrays(action, conf, trail)

    def explain(self, features: Features, i: int) -> tuple[str, Urgency]:
        reason = self.unavailable()
        if reason is not None:
            return reason, Urgency.NORMAL
        if i < self.window - 1:
            return WARMING, Urgency.NORMAL
        if self._last is None or self._last[0] != len(features):
            self.analyze_batch(features)
        assert self._last is not None
        return self.words(self._last[1], i - self.window + 1)


def sign_word(x: float) -> str:
    return "up" if x > 0 else "down"
