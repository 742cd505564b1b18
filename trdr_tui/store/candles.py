"""The candle repository: batched inserts, range loads into CandleArrays, coverage, gaps, resampling.

Candles are keyed by (symbol, timeframe, ts); `ts` is the bar's open time (UTC, microsecond TIMESTAMP
in DuckDB, int ns in CandleArrays). Writes take whole arrays at once (one statement, one transaction),
never a row at a time.
"""

from __future__ import annotations

from typing import Any

import duckdb
import msgspec
import numpy as np

from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import DataError
from trdr_tui.core.timeframes import TIMEFRAME_SECONDS, Gap, timeframe_seconds
from trdr_tui.store.db import Store

_US_PER_SECOND = 1_000_000
_NEW_ROWS = "trdr_new_candles"


class InsertResult(msgspec.Struct, frozen=True):
    """What an insert did. `differing` counts stored bars whose values differ from the new ones; they
    were kept (`replaced` 0) unless the insert asked to replace."""

    added: int
    already_present: int
    differing: int
    replaced: int


class Coverage(msgspec.Struct, frozen=True):
    symbol: str
    timeframe: str
    first: int  # ns, open time of the first bar
    last: int  # ns, open time of the last bar
    count: int
    gaps: int  # missing ranges
    missing: int  # missing bars in all


class ResampleResult(msgspec.Struct, frozen=True):
    source_bars: int
    buckets: int  # target bars the source covers
    incomplete: int  # buckets with missing source bars (skipped unless partial)
    added: int
    already_present: int


