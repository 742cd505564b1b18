"""The grid: fee-aware spacing, post-only limits on the levels, a paired take-profit per filled level.

Spacing (PRD §3.3.2, §3.5), measured on the last 30 days of closed bars at every build, by
`spacing_method`: `swing` — swing highs and lows are bars whose high (low) is the extreme of the
`swing_lookback` bars on each side; the swings are the moves between consecutive alternating pivots,
as fractions; spacing = `swing_fraction` × their average; `atr` — spacing = `atr_multiple` × Wilder's
ATR over `atr_bars` bars ÷ the close (`atr_spacing`). Either is clamped to [floor, `max_spacing`].
With too little history, or `auto_spacing = false`, `spacing` is used (never below the floor either).

The floor follows from fees (DESIGN invariant 10): no round trip is planned whose target gain is below
its cost. A round trip buys with a post-only limit (maker fee) and sells with a post-only take-profit
(maker) or, with `trailing_exits`, a trailing SELL (taker), so

    cost  = entry fee + exit fee + 2 × half-spread        (fees of the account's tier, `[fees]`)
    floor = max(`cost_multiple` × cost, cost + `fee_margin`, `min_spacing`)

With `cost_multiple` = 2 (the default) a planned round trip's target gain is at least twice its cost,
so fees take at most half of it.

Life of the grid (the `grid` policy):

1. Build: on the first bar the trend gate allows, `levels` prices `center × (1 + k × spacing)`,
   k = −levels/2 … levels/2, around the close. Levels below the center are BUY levels. With
   `seed_inventory` (a classic grid started at the price) the levels from the center up, all but the
   top one, are stocked by one market BUY split evenly over them, and every level but the top one buys.
2. Entries: a BUY level within `activation_distance` of the close is `armed`; while buying is allowed
   (no confirmed downtrend, no drawdown halt, no confident TRAIL_SELL, a free entry slot), a post-only
   limit BUY rests on it (`trailing` state: its BUY is working). A fill puts a lot on it (`filled`).
3. Exits: a filled level gets its take-profit one spacing above the level at once: a post-only limit
   SELL (maker), or with `trailing_exits` a trailing SELL armed when the close reaches the target, its
   trail capped (`cap_trail`) so that it fires no lower than the level plus the round trip's cost.
4. Trend gate: an EMA of `trend_fast_bars` below the EMA of `trend_slow_bars` by more than
   `trend_band`, with the close below the slow EMA, is a confirmed downtrend: resting BUYs are
   cancelled and no new ones placed; with `regime_exit`, once the close is also below the lowest
   level by the round trip's cost, the lots are sold at market (a regime exit) and the grid is taken
   down; with `rebuild_in_uptrend` it is rebuilt only once EMA(fast) > EMA(slow).
5. Stop: never inside the grid. A close below the lowest level by the round trip's cost plus
   `stop_buffer` sells every lot at market (taker) and the grid is taken down; it is rebuilt when the
   trend gate allows.
6. Re-centering: holding nothing, a close one spacing above the center (or below the lowest level)
   rebuilds the grid around it; resting BUYs are cancelled first.

Capital per level (PRD §3.3.1, `level_fraction`, `level_quote`): `risk.max_position / levels` of
equity with `seed_inventory`, else `sizing.base_fraction`, raised so that one
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

import math
from enum import StrEnum
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from trdr_tui.config import FeesConfig, GridConfig, Settings
from trdr_tui.core.errors import RiskLimitExceeded, StateCorruption
from trdr_tui.core.events import GridLevel, GridSnapshot
from trdr_tui.core.fsm import OPEN
from trdr_tui.core.smoothing import recursive_filter
from trdr_tui.core.types import (
    BUY_SIDE,
    SELL_SIDE,
    TRAIL_SELL_ACTION,
    Decision,
    Fill,
    Order,
    OrderTransition,
    Side,
    Trade,
)
from trdr_tui.core.volatility import atr
from trdr_tui.trading.policy import PolicyContext
from trdr_tui.trading.sizing import ProductSpec, Sizer

F64 = npt.NDArray[np.float64]
QUIET_MARGIN = 1e-9  # the quiet band is narrowed by this relative margin against float rounding
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


class L:
    """LevelState's members as plain class attributes, for the per-level checks of every grid pass: on
    Python 3.11 a lookup on an Enum class goes through `EnumType.__getattr__`'s slow hook (about ten
    times a plain class attribute; gone in 3.12)."""

    IDLE: Final = LevelState.IDLE
    ARMED: Final = LevelState.ARMED
    TRAILING: Final = LevelState.TRAILING
    FILLED: Final = LevelState.FILLED


class T:
    """LevelTrigger's members as plain class attributes (see `L`)."""

    NEAR: Final = LevelTrigger.NEAR
    AWAY: Final = LevelTrigger.AWAY
    BUY_PLACED: Final = LevelTrigger.BUY_PLACED
    BUY_ENDED_FLAT: Final = LevelTrigger.BUY_ENDED_FLAT
    BUY_ENDED_HOLDING: Final = LevelTrigger.BUY_ENDED_HOLDING
    BOUGHT: Final = LevelTrigger.BOUGHT
    SOLD_OUT: Final = LevelTrigger.SOLD_OUT
    STOPPED_OUT: Final = LevelTrigger.STOPPED_OUT
    DUST_CLEARED: Final = LevelTrigger.DUST_CLEARED



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


