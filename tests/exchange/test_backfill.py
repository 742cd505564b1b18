"""Backfill from the fake exchange into a real DuckDB store: exact bars, resumable, gaps reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.cli import main
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import ConnectionLost, DataError
from trdr_tui.core.types import Candle
from trdr_tui.exchange.backfill import backfill, missing_windows
from trdr_tui.exchange.coinbase_rest import CoinbaseRest
from trdr_tui.store import Store
from trdr_tui.store.candles import CandleRepository

NS = 1_000_000_000
HOUR = 3600 * NS
NOW = 4_102_444_800 * NS  # 2100-01-01: every bar of the fake's 2017-2019 history has closed


def test_windows_skip_stored_bars_and_stay_under_350() -> None:
    stored = np.array([5 * HOUR, 6 * HOUR, 700 * HOUR], dtype=np.int64)
    windows = missing_windows(stored, 0, 1000 * HOUR, HOUR)
    assert windows[0] == (0, 5 * HOUR)
    assert all((b - a) // HOUR <= 349 for a, b in windows)
    covered = sum((b - a) // HOUR for a, b in windows)
    assert covered == 1000 - 3


async def test_backfill_stores_real_bars_resumes_and_reports_gaps(fake: FakeExchange, store: Store) -> None:
    hist = fake.history
    start, end = hist[200].ts, hist[1200].ts
    removed = {c.ts for c in hist[500:505]}  # an exchange outage: five hours with no candle
    fake.history = [c for c in hist if c.ts not in removed]
    repo = CandleRepository(store)
    # first run is interrupted: after two windows the exchange fails for good
    calls = 0

    def fail_later(method: str, path: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            fake.faults.rest_5xx = 10_000

    async with CoinbaseRest(fake.rest_url, retry=None, on_request=fail_later) as rest:
        rest.retry = rest.retry.__class__(max_retries=1, initial_s=0.001)
        with pytest.raises(ConnectionLost):
            await backfill(rest, repo, "BTC-USD", "1h", start, end, now_ns=NOW)
    kept = repo.count("BTC-USD", "1h")
    assert kept == 349 - 5  # the first window arrived (less the outage) and was stored at once
    todo = missing_windows(repo.load("BTC-USD", "1h").ts, start, end, HOUR)
    fake.faults.rest_5xx = 0
    async with CoinbaseRest(fake.rest_url) as rest:
        report = await backfill(rest, repo, "BTC-USD", "1h", start, end, now_ns=NOW)
    assert report.already_stored == kept and report.added == 1000 - 5 - kept
    assert report.requests == len(todo) == 3  # the outage hours, then the two windows never fetched
    got = repo.load("BTC-USD", "1h", start, end)
    want = [c for c in hist[200:1200] if c.ts not in removed]
    assert got.ts.tolist() == [c.ts for c in want]
    assert got.close.tolist() == [c.close for c in want] and got.volume.tolist() == [c.volume for c in want]
    # the outage is a gap the exchange could not fill, reported once per run that asks for it
    assert [(g.start, g.end, g.missing) for g in report.gaps] == [(min(removed), max(removed), 5)]
    # a third run has nothing to do but re-ask for the known gap
    async with CoinbaseRest(fake.rest_url) as rest:
        again = await backfill(rest, repo, "BTC-USD", "1h", start, end, now_ns=NOW)
    # the outage hours again, and the newest stored bar re-checked (it might have been forming)
    assert again.added == 0 and again.requests == 2 and again.missing == 5 and again.corrected == 0


def test_backfill_cli(standalone_fake: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import HOURLY_CDD
    from trdr_testkit.fake_coinbase.prices import load_candles

    rest, _key = standalone_fake
    bars = load_candles(HOURLY_CDD, limit=100)
    monkeypatch.setenv("TRDR_COINBASE_REST_URL", rest)
    db = tmp_path / "bf.duckdb"
    import datetime as dt

    def iso(ns: int) -> str:
        return dt.datetime.fromtimestamp(ns / NS, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M")

    code = main(["--db", str(db), "data", "backfill", "--symbol", "BTC-USD", "--timeframe", "1h",
                 "--start", iso(bars[10].ts), "--end", iso(bars[60].ts)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "50 added" in out
    with Store(db) as s:
        got = CandleRepository(s).load("BTC-USD", "1h")
    assert got.close.tolist() == [c.close for c in bars[10:60]]
    # resume: no --start continues after the last stored bar
    code = main(["--db", str(db), "data", "backfill", "--symbol", "BTC-USD", "--timeframe", "1h",
                 "--end", iso(bars[80].ts)])
    assert code == 0 and "20 added" in capsys.readouterr().out


def test_backfill_rejects_bad_dates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", str(tmp_path / "x.duckdb"), "data", "backfill", "--start", "yesterday"]) == 2
    assert "not an ISO date" in capsys.readouterr().err
    with pytest.raises(DataError):
        from trdr_tui.commands.backfill import parse_when

        parse_when("2024-13-01", "--start")


async def test_backfill_past_now_stops_at_the_last_closed_bar(fake: FakeExchange, store: Store) -> None:
    """`--end` in the future: the forming bar is not stored and future hours are not gaps."""
    hist = fake.history
    now = hist[300].ts + 20 * 60 * NS  # 20 minutes into the bar of hist[300]
    repo = CandleRepository(store)
    async with CoinbaseRest(fake.rest_url) as rest:
        report = await backfill(rest, repo, "BTC-USD", "1h", hist[250].ts, hist[300].ts + 48 * HOUR, now_ns=now)
    got = repo.load("BTC-USD", "1h")
    assert got.ts.tolist() == [c.ts for c in hist[250:300]]
    assert report.end == hist[300].ts and report.gaps == [] and report.wanted == 50


async def test_a_later_backfill_corrects_a_bar_stored_while_forming(fake: FakeExchange, store: Store) -> None:
    hist = fake.history
    repo = CandleRepository(store)
    closed = CandleArrays.from_candles(hist[250:299])
    forming = hist[299]  # stored 20 minutes into its hour: lower high, another close, a third of the volume
    partial = Candle(forming.ts, forming.open, forming.open * 1.0001, forming.low, forming.open, forming.volume / 3)
    repo.insert("BTC-USD", "1h", closed, source="coinbase")
    repo.insert("BTC-USD", "1h", CandleArrays.from_candles([partial]), source="file:mid-hour.csv")
    async with CoinbaseRest(fake.rest_url) as rest:
        report = await backfill(rest, repo, "BTC-USD", "1h", hist[299].ts, hist[320].ts, now_ns=NOW)
    assert report.corrected == 1 and report.added == 20
    got = repo.load("BTC-USD", "1h", hist[299].ts, hist[300].ts).candle(0)
    assert (got.high, got.close, got.volume) == (forming.high, forming.close, pytest.approx(forming.volume))


def test_backfill_without_network_fails_fast_with_a_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A server that hangs up on every connection: one attempt, not half a minute of retries."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[int] = []

    def hang_up() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    monkeypatch.setenv("TRDR_COINBASE_REST_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
    try:
        code = main(["--db", str(tmp_path / "x.duckdb"), "data", "backfill", "--start", "2024-01-01"])
    finally:
        server.close()
    err = capsys.readouterr().err
    assert code == 1 and "did not answer" in err and "check the network connection" in err
    assert len(accepted) <= 2  # one request (aiohttp itself re-sends a GET once on a dropped connection)
    with Store(tmp_path / "x.duckdb") as s:
        assert CandleRepository(s).count("BTC-USD", "1h") == 0