class CandleRepository:
    """Candles in a Store. Passed a Store; holds no state of its own."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- writes ----------------------------------------------------------------------------------

    def insert(self, symbol: str, timeframe: str, candles: CandleArrays, *, source: str = "",
               replace: bool = False) -> InsertResult:
        """Insert in one transaction. Bars already stored are kept as they are unless `replace`."""
        timeframe_seconds(timeframe)
        if len(candles) == 0:
            return InsertResult(0, 0, 0, 0)
        rows = {
            "ts_us": candles.ts // 1000,
            "open": candles.open,
            "high": candles.high,
            "low": candles.low,
            "close": candles.close,
            "volume": candles.volume,
        }
        conn = self.store.conn
        with self.store.transaction() as cur:
            cur.register(_NEW_ROWS, rows)
            try:
                present, differing = _overlap(cur, symbol, timeframe)
                if present == len(candles) and (differing == 0 or not replace):
                    return InsertResult(0, present, differing, 0)  # nothing to write
                on_conflict = (
                    "DO UPDATE SET open = excluded.open, high = excluded.high, low = excluded.low, "
                    "close = excluded.close, volume = excluded.volume, source = excluded.source"
                    if replace else "DO NOTHING"
                )
                cur.execute(
                    f"INSERT INTO candles (symbol, timeframe, ts, open, high, low, close, volume, source) "
                    f"SELECT ?, ?, make_timestamp(ts_us), open, high, low, close, volume, ? FROM {_NEW_ROWS} "
                    f"ON CONFLICT (symbol, timeframe, ts) {on_conflict}",
                    [symbol, timeframe, source or None],
                ).fetchall()
            finally:
                conn.unregister(_NEW_ROWS)
        return InsertResult(
            added=len(candles) - present,
            already_present=present,
            differing=differing,
            replaced=differing if replace else 0,
        )

    def delete(self, symbol: str, timeframe: str) -> int:
        with self.store.transaction() as cur:
            row = cur.execute("DELETE FROM candles WHERE symbol = ? AND timeframe = ?",
                              [symbol, timeframe]).fetchall()
        return int(row[0][0]) if row else 0

    # -- reads -----------------------------------------------------------------------------------

    def load(self, symbol: str, timeframe: str, start: int | None = None, end: int | None = None) -> CandleArrays:
        """Bars with start <= open time < end (ns; None = unbounded), ascending."""
        where, params = _range_clause(symbol, timeframe, start, end)
        got = self.store.cursor().execute(
            f"SELECT epoch_us(ts) AS ts_us, open, high, low, close, volume FROM candles WHERE {where} ORDER BY ts",
            params,
        ).fetchnumpy()
        if len(got["ts_us"]) == 0:
            return CandleArrays.empty()
        return CandleArrays(
            np.asarray(got["ts_us"], dtype=np.int64) * 1000,
            *(np.asarray(got[c], dtype=np.float64) for c in ("open", "high", "low", "close", "volume")),
        )

    def count(self, symbol: str, timeframe: str) -> int:
        row = self.store.cursor().execute(
            "SELECT count(*) FROM candles WHERE symbol = ? AND timeframe = ?", [symbol, timeframe]
        ).fetchall()
        return int(row[0][0]) if row else 0

    def coverage(self, symbol: str | None = None, timeframe: str | None = None) -> list[Coverage]:
        """One row per stored (symbol, timeframe): span, bar count and how much is missing inside it."""
        where, params = ["TRUE"], []
        if symbol:
            where.append("c.symbol = ?")
            params.append(symbol)
        if timeframe:
            where.append("c.timeframe = ?")
            params.append(timeframe)
        rows = self.store.cursor().execute(
            f"""
            WITH steps(timeframe, step_us) AS (VALUES {_steps_values()}),
            bars AS (
                SELECT c.symbol, c.timeframe, epoch_us(c.ts) AS t, s.step_us,
                       epoch_us(lead(c.ts) OVER (PARTITION BY c.symbol, c.timeframe ORDER BY c.ts)) AS next_t
                FROM candles c JOIN steps s USING (timeframe)
                WHERE {" AND ".join(where)}
            )
            SELECT symbol, timeframe, min(t), max(t), count(*),
                   count(*) FILTER (WHERE next_t - t > step_us),
                   coalesce(sum((next_t - t) // step_us - 1) FILTER (WHERE next_t - t > step_us), 0)
            FROM bars GROUP BY symbol, timeframe ORDER BY symbol, min(step_us), timeframe
            """,
            params,
        ).fetchall()
        return [Coverage(r[0], r[1], int(r[2]) * 1000, int(r[3]) * 1000, int(r[4]), int(r[5]), int(r[6]))
                for r in rows]

    def gaps(self, symbol: str, timeframe: str, start: int | None = None, end: int | None = None) -> list[Gap]:
        """Missing ranges between the first and last stored bar (within [start, end) when given)."""
        step_us = timeframe_seconds(timeframe) * _US_PER_SECOND
        where, params = _range_clause(symbol, timeframe, start, end)
        rows = self.store.cursor().execute(
            f"""
            SELECT t, next_t FROM (
                SELECT epoch_us(ts) AS t, epoch_us(lead(ts) OVER (ORDER BY ts)) AS next_t
                FROM candles WHERE {where}
            ) WHERE next_t - t > ? ORDER BY t
            """,
            [*params, step_us],
        ).fetchall()
        return [Gap((t + step_us) * 1000, (n - step_us) * 1000, (n - t) // step_us - 1) for t, n in rows]

    # -- resampling -------------------------------------------------------------------------------

    def resample(self, symbol: str, source: str, target: str, *, partial: bool = False,
                 replace: bool = False) -> ResampleResult:
        """Aggregate `source` bars into `target` bars in DuckDB: first open, max high, min low, last close,
        summed volume. Target bars open on multiples of their length since the epoch (UTC). A bucket
        missing any source bar is skipped unless `partial` (it would misstate the bar's range)."""
        per_bucket = check_resample(source, target)
        dst_s = timeframe_seconds(target)
        step_us = dst_s * _US_PER_SECOND
        with self.store.transaction() as cur:
            stats = cur.execute(
                """
                SELECT coalesce(sum(n), 0), count(*), count(*) FILTER (WHERE n < ?) FROM (
                    SELECT count(*) AS n FROM candles WHERE symbol = ? AND timeframe = ?
                    GROUP BY epoch_us(ts) // ?
                )
                """,
                [per_bucket, symbol, source, step_us],
            ).fetchall()
            source_bars, buckets, incomplete = (int(x) for x in stats[0]) if stats else (0, 0, 0)
            if source_bars == 0:
                raise DataError(f"no {source} candles stored for {symbol}",
                                hint=f"import some first: trdr data import FILE --symbol {symbol} --timeframe {source}")
            before = self._count_in(cur, symbol, target)
            on_conflict = (
                "DO UPDATE SET open = excluded.open, high = excluded.high, low = excluded.low, "
                "close = excluded.close, volume = excluded.volume, trades = excluded.trades, source = excluded.source"
                if replace else "DO NOTHING"
            )
            having = "" if partial else f"HAVING count(*) = {per_bucket}"
            cur.execute(
                f"""
                INSERT INTO candles (symbol, timeframe, ts, open, high, low, close, volume, trades, source)
                SELECT ?, ?, make_timestamp(bucket), arg_min(open, ts), max(high), min(low), arg_max(close, ts),
                       sum(volume), sum(trades), ?
                FROM (SELECT *, (epoch_us(ts) // ?) * ? AS bucket FROM candles WHERE symbol = ? AND timeframe = ?)
                GROUP BY bucket {having}
                ON CONFLICT (symbol, timeframe, ts) {on_conflict}
                """,
                [symbol, target, f"resample:{source}", step_us, step_us, symbol, source],
            ).fetchall()
            after = self._count_in(cur, symbol, target)
        written = buckets - (0 if partial else incomplete)
        added = after - before
        return ResampleResult(source_bars, buckets, incomplete, added, written - added)

    @staticmethod
    def _count_in(cur: duckdb.DuckDBPyConnection, symbol: str, timeframe: str) -> int:
        row = cur.execute(
            "SELECT count(*) FROM candles WHERE symbol = ? AND timeframe = ?", [symbol, timeframe]
        ).fetchall()
        return int(row[0][0]) if row else 0


def insert_bar_rows(cur: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> None:
    """Closed bars a live feed built, inside the caller's transaction (the journal writer's deferred
    rows): each row `[symbol, timeframe, ts_ns, open, high, low, close, volume, source]`. A bar already
    stored is kept as it is (imports and backfills win)."""
    if rows:
        cur.executemany(
            "INSERT INTO candles (symbol, timeframe, ts, open, high, low, close, volume, source) "
            "VALUES (?, ?, make_timestamp(?), ?, ?, ?, ?, ?, ?) ON CONFLICT (symbol, timeframe, ts) DO NOTHING",
            [[r[0], r[1], int(r[2]) // 1000, *r[3:]] for r in rows])


def check_resample(source: str, target: str) -> int:
    """How many `source` bars make one `target` bar; DataError unless it is a whole multiple above 1."""
    src_s, dst_s = timeframe_seconds(source), timeframe_seconds(target)
    if dst_s <= src_s or dst_s % src_s:
        raise DataError(
            f"cannot resample {source} into {target}",
            hint="the target must be a whole multiple of the source, e.g. 1h → 4h or 1d",
        )
    return dst_s // src_s


def _overlap(cur: duckdb.DuckDBPyConnection, symbol: str, timeframe: str) -> tuple[int, int]:
    """How many new rows are already stored, and how many of those differ in value."""
    row = cur.execute(
        f"""
        SELECT count(*),
               count(*) FILTER (WHERE c.open <> n.open OR c.high <> n.high OR c.low <> n.low
                                   OR c.close <> n.close OR c.volume <> n.volume)
        FROM {_NEW_ROWS} n JOIN candles c
          ON c.symbol = ? AND c.timeframe = ? AND c.ts = make_timestamp(n.ts_us)
        """,
        [symbol, timeframe],
    ).fetchall()
    return (int(row[0][0]), int(row[0][1])) if row else (0, 0)


def _range_clause(symbol: str, timeframe: str, start: int | None, end: int | None) -> tuple[str, list[object]]:
    where = ["symbol = ?", "timeframe = ?"]
    params: list[object] = [symbol, timeframe]
    if start is not None:
        where.append("ts >= make_timestamp(?)")
        params.append(int(start) // 1000)
    if end is not None:
        where.append("ts < make_timestamp(?)")
        params.append(int(end) // 1000)
    return " AND ".join(where), params


def _steps_values() -> str:
    return ", ".join(f"('{name}', {secs * _US_PER_SECOND})" for name, secs in TIMEFRAME_SECONDS.items())