def _window_extreme(a: F64, w: int, pick: np.ufunc) -> F64:
    """`pick` (np.maximum / np.minimum) over every window of `w` consecutive elements: out[j] is the
    extreme of a[j] … a[j + w − 1]. The same values as a sliding-window max/min (no rounding), with
    about log2(`w`) vectorized passes instead of a reduction along a strided axis (several times faster):
    m[j] holds the extreme of a[j] … a[j + span − 1] for a doubling span, and two such windows overlapping
    cover each window of `w` (a sparse table)."""
    m = a
    span = 1
    while 2 * span <= w:
        m = pick(m[:-span], m[span:])
        span *= 2
    k = w - span
    return pick(m[:m.shape[0] - k], m[k:]) if k else m.copy()


def swing_pivots(high: F64, low: F64, lookback: int) -> list[float]:
    """Alternating swing-high / swing-low prices, in time order.

    Bar i is a swing high when its high is the highest of bars i−lookback … i+lookback (a swing low
    likewise with lows); two of the same kind in a row keep the more extreme one.
    """
    w = 2 * lookback + 1
    if len(high) < w:
        return []
    hi_max = _window_extreme(high, w, np.maximum)
    lo_min = _window_extreme(low, w, np.minimum)
    mid = slice(lookback, len(high) - lookback)
    is_high = high[mid] >= hi_max
    is_low = (low[mid] <= lo_min) & ~is_high
    at = np.flatnonzero(is_high | is_low)
    if at.size == 0:
        return []
    kind = is_high[at]  # True: a swing high
    price = np.where(kind, high[at + lookback], low[at + lookback])
    # each run of one kind keeps its most extreme price (the highest high, the lowest low)
    runs = np.flatnonzero(np.concatenate(([True], kind[1:] != kind[:-1])))
    keep = np.where(kind[runs], np.maximum.reduceat(price, runs), np.minimum.reduceat(price, runs))
    return list(keep.tolist())


def swing_spacing(high: F64, low: F64, *, lookback: int, fraction: float, min_spacing: float,
                  max_spacing: float, default: float) -> float:
    pivots = swing_pivots(high, low, lookback)
    if len(pivots) < 3:
        return min(max(default, min_spacing), max_spacing)
    p = np.asarray(pivots)
    swings = np.abs(p[1:] - p[:-1]) / p[:-1]  # np.diff and .mean() without their Python wrappers (same bits)
    return float(min(max(fraction * float(np.add.reduce(swings) / swings.shape[0]), min_spacing), max_spacing))


def atr_spacing(high: F64, low: F64, close: F64, *, bars: int, multiple: float, min_spacing: float,
                max_spacing: float, default: float) -> float:
    """Volatility-scaled spacing (`grid.spacing_method = "atr"`): `multiple` × Wilder's average true range
    over `bars` bars (`core.volatility.atr`; Wilder 1978) ÷ the last close, clamped to [`min_spacing`,
    `max_spacing`] (the grid passes its fee floor as `min_spacing`). Arrays of shape (n,), prices; with
    fewer than `bars` bars, `default` clamped alike. Reads only the bars it is given: the grid passes
    the closed bars up to the one being processed, so no later bar can move it."""
    a = atr(high, low, close, bars)
    if a.shape[0] == 0 or not math.isfinite(float(a[-1])) or not float(close[-1]) > 0.0:
        return min(max(default, min_spacing), max_spacing)
    return float(min(max(multiple * float(a[-1]) / float(close[-1]), min_spacing), max_spacing))


def history_bars(c: GridConfig) -> int:
    """Closed bars the grid's rules read before they are armed: the trend gate's slow EMA
    (`trend_slow_bars`) and, with `auto_spacing`, the spacing window (`SWING_HISTORY_BARS`)."""
    return max(c.trend_slow_bars, SWING_HISTORY_BARS if c.auto_spacing else 0)


