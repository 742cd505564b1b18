"""The order manager: the only place orders are created, changed and booked.

Path of an order: risk check (E006 on refusal, nothing created) → `Order` in PENDING → stored
(write-ahead, with its `client_order_id`) → PENDING→SUBMITTED → executor → reports → state machine →
fills booked in the portfolio ledger exactly once.

Trailing orders are held here, not at the exchange (Coinbase has no trailing type): PENDING→ARMED puts
one in the engine's trigger book. When the price path fires it, its reference price is set (the trigger,
or the gap price), the fired intent is stored, and ARMED→SUBMITTED releases it to the executor, which
fills it as a market order (taker). A BUY may be sized in quote currency (`quote`): its base size is then
fixed at the trigger price.

Sizes and prices on the product's increments (when given): every order's size is floored to the size
step as it is created, a limit price rounded to the tick (down for a BUY, up for a SELL), a quote-sized
BUY's size floored as it fires; fills are booked with exact sums (`filled_size` is the nearest float to
the exact total), so the ledger and the executor see only numbers on the increments.

Time constraints (PRD §3.3.1): `expires_ns` (absolute) or the configured maximum duration → EXPIRED;
with `constraints` (trading/constraints.py) a resting limit's maximum duration, blackouts and an
absolute expiry refuse new BUYs and cancel the open ones. `on_time` hooks (funding events) run on the
same per-bar time check (`expire`).
Partial fills (PRD §3.3.3): once more than `partial_fill_cancel` of an order is filled, the remainder
is cancelled.

Crash recovery puts the book back through public calls only: `restore_sequence`, `restore_open` (an
order from a checkpoint, with its `TrailingSnapshot` when ARMED), `adopt` (an order as the store or the
exchange knows it) and `drop` (stop tracking, through the state machine); `open_state` is what a
checkpoint stores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Protocol

import msgspec

from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import Clock
from trdr_tui.core.engine_api import ExecutionReport, Executor, ImmediateExecutor
from trdr_tui.core.errors import InsufficientFunds, InvalidResponse, RiskLimitExceeded, StateCorruption
from trdr_tui.core.events import OrderEvent, RiskRejection, order_topic
from trdr_tui.core.fsm import OPEN, OrderStateMachine
from trdr_tui.core.types import (
    ARMED_STATUS,
    BUY_SIDE,
    LIMIT_ORDER,
    PARTIAL_STATUS,
    PENDING_STATUS,
    SELL_SIDE,
    SUBMITTED_STATUS,
    Fill,
    Order,
    OrderStatus,
    OrderTransition,
    OrderType,
    Side,
    Trade,
)
from trdr_tui.trading.constraints import TimeConstraints
from trdr_tui.trading.portfolio import Overdraft, Portfolio
from trdr_tui.trading.risk import RiskManager
from trdr_tui.trading.sizing import Increments, to_decimal
from trdr_tui.trading.slippage import SlippageMinimizer
from trdr_tui.trading.trailing import TrailingState, walk_path

FillListener = Callable[[Order, Fill, Trade | None], None]
OverdraftListener = Callable[[Order, Fill, Overdraft], None]


class TrailingSnapshot(msgspec.Struct, frozen=True):
    """An armed trailing order's numbers in a checkpoint: the best price seen, the anchor its trigger
    trails (quote currency per base unit), the trigger price, and its expiry (ns since the epoch,
    None: no time limit)."""

    best: float
    anchor: float
    trigger: float
    expires_ns: int | None = None


class OrderRepo(Protocol):
    """What the order manager needs from storage (store.orders.RunRepository implements it)."""

    def insert_order(self, order: Order) -> None: ...
    def update_order(self, order: Order) -> None: ...
    def insert_transition(self, order: Order, seq: int, transition: OrderTransition) -> None: ...
    def insert_fill(self, fill: Fill, trade: Trade | None = None) -> None:
        """The fill and the round trip it closes, written as one (a crash keeps both or neither)."""


def smart_order_type(spread: float, threshold: float) -> OrderType:
    """PRD §3.4: a spread above the threshold (0.2 %) → a limit order near the mid, else market."""
    return OrderType.LIMIT if spread > threshold else OrderType.MARKET


def should_improve(side: Side, order_price: float, price: float, threshold: float) -> bool:
    """PRD §3.3.1: re-price a resting order when the market moved in its favour by more than `threshold`."""
    move = order_price - price if side is Side.BUY else price - order_price
    return move / order_price > threshold


class OrderManager:
    def __init__(self, *, symbol: str, clock: Clock, bus: EventBus, portfolio: Portfolio, risk: RiskManager,
                 executor: Executor, run_id: str, repo: OrderRepo | None = None,
                 partial_fill_cancel: float = 0.80, max_duration_ns: int | None = None,
                 improvement: float = 0.0, increments: Increments | None = None) -> None:
        self.symbol = symbol
        self.increments = increments  # None: sizes and prices as given (ideal arithmetic)
        self.clock = clock
        self.bus = bus
        self.portfolio = portfolio
        self.risk = risk
        self.executor = executor
        self.run_id = run_id
        self.repo = repo
        self.partial_fill_cancel = partial_fill_cancel
        self.max_duration_ns = max_duration_ns
        self.improvement = improvement
        self.fsm = OrderStateMachine(clock, [self._on_transition])
        self.orders: dict[str, Order] = {}
        self.open: dict[str, Order] = {}
        self.trailing: list[TrailingState] = []
        self.fill_listeners: list[FillListener] = []
        self.overdraft_listeners: list[OverdraftListener] = []  # a fill the exchange made beyond the ledger
        self.expiring = False  # some armed order has had a time limit: the engine checks expiry per bar
        self.smart_spread: float | None = None  # PRD §3.4 threshold; None: fired orders always go at market
        self.book: tuple[float, float] | None = None  # the latest (bid, ask), from ticks that carry them
        self._resting_expiry: dict[str, int] = {}
        self.constraints: TimeConstraints | None = None  # set with `set_constraints`
        self.time_hooks: list[Callable[[int], None]] = []  # added with `on_time`
        self.slippage: SlippageMinimizer | None = None  # PRD §3.4 (`tune_trail`); None: distances as asked
        self._seq = 0
        self._submit_now: Callable[[Order], None] | None = None
        self._cancel_now: Callable[[Order], None] | None = None
        if isinstance(executor, ImmediateExecutor):
            self._submit_now = executor.submit_now
            self._cancel_now = executor.cancel_now
        self._tasks: set[asyncio.Task[None]] = set()
        self.rejections: list[RiskRejection] = []
        executor.bind(self.on_report)

    def set_constraints(self, constraints: TimeConstraints | None) -> None:
        """Apply time constraints from now on (None: none); the engine then checks time every bar."""
        self.constraints = constraints
        if constraints is not None:
            self.expiring = True

    def on_time(self, hook: Callable[[int], None]) -> None:
        """Call `hook(now_ns)` on every time check (each bar, before its prices are walked)."""
        self.time_hooks.append(hook)
        self.expiring = True

    def tune_trail(self, side: Side, trail: float, price: float) -> float:
        """The distance for a trailing `side` order armed at `price`: `trail`, tuned by the slippage
        minimizer when one is set (trading/slippage.py). Policies cap the result where they must."""
        return trail if self.slippage is None else self.slippage.trail(side, trail, price)

    def _entry_gate(self) -> None:
        """Raise RiskLimitExceeded naming the blackout or expiry that forbids a new BUY now."""
        why = self.constraints.entry_block(self.clock.now_ns()) if self.constraints is not None else ""
        if why:
            raise RiskLimitExceeded([why])

    def _risk_check(self, side: Side, size: float, price: float) -> None:
        """Every new order passes here; a refusal is recorded, published on `risk.rejected` and raised (E006)."""
        try:
            if side is BUY_SIDE and self.constraints is not None:
                self._entry_gate()
            self.risk.check(side, size, price,
                            open_entries=self.open_entries() if self.risk.counts_entries else 0,
                            selling=self.committed_base() if side is SELL_SIDE else 0.0,
                            buying=self.committed_buy_base(price) if side is BUY_SIDE else 0.0)
        except RiskLimitExceeded as exc:
            self._record_rejection(side, size, exc)
            raise

    def _record_rejection(self, side: Side, size: float, exc: RiskLimitExceeded) -> None:
        rejection = RiskRejection(ts=self.clock.now_ns(), symbol=self.symbol, side=side, size=size,
                                  failed_checks=tuple(exc.failed_checks))
        self.rejections.append(rejection)
        if self.bus.has_subscribers("risk.rejected"):
            self.bus.publish("risk.rejected", rejection)

    # -- creating orders -------------------------------------------------------------------------

    def committed_cash(self, price: float) -> float:
        """Quote currency the open BUY orders may still spend (estimated at `price` where unpriced)."""
        total = 0.0
        for o in self.open.values():
            if o.side is BUY_SIDE:
                quote = o.metadata.get("quote")
                total += float(quote) if quote is not None else o.remaining * (o.price or price)
        return total

    def committed_buy_base(self, price: float, *, excluding: Order | None = None) -> float:
        """Base units the open BUY orders (other than `excluding`) may still buy, quote-sized ones at `price`."""
        total = 0.0
        for o in self.open.values():
            if o.side is BUY_SIDE and o is not excluding:
                quote = o.metadata.get("quote")
                total += float(quote) / price if quote is not None and o.status is ARMED_STATUS else o.remaining
        return total

    def committed_base(self) -> float:
        """Base units the open SELL orders may still sell."""
        return sum(o.remaining for o in self.open.values() if o.side is SELL_SIDE)

    def trailing_state(self, order: Order) -> TrailingState | None:
        for st in self.trailing:
            if st.order is order:
                return st
        return None

    def open_entries(self) -> int:
        return len([o for o in self.open.values() if o.side is BUY_SIDE]) + len(self.portfolio.lots)

    def _new_order(self, side: Side, otype: OrderType, size: float, *, price: float | None = None,
                   trail: float | None = None, metadata: dict[str, str | float | int | bool | None] | None = None
                   ) -> Order:
        self._seq += 1
        oid = f"{self.run_id}-{self._seq}"
        order = Order(id=oid, client_order_id=f"trdr-{oid}", symbol=self.symbol, side=side, type=otype,
                      size=size, created_ts=self.clock.now_ns(), price=price, trail=trail,
                      metadata=metadata or {})
        self.orders[oid] = order
        self.open[oid] = order
        if self.repo is not None:
            self.repo.insert_order(order)  # write-ahead: stored before anything is sent
        return order

    def place_trailing(self, side: Side, *, price: float, trail: float, size: float | None = None,
                       quote: float | None = None, reason: str = "", expires_ns: int | None = None,
                       metadata: dict[str, str | float | int | bool | None] | None = None) -> Order:
        """Arm a trailing order at the current `price`. Sized in base units (`size`) or quote (`quote`, BUY)."""
        if (size is None) == (quote is None):
            raise ValueError("give exactly one of size or quote")
        if quote is not None and side is not Side.BUY:
            raise ValueError("quote sizing is for BUY orders")
        if not 0.0 < trail < 1.0:
            raise ValueError(f"trail distance must be a fraction between 0 and 1, got {trail}")
        # a quote-sized BUY's base size is an estimate until it fires (and is floored then)
        est = self._sized(size) if size is not None else quote / price  # type: ignore[operator]
        self._risk_check(side, est, price)
        meta = dict(metadata or {})
        if quote is not None:
            meta["quote"] = quote
        if reason:
            meta["reason"] = reason
        order = self._new_order(side, OrderType.TRAILING, est, trail=trail, metadata=meta)
        if expires_ns is None and self.max_duration_ns is not None:
            expires_ns = order.created_ts + self.max_duration_ns
        if expires_ns is not None:
            self.expiring = True
        state = TrailingState(order, price, trail, improvement=self.improvement, expires_ns=expires_ns)
        self.fsm.apply(order, OrderStatus.ARMED, "armed")
        self.trailing.append(state)
        return order

    def place_market(self, side: Side, size: float, *, price: float, reason: str = "",
                     metadata: dict[str, str | float | int | bool | None] | None = None) -> Order:
        """A market order (taker). `metadata` is kept on the order (e.g. the grid levels it stocks)."""
        size = self._sized(size)
        self._risk_check(side, size, price)
        meta = dict(metadata or {})
        if reason:
            meta["reason"] = reason
        order = self._new_order(side, OrderType.MARKET, size, metadata=meta or None)
        self._send(order)
        return order

    def place_limit(self, side: Side, size: float, limit: float, *, reason: str = "",
                    metadata: dict[str, str | float | int | bool | None] | None = None) -> Order:
        """A resting post-only limit order (maker). `metadata` is kept on the order (e.g. its grid level)."""
        size = self._sized(size)
        self._risk_check(side, size, limit)
        if self.increments is not None:
            limit = float(self.increments.round_price(limit, side))
        meta: dict[str, str | float | int | bool | None] = {**(metadata or {}), "post_only": True}
        if reason:
            meta["reason"] = reason
        order = self._new_order(side, LIMIT_ORDER, size, price=limit, metadata=meta)
        if self.constraints is not None and self.constraints.limit_max_duration_ns is not None:
            self._resting_expiry[order.id] = order.created_ts + self.constraints.limit_max_duration_ns
        self._send(order)
        return order

    def cancel(self, order: Order, reason: str = "cancelled") -> None:
        if order.status not in OPEN:
            return
        for k, st in enumerate(self.trailing):
            if st.order is order:
                del self.trailing[k]
                self._finish(order, OrderStatus.CANCELLED, reason)
                return
        if order.status is OrderStatus.PENDING or order.status is OrderStatus.ARMED:  # never sent
            self._finish(order, OrderStatus.CANCELLED, reason)
            return
        order.metadata["cancel_reason"] = reason  # the executor's CANCELLED report carries it
        if self._cancel_now is not None:
            self._cancel_now(order)
        else:
            self._spawn(self.executor.cancel(order))

    def cancel_all(self, reason: str = "cancelled") -> None:
        for order in list(self.open.values()):
            self.cancel(order, reason)

    # -- price updates ---------------------------------------------------------------------------

    def on_prices(self, prices: tuple[float, ...]) -> None:
        """Run every armed trailing order along this bar's price path; fire the ones that trigger."""
        fired: list[tuple[TrailingState, float]] | None = None
        for st in self.trailing:
            px = walk_path(st, prices)
            if px is not None:
                if fired is None:
                    fired = []
                fired.append((st, px))
        if fired is not None:
            for st, px in fired:
                self.trailing.remove(st)
                self._fire(st, px)

    def on_price(self, price: float) -> None:
        """One price (the `close` model, or a tick): the common case, without building a path."""
        fired: list[TrailingState] | None = None
        for st in self.trailing:
            if st.update(price):
                if fired is None:
                    fired = []
                fired.append(st)
        if fired is not None:
            for st in fired:
                self.trailing.remove(st)
                self._fire(st, price)

    def expire(self, now_ns: int) -> None:
        for st in [s for s in self.trailing if s.expires_ns is not None and s.expires_ns <= now_ns]:
            self.trailing.remove(st)
            self._finish(st.order, OrderStatus.EXPIRED, "time limit reached")
        if self._resting_expiry:
            for oid, when in list(self._resting_expiry.items()):
                order = self.orders[oid]
                if order.status not in OPEN:
                    del self._resting_expiry[oid]
                elif when <= now_ns:
                    del self._resting_expiry[oid]
                    self.cancel(order, "time limit reached")
        for hook in self.time_hooks:
            hook(now_ns)
        if self.constraints is not None:
            started = self.constraints.became_blocked(now_ns)
            if started:
                for order in [o for o in self.open.values() if o.side is Side.BUY]:
                    self.cancel(order, started)

    def _fire(self, st: TrailingState, price: float) -> None:
        order = st.order
        quote = order.metadata.get("quote")
        if order.side is Side.BUY:
            # the limits may have been hit since the order was armed: a BUY is checked again as it fires
            size = self._on_step(float(quote) / price) if quote is not None else order.size
            if not size > 0.0:
                self._finish(order, OrderStatus.CANCELLED, "quote buys less than the product's size step")
                return
            try:
                if self.constraints is not None:
                    self._entry_gate()
                entries = self.open_entries() - 1 if self.risk.counts_entries else 0
                self.risk.check(Side.BUY, size, price, open_entries=entries,
                                buying=self.committed_buy_base(price, excluding=order))
            except RiskLimitExceeded as exc:
                self._record_rejection(Side.BUY, size, exc)
                self._finish(order, OrderStatus.CANCELLED, "risk: " + ", ".join(exc.failed_checks))
                return
            order.size = size
        order.price = price
        order.metadata["trigger"] = st.trigger
        self._place_smartly(order)
        self._send(order)

    def _place_smartly(self, order: Order) -> None:
        """PRD §3.4: with a known book wider than the threshold, a fired order rests as a limit at the mid
        (maker, may fill partly or not at all) instead of crossing the spread."""
        if self.smart_spread is None or self.book is None:
            return
        bid, ask = self.book
        mid = (bid + ask) / 2.0
        if not (mid > 0.0 and ask >= bid):
            return
        spread = (ask - bid) / mid
        if smart_order_type(spread, self.smart_spread) is OrderType.LIMIT:
            order.type = OrderType.LIMIT
            order.price = mid if self.increments is None else float(self.increments.round_price(mid, order.side))
            order.metadata["placement"] = f"limit at mid: spread {spread:.3%}"
            if self.max_duration_ns is not None:  # a resting order keeps a time limit too
                self._resting_expiry[order.id] = self.clock.now_ns() + self.max_duration_ns
                self.expiring = True

    def _send(self, order: Order) -> None:
        """To the executor: a new order goes PENDING→SUBMITTED, a fired trailing order ARMED→SUBMITTED
        with its fired intent (price, size, trigger) stored first (write-ahead)."""
        if order.status is PENDING_STATUS:
            self.fsm.apply(order, SUBMITTED_STATUS, "sent")
        elif order.status is OrderStatus.ARMED:
            self.fsm.apply(order, OrderStatus.SUBMITTED, "fired")
            if self.repo is not None:
                self.repo.update_order(order)
        if self._submit_now is not None:
            self._submit_now(order)
        else:
            self._spawn(self.executor.submit(order))

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for submissions and cancels in flight (async executors)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    # -- reports from the executor ---------------------------------------------------------------

    def on_report(self, report: ExecutionReport) -> None:
        order = self.orders.get(report.order_id)
        if order is None:
            raise InvalidResponse(f"execution report for unknown order {report.order_id}",
                                  hint="reports must name an order this engine created")
        if report.exchange_order_id and not order.exchange_order_id:
            order.exchange_order_id = report.exchange_order_id
        fill = report.fill
        trade = None
        status = report.status
        reason = report.reason
        if fill is not None:
            try:
                trade = self._book(order, fill, overdraw=report.at_exchange)
            except InsufficientFunds as exc:
                # the simulator filled what the account cannot pay: the exchange would have refused it
                fill = None
                status = OrderStatus.REJECTED if order.status is OrderStatus.SUBMITTED else OrderStatus.CANCELLED
                reason = f"E002 {exc.message}"
        if status is not order.status or (fill is not None and status is OrderStatus.PARTIAL):
            self.fsm.apply(order, status, reason)
        if order.status not in OPEN:
            self.open.pop(order.id, None)
        if self.repo is not None and (fill is not None or order.status not in OPEN):
            self.repo.update_order(order)
        if fill is not None:
            for listener in self.fill_listeners:
                listener(order, fill, trade)
            if (order.status is PARTIAL_STATUS
                    and order.filled_size > self.partial_fill_cancel * order.size):
                self.cancel(order, f"over {self.partial_fill_cancel:.0%} filled: remainder cancelled")

    def _book(self, order: Order, fill: Fill, *, overdraw: bool = False) -> Trade | None:
        done = order.filled_size
        filled = to_decimal(done) + to_decimal(fill.size)  # exact: the sizes are decimals on the increments
        if filled > to_decimal(order.size):
            raise StateCorruption(f"fill {fill.id} of {fill.size} exceeds what order {order.id} has left "
                                  f"({order.remaining})")
        pf = self.portfolio
        overdrawn = len(pf.overdrafts)
        trade = pf.apply_fill(fill, overdraw=overdraw)
        order.filled_size = float(filled)
        order.avg_fill_price = (order.avg_fill_price * done + fill.price * fill.size) / order.filled_size
        order.fees += fill.fee
        repo = self.repo
        if repo is not None:
            repo.insert_fill(fill, trade)
        for overdraft in pf.overdrafts[overdrawn:]:
            for listener in self.overdraft_listeners:
                listener(order, fill, overdraft)
        return trade

    def _sized(self, size: float) -> float:
        """A base size for a new order, floored to the size step; ValueError when that leaves nothing."""
        floored = self._on_step(size)
        if not floored > 0.0:
            raise ValueError(f"order size {size} {self.symbol} is below the product's size step")
        return floored

    def _on_step(self, size: float) -> float:
        """`size` floored to the product's size step (unchanged without increments)."""
        return size if self.increments is None else float(self.increments.floor_size(size))

    def _finish(self, order: Order, status: OrderStatus, reason: str) -> None:
        self.fsm.apply(order, status, reason)
        self.open.pop(order.id, None)
        if self.repo is not None:
            self.repo.update_order(order)

    def _on_transition(self, order: Order, transition: OrderTransition) -> None:
        if self.repo is not None:
            self.repo.insert_transition(order, len(order.history), transition)
        topic = order_topic(order.id)
        if self.bus.has_subscribers(topic):
            self.bus.publish(topic, OrderEvent(order=order, transition=transition))

    # -- checkpoints and restarts -----------------------------------------------------------------

    def open_state(self) -> list[dict[str, object]]:
        """What a checkpoint stores of the book: one `{"order": Order, "trailing": TrailingSnapshot}` per
        open order, `"trailing"` only for the ARMED ones."""
        out: list[dict[str, object]] = []
        trail = {id(s.order): s for s in self.trailing}
        for order in self.open.values():
            st = trail.get(id(order))
            item: dict[str, object] = {"order": order}
            if st is not None:
                item["trailing"] = TrailingSnapshot(best=st.best, anchor=st.anchor, trigger=st.trigger,
                                                    expires_ns=st.expires_ns)
            out.append(item)
        return out

    @property
    def sequence(self) -> int:
        """The number in the newest order id issued (ids are `<run_id>-<n>`); 0 before the first order."""
        return self._seq

    def restore_sequence(self, n: int) -> None:
        """Continue numbering order ids after `n` (a checkpoint's `order_seq`, or the highest number in
        the store). Never moves backwards, so no id is issued twice."""
        if n > self._seq:
            self._seq = n

    def restore_open(self, order: Order, trailing: TrailingSnapshot | None = None) -> None:
        """Put an open order from a checkpoint back into the book as it was: an ARMED order back in the
        trigger book with its trailing numbers (it fires, expires and is cancelled as before the restart),
        any other open order tracked until the executor reconciles it. Nothing is stored or published:
        the order's history already holds its transitions.

        Raises StateCorruption when the order is not open or is already tracked, when an ARMED order
        comes without its snapshot or another order with one, and ValueError when an ARMED order has no
        trail distance between 0 and 1.
        """
        if order.status not in OPEN:
            raise StateCorruption(f"order {order.id} is {order.status.value}: only open orders are restored")
        if order.id in self.orders:
            raise StateCorruption(f"order {order.id} is already tracked", hint="restore into a fresh engine")
        if (order.status is OrderStatus.ARMED) != (trailing is not None):
            raise StateCorruption(f"order {order.id} is {order.status.value} "
                                  f"{'without' if trailing is None else 'with'} a trailing snapshot",
                                  hint="exactly the ARMED orders carry their trailing state")
        if trailing is not None:
            st = TrailingState(order, trailing.best, order.trail if order.trail is not None else 0.0,
                               improvement=self.improvement, expires_ns=trailing.expires_ns)
            st.anchor = trailing.anchor
            st.trigger = trailing.trigger
            if trailing.expires_ns is not None:
                self.expiring = True
            self.trailing.append(st)
        self.orders[order.id] = order
        self.open[order.id] = order

    def adopt(self, order: Order) -> None:
        """Track `order` as the store or the exchange knows it, replacing any copy held under its id (a
        checkpoint's, which can be older): an open order is in the open book, a closed one leaves it,
        and the old copy's trailing state is dropped. Its executor reports then apply to it. An ARMED
        order adopted this way is not in the trigger book (its trailing numbers are not known): `drop`
        it, or `restore_open` it with its snapshot. Nothing is stored or published."""
        old = self.orders.get(order.id)
        if old is not None:
            self._disarm(old)
        self.orders[order.id] = order
        if order.status in OPEN:
            self.open[order.id] = order
        else:
            self.open.pop(order.id, None)

    def drop(self, order_id: str, status: OrderStatus, reason: str) -> Order:
        """Stop tracking an open order without asking the executor: `status` (CANCELLED, EXPIRED, ...) is
        applied through the state machine (stored and published like every transition) and the order
        leaves the open book and the trigger book. For orders that exist only in the engine (ARMED);
        one at the exchange is cancelled with `cancel`. Returns the order.

        Raises StateCorruption when no order `order_id` is tracked, InvalidTransition when the table
        does not allow `status` from the order's status (nothing changes then).
        """
        order = self.orders.get(order_id)
        if order is None:
            raise StateCorruption(f"order {order_id} is not tracked", hint="adopt or restore it first")
        self._finish(order, status, reason)
        self._disarm(order)
        return order

    def _disarm(self, order: Order) -> None:
        """Take `order` out of the trigger book, if it is there."""
        st = self.trailing_state(order)
        if st is not None:
            self.trailing.remove(st)

