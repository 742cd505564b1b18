"""Meta-resolution: what the orchestrator does when the panel strongly disagrees.

When both sides have conviction (the weaker directional score is at least `disagreement_threshold`
of the stronger), the consensus is handed to a `MetaResolver`. The built-in `RuleBasedResolver`:

1. volatile regime → HOLD (a split panel in a volatile market is a reason to wait);
2. the regime agent votes a direction → that side wins, confidence = its share × (1 - disagreement / 2);
3. the sides are within `min_margin` of each other → HOLD;
4. otherwise the leader stands, confidence × (1 - disagreement / 2).

The minimum-confidence gate applies after the resolver. Another resolver (an AI one, later) only
has to implement `resolve(context)`, sync or async; the orchestrator awaits it under the agent
timeout and falls back to the rule-based answer if it fails. Backtests in batch mode also need
`resolve_batch`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol, runtime_checkable

import msgspec
import numpy as np
import numpy.typing as npt

from trdr_tui.agents.protocol import BUY, HOLD, SELL
from trdr_tui.core.types import Action, AgentSignal


class ConflictContext(msgspec.Struct, frozen=True, kw_only=True):
    ts: int
    signals: tuple[AgentSignal, ...]
    weights: dict[str, float]
    buy_score: float
    sell_score: float
    hold_score: float
    disagreement: float
    leader: Action
    confidence: float
    regime: str | None = None  # "trending" | "ranging" | "volatile" | "calm" | None
    regime_action: Action | None = None


class Resolution(msgspec.Struct, frozen=True, kw_only=True):
    action: Action
    confidence: float
    reasoning: str


class ConflictArrays(msgspec.Struct, frozen=True, kw_only=True):
    """The same facts as ConflictContext for every bar (batch mode)."""

    buy_score: npt.NDArray[np.float64]
    sell_score: npt.NDArray[np.float64]
    hold_score: npt.NDArray[np.float64]
    disagreement: npt.NDArray[np.float64]
    leader: npt.NDArray[np.int8]
    confidence: npt.NDArray[np.float64]
    volatile: npt.NDArray[np.bool_]
    regime_action: npt.NDArray[np.int8]  # HOLD where the regime agent is absent or neutral


@runtime_checkable
class MetaResolver(Protocol):
    name: str

    def resolve(self, context: ConflictContext) -> Resolution | Awaitable[Resolution]: ...


class RuleBasedResolver:
    name = "rules"

    def __init__(self, min_margin: float = 0.25) -> None:
        self.min_margin = min_margin

    def resolve(self, context: ConflictContext) -> Resolution:
        c = context
        b, s, h = c.buy_score, c.sell_score, c.hold_score
        total = b + s + h
        damp = 1.0 - c.disagreement / 2.0
        if c.regime == "volatile":
            return Resolution(action=Action.HOLD, confidence=h / total,
                              reasoning="meta: split panel in a volatile regime → HOLD")
        if c.regime_action in (Action.TRAIL_BUY, Action.TRAIL_SELL):
            side = b if c.regime_action == Action.TRAIL_BUY else s
            return Resolution(action=c.regime_action, confidence=side / total * damp,
                              reasoning=f"meta: split panel, siding with the {c.regime or 'regime'} direction")
        margin = abs(b - s) / (b + s)
        if margin < self.min_margin:
            return Resolution(action=Action.HOLD, confidence=h / total,
                              reasoning=f"meta: sides within {margin * 100:.0f}% of each other → HOLD")
        return Resolution(action=c.leader, confidence=c.confidence * damp,
                          reasoning=f"meta: leader kept, confidence damped by disagreement {c.disagreement:.2f}")

    def resolve_batch(self, a: ConflictArrays) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float64]]:
        total = a.buy_score + a.sell_score + a.hold_score
        damp = 1.0 - a.disagreement / 2.0
        with np.errstate(divide="ignore", invalid="ignore"):
            hold_conf = a.hold_score / total
            regime_dir = (a.regime_action == BUY) | (a.regime_action == SELL)
            side = np.where(a.regime_action == BUY, a.buy_score, a.sell_score)
            margin = np.abs(a.buy_score - a.sell_score) / (a.buy_score + a.sell_score)
            side_conf = side / total * damp
        action = np.where(a.volatile, HOLD,
                          np.where(regime_dir, a.regime_action,
                                   np.where(margin < self.min_margin, HOLD, a.leader))).astype(np.int8)
        conf = np.where(a.volatile, hold_conf,
                        np.where(regime_dir, side_conf,
                                 np.where(margin < self.min_margin, hold_conf, a.confidence * damp)))
        return action, conf
