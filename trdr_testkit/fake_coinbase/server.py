"""A local fake of Coinbase Advanced Trade that speaks the documented protocol.

It verifies CDP JWTs (signature, nbf/exp, the `uri` claim naming this server's host), keeps
accounts, orders and fills, matches orders against a price path taken from real candles, charges
the configured fee tier, streams the WebSocket channels (heartbeats, ticker, market_trades,
candles, user) with per-connection sequence numbers, and injects faults on demand (`Faults`).

It exists so the real client code can be tested end to end without reaching Coinbase. It is a
model, not a copy: matching is simple (an order fills when the path trades through its price).
`FakeExchange` wires the parts: `auth` (JWT), `faults` (fault injection), `matching` (the market),
`rest` (REST endpoints), `ws` (WebSocket channels).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from trdr_testkit.fake_coinbase.auth import JwtGate
from trdr_testkit.fake_coinbase.faults import FaultInjector, Faults
from trdr_testkit.fake_coinbase.matching import FakeFill, FakeOrder, Market
from trdr_testkit.fake_coinbase.reference import DataProduct
from trdr_testkit.fake_coinbase.rest import RateLimiter, RestApi
from trdr_testkit.fake_coinbase.wire import WS_MARKET_PATH, WS_USER_PATH
from trdr_testkit.fake_coinbase.ws import WsChannels
from trdr_tui.core.clock import NS_PER_SECOND, WallClock
from trdr_tui.core.types import Candle
from trdr_tui.exchange.coinbase_auth import PublicKey


class FakeExchange:
    """The fake. `await start()` binds 127.0.0.1 on a free port; URLs are then in `rest_url`/`ws_url`.

    Balances are decimal strings per currency, fees are rates (0.004 = 0.4 %). `step_interval_s` moves
    the price path by itself every that many seconds; `step_ns` makes exchange time advance by that
    much per step from `start_ns` (an accelerated market) instead of following the wall clock
    (`now_ns`, UNIX nanoseconds). `data_products` (product_id → candles) adds products for market data
    only (a reference product): their own price paths, stepped with the traded one's, on the products,
    candles and ticker endpoints and the market_trades/ticker channels of connections that subscribe
    to them (`reference.DataProduct`). The attributes below it are for tests to read and set.
    """

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
        data_products: dict[str, list[Candle]] | None = None,
    ) -> None:
        clock = WallClock()
        self.market = Market(candles=candles, product_id=product_id, balances=balances, maker_fee=maker_fee,
                             taker_fee=taker_fee, step_ns=step_ns, partial_fill_fraction=partial_fill_fraction,
                             now_ns=now_ns or clock.now_ns, start_ns=start_ns)
        self.injector = FaultInjector()
        self.gate = JwtGate(lambda: clock.now_ns() + int(self.injector.faults.clock_skew_s * NS_PER_SECOND))
        self.limiter = RateLimiter(rate_limit_per_s, clock.now_ns)
        self.ws = WsChannels(market=self.market, gate=self.gate, injector=self.injector, now_ns=clock.now_ns,
                             heartbeat_s=heartbeat_s, subscribe_deadline_s=subscribe_deadline_s)
        self.rest = RestApi(market=self.market, gate=self.gate, injector=self.injector, limiter=self.limiter,
                            on_order=self.ws.push_user)
        if product_id in (data_products or {}):
            raise ValueError(f"{product_id} is the traded product; data_products holds the others")
        self.data_products = {pid: DataProduct(pid, bars) for pid, bars in (data_products or {}).items()}
        self.ws.data_products = self.rest.data_products = self.data_products
        self.step_interval_s = step_interval_s
        self.paused = False  # True: the auto-steps stop moving the price (nothing rests into a fill)
        self.app = web.Application(middlewares=[self.rest.middleware])
        self.rest.add_routes(self.app.router)
        self.ws.add_routes(self.app.router)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- life --------------------------------------------------------------------------------------

    def add_key(self, key_name: str, public_key: PublicKey) -> None:
        """Accept JWTs signed by `public_key` for the CDP key `key_name`."""
        self.gate.add_key(key_name, public_key)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{WS_MARKET_PATH}"

    @property
    def user_ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{WS_USER_PATH}"

    async def start(self, port: int = 0) -> None:
        """Serve on 127.0.0.1:`port` (0: a free port, then in `port`); start heartbeats and auto-steps."""
        self._runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.port = self._runner.addresses[0][1]
        self._tasks.append(asyncio.create_task(self.ws.heartbeats()))
        if self.step_interval_s is not None:
            self._tasks.append(asyncio.create_task(self._auto_step(self.step_interval_s)))

    async def stop(self) -> None:
        """Stop the background tasks, drop every socket and close the server."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        await self.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the market --------------------------------------------------------------------------------

    async def _auto_step(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            if not self.paused:
                self.step()

    def step(self, n: int = 1) -> None:
        """Advance the price path by `n` points: a market trade each, matching and streaming."""
        for _ in range(n):
            self.market.advance()
            self._trade()
            for d in self.data_products.values():
                d.advance_to(self.market.index)
                self.ws.publish_data_trade(d, d.record_trade(self.market.exchange_now_ns(), self.market.index))

    def set_price(self, price: str) -> None:
        """Move the market to `price` (a decimal string; one trade), matching resting orders."""
        self.market.price = Decimal(price)
        self._trade()

    def _trade(self) -> None:
        self.ws.publish_trade(self.market.record_trade())
        for o in self.market.match_resting():
            self.ws.push_user(o)

    def set_increments(self, *, base: str | None = None, price: str | None = None) -> None:
        """A fault: the product's size (`base`) and price increments change mid-run, as Coinbase does
        (decimal strings). Orders off the new increments are refused with INVALID_*_PRECISION."""
        if base is not None:
            self.market.base_increment = Decimal(base)
        if price is not None:
            self.market.quote_increment = Decimal(price)

    def transfer(self, currency: str, amount: str) -> Decimal:
        """Deposit (`amount` > 0, a decimal string) or withdraw (< 0) `currency` outside trading; the
        accounts endpoints show it at once. Raises matching.Reject for a withdrawal above the available
        balance. Also over HTTP: POST /fake/transfers {"currency", "amount"} (no token: test control)."""
        return self.market.transfer(currency, Decimal(amount))

    async def drop_sockets(self) -> int:
        """Close every WebSocket abruptly (a dropped connection); returns how many were open."""
        return await self.ws.drop_sockets()

    def order_by_client_id(self, coid: str) -> FakeOrder | None:
        """The order placed with client_order_id `coid`, if any."""
        return self.market.order_by_client_id(coid)

    # -- state for tests: the market -------------------------------------------------------------

    @property
    def history(self) -> list[Candle]:
        """The candles the candles endpoint serves (oldest first); tests may replace them."""
        return self.market.history

    @history.setter
    def history(self, candles: list[Candle]) -> None:
        self.market.history = candles

    @property
    def price(self) -> Decimal:
        """The last trade price."""
        return self.market.price

    @property
    def index(self) -> int:
        """Steps taken along the price path (exchange time with `step_ns`); tests may move it."""
        return self.market.index

    @index.setter
    def index(self, value: int) -> None:
        self.market.index = value

    @property
    def partial_fill_fraction(self) -> Decimal | None:
        """When set, a resting order fills at most this fraction of its size per crossing trade."""
        return self.market.partial_fill_fraction

    @partial_fill_fraction.setter
    def partial_fill_fraction(self, value: Decimal | None) -> None:
        self.market.partial_fill_fraction = value

    @property
    def balances(self) -> dict[str, Decimal]:
        """Currency → balance, holds included."""
        return self.market.balances

    @property
    def orders(self) -> dict[str, FakeOrder]:
        """Every order by order_id."""
        return self.market.orders

    @property
    def by_client_id(self) -> dict[str, str]:
        """client_order_id → order_id."""
        return self.market.by_client_id

    @property
    def fills(self) -> list[FakeFill]:
        """Every fill, oldest first."""
        return self.market.fills

    # -- state for tests: faults, requests, sockets ----------------------------------------------

    @property
    def faults(self) -> Faults:
        """The fault knobs; set their fields from tests."""
        return self.injector.faults

    @property
    def fired(self) -> dict[str, int]:
        """Fault name → how often it actually hit a request or message."""
        return self.injector.fired

    @property
    def rate_limit_per_s(self) -> int:
        """Private requests allowed per second; tests may change it."""
        return self.limiter.limit_per_s

    @rate_limit_per_s.setter
    def rate_limit_per_s(self, value: int) -> None:
        self.limiter.limit_per_s = value

    @property
    def rate_limited(self) -> int:
        """Requests refused by the rate limit."""
        return self.limiter.rate_limited

    @property
    def create_posts(self) -> dict[str, int]:
        """client_order_id → POST /orders received."""
        return self.rest.create_posts

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path without the API prefix, status) per REST request; status 0 when dropped."""
        return self.rest.requests

    @property
    def arrivals(self) -> list[tuple[float, bool]]:
        """(`time.monotonic()` seconds, private?) when each REST request reached the server."""
        return self.rest.arrivals

    @property
    def subscribe_messages(self) -> list[dict[str, Any]]:
        """Every decoded client WebSocket message, in order."""
        return self.ws.subscribe_messages