def trend_gate(close: F64, *, fast_bars: int, slow_bars: int, band: float) -> tuple[F64, F64, npt.NDArray[np.bool_]]:
    """The trend gate over a whole history (the batch twin of `GridPolicy`'s per-bar update):
    (EMA fast, EMA slow, confirmed downtrend) per bar.

    Both EMAs are seeded with the first close, then `a·x + (1 − a)·prev`, `a = 2 / (bars + 1)`
    (`core.smoothing.recursive_filter`; equal to the per-bar update up to float rounding). Bar i is in a
    confirmed downtrend when i + 1 ≥ `slow_bars`, its close is below the slow EMA and the fast EMA is
    below the slow one by more than `band` (a fraction)."""
    n = close.shape[0]
    if n == 0:
        empty = np.empty(0, dtype=np.float64)
        return empty, empty.copy(), np.zeros(0, dtype=np.bool_)
    first = float(close[0])
    fast = recursive_filter(close, 2.0 / (fast_bars + 1.0), first)
    slow = recursive_filter(close, 2.0 / (slow_bars + 1.0), first)
    down = (close < slow) & (fast < slow * (1.0 - band))
    down[: max(slow_bars - 1, 0)] = False
    return fast, slow, down


def grid_prices(center: float, spacing: float, count: int) -> list[float]:
    half = count // 2
    return [center * (1.0 + k * spacing) for k in range(-half, half + 1)]


class Level:
    __slots__ = ("entry", "exit_order", "fees", "index", "lot", "order", "pnl", "price", "since_ns", "state")

    def __init__(self, index: int, price: float) -> None:
        self.index = index
        self.price = price
        self.state = LevelState.IDLE
        self.order: Order | None = None  # the BUY working on this level
        self.exit_order: Order | None = None  # the SELL of this level's lot
        self.lot = 0.0
        self.entry = 0.0
        self.fees = 0.0  # the BUY fees of the lot held (quote), shared out over the sells that close it
        self.pnl = 0.0  # realised on this level's own lots: its sells against its own entry, net of fees
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


class FeeFloor(msgspec.Struct, frozen=True, kw_only=True):
    """What a grid round trip costs and the spacing floor that follows (DESIGN invariant 10), with the
    fees of the order types the grid really uses. Fractions of notional / of price."""

    maker: float
    taker: float
    entry_fee: float  # a post-only limit BUY at a level: maker
    exit_fee: float  # a post-only take-profit: maker; a trailing SELL (`trailing_exits`): taker
    exit_order: str  # "maker take-profit" or "taker trailing SELL"
    half_spread: float
    cost: float  # `round_trip_cost(entry_fee, exit_fee, half_spread)`
    fee_margin: float
    cost_multiple: float
    min_spacing: float
    floor: float  # max(cost_multiple × cost, cost + fee_margin, min_spacing)


def fee_floor(settings: Settings, fee_rates: tuple[float, float] | None = None) -> FeeFloor:
    """The grid's round-trip cost and spacing floor for `settings` at `fee_rates` = (maker, taker)
    (default: the configured tier, `configured_fee_rates`). The one computation `GridPolicy` and
    `trdr tune --explain` (`tuning/derive.py`) both use."""
    g = settings.grid
    maker, taker = fee_rates if fee_rates is not None else configured_fee_rates(settings.fees)
    exit_fee = taker if g.trailing_exits else maker
    half = settings.execution.half_spread
    cost = round_trip_cost(maker, exit_fee, half)
    return FeeFloor(maker=maker, taker=taker, entry_fee=maker, exit_fee=exit_fee,
                    exit_order="taker trailing SELL" if g.trailing_exits else "maker take-profit",
                    half_spread=half, cost=cost, fee_margin=g.fee_margin, cost_multiple=g.cost_multiple,
                    min_spacing=g.min_spacing, floor=max(g.cost_multiple * cost, cost + g.fee_margin, g.min_spacing))


def cap_trail(trail: float, spacing: float, cost: float) -> float:
    """The largest trail distance a trailing SELL armed at a level's target (level × (1 + spacing))
    may have so that it fires no lower than level × (1 + cost): 1 − (1 + cost) / (1 + spacing).

    Returns min(trail, that cap); the cap is ≤ 0 when the spacing does not cover the cost."""
    return min(trail, 1.0 - (1.0 + cost) / (1.0 + spacing))


