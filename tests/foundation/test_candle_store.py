"""The candle repository on real DuckDB files: idempotent import, atomicity, ranges, gaps, resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DAILY_CDD, HOURLY_CDD
from tests.foundation.conftest import edit_line, replace_field
from tests.foundation.test_importer import ns
from trdr_tui.core.errors import DataError
from trdr_tui.market.importer import import_candle_file, read_candle_file
from trdr_tui.store import Store
from trdr_tui.store.candles import CandleRepository

HOUR = 3600 * 10**9


def _snapshot(store: Store) -> list[tuple]:
    return store.conn.execute("SELECT * FROM candles ORDER BY symbol, timeframe, ts").fetchall()


def test_hourly_import_stores_20111_then_nothing_more(db_path: Path) -> None:
    with Store(db_path) as store:
        first = import_candle_file(store, HOURLY_CDD, "BTC-USD", "1h")
        assert (first.stored.added, first.stored.already_present) == (20_111, 0)
    with Store(db_path) as store:  # reopened from disk
        again = import_candle_file(store, HOURLY_CDD, "BTC-USD", "1h")
        assert (again.stored.added, again.stored.already_present, again.stored.differing) == (0, 20_111, 0)
        repo = CandleRepository(store)
        assert repo.count("BTC-USD", "1h") == 20_111
        assert repo.gaps("BTC-USD", "1h") == []
        [cov] = repo.coverage()
        assert (cov.symbol, cov.timeframe, cov.count, cov.gaps, cov.missing) == ("BTC-USD", "1h", 20_111, 0, 0)
        assert (cov.first, cov.last) == (ns("2017-07-01 11:00"), ns("2019-10-17 09:00"))


def test_load_round_trips_and_slices_half_open(store: Store) -> None:
    parsed = read_candle_file(HOURLY_CDD, "1h")
    repo = CandleRepository(store)
    repo.insert("BTC-USD", "1h", parsed.candles)
    loaded = repo.load("BTC-USD", "1h")
    for field in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(parsed.candles, field))
    start, end = ns("2018-01-01 00:00"), ns("2018-01-02 00:00")
    day = repo.load("BTC-USD", "1h", start, end)
    assert len(day) == 24 and day.ts[0] == start and day.ts[-1] == end - HOUR
    assert len(repo.load("BTC-USD", "1h", start=ns("2019-10-17 09:00"))) == 1
    assert len(repo.load("ETH-USD", "1h")) == 0


def test_corrupted_import_changes_nothing(tmp_path: Path, store: Store) -> None:
    import_candle_file(store, DAILY_CDD, "BTC-USD", "1d")
    before = _snapshot(store)
    bad = tmp_path / "bad.csv"
    # the first 19,999 rows are fine and new; line 20,001 has high < low
    edit_line(HOURLY_CDD, bad, 20_001, lambda ln: replace_field(ln, 3, "1.0"))
    with pytest.raises(DataError, match="line 20001"):
        import_candle_file(store, bad, "BTC-USD", "1h")
    assert _snapshot(store) == before


def test_insert_keeps_stored_bars_unless_replace(store: Store) -> None:
    repo = CandleRepository(store)
    c = read_candle_file(HOURLY_CDD, "1h").candles[:100]
    repo.insert("BTC-USD", "1h", c)
    changed = type(c)(c.ts, c.open, c.high * 1.01, c.low, c.close, c.volume)
    kept = repo.insert("BTC-USD", "1h", changed)
    assert (kept.added, kept.already_present, kept.differing, kept.replaced) == (0, 100, 100, 0)
    np.testing.assert_array_equal(repo.load("BTC-USD", "1h").high, c.high)
    replaced = repo.insert("BTC-USD", "1h", changed, replace=True)
    assert (replaced.added, replaced.replaced) == (0, 100)
    np.testing.assert_array_equal(repo.load("BTC-USD", "1h").high, changed.high)


def test_gaps_are_found_in_the_store(store: Store) -> None:
    repo = CandleRepository(store)
    import_candle_file(store, DAILY_CDD, "BTC-USD", "1d")
    [gap] = repo.gaps("BTC-USD", "1d")
    assert (gap.start, gap.end, gap.missing) == (ns("2019-03-20 00:00"), ns("2019-03-31 00:00"), 12)
    c = read_candle_file(HOURLY_CDD, "1h").candles
    keep = np.ones(len(c), dtype=bool)
    keep[100:103] = False
    keep[5000] = False
    holed = type(c)(c.ts[keep], c.open[keep], c.high[keep], c.low[keep], c.close[keep], c.volume[keep])
    repo.insert("BTC-USD", "1h", holed)
    gaps = repo.gaps("BTC-USD", "1h")
    assert [(g.start, g.missing) for g in gaps] == [(int(c.ts[100]), 3), (int(c.ts[5000]), 1)]
    cov = {x.timeframe: x for x in repo.coverage(symbol="BTC-USD")}
    assert (cov["1h"].gaps, cov["1h"].missing, cov["1d"].gaps, cov["1d"].missing) == (2, 4, 1, 12)


def test_resample_to_daily_matches_the_published_daily_candles(store: Store) -> None:
    repo = CandleRepository(store)
    import_candle_file(store, HOURLY_CDD, "BTC-USD", "1h")
    result = repo.resample("BTC-USD", "1h", "1d")
    # 2017-07-01 starts at 11:00 and 2019-10-17 ends at 09:00: both days are incomplete and skipped
    assert (result.incomplete, result.added, result.already_present) == (2, 837, 0)
    mine = repo.load("BTC-USD", "1d")
    published = read_candle_file(DAILY_CDD, "1d").candles
    common, i, j = np.intersect1d(mine.ts, published.ts, return_indices=True)
    assert len(common) > 800
    for field in ("high", "low", "open", "close"):
        same = np.isclose(getattr(mine, field)[i], getattr(published, field)[j], rtol=1e-9, atol=0)
        assert same.mean() > 0.9, field  # Coinbase's own daily bars, from independent hourly data
    again = repo.resample("BTC-USD", "1h", "1d")
    assert (again.added, again.already_present) == (0, 837)


def test_resample_four_hour_bars_aggregate_their_hours(store: Store) -> None:
    repo = CandleRepository(store)
    c = read_candle_file(HOURLY_CDD, "1h").candles
    repo.insert("BTC-USD", "1h", c)
    repo.resample("BTC-USD", "1h", "4h")
    four = repo.load("BTC-USD", "4h")
    assert np.all(four.ts % (4 * HOUR) == 0)
    k = 123
    start = int(np.searchsorted(c.ts, four.ts[k]))
    hours = c[start:start + 4]
    assert hours.ts[0] == four.ts[k] and hours.ts[-1] == four.ts[k] + 3 * HOUR
    assert four.open[k] == hours.open[0] and four.close[k] == hours.close[-1]
    assert four.high[k] == hours.high.max() and four.low[k] == hours.low.min()
    assert four.volume[k] == pytest.approx(hours.volume.sum(), rel=1e-12)


def test_resample_partial_includes_incomplete_buckets(store: Store) -> None:
    repo = CandleRepository(store)
    repo.insert("BTC-USD", "1h", read_candle_file(HOURLY_CDD, "1h").candles)
    r = repo.resample("BTC-USD", "1h", "1d", partial=True)
    assert (r.buckets, r.added) == (839, 839)


@pytest.mark.parametrize(("src", "dst"), [("4h", "1h"), ("1h", "1h"), ("4h", "6h")])
def test_resample_refuses_non_multiples(store: Store, src: str, dst: str) -> None:
    with pytest.raises(DataError, match="cannot resample"):
        CandleRepository(store).resample("BTC-USD", src, dst)


def test_resample_without_source_candles_is_refused(store: Store) -> None:
    with pytest.raises(DataError, match="no 1h candles stored"):
        CandleRepository(store).resample("BTC-USD", "1h", "4h")
