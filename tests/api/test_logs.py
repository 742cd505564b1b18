"""Structured JSON logs (core/logs.py): levels, the errors and trades files, rotation, the cockpit's log."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import candle_slice, isolated_env
from tests.conftest import REPO
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.events import CandleEvent, LogEvent
from trdr_tui.core.logs import EventLog, LogFiles, _RotatingFile, side_path
from trdr_tui.core.types import Candle, Fill, Liquidity, Side


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.fixture
def files(tmp_path: Path) -> Iterator[LogFiles]:
    f = LogFiles.open(tmp_path / "logs" / "trdr.log", level="info", max_bytes=10_000, backups=2)
    yield f
    f.close()


def fill(ts: int) -> Fill:
    return Fill(id=f"f{ts}", order_id="o1", client_order_id="c1", symbol="BTC-USD", side=Side.BUY, price=100.0,
                size=0.5, fee=0.03, liquidity=Liquidity.MAKER, ts=ts)


def test_events_go_to_the_main_errors_and_trades_files(files: LogFiles) -> None:
    bus, clock = EventBus(), SimClock(5_000_000_000)
    events = EventLog(bus, clock, min_level="info")
    bus.publish("market.candle.BTC-USD", CandleEvent(symbol="BTC-USD", timeframe="1h",
                                                     candle=Candle(1, 1.0, 2.0, 0.5, 1.5, 10.0)))  # debug: not logged
    bus.publish("fill.BTC-USD", fill(7))
    bus.publish("log.error", LogEvent(ts=9, level="error", source="engine", message="disk full"))
    logging.getLogger("trdr.api").warning("a %s record", "library")
    events.close()
    bus.publish("fill.BTC-USD", fill(11))  # after close: not logged

    main = lines(files.path)
    assert [(r.get("type"), r["level"]) for r in main] == [("Fill", "info"), ("LogEvent", "error"), (None, "warning")]
    assert main[0]["ts"] == 7 and main[0]["topic"] == "fill.BTC-USD" and main[0]["event"]["price"] == 100.0
    assert main[0]["time"].startswith("1970-01-01T00:00:00")
    assert main[2]["logger"] == "trdr.api" and main[2]["message"] == "a library record"
    errors = lines(side_path(files.path, "errors"))
    assert [r["event"]["message"] for r in errors] == ["disk full"]
    trades = lines(side_path(files.path, "trades"))
    assert [r["event"]["id"] for r in trades] == ["f7"]


def test_fills_reach_the_trades_file_below_the_level(tmp_path: Path) -> None:
    f = LogFiles.open(tmp_path / "trdr.log", level="error", max_bytes=10_000, backups=1)
    try:
        bus = EventBus()
        EventLog(bus, SimClock(0), min_level="error")
        bus.publish("fill.BTC-USD", fill(3))
        bus.publish("log.warning", LogEvent(ts=4, level="warning", source="engine", message="w"))
    finally:
        f.close()
    assert lines(tmp_path / "trdr.log") == []
    assert [r["ts"] for r in lines(tmp_path / "trdr.trades.log")] == [3]


def test_files_rotate_and_keep_the_configured_backups(files: LogFiles) -> None:
    bus = EventBus()
    EventLog(bus, SimClock(0))
    for i in range(400):  # ~250 bytes a line: several rotations at 10 kB
        bus.publish("log.info", LogEvent(ts=i, level="info", source="engine", message="x" * 100))
    files.close()
    names = sorted(p.name for p in files.path.parent.iterdir() if p.name.startswith("trdr.log"))
    assert names == ["trdr.log", "trdr.log.1", "trdr.log.2"]
    for name in names:
        assert (files.path.parent / name).stat().st_size <= 10_000
        assert all(r["type"] == "LogEvent" for r in lines(files.path.parent / name))  # whole lines only
    assert lines(files.path)[-1]["ts"] == 399


def test_a_log_file_that_is_not_a_regular_file_never_rotates() -> None:
    """Only regular files rotate (as the stdlib decides, asked once when the file opens): a log sent
    to the null device past its size limit is written on, never renamed."""
    handler = _RotatingFile(os.devnull, maxBytes=10, backupCount=1)
    try:
        record = logging.makeLogRecord({"msg": "x" * 100, "levelno": logging.INFO, "levelname": "INFO"})
        assert not handler.shouldRollover(record)
        handler.emit(record)
    finally:
        handler.close()
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)


def test_a_bad_level_or_an_unwritable_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown log level 'loud'"):
        LogFiles.open(tmp_path / "trdr.log", level="loud", max_bytes=10_000, backups=1)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot write the log file"):
        LogFiles.open(blocker / "trdr.log", level="info", max_bytes=10_000, backups=1)
    assert not logging.getLogger("trdr").handlers


@pytest.mark.slow
def test_the_cockpit_writes_the_same_log_file(tmp_path: Path) -> None:
    """The real cockpit (Textual's headless driver, no terminal) on a replay writes trdr.log and the trades log."""
    data, db = candle_slice(tmp_path, 600), tmp_path / "c.duckdb"
    env = {**isolated_env(tmp_path), "TEXTUAL_DRIVER": "textual.drivers.headless_driver:HeadlessDriver"}
    proc = subprocess.Popen([sys.executable, "-m", "trdr_tui", "--db", str(db), "--feed", "replay", "--data", str(data),
                             "--speed", "max", "--no-api"], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    trades = tmp_path / "trdr.trades.log"
    try:
        deadline = time.monotonic() + 90
        while not (trades.is_file() and trades.stat().st_size) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    fills = lines(trades)
    assert fills and all(r["type"] == "Fill" for r in fills)
    main = lines(tmp_path / "trdr.log")
    assert {"EngineStatus", "Fill"} <= {r.get("type") for r in main}
    assert os.path.getsize(tmp_path / "trdr.errors.log") == 0


def test_the_cockpit_log_is_not_handed_the_debug_topics_above_debug() -> None:
    bus = EventBus()
    info = EventLog(bus, SimClock(0), min_level="info")
    assert not bus.has_subscribers("agent.signal.momentum") and not bus.has_subscribers("portfolio.BTC-USD")
    assert bus.has_subscribers("fill.BTC-USD") and bus.has_subscribers("decision.BTC-USD")
    info.close()
    EventLog(bus, SimClock(0), min_level="debug")
    assert bus.has_subscribers("agent.signal.momentum") and bus.has_subscribers("portfolio.BTC-USD")


def test_a_record_that_is_not_valid_unicode_is_said_as_such_and_the_rest_is_written(
        files: LogFiles, capsys: pytest.CaptureFixture[str]) -> None:
    """A lone surrogate (a plugin's exception text) cannot be written: said once as a bad record, not as
    a full disk ("free disk space" was wrong advice), and the records after it are written."""
    log = logging.getLogger("trdr_tui.agents.orchestrator")
    log.warning("boom %s", "\ud800")
    log.warning("again %s", "\udfff")
    log.error("still written")
    err = capsys.readouterr().err
    assert err.count("a record could not be written to the log file") == 1 and "free disk space" not in err, err
    assert [r["message"] for r in lines(files.path)] == ["still written"]