def level_fraction(grid: GridConfig, max_position: float, base_fraction: float) -> float:
    """The share of equity committed per grid level: with stocked levels (`grid.seed_inventory`) the
    position cap `risk.max_position` spread evenly over the `levels`, else `sizing.base_fraction`.
    The one rule both a new `GridPolicy` and a live change (`tuning/apply.py`) follow."""
    return max_position / grid.levels if grid.seed_inventory else base_fraction


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
        self.base_fraction = level_fraction(self.cfg, settings.risk.max_position, sz.base_fraction)
        self.sizer = Sizer(product or ProductSpec(symbol=settings.symbol), kelly_safety=sz.kelly_safety,
                           kelly_lookback_days=sz.kelly_lookback_days, kelly_min_trades=sz.kelly_min_trades)
        self.max_entries = settings.risk.max_concurrent_trades
        fees = fee_floor(settings, fee_rates)
        self.cost = fees.cost
        self.floor = fees.floor
        product = self.sizer.product
        self._base_step = float(product.base_increment)
        self._min_size = float(product.base_min_size) * (1.0 + QUIET_MARGIN)
        self._min_value = float(product.quote_min_size) * (1.0 + QUIET_MARGIN)
        self.tick = 2.0 * settings.execution.half_spread  # a post-only limit rests at least this far away
        c = self.cfg
        self._a_fast = 2.0 / (c.trend_fast_bars + 1.0)
        self._a_slow = 2.0 / (c.trend_slow_bars + 1.0)
        self.ema_fast = 0.0
        self.ema_slow = 0.0
        self.bars_seen = 0  # closed bars the EMAs have followed
        # the bar index of the last EMA update (streaming); None after a restore: no catching up
        self._last_index: int | None = -1
        self._fast: F64 | None = None  # a backtest's trend gate, per bar (`prepare`)
        self._slow: F64 | None = None
        self._down: list[bool] | None = None
        # the quiet band (`_settle`): skip the pass while nothing it read has changed
        self._quiet = False
        self._acted = False
        self._lo = -math.inf
        self._hi = math.inf
        self._q_down = self._q_bearish = self._q_halted = False
        self._q_peak = 0.0
        self.center: float | None = None
        self.spacing = max(c.spacing, self.floor)
        self.quote = 0.0
        self.levels: list[Level] = []
        self.exiting = ""  # why the grid is selling out ("" : it is not)
        self.await_uptrend = False  # after an exit: rebuild only once the fast EMA is above the slow one
        self._changed = False
        self.skipped_below_min = 0

    def bind(self, ctx: PolicyContext) -> None:
        self.ctx = ctx
        self._bar_index = ctx.bar_index
        self._grid_wanted = ctx.grid_wanted
        self._risk = ctx.risk
        self.orders = ctx.orders
        self.portfolio = ctx.portfolio
        self.orders.fill_listeners.append(self._on_fill)
        self.orders.fsm.listeners.append(self._on_transition)

    def prepare(self, close: F64) -> None:
        """A backtest hands over every bar's close before the first: the trend gate is computed
        vectorized once (`trend_gate`) and read by bar index. Ignored after a restore (the EMAs
        continue from the checkpoint)."""
        if self.bars_seen or self._down is not None:
            return
        c = self.cfg
        fast, slow, down = trend_gate(close, fast_bars=c.trend_fast_bars, slow_bars=c.trend_slow_bars,
                                      band=c.trend_band)
        self._fast, self._slow, self._down = fast, slow, down.tolist()

    # -- per bar ---------------------------------------------------------------------------------

    def downtrend(self, close: float) -> bool:
        """A confirmed downtrend: enough bars for the slow EMA, the fast EMA below it by more than
        `trend_band` and the close below it. After `prepare`, the precomputed verdict of the last bar
        processed."""
        if self._down is not None and self.bars_seen:
            return self._down[self.bars_seen - 1]
        return self._ema_down(close)

    def _uptrend(self) -> bool:
        """The fast EMA above the slow one (the bar last processed)."""
        if self._fast is not None and self._slow is not None and self.bars_seen:
            return bool(self._fast[self.bars_seen - 1] > self._slow[self.bars_seen - 1])
        return self.ema_fast > self.ema_slow

    def _ema_down(self, close: float) -> bool:
        c = self.cfg
        return self.bars_seen >= c.trend_slow_bars and close < self.ema_slow \
            and self.ema_fast < self.ema_slow * (1.0 - c.trend_band)

    def _trend(self, close: float) -> bool:
        """Streaming: move the trend gate to the bar being processed and say whether it is a
        confirmed downtrend. The EMAs follow every closed bar, also those the policy did not see (a
        pause): the missed closes are read back from the recent bars."""
        i = self._bar_index()
        missed = i - self._last_index - 1 if self._last_index is not None else 0
        if missed > 0:
            for x in self.ctx.recent_bars(missed + 1).close[:-1].tolist():
                self._ema_step(x)
        self._last_index = i
        self._ema_step(close)
        return self._ema_down(close)

    def _ema_step(self, close: float) -> None:
        if self.bars_seen == 0:
            self.ema_fast = self.ema_slow = close
        else:
            self.ema_fast += self._a_fast * (close - self.ema_fast)
            self.ema_slow += self._a_slow * (close - self.ema_slow)
        self.bars_seen += 1

    def on_bar(self, ts: int, close: float, decision: Decision | None) -> None:
        gate = self._down
        if gate is not None:  # a backtest's precomputed trend gate (`prepare`)
            i = self._bar_index()
            self.bars_seen = i + 1
            down = gate[i]
        else:
            down = self._trend(close)
        bearish = decision is not None and decision.action is TRAIL_SELL_ACTION \
            and decision.confidence >= self.min_confidence
        halted = self._risk.halted
        if self._quiet and self._lo < close < self._hi and down is self._q_down and bearish is self._q_bearish \
                and halted is self._q_halted and self._risk.peak == self._q_peak:
            return  # the last pass changed nothing, and nothing it read has changed since (see `_settle`)
        self._quiet = False
        self._acted = False
        self._lo, self._hi = -math.inf, math.inf
        if self.exiting:
            self._sell_out(ts, close)
        elif self.center is None:
            if not down and (not self.await_uptrend or self._uptrend()):
                self.build(close, ts)
                self.await_uptrend = False
        else:
            holding = self._sellable(self.portfolio.position, close, bound=True)
            stop = self.levels[0].price * (1.0 - self.cost - self.cfg.stop_buffer)
            if holding and close < stop:
                self._start_exit(ts, close, f"stop: close {close:.2f} below the grid's lowest level "
                                            f"{self.levels[0].price:.2f} by more than costs + buffer")
            elif holding and down and self.cfg.regime_exit and close < self.levels[0].price * (1.0 - self.cost):
                self._start_exit(ts, close, f"regime exit: confirmed downtrend, close {close:.2f} below the "
                                            f"grid's lowest level {self.levels[0].price:.2f} by more than costs")
            else:
                if holding:
                    self._above(stop)
                    if down and self.cfg.regime_exit:
                        self._above(self.levels[0].price * (1.0 - self.cost))
                trail = decision.trail_distance if decision is not None and decision.trail_distance > 0 \
                    else self.default_trail
                self._work_levels(ts, close, trail, down or bearish or halted)
        if self._changed:
            self._changed = False
            if self._grid_wanted():
                self.ctx.publish_grid(self.snapshot(ts, close))
        self._settle(close, down, bearish, halted)

    def _settle(self, close: float, down: bool, bearish: bool, halted: bool) -> None:
        """After a pass that placed, cancelled and moved nothing, the next bars can skip the pass while
        nothing it read changes: no fill or order transition (the listeners clear `_quiet`), the
        same trend gate, bearish decision and halt, and a close strictly inside (`_lo`, `_hi`), the
        prices where none of its comparisons flips, narrowed by a relative 1e-9 against rounding.
        A pure saving: the same orders as running every pass."""
        if self._acted or self.exiting or self.await_uptrend:  # the EMAs' crossing is not in the band
            return
        lo = self._lo * (1.0 + QUIET_MARGIN) if self._lo > 0.0 else self._lo
        hi = self._hi * (1.0 - QUIET_MARGIN)
        if not lo < close < hi:
            return
        self._lo, self._hi = lo, hi
        self._q_down, self._q_bearish, self._q_halted = down, bearish, halted
        self._q_peak = self._risk.peak
        self._quiet = True

    def _above(self, price: float) -> None:
        """The last pass's outcome holds only while the close stays at or above `price`."""
        if price > self._lo:
            self._lo = price

    def _below(self, price: float) -> None:
        """… only while the close stays below `price`."""
        if price < self._hi:
            self._hi = price

    def _work_levels(self, ts: int, close: float, trail: float, no_buys: bool) -> None:
        act = self.cfg.activation_distance
        center = self.center
        assert center is not None
        entries = self.orders.open_entries()
        # with stocked upper levels every level but the top one is a cell that buys; else only those below center
        buy_below = self.levels[-1].price * (1.0 - 1e-12) if self.cfg.seed_inventory else center * (1.0 - 1e-12)
        for lv in self.levels:
            if lv.state is L.FILLED:
                if lv.exit_order is None and lv.order is None:
                    if not self._sellable(lv.lot, close, bound=True):
                        self._clear(lv, ts)  # dust below the minimum order size: nothing left to sell
                    else:
                        self._take_profit(lv, close, trail)
                continue
            p = lv.price
            if p >= buy_below:
                continue
            if lv.state is L.TRAILING:
                if no_buys and lv.order is not None:
                    self._acted = True
                    self.orders.cancel(lv.order, "grid: buying paused")
                continue
            near = abs(p - close) / close <= act
            if near:  # `near` holds for p / (1 + act) ≤ close ≤ p / (1 − act)
                self._above(p / (1.0 + act))
                if act < 1.0:
                    self._below(p / (1.0 - act))
            elif close < p:
                self._below(p / (1.0 + act))
            else:
                self._above(p / (1.0 - act))
            if lv.state is L.IDLE and near:
                self._move(lv, T.NEAR, ts)
            elif lv.state is L.ARMED and not near:
                self._move(lv, T.AWAY, ts)
            if lv.state is L.ARMED and not no_buys and entries < self.max_entries:
                if p < close * (1.0 - self.tick):
                    order = self._buy(lv)
                    if order is not None:
                        entries += 1
                        lv.order = order
                        self._move(lv, T.BUY_PLACED, ts)
                else:
                    self._below(p / (1.0 - self.tick))
        # flat = the levels hold nothing sellable (coin no level owns, e.g. a partial fill's remainder, must
        # not keep the grid from moving) and no SELL is working
        held = sum([lv.lot for lv in self.levels])
        if self._sellable(held, close, bound=True) or self.orders.committed_base() > 0.0:
            return
        top = center * (1.0 + self.spacing)
        bottom = self.levels[0].price
        if close >= top or close < bottom:
            self._take_down("grid: re-centering")
            if not no_buys:
                self.build(close, ts)
        else:
            self._below(top)
            self._above(bottom)

    def _buy(self, lv: Level) -> Order | None:
        pf = self.portfolio
        price = float(self.sizer.product.round_price(lv.price, BUY_SIDE))
        available = max(pf.cash - self.orders.committed_cash(price), 0.0)
        limit = self.ctx.risk.position_limit(price, buying=self.ctx.orders.committed_buy_base(price))
        quote = min(self.quote, available / (1.0 + self.cost))
        most = quote / price if limit is None else min(quote / price, limit)  # the sizer never buys more
        product = self.sizer.product
        if not available > 0.0 or most < float(product.base_min_size) or most * price < float(product.quote_min_size):
            # no room: this holds until a fill, an order's end or a new equity peak (all end the quiet band)
            self.skipped_below_min += 1
            return None
        self._acted = True
        size = self.sizer.level_size(quote=quote, available=available, price=price, trades=pf.trades,
                                     now_ns=self.ctx.clock.now_ns(), risk_limit=limit)
        if size is None:
            self.skipped_below_min += 1
            return None
        try:
            return self.orders.place_limit(BUY_SIDE, float(size), price, reason="grid level",
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
        if self.cfg.trailing_exits and close < target:
            self._below(target)
            return
        self._acted = True
        try:
            if self.cfg.trailing_exits:
                capped = cap_trail(self.orders.tune_trail(Side.SELL, trail, close), self.spacing, self.cost)
                lv.exit_order = self.orders.place_trailing(Side.SELL, size=float(size), trail=capped, price=close,
                                                           reason="grid exit", metadata=meta)
            else:
                limit = float(self.sizer.product.round_price(max(target, close * (1.0 + self.tick)), SELL_SIDE))
                lv.exit_order = self.orders.place_limit(SELL_SIDE, float(size), limit, reason="grid take-profit",
                                                        metadata=meta)
        except RiskLimitExceeded:
            return
        self._changed = True

    # -- stops and taking the grid down ----------------------------------------------------------

    def _start_exit(self, ts: int, close: float, reason: str) -> None:
        self._acted = True
        self.exiting = reason
        self.ctx.log("warning", f"grid {reason}: selling the position", price=close)
        self._sell_out(ts, close)

    def _sell_out(self, ts: int, close: float) -> None:
        """Cancel the grid's orders and sell what is free at market; once flat the grid is down."""
        self._acted = True
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
            self.await_uptrend = self.cfg.rebuild_in_uptrend

    def _take_down(self, reason: str) -> None:
        self._acted = True
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
        self._acted = True
        cfg = self.cfg
        top = max(cfg.max_spacing, self.floor)
        if cfg.auto_spacing and cfg.spacing_method == "atr":
            bars = self.ctx.recent_bars(SWING_HISTORY_BARS)
            self.spacing = atr_spacing(bars.high, bars.low, bars.close, bars=cfg.atr_bars, multiple=cfg.atr_multiple,
                                       min_spacing=self.floor, max_spacing=top, default=cfg.spacing)
        elif cfg.auto_spacing:
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
        if cfg.seed_inventory:
            self._stock(center)

    def _stock(self, price: float) -> None:
        """The cells at and above the center (every level from the center up, but the top one) start
        holding a lot bought at market (taker), like a classic grid started at the price: one order."""
        upper = [lv.index for lv in self.levels[:-1] if lv.price >= price * (1.0 - 1e-12)]
        if not upper or self.quote <= 0.0:
            return
        pf = self.portfolio
        available = max(pf.cash - self.orders.committed_cash(price), 0.0)
        quote = min(self.quote * len(upper), available / (1.0 + self.cost))
        limit = self.ctx.risk.position_limit(price, buying=self.orders.committed_buy_base(price))
        size = quote / price if limit is None else min(quote / price, limit)
        rounded = self.sizer.product.round_size(size)
        if rounded is None or not self.sizer.product.meets_minimums(rounded, price):
            self.skipped_below_min += 1
            return
        try:
            self.orders.place_market(Side.BUY, float(rounded), price=price, reason="grid stock",
                                     metadata={"grid_leg": "stock", "grid_levels": ",".join(map(str, upper))})
        except RiskLimitExceeded:
            return

    def resize(self, equity: float) -> None:
        """A deposit or withdrawal (trading/funding.py): capital per level from `equity` now."""
        if self.center is not None:
            self.quote = level_quote(equity, self.base_fraction, self.spacing - self.cost, self.cfg.min_trip_profit)

    # -- order outcomes --------------------------------------------------------------------------

    def _level_of(self, order: Order) -> Level | None:
        k = order.metadata.get("grid_level")
        if isinstance(k, int) and 0 <= k < len(self.levels):
            return self.levels[k]
        return None

    def _on_fill(self, order: Order, fill: Fill, trade: Trade | None) -> None:
        self._quiet = False
        leg = order.metadata.get("grid_leg")
        if leg is None:
            if order.side is Side.SELL:  # a stop or a regime exit sold lots the grid holds: oldest first
                self._release(fill)
            return
        self._changed = True
        if leg == "stock":
            stocked = [self.levels[k] for k in map(int, str(order.metadata["grid_levels"]).split(","))
                       if k < len(self.levels)]
            # equal shares floored to the base increment (so each take-profit sells its whole share);
            # the last level takes the remainder
            share = float(self.sizer.product.increments.floor_size(fill.size / len(stocked))) if stocked else 0.0
            for j, x in enumerate(stocked):
                size = share if j < len(stocked) - 1 else fill.size - share * (len(stocked) - 1)
                self._add_lot(x, fill.price, size, fill.fee * size / fill.size, fill.ts)
            return
        lv = self._level_of(order)
        if lv is None:
            return
        if leg == "level":
            self._add_lot(lv, fill.price, fill.size, fill.fee, fill.ts)
        elif leg == "exit":  # the paired take-profit closes this level's own lot (the ledger matches FIFO)
            self._book_sale(lv, fill, fill.size, fill.fee)
            lv.lot = max(lv.lot - fill.size, 0.0)

    def _book_sale(self, lv: Level, fill: Fill, size: float, fee: float) -> None:
        """Add to the level's P&L the sale of `size` of its lot at the fill's price: against the level's
        own entry, less `fee` (this part's sell fee) and the lot's BUY fees pro rata."""
        size = min(size, lv.lot)
        entry_fee = lv.fees * size / lv.lot if lv.lot > 0 else 0.0
        lv.fees -= entry_fee
        lv.pnl += (fill.price - lv.entry) * size - fee - entry_fee

    def _release(self, fill: Fill) -> None:
        size = fill.size
        for lv in sorted((x for x in self.levels if x.lot > 0), key=lambda x: x.since_ns):
            take = min(lv.lot, size)
            self._book_sale(lv, fill, take, fill.fee * take / fill.size)
            lv.lot -= take
            size -= take
            if lv.lot <= 1e-12 and lv.exit_order is None:
                lv.lot = lv.entry = lv.fees = 0.0
                lv.state = next_level_state(lv.state, T.STOPPED_OUT, lv.index)
            if size <= 0:
                break
        self._changed = True

    def _add_lot(self, lv: Level, price: float, size: float, fee: float, ts: int) -> None:
        """`size` bought at `price` (paying `fee`, quote) joins the level's lot at `ts` (ns)."""
        lv.entry = (lv.entry * lv.lot + price * size) / (lv.lot + size)
        lv.lot += size
        lv.fees += fee
        lv.state = next_level_state(lv.state, T.BOUGHT, lv.index)
        lv.since_ns = ts

    def _on_transition(self, order: Order, t: OrderTransition) -> None:
        self._quiet = False
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
                lv.entry = lv.fees = 0.0
                lv.state = next_level_state(lv.state, T.SOLD_OUT, lv.index)
                lv.since_ns = t.ts

    def _sellable(self, size: float, price: float, *, bound: bool = False) -> bool:
        """At least the product's minimum order size and value: a smaller remainder (dust left by
        partial fills and increment rounding) can never be sold and must not keep the grid from moving.
        `bound`: also record the price where the answer flips (the minimum value) for `_settle`."""
        floored = size - self._base_step  # the exact floor to the base increment is at least this
        if floored >= self._min_size and floored * price >= self._min_value:  # surely sellable: no Decimal
            if bound:
                self._above(self._min_value / floored)
            return True
        product = self.sizer.product
        rounded = product.round_size(size)
        if rounded is None:
            return False
        ok = product.meets_minimums(rounded, price)
        if bound:  # round_size already checked the minimum size; the value flips at quote_min / size
            flip = float(product.quote_min_size) / float(rounded)
            if ok:
                self._above(flip)
            else:
                self._below(flip)
        return ok

    def _clear(self, lv: Level, ts: int) -> None:
        lv.lot = lv.entry = lv.fees = 0.0
        self._move(lv, T.DUST_CLEARED, ts)

    def _move(self, lv: Level, trigger: LevelTrigger, ts: int) -> None:
        if trigger is not T.NEAR and trigger is not T.AWAY:  # arming is settled within the pass: the
            self._acted = True  # next pass at a close inside the band moves nothing (see `_settle`)
        lv.state = next_level_state(lv.state, trigger, lv.index)
        lv.since_ns = ts
        self._changed = True

    # -- views and checkpoints -------------------------------------------------------------------

    def _trigger(self, order: Order) -> float | None:
        st = self.orders.trailing_state(order)
        return st.trigger if st is not None else order.price

    def snapshot(self, ts: int, price: float) -> GridSnapshot:
        """The levels as the grid pane shows them. A level's take-profit rests one spacing up, at the next
        level's price: a level with nothing of its own working shows that SELL (state `exit`, its price or
        trigger), so the levels where sells rest read as such."""
        center = 0.0 if self.center is None else self.center
        exits = {lv.index + 1: lv.exit_order for lv in self.levels if lv.exit_order is not None}
        levels = []
        for lv in self.levels:
            side = Side.BUY if lv.price <= center * (1.0 + 1e-12) else Side.SELL
            state = lv.state.value
            working = lv.exit_order or lv.order
            resting = exits.get(lv.index)
            if working is None and lv.state is L.IDLE and resting is not None:
                side, state, working = Side.SELL, "exit", resting
            trigger = None if working is None else self._trigger(working)
            unreal = (price - lv.entry) * lv.lot if lv.lot else 0.0
            levels.append(GridLevel(price=lv.price, side=side, state=state, trigger=trigger, pnl=lv.pnl + unreal,
                                    time_at_level_ns=max(ts - lv.since_ns, 0)))
        return GridSnapshot(ts=ts, symbol=self.portfolio.symbol, center=center, spacing=self.spacing,
                            levels=tuple(levels))

    def state(self) -> dict[str, object]:
        if self._fast is not None and self._slow is not None and self.bars_seen:
            self.ema_fast = float(self._fast[self.bars_seen - 1])
            self.ema_slow = float(self._slow[self.bars_seen - 1])
        return {"grid": {
            "center": self.center, "spacing": self.spacing, "quote": self.quote, "exiting": self.exiting,
            "ema_fast": self.ema_fast, "ema_slow": self.ema_slow, "bars_seen": self.bars_seen,
            "await_uptrend": self.await_uptrend,
            "levels": [{"price": lv.price, "state": lv.state.value, "lot": lv.lot, "entry": lv.entry, "fees": lv.fees,
                        "pnl": lv.pnl,
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
        self.await_uptrend = bool(g.get("await_uptrend", False))
        self.ema_fast, self.ema_slow, self.bars_seen = float(g["ema_fast"]), float(g["ema_slow"]), int(g["bars_seen"])
        self._fast = self._slow = self._down = None
        self._last_index = None  # bar indices before the restart are not this run's
        self._quiet = False
        self.levels = []
        for k, d in enumerate(g["levels"]):
            lv = Level(k, float(d["price"]))
            lv.state = LevelState(d["state"])
            lv.lot, lv.entry, lv.pnl, lv.since_ns = d["lot"], d["entry"], d["pnl"], d["since_ns"]
            lv.fees = float(d.get("fees", 0.0))  # checkpoints before per-level fees: none
            lv.order = orders.get(d["order"]) if d.get("order") else None
            lv.exit_order = orders.get(d["exit_order"]) if d.get("exit_order") else None
            self.levels.append(lv)
