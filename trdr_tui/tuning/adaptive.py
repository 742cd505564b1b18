"""Adaptive values (PRD §3.5 `AdaptiveParameters` / `AdaptiveValue`): parameters that learn from outcomes.

Each closed round trip of a real paper or live session is an outcome. Every adaptive value judges it
by its own rule (`RULES`) as good or bad, keeps the last `tuning.adaptive_window` judgements, and,
once `tuning.adaptive_min_outcomes` outcomes were judged since its last move (so one step per that
many round trips, not one per trip), moves by the PRD's rule with the learning rate `lr`
(`tuning.learning_rate`, PRD 0.1):

    success rate < 0.4  →  value × (1 + lr × corrective direction)
    success rate > 0.6  →  value × (1 + lr / 2 × exploiting direction)

clamped to the value's bounds (the optimizer's range for the key, `tuning/genome.py`). Confidence
starts at 0.5 and grows by 0.05 per outcome up to 0.9 (PRD). Every move is kept with its reason.

| key (PRD name)                          | good outcome                              | bad rate → | good rate → |
|-----------------------------------------|-------------------------------------------|------------|-------------|
| grid.swing_fraction (gridSpacing)       | gross profit > 0 and fees ≤ 50 % of it    | wider      | tighter     |
| trailing.distance (trailDistance)       | the exit kept its gross gain (gross ≥ 0) and slipped ≤ 0.2 % | tighter | wider |
| risk.max_position (positionSize)        | net P&L > 0                               | smaller    | larger      |
| agents.min_confidence (confidenceThreshold) | net P&L > 0                           | higher     | lower       |

Only real paper/live sessions attach them (`tuning/daily.py`, `attach_self_tuning`): backtests and
replays neither read nor write the stored values.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import msgspec

from trdr_tui.core.types import Fill, Order, Trade
from trdr_tui.store.tuning import AdaptiveRecord, Adjustment
from trdr_tui.tuning.genome import GENES

CONFIDENCE_START = 0.5
CONFIDENCE_STEP = 0.05
CONFIDENCE_MAX = 0.9
POOR_RATE = 0.4
GOOD_RATE = 0.6
FEE_SHARE_LIMIT = 0.5
SLIPPAGE_LIMIT = 0.002
HISTORY = 50  # adjustments kept per value


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """A closed round trip as the adaptive values see it. Money in the quote currency."""

    ts: int
    net_pnl: float
    fees: float
    slippage: float | None = None  # |exit price − trigger| / trigger, when the exit had a trigger

    @property
    def gross(self) -> float:
        return self.net_pnl + self.fees

    @classmethod
    def of(cls, trade: Trade, order: Order, fill: Fill) -> Outcome:
        trigger = order.metadata.get("trigger")
        slip = abs(fill.price - float(trigger)) / float(trigger) \
            if isinstance(trigger, int | float) and not isinstance(trigger, bool) and trigger > 0 else None
        return cls(ts=trade.exit_ts, net_pnl=trade.pnl, fees=trade.fees, slippage=slip)


@dataclass(frozen=True)
class Rule:
    good: Callable[[Outcome], bool]
    on_poor: float  # direction of the corrective move (+1 up, −1 down)
    on_good: float
    what: str  # how the rule judges, for reasons


def _fees_paid_for(o: Outcome) -> bool:
    return o.gross > 0.0 and o.fees <= FEE_SHARE_LIMIT * o.gross


def _trail_kept(o: Outcome) -> bool:
    return o.gross >= 0.0 and (o.slippage is None or o.slippage <= SLIPPAGE_LIMIT)


def _won(o: Outcome) -> bool:
    return o.net_pnl > 0.0


RULES: dict[str, Rule] = {
    "grid.swing_fraction": Rule(_fees_paid_for, +1.0, -1.0, "round trips whose fees stayed ≤ 50 % of gross profit"),
    "trailing.distance": Rule(_trail_kept, -1.0, +1.0, "exits that kept their gross gain with ≤ 0.2 % slippage"),
    "risk.max_position": Rule(_won, -1.0, +1.0, "round trips with a net profit"),
    "agents.min_confidence": Rule(_won, +1.0, -1.0, "round trips with a net profit"),
}
BOUNDS: dict[str, tuple[float, float]] = {g.key: (g.low, g.high) for g in GENES if g.key in RULES}


class AdaptiveValue:
    """One parameter's value in force, its bounds, confidence, recent outcomes and adjustments."""

    def __init__(self, name: str, value: float, *, low: float, high: float, window: int = 100,
                 confidence: float = CONFIDENCE_START, outcomes: Iterable[bool] = (),
                 history: Iterable[Adjustment] = ()) -> None:
        if name not in RULES:
            raise ValueError(f"no adaptive rule for {name!r}; known: {', '.join(RULES)}")
        if not low < high:
            raise ValueError(f"bounds of {name}: low {low} must be below high {high}")
        self.name = name
        self.low = low
        self.high = high
        self.value = min(max(float(value), low), high)
        self.confidence = confidence
        self.outcomes: deque[bool] = deque(outcomes, maxlen=window)
        self.history: deque[Adjustment] = deque(history, maxlen=HISTORY)
        self.since_move = len(self.outcomes)  # outcomes judged since the last move

    @property
    def success_rate(self) -> float | None:
        return sum(self.outcomes) / len(self.outcomes) if self.outcomes else None

    def learn(self, outcome: Outcome, *, rate: float, min_outcomes: int) -> Adjustment | None:
        """Judge `outcome`, then move the value when the success rate says so; returns the move, if any."""
        rule = RULES[self.name]
        self.outcomes.append(rule.good(outcome))
        self.since_move += 1
        self.confidence = min(CONFIDENCE_MAX, self.confidence + CONFIDENCE_STEP)
        sr = self.success_rate
        if sr is None or self.since_move < min_outcomes:
            return None
        if sr < POOR_RATE:
            factor, verdict = 1.0 + rate * rule.on_poor, "poor"
        elif sr > GOOD_RATE:
            factor, verdict = 1.0 + rate / 2.0 * rule.on_good, "good"
        else:
            return None
        new = min(max(self.value * factor, self.low), self.high)
        if math.isclose(new, self.value, rel_tol=0.0, abs_tol=1e-12):
            return None
        reason = (f"{verdict}: {sr:.0%} of the last {len(self.outcomes)} were {rule.what}; "
                  f"×{factor:.3f} within [{self.low:g}, {self.high:g}]")
        return self._move(outcome.ts, new, reason)

    def set(self, ts: int, value: float, reason: str) -> Adjustment | None:
        """Move to `value` (clamped) from outside, e.g. a version the daily loop adopted."""
        new = min(max(float(value), self.low), self.high)
        return None if new == self.value else self._move(ts, new, reason)

    def _move(self, ts: int, new: float, reason: str) -> Adjustment:
        adj = Adjustment(ts=ts, old=self.value, new=new, reason=reason)
        self.value = new
        self.since_move = 0
        self.history.append(adj)
        return adj

    def record(self, symbol: str, ts: int) -> AdaptiveRecord:
        return AdaptiveRecord(symbol=symbol, name=self.name, value=self.value, low=self.low, high=self.high,
                              confidence=self.confidence, outcomes=list(self.outcomes), history=list(self.history),
                              updated_at=ts)


