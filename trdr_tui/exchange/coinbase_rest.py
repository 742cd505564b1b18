"""Coinbase Advanced Trade REST client (aiohttp): signed requests, typed responses, retries, rate limits.

- Every private request carries a fresh JWT whose `uri` names the configured host, so the client
  works against any compatible server (the fake exchange in tests).
- Transient failures — connection resets, timeouts, 429 (JSON or HTML body), 502/503/504 and
  "request timestamp expired" — are retried with exponential backoff and jitter (PRD §3.1:
  5 retries, 1 s initial, ×2, 30 s cap, 10 % jitter). Order creation is not retried here: the
  executor retries it itself after looking the order up (no order is sent twice).
- A limiter keeps to Coinbase's limits (private 30/s, public 10/s) in any one-second window at the
  server (a request counts from its grant until a second after its answer, so time spent queued or
  on the network cannot bunch requests up) and pauses when the server's `x-ratelimit-remaining`
  reaches zero until `x-ratelimit-reset`.
- Responses decode into msgspec structs; a body that does not match is `InvalidResponse` (E004).
- Retries (warning) and rejected credentials (HTTP 401/403, error) are operator events
  (`core/opevents.py`): on the engine's bus and in the JSON logs, repeats rate limited.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import aiohttp
import msgspec
import yarl

from trdr_tui.core.errors import (
    ConnectionLost,
    InsufficientFunds,
    InvalidResponse,
    RateLimited,
    RejectError,
    RetryError,
    StopError,
)
from trdr_tui.core.opevents import OperatorEvents
from trdr_tui.core.types import Candle
from trdr_tui.exchange.coinbase_auth import JwtSigner
from trdr_tui.exchange.coinbase_models import (
    GRANULARITY,
    NS,
    Account,
    AccountsPage,
    ApiErrorBody,
    ApiFill,
    ApiOrder,
    BatchCancelResponse,
    BestBidAsk,
    CancelResult,
    CandlesResponse,
    CreateOrderResponse,
    EditResponse,
    GetOrderResponse,
    ListFillsResponse,
    ListOrdersResponse,
    PreviewResponse,
    Product,
    ServerTime,
    TickerResponse,
    TransactionSummary,
)

API_PREFIX = "/api/v3/brokerage"
MAX_CANDLES_PER_REQUEST = 349
RETRY_STATUSES = frozenset({429, 502, 503, 504})
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class AuthFailed(StopError):
    """401/403 that retrying cannot fix: wrong key, missing scope, clock far off."""


class ExchangeRejected(RejectError):
    """The exchange refused the request (4xx other than auth and rate limits)."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "", **kw: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(message, **kw)


class OrderNotFound(ExchangeRejected):
    pass


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Exponential backoff with jitter. `initial_s` is injectable so tests run in milliseconds."""

    max_retries: int = 5
    initial_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 30.0
    jitter: float = 0.10

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number `attempt` (0-based): min(initial·factor^n, cap) ± jitter/2."""
        base = min(self.initial_s * self.factor**attempt, self.cap_s)
        r = (rng or random).random()
        return max(0.0, base + base * self.jitter * (r - 0.5))


