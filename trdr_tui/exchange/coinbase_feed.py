"""CoinbaseFeed: live market data for paper and live modes (WebSocket first, REST as the fallback).

Implements the engine's Feed: `async for item in feed` yields `Tick`s as trades arrive and a `Candle`
each time a bar of `timeframe` closes. Bars are built from the `market_trades` channel (Coinbase's
`candles` channel only has 5-minute buckets; for a 5m timeframe its values are adopted). A bar closes
when a trade or heartbeat shows the exchange's time has passed its end (plus a small grace for late
trades); bars with no trades at all are emitted flat at the previous close so the timeline has no holes.

Health: the socket's state is published as `FeedHealth` on `feed.health`. While the socket is
unhealthy (reconnecting after a drop, a sequence gap or silent heartbeats), the feed polls the REST
ticker every `poll_interval_s` (30 s by default) so trailing orders keep following the price.
Trades seen twice (a reconnect snapshot, a poll) are ignored by trade id. A bar that spanned a socket
outage may miss trades (the reconnect snapshot and the REST ticker carry only the latest ones), so it
is replaced by the exchange's own candle for that bucket (REST) before it is emitted; items that
arrive meanwhile wait behind it, so the order of the stream never changes. The first bar after the
feed starts is partial the same way (trdr started at 10:40 saw 20 minutes of the 10:00 bar): it is
replaced by the exchange's candle too, or dropped when that cannot be fetched.

Reference products (`references`, e.g. the correlation agent's ETH-USD beside BTC-USD) ride on the same
socket: the subscribe messages name every product. Their trades build bars of the same timeframe the
same way (closed buckets only, flat bars for empty buckets; a bar closes when its own trades, the
traded product's trades or a heartbeat show the exchange's time has passed its end), their partial first
bar and bars that spanned an outage are replaced by the exchange's candle (dropped when it cannot be
fetched), and each closed bar goes to `on_reference(symbol, candle)`, never into the stream: the
engine sees one product. Trade ids are per product, so duplicates are recognised per product.

History (`history`, an async loader: `engine.warmup.warm_start` for a new run): at the start, before
connecting, its closed bars are queued ahead of every live item, so the engine warms on them first; a
live bar that opens at or before the last of them is dropped (counted in `duplicates`), and the bars
that closed between the last of them and the first live bar (the start took that long) are fetched
with the first bar's repair and queued before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import Clock, WallClock
from trdr_tui.core.errors import RetryError, TrdrError
from trdr_tui.core.events import FeedHealth
from trdr_tui.core.timeframes import timeframe_seconds
from trdr_tui.core.types import Candle, Tick
from trdr_tui.exchange.coinbase_auth import JwtSigner
from trdr_tui.exchange.coinbase_models import NS, parse_time_ns
from trdr_tui.exchange.coinbase_rest import CoinbaseRest, RetryPolicy
from trdr_tui.exchange.coinbase_ws import RECONNECT, Envelope, WsConnection

log = logging.getLogger("trdr.market.coinbase")

MAX_FLAT_FILL = 10_000
HEALTH_TOPIC = "feed.health"
_CLOSED = object()  # queued by close(): the end of the stream


class CandleBuilder:
    """OHLCV bars of `tf_ns` from a stream of trades (in time order; trades for closed bars are dropped).

    Buckets with no trades become flat bars at the previous close, so the timeline has no holes.
    """

    def __init__(self, tf_ns: int) -> None:
        self.tf_ns = tf_ns
        self.start: int | None = None
        self.open = self.high = self.low = self.close = 0.0
        self.volume = 0.0
        self.last_close: float | None = None
        self.next_start: int | None = None
        self.late_trades = 0

    def add(self, ts: int, price: float, size: float) -> list[Candle]:
        bucket = ts - ts % self.tf_ns
        floor = self.start if self.start is not None else self.next_start
        if floor is not None and bucket < floor:
            self.late_trades += 1
            return []
        out = self.close_until(bucket) if self.start is not None and bucket > self.start else []
        if self.start is None:
            out.extend(self._flat_until(bucket))
            self.start = bucket
            self.open = self.high = self.low = self.close = price
            self.volume = size
        else:
            self.high = max(self.high, price)
            self.low = min(self.low, price)
            self.close = price
            self.volume += size
        return out

    def close_until(self, ts: int) -> list[Candle]:
        """Every bar that ends at or before `ts`: the forming one, then flat ones for empty buckets."""
        out: list[Candle] = []
        if self.start is not None:
            if ts < self.start + self.tf_ns:
                return out
            bar = Candle(self.start, self.open, self.high, self.low, self.close, self.volume)
            out.append(bar)
            self.last_close = bar.close
            self.next_start = bar.ts + self.tf_ns
            self.start = None
        out.extend(self._flat_until(ts - ts % self.tf_ns))
        return out

    def _flat_until(self, bucket: int) -> list[Candle]:
        if self.next_start is None or self.last_close is None or bucket <= self.next_start:
            return []
        px = self.last_close
        n = min((bucket - self.next_start) // self.tf_ns, MAX_FLAT_FILL)
        first = self.next_start
        self.next_start = first + n * self.tf_ns
        return [Candle(first + i * self.tf_ns, px, px, px, px, 0.0) for i in range(n)]

    def adopt(self, start: int, o: float, h: float, low: float, c: float, v: float) -> None:
        """Take the exchange's own values for the forming bar (candles channel, same bucket)."""
        if self.start == start:
            self.open, self.high, self.low, self.close, self.volume = o, h, low, c, v