class AdaptiveParameters:
    """The adaptive values of one symbol (PRD §3.5): `get`, `feedback`, and their stored form."""

    def __init__(self, symbol: str, values: Iterable[AdaptiveValue], *, rate: float, min_outcomes: int) -> None:
        self.symbol = symbol
        self.values = {v.name: v for v in values}
        self.rate = rate
        self.min_outcomes = min_outcomes

    @classmethod
    def start(cls, symbol: str, current: Mapping[str, float], keys: Iterable[str], *, rate: float, window: int,
              min_outcomes: int, stored: Iterable[AdaptiveRecord] = ()) -> AdaptiveParameters:
        """`keys` starting from `current` (the engine's values), or from `stored` records of `symbol`
        (a resumed session): the stored value, confidence, outcomes and adjustments."""
        saved = {r.name: r for r in stored if r.symbol == symbol}
        out = []
        for k in keys:
            low, high = BOUNDS[k]
            low, high = min(low, current[k]), max(high, current[k])  # a configured value outside stays
            r = saved.get(k)
            if r is None:
                out.append(AdaptiveValue(k, current[k], low=low, high=high, window=window))
            else:
                out.append(AdaptiveValue(k, r.value, low=low, high=high, window=window, confidence=r.confidence,
                                         outcomes=r.outcomes, history=r.history))
        return cls(symbol, out, rate=rate, min_outcomes=min_outcomes)

    def get(self, name: str) -> float:
        return self.values[name].value

    def current(self) -> dict[str, float]:
        return {k: v.value for k, v in self.values.items()}

    def feedback(self, outcome: Outcome) -> dict[str, Adjustment]:
        """Every value learns from `outcome`; returns the moves made."""
        moves = {}
        for name, v in self.values.items():
            adj = v.learn(outcome, rate=self.rate, min_outcomes=self.min_outcomes)
            if adj is not None:
                moves[name] = adj
        return moves

    def rebase(self, ts: int, values: Mapping[str, float], reason: str) -> dict[str, Adjustment]:
        """Take `values` set from outside (an adopted version); the outcomes so far are kept."""
        moves = {}
        for name, value in values.items():
            v = self.values.get(name)
            adj = v.set(ts, value, reason) if v is not None else None
            if adj is not None:
                moves[name] = adj
        return moves

    def records(self, ts: int) -> list[AdaptiveRecord]:
        return [v.record(self.symbol, ts) for v in self.values.values()]
