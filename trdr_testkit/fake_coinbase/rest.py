"""The REST API: routes, the middleware (faults, JWT, rate limit, request log) and the handlers."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NoReturn

from aiohttp import web
from aiohttp.typedefs import Handler

from trdr_testkit.fake_coinbase.auth import JwtGate
from trdr_testkit.fake_coinbase.faults import Drop, FaultInjector
from trdr_testkit.fake_coinbase.matching import FakeOrder, InvalidRequest, Market, Reject
from trdr_testkit.fake_coinbase.reference import DataProduct
from trdr_testkit.fake_coinbase.wire import PREFIX, WS_MARKET_PATH, WS_USER_PATH, dec, iso
from trdr_tui.core.clock import NS_PER_SECOND
from trdr_tui.core.types import Candle

GRAN_SECONDS = {"ONE_MINUTE": 60, "FIVE_MINUTE": 300, "FIFTEEN_MINUTE": 900, "THIRTY_MINUTE": 1800,
                "ONE_HOUR": 3600, "TWO_HOUR": 7200, "FOUR_HOUR": 14400, "SIX_HOUR": 21600, "ONE_DAY": 86400}
MAX_CANDLES = 350
TRANSFERS_PATH = "/fake/transfers"  # test control: deposits and withdrawals outside trading


class RateLimiter:
    """Coinbase's private-endpoint allowance: `limit_per_s` requests per wall-clock second (`now_ns`,
    UNIX nanoseconds); `rate_limited` counts the requests refused."""

    def __init__(self, limit_per_s: int, now_ns: Callable[[], int]) -> None:
        self.limit_per_s = limit_per_s
        self.rate_limited = 0
        self._now_ns = now_ns
        self._window: tuple[int, int] = (0, 0)  # (second, requests in it)

    def take(self) -> bool:
        """Count one request; False (and one refusal counted) when it is over this second's allowance."""
        sec = self._now_ns() // NS_PER_SECOND
        start, used = self._window
        if start != sec:
            start, used = sec, 0
        used += 1
        self._window = (start, used)
        if used > self.limit_per_s:
            self.rate_limited += 1
            return False
        return True

    def stamp(self, resp: web.StreamResponse) -> None:
        """Add the `x-ratelimit-*` headers for the current window."""
        _sec, used = self._window
        resp.headers["x-ratelimit-limit"] = str(self.limit_per_s)
        resp.headers["x-ratelimit-remaining"] = str(max(self.limit_per_s - used, 0))
        resp.headers["x-ratelimit-reset"] = "1"


