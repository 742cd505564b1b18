"""The grid: self-tuned spacing, levels around the entry, trailing orders on the levels near the price.

Spacing (PRD §3.3.2, §3.5): swing highs and lows are bars whose high (low) is the extreme of the
`swing_lookback` bars on each side; the swings are the moves between consecutive alternating pivots,
as fractions; spacing = `swing_fraction` (30 %) × their average, clamped to [`min_spacing`,
`max_spacing`] (0.5 %–5 %). With too little history, or `auto_spacing = false`, `spacing` is used.

Life of the grid (the `grid` policy, driven by the agents' decisions):

1. Initial entry (PRD §12.4): once the close is `initial_entry_drop` (2 %) below the session's first
   close, or the consensus says TRAIL_BUY with confidence above `initial_entry_confidence` (70 %), a
   trailing BUY is armed. Its fill price becomes the grid's center.
2. Levels: `levels` prices `center × (1 + k × spacing)`, k = −levels/2 … levels/2. Levels at or below the
   center are BUY levels, above it are SELL targets. The entry lot sits on the center level.
3. Each bar, a BUY level within `activation_distance` (5 %) of the close is `armed`; when the close
   reaches it, a trailing BUY is armed there (`trailing`), unless the consensus is a confident
   TRAIL_SELL. Its fill puts a lot on that level (`filled`).
4. A filled level's target is one spacing above it: when the close reaches the target a trailing SELL
   of the lot is armed; a confident TRAIL_SELL arms trailing SELLs for every lot in profit. When the
   lot is sold the level is `idle` again.
5. With no lots and no open orders, a close outside the grid re-centers it on the close.

A level's state only moves along `LEVEL_TRANSITIONS` (like the order state machine in `core/fsm.py`):

    idle     --near-->               armed      armed    --away-->               idle
    armed    --buy_placed-->         trailing   trailing --buy_ended_flat-->     idle
    trailing --buy_ended_holding-->  filled     any      --bought-->             filled
    filled   --sold_out | stopped_out | dust_cleared-->  idle

Anything else raises `InvalidLevelTransition`.

Sizes come from `trading.sizing.Sizer` (5 % × confidence, Kelly and risk caps, product increments);
every order goes through the risk manager. Trail distances come from the decision (else
`trailing.distance`). The grid's state is part of every checkpoint and is published as `GridSnapshot`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from trdr_tui.config import Settings
from trdr_tui.core.errors import RiskLimitExceeded, StateCorruption
from trdr_tui.core.events import GridLevel, GridSnapshot
from trdr_tui.core.fsm import OPEN
from trdr_tui.core.types import Action, Decision, Fill, Order, OrderStatus, OrderTransition, Side, Trade
from trdr_tui.trading.policy import PolicyContext
from trdr_tui.trading.sizing import ProductSpec, Sizer

F64 = npt.NDArray[np.float64]
SWING_HISTORY_BARS = 720  # 30 days of hourly bars (PRD §3.3.2)


class LevelState(StrEnum):
    """Where a grid level is in its life (the value is what snapshots and checkpoints carry)."""

    IDLE = "idle"  # nothing on it
    ARMED = "armed"  # a BUY level within `activation_distance` of the close
    TRAILING = "trailing"  # its trailing BUY is working
    FILLED = "filled"  # it holds a lot (its SELL may be working)


class LevelTrigger(StrEnum):
    """What happened to a level."""

    NEAR = "near"  # the close came within `activation_distance`
    AWAY = "away"  # the close moved out of it again
    BUY_PLACED = "buy_placed"  # the close reached the level: a trailing BUY was armed
    BUY_ENDED_FLAT = "buy_ended_flat"  # the level's BUY ended (filled, cancelled, …) and it holds nothing
    BUY_ENDED_HOLDING = "buy_ended_holding"  # … and it holds a lot
    BOUGHT = "bought"  # a BUY fill put (more) lot on the level
    SOLD_OUT = "sold_out"  # the level's SELL ended with no lot left
    STOPPED_OUT = "stopped_out"  # a stop-loss sold the level's whole lot
    DUST_CLEARED = "dust_cleared"  # the remaining lot is below the product's minimum order: dropped


L = LevelState
T = LevelTrigger

LEVEL_TRANSITIONS: dict[tuple[LevelState, LevelTrigger], LevelState] = {
    (L.IDLE, T.NEAR): L.ARMED,
    (L.ARMED, T.AWAY): L.IDLE,
    (L.ARMED, T.BUY_PLACED): L.TRAILING,
    (L.TRAILING, T.BUY_ENDED_FLAT): L.IDLE,
    (L.TRAILING, T.BUY_ENDED_HOLDING): L.FILLED,
    (L.IDLE, T.BOUGHT): L.FILLED,
    (L.ARMED, T.BOUGHT): L.FILLED,
    (L.TRAILING, T.BOUGHT): L.FILLED,
    (L.FILLED, T.BOUGHT): L.FILLED,
    (L.FILLED, T.SOLD_OUT): L.IDLE,
    (L.FILLED, T.STOPPED_OUT): L.IDLE,
    (L.FILLED, T.DUST_CLEARED): L.IDLE,
}
"""(current state, trigger) → next state; a fill can land on a level in any state (e.g. the entry's)."""


class InvalidLevelTransition(StateCorruption):
    """A trigger the table does not allow in the level's state. The level is left unchanged."""

    def __init__(self, state: LevelState, trigger: LevelTrigger, level: int | None = None) -> None:
        self.state = state
        self.trigger = trigger
        super().__init__(f"grid level {state.value} --{trigger.value}-->",
                         where="" if level is None else f"grid level {level}",
                         hint="a level's state only moves along LEVEL_TRANSITIONS in trdr_tui/trading/grid.py")


def next_level_state(state: LevelState, trigger: LevelTrigger, level: int | None = None) -> LevelState:
    """The table lookup; raises InvalidLevelTransition for anything not in it."""
    try:
        return LEVEL_TRANSITIONS[(state, trigger)]
    except KeyError:
        raise InvalidLevelTransition(state, trigger, level) from None


def swing_pivots(high: F64, low: F64, lookback: int) -> list[float]:
    """Alternating swing-high / swing-low prices, in time order.

    Bar i is a swing high when its high is the highest of bars i−lookback … i+lookback (a swing low
    likewise with lows); two of the same kind in a row keep the more extreme one.
    """
    w = 2 * lookback + 1
    if len(high) < w:
        return []
    hi_max = np.lib.stride_tricks.sliding_window_view(high, w).max(axis=1)
    lo_min = np.lib.stride_tricks.sliding_window_view(low, w).min(axis=1)
    mid = slice(lookback, len(high) - lookback)
    is_high = high[mid] >= hi_max
    is_low = (low[mid] <= lo_min) & ~is_high
    pivots: list[tuple[float, int]] = []  # (price, +1 high / −1 low)
    for j in np.flatnonzero(is_high | is_low).tolist():
        kind = 1 if is_high[j] else -1
        price = float(high[j + lookback] if kind == 1 else low[j + lookback])
        if pivots and pivots[-1][1] == kind:
            if (kind == 1 and price > pivots[-1][0]) or (kind == -1 and price < pivots[-1][0]):
                pivots[-1] = (price, kind)
            continue
        pivots.append((price, kind))
    return [p for p, _ in pivots]


def swing_spacing(high: F64, low: F64, *, lookback: int, fraction: float, min_spacing: float,
                  max_spacing: float, default: float) -> float:
    pivots = swing_pivots(high, low, lookback)
    if len(pivots) < 3:
        return min(max(default, min_spacing), max_spacing)
    p = np.asarray(pivots)
    swings = np.abs(np.diff(p)) / p[:-1]
    return float(min(max(fraction * float(swings.mean()), min_spacing), max_spacing))


def grid_prices(center: float, spacing: float, count: int) -> list[float]:
    half = count // 2
    return [center * (1.0 + k * spacing) for k in range(-half, half + 1)]


class Level:
    __slots__ = ("entry", "exit_order", "index", "lot", "order", "pnl", "price", "since_ns", "state")

    def __init__(self, index: int, price: float) -> None:
        self.index = index
        self.price = price
        self.state = LevelState.IDLE
        self.order: Order | None = None  # the BUY working on this level
        self.exit_order: Order | None = None  # the SELL of this level's lot
        self.lot = 0.0
        self.entry = 0.0
        self.pnl = 0.0
        self.since_ns = 0


class GridPolicy:
    name = "grid"
    idle_only = False

    def __init__(self, settings: Settings, *, product: ProductSpec | None = None) -> None:
        self.cfg = settings.grid
        self.min_confidence = settings.agents.min_confidence
        self.default_trail = settings.trailing.distance
        sz = settings.sizing
        self.sizer = Sizer(product or ProductSpec(symbol=settings.symbol), base_fraction=sz.base_fraction,
                           kelly_safety=sz.kelly_safety, kelly_lookback_days=sz.kelly_lookback_days,
                           kelly_min_trades=sz.kelly_min_trades)
        self.session_start: float | None = None
        self.center: float | None = None
        self.spacing = self.cfg.spacing
        self.levels: list[Level] = []
        self.entry_order: Order | None = None
        self._changed = False
        self.skipped_below_min = 0

    def bind(self, ctx: PolicyContext) -> None:
        self.ctx = ctx
        self.orders = ctx.orders
        self.portfolio = ctx.portfolio
        self.orders.fill_listeners.append(self._on_fill)
        self.orders.fsm.listeners.append(self._on_transition)

    # -- per bar ---------------------------------------------------------------------------------

    def on_bar(self, ts: int, close: float, decision: Decision | None) -> None:
        if self.session_start is None:
            self.session_start = close
        bearish = decision is not None and decision.action is Action.TRAIL_SELL \
            and decision.confidence >= self.min_confidence
        trail = decision.trail_distance if decision is not None and decision.trail_distance > 0 else self.default_trail
        if self.center is None:
            self._maybe_enter(ts, close, decision, trail)
        else:
            self._work_levels(ts, close, decision, trail, bearish)
        if self._changed:
            self._changed = False
            self.ctx.publish_grid(self.snapshot(ts, close))

    def _maybe_enter(self, ts: int, close: float, decision: Decision | None, trail: float) -> None:
        if self.entry_order is not None:
            return
        confident_buy = decision is not None and decision.action is Action.TRAIL_BUY \
            and decision.confidence > self.cfg.initial_entry_confidence
        dropped = close <= self.session_start * (1.0 - self.cfg.initial_entry_drop)  # type: ignore[operator]
        if not (confident_buy or dropped):
            return
        confidence = decision.confidence if confident_buy and decision is not None else self.min_confidence
        order = self._buy(close, confidence, trail, "entry", -1)
        if order is not None:
            self.entry_order = order

    def _work_levels(self, ts: int, close: float, decision: Decision | None, trail: float, bearish: bool) -> None:
        act = self.cfg.activation_distance
        center = self.center
        assert center is not None
        confidence = decision.confidence if decision is not None and decision.action is Action.TRAIL_BUY \
            else self.min_confidence
        for lv in self.levels:
            if lv.state is L.FILLED and lv.exit_order is None and lv.order is None \
                    and not self._sellable(lv.lot, close):
                self._clear(lv, ts)  # dust below the minimum order size: nothing left to sell
            if lv.state is L.FILLED:
                if lv.exit_order is None and (close >= lv.price * (1.0 + self.spacing) or
                                              (bearish and close > lv.entry * 1.012)):
                    self._sell(lv, close, trail)
                continue
            if lv.price > center * (1.0 + 1e-12) or lv.state is L.TRAILING:
                continue
            near = abs(lv.price - close) / close <= act
            if lv.state is L.IDLE and near:
                self._move(lv, T.NEAR, ts)
            elif lv.state is L.ARMED and not near:
                self._move(lv, T.AWAY, ts)
            if lv.state is L.ARMED and close <= lv.price and not bearish:
                order = self._buy(close, confidence, trail, "level", lv.index)
                if order is not None:
                    lv.order = order
                    self._move(lv, T.BUY_PLACED, ts)
        if not self.orders.open and not self._sellable(self.portfolio.position, close) and self.levels and \
                not (self.levels[0].price <= close <= self.levels[-1].price):
            self.build(close, ts)

    def _buy(self, close: float, confidence: float, trail: float, leg: str, level: int) -> Order | None:
        pf = self.portfolio
        available = max(pf.cash - self.orders.committed_cash(close), 0.0)
        size = self.sizer.buy_size(available=available, price=close, confidence=confidence, trades=pf.trades,
                                   now_ns=self.ctx.clock.now_ns(), risk_limit=self.ctx.risk.position_limit(close))
        if size is None:
            self.skipped_below_min += 1
            return None
        try:
            return self.orders.place_trailing(Side.BUY, size=float(size), trail=trail, price=close,
                                              reason=f"grid {leg}", metadata={"grid_leg": leg, "grid_level": level})
        except RiskLimitExceeded:
            return None

    def _sell(self, lv: Level, close: float, trail: float) -> None:
        free = self.portfolio.position - self.orders.committed_base()
        size = self.sizer.product.round_size(min(lv.lot, free))
        if size is None:
            return
        try:
            lv.exit_order = self.orders.place_trailing(Side.SELL, size=float(size), trail=trail, price=close,
                                                       reason="grid exit",
                                                       metadata={"grid_leg": "exit", "grid_level": lv.index})
        except RiskLimitExceeded:
            return
        self._changed = True

    # -- building --------------------------------------------------------------------------------

    def build(self, center: float, ts: int) -> None:
        """(Re)build the levels around `center`, spacing from the recent swings."""
        cfg = self.cfg
        if cfg.auto_spacing:
            bars = self.ctx.recent_bars(SWING_HISTORY_BARS)
            self.spacing = swing_spacing(bars.high, bars.low, lookback=cfg.swing_lookback,
                                         fraction=cfg.swing_fraction, min_spacing=cfg.min_spacing,
                                         max_spacing=cfg.max_spacing, default=cfg.spacing)
        self.center = center
        self.levels = [Level(k, p) for k, p in enumerate(grid_prices(center, self.spacing, cfg.levels))]
        for lv in self.levels:
            lv.since_ns = ts
        self._changed = True

    # -- order outcomes --------------------------------------------------------------------------

    def _level_of(self, order: Order) -> Level | None:
        k = order.metadata.get("grid_level")
        if isinstance(k, int) and 0 <= k < len(self.levels):
            return self.levels[k]
        return None

    def _on_fill(self, order: Order, fill: Fill, trade: Trade | None) -> None:
        leg = order.metadata.get("grid_leg")
        if leg is None:
            if order.side is Side.SELL:  # a stop-loss sold lots the grid holds: oldest first
                self._release(fill.size)
            return
        self._changed = True
        if leg == "entry":
            if self.center is None:
                self.build(fill.price, fill.ts)
            self._add_lot(min(self.levels, key=lambda x: abs(x.price - self.center)), fill)  # type: ignore[operator]
            return
        lv = self._level_of(order)
        if lv is None:
            return
        if leg == "level":
            self._add_lot(lv, fill)
        elif leg == "exit":
            lv.lot = max(lv.lot - fill.size, 0.0)
            if trade is not None:
                lv.pnl += trade.pnl

    def _release(self, size: float) -> None:
        for lv in sorted((x for x in self.levels if x.lot > 0), key=lambda x: x.since_ns):
            take = min(lv.lot, size)
            lv.lot -= take
            size -= take
            if lv.lot <= 1e-12 and lv.exit_order is None:
                lv.lot = lv.entry = 0.0
                lv.state = next_level_state(lv.state, T.STOPPED_OUT, lv.index)
            if size <= 0:
                break
        self._changed = True

    def _add_lot(self, lv: Level, fill: Fill) -> None:
        lv.entry = (lv.entry * lv.lot + fill.price * fill.size) / (lv.lot + fill.size)
        lv.lot += fill.size
        lv.state = next_level_state(lv.state, T.BOUGHT, lv.index)
        lv.since_ns = fill.ts

    def _on_transition(self, order: Order, t: OrderTransition) -> None:
        leg = order.metadata.get("grid_leg")
        if leg is None or t.to_status in OPEN:
            return
        self._changed = True
        if leg == "entry":
            if t.to_status is not OrderStatus.FILLED:
                self.entry_order = None if self.center is None else self.entry_order
            return
        lv = self._level_of(order)
        if lv is None:
            return
        if leg == "level" and lv.order is order:
            lv.order = None
            if lv.state is L.TRAILING:
                lv.state = next_level_state(lv.state, T.BUY_ENDED_HOLDING if lv.lot > 0 else T.BUY_ENDED_FLAT,
                                            lv.index)
            lv.since_ns = t.ts
        elif leg == "exit" and lv.exit_order is order:
            lv.exit_order = None
            if lv.lot <= 1e-12:
                lv.lot = 0.0
                lv.entry = 0.0
                lv.state = next_level_state(lv.state, T.SOLD_OUT, lv.index)
                lv.since_ns = t.ts

    def _sellable(self, size: float, price: float) -> bool:
        """At least the product's minimum order size and value: a smaller remainder (dust left by
        partial fills and increment rounding) can never be sold and must not keep the grid from moving."""
        product = self.sizer.product
        rounded = product.round_size(size)
        return rounded is not None and product.meets_minimums(rounded, price)

    def _clear(self, lv: Level, ts: int) -> None:
        lv.lot = lv.entry = 0.0
        self._move(lv, T.DUST_CLEARED, ts)

    def _move(self, lv: Level, trigger: LevelTrigger, ts: int) -> None:
        lv.state = next_level_state(lv.state, trigger, lv.index)
        lv.since_ns = ts
        self._changed = True

    # -- views and checkpoints -------------------------------------------------------------------

    def snapshot(self, ts: int, price: float) -> GridSnapshot:
        center = 0.0 if self.center is None else self.center
        levels = []
        for lv in self.levels:
            side = Side.BUY if lv.price <= center * (1.0 + 1e-12) else Side.SELL
            working = lv.exit_order or lv.order
            trigger = None
            if working is not None:
                st = self.orders.trailing_state(working)
                trigger = st.trigger if st is not None else None
            unreal = (price - lv.entry) * lv.lot if lv.lot else 0.0
            levels.append(GridLevel(price=lv.price, side=side, state=lv.state.value, trigger=trigger, pnl=lv.pnl + unreal,
                                    time_at_level_ns=max(ts - lv.since_ns, 0)))
        return GridSnapshot(ts=ts, symbol=self.portfolio.symbol, center=center, spacing=self.spacing,
                            levels=tuple(levels))

    def state(self) -> dict[str, object]:
        return {"grid": {
            "session_start": self.session_start, "center": self.center, "spacing": self.spacing,
            "entry_order": self.entry_order.id if self.entry_order is not None else None,
            "levels": [{"price": lv.price, "state": lv.state.value, "lot": lv.lot, "entry": lv.entry, "pnl": lv.pnl,
                        "since_ns": lv.since_ns, "order": lv.order.id if lv.order else None,
                        "exit_order": lv.exit_order.id if lv.exit_order else None} for lv in self.levels],
        }}

    def restore(self, state: dict[str, object]) -> None:
        g: Any = state.get("grid")
        if not g:
            return
        orders = self.orders.orders
        self.session_start = g["session_start"]
        self.center = g["center"]
        self.spacing = float(g["spacing"])
        self.entry_order = orders.get(g["entry_order"]) if g.get("entry_order") else None
        self.levels = []
        for k, d in enumerate(g["levels"]):
            lv = Level(k, float(d["price"]))
            lv.state = LevelState(d["state"])
            lv.lot, lv.entry, lv.pnl, lv.since_ns = d["lot"], d["entry"], d["pnl"], d["since_ns"]
            lv.order = orders.get(d["order"]) if d.get("order") else None
            lv.exit_order = orders.get(d["exit_order"]) if d.get("exit_order") else None
            self.levels.append(lv)
