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


class AdaptiveRecord(msgspec.Struct, kw_only=True):
    name: str
    value: float
    confidence: float
    outcomes: list[bool]
    updated_at: int


class TuningRepository:
    """optimizations + optimization_trials, parameter_changes, adaptive_values."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- optimizations ---------------------------------------------------------------------------

    def record_study(self, rec: OptimizationRecord, trials: Sequence[TrialRecord]) -> None:
        """The optimization row and every trial, all or nothing."""
        with self.store.transaction() as cur:
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
                "INSERT INTO parameter_changes (ts, run_id, from_version, to_version, adopted, reason, changes)"
                " VALUES (make_timestamp(?), ?, ?, ?, ?, ?, ?)",
                [_ts(change.ts), change.run_id, change.from_version, change.to_version, change.adopted,
                 change.reason, _dump(change.changes)])

    def changes(self, limit: int = 50) -> list[ParameterChange]:
        rows = self.store.conn.execute(
            "SELECT epoch_ns(ts), run_id, from_version, to_version, adopted, reason, changes"
            " FROM parameter_changes ORDER BY ts DESC, id DESC LIMIT ?", [limit]).fetchall()
        return [ParameterChange(ts=int(r[0]), run_id=r[1], from_version=r[2], to_version=r[3], adopted=bool(r[4]),
                                reason=str(r[5]), changes=_load(r[6]) or {}) for r in rows]

    # -- adaptive values -------------------------------------------------------------------------

    def save_adaptive(self, records: Sequence[AdaptiveRecord]) -> None:
        with self.store.transaction() as cur:
            for r in records:
                cur.execute("DELETE FROM adaptive_values WHERE name = ?", [r.name])
                cur.execute("INSERT INTO adaptive_values VALUES (?, ?, ?, ?, make_timestamp(?))",
                            [r.name, r.value, r.confidence, _dump(r.outcomes), _ts(r.updated_at)])

    def adaptive(self) -> list[AdaptiveRecord]:
        rows = self.store.conn.execute(
            "SELECT name, value, confidence, outcomes, epoch_ns(updated_at) FROM adaptive_values ORDER BY name"
        ).fetchall()
        return [AdaptiveRecord(name=str(r[0]), value=float(r[1]), confidence=float(r[2]),
                               outcomes=list(_load(r[3]) or []), updated_at=int(r[4])) for r in rows]
