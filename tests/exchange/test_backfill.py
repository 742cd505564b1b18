"""Backfill from the fake exchange into a real DuckDB store: exact bars, resumable, gaps reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trdr_testkit.fake_coinbase import FakeExchange
from trdr_tui.cli import main
from trdr_tui.core.errors import ConnectionLost, DataError
from trdr_tui.exchange.backfill import backfill, missing_windows
from trdr_tui.exchange.coinbase_rest import CoinbaseRest
from trdr_tui.store import Store
from trdr_tui.store.candles import CandleRepository

NS = 1_000_000_000
HOUR = 3600 * NS


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
            await backfill(rest, repo, "BTC-USD", "1h", start, end)
    kept = repo.count("BTC-USD", "1h")
    assert kept == 349 - 5  # the first window arrived (less the outage) and was stored at once
    todo = missing_windows(repo.load("BTC-USD", "1h").ts, start, end, HOUR)
    fake.faults.rest_5xx = 0
    async with CoinbaseRest(fake.rest_url) as rest:
        report = await backfill(rest, repo, "BTC-USD", "1h", start, end)
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
        again = await backfill(rest, repo, "BTC-USD", "1h", start, end)
    assert again.added == 0 and again.requests == 1 and again.missing == 5


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
    assert main(["--db", str(tmp_path / "x.duckdb"), "data", "backfill", "--start", "yesterday"]) == 1
    assert "not an ISO date" in capsys.readouterr().err
    with pytest.raises(DataError):
        from trdr_tui.commands.backfill import parse_when

        parse_when("2024-13-01", "--start")
