"""The DuckDB store: one database file, migrations applied at open, passed in (never global)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar, Protocol

import duckdb

from trdr_tui.config import xdg_data_dir
from trdr_tui.core.errors import StateCorruption, StopError, TrdrError
from trdr_tui.store.schema import MIGRATIONS

MEMORY = ":memory:"


class JournalWriter(Protocol):
    """The journal in front of the database in paper and live (store.journal.StoreWriter).

    `append(*ops)`: each op is (kind, row); one durable record, returns its sequence number.
    `defer_rows(kind, rows, write)`: rows for the next batch, written by `write(cursor, rows)`."""

    def append(self, *ops: tuple[str, Sequence[Any]]) -> int: ...

    def defer_rows(self, kind: str, rows: list[Any],
                   write: Callable[[duckdb.DuckDBPyConnection, list[Any]], None]) -> None: ...

    def flush(self) -> None:
        """Apply everything appended so far; raises StopError when the writer failed."""

    def close(self) -> None:
        """Flush, checkpoint the database and stop the writer."""


def database_error(path: str, exc: Exception, *, action: str = "use") -> TrdrError:
    """A DuckDB (or OS) error on database `path` as what happened, where, and how to fix it.

    Disk full → free space (each write is one transaction: nothing was half-written); a damaged or
    truncated file → StateCorruption (E007): restore a backup; held by another process → stop it;
    permission denied → fix the permissions. Anything else names the file and the error."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    if "no space left" in low or "disk is full" in low or "disk full" in low:
        return StopError(f"the disk holding database {path} is full ({text})",
                         hint="free disk space and run it again; nothing was half-written (every write is one "
                              "transaction)")
    if ("corrupt" in low or "checksum" in low or "not a valid duckdb database" in low
            or "could not read enough bytes" in low):
        return StateCorruption(f"database {path} is damaged or truncated ({text})",
                               hint="restore it from a backup (with its .journal file), or move it away to start "
                                    "a new one; a live run reconciles with the exchange when it starts")
    if "lock" in low and ("conflicting" in low or "could not set" in low):
        return StopError(f"cannot {action} database {path}: another process holds it ({text})",
                         hint="stop the other trdr process, or pass a different --db")
    if "permission denied" in low or "read-only file system" in low:
        return StopError(f"cannot {action} database {path}: permission denied ({text})",
                         hint="make the file and its directory readable and writable by this user, or pass "
                              "a different --db")
    return StopError(f"cannot {action} database {path}: {text}", hint="check the file and the disk it is on")


def default_db_path() -> Path:
    return xdg_data_dir() / "trdr.duckdb"


class Store:
    """A DuckDB connection with the trdr schema.

    `Store(path)` opens (creating if needed) and migrates. `Store(":memory:")` is a throwaway store
    for backtests run straight from a file. Use `transaction()` for all-or-nothing writes.
    Thread use: DuckDB connections are not shared across threads; `cursor()` gives a thread its own.
    """

    def __init__(self, path: str | Path = MEMORY, *, read_only: bool = False) -> None:
        self.path = str(path)
        if self.path != MEMORY:
            p = Path(self.path).expanduser()
            p.parent.mkdir(parents=True, exist_ok=True)
            self.path = str(p)
        try:
            self.conn = duckdb.connect(self.path, read_only=read_only)
        except (duckdb.Error, OSError) as exc:
            raise database_error(self.path, exc, action="open") from None
        self._lock = threading.RLock()
        self.writer: JournalWriter | None = None  # paper/live: the journal in front (store.journal)
        if not read_only:
            try:
                self.migrate()
                self._replay_journal()
            except duckdb.Error as exc:
                with suppress(duckdb.Error):
                    self.conn.close()
                raise database_error(self.path, exc, action="open") from None

    on_open: ClassVar[list[Callable[[Store], None]]] = []
    """Run after migrations whenever a database is opened read-write; `trdr_tui.store` registers the
    journal replay here (store/journal.py), so the store never imports the journal that writes to it."""

    def _replay_journal(self) -> None:
        """A paper/live process that died left records in `<db>.journal` the database may not hold:
        apply them now, before anyone reads (the `on_open` hooks)."""
        if self.path == MEMORY:
            return
        for hook in self.on_open:
            hook(self)

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Write and checkpoint what the journal's writer holds (if any), then close."""
        writer, self.writer = self.writer, None
        try:
            if writer is not None:
                writer.close()
        finally:
            self.conn.close()

    def sync(self) -> None:
        """Bring the database up to date with the journal (a no-op without one): before reading back
        what the engine wrote in paper or live mode. Raises StopError when the writer failed."""
        if self.writer is not None:
            self.writer.flush()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ----------------------------------------------------------------------------------

    def schema_version(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        ).fetchone()
        if not row or row[0] == 0:
            return 0
        got = self.conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(got[0]) if got else 0

    def migrate(self) -> int:
        """Apply pending migrations; returns how many were applied."""
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMP DEFAULT current_timestamp)"
        )
        current = self.schema_version()
        known = max(v for v, _, _ in MIGRATIONS)
        if current > known:
            raise StateCorruption(
                f"database {self.path} has schema version {current}, newer than this trdr knows ({known})",
                hint="upgrade trdr, or point --db at another file",
            )
        applied = 0
        for version, description, sql in MIGRATIONS:
            if version <= current:
                continue
            with self.transaction() as cur:
                cur.execute(sql)
                cur.execute("INSERT INTO schema_migrations (version, description) VALUES (?, ?)",
                            [version, description])
            applied += 1
        return applied

    # -- access ----------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All-or-nothing: commits on success, rolls back on any exception."""
        with self._lock:
            self.conn.execute("BEGIN TRANSACTION").fetchall()  # consumed: register() refuses a pending result
            try:
                yield self.conn
            except BaseException:
                with suppress(duckdb.Error):  # a failed COMMIT/statement may have ended it already
                    self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for use in another thread."""
        return self.conn.cursor()

    def tables(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
        ).fetchall()
        return [r[0] for r in rows]
