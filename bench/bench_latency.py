"""Internal latency: a WebSocket trade message arriving → the order request leaving the client.

The full live path runs against the local fake exchange: WsConnection (receive, decode, sequence
check) → CoinbaseFeed (trade → Tick) → Engine.on_tick → trailing book fires → OrderManager (risk
check, write-ahead to DuckDB) → CoinbaseExecutor (rounding, outbox write-ahead) → CoinbaseRest (JWT
signing, rate limiter) → the moment the POST /orders is handed to aiohttp.

The price is driven by hand so each sample is one trade that fires one trailing order: a bar closes
(the `simple-trailing` policy arms a trailing BUY or SELL), then a trade 5 % away fires it. The clock
starts when the socket returns the trade frame and stops when the request is handed to the HTTP
client, so the exchange's own processing is not included.

    .venv/bin/python bench/bench_latency.py [--samples 200] [--db FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trdr_testkit.fake_coinbase import FakeExchange  # noqa: E402
from trdr_testkit.fake_coinbase.prices import load_candles  # noqa: E402
from trdr_tui.config import load_settings  # noqa: E402
from trdr_tui.engine.assembly import build_engine  # noqa: E402
from trdr_tui.exchange.coinbase_auth import generate_ec_key_pem  # noqa: E402
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor  # noqa: E402
from trdr_tui.exchange.coinbase_feed import CoinbaseFeed  # noqa: E402
from trdr_tui.exchange.coinbase_rest import CoinbaseRest, RetryPolicy  # noqa: E402
from trdr_tui.exchange.coinbase_ws import Envelope  # noqa: E402
from trdr_tui.exchange.credentials import credentials_from_values  # noqa: E402
from trdr_tui.store import Store  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "coinbase_btcusd_1h_2017-07_2019-10.cdd.csv"
KEY = "organizations/bench0000-0000-4000-8000-000000000000/apiKeys/bench0000-0000-4000-8000-000000000001"
NS = 1_000_000_000


async def wait_for(cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.001)


STORE_WRITES: dict[str, list[float]] = {}


def time_store_writes() -> None:
    """Wrap the two write-ahead steps on the hot path to show how much of the latency they are."""
    from trdr_tui.store.orders import RunRepository
    from trdr_tui.store.outbox import Outbox

    for cls, name, label in ((Outbox, "put", "executor outbox row"), (RunRepository, "update_order", "engine order row")):
        original = getattr(cls, name)

        def timed(*a, __f=original, __label=label, **k):  # type: ignore[no-untyped-def]
            t = time.perf_counter_ns()
            try:
                return __f(*a, **k)
            finally:
                STORE_WRITES.setdefault(__label, []).append((time.perf_counter_ns() - t) / 1e3)

        setattr(cls, name, timed)


async def run(samples: int, db: Path) -> list[float]:
    creds = credentials_from_values(KEY, generate_ec_key_pem(), source="bench")
    candles = load_candles(DATA, limit=50) if DATA.exists() else None
    start = candles[0].ts if candles else 1_560_000_000 * NS
    fake = FakeExchange(candles=candles, heartbeat_s=30.0, step_ns=15 * 60 * NS, start_ns=start,
                        balances={"USD": "1000000000000", "BTC": "0"})
    fake.add_key(creds.key_name, creds.signer().public_key())
    fake.rate_limit_per_s = 100_000  # measure our latency, not Coinbase's 30/s allowance (the client honours it)
    await fake.start()
    stamp = {"trade": 0}
    latencies: list[float] = []

    def on_request(method: str, path: str) -> None:
        if method == "POST" and path == "/orders":
            latencies.append((time.perf_counter_ns() - stamp["trade"]) / 1e3)

    rest = CoinbaseRest(fake.rest_url, signer=creds.signer(), retry=RetryPolicy(initial_s=0.01), on_request=on_request,
                        private_rate=1000, public_rate=1000)
    feed = CoinbaseFeed("BTC-USD", "1h", ws_url=fake.ws_url, rest=rest, signer=creds.signer(), silence_s=120,
                        close_grace_s=0, channels=("market_trades",))
    original = feed.ws.on_message

    def stamped(env: Envelope) -> None:
        if env.channel == "market_trades":
            stamp["trade"] = feed.ws.recv_ns
        original(env)

    feed.ws.on_message = stamped
    store = Store(str(db))
    executor = CoinbaseExecutor(rest, symbol="BTC-USD", store=store, retry=RetryPolicy(initial_s=0.01),
                                poll_interval_s=3600)
    # every sample buys 5 % high and sells 5 % low: start rich enough to stay above the minimum sizes
    # (and under the product's 3,400 BTC maximum)
    engine = build_engine(load_settings(env={}, overrides={"capital": 1e7}), mode="live", feed=feed, executor=executor, store=store,
                          preset="simple-trailing", checkpoint_interval_s=3600)
    await executor.start()
    task = asyncio.create_task(engine.run())
    await wait_for(lambda: feed.ws.healthy)
    await asyncio.sleep(0.2)
    price = 10_000.0
    fake.set_price(f"{price:.2f}")  # opens the first bar
    try:
        for i in range(samples + 5):  # the first few warm the caches and are dropped
            n = len(latencies)
            buying = engine.portfolio.position == 0.0
            fake.index += 4  # an hour later: this trade (at the last price) closes the bar, the policy arms
            fake.set_price(f"{price:.2f}")
            # the order is armed, or already sent on this very trade (a trailing order whose trigger the
            # closing price has reached fires at once: the sample is then that trade → its order)
            await wait_for(lambda n=n: bool(engine.orders.trailing) or len(latencies) > n)
            if len(latencies) == n:
                await asyncio.sleep(0.002)
                price = round(price * (1.05 if buying else 0.95), 2)
                fake.set_price(f"{price:.2f}")  # this trade fires the trailing order
                await wait_for(lambda n=n: len(latencies) > n)
            await wait_for(lambda buying=buying: (engine.portfolio.position > 0.0) == buying)
            if i == 4:
                del latencies[:]
    finally:
        await engine.stop("bench done")
        fake.index += 4
        fake.set_price(f"{price:.2f}")  # one more item so the engine's loop sees the stop
        await asyncio.wait_for(task, 10)
        await feed.stop()
        await executor.stop()
        await rest.close()
        await fake.stop()
        store.close()
    return latencies


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--db", type=Path, help="DuckDB file for the write-ahead (default: a temporary one)")
    p.add_argument("--memory", action="store_true", help="also measure with an in-memory store (no disk commits)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("a DuckDB file on disk", args.db or Path(tmp) / "bench.duckdb")]
        if args.memory:
            runs.append(("an in-memory DuckDB", Path(":memory:")))
        time_store_writes()
        for label, db in runs:
            STORE_WRITES.clear()
            lat = sorted(asyncio.run(run(args.samples, db)))
            q = statistics.quantiles(lat, n=100, method="inclusive")
            print(f"WebSocket trade frame → POST /orders handed to aiohttp, {len(lat)} orders, write-ahead to {label}:")
            print(f"  p50 {q[49] / 1000:.2f} ms   p90 {q[89] / 1000:.2f} ms   p99 {q[98] / 1000:.2f} ms   "
                  f"min {lat[0] / 1000:.2f} ms   max {lat[-1] / 1000:.2f} ms")
            for what, took in STORE_WRITES.items():
                print(f"    {what} writes (one per order on this path): median {statistics.median(took) / 1000:.2f} ms "
                      f"over {len(took)} writes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
