"""Load on the control API: many WebSocket clients subscribed to every channel of a running bot.

A real headless bot (`trdr --headless --feed replay --api 127.0.0.1:PORT`, its own process, a temporary
database) replays the real hourly BTC-USD candles at `--speed` candles per second (125 by default:
about 1,000 engine events/s, 8 a bar). Then:

1. without clients: `bench_latency.py` (WS trade frame → POST /orders, its own engine and fake exchange,
   another process) runs beside the replaying bot;
2. `--clients` aiohttp WebSocket clients connect to `/api/ws` with the bot's token, subscribe to `"*"`
   (every channel, `events` included) with `"batch_ms": --batch-ms` (50 by default: one frame, a JSON
   array of messages, every 50 ms; 0: one message a frame), decode every frame with msgspec (each
   message's JSON parsed and checked, its `data` kept raw) and count the messages by channel, for
   `--seconds`; meanwhile the bot's resident memory and CPU time are sampled from /proc every second and
   `bench_latency.py` runs again. The clients run in `--procs` processes of their own (this script with
   `--worker`), so that the figures measure the server, not one client loop starved of CPU.

The clients' own CPU is an artefact of running them on the bot's machine (real ones are elsewhere).
`--pin` pins the client processes to the last CPU and the bot and both `bench_latency.py` runs to the
others; `--client-nice N` lowers the clients' priority. Either is printed with the figures; neither is
on by default, and other jobs on the machine are never pinned.

Printed: messages and frames delivered per client (total, per second, by channel), the bot's engine event
rate (events published on its bus per second: `api_bus_events_total` from `/metrics`) next to it, the
server's sent, dropped and coalesced counts (`api_ws_sent_total`, `api_ws_dropped_total`,
`api_ws_coalesced_total`), the bot's and the client processes' CPU (% of one core), the bot's RSS
before/peak/after, the load average, and the latency figures of both runs with their difference.
Everything is on loopback, bounded in clients and time, and stops by itself (the bot is stopped through
`POST /api/trading/stop`, killed only if it does not exit).

    .venv/bin/python bench/bench_api.py [--clients 100] [--procs 4] [--seconds 60] [--speed 125]
        [--batch-ms 50] [--samples 100] [--pin] [--client-nice N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import msgspec

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "coinbase_btcusd_1h_2017-07_2019-10.cdd.csv"
LATENCY_LINE = re.compile(r"p50 ([\d.]+) ms\s+p90 ([\d.]+) ms\s+p99 ([\d.]+) ms")


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def placement(cpus: set[int] | None, nice: int = 0) -> Callable[[], None] | None:
    """What a child process runs before exec: pin it to `cpus`, lower its priority by `nice`."""
    if cpus is None and not nice:
        return None

    def place() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        if nice:
            os.nice(nice)
    return place


def start_bot(tmp: Path, speed: str, cpus: set[int] | None) -> tuple[subprocess.Popen[bytes], str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRDR_")}
    env["XDG_CONFIG_HOME"] = str(tmp / "config")
    env["XDG_DATA_HOME"] = str(tmp / "data")
    db = tmp / "bot.duckdb"
    data = ["--data", str(DATA)] if DATA.exists() else []
    proc = subprocess.Popen([sys.executable, "-m", "trdr_tui", "--db", str(db), "--headless", "--feed", "replay",
                             *data, "--speed", speed, "--api", "127.0.0.1:0"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=placement(cpus))
    discovery = tmp / "bot.duckdb.api.json"
    deadline = time.monotonic() + 60
    while not discovery.is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the bot did not start")
        time.sleep(0.05)
    info = json.loads(discovery.read_text())
    return proc, info["url"], Path(info["token_file"]).read_text().strip()


async def run_latency(samples: int, cpus: set[int] | None) -> tuple[float, float, float]:
    proc = await asyncio.create_subprocess_exec(sys.executable, str(REPO / "bench" / "bench_latency.py"),
                                                "--samples", str(samples), cwd=REPO, preexec_fn=placement(cpus),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    m = LATENCY_LINE.search(out.decode())
    if not m:
        raise SystemExit(f"bench_latency.py gave no figures:\n{out.decode()}")
    p50, p90, p99 = (float(x) for x in m.groups())
    return p50, p90, p99


CHANNEL = operator.attrgetter("channel")


class Message(msgspec.Struct):
    """A server message: `channel` (a reply has none) and its data, parsed as JSON but not converted."""

    channel: str = "reply"
    type: str = ""
    data: msgspec.Raw = msgspec.Raw(b"null")


async def client(session: aiohttp.ClientSession, url: str, token: str, batch_ms: int, counts: Counter[str],
                 stop: asyncio.Event) -> None:
    """One client: subscribes to every channel (batched frames when `batch_ms` > 0) and decodes every
    frame with msgspec (each message's JSON parsed and checked; its `data` kept raw, as a client that
    reads only some channels would), counting the messages by channel."""
    decode = msgspec.json.Decoder(list[Message] | Message).decode
    async with session.ws_connect(url + "/api/ws", headers={"Authorization": f"Bearer {token}"},
                                  max_msg_size=0) as ws:
        await ws.send_str(json.dumps({"type": "subscribe", "channels": ["*"], "batch_ms": batch_ms}))
        acked = False
        while not acked:  # the `events` backlog is queued before the ack
            frame = decode((await ws.receive()).data)
            for reply in frame if isinstance(frame, list) else (frame,):
                if reply.type == "error":
                    raise SystemExit(f"subscribe refused: {reply}")
                acked = acked or reply.type == "ack"
        counts["ready"] = 1
        while not stop.is_set():
            try:
                msg = await asyncio.wait_for(ws.receive(), 0.5)
            except TimeoutError:
                continue
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            frame = decode(msg.data)
            counts["frames"] += 1
            counts.update(map(CHANNEL, frame) if isinstance(frame, list) else (frame.channel,))


async def worker(url: str, token: str, n: int, seconds: float, batch_ms: int) -> None:
    """`--worker`: n clients in this process; prints READY when all subscribed, then (after `seconds`
    of counting) one JSON line: the per-client channel counts and this process's CPU seconds meanwhile."""
    counts = [Counter[str]() for _ in range(n)]
    stop = asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = [asyncio.create_task(client(session, url, token, batch_ms, c, stop)) for c in counts]
        while sum(c["ready"] for c in counts) < n:
            if any(t.done() for t in tasks):
                await asyncio.gather(*tasks)
            await asyncio.sleep(0.05)
        for c in counts:
            c.clear()
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "GO"
        for c in counts:
            c.clear()
        cpu0 = time.process_time()
        await asyncio.sleep(seconds)
        snapshot = {"counts": [dict(c) for c in counts], "cpu": time.process_time() - cpu0}
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(snapshot), flush=True)


