"""The WebSocket channels: subscriptions (with the subscribe deadline and JWT check), per-connection
sequence numbers, heartbeats in the Go time layout, market and user updates, and the socket faults."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from trdr_testkit.fake_coinbase.auth import JwtGate
from trdr_testkit.fake_coinbase.faults import FaultInjector
from trdr_testkit.fake_coinbase.matching import FakeOrder, Market
from trdr_testkit.fake_coinbase.reference import DataProduct
from trdr_testkit.fake_coinbase.wire import WS_MARKET_PATH, WS_USER_PATH, dec, iso

MARKET_CHANNELS = frozenset({"heartbeats", "ticker", "ticker_batch", "market_trades", "candles", "status", "level2"})
USER_CHANNELS = frozenset({"heartbeats", "user", "futures_balance_summary"})
TRADE_KEYS = ("trade_id", "product_id", "price", "size", "side", "time")
"""The fields of a market trade as the market_trades channel sends it."""
SNAPSHOT_TRADES = 50
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    user: bool
    channels: set[str] = field(default_factory=set)
    products: set[str] = field(default_factory=set)  # product_ids subscribed (the traded one is always sent)
    seq: int = 0
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)


class WsChannels:
    """The market (`WS_MARKET_PATH`) and user (`WS_USER_PATH`) WebSocket endpoints over a `Market`.

    `now_ns` is the wall clock (UNIX nanoseconds) stamping subscription and user messages; market
    messages carry exchange time. A connection that has not subscribed within `subscribe_deadline_s`
    is closed (1008). For tests: `connections` (sockets ever opened) and `subscribe_messages` (every
    decoded client message, in order).
    """

    def __init__(self, *, market: Market, gate: JwtGate, injector: FaultInjector, now_ns: Callable[[], int],
                 heartbeat_s: float, subscribe_deadline_s: float) -> None:
        self.market = market
        self.gate = gate
        self.injector = injector
        self.heartbeat_s = heartbeat_s
        self.subscribe_deadline_s = subscribe_deadline_s
        self.connections = 0
        self.subscribe_messages: list[dict[str, Any]] = []
        self._now_ns = now_ns
        self._conns: list[_Conn] = []
        self.data_products: dict[str, DataProduct] = {}  # market-data-only products (reference.py)
        self._sends: list[asyncio.Task[None]] = []

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register the two WebSocket endpoints."""
        router.add_get(WS_MARKET_PATH, self.h_ws)
        router.add_get(WS_USER_PATH, self.h_ws_user)

    async def h_ws(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, user=False)

    async def h_ws_user(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, user=True)

    async def _serve(self, request: web.Request, *, user: bool) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        conn = _Conn(ws=ws, user=user)
        self._conns.append(conn)
        self.connections += 1
        watchdog = asyncio.create_task(self._subscribe_deadline(conn))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._on_message(conn, msg.data)
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

    async def _on_message(self, conn: _Conn, data: str) -> None:
        try:
            msg = msgspec.json.decode(data)
        except msgspec.DecodeError:
            await conn.ws.send_json({"type": "error", "message": "malformed message"})
            return
        self.subscribe_messages.append(msg)
        typ, channel = msg.get("type"), msg.get("channel")
        allowed = USER_CHANNELS if conn.user else MARKET_CHANNELS
        if typ not in ("subscribe", "unsubscribe") or channel not in allowed:
            await conn.ws.send_json({"type": "error", "message": "failure to subscribe"})
            return
        token = msg.get("jwt")
        if (token or channel == "user") and not self.gate.token_ok(token or ""):
            await conn.ws.send_json({"type": "error", "message": "authentication failure"})
            return
        if typ == "subscribe":
            conn.channels.add(channel)
            conn.products.update(p for p in msg.get("product_ids") or [] if p in self.data_products)
        else:
            conn.channels.discard(channel)
        conn.subscribed.set()
        m = self.market
        subs = {ch: [m.product_id, *sorted(conn.products)] for ch in conn.channels}
        self._send(conn, "subscriptions", [{"subscriptions": subs}], iso(self._now_ns()))
        if typ == "subscribe" and channel == "user":
            open_orders = [self._user_order(o) for o in m.orders.values() if o.status == "OPEN"]
            self._send(conn, "user", [{"type": "snapshot", "orders": open_orders, "positions": {}}],
                       iso(self._now_ns()))
        if typ == "subscribe" and channel in ("ticker", "market_trades"):
            bid, ask = m.bid_ask()
            if channel == "ticker":
                event = {"type": "snapshot", "tickers": [{"type": "ticker", "product_id": m.product_id,
                                                          "price": dec(m.price), "best_bid": dec(bid),
                                                          "best_ask": dec(ask)}]}
            else:
                event = {"type": "snapshot", "trades": [{k: t[k] for k in TRADE_KEYS}
                                                        for t in m.market_trades[-SNAPSHOT_TRADES:]]}
            self._send(conn, channel, [event], iso(m.exchange_now_ns()))
            for pid in sorted(conn.products):
                self._send(conn, channel, [self._data_snapshot(self.data_products[pid], channel)],
                           iso(m.exchange_now_ns()))

    @staticmethod
    def _data_snapshot(d: DataProduct, channel: str) -> dict[str, Any]:
        if channel == "market_trades":
            return {"type": "snapshot", "trades": [{k: t[k] for k in TRADE_KEYS} for t in d.market_trades[-SNAPSHOT_TRADES:]]}
        bid, ask = d.bid_ask()
        return {"type": "snapshot", "tickers": [{"type": "ticker", "product_id": d.product_id, "price": dec(d.price),
                                                 "best_bid": dec(bid), "best_ask": dec(ask)}]}

    def _send(self, conn: _Conn, channel: str, events: list[dict[str, Any]], ts: str) -> None:
        if self.injector.faults.ws_stale:
            self.injector.fire("ws_stale")
            return
        if conn.ws.closed:
            return
        if not conn.user and channel not in ("subscriptions", "heartbeats") and self.injector.take("ws_gap"):
            conn.seq += 1  # a message "lost" in transit
        payload = {"channel": channel, "client_id": "", "timestamp": ts, "sequence_num": conn.seq, "events": events}
        conn.seq += 1
        task = asyncio.get_running_loop().create_task(self._send_safely(conn, payload))
        self._sends.append(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._sends.remove(task)

    @staticmethod
    async def _send_safely(conn: _Conn, payload: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.send_str(msgspec.json.encode(payload).decode())

    def _broadcast(self, channel: str, event: dict[str, Any], ts: str) -> None:
        for conn in list(self._conns):
            if channel in conn.channels:
                self._send(conn, channel, [event], ts)

    def publish_trade(self, trade: dict[str, Any]) -> None:
        """Send a market trade (as `Market.record_trade` returns it) on market_trades, and the ticker after it."""
        m = self.market
        bid, ask = m.bid_ask()
        now = iso(m.exchange_now_ns())
        self._broadcast("market_trades", {"type": "update", "trades": [{k: trade[k] for k in TRADE_KEYS}]}, now)
        self._broadcast("ticker", {"type": "update", "tickers": [{
            "type": "ticker", "product_id": m.product_id, "price": dec(m.price), "volume_24_h": "1000",
            "low_24_h": dec(m.price), "high_24_h": dec(m.price), "low_52_w": "1", "high_52_w": "100000",
            "price_percent_chg_24_h": "0", "best_bid": dec(bid), "best_bid_quantity": "1.5", "best_ask": dec(ask),
            "best_ask_quantity": "1.2"}]}, now)

    def publish_data_trade(self, product: DataProduct, trade: dict[str, Any]) -> None:
        """Send a market-data-only product's trade on market_trades, and its ticker, to the connections
        that subscribed to that product."""
        now = iso(self.market.exchange_now_ns())
        bid, ask = product.bid_ask()
        for conn in list(self._conns):
            if product.product_id not in conn.products:
                continue
            if "market_trades" in conn.channels:
                self._send(conn, "market_trades",
                           [{"type": "update", "trades": [{k: trade[k] for k in TRADE_KEYS}]}], now)
            if "ticker" in conn.channels:
                self._send(conn, "ticker", [{"type": "update", "tickers": [{
                    "type": "ticker", "product_id": product.product_id, "price": dec(product.price),
                    "best_bid": dec(bid), "best_bid_quantity": "1.5", "best_ask": dec(ask),
                    "best_ask_quantity": "1.2"}]}], now)

    @staticmethod
    def _user_order(o: FakeOrder) -> dict[str, Any]:
        return {
            "order_id": o.order_id, "client_order_id": o.client_order_id, "cumulative_quantity": dec(o.filled),
            "leaves_quantity": dec(o.base_size - o.filled), "avg_price": dec(o.avg), "total_fees": dec(o.fees),
            "status": o.status, "product_id": o.product_id, "product_type": "SPOT",
            "creation_time": iso(o.created_ns), "order_side": o.side,
            "order_type": {"market": "Market", "stop_gtc": "Stop_Limit"}.get(o.kind, "Limit"),
            "cancel_reason": "", "reject_Reason": o.reject_reason, "time_in_force": o.tif,
            "number_of_fills": str(o.fills), "filled_value": dec(o.filled_value),
            "limit_price": dec(o.limit_price) if o.limit_price else "0",
            "stop_price": dec(o.stop_price or Decimal(0)),
            "post_only": "true" if o.post_only else "false", "outstanding_hold_amount": "0",
            "total_value_after_fees": dec(o.filled_value), "trigger_status": "", "end_time": "", "start_time": "",
        }

    def push_user(self, o: FakeOrder) -> None:
        """Send an order's new state to every user-channel subscriber; nothing while the order is still
        inside the visibility lag (listed late everywhere, the user channel too)."""
        if self.injector.hidden(o.created_ns, self.market.now_ns()):
            return
        ts = iso(self._now_ns())
        for conn in list(self._conns):
            if conn.user and "user" in conn.channels:
                self._send(conn, "user", [{"type": "update", "orders": [self._user_order(o)], "positions": {}}], ts)

    async def heartbeats(self) -> None:
        """Every `heartbeat_s`: a heartbeat (counter and exchange time) to each heartbeats subscriber. Runs
        until cancelled."""
        counter = itertools.count(1)
        while True:
            await asyncio.sleep(self.heartbeat_s)
            n = next(counter)
            now = self.market.exchange_now_ns()
            # the Go time layout real heartbeats use
            go_time = iso(now).replace("T", " ").replace("Z", "") + f"000 +0000 UTC m=+{n * self.heartbeat_s:.6f}"
            for conn in list(self._conns):
                if "heartbeats" in conn.channels:
                    self._send(conn, "heartbeats", [{"current_time": go_time, "heartbeat_counter": n}], iso(now))

    async def drop_sockets(self) -> int:
        """Close every WebSocket abruptly (a dropped connection); returns how many were open."""
        conns, self._conns = list(self._conns), []
        if conns:
            self.injector.fire("ws_drop")
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1011, message=b"dropped")
        return len(conns)

    async def close(self) -> None:
        """Cancel the messages still being sent, then drop every socket."""
        sends, self._sends = list(self._sends), []
        for task in sends:
            task.cancel()
        for task in sends:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.drop_sockets()
