"""The DuckDB store: one database file, migrations applied at open, passed in (never global)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from trdr_tui.config import xdg_data_dir
from trdr_tui.core.errors import StateCorruption, StopError
from trdr_tui.store.schema import MIGRATIONS

MEMORY = ":memory:"


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
        except duckdb.IOException as exc:
            raise StopError(
                f"cannot open database {self.path}: {exc}",
                hint="another trdr process may hold it; stop it or pass a different --db",
            ) from None
        self._lock = threading.RLock()
        if not read_only:
            self.migrate()

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        self.conn.close()

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