class RateLimiter:
    """At most `rate` requests in any one-second window at the server, and a pause whenever the
    server's headers say the allowance is used up.

    A request reaches the server at some moment between being granted (`acquire`) and its answer
    arriving (`release`): queues, the event loop and the network sit in between. So a request counts
    from its grant until one second after its answer: a new one is granted only while fewer than
    `rate` requests are in flight or answered within the last second. Any one-second window at the
    server then holds at most `rate` arrivals, however long each took to get there (the last one
    granted among `rate + 1` arrivals in a window would have seen the other `rate` in flight or
    answered less than a second before). Use `async with limiter.slot():` around one request.
    """

    def __init__(self, rate: float, *, sleep: Sleep = asyncio.sleep) -> None:
        self.rate = rate
        self._answered: deque[float] = deque()  # loop times at which answers arrived, last second only
        self._in_flight = 0
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()
        self._released = asyncio.Event()
        self._sleep = sleep
        self.waits = 0  # how often a caller had to wait (observable in tests)

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one place from the grant until the answer (or the failure) is in."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    async def acquire(self) -> None:
        """Wait for a place; every `acquire` must be followed by one `release` once the request is over."""
        async with self._lock:
            while True:
                now = self._now()
                answered = self._answered
                while answered and answered[0] <= now - 1.0:
                    answered.popleft()
                wait = max(self._blocked_until - now, 0.0)
                if wait <= 0 and self._in_flight + len(answered) < self.rate:
                    self._in_flight += 1
                    return
                self.waits += 1
                if wait <= 0 and not answered:  # every place is in flight: wait for an answer
                    self._released.clear()
                    await self._released.wait()
                    continue
                if wait <= 0:
                    wait = answered[0] + 1.0 - now + 0.001
                await self._sleep(wait)

    def release(self) -> None:
        """The request's answer (or failure) is in: its place frees one second from now."""
        self._in_flight -= 1
        self._answered.append(self._now())
        self._released.set()

    def observe(self, headers: Any) -> None:
        """Honour `x-ratelimit-remaining` / `x-ratelimit-reset` (seconds, or a UNIX time)."""
        remaining = headers.get("x-ratelimit-remaining")
        reset = headers.get("x-ratelimit-reset")
        if remaining is None or reset is None:
            return
        try:
            left, reset_v = float(remaining), float(reset)
        except ValueError:
            return
        if left > 0:
            return
        if reset_v > 1e9:  # an absolute UNIX time: convert through the loop clock's offset
            from trdr_tui.core.clock import NS_PER_SECOND, WallClock

            reset_v = reset_v - WallClock().now_ns() / NS_PER_SECOND
        self._blocked_until = max(self._blocked_until, self._now() + min(max(reset_v, 0.0), 30.0))


class _Transient(Exception):
    """Internal: a failure worth retrying, with the error to raise if retries run out."""

    def __init__(self, error: RetryError, retry_after: float | None = None) -> None:
        self.error = error
        self.retry_after = retry_after
        super().__init__(str(error))