class CoinbaseFeed:
    """Market data for one product from Coinbase (or any server speaking its protocol)."""

    source = "coinbase"

    def __init__(
        self,
        symbol: str,
        timeframe: str,
        *,
        ws_url: str,
        rest: CoinbaseRest,
        bus: EventBus | None = None,
        clock: Clock | None = None,
        signer: JwtSigner | None = None,
        silence_s: float = 5.0,
        poll_interval_s: float = 30.0,
        close_grace_s: float = 1.0,
        reconnect: RetryPolicy = RECONNECT,
        channels: Sequence[str] = ("market_trades", "ticker", "candles"),
        repair_bars: bool = True,
        references: Sequence[str] = (),
        on_reference: Callable[[str, Candle], None] | None = None,
        history: Callable[[], Awaitable[list[Candle]]] | None = None,
    ) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.timeframe_ns = timeframe_seconds(timeframe) * NS
        self.rest = rest
        self.bus = bus
        self.clock = clock or WallClock()
        self.poll_interval_s = poll_interval_s
        self.grace_ns = int(close_grace_s * NS)
        self.builder = CandleBuilder(self.timeframe_ns)
        self.references = [r for r in dict.fromkeys(references) if r != symbol]
        self.on_reference = on_reference
        self._ref_builders = {r: CandleBuilder(self.timeframe_ns) for r in self.references}
        self._ref_first: dict[str, int] = {}  # open time of each reference's first bar built (partial)
        self.reference_bars = 0
        self.ws = WsConnection(ws_url, list(channels), [symbol, *self.references], on_message=self._on_message,
                               on_health=self._on_ws_health, signer=signer, silence_s=silence_s,
                               reconnect=reconnect, events=rest.events)
        self._queue: asyncio.Queue[Candle | Tick] = asyncio.Queue()
        self._seen: deque[str] = deque(maxlen=5000)
        self._seen_set: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.bid: float | None = None
        self.ask: float | None = None
        self.bid_size: float | None = None
        self.ask_size: float | None = None
        self.last_price: float | None = None
        self.exchange_ns = 0
        self.polls = 0
        self.trades_in = 0
        self.duplicates = 0
        self.health: list[FeedHealth] = []
        self._closed = False
        self.repair_bars = repair_bars
        self.repaired = 0
        self.dropped = 0
        self._outage_start: int | None = None
        self._closing_outage = False
        self._outages: list[tuple[int, int]] = []
        self._held: list[Candle | Tick] | None = None
        self._first_bar: int | None = None  # open time of the first bar built: partial, always repaired
        self._repairs: set[asyncio.Task[None]] = set()
        self.history = history
        self.history_bars = 0  # closed bars queued from `history` at the start
        self._history_end = -(2**63)  # open time of the last of them

    # -- Feed protocol ---------------------------------------------------------------------------

    async def __aiter__(self) -> AsyncIterator[Candle | Tick]:
        await self.start()
        try:
            while True:
                item = await self._queue.get()
                if item is _CLOSED:
                    return
                yield item
        finally:
            await self.stop()

    async def close(self) -> None:
        """End the stream: the consumer's `async for` finishes (Engine.stop calls this)."""
        self._closed = True
        self._queue.put_nowait(_CLOSED)  # type: ignore[arg-type]
        await self.stop()

    async def start(self) -> None:
        if self._tasks or self._closed:
            return
        if self.history is not None:
            load, self.history = self.history, None
            for candle in await load():
                self._queue.put_nowait(candle)
                self._history_end = candle.ts
                self.history_bars += 1
        self._publish(False, "coinbase-ws", "connecting")
        self._tasks = [asyncio.create_task(self.ws.run(), name="coinbase-ws"),
                       asyncio.create_task(self._poll_loop(), name="coinbase-poll")]

    async def stop(self) -> None:
        await self.ws.stop()
        for t in self._repairs:
            t.cancel()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []

    async def get(self, timeout: float | None = None) -> Candle | Tick:
        """The next item (tests and tools that do not iterate)."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    # -- WebSocket messages ----------------------------------------------------------------------

    def _on_message(self, env: Envelope) -> None:
        self._handle(env)
        if self._closing_outage:
            self._end_outage()

    def _handle(self, env: Envelope) -> None:
        ch = env.channel
        if ch == "market_trades":
            for ev in env.events:
                trades = ev.get("trades") or []
                if self.references:
                    for ref in self.references:
                        self._ref_trades(ref, [t for t in trades if t.get("product_id") == ref])
                    trades = [t for t in trades if t.get("product_id", self.symbol) not in self._ref_builders]
                self._trades(trades)
        elif ch == "ticker":
            for ev in env.events:
                for t in ev.get("tickers") or []:
                    if t.get("product_id") == self.symbol:
                        self.bid = _float(t.get("best_bid")) or self.bid
                        self.ask = _float(t.get("best_ask")) or self.ask
                        self.bid_size = _float(t.get("best_bid_quantity")) or self.bid_size
                        self.ask_size = _float(t.get("best_ask_quantity")) or self.ask_size
        elif ch == "heartbeats":
            for ev in env.events:
                with contextlib.suppress(TrdrError, AttributeError):
                    self._advance(parse_time_ns(ev.get("current_time", "")))
        elif ch == "candles" and self.timeframe == "5m":
            for ev in env.events:
                for c in ev.get("candles") or []:
                    builder = self.builder if c.get("product_id") == self.symbol else \
                        self._ref_builders.get(c.get("product_id", ""))
                    if builder is not None:
                        with contextlib.suppress(TypeError, ValueError):
                            builder.adopt(int(c["start"]) * NS, float(c["open"]), float(c["high"]),
                                               float(c["low"]), float(c["close"]), float(c["volume"]))

    def _parse_trades(self, product: str, trades: list[dict[str, Any]]) -> list[tuple[int, str, float, float]]:
        """`product`'s trades not seen before, as (ts ns, trade id, price, size) in time order; a trade id is
        qualified by its product (Coinbase numbers trades per product). Malformed trades are skipped."""
        parsed: list[tuple[int, str, float, float]] = []
        for t in trades:
            if t.get("product_id", product) != product:
                continue
            tid = f"{product}/{t.get('trade_id', '')}"
            if tid in self._seen_set:
                self.duplicates += 1
                continue
            try:
                parsed.append((parse_time_ns(t["time"]), tid, float(t["price"]), float(t["size"])))
            except (KeyError, TypeError, ValueError, TrdrError):
                log.warning("malformed %s trade skipped", product)
        parsed.sort()
        return parsed

    def _trades(self, trades: list[dict[str, Any]]) -> None:
        parsed = self._parse_trades(self.symbol, trades)
        if not parsed:
            return
        if self._first_bar is None:
            first = parsed[0][0]
            self._first_bar = first - first % self.timeframe_ns
        for ts, tid, price, size in parsed:
            self._remember(tid)
            self.trades_in += 1
            self._close_references(ts)
            for candle in self.builder.add(ts, price, size):
                self._emit(candle)
            self.exchange_ns = max(self.exchange_ns, ts)
        ts, _, price, size = parsed[-1]
        self.last_price = price
        self._emit(Tick(self.symbol, ts, price, size, self.bid, self.ask, self.bid_size, self.ask_size))

    def _remember(self, tid: str) -> None:
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(tid)
        self._seen_set.add(tid)

    def _advance(self, exchange_ns: int) -> None:
        self.exchange_ns = max(self.exchange_ns, exchange_ns)
        self._close_references(exchange_ns - self.grace_ns)
        for candle in self.builder.close_until(exchange_ns - self.grace_ns):
            self._emit(candle)

    # -- reference products: bars of their own, handed to `on_reference` --------------------------

    def _ref_trades(self, ref: str, trades: list[dict[str, Any]]) -> None:
        parsed = self._parse_trades(ref, trades)
        if not parsed:
            return
        if ref not in self._ref_first:
            self._ref_first[ref] = parsed[0][0] - parsed[0][0] % self.timeframe_ns
        builder = self._ref_builders[ref]
        for ts, tid, price, size in parsed:
            self._remember(tid)
            for candle in builder.add(ts, price, size):
                self._reference_bar(ref, candle)

    def _close_references(self, exchange_ns: int) -> None:
        """The exchange's time reached `exchange_ns`: every reference bar that ended by then is closed."""
        for ref, builder in self._ref_builders.items():
            for candle in builder.close_until(exchange_ns):
                self._reference_bar(ref, candle)

    def _reference_bar(self, ref: str, candle: Candle) -> None:
        first = candle.ts == self._ref_first.get(ref)
        if self.repair_bars and (first or self._degraded(candle)):
            task = asyncio.get_running_loop().create_task(self._repair_reference(ref, candle, first))
            self._repairs.add(task)
            task.add_done_callback(self._repairs.discard)
            return
        self._deliver_reference(ref, candle)

    async def _repair_reference(self, ref: str, built: Candle, first: bool) -> None:
        start_s = built.ts // NS
        try:
            got = await self.rest.get_candles(ref, start_s, start_s + self.timeframe_ns // NS, self.timeframe)
        except TrdrError as exc:
            self.rest.events.emit("feed.repair", "warning", "feed",
                                  f"{ref} bar {built.ts} could not be fetched: {exc.message}")
            got = []
        if got and got[0].ts == built.ts:
            self.repaired += 1
            self._deliver_reference(ref, got[0])
        elif first:  # partial, and no exchange candle to replace it with
            self.dropped += 1
        else:
            self._deliver_reference(ref, built)

    def _deliver_reference(self, ref: str, candle: Candle) -> None:
        self.reference_bars += 1
        if self.on_reference is not None:
            try:
                self.on_reference(ref, candle)
            except TrdrError as exc:  # e.g. the store refused it: the main stream goes on
                log.warning("reference bar %s %s not kept: %s", ref, candle.ts, exc.message)

    # -- health and the REST fallback ------------------------------------------------------------

    def _on_ws_health(self, healthy: bool, detail: str) -> None:
        if healthy:
            self._closing_outage = self._outage_start is not None  # closed once this message is handled
        elif self._outage_start is None and self.exchange_ns:
            self._outage_start = self.exchange_ns
            self._closing_outage = False
        self._publish(healthy, "coinbase-ws", detail)

    def _end_outage(self) -> None:
        """The first message after a reconnect (a snapshot or a heartbeat) says when the outage ended."""
        assert self._outage_start is not None
        self._outages.append((self._outage_start, self.exchange_ns))
        del self._outages[:-50]
        self._outage_start = None
        self._closing_outage = False

    # -- bars that spanned an outage are replaced by the exchange's own candle -------------------

    def _degraded(self, candle: Candle) -> bool:
        if candle.ts == self._first_bar:
            return True
        end = candle.ts + self.timeframe_ns
        if self._outage_start is not None and self._outage_start < end:
            return True
        return any(a < end and b >= candle.ts for a, b in self._outages)

    def _emit(self, item: Candle | Tick) -> None:
        """Queue an item in order; a bar built while the socket was down waits for the REST candle."""
        if self._held is not None:
            self._held.append(item)
            return
        if isinstance(item, Candle) and item.ts <= self._history_end:
            self.duplicates += 1
            return
        if isinstance(item, Candle) and self.repair_bars and self._degraded(item):
            self._held = []
            task = asyncio.get_running_loop().create_task(self._repair(item))
            self._repairs.add(task)
            task.add_done_callback(self._repairs.discard)
            return
        self._queue.put_nowait(item)

    async def _repair(self, built: Candle) -> None:
        candle: Candle | None = built
        gap: list[Candle] = []  # closed bars between the history and the first live bar
        try:
            start_s = built.ts // NS
            end_s = start_s + self.timeframe_ns // NS
            if built.ts == self._first_bar and self.history_bars and built.ts > self._history_end + self.timeframe_ns:
                got = await self.rest.candles_range(self.symbol, (self._history_end + self.timeframe_ns) // NS, end_s,
                                                    self.timeframe)
                gap = [c for c in got if self._history_end < c.ts < built.ts]
            else:
                got = await self.rest.get_candles(self.symbol, start_s, end_s, self.timeframe)
            match = [c for c in got if c.ts == built.ts]
            if match:
                candle = match[0]
                self.repaired += 1
        except TrdrError as exc:
            why = "began before the feed started" if built.ts == self._first_bar else "spanned an outage"
            self.rest.events.emit("feed.repair", "warning", "feed",
                                  f"bar {built.ts} {why} and could not be fetched: {exc.message}")
        if candle is built and built.ts == self._first_bar:  # no exchange candle to replace it with
            candle = None
            self.dropped += 1
        held, self._held = self._held or [], None
        for c in gap:
            self._queue.put_nowait(c)
        if candle is not None:
            self._queue.put_nowait(candle)
        for item in held:
            self._emit(item)

    def _publish(self, healthy: bool, source: str, detail: str) -> None:
        event = FeedHealth(ts=self.clock.now_ns(), source=source, healthy=healthy, detail=detail)
        self.health.append(event)
        del self.health[:-100]
        if self.bus is not None:
            self.bus.publish(HEALTH_TOPIC, event)

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            if self.ws.healthy:
                continue
            try:
                resp = await self.rest.market_trades(self.symbol, limit=100)
            except (RetryError, TrdrError) as exc:
                self._publish(False, "coinbase-rest", f"poll failed: {exc.message}")
                continue
            self.polls += 1
            bid, ask = _float(resp.best_bid), _float(resp.best_ask)
            self.bid, self.ask = bid or self.bid, ask or self.ask
            self._trades([{"trade_id": t.trade_id, "product_id": t.product_id, "price": str(t.price),
                           "size": str(t.size), "time": t.time} for t in resp.trades])
            self._publish(True, "coinbase-rest", "polling while the socket is down")


def _float(x: Any) -> float | None:
    try:
        return float(x) if x not in (None, "") else None
    except (TypeError, ValueError):
        return None
