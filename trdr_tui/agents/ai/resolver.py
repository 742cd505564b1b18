"""AIMetaResolver: Claude resolves a split panel (PRD §3.2.3 `aiMetaOrchestrator.resolve`).

Called by the orchestrator only when the weaker directional side has at least
`agents.disagreement_threshold` of the stronger one's conviction. Claude gets every agent's vote
(action, confidence, weight, reasoning), the side scores and a market summary (the last close, its
24- and 100-bar change, the 24-bar range, the regime) and answers through a forced tool call
(`answers.MetaAnswer`). Same service as the pattern agent: the same cache (key: model, prompt
version, sha256 of the prompt), budget and validation.

Priority: a call is critical (it may exceed the daily budget) when the panel is split almost evenly
(disagreement ≥ `CRITICAL_DISAGREEMENT`): there the rules have the least to go on. Other calls are
normal. Whenever Claude gives no valid answer — not cached, budget refused, unavailable, E004 — the
rule-based resolver (`agents.meta.RuleBasedResolver`) decides and the reasoning says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from trdr_tui.agents.ai.answers import META_TOOL, MetaAnswer, tool
from trdr_tui.agents.ai.service import AIUnavailable, ClaudeService, Priority, input_key
from trdr_tui.agents.meta import ConflictContext, Resolution, RuleBasedResolver
from trdr_tui.core.errors import InvalidResponse
from trdr_tui.core.types import Action, Candle

PROMPT_VERSION = "meta-1"
KIND = "meta"
CRITICAL_DISAGREEMENT = 0.9
SYSTEM = ("You arbitrate a split panel of trading agents for a swing-trading grid bot that arms trailing "
          "orders. Weigh the votes and the market summary; answer through the resolve_split_panel tool only.")
TOOL = tool(META_TOOL, "Resolve the split panel: TRAIL_BUY, TRAIL_SELL or HOLD, a confidence 0-100 and why.",
            MetaAnswer)


class CandleHistory(Protocol):
    """Anything holding the latest candles, oldest first (the orchestrator's `MarketState`)."""

    @property
    def candles(self) -> Sequence[Candle]: ...


def market_summary(candles: list[Candle]) -> str:
    """One paragraph about the recent market from the latest candles (oldest first)."""
    if not candles:
        return "no candles yet"
    last = candles[-1].close
    parts = [f"last close {last:.6g}"]
    for n in (24, 100):
        if len(candles) > n:
            ref = candles[-1 - n].close
            parts.append(f"{n}-bar change {(last / ref - 1) * 100:+.2f}%")
    recent = candles[-24:]
    parts.append(f"24-bar range {min(c.low for c in recent):.6g}–{max(c.high for c in recent):.6g}")
    return ", ".join(parts)


def prompt_text(ctx: ConflictContext, symbol: str, summary: str) -> str:
    votes = "\n".join(f"- {s.agent_id}: {s.action.value} at {s.confidence * 100:.0f}% (weight "
                      f"{ctx.weights.get(s.agent_id, 1.0):.2f}): {s.reasoning}" for s in ctx.signals)
    return (f"The agent panel trading {symbol} is split (disagreement {ctx.disagreement:.2f}).\n\n"
            f"Votes:\n{votes}\n\n"
            f"Weighted scores: buy {ctx.buy_score:.3f}, sell {ctx.sell_score:.3f}, hold {ctx.hold_score:.3f}; "
            f"leader {ctx.leader.value} at {ctx.confidence * 100:.0f}%; regime {ctx.regime or 'unknown'}.\n"
            f"Market: {summary}.\n\n"
            "Decide TRAIL_BUY, TRAIL_SELL or HOLD for this bar, with a confidence 0-100 and a short reason.")


class AIMetaResolver:
    """A `MetaResolver` backed by Claude with the rule-based one as fallback (streaming only)."""

    name = "claude"

    def __init__(self, ai: ClaudeService, *, symbol: str, fallback: RuleBasedResolver | None = None) -> None:
        self.ai = ai
        self.symbol = symbol
        self.fallback = fallback or RuleBasedResolver()
        self.market: CandleHistory | None = None
        self.timeout_s = ai.cfg.timeout_seconds + 1.0  # the orchestrator's wait; the SDK's timeout fires first

    def attach(self, market: CandleHistory) -> None:
        """Read the market summary from `market.candles` (the orchestrator's ring)."""
        self.market = market

    async def resolve(self, context: ConflictContext) -> Resolution:
        candles = list(self.market.candles) if self.market is not None else []
        text = prompt_text(context, self.symbol, market_summary(candles))
        key = input_key(KIND, self.ai.model, PROMPT_VERSION, text)
        priority: Priority = "critical" if context.disagreement >= CRITICAL_DISAGREEMENT else "normal"
        async def content() -> list[dict[str, Any]]:
            return [{"type": "text", "text": text}]

        try:
            answer, source = await self.ai.ask(
                kind=KIND, version=PROMPT_VERSION, key=key, answer=MetaAnswer, tool=TOOL, system=SYSTEM,
                content=content, priority=priority, where="meta-resolver")
        except (AIUnavailable, InvalidResponse) as exc:
            rules = self.fallback.resolve(context)
            why = "invalid answer (E004)" if isinstance(exc, InvalidResponse) else exc.message
            return Resolution(action=rules.action, confidence=rules.confidence,
                              reasoning=f"{rules.reasoning} (Claude: {why})")
        return Resolution(action=Action(answer.action), confidence=answer.confidence / 100.0,
                          reasoning=f"meta (Claude, {source}): {answer.reasoning}")
