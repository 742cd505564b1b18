"""Cockpit benchmark: time to first frame, and whether the UI keeps up with 1,000 engine events/s.

    .venv/bin/python bench/bench_tui.py [--seconds 10] [--rate 1000] [--runs 5]

1. Time to first frame: from `make_app` (real engine built from the bundled demo data, agents and all)
   to the app's Ready event (first frame drawn), headless, median of `--runs`.
2. Under load: the app runs with its engine idle while a publisher puts `--rate` events/s on the
   engine's bus for `--seconds` (ticks, portfolio snapshots, a candle per 20 events, order events, log
   lines — the mix a busy live session produces). Reported: events published and handled, messages
   spared by coalescing, frames drawn and their interval, time spent redrawing panes per refresh,
   event-loop stalls (a 10 ms probe), the lag from publishing a tick to its handler running, and a key
   press (space → paused) answered mid-flood.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from textual import events

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trdr_tui.commands.run import replay_candles
from trdr_tui.config import load_settings
from trdr_tui.core.events import (
    CandleEvent,
    LogEvent,
    OrderEvent,
    PortfolioSnapshot,
)
from trdr_tui.core.types import (
    Candle,
    Order,
    OrderStatus,
    OrderTransition,
    OrderType,
    Side,
    Tick,
)
from trdr_tui.engine.assembly import build_replay_engine
from trdr_tui.tui.app import TrdrApp, make_app
from trdr_tui.tui.screens.main import MainScreen


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(int(q * len(values)), len(values) - 1)]


def build_app(start_engine: bool) -> TrdrApp:
    settings = load_settings()
    candles = replay_candles(None, settings)
    engine = build_replay_engine(settings, candles, speed=2.0, store=None, log=[])
    return make_app(settings, engine, start_engine=start_engine)


async def first_frame(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        app = build_app(start_engine=True)
        async with app.run_test(size=(120, 40)) as pilot:
            while app.first_frame_at is None:
                await pilot.pause(0.001)
            times.append(app.first_frame_at - t0)
            await app.engine.stop("bench")
    return times


class Probe:
    """Measures what the app does under load without changing it."""

    def __init__(self, app: TrdrApp) -> None:
        self.app = app
        self.published: dict[int, float] = {}
        self.tick_lag: list[float] = []
        self.frames: list[float] = []
        self.frame_cost: list[float] = []
        self.refresh_cost: list[float] = []
        self.stalls: list[float] = []

    def install(self) -> None:
        main = self.app.main
        original_refresh = main.refresh_panes

        def refresh() -> None:
            t = time.perf_counter()
            original_refresh()
            self.refresh_cost.append(time.perf_counter() - t)

        main.refresh_panes = refresh  # type: ignore[method-assign]
        original_frame = main._compositor_refresh

        def frame() -> None:  # one screen update: compose the dirty regions and render their lines
            t = time.perf_counter()
            original_frame()
            self.frames.append(t)
            self.frame_cost.append(time.perf_counter() - t)

        main._compositor_refresh = frame  # type: ignore[method-assign]

    async def watch_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            self.stalls.append(time.perf_counter() - t - 0.01)


async def publish(app: TrdrApp, probe: Probe, rate: int, seconds: float) -> tuple[int, float]:
    bus = app.engine.bus
    symbol = app.engine.symbol
    ts0 = 1_600_000_000 * 10**9
    price = 10_000.0
    sent = 0
    step = 0.01
    per_step = max(rate * step, 1)
    start = time.perf_counter()
    order = Order(id="bench-1", client_order_id="c-bench-1", symbol=symbol, side=Side.BUY,
                  type=OrderType.TRAILING, size=0.01, created_ts=ts0, trail=0.01)
    bar = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed / step) * per_step
        while sent < due:
            sent += 1
            price += 0.5 if sent % 7 else -3.0
            ts = ts0 + sent
            kind = sent % 20
            if kind == 0:
                bar += 1
                bus.publish(f"market.candle.{symbol}", CandleEvent(
                    symbol=symbol, timeframe="1m",
                    candle=Candle(ts0 + bar * 60 * 10**9, price, price + 5, price - 5, price, 1.0)))
            elif kind == 1:
                bus.publish(f"portfolio.{symbol}", PortfolioSnapshot(
                    ts=ts, symbol=symbol, cash=5000.0, position=0.5, avg_entry=9900.0, price=price,
                    equity=5000 + 0.5 * price, realized_pnl=0.0, unrealized_pnl=0.5 * (price - 9900), fees=1.0,
                    peak_equity=5000 + 0.5 * price, drawdown=0.0))
            elif kind == 2:
                bus.publish("log.info", LogEvent(ts=ts, level="info", source="bench", message=f"event {sent}"))
            elif kind == 3:
                tr = OrderTransition(ts, OrderStatus.PENDING, OrderStatus.SUBMITTED, "bench")
                bus.publish("order.bench-1", OrderEvent(order=order, transition=tr))
            else:
                probe.published[ts] = time.perf_counter()
                bus.publish(f"market.tick.{symbol}", Tick(symbol, ts, price))
        await asyncio.sleep(step / 2)
    return sent, time.perf_counter() - start


PROBE: Probe | None = None
_original_tick = MainScreen.on_tick_received


def _timed_tick(screen: MainScreen, message: Any) -> None:
    """Textual dispatches handlers by class: the probe wraps the class's tick handler."""
    if PROBE is not None:
        sent = PROBE.published.pop(int(message.event.ts), None)
        if sent is not None:
            PROBE.tick_lag.append(time.perf_counter() - sent)
    _original_tick(screen, message)


