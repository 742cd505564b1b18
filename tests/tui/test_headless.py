"""`trdr --headless` and `trdr --feed replay`: the real CLI in a subprocess, real data, a real DuckDB file."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest

from tests.conftest import HOURLY_CDD, REPO
from trdr_tui.commands.run import parse_speed
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.events import CandleEvent, PortfolioSnapshot
from trdr_tui.core.types import Candle
from trdr_tui.headless import JsonLogger


def candle_file(tmp_path: Path, bars: int) -> Path:
    """The first `bars` rows of the real hourly Coinbase file, in its own published format."""
    lines = HOURLY_CDD.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "slice.cdd.csv"
    path.write_text("\n".join(lines[: bars + 2]) + "\n", encoding="utf-8")
    return path


def trdr(*args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "trdr_tui", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def checkpoints(db: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT type, mode FROM checkpoints ORDER BY id").fetchall()]


def test_replay_runs_to_the_end_and_summarises(tmp_path: Path) -> None:
    data, db, log = candle_file(tmp_path, 240), tmp_path / "t.duckdb", tmp_path / "trdr.log"
    proc = trdr("--db", str(db), "--log-file", str(log), "--headless", "--feed", "replay",
                "--data", str(data), "--speed", "max")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    lines = records(out)
    summary = lines[-1]
    assert summary["type"] == "Summary"
    assert summary["event"]["reason"] == "end of feed"
    assert summary["event"]["bars"] == 240
    assert summary["event"]["final_equity"] > 0
    assert {r["type"] for r in lines} >= {"EngineStatus", "Summary"}
    assert all(r["level"] in ("info", "warning", "error") for r in lines)  # debug is off by default
    logged = records(log.read_text(encoding="utf-8"))
    assert [r for r in logged if "topic" in r] == lines  # the log file has the same event lines
    assert all(r["logger"].startswith("trdr") for r in logged if "topic" not in r)  # and trdr's own records
    assert ("shutdown", "paper") in checkpoints(db)


def test_decisions_reach_the_info_log_when_the_verdict_changes(tmp_path: Path) -> None:
    """A decision is made every bar; at info the output shows the ones whose action differs from the
    bar before (every one is in the decision log, and at debug)."""
    data, db = candle_file(tmp_path, 600), tmp_path / "t.duckdb"
    proc = trdr("--db", str(db), "--no-api", "--headless", "--feed", "replay", "--data", str(data), "--speed", "max")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    shown = [(r["ts"], r["event"]["action"]) for r in records(out) if r["type"] == "Decision"]
    with duckdb.connect(str(db), read_only=True) as conn:
        made = [(int(r[0]), r[1]) for r in conn.execute(
            "SELECT epoch_ns(ts), signal FROM agent_decisions WHERE agent_id = 'consensus' ORDER BY id").fetchall()]
    assert len(made) > 300
    changes = [m for k, m in enumerate(made) if k == 0 or m[1] != made[k - 1][1]]
    assert shown == changes and len(changes) < len(made)
    proc = trdr("--db", str(tmp_path / "d.duckdb"), "--no-api", "--log-level", "debug", "--headless", "--feed",
                "replay", "--data", str(data), "--speed", "max")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    lines = records(out)
    every = [(r["ts"], r["event"]["action"], r["level"]) for r in lines if r["type"] == "Decision"]
    assert [(ts, a) for ts, a, _ in every] == made
    signals = [r for r in lines if r["type"] == "AgentSignal"]  # at debug every agent's signal is shown too
    assert len(signals) == sum(len(r["event"]["signals"]) for r in lines if r["type"] == "Decision") > 0
    assert [(ts, a) for ts, a, level in every if level == "info"] == changes


def test_the_logger_skips_the_debug_topics_it_neither_counts_nor_writes() -> None:
    """Above debug the headless logger is not handed agent signals or grid snapshots at all (the bus
    skips it for those topics); candles still reach it (the summary counts bars)."""
    bus, out = EventBus(), io.StringIO()
    engine = SimpleNamespace(bus=bus, clock=SimClock(0))
    logger = JsonLogger(engine, [out], min_level="info")  # type: ignore[arg-type]
    assert not bus.has_subscribers("agent.signal.momentum") and not bus.has_subscribers("grid.BTC-USD")
    assert bus.has_subscribers("market.candle.BTC-USD") and bus.has_subscribers("decision.BTC-USD")
    bus.publish("market.candle.BTC-USD", CandleEvent(symbol="BTC-USD", timeframe="1h",
                                                     candle=Candle(3_600_000_000_000, 1.0, 2.0, 0.5, 1.5, 10.0)))
    assert logger.summary.bars == 1 and out.getvalue() == ""  # counted, not shown (debug)
    logger.finish("end of feed")
    verbose = JsonLogger(SimpleNamespace(bus=bus, clock=SimClock(0)), [out], min_level="debug")  # type: ignore[arg-type]
    assert bus.has_subscribers("agent.signal.momentum")
    verbose.finish("end of feed")


def test_the_summary_holds_the_last_snapshot_and_the_largest_drawdown() -> None:
    """The summary's portfolio figures are the last snapshot's whenever it is read (mid-run or at the
    end); the starting equity is the first snapshot's, the drawdown the largest seen (a NaN never wins)."""
    bus, out = EventBus(), io.StringIO()
    logger = JsonLogger(SimpleNamespace(bus=bus, clock=SimClock(0)), [out], min_level="info")  # type: ignore[arg-type]

    def snapshot(equity: float, drawdown: float) -> PortfolioSnapshot:
        return PortfolioSnapshot(ts=0, symbol="BTC-USD", cash=equity / 2, position=0.01 * equity, avg_entry=9.0,
                                 price=equity / 100, equity=equity, realized_pnl=0.0, unrealized_pnl=0.0,
                                 fees=equity / 1000, peak_equity=equity, drawdown=drawdown)

    for equity, drawdown in ((1000.0, 0.0), (900.0, 0.1), (950.0, math.nan), (980.0, 0.02)):
        bus.publish("portfolio.BTC-USD", snapshot(equity, drawdown))
    s = logger.summary
    assert (s.start_equity, s.final_equity, s.fees, s.price, s.position, s.max_drawdown) == \
        (1000.0, 980.0, 0.98, 9.8, 9.8, 0.1)
    bus.publish("portfolio.BTC-USD", snapshot(700.0, 0.3))
    done = logger.finish("end of feed")
    assert (done.final_equity, done.max_drawdown, done.fees) == (700.0, 0.3, 0.7)
    assert records(out.getvalue())[-1]["event"]["final_equity"] == 700.0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_with_a_checkpoint(tmp_path: Path, sig: signal.Signals) -> None:
    data, db = candle_file(tmp_path, 2000), tmp_path / "t.duckdb"
    env = {**os.environ, "TRDR_LOG_LEVEL": "debug"}  # a line per bar shows the replay is under way
    proc = trdr("--db", str(db), "--log-file", str(tmp_path / "l.log"), "--headless", "--feed", "replay",
                "--data", str(data), "--speed", "20", env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for the first replayed bar
        line = proc.stdout.readline()
        if '"CandleEvent"' in line:
            break
    else:
        proc.kill()
        pytest.fail("no candle replayed within 60 s")
    proc.send_signal(sig)
    # The rest of stdout through the same text wrapper that `readline` filled: `communicate()` reads the
    # pipe's file descriptor directly and would skip what the wrapper had already buffered.
    out = proc.stdout.read()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = records(out)[-1]
    assert summary["event"]["reason"] == f"signal {sig.name}"
    assert 0 < summary["event"]["bars"] < 2000
    assert ("shutdown", "paper") in checkpoints(db)


def test_a_closed_stdout_stops_like_sigterm_and_exits_1(tmp_path: Path) -> None:
    """`trdr --headless | head`: once the reader is gone the engine stops with its checkpoint (it used to
    trade on, writing nowhere), the log file keeps every line, and the exit code says output was cut."""
    data, db, log = candle_file(tmp_path, 2000), tmp_path / "t.duckdb", tmp_path / "l.log"
    env = {**os.environ, "TRDR_LOG_LEVEL": "debug"}  # a line per bar: the pipe fills at once
    proc = trdr("--db", str(db), "--log-file", str(log), "--headless", "--feed", "replay", "--data", str(data),
                "--speed", "50", env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1, err
    assert "stdout was closed: stopping" in err and "Traceback" not in err
    summary = records(log.read_text(encoding="utf-8"))[-1]
    assert summary["type"] == "Summary" and summary["event"]["reason"] == "stdout closed"
    assert 0 < summary["event"]["bars"] < 2000  # stopped, not run to the end of the feed
    assert ("shutdown", "paper") in checkpoints(db)


def test_fatal_config_error_exits_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('symbol = "BTC-USD"\ncapitol = 1000\n', encoding="utf-8")
    proc = trdr("--config", str(bad), "--db", str(tmp_path / "t.duckdb"), "--headless", "--feed", "replay")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "unknown key 'capitol'" in err and "did you mean 'capital'" in err
    assert out == ""


def test_bad_speed_and_missing_data_are_refused(tmp_path: Path) -> None:
    proc = trdr("--db", str(tmp_path / "t.duckdb"), "--headless", "--feed", "replay", "--speed", "fast")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--speed 'fast' is not a number" in err
    proc = trdr("--db", str(tmp_path / "t.duckdb"), "--headless", "--feed", "replay",
                "--data", str(tmp_path / "nope.csv"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "does not exist" in err


def test_live_without_credentials_is_refused(tmp_path: Path) -> None:
    proc = trdr("--db", str(tmp_path / "t.duckdb"), "--headless", "--live")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "live trading refused" in err and "TRDR_COINBASE_API_KEY" in err


def test_parse_speed() -> None:
    assert parse_speed("max") is None
    assert parse_speed("2") == 2.0
    for bad in ("0", "-1", "inf", "nan", "x"):
        with pytest.raises(ConfigError):
            parse_speed(bad)


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (Linux: the SigCgt mask of /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            mask = next(line.split()[1] for line in status if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(int(mask, 16) >> (signal.SIGTERM - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the signal mask from /proc")
@pytest.mark.parametrize("delay", [0.0, 0.1, 0.25])
def test_a_sigterm_right_after_start_stops_cleanly(tmp_path: Path, delay: float) -> None:
    """SIGTERM while the run is still importing and building (its event loop's handlers come ~0.7 s in):
    sent as soon as the process catches it, or at 0.4 s at the latest, and then `delay` later."""
    data, db = candle_file(tmp_path, 200), tmp_path / "t.duckdb"
    proc = trdr("--db", str(db), "--log-file", str(tmp_path / "l.log"), "--headless", "--feed", "replay",
                "--data", str(data), "--speed", "20", "--no-api")
    start = time.monotonic()
    while not _catches_sigterm(proc.pid) and time.monotonic() - start < 0.4 and proc.poll() is None:
        time.sleep(0.002)
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, (proc.returncode, err)
    assert records(out)[-1]["event"]["reason"] == "signal SIGTERM"
    assert ("shutdown", "paper") in checkpoints(db)
