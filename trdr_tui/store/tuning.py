"""Repositories for the self-tuning package: optimizer trials, parameter changes, adaptive values.

Times go in and come out as int nanoseconds since the epoch (UTC); JSON columns hold plain values
encoded with msgspec. A study's trials are written together with their optimization row in one
transaction, so a recorded optimization always has all of its trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from trdr_tui.store.db import Store
from trdr_tui.store.sessions import OptimizationRecord, _dump, _load, _resolve_prefix, _ts


class TrialRecord(msgspec.Struct, kw_only=True):
    number: int
    state: str
    value: float | None
    values: list[float] | None
    best_so_far: float | None
    parameters: dict[str, Any]
    attributes: dict[str, Any]
    duration_ms: float | None


class ParameterChange(msgspec.Struct, kw_only=True):
    ts: int
    adopted: bool
    reason: str
    changes: dict[str, list[Any]]
    run_id: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    symbol: str | None = None


class Adjustment(msgspec.Struct, kw_only=True):
    """One move of an adaptive value: when (ns), from, to, and why."""

    ts: int
    old: float
    new: float
    reason: str


class AdaptiveRecord(msgspec.Struct, kw_only=True):
    symbol: str
    name: str
    value: float
    low: float
    high: float
    confidence: float
    outcomes: list[bool]
    history: list[Adjustment]
    updated_at: int

    def row(self) -> list[Any]:
        """The journal's row (`adaptive_values` op): updated_at in µs, JSON columns encoded."""
        return [self.symbol, self.name, self.value, self.low, self.high, self.confidence, _dump(self.outcomes),
                _dump(self.history), _ts(self.updated_at)]


def upsert_adaptive(cur: Any, rows: Sequence[Sequence[Any]]) -> None:
    """Write `AdaptiveRecord.row()` rows (the journal applies them with this too)."""
    for r in rows:
        cur.execute("INSERT INTO adaptive_values VALUES (?, ?, ?, ?, ?, ?, ?, ?, make_timestamp(?))"
                    " ON CONFLICT (symbol, name) DO UPDATE SET value = excluded.value, low = excluded.low,"
                    " high = excluded.high, confidence = excluded.confidence, outcomes = excluded.outcomes,"
                    " history = excluded.history, updated_at = excluded.updated_at", list(r))