async def under_load(rate: int, seconds: float) -> dict[str, Any]:
    global PROBE
    MainScreen.on_tick_received = _timed_tick  # type: ignore[method-assign]
    app = build_app(start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.first_frame_at is None:
            await pilot.pause(0.01)
        probe = Probe(app)
        PROBE = probe
        probe.install()
        stop = asyncio.Event()
        watcher = asyncio.create_task(probe.watch_loop(stop))
        publisher = asyncio.create_task(publish(app, probe, rate, seconds))
        await asyncio.sleep(seconds / 2)
        t = time.perf_counter()
        # the key goes in as a terminal would send it (pilot.press would also wait for the flood to idle)
        app.post_message(events.Key("space", " "))
        while not app.main.status.paused:
            await asyncio.sleep(0.001)
        key_latency = time.perf_counter() - t
        sent, elapsed = await publisher
        final = 12345.0  # the last word: a tick at a price never sent before must reach the screen
        app.engine.bus.publish(f"market.tick.{app.engine.symbol}", Tick(app.engine.symbol, 1, final))
        drain_start = time.perf_counter()
        while app.main.status.price != final or app.main.chart.last_price != final:
            await asyncio.sleep(0.001)
        drain = time.perf_counter() - drain_start
        await pilot.pause(0.2)
        stop.set()
        await watcher
        stats = app.bridge.stats if app.bridge else None
        shown_price = app.main.status.price
        last_price = app.main.chart.last_price
    intervals = [b - a for a, b in zip(probe.frames, probe.frames[1:], strict=False)]
    return {
        "events": sent, "seconds": elapsed, "rate": sent / elapsed, "stats": stats,
        "frames": len(probe.frames), "frame_interval_p50": pct(intervals, 0.5),
        "frame_cost_p50": pct(probe.frame_cost, 0.5), "frame_cost_p99": pct(probe.frame_cost, 0.99),
        "frame_cost_max": max(probe.frame_cost, default=0.0),
        "frame_interval_p99": pct(intervals, 0.99), "refresh_p50": pct(probe.refresh_cost, 0.5),
        "refresh_p99": pct(probe.refresh_cost, 0.99), "refreshes": len(probe.refresh_cost),
        "stall_p99": pct(probe.stalls, 0.99), "stall_max": max(probe.stalls, default=0.0),
        "lag_p50": pct(probe.tick_lag, 0.5), "lag_p99": pct(probe.tick_lag, 0.99),
        "lag_max": max(probe.tick_lag, default=0.0), "ticks_handled": len(probe.tick_lag),
        "key_latency": key_latency, "drain": drain, "shown_price": shown_price, "chart_price": last_price,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    ff = asyncio.run(first_frame(args.runs))
    print(f"time to first frame (make_app → first frame, headless 120x40, {args.runs} runs): "
          f"median {statistics.median(ff) * 1e3:.0f} ms, min {min(ff) * 1e3:.0f} ms, max {max(ff) * 1e3:.0f} ms")

    r = asyncio.run(under_load(args.rate, args.seconds))
    s = r["stats"]
    ms = 1e3
    print(f"load: {r['events']} events in {r['seconds']:.1f} s = {r['rate']:.0f} events/s on the bus")
    print(f"  bridge: received {s.received}, posted {s.posted}, coalesced in queue {s.coalesced}, "
          f"superseded while parked {s.superseded}, max queue {s.max_queue}")
    print(f"  tick handler lag: p50 {r['lag_p50'] * ms:.1f} ms, p99 {r['lag_p99'] * ms:.1f} ms, "
          f"max {r['lag_max'] * ms:.1f} ms ({r['ticks_handled']} ticks handled)")
    print(f"  screen updates: {r['frames']} in {r['seconds']:.1f} s, interval p50 {r['frame_interval_p50'] * ms:.1f} ms, "
          f"p99 {r['frame_interval_p99'] * ms:.1f} ms; time to draw one: p50 {r['frame_cost_p50'] * ms:.1f} ms, "
          f"p99 {r['frame_cost_p99'] * ms:.1f} ms, max {r['frame_cost_max'] * ms:.1f} ms")
    print(f"  pane redraw per refresh: p50 {r['refresh_p50'] * ms:.2f} ms, p99 {r['refresh_p99'] * ms:.2f} ms "
          f"({r['refreshes']} refreshes)")
    print(f"  event-loop stall (10 ms probe overshoot): p99 {r['stall_p99'] * ms:.1f} ms, "
          f"max {r['stall_max'] * ms:.1f} ms")
    print(f"  key press (space → PAUSED) answered mid-flood in {r['key_latency'] * ms:.1f} ms; "
          f"a final tick reached the status bar and chart {r['drain'] * ms:.1f} ms after it was published")


if __name__ == "__main__":
    main()