class RestApi:
    """The Advanced Trade REST endpoints over a `Market`.

    The time endpoint reports the market's time (`Market.exchange_now_ns`); `on_order` is called with each
    order a request changed (the user channel's update). For tests: `create_posts` (client_order_id →
    POST /orders received), `requests` ((method, path without the prefix, status); status 0 when
    the connection was dropped) and `arrivals` ((`time.monotonic()` seconds when the request reached
    the server, after its transit delay, and whether the endpoint is private), one per request.
    """

    def __init__(self, *, market: Market, gate: JwtGate, injector: FaultInjector, limiter: RateLimiter,
                 on_order: Callable[[FakeOrder], None]) -> None:
        self.market = market
        self.gate = gate
        self.injector = injector
        self.limiter = limiter
        self.create_posts: dict[str, int] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.arrivals: list[tuple[float, bool]] = []
        self._on_order = on_order
        self.data_products: dict[str, DataProduct] = {}  # market-data-only products (reference.py)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register every REST endpoint under `PREFIX` (market endpoints also under `PREFIX/market`)."""
        p = PREFIX
        router.add_get(p + "/accounts", self.h_accounts)
        router.add_get(p + "/accounts/{uuid}", self.h_account)
        router.add_get(p + "/transaction_summary", self.h_fees)
        router.add_get(p + "/time", self.h_time)
        router.add_get(p + "/best_bid_ask", self.h_best_bid_ask)
        for base in (p, p + "/market"):
            router.add_get(base + "/products/{product_id}", self.h_product)
            router.add_get(base + "/products/{product_id}/candles", self.h_candles)
            router.add_get(base + "/products/{product_id}/ticker", self.h_ticker)
        router.add_post(p + "/orders", self.h_create)
        router.add_post(p + "/orders/preview", self.h_preview)
        router.add_post(p + "/orders/edit", self.h_edit)
        router.add_post(p + "/orders/batch_cancel", self.h_cancel)
        router.add_get(p + "/orders/historical/batch", self.h_list_orders)
        router.add_get(p + "/orders/historical/fills", self.h_fills)
        router.add_get(p + "/orders/historical/{order_id}", self.h_get_order)
        router.add_post(TRANSFERS_PATH, self.h_transfer)

    # -- middleware: faults, auth, rate limit ----------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every request but the WebSocket upgrades: injected faults first, then (private endpoints) the
        JWT and the rate limit, then the handler; HTTP errors become Coinbase-style JSON errors."""
        if request.path in (WS_MARKET_PATH, WS_USER_PATH):
            return await handler(request)
        if request.path == TRANSFERS_PATH:  # test control, not part of the Coinbase API
            return await handler(request)
        public = request.path.startswith(PREFIX + "/market/") or request.path == PREFIX + "/time"
        await self.injector.transit()
        self.arrivals.append((time.monotonic(), not public))
        injected = await self.injector.before_request(private=not public)
        if isinstance(injected, Drop):
            self._drop(request, injected.reason)
        if injected is not None:
            return self._answer(request, injected)
        if not public:
            problem = self.gate.check_request(request)
            if problem:
                return self._answer(request, web.json_response(
                    {"error": "UNAUTHENTICATED", "code": 16, "message": "Unauthorized", "error_details": problem},
                    status=401))
            if not self.limiter.take():
                return self._answer(request, web.json_response(
                    {"error": "RESOURCE_EXHAUSTED", "code": 8, "message": "Too many requests"}, status=429))
        try:
            resp = await handler(request)
        except ConnectionResetError:  # the client went away mid-request (a killed trdr): a normal disconnect,
            self._record(request, 0)  # not a server error with a traceback; nobody is left to answer
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=499)
        except web.HTTPException as exc:
            return self._answer(request, web.json_response(
                {"error": exc.reason.upper().replace(" ", "_"), "code": 3, "message": exc.text or exc.reason},
                status=exc.status))
        return self._answer(request, resp)

    def _answer(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        self.limiter.stamp(resp)
        self._record(request, resp.status)
        return resp

    def _record(self, request: web.Request, status: int) -> None:
        self.requests.append((request.method, request.path.removeprefix(PREFIX), status))

    def _drop(self, request: web.Request, reason: str) -> NoReturn:
        """Close the connection without an answer (logged with status 0)."""
        self._record(request, 0)
        if request.transport is not None:
            request.transport.close()
        raise ConnectionResetError(reason)

    # -- accounts, fees, time --------------------------------------------------------------------

    def _account_json(self, currency: str) -> dict[str, Any]:
        m = self.market
        hold = m.holds().get(currency, Decimal(0))
        return {
            "uuid": f"acct-{currency.lower()}", "name": f"{currency} Wallet", "currency": currency,
            "available_balance": {"value": dec(m.balances.get(currency, Decimal(0)) - hold), "currency": currency},
            "hold": {"value": dec(hold), "currency": currency}, "default": True, "active": True,
            "type": "ACCOUNT_TYPE_FIAT" if currency in ("USD", "USDC", "EUR") else "ACCOUNT_TYPE_CRYPTO",
            "ready": True, "platform": "ACCOUNT_PLATFORM_CONSUMER", "created_at": iso(m.t0),
        }

    async def h_transfer(self, request: web.Request) -> web.Response:
        """Test control: {"currency": "USD", "amount": "2500"} deposits (a negative amount withdraws)
        outside trading; answers {"currency", "balance"}, or 400 with the reason."""
        body = await request.json()
        try:
            currency, amount = str(body["currency"]), Decimal(str(body["amount"]))
            balance = self.market.transfer(currency, amount)
        except (KeyError, ArithmeticError, Reject) as exc:
            return web.json_response({"error": "INVALID_ARGUMENT", "message": str(exc)}, status=400)
        return web.json_response({"currency": currency, "balance": dec(balance)})

    async def h_accounts(self, request: web.Request) -> web.Response:
        currencies = sorted(self.market.balances)
        limit = int(request.query.get("limit", "49"))
        start = int(request.query.get("cursor") or 0)
        page = currencies[start:start + limit]
        nxt = start + limit < len(currencies)
        return web.json_response({"accounts": [self._account_json(c) for c in page], "has_next": nxt,
                                  "cursor": str(start + limit) if nxt else "", "size": len(page)})

    async def h_account(self, request: web.Request) -> web.Response:
        for c in self.market.balances:
            if f"acct-{c.lower()}" == request.match_info["uuid"]:
                return web.json_response({"account": self._account_json(c)})
        raise web.HTTPNotFound(text="account not found")

    async def h_fees(self, request: web.Request) -> web.Response:
        m = self.market
        volume = sum((f.price * f.size for f in m.fills), Decimal(0))
        return web.json_response({
            "total_volume": float(volume), "total_fees": float(sum((f.commission for f in m.fills), Decimal(0))),
            "fee_tier": {"pricing_tier": "Advanced 1", "usd_from": "0", "usd_to": "10000",
                         "taker_fee_rate": dec(m.taker_fee), "maker_fee_rate": dec(m.maker_fee),
                         "aop_from": "", "aop_to": ""},
            "advanced_trade_only_volume": float(volume), "has_promo_fee": False,
        })

    async def h_time(self, request: web.Request) -> web.Response:
        now = self.market.exchange_now_ns()  # the market's time: an accelerated market's, else the wall clock
        return web.json_response({"iso": iso(now), "epochSeconds": str(now // NS_PER_SECOND),
                                  "epochMillis": str(now // 1_000_000)})

    # -- market data -----------------------------------------------------------------------------

    def _product_json(self) -> dict[str, Any]:
        m = self.market
        return {
            "product_id": m.product_id, "price": dec(m.price), "price_percentage_change_24h": "0.5",
            "volume_24h": "1000", "base_increment": dec(m.base_increment), "quote_increment": dec(m.quote_increment),
            "price_increment": dec(m.quote_increment), "quote_min_size": dec(m.quote_min_size),
            "quote_max_size": "100000000", "base_min_size": dec(m.base_min_size), "base_max_size": "3400",
            "base_name": "Bitcoin", "quote_name": "US Dollar", "watched": False, "is_disabled": False, "new": False,
            "status": "online", "cancel_only": False, "limit_only": False, "post_only": False,
            "trading_disabled": False, "auction_mode": False, "product_type": "SPOT",
            "quote_currency_id": m.quote, "base_currency_id": m.base, "product_venue": "CBE",
        }

    async def h_product(self, request: web.Request) -> web.Response:
        other = self.data_products.get(request.match_info["product_id"])
        if other is not None:
            return web.json_response(other.product_json())
        if request.match_info["product_id"] != self.market.product_id:
            raise web.HTTPNotFound(text="product not found")
        return web.json_response(self._product_json())

    async def h_best_bid_ask(self, request: web.Request) -> web.Response:
        m = self.market
        bid, ask = m.bid_ask()
        books = [{"product_id": p, "bids": [{"price": dec(bid), "size": "1.5"}], "asks": [{"price": dec(ask), "size": "1.2"}],
                  "time": iso(m.exchange_now_ns())} for p in request.query.getall("product_ids", [])
                 if p == m.product_id]
        for p in request.query.getall("product_ids", []):
            if p in self.data_products:
                bid, ask = self.data_products[p].bid_ask()
                books.append({"product_id": p, "bids": [{"price": dec(bid), "size": "1.5"}],
                              "asks": [{"price": dec(ask), "size": "1.2"}], "time": iso(m.exchange_now_ns())})
        return web.json_response({"pricebooks": books})

    async def h_candles(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            start, end = int(q["start"]), int(q["end"])
            secs = GRAN_SECONDS[q["granularity"]]
        except (KeyError, ValueError):
            raise web.HTTPBadRequest(reason="INVALID_ARGUMENT", text="start, end and granularity are required") from None
        if (end - start) // secs > MAX_CANDLES:
            raise web.HTTPBadRequest(reason="INVALID_ARGUMENT",
                                     text=f"number of candles requested should be less than {MAX_CANDLES}")
        other = self.data_products.get(request.match_info["product_id"])
        buckets: dict[int, list[Candle]] = {}
        for c in (other or self.market).history:
            t = c.ts // NS_PER_SECOND
            if start <= t < end:
                buckets.setdefault(t - t % secs, []).append(c)
        rows = []
        for t in sorted(buckets, reverse=True):  # newest first, like the real API
            group = buckets[t]
            rows.append({"start": str(t), "low": repr(min(c.low for c in group)), "high": repr(max(c.high for c in group)),
                         "open": repr(group[0].open), "close": repr(group[-1].close),
                         "volume": repr(sum(c.volume for c in group))})
        return web.json_response({"candles": rows})

    async def h_ticker(self, request: web.Request) -> web.Response:
        m: Market | DataProduct = self.data_products.get(request.match_info["product_id"]) or self.market
        limit = int(request.query.get("limit", "100"))
        bid, ask = m.bid_ask()
        trades = list(reversed(m.market_trades[-limit:]))
        return web.json_response({"trades": trades, "best_bid": dec(bid), "best_ask": dec(ask)})

    # -- orders ----------------------------------------------------------------------------------

    @staticmethod
    def _failure(reason: str, message: str) -> web.Response:
        return web.json_response({"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON", "order_id": "",
                                  "error_response": {"error": reason, "message": message, "error_details": "",
                                                     "preview_failure_reason": "PREVIEW_" + reason,
                                                     "new_order_failure_reason": reason}})

    @staticmethod
    def _success(o: FakeOrder) -> dict[str, Any]:
        return {"success": True, "failure_reason": "UNKNOWN_FAILURE_REASON", "order_id": o.order_id,
                "success_response": {"order_id": o.order_id, "product_id": o.product_id, "side": o.side,
                                     "client_order_id": o.client_order_id},
                "order_configuration": o.config}

    def _new_order(self, coid: str, body: dict[str, Any]) -> FakeOrder:
        try:
            return self.market.new_order(coid, body)
        except InvalidRequest as bad:
            raise web.HTTPBadRequest(reason=bad.reason, text=bad.text) from None

    async def h_create(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        coid = body.get("client_order_id", "")
        if not coid:
            raise web.HTTPBadRequest(reason="INVALID_ARGUMENT", text="client_order_id is required")
        self.create_posts[coid] = self.create_posts.get(coid, 0) + 1
        existing = self.market.order_by_client_id(coid)
        if existing is not None:
            if self.injector.faults.duplicate_reject:
                self.injector.fire("duplicate_reject")
                return self._failure("DUPLICATE_CLIENT_ORDER_ID", "client order id already used")
            return web.json_response(self._success(existing))
        if body.get("product_id") != self.market.product_id:
            return self._failure("UNTRADABLE_PRODUCT", "unknown product")
        if self.injector.take("reject_create"):
            reason = self.injector.faults.reject_reason
            return self._failure(reason, "Insufficient balance in source account" if reason == "INSUFFICIENT_FUND"
                                 else f"fault: {reason}")
        try:
            order = self._new_order(coid, body)
        except Reject as rej:
            return self._failure(rej.reason, rej.message)
        self.market.place(order)
        self._on_order(order)
        if self.injector.take("lose_create_response"):
            self._drop(request, "fault: response lost")
        if self.injector.take("stall_create_response"):
            await asyncio.sleep(self.injector.faults.timeout_s)
        return web.json_response(self._success(order))

    async def h_preview(self, request: web.Request) -> web.Response:
        m = self.market
        body = await request.json()
        try:
            o = self._new_order("preview", body)
        except Reject as rej:
            return web.json_response({"order_total": "0", "commission_total": "0", "errs": ["PREVIEW_" + rej.reason],
                                      "warning": [], "preview_id": ""})
        bid, ask = m.bid_ask()
        px = o.limit_price or (ask if o.side == "BUY" else bid)
        total = o.base_size * px
        fee = total * (m.taker_fee if o.kind == "market" else m.maker_fee)
        return web.json_response({"order_total": dec(total + fee), "commission_total": dec(fee), "errs": [],
                                  "warning": [], "quote_size": dec(total), "base_size": dec(o.base_size),
                                  "best_bid": dec(bid), "best_ask": dec(ask), "is_max": False, "slippage": "0",
                                  "preview_id": str(uuid.uuid4())})

    async def h_edit(self, request: web.Request) -> web.Response:
        body = await request.json()
        o = self.market.editable(body.get("order_id", ""))
        if o is None:
            return web.json_response({"success": False, "errors": [{"edit_failure_reason": "ORDER_NOT_EDITABLE"}]})
        self.market.edit(o, body["size"], body["price"])
        self._on_order(o)
        return web.json_response({"success": True, "errors": []})

    async def h_cancel(self, request: web.Request) -> web.Response:
        body = await request.json()
        results = []
        for oid in body.get("order_ids", []):
            known = self.market.orders.get(oid)
            failure = "UNKNOWN_CANCEL_ORDER" if known is not None and not self._visible(known) else ""
            failure = failure or self.market.cancel(oid)
            if failure:
                results.append({"success": False, "failure_reason": failure, "order_id": oid})
            else:
                self._on_order(self.market.orders[oid])
                results.append({"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": oid})
        return web.json_response({"results": results})

    def _visible(self, o: FakeOrder) -> bool:
        return not self.injector.hidden(o.created_ns, self.market.now_ns())

    async def h_get_order(self, request: web.Request) -> web.Response:
        o = self.market.orders.get(request.match_info["order_id"])
        if o is None or not self._visible(o):
            raise web.HTTPNotFound(reason="NOT_FOUND", text="order with this orderID was not found")
        return web.json_response({"order": self._order_json(o)})

    async def h_list_orders(self, request: web.Request) -> web.Response:
        q = request.query
        products = set(q.getall("product_ids", []))
        statuses = set(q.getall("order_status", []))
        ids = set(q.getall("order_ids", []))
        if "OPEN" in statuses and len(statuses) > 1:
            raise web.HTTPBadRequest(reason="INVALID_ARGUMENT", text="OPEN cannot be combined with other statuses")
        rows = [o for o in self.market.orders.values() if self._visible(o)
                and (not products or o.product_id in products) and (not statuses or o.status in statuses)
                and (not ids or o.order_id in ids)]
        if q.get("start_date") and "OPEN" not in statuses:
            since = dt.datetime.fromisoformat(q["start_date"].replace("Z", "+00:00")).timestamp() * NS_PER_SECOND
            rows = [o for o in rows if o.created_ns >= since]
        rows.sort(key=lambda o: o.created_ns, reverse=True)
        return self._page(request, "orders", [self._order_json(o) for o in rows], has_next_key=True)

    async def h_fills(self, request: web.Request) -> web.Response:
        q = request.query
        ids = set(q.getall("order_ids", []))
        products = set(q.getall("product_ids", []))
        now = self.market.now_ns()
        rows = [f for f in self.market.fills
                if (not ids or f.order_id in ids) and (not products or f.product_id in products)
                and not self.injector.fill_unlisted(f.ts_ns, now)]
        rows.sort(key=lambda f: f.ts_ns, reverse=True)
        data = [{
            "entry_id": f.trade_id, "trade_id": f.trade_id, "order_id": f.order_id, "trade_time": iso(f.ts_ns),
            "trade_type": "FILL", "price": dec(f.price), "size": dec(f.size), "commission": dec(f.commission),
            "product_id": f.product_id, "sequence_timestamp": iso(f.ts_ns), "liquidity_indicator": f.liquidity,
            "size_in_quote": False, "user_id": "fake-user", "side": f.side,
        } for f in rows]
        return self._page(request, "fills", data, has_next_key=False)

    @staticmethod
    def _order_json(o: FakeOrder) -> dict[str, Any]:
        return {
            "order_id": o.order_id, "product_id": o.product_id, "user_id": "fake-user",
            "order_configuration": o.config, "side": o.side, "client_order_id": o.client_order_id,
            "status": o.status, "time_in_force": o.tif, "created_time": iso(o.created_ns),
            "completion_percentage": dec((o.filled / o.base_size * 100) if o.base_size else Decimal(0)),
            "filled_size": dec(o.filled), "average_filled_price": dec(o.avg), "fee": "",
            "number_of_fills": str(o.fills), "filled_value": dec(o.filled_value), "pending_cancel": False,
            "size_in_quote": o.quote_size is not None, "total_fees": dec(o.fees), "size_inclusive_of_fees": False,
            "total_value_after_fees": dec(o.filled_value + o.fees if o.side == "BUY" else o.filled_value - o.fees),
            "trigger_status": "INVALID_ORDER_TYPE", "order_type": {"market": "MARKET", "stop_gtc": "STOP_LIMIT"}.get(
                o.kind, "LIMIT"),
            "reject_reason": o.reject_reason, "settled": o.status == "FILLED", "product_type": "SPOT",
            "reject_message": "", "cancel_message": "", "order_placement_source": "RETAIL_ADVANCED",
            "outstanding_hold_amount": "0", "is_liquidation": False,
            "last_fill_time": iso(o.last_fill_ns) if o.last_fill_ns else None, "edit_history": [],
        }

    @staticmethod
    def _page(request: web.Request, key: str, rows: list[dict[str, Any]], *, has_next_key: bool) -> web.Response:
        limit = max(1, min(int(request.query.get("limit", "100")), 1000))
        start = int(request.query.get("cursor") or 0)
        page = rows[start:start + limit]
        more = start + limit < len(rows)
        body: dict[str, Any] = {key: page, "cursor": str(start + limit) if more else ""}
        if has_next_key:
            body["has_next"] = more
            body["sequence"] = "0"
        return web.json_response(body)
