"""A local fake of Coinbase Advanced Trade that speaks the documented protocol.

It verifies CDP JWTs (signature, nbf/exp, the `uri` claim naming this server's host), keeps
accounts, orders and fills, matches orders against a price path taken from real candles, charges
the configured fee tier, streams the WebSocket channels (heartbeats, ticker, market_trades,
candles, user) with per-connection sequence numbers, and injects faults on demand (`Faults`).

It exists so the real client code can be tested end to end without reaching Coinbase. It is a
model, not a copy: matching is simple (an order fills when the path trades through its price).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from trdr_testkit.fake_coinbase.prices import price_path, synthetic_candles
from trdr_tui.core.clock import NS_PER_SECOND, WallClock
from trdr_tui.core.types import Candle
from trdr_tui.exchange.coinbase_auth import JwtError, PublicKey, format_uri, verify_jwt

PREFIX = "/api/v3/brokerage"
GRAN_SECONDS = {"ONE_MINUTE": 60, "FIVE_MINUTE": 300, "FIFTEEN_MINUTE": 900, "THIRTY_MINUTE": 1800,
                "ONE_HOUR": 3600, "TWO_HOUR": 7200, "FOUR_HOUR": 14400, "SIX_HOUR": 21600, "ONE_DAY": 86400}
HTML_429 = b"<html><head><title>429 Too Many Requests</title></head><body><h1>Too Many Requests</h1></body></html>"


def iso(ns: int) -> str:
    stamp = dt.datetime.fromtimestamp(ns / NS_PER_SECOND, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def s(value: Decimal) -> str:
    return format(value.normalize(), "f") if value != 0 else "0"


@dataclass
class Faults:
    """Faults to inject. Counters are consumed one per matching event; set them from tests."""

    rest_429_html: int = 0          # next N private/public requests answer 429 with an HTML body
    rest_5xx: int = 0               # next N requests answer `rest_5xx_status`
    rest_5xx_status: int = 503
    rest_timeout: int = 0           # next N requests stall for `timeout_s` before answering
    timeout_s: float = 2.0
    rest_reset: int = 0             # next N requests: connection closed before any answer
    timestamp_expired: int = 0      # next N private requests: 401 "request timestamp expired"
    lose_create_response: int = 0   # next N POST /orders are executed, then the connection drops
    slow_s: float = 0.0             # every request waits this long first
    duplicate_reject: bool = False  # a repeated client_order_id fails with DUPLICATE_CLIENT_ORDER_ID
    ws_gap: int = 0                 # next N market messages skip a sequence number
    ws_stale: bool = False          # send nothing at all (no heartbeats either)
    reject_create: int = 0          # next N POST /orders fail with INSUFFICIENT_FUND-style errors
    visibility_lag_s: float = 0.0   # new orders stay invisible to get/list this long (eventual consistency)


@dataclass
class FakeOrder:
    order_id: str
    client_order_id: str
    product_id: str
    side: str
    config: dict[str, Any]
    kind: str
    base_size: Decimal
    quote_size: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    stop_up: bool
    post_only: bool
    created_ns: int
    status: str = "OPEN"
    triggered: bool = False
    filled: Decimal = Decimal(0)
    filled_value: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    fills: int = 0
    last_fill_ns: int | None = None
    reject_reason: str = ""

    @property
    def tif(self) -> str:
        if self.kind == "market":
            return "IMMEDIATE_OR_CANCEL"
        return "GOOD_UNTIL_DATE_TIME" if self.kind.endswith("gtd") else "GOOD_UNTIL_CANCELLED"

    @property
    def avg(self) -> Decimal:
        return self.filled_value / self.filled if self.filled else Decimal(0)


@dataclass
class FakeFill:
    trade_id: str
    order_id: str
    product_id: str
    side: str
    price: Decimal
    size: Decimal
    commission: Decimal
    liquidity: str
    ts_ns: int


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    user: bool
    channels: set[str] = field(default_factory=set)
    seq: int = 0
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)


class FakeExchange:
    """The fake. `await start()` binds 127.0.0.1 on a free port; URLs are then in `rest_url`/`ws_url`."""

    def __init__(
        self,
        *,
        candles: list[Candle] | None = None,
        product_id: str = "BTC-USD",
        balances: dict[str, str] | None = None,
        maker_fee: str = "0.004",
        taker_fee: str = "0.006",
        heartbeat_s: float = 1.0,
        subscribe_deadline_s: float = 5.0,
        step_interval_s: float | None = None,
        step_ns: int | None = None,
        rate_limit_per_s: int = 30,
        partial_fill_fraction: Decimal | None = None,
        now_ns: Callable[[], int] | None = None,
        start_ns: int | None = None,
    ) -> None:
        self.history = candles or synthetic_candles()
        self.path = price_path(self.history)
        self.product_id = product_id
        self.base, self.quote = product_id.split("-")
        self.balances = {k: Decimal(v) for k, v in (balances or {"USD": "10000", self.base: "0"}).items()}
        self.maker_fee, self.taker_fee = Decimal(maker_fee), Decimal(taker_fee)
        self.heartbeat_s = heartbeat_s
        self.subscribe_deadline_s = subscribe_deadline_s
        self.step_interval_s = step_interval_s
        self.step_ns = step_ns
        self.rate_limit_per_s = rate_limit_per_s
        self.partial_fill_fraction = partial_fill_fraction
        self.faults = Faults()
        self.keys: dict[str, PublicKey] = {}
        self.orders: dict[str, FakeOrder] = {}
        self.by_client_id: dict[str, str] = {}
        self.fills: list[FakeFill] = []
        self.market_trades: list[dict[str, Any]] = []
        self.index = 0
        self.price = Decimal(str(round(self.path[0], 2)))
        self.base_increment = Decimal("0.00000001")
        self.quote_increment = Decimal("0.01")
        self.base_min_size = Decimal("0.00001")
        self.quote_min_size = Decimal("1")
        # observability for tests
        self.create_posts: dict[str, int] = {}   # client_order_id -> POST /orders received
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.rate_limited = 0
        self.fired: dict[str, int] = {}  # fault name -> how often it actually hit a request or message
        self.ws_connections = 0
        self.subscribe_messages: list[dict[str, Any]] = []
        self._clock = WallClock()
        self._now_ns = now_ns or self._clock.now_ns
        self._t0 = start_ns if start_ns is not None else self._now_ns()
        self._conns: list[_Conn] = []
        self._window: tuple[int, int] = (0, 0)
        self._trade_seq = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.port = 0
        self.app = self._build_app()

    # -- setup -----------------------------------------------------------------------------------

    def add_key(self, key_name: str, public_key: PublicKey) -> None:
        self.keys[key_name] = public_key

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def user_ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws-user"

    async def start(self, port: int = 0) -> None:
        self._runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._tasks.append(asyncio.create_task(self._heartbeats()))
        if self.step_interval_s is not None:
            self._tasks.append(asyncio.create_task(self._auto_step()))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        await self.drop_sockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def exchange_now_ns(self) -> int:
        """Exchange time: wall time, or — with `step_ns` — start time plus steps (accelerated markets)."""
        if self.step_ns is not None:
            return self._t0 + self.index * self.step_ns
        return self._now_ns()

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        p = PREFIX
        r.add_get(p + "/accounts", self.h_accounts)
        r.add_get(p + "/accounts/{uuid}", self.h_account)
        r.add_get(p + "/transaction_summary", self.h_fees)
        r.add_get(p + "/time", self.h_time)
        r.add_get(p + "/best_bid_ask", self.h_best_bid_ask)
        for base in (p, p + "/market"):
            r.add_get(base + "/products/{product_id}", self.h_product)
            r.add_get(base + "/products/{product_id}/candles", self.h_candles)
            r.add_get(base + "/products/{product_id}/ticker", self.h_ticker)
        r.add_post(p + "/orders", self.h_create)
        r.add_post(p + "/orders/preview", self.h_preview)
        r.add_post(p + "/orders/edit", self.h_edit)
        r.add_post(p + "/orders/batch_cancel", self.h_cancel)
        r.add_get(p + "/orders/historical/batch", self.h_list_orders)
        r.add_get(p + "/orders/historical/fills", self.h_fills)
        r.add_get(p + "/orders/historical/{order_id}", self.h_get_order)
        r.add_get("/ws", self.h_ws)
        r.add_get("/ws-user", self.h_ws_user)
        return app

    # -- middleware: faults, rate limit, auth ----------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if request.path in ("/ws", "/ws-user"):
            return await handler(request)
        f = self.faults
        if f.slow_s:
            self._fire("slow")
            await asyncio.sleep(f.slow_s)
        public = request.path.startswith(PREFIX + "/market/") or request.path == PREFIX + "/time"
        if f.rest_reset:
            f.rest_reset -= 1
            self._fire("rest_reset")
            self._record(request, 0)
            self._kill(request)
            raise ConnectionResetError("fault: reset")
        if f.rest_timeout:
            f.rest_timeout -= 1
            self._fire("rest_timeout")
            await asyncio.sleep(f.timeout_s)
        if f.rest_429_html:
            f.rest_429_html -= 1
            self._fire("rest_429_html")
            return self._answer(request, web.Response(status=429, body=HTML_429, content_type="text/html"))
        if f.rest_5xx:
            f.rest_5xx -= 1
            self._fire("rest_5xx")
            return self._answer(request, web.json_response(
                {"error": "unavailable", "code": 14, "message": "upstream unavailable"}, status=f.rest_5xx_status))
        if not public:
            if f.timestamp_expired:
                f.timestamp_expired -= 1
                self._fire("timestamp_expired")
                return self._answer(request, web.json_response(
                    {"error": "UNAUTHENTICATED", "code": 16, "message": "request timestamp expired"}, status=401))
            problem = self._check_jwt(request)
            if problem:
                return self._answer(request, web.json_response(
                    {"error": "UNAUTHENTICATED", "code": 16, "message": "Unauthorized", "error_details": problem},
                    status=401))
            if not self._take_rate_token():
                self.rate_limited += 1
                return self._answer(request, web.json_response(
                    {"error": "RESOURCE_EXHAUSTED", "code": 8, "message": "Too many requests"}, status=429))
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            return self._answer(request, web.json_response(
                {"error": exc.reason.upper().replace(" ", "_"), "code": 3, "message": exc.text or exc.reason},
                status=exc.status))
        return self._answer(request, resp)

    def _answer(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        _sec, used = self._window
        resp.headers["x-ratelimit-limit"] = str(self.rate_limit_per_s)
        resp.headers["x-ratelimit-remaining"] = str(max(self.rate_limit_per_s - used, 0))
        resp.headers["x-ratelimit-reset"] = "1"
        self._record(request, resp.status)
        return resp

    def _fire(self, fault: str) -> None:
        self.fired[fault] = self.fired.get(fault, 0) + 1

    def _record(self, request: web.Request, status: int) -> None:
        self.requests.append((request.method, request.path.removeprefix(PREFIX), status))

    @staticmethod
    def _kill(request: web.Request) -> None:
        if request.transport is not None:
            request.transport.close()

    def _take_rate_token(self) -> bool:
        sec = self._clock.now_ns() // NS_PER_SECOND
        start, used = self._window
        if start != sec:
            start, used = sec, 0
        used += 1
        self._window = (start, used)
        return used <= self.rate_limit_per_s

    def _check_jwt(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return "missing bearer token"
        expected = format_uri(request.method, request.host, request.path)
        try:
            verify_jwt(auth[7:], self.keys, now_s=self._clock.now_ns() // NS_PER_SECOND, expected_uri=expected,
                       leeway_s=1)
        except JwtError as exc:
            return str(exc)
        return ""

    # -- REST handlers ---------------------------------------------------------------------------

    def _account_json(self, currency: str) -> dict[str, Any]:
        hold = self._holds().get(currency, Decimal(0))
        return {
            "uuid": f"acct-{currency.lower()}", "name": f"{currency} Wallet", "currency": currency,
            "available_balance": {"value": s(self.balances.get(currency, Decimal(0)) - hold), "currency": currency},
            "hold": {"value": s(hold), "currency": currency}, "default": True, "active": True,
            "type": "ACCOUNT_TYPE_FIAT" if currency in ("USD", "USDC", "EUR") else "ACCOUNT_TYPE_CRYPTO",
            "ready": True, "platform": "ACCOUNT_PLATFORM_CONSUMER", "created_at": iso(self._t0),
        }

    async def h_accounts(self, request: web.Request) -> web.Response:
        currencies = sorted(self.balances)
        limit = int(request.query.get("limit", "49"))
        start = int(request.query.get("cursor") or 0)
        page = currencies[start:start + limit]
        nxt = start + limit < len(currencies)
        return web.json_response({"accounts": [self._account_json(c) for c in page], "has_next": nxt,
                                  "cursor": str(start + limit) if nxt else "", "size": len(page)})

    async def h_account(self, request: web.Request) -> web.Response:
        for c in self.balances:
            if f"acct-{c.lower()}" == request.match_info["uuid"]:
                return web.json_response({"account": self._account_json(c)})
        raise web.HTTPNotFound(text="account not found")

    async def h_fees(self, request: web.Request) -> web.Response:
        volume = sum((f.price * f.size for f in self.fills), Decimal(0))
        return web.json_response({
            "total_volume": float(volume), "total_fees": float(sum((f.commission for f in self.fills), Decimal(0))),
            "fee_tier": {"pricing_tier": "Advanced 1", "usd_from": "0", "usd_to": "10000",
                         "taker_fee_rate": s(self.taker_fee), "maker_fee_rate": s(self.maker_fee),
                         "aop_from": "", "aop_to": ""},
            "advanced_trade_only_volume": float(volume), "has_promo_fee": False,
        })

    async def h_time(self, request: web.Request) -> web.Response:
        now = self._clock.now_ns()
        return web.json_response({"iso": iso(now), "epochSeconds": str(now // NS_PER_SECOND),
                                  "epochMillis": str(now // 1_000_000)})

    def _product_json(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id, "price": s(self.price), "price_percentage_change_24h": "0.5",
            "volume_24h": "1000", "base_increment": s(self.base_increment), "quote_increment": s(self.quote_increment),
            "price_increment": s(self.quote_increment), "quote_min_size": s(self.quote_min_size),
            "quote_max_size": "100000000", "base_min_size": s(self.base_min_size), "base_max_size": "3400",
            "base_name": "Bitcoin", "quote_name": "US Dollar", "watched": False, "is_disabled": False, "new": False,
            "status": "online", "cancel_only": False, "limit_only": False, "post_only": False,
            "trading_disabled": False, "auction_mode": False, "product_type": "SPOT",
            "quote_currency_id": self.quote, "base_currency_id": self.base, "product_venue": "CBE",
        }

    async def h_product(self, request: web.Request) -> web.Response:
        if request.match_info["product_id"] != self.product_id:
            raise web.HTTPNotFound(text="product not found")
        return web.json_response(self._product_json())

    def bid_ask(self) -> tuple[Decimal, Decimal]:
        return self.price - self.quote_increment, self.price + self.quote_increment

    async def h_best_bid_ask(self, request: web.Request) -> web.Response:
        bid, ask = self.bid_ask()
        books = [{"product_id": p, "bids": [{"price": s(bid), "size": "1.5"}], "asks": [{"price": s(ask), "size": "1.2"}],
                  "time": iso(self.exchange_now_ns())} for p in request.query.getall("product_ids", [])
                 if p == self.product_id]
        return web.json_response({"pricebooks": books})

    async def h_candles(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            start, end = int(q["start"]), int(q["end"])
            secs = GRAN_SECONDS[q["granularity"]]
        except (KeyError, ValueError):
            raise web.HTTPBadRequest(reason="INVALID_ARGUMENT", text="start, end and granularity are required") from None
        if (end - start) // secs > 350:
            raise web.HTTPBadRequest(reason="INVALID_ARGUMENT",
                                     text="number of candles requested should be less than 350")
        buckets: dict[int, list[Candle]] = {}
        for c in self.history:
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
        limit = int(request.query.get("limit", "100"))
        bid, ask = self.bid_ask()
        trades = list(reversed(self.market_trades[-limit:]))
        return web.json_response({"trades": trades, "best_bid": s(bid), "best_ask": s(ask)})

    # -- orders ----------------------------------------------------------------------------------

    def _holds(self) -> dict[str, Decimal]:
        holds: dict[str, Decimal] = {}
        for o in self.orders.values():
            if o.status != "OPEN" or o.kind == "market":
                continue
            left = o.base_size - o.filled
            if o.side == "BUY":
                price = o.limit_price or self.price
                holds[self.quote] = holds.get(self.quote, Decimal(0)) + left * price * (1 + self.taker_fee)
            else:
                holds[self.base] = holds.get(self.base, Decimal(0)) + left
        return holds

    def _available(self, currency: str) -> Decimal:
        return self.balances.get(currency, Decimal(0)) - self._holds().get(currency, Decimal(0))

    @staticmethod
    def _failure(reason: str, message: str) -> web.Response:
        return web.json_response({"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON", "order_id": "",
                                  "error_response": {"error": reason, "message": message, "error_details": "",
                                                     "preview_failure_reason": "PREVIEW_" + reason,
                                                     "new_order_failure_reason": reason}})

    def _parse_config(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        config = body.get("order_configuration")
        if not isinstance(config, dict) or len(config) != 1:
            raise web.HTTPBadRequest(reason="INVALID_ARGUMENT", text="order_configuration must hold one order type")
        kind, inner = next(iter(config.items()))
        known = {"market_market_ioc": "market", "limit_limit_gtc": "limit_gtc", "limit_limit_gtd": "limit_gtd",
                 "stop_limit_stop_limit_gtc": "stop_gtc"}
        if kind not in known or not isinstance(inner, dict):
            raise web.HTTPBadRequest(reason="UNSUPPORTED_ORDER_CONFIGURATION", text=f"unsupported {kind}")
        return known[kind], inner

    def _dec(self, inner: dict[str, Any], key: str, step: Decimal) -> Decimal | None:
        if key not in inner:
            return None
        raw = inner[key]
        if not isinstance(raw, str):
            raise web.HTTPBadRequest(reason="INVALID_ARGUMENT", text=f"{key} must be a decimal string")
        value = Decimal(raw)
        if value != value.quantize(step, rounding=ROUND_FLOOR) or value <= 0:
            raise _Reject("INVALID_SIZE_PRECISION" if "size" in key else "INVALID_PRICE_PRECISION",
                          f"{key} {raw} does not fit the increment {step}")
        return value

    async def h_create(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        coid = body.get("client_order_id", "")
        if not coid:
            raise web.HTTPBadRequest(reason="INVALID_ARGUMENT", text="client_order_id is required")
        self.create_posts[coid] = self.create_posts.get(coid, 0) + 1
        if coid in self.by_client_id:
            if self.faults.duplicate_reject:
                self._fire("duplicate_reject")
                return self._failure("DUPLICATE_CLIENT_ORDER_ID", "client order id already used")
            existing = self.orders[self.by_client_id[coid]]
            return web.json_response(self._success(existing))
        if body.get("product_id") != self.product_id:
            return self._failure("UNTRADABLE_PRODUCT", "unknown product")
        if self.faults.reject_create:
            self.faults.reject_create -= 1
            self._fire("reject_create")
            return self._failure("INSUFFICIENT_FUND", "Insufficient balance in source account")
        try:
            order = self._new_order(coid, body)
        except _Reject as rej:
            return self._failure(rej.reason, rej.message)
        self.orders[order.order_id] = order
        self.by_client_id[coid] = order.order_id
        if order.status == "FAILED":
            return self._failure(order.reject_reason, "order rejected")
        self._match_on_entry(order)
        self._push_user(order)
        if self.faults.lose_create_response:
            self.faults.lose_create_response -= 1
            self._fire("lose_create_response")
            self._record(request, 0)
            self._kill(request)
            raise ConnectionResetError("fault: response lost")
        return web.json_response(self._success(order))

    def _success(self, o: FakeOrder) -> dict[str, Any]:
        return {"success": True, "failure_reason": "UNKNOWN_FAILURE_REASON", "order_id": o.order_id,
                "success_response": {"order_id": o.order_id, "product_id": o.product_id, "side": o.side,
                                     "client_order_id": o.client_order_id},
                "order_configuration": o.config}

    def _new_order(self, coid: str, body: dict[str, Any]) -> FakeOrder:
        side = body.get("side")
        if side not in ("BUY", "SELL"):
            raise web.HTTPBadRequest(reason="INVALID_ARGUMENT", text="side must be BUY or SELL")
        kind, inner = self._parse_config(body)
        base = self._dec(inner, "base_size", self.base_increment)
        quote = self._dec(inner, "quote_size", self.quote_increment)
        limit = self._dec(inner, "limit_price", self.quote_increment)
        stop = self._dec(inner, "stop_price", self.quote_increment)
        if kind != "market" and (base is None or limit is None):
            raise web.HTTPBadRequest(reason="INVALID_ARGUMENT", text="base_size and limit_price are required")
        if kind == "market" and base is None and quote is None:
            raise web.HTTPBadRequest(reason="INVALID_ARGUMENT", text="base_size or quote_size is required")
        ref = limit or self.price
        size = base if base is not None else (quote or Decimal(0)) / ref
        if base is not None and base < self.base_min_size:
            raise _Reject("INVALID_BASE_SIZE_TOO_SMALL", "size below base_min_size")
        if size * ref < self.quote_min_size:
            raise _Reject("INVALID_QUOTE_SIZE_TOO_SMALL", "order value below quote_min_size")
        if side == "BUY" and self._available(self.quote) < size * ref * (1 + self.taker_fee):
            raise _Reject("INSUFFICIENT_FUND", "Insufficient balance in source account")
        if side == "SELL" and self._available(self.base) < size:
            raise _Reject("INSUFFICIENT_FUND", "Insufficient balance in source account")
        post_only = bool(inner.get("post_only", False))
        bid, ask = self.bid_ask()
        if post_only and limit is not None and ((side == "BUY" and limit >= ask) or (side == "SELL" and limit <= bid)):
            raise _Reject("INVALID_LIMIT_PRICE_POST_ONLY", "post-only limit price would cross the book")
        return FakeOrder(
            order_id=str(uuid.uuid4()), client_order_id=coid, product_id=self.product_id, side=side,
            config=body["order_configuration"], kind=kind, base_size=size.quantize(self.base_increment, ROUND_FLOOR),
            quote_size=quote, limit_price=limit, stop_price=stop,
            stop_up=inner.get("stop_direction") == "STOP_DIRECTION_STOP_UP", post_only=post_only,
            created_ns=self._now_ns(), triggered=kind != "stop_gtc",
        )

    def _match_on_entry(self, o: FakeOrder) -> None:
        bid, ask = self.bid_ask()
        if o.kind == "market":
            self._fill(o, ask if o.side == "BUY" else bid, o.base_size, "TAKER")
            if o.status == "OPEN":
                o.status = "CANCELLED"  # IOC remainder
            return
        if not o.triggered or o.limit_price is None:
            return
        if o.side == "BUY" and o.limit_price >= ask:
            self._fill(o, ask, o.base_size, "TAKER")
        elif o.side == "SELL" and o.limit_price <= bid:
            self._fill(o, bid, o.base_size, "TAKER")

    def _fill(self, o: FakeOrder, price: Decimal, size: Decimal, liquidity: str) -> None:
        size = min(size, o.base_size - o.filled).quantize(self.base_increment, ROUND_FLOOR)
        if size <= 0:
            return
        rate = self.maker_fee if liquidity == "MAKER" else self.taker_fee
        value = price * size
        fee = (value * rate).quantize(Decimal("0.0000000001"))
        if o.side == "BUY":
            self.balances[self.quote] = self.balances.get(self.quote, Decimal(0)) - value - fee
            self.balances[self.base] = self.balances.get(self.base, Decimal(0)) + size
        else:
            self.balances[self.base] = self.balances.get(self.base, Decimal(0)) - size
            self.balances[self.quote] = self.balances.get(self.quote, Decimal(0)) + value - fee
        now = self._now_ns()  # orders and fills live in real time; only the market may be accelerated
        o.filled += size
        o.filled_value += value
        o.fees += fee
        o.fills += 1
        o.last_fill_ns = now
        if o.filled >= o.base_size:
            o.status = "FILLED"
        self.fills.append(FakeFill(str(uuid.uuid4()), o.order_id, o.product_id, o.side, price, size, fee,
                                   liquidity, now))

    def _order_json(self, o: FakeOrder) -> dict[str, Any]:
        return {
            "order_id": o.order_id, "product_id": o.product_id, "user_id": "fake-user",
            "order_configuration": o.config, "side": o.side, "client_order_id": o.client_order_id,
            "status": o.status, "time_in_force": o.tif, "created_time": iso(o.created_ns),
            "completion_percentage": s((o.filled / o.base_size * 100) if o.base_size else Decimal(0)),
            "filled_size": s(o.filled), "average_filled_price": s(o.avg), "fee": "", "number_of_fills": str(o.fills),
            "filled_value": s(o.filled_value), "pending_cancel": False, "size_in_quote": o.quote_size is not None,
            "total_fees": s(o.fees), "size_inclusive_of_fees": False,
            "total_value_after_fees": s(o.filled_value + o.fees if o.side == "BUY" else o.filled_value - o.fees),
            "trigger_status": "INVALID_ORDER_TYPE", "order_type": {"market": "MARKET", "stop_gtc": "STOP_LIMIT"}.get(
                o.kind, "LIMIT"),
            "reject_reason": o.reject_reason, "settled": o.status == "FILLED", "product_type": "SPOT",
            "reject_message": "", "cancel_message": "", "order_placement_source": "RETAIL_ADVANCED",
            "outstanding_hold_amount": "0", "is_liquidation": False,
            "last_fill_time": iso(o.last_fill_ns) if o.last_fill_ns else None, "edit_history": [],
        }

    async def h_preview(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            o = self._new_order("preview", body)
        except _Reject as rej:
            return web.json_response({"order_total": "0", "commission_total": "0", "errs": ["PREVIEW_" + rej.reason],
                                      "warning": [], "preview_id": ""})
        bid, ask = self.bid_ask()
        px = o.limit_price or (ask if o.side == "BUY" else bid)
        total = o.base_size * px
        fee = total * (self.taker_fee if o.kind == "market" else self.maker_fee)
        return web.json_response({"order_total": s(total + fee), "commission_total": s(fee), "errs": [], "warning": [],
                                  "quote_size": s(total), "base_size": s(o.base_size), "best_bid": s(bid),
                                  "best_ask": s(ask), "is_max": False, "slippage": "0",
                                  "preview_id": str(uuid.uuid4())})

    async def h_edit(self, request: web.Request) -> web.Response:
        body = await request.json()
        o = self.orders.get(body.get("order_id", ""))
        if o is None or o.status != "OPEN" or o.kind != "limit_gtc":
            return web.json_response({"success": False, "errors": [{"edit_failure_reason": "ORDER_NOT_EDITABLE"}]})
        o.base_size = Decimal(body["size"])
        o.limit_price = Decimal(body["price"])
        o.config = {"limit_limit_gtc": {**o.config["limit_limit_gtc"], "base_size": body["size"],
                                        "limit_price": body["price"]}}
        self._push_user(o)
        return web.json_response({"success": True, "errors": []})

    async def h_cancel(self, request: web.Request) -> web.Response:
        body = await request.json()
        results = []
        for oid in body.get("order_ids", []):
            o = self.orders.get(oid)
            if o is None:
                results.append({"success": False, "failure_reason": "UNKNOWN_CANCEL_ORDER", "order_id": oid})
            elif o.status != "OPEN":
                results.append({"success": False, "failure_reason": "INVALID_CANCEL_REQUEST", "order_id": oid})
            else:
                o.status = "CANCELLED"
                self._push_user(o)
                results.append({"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": oid})
        return web.json_response({"results": results})

    def _visible(self, o: FakeOrder) -> bool:
        lag = self.faults.visibility_lag_s
        if lag and o.created_ns > self._now_ns() - int(lag * NS_PER_SECOND):
            self._fire("visibility_lag")
            return False
        return True

    async def h_get_order(self, request: web.Request) -> web.Response:
        o = self.orders.get(request.match_info["order_id"])
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
        rows = [o for o in self.orders.values() if self._visible(o)
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
        rows = [f for f in self.fills if (not ids or f.order_id in ids) and (not products or f.product_id in products)]
        rows.sort(key=lambda f: f.ts_ns, reverse=True)
        data = [{
            "entry_id": f.trade_id, "trade_id": f.trade_id, "order_id": f.order_id, "trade_time": iso(f.ts_ns),
            "trade_type": "FILL", "price": s(f.price), "size": s(f.size), "commission": s(f.commission),
            "product_id": f.product_id, "sequence_timestamp": iso(f.ts_ns), "liquidity_indicator": f.liquidity,
            "size_in_quote": False, "user_id": "fake-user", "side": f.side,
        } for f in rows]
        return self._page(request, "fills", data, has_next_key=False)

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

    # -- the market ------------------------------------------------------------------------------

    async def _auto_step(self) -> None:
        assert self.step_interval_s is not None
        while True:
            await asyncio.sleep(self.step_interval_s)
            self.step()

    def step(self, n: int = 1) -> None:
        """Advance the price path by `n` points: a market trade each, matching and streaming."""
        for _ in range(n):
            self.index += 1
            raw = self.path[self.index % len(self.path)]
            self.price = Decimal(str(raw)).quantize(self.quote_increment)
            self._market_trade()
            for o in list(self.orders.values()):
                if o.status == "OPEN":
                    self._match_resting(o)

    def _market_trade(self) -> None:
        bid, ask = self.bid_ask()
        trade = {"trade_id": str(next(self._trade_seq)), "product_id": self.product_id, "price": s(self.price),
                 "size": "0.01", "time": iso(self.exchange_now_ns()),
                 "side": "BUY" if self.index % 2 else "SELL", "exchange": "coinbase"}
        self.market_trades.append(trade)
        del self.market_trades[:-500]
        now = iso(self.exchange_now_ns())
        self._broadcast("market_trades", {"type": "update", "trades": [
            {k: trade[k] for k in ("trade_id", "product_id", "price", "size", "side", "time")}]}, now)
        self._broadcast("ticker", {"type": "update", "tickers": [{
            "type": "ticker", "product_id": self.product_id, "price": s(self.price), "volume_24_h": "1000",
            "low_24_h": s(self.price), "high_24_h": s(self.price), "low_52_w": "1", "high_52_w": "100000",
            "price_percent_chg_24_h": "0", "best_bid": s(bid), "best_bid_quantity": "1.5", "best_ask": s(ask),
            "best_ask_quantity": "1.2"}]}, now)

    def _match_resting(self, o: FakeOrder) -> None:
        p = self.price
        if not o.triggered:
            if o.stop_price is not None and ((o.stop_up and p >= o.stop_price) or (not o.stop_up and p <= o.stop_price)):
                o.triggered = True
            else:
                return
        if o.limit_price is None:
            return
        crosses = (o.side == "BUY" and p <= o.limit_price) or (o.side == "SELL" and p >= o.limit_price)
        if not crosses:
            return
        size = o.base_size - o.filled
        if self.partial_fill_fraction is not None:
            size = min(size, max(o.base_size * self.partial_fill_fraction, self.base_min_size))
        self._fill(o, o.limit_price, size, "MAKER")
        self._push_user(o)

    # -- WebSocket -------------------------------------------------------------------------------

    async def h_ws(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve_ws(request, user=False)

    async def h_ws_user(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve_ws(request, user=True)

    async def _serve_ws(self, request: web.Request, *, user: bool) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=10 * 1024 * 1024)
        await ws.prepare(request)
        conn = _Conn(ws=ws, user=user)
        self._conns.append(conn)
        self.ws_connections += 1
        watchdog = asyncio.create_task(self._subscribe_deadline(conn))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._on_ws_message(conn, msg.data)
        finally:
            watchdog.cancel()
            if conn in self._conns:
                self._conns.remove(conn)
        return ws

    async def _subscribe_deadline(self, conn: _Conn) -> None:
        try:
            await asyncio.wait_for(conn.subscribed.wait(), self.subscribe_deadline_s)
        except TimeoutError:
            await conn.ws.close(code=1008, message=b"subscribe deadline")

    async def _on_ws_message(self, conn: _Conn, data: str) -> None:
        try:
            msg = msgspec.json.decode(data)
        except msgspec.DecodeError:
            await conn.ws.send_json({"type": "error", "message": "malformed message"})
            return
        self.subscribe_messages.append(msg)
        typ, channel = msg.get("type"), msg.get("channel")
        allowed = {"heartbeats", "user", "futures_balance_summary"} if conn.user else {
            "heartbeats", "ticker", "ticker_batch", "market_trades", "candles", "status", "level2"}
        if typ not in ("subscribe", "unsubscribe") or channel not in allowed:
            await conn.ws.send_json({"type": "error", "message": "failure to subscribe"})
            return
        token = msg.get("jwt")
        if token or channel == "user":
            try:
                verify_jwt(token or "", self.keys, now_s=self._clock.now_ns() // NS_PER_SECOND, leeway_s=1)
            except JwtError:
                await conn.ws.send_json({"type": "error", "message": "authentication failure"})
                return
        if typ == "subscribe":
            conn.channels.add(channel)
        else:
            conn.channels.discard(channel)
        conn.subscribed.set()
        subs: dict[str, list[str]] = {}
        for ch in conn.channels:
            subs[ch] = [self.product_id]
        self._send(conn, "subscriptions", [{"subscriptions": subs}], iso(self._clock.now_ns()))
        if typ == "subscribe" and channel == "user":
            open_orders = [self._user_order(o) for o in self.orders.values() if o.status == "OPEN"]
            self._send(conn, "user", [{"type": "snapshot", "orders": open_orders, "positions": {}}],
                       iso(self._clock.now_ns()))
        if typ == "subscribe" and channel in ("ticker", "market_trades"):
            bid, ask = self.bid_ask()
            if channel == "ticker":
                event = {"type": "snapshot", "tickers": [{"type": "ticker", "product_id": self.product_id,
                                                          "price": s(self.price), "best_bid": s(bid),
                                                          "best_ask": s(ask)}]}
            else:
                event = {"type": "snapshot", "trades": [
                    {k: t[k] for k in ("trade_id", "product_id", "price", "size", "side", "time")}
                    for t in self.market_trades[-50:]]}
            self._send(conn, channel, [event], iso(self.exchange_now_ns()))

    def _send(self, conn: _Conn, channel: str, events: list[dict[str, Any]], ts: str) -> None:
        if self.faults.ws_stale:
            self._fire("ws_stale")
            return
        if conn.ws.closed:
            return
        if not conn.user and channel not in ("subscriptions", "heartbeats") and self.faults.ws_gap:
            self.faults.ws_gap -= 1
            self._fire("ws_gap")
            conn.seq += 1  # a message "lost" in transit
        payload = {"channel": channel, "client_id": "", "timestamp": ts, "sequence_num": conn.seq, "events": events}
        conn.seq += 1
        task = asyncio.get_running_loop().create_task(self._send_safely(conn, payload))
        self._tasks.append(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    @staticmethod
    async def _send_safely(conn: _Conn, payload: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.send_str(msgspec.json.encode(payload).decode())

    def _broadcast(self, channel: str, event: dict[str, Any], ts: str) -> None:
        for conn in list(self._conns):
            if channel in conn.channels:
                self._send(conn, channel, [event], ts)

    def _user_order(self, o: FakeOrder) -> dict[str, Any]:
        return {
            "order_id": o.order_id, "client_order_id": o.client_order_id, "cumulative_quantity": s(o.filled),
            "leaves_quantity": s(o.base_size - o.filled), "avg_price": s(o.avg), "total_fees": s(o.fees),
            "status": o.status, "product_id": o.product_id, "product_type": "SPOT", "creation_time": iso(o.created_ns),
            "order_side": o.side, "order_type": {"market": "Market", "stop_gtc": "Stop_Limit"}.get(o.kind, "Limit"),
            "cancel_reason": "", "reject_Reason": o.reject_reason, "time_in_force": o.tif,
            "number_of_fills": str(o.fills), "filled_value": s(o.filled_value),
            "limit_price": s(o.limit_price) if o.limit_price else "0", "stop_price": s(o.stop_price or Decimal(0)),
            "post_only": "true" if o.post_only else "false", "outstanding_hold_amount": "0",
            "total_value_after_fees": s(o.filled_value), "trigger_status": "", "end_time": "", "start_time": "",
        }

    def _push_user(self, o: FakeOrder) -> None:
        ts = iso(self._clock.now_ns())
        for conn in list(self._conns):
            if conn.user and "user" in conn.channels:
                self._send(conn, "user", [{"type": "update", "orders": [self._user_order(o)], "positions": {}}], ts)

    async def _heartbeats(self) -> None:
        counter = itertools.count(1)
        while True:
            await asyncio.sleep(self.heartbeat_s)
            n = next(counter)
            now = self.exchange_now_ns()
            # the Go time layout real heartbeats use
            go_time = iso(now).replace("T", " ").replace("Z", "") + f"000 +0000 UTC m=+{n * self.heartbeat_s:.6f}"
            for conn in list(self._conns):
                if "heartbeats" in conn.channels:
                    self._send(conn, "heartbeats", [{"current_time": go_time, "heartbeat_counter": n}], iso(now))

    async def drop_sockets(self) -> int:
        """Close every WebSocket abruptly (a dropped connection)."""
        conns, self._conns = list(self._conns), []
        if conns:
            self._fire("ws_drop")
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1011, message=b"dropped")
        return len(conns)

    # -- test helpers ----------------------------------------------------------------------------

    def order_by_client_id(self, coid: str) -> FakeOrder | None:
        oid = self.by_client_id.get(coid)
        return self.orders.get(oid) if oid else None

    def set_price(self, price: str) -> None:
        """Move the market to `price` (one trade), matching resting orders."""
        self.price = Decimal(price)
        self._market_trade()
        for o in list(self.orders.values()):
            if o.status == "OPEN":
                self._match_resting(o)


class _Reject(Exception):
    def __init__(self, reason: str, message: str) -> None:
        self.reason, self.message = reason, message
        super().__init__(message)
