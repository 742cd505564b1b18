"""CoinbaseExecutor: the live Executor. Idempotent, write-ahead, crash-only.

Sending an order (invariant 4: no order is ever sent twice, no fill is ever lost):

1. The engine has stored the order with its `client_order_id` before calling `submit`.
2. The exact request (Decimal strings rounded to the product's increments) is written to the
   outbox (`store/outbox.py`, table `exchange_outbox`), state `sending`, before anything leaves the machine.
3. `POST /orders`. If the answer is lost (reset, timeout, 5xx, 429), the retry first looks the order
   up by `client_order_id`; only when the exchange does not have it is the same request sent again
   (with the same `client_order_id`, which Coinbase also de-duplicates).
4. If every retry fails the outbox row becomes `failed` and a recovery loop retries it periodically
   (look up first, then resend) — the order is never silently dropped.
5. Fills come from `GET /orders/historical/fills`, triggered by the `user` WebSocket channel and by a
   polling loop; each exchange trade id is reported once (also across restarts: the store's fills
   table is consulted). An order the exchange reports final while its listed fills add up to less
   than its filled size stays tracked until they are listed (Coinbase can read FILLED first).
6. Whenever the exchange's id for an order becomes known (answer, lookup, user channel), the outbox
   row is `accepted` before any of its fills is reported.

`reconcile(known_open)` at start-up asks the exchange about every order the engine believes open and
returns reports for what happened while trdr was down. A `sending` or `failed` row the exchange does
not list (yet: new orders can be listed seconds late) is looked up again and re-sent with the same
`client_order_id` by the recovery loop; the exchange answers a repeat with the order it has.

Exchange rejections (a `success: false` answer or an HTTP 4xx) are classified by `failure_kind`:
transient ones (the matching engine busy, order entry paused) are retried with backoff under the same
`client_order_id`; a precision rejection (INVALID_SIZE_PRECISION, INVALID_PRICE_PRECISION) re-reads the
product, and when its increments changed the request is rounded again, written ahead again and re-sent;
everything else is permanent: the outbox row becomes `rejected`, the engine gets one REJECTED report
and the operator one warning event — never a blind retry. After INSUFFICIENT_FUND, new orders of that
side are refused locally (not sent) for a hold that starts at 30 s and doubles up to 15 min until an
order of that side is accepted again. The product's rules are also re-read every `product_refresh_s`.
Retries, sends kept for recovery, recoveries, rejections and rule changes are operator events
(`core/opevents.py`).

`cancel(order)` follows the order until it is final — cancelled, filled, or never placed — looking it
up by `client_order_id` and retrying with backoff while the exchange does not list it; it never raises.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any, Literal

from trdr_tui.core.clock import NS_PER_SECOND, Clock, WallClock
from trdr_tui.core.engine_api import ExecutionReport, ReportHandler
from trdr_tui.core.errors import InsufficientFunds, RejectError, RetryError, TrdrError
from trdr_tui.core.opevents import OperatorEvents
from trdr_tui.core.timefmt import iso_utc
from trdr_tui.core.types import Candle, Fill, Liquidity, Order, OrderStatus, OrderType, Side, Tick
from trdr_tui.exchange.coinbase_auth import JwtSigner
from trdr_tui.exchange.coinbase_models import (
    ApiFill,
    ApiOrder,
    InvalidOrderSize,
    Product,
    limit_gtc,
    market_ioc,
    parse_time_ns,
    stop_limit_gtc,
)
from trdr_tui.exchange.coinbase_rest import CoinbaseRest, ExchangeRejected, OrderNotFound, RetryPolicy
from trdr_tui.exchange.coinbase_ws import RECONNECT, Envelope, WsConnection
from trdr_tui.store.db import Store
from trdr_tui.store.fills import stored_fill_ids
from trdr_tui.store.outbox import Outbox
from trdr_tui.trading.sizing import to_decimal

CAPABILITIES = frozenset({
    "market_ioc", "limit_gtc_post_only", "limit_gtd", "stop_limit_gtc", "edit_limit_gtc", "batch_cancel",
    "client_order_id_dedupe", "user_channel", "reconcile",
})
TERMINAL = {"FILLED": OrderStatus.FILLED, "CANCELLED": OrderStatus.CANCELLED, "EXPIRED": OrderStatus.EXPIRED,
            "FAILED": OrderStatus.REJECTED}

# Coinbase's order failure reasons (NewOrderFailureReason; docs/coinbase.md). Transient: the exchange
# refused for a moment, the same request may pass later. Precision: the product's increments may have
# changed. Everything else, and any reason not listed, is permanent: retrying the same request as it is
# cannot succeed (INSUFFICIENT_FUND, INVALID_LIMIT_PRICE_POST_ONLY, INVALID_LIMIT_PRICE,
# UNSUPPORTED_ORDER_CONFIGURATION, UNTRADABLE_PRODUCT, LIMIT_PRICE_TOO_FAR_FROM_MARKET, size too small…).
TRANSIENT_REASONS = frozenset({"UNKNOWN_FAILURE_REASON", "COMMANDER_REJECTED_NEW_ORDER", "ORDER_ENTRY_DISABLED",
                               "INVALID_NO_LIQUIDITY"})
PRECISION_REASONS = frozenset({"INVALID_SIZE_PRECISION", "INVALID_PRICE_PRECISION"})
HOLD_REASONS = frozenset({"INSUFFICIENT_FUND", "INSUFFICIENT_FUNDS"})
HOLD_INITIAL_S = 30.0
HOLD_CAP_S = 900.0
FailureKind = Literal["transient", "precision", "permanent"]


def failure_kind(reason: str) -> FailureKind:
    """How to treat an order failure reason: `transient` (retry with backoff), `precision` (re-read the
    product, re-round, re-send) or `permanent` (reject once). A `PREVIEW_` prefix is ignored."""
    reason = reason.removeprefix("PREVIEW_")
    if reason in TRANSIENT_REASONS:
        return "transient"
    if reason in PRECISION_REASONS:
        return "precision"
    return "permanent"


class CoinbaseExecutor:
    """The Executor for live trading on Coinbase (or any server speaking its protocol)."""

    name = "coinbase"
    capabilities = CAPABILITIES

    def __init__(
        self,
        rest: CoinbaseRest,
        *,
        symbol: str,
        clock: Clock | None = None,
        store: Store | None = None,
        run_id: str | None = None,
        user_ws_url: str | None = None,
        signer: JwtSigner | None = None,
        retry: RetryPolicy | None = None,
        poll_interval_s: float = 5.0,
        recovery_interval_s: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        ws_reconnect: RetryPolicy | None = None,
        listing_lag_s: float = 30.0,
        cancel_attempts: int = 12,
        events: OperatorEvents | None = None,
        product_refresh_s: float = 3600.0,
    ) -> None:
        self.rest = rest
        self.symbol = symbol
        self.clock = clock or WallClock()
        self.store = store
        self.outbox = Outbox(store, run_id)
        self.retry = retry or rest.retry
        self.poll_interval_s = poll_interval_s
        self.recovery_interval_s = recovery_interval_s
        self.listing_lag_s = listing_lag_s        # how long a new order may take to be listed
        self.cancel_attempts = cancel_attempts
        self.events = events or rest.events
        self.product_refresh_s = product_refresh_s
        self.product_reads = 0
        self.rejected: Counter[str] = Counter()       # failure reason -> orders rejected for it
        self._product_read_at = 0.0                   # loop time of the last read of the product
        self._holds: dict[Side, tuple[float, float, str]] = {}  # side -> (held until, next hold, reason)
        self._sleep = sleep
        self.product: Product | None = None
        self._on_report: ReportHandler | None = None
        self._orders: dict[str, Order] = {}           # exchange order id -> our order
        self._by_coid: dict[str, Order] = {}          # client_order_id -> our order
        self._seen_fills: set[str] = set()
        self._final: set[str] = set()                 # our order ids with a terminal report sent
        self._sync_locks: dict[str, asyncio.Lock] = {}
        self._sending: dict[str, asyncio.Event] = {}  # client_order_id -> set when its send is over
        self._cancelling: set[str] = set()            # client_order_ids being cancelled: never re-sent
        self._wake_recovery = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._spawned: set[asyncio.Task[None]] = set()
        self.user_ws: WsConnection | None = None
        if user_ws_url and signer is not None:
            self.user_ws = WsConnection(user_ws_url, ["user"], [symbol], on_message=self._on_user_message,
                                        signer=signer, silence_s=10.0, events=self.events,
                                        reconnect=ws_reconnect if ws_reconnect is not None else RECONNECT)
        self.sends = 0
        self.lookups = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def bind(self, on_report: ReportHandler) -> None:
        self._on_report = on_report

    async def start(self) -> None:
        """Load the product's trading rules and start the user channel and the polling loops."""
        if self.product is None:
            await self.refresh_product("start")
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._poll_loop(), name="coinbase-exec-poll"))
        self._tasks.append(asyncio.create_task(self._recovery_loop(), name="coinbase-exec-recovery"))
        if self.user_ws is not None:
            self._tasks.append(asyncio.create_task(self.user_ws.run(), name="coinbase-user-ws"))

    async def stop(self) -> None:
        """Stop the user channel and the polling loops. A send in flight (the recovery loop re-sending an
        order) finishes first: cancelled half way, the exchange could place the order while its answer is
        never recorded, leaving it resting there unfollowed until a restart looks it up."""
        if self.user_ws is not None:
            await self.user_ws.stop()
        while self._sending:  # bounded: each send gives up after its retries
            await asyncio.gather(*(done.wait() for done in list(self._sending.values())))
        for t in self._tasks + list(self._spawned):
            t.cancel()
        for t in self._tasks + list(self._spawned):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []

    def _report(self, order: Order, status: OrderStatus, *, fill: Fill | None = None, reason: str = "",
                exchange_order_id: str | None = None) -> None:
        """One report to the engine; a fill is marked `at_exchange` (made, so always booked)."""
        if self._on_report is None:
            raise RuntimeError("CoinbaseExecutor.bind() was not called")
        final = status in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED)
        if final:
            if order.id in self._final:
                return
            self._final.add(order.id)
        try:
            self._on_report(ExecutionReport(ts=self.clock.now_ns(), order_id=order.id,
                                            client_order_id=order.client_order_id, status=status, fill=fill,
                                            exchange_order_id=exchange_order_id, reason=reason,
                                            at_exchange=fill is not None))
        except BaseException:
            if final:
                self._final.discard(order.id)
            raise

    # -- building the request --------------------------------------------------------------------

    async def _product(self) -> Product:
        if self.product is None:
            await self.refresh_product("first order")
        assert self.product is not None
        return self.product

    async def refresh_product(self, cause: str) -> bool:
        """Read the product's trading rules again. True when its increments changed (an info event names
        the old and new steps and `cause`); every later order is rounded to the new ones. Raises the
        REST client's errors."""
        old = self.product
        new = await self.rest.get_product(self.symbol)
        self.product = new
        self.product_reads += 1
        self._product_read_at = asyncio.get_running_loop().time()
        if old is None or old.increments == new.increments:
            return False
        self.events.emit(f"product.rules:{self.symbol}", "info", "exchange",
                         f"{self.symbol} trading rules changed ({cause}): size increment "
                         f"{old.increments.base:f} -> {new.increments.base:f}, price increment "
                         f"{old.increments.price:f} -> {new.increments.price:f}",
                         base_increment=f"{new.increments.base:f}", price_increment=f"{new.increments.price:f}")
        return True

    def configuration(self, order: Order, product: Product) -> dict[str, Any]:
        """The order_configuration for an engine order, sizes floored and prices rounded to increments."""
        product.check_tradable()
        size = product.floor_size(order.remaining if order.filled_size else order.size)
        ref = to_decimal(order.price) if order.price else None
        if order.type in (OrderType.MARKET, OrderType.TRAILING):
            product.check_size(size, ref)
            return market_ioc(base_size=size)
        if order.price is None:
            raise InvalidOrderSize(f"{order.type} order {order.id} has no price")
        limit = product.round_price(order.price, order.side)
        product.check_size(size, limit)
        if order.type is OrderType.LIMIT:
            return limit_gtc(base_size=size, limit_price=limit, post_only=bool(order.metadata.get("post_only", True)))
        stop = order.metadata.get("stop_price")
        if order.type is OrderType.STOP_LIMIT and isinstance(stop, float | int):
            stop_d = product.round_price(float(stop), order.side)
            return stop_limit_gtc(base_size=size, limit_price=limit, stop_price=stop_d,
                                  stop_up=order.side is Side.BUY)
        raise InvalidOrderSize(f"order type {order.type} cannot be sent to Coinbase", hint="use MARKET or LIMIT")

    # -- Executor protocol -----------------------------------------------------------------------

    async def submit(self, order: Order) -> None:
        self._by_coid[order.client_order_id] = order
        if not self._tasks:
            with contextlib.suppress(TrdrError):  # the product loads lazily below if this fails
                await self.start()
        try:
            product = await self._product()
            config = self.configuration(order, product)
        except RejectError as exc:
            self._report(order, OrderStatus.REJECTED, reason=exc.message)
            return
        except RetryError as exc:  # could not even load the product: keep it for recovery
            self.outbox.put(order, self.symbol, {}, self.clock.now_ns())
            self.outbox.update(order.client_order_id, self.clock.now_ns(), state="failed", error=exc.message)
            return
        held = self._held(order.side)
        if held:
            self.events.emit(f"order.held:{order.side.value}", "warning", "exchange",
                             f"order {order.client_order_id} not sent: {held}", order_id=order.id)
            self._report(order, OrderStatus.REJECTED, reason=f"not sent: {held}")
            return
        self.outbox.put(order, self.symbol, config, self.clock.now_ns())  # write-ahead
        await self._send_tracked(order, config, first_attempt=0)

    async def _send_tracked(self, order: Order, config: dict[str, Any], *, first_attempt: int) -> None:
        """`_send`, marked in flight so a cancel waits for its outcome first."""
        done = asyncio.Event()
        self._sending[order.client_order_id] = done
        try:
            await self._send(order, config, first_attempt=first_attempt)
        finally:
            done.set()
            if self._sending.get(order.client_order_id) is done:
                del self._sending[order.client_order_id]

    async def _send(self, order: Order, config: dict[str, Any], *, first_attempt: int) -> None:
        coid = order.client_order_id
        last_error = ""
        reread = False  # the product is re-read at most once per send
        transient = 0   # transient rejections retried so far
        for attempt in range(first_attempt, first_attempt + self.retry.max_retries + 1):
            try:
                if attempt > 0:
                    existing = await self._lookup(order)
                    if existing is not None:
                        await self._accepted(order, existing.order_id, attempt)
                        return
                self.sends += 1
                resp = await self.rest.create_order(client_order_id=coid, product_id=self.symbol,
                                                    side=order.side.value, configuration=config)
            except RetryError as exc:
                last_error = exc.message
                await self._sleep(self.retry.delay(min(attempt - first_attempt, 10)))
                continue
            except (InsufficientFunds, RejectError) as exc:
                reason = "INSUFFICIENT_FUND" if isinstance(exc, InsufficientFunds) else (
                    exc.reason if isinstance(exc, ExchangeRejected) and exc.reason else "INVALID_REQUEST")
                self._reject(order, reason, exc.message, attempt + 1)
                return
            except TrdrError as exc:  # auth or an undecodable answer: unknown outcome, keep for recovery
                last_error = exc.message
                break
            if resp.success and resp.success_response is not None:
                await self._accepted(order, resp.success_response.order_id, attempt + 1)
                return
            reason = resp.error_response.reason if resp.error_response else "UNKNOWN_FAILURE_REASON"
            if reason == "DUPLICATE_CLIENT_ORDER_ID":
                # the exchange has this order for sure, even if it does not list it yet
                await self._adopt_duplicate(order, attempt + 1)
                return
            message = resp.error_response.message if resp.error_response else ""
            kind = failure_kind(reason)
            if kind == "precision" and not reread:
                reread = True
                rounded = await self._reround(order, config, reason)
                if rounded is not None:
                    config = rounded
                    continue
            elif kind == "transient" and transient < self.retry.max_retries:
                delay = self.retry.delay(transient)
                transient += 1
                self.events.emit(f"order.retry:{reason}", "warning", "exchange",
                                 f"order {coid} refused for now ({reason}: {message}); retry {transient} in "
                                 f"{delay:.2f} s", order_id=order.id, reason=reason)
                await self._sleep(delay)
                continue
            self._reject(order, reason, message, attempt + 1)
            return
        self.events.emit("order.kept", "error", "exchange",
                         f"order {coid} could not be sent ({last_error}); kept for recovery: it is looked up "
                         f"and re-sent every {self.recovery_interval_s:g} s", order_id=order.id)
        self.outbox.update(coid, self.clock.now_ns(), state="failed", error=last_error,
                           attempts=first_attempt + self.retry.max_retries + 1)

    def _reject(self, order: Order, reason: str, message: str, attempts: int) -> None:
        """A permanent rejection: the outbox row is closed, one warning event, one REJECTED report."""
        self.outbox.update(order.client_order_id, self.clock.now_ns(), state="rejected", error=reason,
                           attempts=attempts)
        self.rejected[reason] += 1
        note = ""
        if reason in HOLD_REASONS:
            note = f"; new {order.side.value} orders held for {self._hold(order.side, reason):g} s"
        self.events.emit(f"order.rejected:{reason}", "warning", "exchange",
                         f"order {order.client_order_id} ({order.side.value} {order.type.value}) rejected by the "
                         f"exchange: {reason}{': ' + message if message else ''}; not retried{note}",
                         order_id=order.id, reason=reason)
        self._report(order, OrderStatus.REJECTED, reason=f"{reason}: {message}".strip(": "))

    def _hold(self, side: Side, reason: str) -> float:
        """Refuse new orders of `side` locally for a while (30 s, doubling to 15 min); returns the hold."""
        now = asyncio.get_running_loop().time()
        _, length, _ = self._holds.get(side, (0.0, HOLD_INITIAL_S, reason))
        self._holds[side] = (now + length, min(length * 2.0, HOLD_CAP_S), reason)
        return length

    def _held(self, side: Side) -> str:
        """Why orders of `side` are held now, or "" when they may be sent."""
        hold = self._holds.get(side)
        if hold is None:
            return ""
        left = hold[0] - asyncio.get_running_loop().time()
        return f"{hold[2]} from the exchange, held {left:.0f} s more" if left > 0 else ""

    async def _reround(self, order: Order, config: dict[str, Any], reason: str) -> dict[str, Any] | None:
        """After a precision rejection: the product re-read, and the request rounded to its new increments
        and written ahead again. None when the rules did not change (or cannot be read or met)."""
        try:
            await self.refresh_product(f"{reason} for {order.client_order_id}")
            rounded = self.configuration(order, await self._product())
        except TrdrError:
            return None
        if rounded == config:
            return None
        self.outbox.reconfigure(order.client_order_id, rounded, self.clock.now_ns())  # write-ahead
        return rounded

    async def _adopt_duplicate(self, order: Order, attempts: int) -> None:
        for n in range(self.retry.max_retries + 1):
            existing = await self._lookup_safely(order)
            if existing is not None:
                await self._accepted(order, existing.order_id, attempts)
                return
            await self._sleep(self.retry.delay(n))
        # it exists but cannot be seen yet: keep it for the recovery loop (which looks up before sending)
        self.outbox.update(order.client_order_id, self.clock.now_ns(), state="failed",
                           error="DUPLICATE_CLIENT_ORDER_ID but not listed yet", attempts=attempts)

    async def _lookup(self, order: Order) -> ApiOrder | None:
        self.lookups += 1
        since = iso_utc(order.created_ts - 3600 * NS_PER_SECOND)
        return await self.rest.find_order_by_client_id(order.client_order_id, self.symbol, since)

    async def _lookup_safely(self, order: Order) -> ApiOrder | None:
        try:
            return await self._lookup(order)
        except TrdrError:
            return None

    def _track(self, order: Order, exchange_id: str) -> None:
        """Follow `order` as the exchange's `exchange_id`; its outbox row becomes `accepted` first."""
        self._orders[exchange_id] = order
        rec = self.outbox.get(order.client_order_id)
        if rec is not None and (rec.state != "accepted" or rec.exchange_order_id != exchange_id):
            self.outbox.update(order.client_order_id, self.clock.now_ns(), state="accepted",
                               exchange_order_id=exchange_id, error=None)

    async def _accepted(self, order: Order, exchange_id: str, attempts: int) -> None:
        self._orders[exchange_id] = order
        self._holds.pop(order.side, None)
        self.outbox.update(order.client_order_id, self.clock.now_ns(), state="accepted",
                           exchange_order_id=exchange_id, attempts=attempts)
        self._report(order, order.status if order.status is not OrderStatus.PENDING else OrderStatus.SUBMITTED,
                     exchange_order_id=exchange_id)
        with contextlib.suppress(TrdrError):
            await self.sync_order(exchange_id)

    async def cancel(self, order: Order) -> None:
        """Cancel `order` and follow it until it is final: cancelled, filled (its fills reported) or
        never placed. A send still in flight ends first; an order the exchange does not list (yet) is
        looked up by `client_order_id` again with backoff, for `listing_lag_s` before it counts as
        never placed. Exchange trouble is retried with backoff for at least `cancel_attempts` tries
        and `listing_lag_s`, then logged (the order stays tracked); nothing is raised, so a cancel
        never stops the engine."""
        coid = order.client_order_id
        self._cancelling.add(coid)
        try:
            sending = self._sending.get(coid)
            if sending is not None:
                await sending.wait()
            loop = asyncio.get_running_loop()
            started = loop.time()
            attempt = 0
            while order.id not in self._final:
                try:
                    if await self._cancel_once(order, started):
                        return
                except TrdrError as exc:
                    self.events.emit("order.cancel.retry", "warning", "exchange",
                                     f"cancel {coid}: {exc.message}; retrying", order_id=order.id)
                attempt += 1
                if attempt >= self.cancel_attempts and loop.time() - started >= self.listing_lag_s:
                    self.events.emit("order.cancel.unconfirmed", "error", "exchange",
                                     f"cancel {coid} not confirmed after {attempt} tries; the order stays tracked",
                                     order_id=order.id)
                    return
                await self._sleep(self.retry.delay(min(attempt - 1, 10)))
        finally:
            self._cancelling.discard(coid)

    async def _cancel_once(self, order: Order, started: float) -> bool:
        """One round: find the order, cancel it, read its state. True once it is final."""
        eid = order.exchange_order_id or self._exchange_id(order)
        if eid is None:
            rec = self.outbox.get(order.client_order_id)
            if rec is None or rec.state == "rejected":
                self._report(order, OrderStatus.CANCELLED, reason="cancelled before it was sent")
                return True
            existing = await self._lookup(order)
            if existing is None:
                if asyncio.get_running_loop().time() - started < self.listing_lag_s:
                    return False  # the exchange may list it late: look again
                self.outbox.update(order.client_order_id, self.clock.now_ns(), state="rejected",
                                   error="cancelled: not at the exchange")
                self._report(order, OrderStatus.CANCELLED,
                             reason=f"cancelled: not at the exchange ({self.listing_lag_s:g} s of look-ups)")
                return True
            eid = existing.order_id
        if order.id not in self._final:
            self._track(order, eid)
        await self.rest.cancel_orders([eid])  # a failure reason (already final, not listed yet) is read below
        await self.sync_order(eid)
        return order.id in self._final
    def _exchange_id(self, order: Order) -> str | None:
        for eid, o in self._orders.items():
            if o is order or o.id == order.id:
                return eid
        rec = self.outbox.get(order.client_order_id)
        return rec.exchange_order_id if rec else None

    def on_candle(self, candle: Candle) -> None:
        """Live: the exchange matches; nothing to do."""

    def on_tick(self, tick: Tick) -> None:
        """Live: the exchange matches; nothing to do."""

    # -- fills and status ------------------------------------------------------------------------

    async def sync_order(self, exchange_id: str) -> None:
        """Report every new fill of one order, then its final status. Safe to call any number of times."""
        order = self._orders.get(exchange_id)
        if order is None:
            return
        lock = self._sync_locks.setdefault(exchange_id, asyncio.Lock())
        async with lock:
            api = await self.rest.get_order(exchange_id)
            fills = await self.rest.list_fills(order_ids=[exchange_id])
            self._apply(order, api, fills)

    def _apply(self, order: Order, api: ApiOrder, fills: list[ApiFill]) -> None:
        new = sorted((f for f in fills if f.trade_id not in self._seen_fills), key=lambda f: f.trade_time)
        terminal = TERMINAL.get(api.status.upper())
        if terminal is not None and not _all_fills_listed(api, fills):
            terminal = None  # final at the exchange, but some fills are not listed yet: keep following it
        for i, f in enumerate(new):
            if f.trade_id in self._seen_fills:  # a concurrent sync got there first
                continue
            last = i == len(new) - 1
            status = OrderStatus.FILLED if (last and terminal is OrderStatus.FILLED) else OrderStatus.PARTIAL
            fill = Fill(id=f.trade_id, order_id=order.id, client_order_id=order.client_order_id, symbol=order.symbol,
                        side=order.side, price=float(f.price), size=float(f.size), fee=float(f.commission),
                        liquidity=Liquidity.MAKER if f.liquidity_indicator.upper() == "MAKER" else Liquidity.TAKER,
                        ts=_fill_ts(f))
            # marked seen only once the engine took it: a fill it refused is offered again, never dropped
            self._seen_fills.add(f.trade_id)
            try:
                self._report(order, status, fill=fill, exchange_order_id=api.order_id)
            except BaseException:
                self._seen_fills.discard(f.trade_id)
                raise
        if terminal is not None and terminal is not OrderStatus.FILLED:
            reason = api.cancel_message or api.reject_reason or api.status.lower()
            self._report(order, terminal, reason=reason, exchange_order_id=api.order_id)
        elif terminal is OrderStatus.FILLED and not new and order.id not in self._final:
            # every fill already booked (e.g. before a restart) but the final status was not
            self._report(order, OrderStatus.FILLED, reason="filled", exchange_order_id=api.order_id)
        if terminal is not None:
            self._orders.pop(api.order_id, None)

    def _on_user_message(self, env: Envelope) -> None:
        if env.channel != "user":
            return
        for ev in env.events:
            for o in ev.get("orders") or []:
                eid = o.get("order_id")
                coid = o.get("client_order_id")
                if eid and eid not in self._orders and coid in self._by_coid:
                    order = self._by_coid[coid]
                    if order.id not in self._final:
                        self._track(order, eid)
                if eid in self._orders:
                    self._spawn(self._sync_quietly(eid))

    async def _sync_quietly(self, eid: str) -> None:
        try:
            await self.sync_order(eid)
        except TrdrError as exc:
            self.events.emit("order.sync", "warning", "exchange", f"sync of order {eid} failed: {exc.message}")

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    async def _poll_loop(self) -> None:
        """Backup for the user channel: sync every order we track."""
        while True:
            await asyncio.sleep(self.poll_interval_s)
            await self.sync_all()
            if asyncio.get_running_loop().time() - self._product_read_at >= self.product_refresh_s:
                try:
                    await self.refresh_product("scheduled re-read")
                except TrdrError as exc:
                    self.events.emit("product.read", "warning", "exchange",
                                     f"{self.symbol} trading rules could not be re-read: {exc.message}")

    async def sync_all(self) -> None:
        """Sync every order still followed (failures logged, not raised)."""
        for eid in list(self._orders):
            await self._sync_quietly(eid)

    async def _recovery_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_recovery.wait(), self.recovery_interval_s)
            self._wake_recovery.clear()
            try:
                await self.retry_failed()
            except TrdrError as exc:
                self.events.emit("order.recovery.failed", "warning", "exchange",
                                 f"recovery of sends kept for recovery failed: {exc.message}")

    async def retry_failed(self) -> int:
        """Retry orders whose sending failed for good earlier: look up first, then resend. Returns how many."""
        n = 0
        for rec in self.outbox.failed():
            order = self._by_coid.get(rec.client_order_id)
            if (order is None or order.id in self._final or rec.client_order_id in self._cancelling
                    or rec.client_order_id in self._sending):
                continue
            n += 1
            config = rec.configuration or self.configuration(order, await self._product())
            self.outbox.update(order.client_order_id, self.clock.now_ns(), state="sending")
            await self._send_tracked(order, config, first_attempt=max(rec.attempts, 1))
            after = self.outbox.get(order.client_order_id)
            if after is not None and after.state == "accepted":
                self.events.emit("order.recovered", "info", "exchange",
                                 f"order {order.client_order_id} kept for recovery is at the exchange "
                                 f"({after.exchange_order_id})", order_id=order.id)
        return n

    async def settle(self) -> None:
        """Wait for spawned syncs (tests)."""
        while self._spawned:
            await asyncio.gather(*list(self._spawned), return_exceptions=True)

    # -- start-up reconciliation -----------------------------------------------------------------

    async def reconcile(self, known_open: list[Order]) -> list[ExecutionReport]:
        """Ask the exchange about every order the engine thinks is open; return what happened meanwhile.

        Reports are returned, not sent to the bound handler, so the engine applies them in order.
        Fills already in the store are not reported again.
        """
        reports: list[ExecutionReport] = []
        handler = self._on_report
        self._on_report = reports.append
        try:
            if self.store is not None:
                self._seen_fills.update(stored_fill_ids(self.store, [o.id for o in known_open]))
            for order in known_open:
                await self._reconcile_one(order)
        finally:
            self._on_report = handler
        if self.outbox.failed():
            self._wake_recovery.set()  # look the unlisted ones up again, then re-send them
        return reports

    async def _reconcile_one(self, order: Order) -> None:
        self._by_coid[order.client_order_id] = order
        if order.status is OrderStatus.ARMED:
            return  # in the engine's own trigger book, never sent
        rec = self.outbox.get(order.client_order_id)
        eid = order.exchange_order_id or (rec.exchange_order_id if rec else None)
        api: ApiOrder | None = None
        if eid:
            with contextlib.suppress(OrderNotFound):
                api = await self.rest.get_order(eid)
        if api is None:
            api = await self._lookup(order)
        if api is None and eid:
            self._orders[eid] = order  # the exchange gave us its id but does not list it yet: follow it
            return
        if api is None and rec is not None and rec.state in ("sending", "failed"):
            # the request may have arrived and be listed late: the recovery loop looks it up again
            # and re-sends the same client_order_id (the exchange answers with the order it has)
            self.outbox.update(order.client_order_id, self.clock.now_ns(), state="failed",
                               error="not listed at restart: look up again, then re-send")
            return
        if api is None:
            # never written ahead (or refused): the exchange never received it
            if rec is not None:
                self.outbox.update(order.client_order_id, self.clock.now_ns(), state="rejected",
                                   error="not at the exchange after restart")
            self._report(order, OrderStatus.CANCELLED, reason="never reached the exchange (found at restart)")
            return
        self._track(order, api.order_id)
        if order.exchange_order_id is None:
            self._report(order, order.status, exchange_order_id=api.order_id)
        fills = await self.rest.list_fills(order_ids=[api.order_id])
        self._apply(order, api, fills)


def _all_fills_listed(api: ApiOrder, fills: list[ApiFill]) -> bool:
    """Whether the listed fills of an order add up to its `filled_size` (base currency)."""
    try:
        filled = Decimal(api.filled_size or "0")
    except ArithmeticError:
        return True  # no usable filled size: trust the listing
    listed = sum((f.size / f.price if f.size_in_quote else f.size for f in fills), Decimal(0))
    return listed >= filled


def _fill_ts(f: ApiFill) -> int:
    try:
        return parse_time_ns(f.trade_time)
    except TrdrError:
        return 0