class CoinbaseRest:
    """The REST API. Pass `signer=None` for public market data only."""

    def __init__(
        self,
        base_url: str = "https://api.coinbase.com",
        *,
        signer: JwtSigner | None = None,
        session: aiohttp.ClientSession | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 10.0,
        private_rate: float = 30.0,
        public_rate: float = 10.0,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        on_request: Callable[[str, str], None] | None = None,
        events: OperatorEvents | None = None,
        key_label: str = "",
    ) -> None:
        url = yarl.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"REST base URL must be http(s)://host[:port], got {base_url!r}")
        self.base_url = str(url.origin())
        self.host = url.raw_authority  # host[:port] as it goes in the JWT `uri` claim
        self.signer = signer
        self.retry = retry or RetryPolicy()
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.private_limiter = RateLimiter(private_rate, sleep=sleep)
        self.public_limiter = RateLimiter(public_rate, sleep=sleep)
        self._session = session
        self._own_session = session is None
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._on_request = on_request
        self.events = events or OperatorEvents()
        self.key_label = key_label  # "key NAME from SOURCE": what an auth event names (never the secret)
        self.requests_sent = 0
        self.retries = 0
        self.auth_failures = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> CoinbaseRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    @property
    def authenticated(self) -> bool:
        return self.signer is not None

    # -- core request ----------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        response_type: type[T],
        *,
        params: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        private: bool = True,
        retry: bool = True,
    ) -> T:
        """Send one API call (`path` below /api/v3/brokerage); retry transient failures when `retry`."""
        attempt = 0
        while True:
            try:
                return await self._once(method, path, response_type, params, body, private)
            except _Transient as t:
                if not retry or attempt >= self.retry.max_retries:
                    raise t.error from None
                delay = self.retry.delay(attempt, self._rng)
                if t.retry_after is not None:
                    delay = max(delay, min(t.retry_after, self.retry.cap_s))
                self.events.emit(f"rest.retry:{type(t.error).__name__}", "warning", "exchange",
                                 f"{t.error.message}; retry {attempt + 1} of {self.retry.max_retries} in {delay:.2f} s",
                                 method=method, path=path, attempt=attempt + 1)
                self.retries += 1
                attempt += 1
                await self._sleep(delay)

    async def _once(self, method: str, path: str, response_type: type[T],
                    params: Sequence[tuple[str, str]] | None, body: Any, private: bool) -> T:
        full_path = API_PREFIX + path
        headers = {"Accept": "application/json"}
        if private:
            if self.signer is None:
                raise AuthFailed(f"{method} {path} needs API credentials",
                                 hint="set TRDR_COINBASE_API_KEY/TRDR_COINBASE_API_SECRET or a key file")
            headers["Authorization"] = "Bearer " + self.signer.rest_jwt(method, self.host, full_path)
        limiter = self.private_limiter if private else self.public_limiter
        data = None
        if body is not None:
            data = msgspec.json.encode(body)
            headers["Content-Type"] = "application/json"
        url = self.base_url + full_path
        try:
            async with limiter.slot():
                self.requests_sent += 1
                if self._on_request is not None:
                    self._on_request(method, path)
                async with self._get_session().request(method, url, params=list(params or ()), data=data,
                                                       headers=headers, timeout=self.timeout) as resp:
                    raw = await resp.read()
                    status = resp.status
                    limiter.observe(resp.headers)
                    retry_after = _retry_after(resp.headers)
        except TimeoutError:
            raise _Transient(ConnectionLost(f"{method} {path} timed out")) from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise _Transient(ConnectionLost(f"{method} {path}: {type(exc).__name__}")) from None
        if status == 200:
            return _decode(raw, response_type, f"{method} {path}")
        try:
            self._raise_for_status(method, path, status, raw, retry_after)
        except AuthFailed as exc:
            self.auth_failures += 1
            self.events.emit("rest.auth", "error", "exchange",
                             f"the exchange rejected the API key{' ' + self.key_label if self.key_label else ''}: "
                             f"{exc.message}; {exc.hint}", method=method, path=path, status=status)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _raise_for_status(method: str, path: str, status: int, raw: bytes, retry_after: float | None) -> None:
        err = _error_body(raw)
        where = f"{method} {path}"
        text = (err.message or err.error or err.error_details or "").strip()
        if status == 429:
            raise _Transient(RateLimited(f"{where}: rate limited (HTTP 429)", retry_after=retry_after), retry_after)
        if status in RETRY_STATUSES:
            raise _Transient(ConnectionLost(f"{where}: HTTP {status}"))
        if status == 401 and "timestamp" in text.lower() and "expired" in text.lower():
            raise _Transient(ConnectionLost(f"{where}: request timestamp expired (is this machine's clock right?)"))
        if status in (401, 403):
            raise AuthFailed(f"{where}: HTTP {status} {text or 'unauthorized'}",
                             hint="check the key name and secret, the key's permissions (view/trade) and "
                             "that this machine's clock is correct")
        if status == 404:
            raise OrderNotFound(f"{where}: not found", status=status, reason=err.error or "NOT_FOUND")
        if "INSUFFICIENT_FUND" in (err.error + text):
            raise InsufficientFunds(f"{where}: insufficient funds")
        if status >= 500:
            raise _Transient(ConnectionLost(f"{where}: HTTP {status}"))
        raise ExchangeRejected(f"{where}: HTTP {status} {err.error} {text}".strip(), status=status,
                               reason=err.error)

    # -- accounts & fees -------------------------------------------------------------------------

    async def list_accounts(self) -> list[Account]:
        out: list[Account] = []
        cursor = ""
        while True:
            params = [("limit", "250")] + ([("cursor", cursor)] if cursor else [])
            page = await self.request("GET", "/accounts", AccountsPage, params=params)
            out.extend(page.accounts)
            if not page.has_next or not page.cursor:
                return out
            cursor = page.cursor

    async def transaction_summary(self) -> TransactionSummary:
        return await self.request("GET", "/transaction_summary", TransactionSummary,
                                  params=[("product_type", "SPOT")])

    async def server_time(self) -> ServerTime:
        return await self.request("GET", "/time", ServerTime, private=False)

    # -- market data -----------------------------------------------------------------------------

    def _market(self, path: str) -> tuple[str, bool]:
        """Private endpoints when keys exist (uncached), else the public /market ones."""
        return (path, True) if self.authenticated else ("/market" + path, False)

    async def get_product(self, product_id: str) -> Product:
        path, private = self._market(f"/products/{product_id}")
        return await self.request("GET", path, Product, private=private)

    async def best_bid_ask(self, product_ids: Iterable[str]) -> BestBidAsk:
        return await self.request("GET", "/best_bid_ask", BestBidAsk,
                                  params=[("product_ids", p) for p in product_ids])

    async def market_trades(self, product_id: str, limit: int = 100) -> TickerResponse:
        path, private = self._market(f"/products/{product_id}/ticker")
        return await self.request("GET", path, TickerResponse, params=[("limit", str(limit))], private=private)

    async def get_candles(self, product_id: str, start_s: int, end_s: int, timeframe: str) -> list[Candle]:
        """One page (≤ 349 buckets) of candles in [start_s, end_s), oldest first."""
        gran, secs = _granularity(timeframe)
        if (end_s - start_s) // secs > MAX_CANDLES_PER_REQUEST:
            raise ValueError(f"at most {MAX_CANDLES_PER_REQUEST} candles per request")
        path, private = self._market(f"/products/{product_id}/candles")
        resp = await self.request(
            "GET", path, CandlesResponse, private=private,
            params=[("start", str(start_s)), ("end", str(end_s)), ("granularity", gran),
                    ("limit", str(MAX_CANDLES_PER_REQUEST))],
        )
        candles = sorted((c.to_candle() for c in resp.candles), key=lambda c: c.ts)
        lo, hi = start_s * NS, end_s * NS
        return [c for c in candles if lo <= c.ts < hi]

    async def candles_range(self, product_id: str, start_s: int, end_s: int, timeframe: str) -> list[Candle]:
        """All candles in [start_s, end_s), paginated in windows of 349 buckets."""
        _, secs = _granularity(timeframe)
        out: list[Candle] = []
        t = start_s
        while t < end_s:
            stop = min(t + MAX_CANDLES_PER_REQUEST * secs, end_s)
            out.extend(await self.get_candles(product_id, t, stop, timeframe))
            t = stop
        return out

    # -- orders ----------------------------------------------------------------------------------

    async def create_order(self, *, client_order_id: str, product_id: str, side: str,
                           configuration: dict[str, Any]) -> CreateOrderResponse:
        """Place an order. Not retried here: a lost answer must be looked up before re-sending."""
        if not client_order_id:
            raise ValueError("client_order_id is required: it is what makes a resend safe")
        body = {"client_order_id": client_order_id, "product_id": product_id, "side": side,
                "order_configuration": configuration}
        return await self.request("POST", "/orders", CreateOrderResponse, body=body, retry=False)

    async def preview_order(self, *, product_id: str, side: str, configuration: dict[str, Any]) -> PreviewResponse:
        body = {"product_id": product_id, "side": side, "order_configuration": configuration}
        return await self.request("POST", "/orders/preview", PreviewResponse, body=body)

    async def edit_order(self, order_id: str, *, size: Decimal, price: Decimal) -> EditResponse:
        from trdr_tui.exchange.coinbase_models import fmt

        body = {"order_id": order_id, "size": fmt(size), "price": fmt(price)}
        return await self.request("POST", "/orders/edit", EditResponse, body=body)

    async def cancel_orders(self, order_ids: Sequence[str]) -> list[CancelResult]:
        """Cancel in batches of 100; cancelling twice is harmless, so this is retried."""
        results: list[CancelResult] = []
        ids = list(order_ids)
        for i in range(0, len(ids), 100):
            resp = await self.request("POST", "/orders/batch_cancel", BatchCancelResponse,
                                      body={"order_ids": ids[i:i + 100]})
            results.extend(resp.results)
        return results

    async def get_order(self, order_id: str) -> ApiOrder:
        resp = await self.request("GET", f"/orders/historical/{order_id}", GetOrderResponse)
        return resp.order

    async def list_orders(self, *, product_ids: Sequence[str] = (), order_status: Sequence[str] = (),
                          order_ids: Sequence[str] = (), start_date: str | None = None,
                          limit: int = 250) -> list[ApiOrder]:
        base: list[tuple[str, str]] = [("limit", str(limit))]
        base += [("product_ids", p) for p in product_ids]
        base += [("order_status", s) for s in order_status]
        base += [("order_ids", o) for o in order_ids]
        if start_date:
            base.append(("start_date", start_date))
        out: list[ApiOrder] = []
        cursor = ""
        while True:
            params = base + ([("cursor", cursor)] if cursor else [])
            page = await self.request("GET", "/orders/historical/batch", ListOrdersResponse, params=params)
            out.extend(page.orders)
            if not page.has_next or not page.cursor:
                return out
            cursor = page.cursor

    async def list_fills(self, *, order_ids: Sequence[str] = (), product_ids: Sequence[str] = (),
                         limit: int = 250) -> list[ApiFill]:
        base: list[tuple[str, str]] = [("limit", str(limit))]
        base += [("order_ids", o) for o in order_ids]
        base += [("product_ids", p) for p in product_ids]
        out: list[ApiFill] = []
        cursor = ""
        while True:
            params = base + ([("cursor", cursor)] if cursor else [])
            page = await self.request("GET", "/orders/historical/fills", ListFillsResponse, params=params)
            out.extend(page.fills)
            if not page.cursor:
                return out
            cursor = page.cursor

    async def find_order_by_client_id(self, client_order_id: str, product_id: str,
                                      since_iso: str | None = None) -> ApiOrder | None:
        """Look an order up by our client_order_id (open orders, then recent history)."""
        for status in (["OPEN"], []):
            orders = await self.list_orders(product_ids=[product_id], order_status=status,
                                            start_date=None if status else since_iso)
            for o in orders:
                if o.client_order_id == client_order_id:
                    return o
        return None


def _granularity(timeframe: str) -> tuple[str, int]:
    try:
        return GRANULARITY[timeframe]
    except KeyError:
        raise ValueError(f"timeframe {timeframe!r} is not one of {', '.join(GRANULARITY)}") from None


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _error_body(raw: bytes) -> ApiErrorBody:
    """The grpc-gateway error body, or an empty one when the body is not JSON (e.g. an HTML 429)."""
    try:
        return msgspec.json.decode(raw, type=ApiErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ApiErrorBody()


def _decode(raw: bytes, response_type: type[T], where: str) -> T:
    try:
        return msgspec.json.decode(raw, type=response_type)
    except msgspec.ValidationError as exc:
        raise InvalidResponse(f"{where}: response does not match {response_type.__name__}: {exc}",
                              hint="the exchange API may have changed; report this") from None
    except msgspec.DecodeError:
        raise InvalidResponse(f"{where}: response is not JSON ({len(raw)} bytes)") from None
