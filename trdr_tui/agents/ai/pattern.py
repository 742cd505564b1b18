"""AIPatternAgent: Claude reads a candlestick chart (PRD §3.2.2 agent 6, §12.1, §16.4).

Each bar it renders the last 100 candles with volume as an 800×600 PNG (`chart.render_chart_png`)
and asks Claude, with the image and the §12.1 prompt, for PATTERN, SUPPORT, RESISTANCE, MOMENTUM,
ACTION, CONFIDENCE and TRAIL_DISTANCE through a forced tool call (`answers.PatternAnswer`). The vote:
ACTION (WAIT → HOLD), CONFIDENCE / 100, TRAIL_DISTANCE / 100 clamped to the trailing bounds.

Everything goes through the shared `ClaudeService` (context.params["ai"]): the cache (key: model,
prompt version, sha256 of symbol, timeframe and the 100-candle window), the budget, validation.

- a malformed or out-of-range answer (E004, counted) makes `analyze` raise: the orchestrator skips
  the agent for that bar (E005) and the answer never reaches the decision;
- not cached (mode `cache`), budget refused, AI off, no key, service down → HOLD at confidence 0
  (no say in the consensus) with the reason, e.g. "not cached", "held back: daily budget reached …"
  or "unavailable: Anthropic is overloaded (529)"; the panel goes on.

Backtests: in modes `off` and `cache` it also has a batch path (`analyze_batch`: one cache lookup per
bar, the same keys as streaming); in mode `live` it streams. Its reasoning ends with the service's
spend and cache hits, which the cockpit's agents pane shows.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from trdr_tui.agents.advanced.windows import tail
from trdr_tui.agents.ai.answers import PATTERN_TOOL, PatternAnswer, check_levels, tool
from trdr_tui.agents.ai.chart import CANDLES, matplotlib_missing, render_chart_png
from trdr_tui.agents.ai.service import AIUnavailable, BudgetExceeded, ClaudeService, input_key
from trdr_tui.agents.protocol import BUY, HOLD, SELL, BaseAgent, MarketSnapshot, SignalArrays
from trdr_tui.core.errors import InvalidResponse, NotAvailable
from trdr_tui.core.types import Action, AgentSignal, Urgency
from trdr_tui.market.indicators import Features

PROMPT_VERSION = "pattern-1"
KIND = "pattern"
SYSTEM = ("You are a technical analyst for a swing-trading grid bot that arms trailing buy and sell orders. "
          "Read the candlestick chart and report through the report_chart_analysis tool only.")
PROMPT = """Analyze this {timeframe} chart for {symbol}.

Recent price sequence: {prices}

Identify:
1. Chart pattern (if any)
2. Key support/resistance levels
3. Momentum direction
4. Optimal trailing entry/exit points

