"""The grid: fee-aware spacing, post-only limits on the levels, a paired take-profit per filled level.

Spacing (PRD §3.3.2, §3.5): swing highs and lows are bars whose high (low) is the extreme of the
`swing_lookback` bars on each side; the swings are the moves between consecutive alternating pivots,
as fractions; spacing = `swing_fraction` × their average, clamped to [floor, `max_spacing`]. With too
little history, or `auto_spacing = false`, `spacing` is used (never below the floor either).

The floor follows from fees (DESIGN invariant 10): no round trip is planned whose target gain is below
its cost. A round trip buys with a post-only limit (maker fee) and sells with a post-only take-profit
(maker) or, with `trailing_exits`, a trailing SELL (taker), so

    cost  = entry fee + exit fee + 2 × half-spread        (fees of the account's tier, `[fees]`)
    floor = max(cost + `fee_margin`, `min_spacing`)

Life of the grid (the `grid` policy):

1. Build: on the first bar the trend gate allows, `levels` prices `center × (1 + k × spacing)`,
   k = −levels/2 … levels/2, around the close. Levels below the center are BUY levels.
2. Entries: a BUY level within `activation_distance` of the close is `armed`; while buying is allowed
   (no confirmed downtrend, no drawdown halt, no confident TRAIL_SELL, a free entry slot), a post-only
   limit BUY rests on it (`trailing` state: its BUY is working). A fill puts a lot on it (`filled`).
3. Exits: a filled level gets its take-profit one spacing above the level at once: a post-only limit
   SELL (maker), or with `trailing_exits` a trailing SELL armed when the close reaches the target, its
   trail capped (`cap_trail`) so that it fires no lower than the level plus the round trip's cost.
4. Trend gate: an EMA of `trend_fast_bars` below the EMA of `trend_slow_bars` by more than
   `trend_band`, with the close below the slow EMA, is a confirmed downtrend: resting BUYs are
   cancelled and no new ones placed; with `regime_exit` the lots are sold (a regime exit).
5. Stop: never inside the grid. A close below the lowest level by the round trip's cost plus
   `stop_buffer` sells every lot at market (taker) and the grid is taken down; it is rebuilt when the
   trend gate allows.
6. Re-centering: holding nothing, a close one spacing above the center (or below the lowest level)
   rebuilds the grid around it; resting BUYs are cancelled first.

Capital per level (PRD §3.3.1, `level_quote`): `sizing.base_fraction` of equity, raised so that one
round trip's net profit (spacing − cost) is at least `min_trip_profit` (quote currency), capped by the
risk manager's position limit and Kelly cap; below the product's minimum there is no order.

A level's state only moves along `LEVEL_TRANSITIONS` (like the order state machine in `core/fsm.py`):

    idle     --near-->               armed      armed    --away-->               idle
    armed    --buy_placed-->         trailing   trailing --buy_ended_flat-->     idle
    trailing --buy_ended_holding-->  filled     any      --bought-->             filled
    filled   --sold_out | stopped_out | dust_cleared-->  idle

Anything else raises `InvalidLevelTransition`. Every order goes through the risk manager. The grid's
state is part of every checkpoint and is published as `GridSnapshot`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from trdr_tui.config import FeesConfig, Settings
from trdr_tui.core.errors import RiskLimitExceeded, StateCorruption
from trdr_tui.core.events import GridLevel, GridSnapshot
from trdr_tui.core.fsm import OPEN
from trdr_tui.core.types import Action, Decision, Fill, Order, OrderTransition, Side, Trade
from trdr_tui.trading.policy import PolicyContext
from trdr_tui.trading.sizing import ProductSpec, Sizer

F64 = npt.NDArray[np.float64]
SWING_HISTORY_BARS = 720  # 30 days of hourly bars (PRD §3.3.2)


class LevelState(StrEnum):
    """Where a grid level is in its life (the value is what snapshots and checkpoints carry)."""

    IDLE = "idle"  # nothing on it
    ARMED = "armed"  # a BUY level within `activation_distance` of the close
    TRAILING = "trailing"  # its BUY (a resting post-only limit) is working
    FILLED = "filled"  # it holds a lot (its SELL may be working)


class LevelTrigger(StrEnum):
    """What happened to a level."""

    NEAR = "near"  # the close came within `activation_distance`
    AWAY = "away"  # the close moved out of it again
    BUY_PLACED = "buy_placed"  # a post-only limit BUY was placed on the level
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


def configured_fee_rates(fees: FeesConfig) -> tuple[float, float]:
    """(maker, taker) of the account's tier as configured: the tier the 30-day volume falls in when
    `thirty_day_volume_usd` > 0, else the named `tier` (fractions of notional)."""
    if fees.thirty_day_volume_usd > 0:
        chosen = min(fees.tiers, key=lambda t: t.usd_from)
        for t in fees.tiers:
            if fees.thirty_day_volume_usd >= t.usd_from >= chosen.usd_from:
                chosen = t
        return chosen.maker, chosen.taker
    named = next(t for t in fees.tiers if t.name == fees.tier)
    return named.maker, named.taker


def round_trip_cost(entry_fee: float, exit_fee: float, half_spread: float) -> float:
    """What one round trip costs as a fraction of its notional: both fees plus crossing the spread
    once each way (2 × half-spread). DESIGN invariant 10."""
    return entry_fee + exit_fee + 2.0 * half_spread


def cap_trail(trail: float, spacing: float, cost: float) -> float:
    """The largest trail distance a trailing SELL armed at a level's target (level × (1 + spacing))
    may have so that it fires no lower than level × (1 + cost): 1 − (1 + cost) / (1 + spacing).

    Returns min(trail, that cap); the cap is ≤ 0 when the spacing does not cover the cost."""
    return min(trail, 1.0 - (1.0 + cost) / (1.0 + spacing))


def level_quote(equity: float, base_fraction: float, net_gain: float, min_trip_profit: float) -> float:
    """Quote currency to commit per grid level: `base_fraction` × equity, raised to
    `min_trip_profit` / `net_gain` so a round trip's net profit is at least `min_trip_profit`
    (`net_gain` = spacing − round-trip cost, a fraction). 0.0 when the trip cannot earn."""
    if not net_gain > 0.0 or not equity > 0.0:
        return 0.0
    return max(base_fraction * equity, min_trip_profit / net_gain)


class GridPolicy:
    name = "grid"
    idle_only = False

    def __init__(self, settings: Settings, *, product: ProductSpec | None = None,
                 fee_rates: tuple[float, float] | None = None) -> None:
        """`fee_rates`: (maker, taker) of the account (default: the configured tier, `[fees]`)."""
        self.cfg = settings.grid
        self.min_confidence = settings.agents.min_confidence
        self.default_trail = settings.trailing.distance
        sz = settings.sizing
        self.base_fraction = sz.base_fraction
        self.sizer = Sizer(product or ProductSpec(symbol=settings.symbol), kelly_safety=sz.kelly_safety,
                           kelly_lookback_days=sz.kelly_lookback_days, kelly_min_trades=sz.kelly_min_trades)
        self.max_entries = settings.risk.max_concurrent_trades
        maker, taker = fee_rates if fee_rates is not None else configured_fee_rates(settings.fees)
        exit_fee = taker if self.cfg.trailing_exits else maker
        self.cost = round_trip_cost(maker, exit_fee, settings.execution.half_spread)
        self.floor = max(self.cost + self.cfg.fee_margin, self.cfg.min_spacing)
        self.tick = 2.0 * settings.execution.half_spread  # a post-only limit rests at least this far away
        c = self.cfg
        self._a_fast = 2.0 / (c.trend_fast_bars + 1.0)
        self._a_slow = 2.0 / (c.trend_slow_bars + 1.0)
        self.ema_fast = 0.0
        self.ema_slow = 0.0
        self.bars_seen = 0
        self.center: float | None = None
        self.spacing = max(c.spacing, self.floor)
        self.quote = 0.0
        self.levels: list[Level] = []
        self.exiting = ""  # why the grid is selling out ("" : it is not)
        self._changed = False
        self.skipped_below_min = 0

    def bind(self, ctx: PolicyContext) -> None:
        self.ctx = ctx
        self.orders = ctx.orders
        self.portfolio = ctx.portfolio
        self.orders.fill_listeners.append(self._on_fill)
        self.orders.fsm.listeners.append(self._on_transition)

    # -- per bar ---------------------------------------------------------------------------------

    def downtrend(self, close: float) -> bool:
        """A confirmed downtrend: enough bars for the slow EMA, the fast EMA below it by more than
        `trend_band` and the close below it."""
        c = self.cfg
        return self.bars_seen >= c.trend_slow_bars and close < self.ema_slow \
            and self.ema_fast < self.ema_slow * (1.0 - c.trend_band)

    def on_bar(self, ts: int, close: float, decision: Decision | None) -> None:
        if self.bars_seen == 0:
            self.ema_fast = self.ema_slow = close
        else:
            self.ema_fast += self._a_fast * (close - self.ema_fast)
            self.ema_slow += self._a_slow * (close - self.ema_slow)
        self.bars_seen += 1
        down = self.downtrend(close)
        if self.exiting:
            self._sell_out(ts, close)
        elif self.center is None:
            if not down:
                self.build(close, ts)
        else:
            holding = self._sellable(self.portfolio.position, close)
            if holding and close < self.levels[0].price * (1.0 - self.cost - self.cfg.stop_buffer):
                self._start_exit(ts, close, f"stop: close {close:.2f} below the grid's lowest level "
                                            f"{self.levels[0].price:.2f} by more than costs + buffer")
            elif holding and down and self.cfg.regime_exit:
                self._start_exit(ts, close, "regime exit: confirmed downtrend")
            else:
                bearish = decision is not None and decision.action is Action.TRAIL_SELL \
                    and decision.confidence >= self.min_confidence
                trail = decision.trail_distance if decision is not None and decision.trail_distance > 0 \
                    else self.default_trail
                self._work_levels(ts, close, trail, down or bearish or self.ctx.risk.halted)
        if self._changed:
            self._changed = False
            self.ctx.publish_grid(self.snapshot(ts, close))

    def _work_levels(self, ts: int, close: float, trail: float, no_buys: bool) -> None:
        act = self.cfg.activation_distance
        center = self.center
        assert center is not None
        entries = self.orders.open_entries()
        for lv in self.levels:
            if lv.state is L.FILLED:
                if lv.exit_order is None and lv.order is None:
                    if not self._sellable(lv.lot, close):
                        self._clear(lv, ts)  # dust below the minimum order size: nothing left to sell
                    else:
                        self._take_profit(lv, close, trail)
                continue
            if lv.price >= center * (1.0 - 1e-12):
                continue
            if lv.state is L.TRAILING:
                if no_buys and lv.order is not None:
                    self.orders.cancel(lv.order, "grid: buying paused")
                continue
            near = abs(lv.price - close) / close <= act
            if lv.state is L.IDLE and near:
                self._move(lv, T.NEAR, ts)
            elif lv.state is L.ARMED and not near:
                self._move(lv, T.AWAY, ts)
            if lv.state is L.ARMED and not no_buys and entries < self.max_entries \
                    and lv.price < close * (1.0 - self.tick):
                order = self._buy(lv)
                if order is not None:
                    entries += 1
                    lv.order = order
                    self._move(lv, T.BUY_PLACED, ts)
        if self._sellable(self.portfolio.position, close) or self.orders.committed_base() > 0.0:
            return
        if close >= center * (1.0 + self.spacing) or close < self.levels[0].price:
            self._take_down("grid: re-centering")
            if not no_buys:
                self.build(close, ts)

    def _buy(self, lv: Level) -> Order | None:
        pf = self.portfolio
        price = float(self.sizer.product.round_price(lv.price, Side.BUY))
        available = max(pf.cash - self.orders.committed_cash(price), 0.0)
        quote = min(self.quote, available / (1.0 + self.cost))
        size = self.sizer.level_size(quote=quote, available=available, price=price, trades=pf.trades,
                                     now_ns=self.ctx.clock.now_ns(),
                                     risk_limit=self.ctx.risk.position_limit(price))
        if size is None:
            self.skipped_below_min += 1
            return None
        try:
            return self.orders.place_limit(Side.BUY, float(size), price, reason="grid level",
                                           metadata={"grid_leg": "level", "grid_level": lv.index})
        except RiskLimitExceeded:
            return None

    def _take_profit(self, lv: Level, close: float, trail: float) -> None:
        free = self.portfolio.position - self.orders.committed_base()
        size = self.sizer.product.round_size(min(lv.lot, free))
        if size is None:
            return
        target = lv.price * (1.0 + self.spacing)
        meta: dict[str, str | float | int | bool | None] = {"grid_leg": "exit", "grid_level": lv.index}
        try:
            if self.cfg.trailing_exits:
                if close < target:
                    return
                capped = cap_trail(trail, self.spacing, self.cost)
                lv.exit_order = self.orders.place_trailing(Side.SELL, size=float(size), trail=capped, price=close,
                                                           reason="grid exit", metadata=meta)
            else:
                limit = float(self.sizer.product.round_price(max(target, close * (1.0 + self.tick)), Side.SELL))
                lv.exit_order = self.orders.place_limit(Side.SELL, float(size), limit, reason="grid take-profit",
                                                        metadata=meta)
        except RiskLimitExceeded:
            return
        self._changed = True

    # -- stops and taking the grid down ----------------------------------------------------------

    def _start_exit(self, ts: int, close: float, reason: str) -> None:
        self.exiting = reason
        self.ctx.log("warning", f"grid {reason}: selling the position", price=close)
        self._sell_out(ts, close)

    def _sell_out(self, ts: int, close: float) -> None:
        """Cancel the grid's orders and sell what is free at market; once flat the grid is down."""
        for order in list(self.orders.open.values()):
            if order.metadata.get("grid_leg") is not None:
                self.orders.cancel(order, f"grid {self.exiting}")
        free = self.portfolio.position - self.orders.committed_base()
        size = self.sizer.product.round_size(free) if self._sellable(free, close) else None
        if size is not None:
            try:
                self.orders.place_market(Side.SELL, float(size), price=close, reason=f"grid {self.exiting}")
            except RiskLimitExceeded:
                return
        if not self._sellable(self.portfolio.position, close) and self.orders.committed_base() <= 0.0:
            self._take_down(f"grid {self.exiting}")
            self.exiting = ""

    def _take_down(self, reason: str) -> None:
        for lv in self.levels:
            if lv.order is not None:
                self.orders.cancel(lv.order, reason)
        self.center = None
        self.levels = []
        self._changed = True

    # -- building --------------------------------------------------------------------------------

    def build(self, center: float, ts: int) -> None:
        """(Re)build the levels around `center`: spacing from the recent swings, never below the fee
        floor; capital per level from the equity now."""
        cfg = self.cfg
        top = max(cfg.max_spacing, self.floor)
        if cfg.auto_spacing:
            bars = self.ctx.recent_bars(SWING_HISTORY_BARS)
            self.spacing = swing_spacing(bars.high, bars.low, lookback=cfg.swing_lookback,
                                         fraction=cfg.swing_fraction, min_spacing=self.floor,
                                         max_spacing=top, default=cfg.spacing)
        else:
            self.spacing = min(max(cfg.spacing, self.floor), top)
        self.quote = level_quote(self.portfolio.equity(center), self.base_fraction, self.spacing - self.cost,
                                 cfg.min_trip_profit)
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
            if order.side is Side.SELL:  # a stop or a regime exit sold lots the grid holds: oldest first
                self._release(fill.size)
            return
        self._changed = True
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
                trigger = st.trigger if st is not None else working.price
            unreal = (price - lv.entry) * lv.lot if lv.lot else 0.0
            levels.append(GridLevel(price=lv.price, side=side, state=lv.state.value, trigger=trigger, pnl=lv.pnl + unreal,
                                    time_at_level_ns=max(ts - lv.since_ns, 0)))
        return GridSnapshot(ts=ts, symbol=self.portfolio.symbol, center=center, spacing=self.spacing,
                            levels=tuple(levels))

    def state(self) -> dict[str, object]:
        return {"grid": {
            "center": self.center, "spacing": self.spacing, "quote": self.quote, "exiting": self.exiting,
            "ema_fast": self.ema_fast, "ema_slow": self.ema_slow, "bars_seen": self.bars_seen,
            "levels": [{"price": lv.price, "state": lv.state.value, "lot": lv.lot, "entry": lv.entry, "pnl": lv.pnl,
                        "since_ns": lv.since_ns, "order": lv.order.id if lv.order else None,
                        "exit_order": lv.exit_order.id if lv.exit_order else None} for lv in self.levels],
        }}

    def restore(self, state: dict[str, object]) -> None:
        g: Any = state.get("grid")
        if not g:
            return
        orders = self.orders.orders
        self.center = g["center"]
        self.spacing = float(g["spacing"])
        self.quote = float(g["quote"])
        self.exiting = str(g["exiting"])
        self.ema_fast, self.ema_slow, self.bars_seen = float(g["ema_fast"]), float(g["ema_slow"]), int(g["bars_seen"])
        self.levels = []
        for k, d in enumerate(g["levels"]):
            lv = Level(k, float(d["price"]))
            lv.state = LevelState(d["state"])
            lv.lot, lv.entry, lv.pnl, lv.since_ns = d["lot"], d["entry"], d["pnl"], d["since_ns"]
            lv.order = orders.get(d["order"]) if d.get("order") else None
            lv.exit_order = orders.get(d["exit_order"]) if d.get("exit_order") else None
            self.levels.append(lv)