class TuningRepository:
    """optimizations + optimization_trials, parameter_changes, adaptive_values."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- optimizations ---------------------------------------------------------------------------

    def record_study(self, rec: OptimizationRecord, trials: Sequence[TrialRecord]) -> None:
        """The optimization row and every trial, all or nothing. A study recorded again (resumed, then
        finished or interrupted once more) replaces its earlier *interrupted* rows: the new row holds every
        trial of the study's storage, and their "resume with" would be stale."""
        study = (rec.results or {}).get("study") if isinstance(rec.results, dict) else None
        with self.store.transaction() as cur:
            if study is not None:
                stale = [r[0] for r in cur.execute(
                    "SELECT id FROM optimizations WHERE json_extract_string(results, '$.study') = ? "
                    "AND json_extract_string(results, '$.status') = 'interrupted'", [study]).fetchall()]
                for oid in stale:
                    cur.execute("DELETE FROM optimization_trials WHERE optimization_id = ?", [oid])
                    cur.execute("DELETE FROM optimizations WHERE id = ?", [oid])
            cur.execute("INSERT INTO optimizations VALUES (?, make_timestamp(?), ?, ?, ?, ?, ?)",
                        [rec.id, _ts(rec.created_at), rec.method, rec.objective, _dump(rec.search_space),
                         _dump(rec.results), _dump(rec.best_parameters)])
            if trials:
                cur.executemany(
                    "INSERT INTO optimization_trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [[rec.id, t.number, t.state, t.value, _dump(t.values), t.best_so_far, _dump(t.parameters),
                      _dump(t.attributes), t.duration_ms] for t in trials])

    def resolve(self, ident: str) -> str:
        return _resolve_prefix(self.store, "optimizations", ident, "optimization", "trdr optimize list")

    def trials(self, ident: str) -> list[TrialRecord]:
        oid = self.resolve(ident)
        rows = self.store.conn.execute(
            "SELECT number, state, value, \"values\", best_so_far, parameters, attributes, duration_ms"
            " FROM optimization_trials WHERE optimization_id = ? ORDER BY number", [oid]).fetchall()
        return [TrialRecord(number=int(r[0]), state=str(r[1]), value=r[2], values=_load(r[3]), best_so_far=r[4],
                            parameters=_load(r[5]) or {}, attributes=_load(r[6]) or {}, duration_ms=r[7])
                for r in rows]

    def recent(self, limit: int = 50) -> list[OptimizationRecord]:
        rows = self.store.conn.execute(
            "SELECT id, epoch_ns(created_at), method, objective, search_space, results, best_parameters"
            " FROM optimizations ORDER BY created_at DESC, id LIMIT ?", [limit]).fetchall()
        return [OptimizationRecord(id=r[0], created_at=int(r[1]), method=r[2], objective=r[3],
                                   search_space=_load(r[4]) or {}, results=_load(r[5]), best_parameters=_load(r[6]))
                for r in rows]

    # -- parameter changes (the daily loop) ------------------------------------------------------

    def record_change(self, change: ParameterChange) -> None:
        with self.store.transaction() as cur:
            cur.execute(
                "INSERT INTO parameter_changes (ts, run_id, from_version, to_version, adopted, reason, changes,"
                " symbol) VALUES (make_timestamp(?), ?, ?, ?, ?, ?, ?, ?)",
                [_ts(change.ts), change.run_id, change.from_version, change.to_version, change.adopted,
                 change.reason, _dump(change.changes), change.symbol])

    def changes(self, limit: int = 50, *, symbol: str | None = None, adopted: bool | None = None
                ) -> list[ParameterChange]:
        """Newest first; only `symbol`'s and only adopted (or refused) ones when given."""
        where: list[str] = []
        params: list[Any] = []
        if symbol is not None:
            where.append("symbol = ?")
            params.append(symbol)
        if adopted is not None:
            where.append("adopted = ?")
            params.append(adopted)
        sql = ("SELECT epoch_ns(ts), run_id, from_version, to_version, adopted, reason, changes, symbol"
               " FROM parameter_changes" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY ts DESC, id DESC LIMIT ?")
        rows = self.store.conn.execute(sql, [*params, limit]).fetchall()
        return [ParameterChange(ts=int(r[0]), run_id=r[1], from_version=r[2], to_version=r[3], adopted=bool(r[4]),
                                reason=str(r[5]), changes=_load(r[6]) or {}, symbol=r[7]) for r in rows]

    # -- adaptive values -------------------------------------------------------------------------

    def save_adaptive(self, records: Sequence[AdaptiveRecord]) -> None:
        """Upsert the values; with the paper/live journal in front of the store, through it (its writer
        thread is then the only one writing the table, as for the agent weights)."""
        if not records:
            return
        if self.store.writer is not None:
            self.store.writer.append(*[("adaptive_values", r.row()) for r in records])
            return
        with self.store.transaction() as cur:
            upsert_adaptive(cur, [r.row() for r in records])

    def adaptive(self, symbol: str | None = None) -> list[AdaptiveRecord]:
        sql = ("SELECT symbol, name, value, low, high, confidence, outcomes, history, epoch_ns(updated_at)"
               " FROM adaptive_values" + (" WHERE symbol = ?" if symbol is not None else "") + " ORDER BY symbol, name")
        rows = self.store.conn.execute(sql, [symbol] if symbol is not None else []).fetchall()
        return [AdaptiveRecord(symbol=str(r[0]), name=str(r[1]), value=float(r[2]), low=float(r[3]), high=float(r[4]),
                               confidence=float(r[5]), outcomes=list(_load(r[6]) or []),
                               history=msgspec.convert(_load(r[7]) or [], list[Adjustment]), updated_at=int(r[8]))
                for r in rows]