Response format (the fields of the report_chart_analysis tool):
PATTERN: [pattern name or NONE]
SUPPORT: [price level]
RESISTANCE: [price level]
MOMENTUM: [BULLISH/BEARISH/NEUTRAL]
ACTION: [TRAIL_BUY/TRAIL_SELL/WAIT]
CONFIDENCE: [0-100]
TRAIL_DISTANCE: [percentage]"""
TOOL = tool(PATTERN_TOOL, "Report the chart analysis: pattern, levels, momentum, action, confidence, trail.",
            PatternAnswer)
_ACTION = {"TRAIL_BUY": BUY, "TRAIL_SELL": SELL, "WAIT": HOLD}
_CODES = (Action.HOLD, Action.TRAIL_BUY, Action.TRAIL_SELL)


def window_key(model: str, symbol: str, timeframe: str, cols: dict[str, npt.NDArray[Any]]) -> str:
    """The cache key of one chart: model, prompt version, symbol, timeframe and the window's bytes
    (ts int64, then open, high, low, close, volume float64, each contiguous)."""
    return input_key(KIND, model, PROMPT_VERSION, symbol, timeframe,
                     *(np.ascontiguousarray(cols[c]).tobytes() for c in ("ts", "open", "high", "low", "close",
                                                                          "volume")))


def prompt_text(symbol: str, timeframe: str, close: npt.NDArray[np.float64]) -> str:
    prices = ", ".join(f"{x:.6g}" for x in close[-20:])
    return PROMPT.format(symbol=symbol, timeframe=timeframe, prices=prices)


class AIPatternAgent(BaseAgent):
    id = "ai_pattern"
    name = "AI pattern (Claude)"
    version = "1.0.0"
    description = "Claude reads a 100-candle chart image: pattern, levels, momentum, trailing action"
    paid_service: ClassVar[bool] = True  # `trdr agents ablate` leaves it out by default

    window = CANDLES

    def __init__(self) -> None:
        super().__init__()
        self.ai: ClaudeService | None = None
        self._off = ""
        self._last: list[str] | None = None

    def initialize(self, context: Any) -> None:
        super().initialize(context)
        ai = context.params.get("ai")
        self.ai = ai if isinstance(ai, ClaudeService) else None
        if self.ai is None:
            self._off = "unavailable: no Claude service (enable [ai] and the ai_pattern agent)"
        elif self.ai.mode == "off":
            self._off = "AI off"
        elif self.ai.mode == "live" and matplotlib_missing():
            self._off = f"unavailable: {matplotlib_missing()}"
        else:
            self._off = ""
        if self.ai is not None:
            self.timeout_s = self.ai.cfg.timeout_seconds + 5.0  # the SDK times the request out first; + the chart

    # -- streaming ---------------------------------------------------------------------------------

    async def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        if self._off or self.ai is None:
            return self._hold(snapshot, self._off)
        cols = tail(snapshot.history, self.window)
        if cols is None:
            return self.warming_up(snapshot)
        c = self.context
        ai = self.ai
        key = window_key(ai.model, c.symbol, c.timeframe, cols)
        low, high = float(cols["low"].min()), float(cols["high"].max())

        async def content() -> list[dict[str, Any]]:
            # tens of ms of CPU: drawn in a worker thread, so the event loop (feeds, cockpit) goes on
            png = await asyncio.to_thread(render_chart_png, cols["ts"], cols["open"], cols["high"], cols["low"],
                                          cols["close"], cols["volume"], title=f"{c.symbol} {c.timeframe}")
            return [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": base64.b64encode(png).decode()}},
                    {"type": "text", "text": prompt_text(c.symbol, c.timeframe, cols["close"])}]

        try:
            answer, source = await ai.ask(kind=KIND, version=PROMPT_VERSION, key=key, answer=PatternAnswer,
                                          tool=TOOL, content=content, system=SYSTEM, where=f"agent {self.id}",
                                          check=lambda a: check_levels(a, low, high, where=f"agent {self.id}"))
        except InvalidResponse:
            raise  # E004, counted by the service: the orchestrator skips this agent for the bar
        except BudgetExceeded as exc:
            return self._hold(snapshot, f"held back: {exc.message}")
        except AIUnavailable as exc:
            reason = exc.message if exc.message in ("not cached", "AI off") else f"unavailable: {exc.message}"
            return self._hold(snapshot, reason)
        code, conf, trail = self._vote(answer)
        words = f"{self._words(answer)} (Claude, {source})"
        return self.signal(snapshot, _CODES[code], conf, trail, f"{words} · {ai.status_line()}")

    def _hold(self, snapshot: MarketSnapshot, reason: str) -> AgentSignal:
        tail_words = f" · {self.ai.status_line()}" if self.ai is not None else ""
        return self.signal(snapshot, Action.HOLD, 0.0, self.context.base_trail, f"{reason}{tail_words}")

    def _vote(self, a: PatternAnswer) -> tuple[int, float, float]:
        return _ACTION[a.action], a.confidence / 100.0, self.clamp_trail(a.trail_distance / 100.0)

    @staticmethod
    def _words(a: PatternAnswer) -> str:
        return (f"{a.pattern}; momentum {a.momentum.lower()}; support {a.support:.6g} / resistance "
                f"{a.resistance:.6g}; {a.action} {a.confidence:.0f}%, trail {a.trail_distance:.2f}%")

    # -- batch (modes off and cache) ---------------------------------------------------------------

    def analyze_batch(self, features: Features) -> SignalArrays:
        """One cache lookup per bar with the keys streaming uses. Mode `live` has no batch path
        (NotAvailable: the run streams). A cached answer failing its checks is an E004 → HOLD at 0."""
        n = len(features)
        action = np.full(n, HOLD, dtype=np.int8)
        conf = np.zeros(n)
        trail = np.full(n, self.context.base_trail)
        words = [""] * n
        ai = self.ai
        if ai is not None and ai.mode == "live" and not self._off:
            raise NotAvailable("the ai_pattern agent asks Claude bar by bar in mode live",
                               hint="the run streams; use --ai cache for a batch run on cached answers")
        if self._off or ai is None:
            self._last = [self._off] * n
            return SignalArrays(action, conf, trail)
        c = self.context
        w = self.window
        cols_all = {"ts": features.ts, "open": features.open, "high": features.high, "low": features.low,
                    "close": features.close, "volume": features.volume}
        for i in range(w - 1, n):
            cols = {k: v[i - w + 1:i + 1] for k, v in cols_all.items()}
            key = window_key(ai.model, c.symbol, c.timeframe, cols)
            try:
                hit = ai.cached(KIND, PROMPT_VERSION, key, PatternAnswer, where=f"agent {self.id}")
                if hit is not None:
                    check_levels(hit, float(cols["low"].min()), float(cols["high"].max()), where=f"agent {self.id}")
            except InvalidResponse as exc:
                ai.invalid += 1
                words[i] = f"cached answer rejected: {exc.message}"
                continue
            if hit is None:
                words[i] = "not cached"
                continue
            code, cf, tr = self._vote(hit)
            action[i], conf[i], trail[i] = code, cf, tr
            words[i] = f"{self._words(hit)} (Claude, cache)"
        self._last = words
        return SignalArrays(action, conf, trail)

    def explain(self, features: Features, i: int) -> tuple[str, Urgency]:
        if self._last is None or len(self._last) != len(features):
            self.analyze_batch(features)
        assert self._last is not None
        status = f" · {self.ai.status_line()}" if self.ai is not None else ""
        return f"{self._last[i] or 'warming up: not enough history yet'}{status}", Urgency.NORMAL

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.ai is not None:
            state["ai"] = {"calls": self.ai.calls, "cache_hits": self.ai.cache_hits, "invalid": self.ai.invalid}
        return state
