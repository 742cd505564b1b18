"""Repositories for backtest sessions, their results, parameter versions and optimization runs.

Times go in and come out as int nanoseconds since the epoch (UTC); JSON columns hold plain values
encoded with msgspec. Every write that must be all-or-nothing (a session's results together with
its status) happens in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import duckdb
import msgspec

from trdr_tui.core.errors import ConfigError
from trdr_tui.store.db import Store

_json = msgspec.json.Encoder()
_unjson = msgspec.json.Decoder()

SESSION_STATUSES = ("running", "completed", "failed")

ABANDONED = "process ended without finishing (killed, or the machine stopped)"
"""The error of a session found `running` when a database is opened read-write (`mark_abandoned`)."""

_RUNNING_HERE: set[str] = set()  # sessions this process is running: the only `running` rows not abandoned


def _ts(ns: int | None) -> int | None:
    """ns → µs for make_timestamp()."""
    return None if ns is None else int(ns) // 1000


def _dump(value: Any) -> str | None:
    return None if value is None else _json.encode(value).decode()


def _load(text: Any) -> Any:
    if text is None:
        return None
    return _unjson.decode(text.encode() if isinstance(text, str) else text)


class SessionRecord(msgspec.Struct, kw_only=True):
    id: str
    name: str
    description: str | None
    created_at: int
    status: str
    symbol: str
    timeframe: str
    start_ts: int | None
    end_ts: int | None
    parameters: dict[str, Any]
    parameter_version_id: str | None = None
    error: str | None = None


class ParameterVersion(msgspec.Struct, kw_only=True):
    id: str
    name: str
    created_at: int
    parameters: dict[str, Any]
    tags: list[str] = msgspec.field(default_factory=list)
    parent_ids: list[str] = msgspec.field(default_factory=list)
    notes: str | None = None
    session_id: str | None = None


class OptimizationRecord(msgspec.Struct, kw_only=True):
    id: str
    created_at: int
    method: str
    objective: str
    search_space: dict[str, Any]
    results: Any
    best_parameters: dict[str, Any] | None


def _resolve_prefix(store: Store, table: str, ident: str, what: str, listing: str) -> str:
    """Exact id, or a unique id prefix (≥ 4 characters) so users can type short ids."""
    row = store.conn.execute(f"SELECT id FROM {table} WHERE id = ?", [ident]).fetchone()
    if row:
        return str(row[0])
    if len(ident) >= 4:
        rows = store.conn.execute(f"SELECT id FROM {table} WHERE starts_with(id, ?) LIMIT 2", [ident]).fetchall()
        if len(rows) == 1:
            return str(rows[0][0])
        if len(rows) > 1:
            raise ConfigError(f"{what} id prefix '{ident}' is ambiguous", hint="type more of the id")
    raise ConfigError(f"no {what} '{ident}'", hint=f"list them with '{listing}'")


class SessionRepository:
    """backtest_sessions + backtest_results."""

    _COLS = ("id, name, description, epoch_ns(created_at), status, symbol, timeframe, epoch_ns(start_ts), "
             "epoch_ns(end_ts), parameters, parameter_version_id, error")

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, record: SessionRecord) -> SessionRecord:
        with self.store.transaction() as cur:
            cur.execute(
                "INSERT INTO backtest_sessions VALUES (?, ?, ?, make_timestamp(?), ?, ?, ?, make_timestamp(?),"
                " make_timestamp(?), ?, ?, ?)",
                [record.id, record.name, record.description, _ts(record.created_at), record.status,
                 record.symbol, record.timeframe, _ts(record.start_ts), _ts(record.end_ts),
                 _dump(record.parameters), record.parameter_version_id, record.error],
            )
        if record.status == "running":
            _RUNNING_HERE.add(record.id)
        return record

    def complete(self, session_id: str, results: dict[str, Any], curves: dict[str, Any] | None) -> None:
        """Store the results and mark the session completed, together."""
        with self.store.transaction() as cur:
            cur.execute("DELETE FROM backtest_results WHERE session_id = ?", [session_id])
            cur.execute("INSERT INTO backtest_results VALUES (?, ?, ?)",
                        [session_id, _dump(results), _dump(curves)])
            cur.execute("UPDATE backtest_sessions SET status = 'completed', error = NULL WHERE id = ?",
                        [session_id])
        _RUNNING_HERE.discard(session_id)

    def fail(self, session_id: str, error: str) -> None:
        with self.store.transaction() as cur:
            cur.execute("UPDATE backtest_sessions SET status = 'failed', error = ? WHERE id = ?",
                        [error[:2000], session_id])
        _RUNNING_HERE.discard(session_id)

    def _row(self, row: tuple[Any, ...]) -> SessionRecord:
        return SessionRecord(id=row[0], name=row[1], description=row[2], created_at=int(row[3]), status=row[4],
                             symbol=row[5], timeframe=row[6], start_ts=row[7], end_ts=row[8],
                             parameters=_load(row[9]) or {}, parameter_version_id=row[10], error=row[11])

    def resolve(self, ident: str) -> str:
        return _resolve_prefix(self.store, "backtest_sessions", ident, "session", "trdr sessions list")

    def get(self, ident: str) -> SessionRecord:
        sid = self.resolve(ident)
        row = self.store.conn.execute(f"SELECT {self._COLS} FROM backtest_sessions WHERE id = ?", [sid]).fetchone()
        assert row is not None
        return self._row(row)

    def list(self, limit: int = 50, status: str | None = None) -> list[SessionRecord]:
        sql = f"SELECT {self._COLS} FROM backtest_sessions"
        params: list[Any] = []
        if status:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY created_at DESC, id LIMIT ?"
        params.append(limit)
        return [self._row(r) for r in self.store.conn.execute(sql, params).fetchall()]

    def results(self, ident: str) -> dict[str, Any] | None:
        sid = self.resolve(ident)
        row = self.store.conn.execute("SELECT results FROM backtest_results WHERE session_id = ?", [sid]).fetchone()
        return _load(row[0]) if row else None

    def curves(self, ident: str) -> dict[str, Any] | None:
        sid = self.resolve(ident)
        row = self.store.conn.execute("SELECT equity_curve FROM backtest_results WHERE session_id = ?",
                                      [sid]).fetchone()
        return _load(row[0]) if row else None


def mark_abandoned(store: Store) -> None:
    """Mark failed, with the error `ABANDONED`, every session left `running` by a process that died
    before it could end its session (SIGKILL, SIGTERM, a power cut, a full disk that refused even the
    `failed` mark). Registered on `Store.on_open` (`trdr_tui.store`): a read-write open holds DuckDB's
    exclusive file lock, so no other process can be running one of them; sessions this process runs
    are left alone. When the mark cannot be written (the disk is still full) the rows stay `running`,
    a warning is logged, and the next open tries again."""
    running = [r[0] for r in store.conn.execute(
        "SELECT id FROM backtest_sessions WHERE status = 'running'").fetchall() if r[0] not in _RUNNING_HERE]
    if not running:
        return
    try:
        with store.transaction() as cur:
            cur.execute("UPDATE backtest_sessions SET status = 'failed', error = ? WHERE list_contains(?, id)",
                        [ABANDONED, running])
    except duckdb.Error as exc:
        logging.getLogger("trdr.store").warning("%d session(s) left running by a dead process stay 'running': %s",
                                                len(running), exc)


class ParameterRepository:
    """parameter_versions: save, look up by id / name / tag, attach results."""

    _COLS = "id, name, tags, parent_ids, epoch_ns(created_at), notes, parameters, session_id"

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, version: ParameterVersion) -> ParameterVersion:
        for parent in version.parent_ids:
            self.get(parent)  # a parent must exist: refuse dangling links
        with self.store.transaction() as cur:
            cur.execute(
                "INSERT INTO parameter_versions VALUES (?, ?, ?, ?, make_timestamp(?), ?, ?, ?)",
                [version.id, version.name, version.tags, version.parent_ids, _ts(version.created_at),
                 version.notes, _dump(version.parameters), version.session_id],
            )
        return version

    def _row(self, row: tuple[Any, ...]) -> ParameterVersion:
        return ParameterVersion(id=row[0], name=row[1], tags=list(row[2] or []), parent_ids=list(row[3] or []),
                                created_at=int(row[4]), notes=row[5], parameters=_load(row[6]) or {},
                                session_id=row[7])

    def get(self, version_id: str) -> ParameterVersion:
        vid = _resolve_prefix(self.store, "parameter_versions", version_id, "parameter version",
                              "trdr params list")
        row = self.store.conn.execute(f"SELECT {self._COLS} FROM parameter_versions WHERE id = ?",
                                      [vid]).fetchone()
        assert row is not None
        return self._row(row)

    def find(self, ident: str) -> ParameterVersion:
        """By id (or unique id prefix), else the newest with that name, else the newest with that tag."""
        row = self.store.conn.execute(f"SELECT {self._COLS} FROM parameter_versions WHERE id = ?",
                                      [ident]).fetchone()
        if row is None:
            row = self.store.conn.execute(
                f"SELECT {self._COLS} FROM parameter_versions WHERE name = ? ORDER BY created_at DESC, id DESC"
                " LIMIT 1", [ident]).fetchone()
        if row is None:
            row = self.store.conn.execute(
                f"SELECT {self._COLS} FROM parameter_versions WHERE list_contains(tags, ?)"
                " ORDER BY created_at DESC, id DESC LIMIT 1", [ident]).fetchone()
        if row is None:
            try:
                return self.get(ident)
            except ConfigError:
                raise ConfigError(f"no parameter version with id, name or tag '{ident}'",
                                  hint="list them with 'trdr params list'") from None
        return self._row(row)

    def list(self, limit: int = 100) -> list[ParameterVersion]:
        rows = self.store.conn.execute(
            f"SELECT {self._COLS} FROM parameter_versions ORDER BY created_at DESC, id LIMIT ?", [limit]).fetchall()
        return [self._row(r) for r in rows]

    def attach(self, version_id: str, session_id: str) -> None:
        vid = self.get(version_id).id
        with self.store.transaction() as cur:
            cur.execute("UPDATE parameter_versions SET session_id = ? WHERE id = ?", [session_id, vid])

    def add_tags(self, version_id: str, tags: Sequence[str]) -> ParameterVersion:
        v = self.get(version_id)
        merged = v.tags + [t for t in tags if t not in v.tags]
        with self.store.transaction() as cur:
            cur.execute("UPDATE parameter_versions SET tags = ? WHERE id = ?", [merged, v.id])
        return self.get(v.id)


class OptimizationRepository:
    """optimizations: one row per optimizer run (walk-forward windows, grid searches)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, rec: OptimizationRecord) -> None:
        with self.store.transaction() as cur:
            cur.execute("INSERT INTO optimizations VALUES (?, make_timestamp(?), ?, ?, ?, ?, ?)",
                        [rec.id, _ts(rec.created_at), rec.method, rec.objective, _dump(rec.search_space),
                         _dump(rec.results), _dump(rec.best_parameters)])

    def get(self, ident: str) -> OptimizationRecord:
        oid = _resolve_prefix(self.store, "optimizations", ident, "optimization", "trdr sessions list")
        row = self.store.conn.execute(
            "SELECT id, epoch_ns(created_at), method, objective, search_space, results, best_parameters"
            " FROM optimizations WHERE id = ?", [oid]).fetchone()
        assert row is not None
        return OptimizationRecord(id=row[0], created_at=int(row[1]), method=row[2], objective=row[3],
                                  search_space=_load(row[4]) or {}, results=_load(row[5]),
                                  best_parameters=_load(row[6]))
