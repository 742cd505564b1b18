"""The streaming path against the batch path on the same candles: a headless max-speed replay of the
hourly dev file (`trdr --headless --feed replay --speed max`, paper fills, every event to stdout and the
log files, the decision log and checkpoints in DuckDB, the control API on) against `trdr backtest` of
the same file. Both run as real `trdr` processes on fresh databases, interleaved `--repeat` times; each
figure is the best run, as wall time and as CPU time of the process and its threads (user + system, from
`wait4`), which is steadier on a shared machine. The aim (issue: fast streaming path) is a replay within
2× the backtest's time.

Then the floor under the replay, in wall time: its fixed cost (the same replay of the file's first 60
bars, as a process) plus, in this process, the streaming engine alone on the whole file (`Engine.run` in
paper mode with no store and no subscriber: the panel, the grid and the simulated fills per candle,
best of `--repeat`). Their sum against the backtest is the ratio no persistence, logging or API work
could go below.

    .venv/bin/python bench/bench_replay.py [--repeat 3] [--data FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOURLY = REPO.parent / "shared" / "data" / "coinbase_btcusd_1h_2017-07_2019-10.cdd.csv"
TRDR = [sys.executable, "-m", "trdr_tui"]


# as a user's shell runs trdr: Python caches compiled modules (the first run compiles them; the figures are
# the best run) and buffers a piped stdout; an environment that turns either off makes every run pay for it
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")}


def timed(args: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one trdr process; raises CalledProcessError when it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, args, stderr=err)
    return wall, usage.ru_utime + usage.ru_stime


def streaming_floor_s(data: Path, repeat: int) -> float:
    """Wall seconds (best of `repeat`) of `Engine.run` streaming `data` in paper mode, no store, no bus
    subscriber, with the file's own timeframe."""
    from trdr_tui.backtest.walkforward import with_overrides
    from trdr_tui.config import load_settings
    from trdr_tui.core.bus import EventBus
    from trdr_tui.engine.assembly import build_engine
    from trdr_tui.market.importer import read_candle_file

    parsed = read_candle_file(data)
    settings = with_overrides(load_settings(), {"timeframe": parsed.timeframe})
    best = float("inf")
    for _ in range(repeat):
        engine = build_engine(settings, mode="paper", candles=parsed.candles, bus=EventBus())
        t0 = time.perf_counter()
        asyncio.run(engine.run())
        best = min(best, time.perf_counter() - t0)
    return best


def replay_cmd(db: Path, log: Path, data: Path) -> list[str]:
    return [*TRDR, "--db", str(db), "--log-file", str(log), "--api", "127.0.0.1:0", "--headless",
            "--feed", "replay", "--speed", "max", "--data", str(data)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, choices=range(1, 100), metavar="N (1-99)")
    ap.add_argument("--data", type=Path, default=HOURLY)
    args = ap.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {"backtest": [], "replay": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for name in runs:
                db = Path(tmp) / f"{name}{i}.duckdb"
                log = Path(tmp) / f"{name}{i}.log"
                if name == "backtest":
                    cmd = [*TRDR, "--db", str(db), "--log-file", str(log), "backtest", "--data", str(args.data)]
                else:
                    cmd = replay_cmd(db, log, args.data)
                runs[name].append(timed(cmd))
        head = Path(tmp) / "head.csv"  # the file's first 60 bars: a replay that is all fixed cost
        lines = args.data.read_text().splitlines(keepends=True)
        first = next(i for i, line in enumerate(lines) if line[:1].isdigit())
        head.write_text("".join(lines[:first + 60]))
        fixed = min(timed(replay_cmd(Path(tmp) / f"head{i}.duckdb", Path(tmp) / "head.log", head))[0]
                    for i in range(args.repeat))
    best = {name: (min(w for w, _ in r), min(c for _, c in r)) for name, r in runs.items()}
    for name, (wall, cpu) in best.items():
        print(f"{name:<9} wall {wall:6.2f} s   cpu {cpu:6.2f} s   (best of {args.repeat})")
    (bw, bc), (rw, rc) = best["backtest"], best["replay"]
    print(f"replay / backtest: wall {rw / bw:.2f}×   cpu {rc / bc:.2f}×   (aim: ≤ 2×)   load {os.getloadavg()[0]:.1f}")
    from trdr_tui.market.importer import load_candle_file

    n = len(load_candle_file(args.data))
    engine_s = streaming_floor_s(args.data, args.repeat)
    floor = fixed + engine_s
    print(f"floor (wall): fixed cost {fixed:.2f} s (a 60-bar replay) + the streaming engine alone {engine_s:.2f} s "
          f"({engine_s / n * 1e6:.1f} µs/candle × {n:,}) = {floor:.2f} s = {floor / bw:.2f}× the backtest, "
          "before persistence, logs and the API")


if __name__ == "__main__":
    main()