async def metric(session: aiohttp.ClientSession, url: str, token: str, name: str) -> float:
    async with session.get(url + "/metrics", headers={"Authorization": f"Bearer {token}"}) as r:
        text = await r.text()
    m = re.search(rf"^{name} ([\d.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else float("nan")


async def bars(session: aiohttp.ClientSession, url: str, token: str) -> int:
    async with session.get(url + "/api/status", headers={"Authorization": f"Bearer {token}"}) as r:
        return int((await r.json())["bars"])


def split_cpus(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """With `pin`: (the bot's and bench_latency's CPUs, the clients' CPU): the last CPU for the clients."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    return set(cpus[:-1]), {cpus[-1]}


async def bench(args: argparse.Namespace, url: str, token: str, pid: int) -> None:
    server_cpus, client_cpus = split_cpus(args.pin)
    async with aiohttp.ClientSession() as http:
        rss0 = rss_mib(pid)
        b0, e0, c0 = await bars(http, url, token), await metric(http, url, token, "api_bus_events_total"), cpu_seconds(pid)
        print(f"without clients: bench_latency.py --samples {args.samples} beside the replaying bot …", flush=True)
        ta = time.monotonic()
        base = await run_latency(args.samples, server_cpus)
        b1, e1, c1 = await bars(http, url, token), await metric(http, url, token, "api_bus_events_total"), cpu_seconds(pid)
        took = time.monotonic() - ta
        print(f"  the bot replayed {b1 - b0} bars meanwhile ({(b1 - b0) / took:.0f} bars/s, "
              f"{(e1 - e0) / took:,.0f} engine events/s, {100 * (c1 - c0) / took:.0f} % of one core)")

        share = [args.clients // args.procs + (i < args.clients % args.procs) for i in range(args.procs)]
        workers = [await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--worker", url, token, str(k), str(args.seconds), str(args.batch_ms),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            preexec_fn=placement(client_cpus, args.client_nice)) for k in share if k]
        for w in workers:
            assert w.stdout is not None
            line = await asyncio.wait_for(w.stdout.readline(), 120)
            if line.strip() != b"READY":
                raise SystemExit(f"a client process failed to subscribe: {line!r}")
        sent0 = await metric(http, url, token, "api_ws_sent_total")
        dropped0 = await metric(http, url, token, "api_ws_dropped_total")
        coalesced0 = await metric(http, url, token, "api_ws_coalesced_total")
        events0 = await metric(http, url, token, "api_bus_events_total")
        t0, b2, cpu0 = time.monotonic(), await bars(http, url, token), cpu_seconds(pid)
        for w in workers:
            assert w.stdin is not None
            w.stdin.write(b"GO\n")
            await w.stdin.drain()
        framing = f"batched frames every {args.batch_ms} ms" if args.batch_ms else "one message a frame"
        print(f"{args.clients} clients in {len(workers)} processes subscribed to every channel ({framing}); "
              "bench_latency.py runs again …", flush=True)
        latency = asyncio.create_task(run_latency(args.samples, server_cpus))
        peak = rss_mib(pid) or 0.0
        while time.monotonic() - t0 < args.seconds:
            await asyncio.sleep(1.0)
            peak = max(peak, rss_mib(pid) or 0.0)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(pid) - cpu0
        sent = await metric(http, url, token, "api_ws_sent_total") - sent0
        b3 = await bars(http, url, token)
        events = await metric(http, url, token, "api_bus_events_total") - events0
        dropped = await metric(http, url, token, "api_ws_dropped_total") - dropped0
        coalesced = await metric(http, url, token, "api_ws_coalesced_total") - coalesced0
        rss1 = rss_mib(pid)
        load = os.getloadavg()
        counts: list[Counter[str]] = []
        wcpu = 0.0
        for w in workers:
            out, _ = await w.communicate()
            report = json.loads(out.decode().strip().splitlines()[-1])
            counts += [Counter[str](c) for c in report["counts"]]
            wcpu += report["cpu"]
        loaded = await latency

        per = sorted(sum(c.values()) - c["reply"] - c["frames"] for c in counts)
        by_channel = Counter[str]()
        for c in counts:
            by_channel.update(c)
        frames = by_channel.pop("frames", 0)
        del by_channel["reply"]
        print(f"\nwith {args.clients} clients for {elapsed:.1f} s (bot at --speed {args.speed}: {b3 - b2} bars, "
              f"{(b3 - b2) / elapsed:.0f} bars/s; {events / elapsed:,.0f} engine events/s on its bus):")
        print(f"  messages delivered per client: median {statistics.median(per):,.0f} "
              f"({statistics.median(per) / elapsed:,.0f}/s), min {per[0] / elapsed:,.0f}/s, "
              f"max {per[-1] / elapsed:,.0f}/s")
        print("  per client by channel (mean): " + ", ".join(
            f"{ch} {n / args.clients:,.0f}" for ch, n in by_channel.most_common()))
        print(f"  `events` messages per client (mean) / engine events on the bus: "
              f"{by_channel['events'] / args.clients / max(events, 1):.3f} (windows differ by the sampling)")
        print(f"  frames per client: {frames / args.clients / elapsed:,.1f}/s "
              f"({sum(per) / max(frames, 1):,.1f} messages a frame); every frame decoded with msgspec")
        print(f"  server: sent {sent:,.0f} messages, dropped {dropped:,.0f}, coalesced {coalesced:,.0f} "
              "(all clients, /metrics)")
        print(f"  bot RSS: {rss0:.0f} MiB before clients, peak {peak:.0f} MiB, {rss1:.0f} MiB at the end")
        print(f"  bot CPU: {100 * cpu / elapsed:.0f} % of one core; client processes: {100 * wcpu / elapsed:.0f} % of "
              f"one core; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
        if args.client_nice:
            print(f"  NOTE: the client processes ran at nice {args.client_nice} (lower CPU priority than the bot "
                  "and bench_latency.py), standing in for clients on other machines")
        if client_cpus is not None:
            print(f"  NOTE: the client processes were pinned to CPU {sorted(client_cpus)}, the bot and "
                  f"bench_latency.py (both runs) to CPU {sorted(server_cpus or ())}, standing in for clients on "
                  "other machines; other jobs on this machine were not pinned")
        print("\nWS trade → POST /orders (bench_latency.py, another process beside the bot):")
        print(f"  without clients: p50 {base[0]:.2f} ms  p90 {base[1]:.2f} ms  p99 {base[2]:.2f} ms")
        print(f"  with clients:    p50 {loaded[0]:.2f} ms  p90 {loaded[1]:.2f} ms  p99 {loaded[2]:.2f} ms")
        print(f"  change of p50: {100 * (loaded[0] - base[0]) / base[0]:+.1f} %, "
              f"p99: {100 * (loaded[2] - base[2]) / base[2]:+.1f} %")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=100, help="WebSocket clients (1-500, default 100)")
    p.add_argument("--seconds", type=float, default=60.0, help="longest time with the clients (1-60, default 60)")
    p.add_argument("--speed", default="125", help="the bot's replay speed, candles per second (default 125: "
                                                  "about 1,000 engine events/s, 8 events a bar)")
    p.add_argument("--samples", type=int, default=100, help="bench_latency.py samples per run (default 100)")
    p.add_argument("--procs", type=int, default=4, help="client processes (1-32, default 4)")
    p.add_argument("--batch-ms", type=int, default=50,
                   help="the clients' batch_ms: a frame of messages every N ms (0: one message a frame; default 50)")
    p.add_argument("--pin", action="store_true",
                   help="pin the client processes to the last CPU and the bot and bench_latency.py to the others "
                        "(printed)")
    p.add_argument("--client-nice", type=int, default=0,
                   help="run the client processes at this nice value (0-19, default 0: same priority; printed)")
    p.add_argument("--worker", nargs=5, metavar=("URL", "TOKEN", "N", "SECONDS", "BATCH_MS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        url, token, n, seconds, batch_ms = args.worker
        asyncio.run(worker(url, token, int(n), float(seconds), int(batch_ms)))
        return 0
    if not 1 <= args.procs <= 32:
        p.error("--procs must be 1-32")
    if not 0 <= args.batch_ms <= 1000 or not 0 <= args.client_nice <= 19:
        p.error("--batch-ms must be 0-1000 and --client-nice 0-19")
    if not 1 <= args.clients <= 500 or not 1 <= args.seconds <= 60:
        p.error("--clients must be 1-500 and --seconds 1-60")
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, token = start_bot(Path(tmp), args.speed, split_cpus(args.pin)[0])
        try:
            asyncio.run(bench(args, url, token, proc.pid))
        finally:
            try:
                import urllib.request

                urllib.request.urlopen(urllib.request.Request(
                    url + "/api/trading/stop", method="POST", headers={"Authorization": f"Bearer {token}"}), timeout=10)
                proc.wait(timeout=60)
            except Exception:
                proc.kill()
                proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
