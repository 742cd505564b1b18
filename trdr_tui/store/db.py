"""The DuckDB store: one database file, migrations applied at open, passed in (never global)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar, Protocol

import duckdb

from trdr_tui.config import xdg_data_dir
from trdr_tui.core.errors import Interrupted, StateCorruption, StopError, StorageError, TrdrError
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


DISK_FULL = ("no space left", "disk is full", "disk full", "file too large", "quota exceeded")
"""How a full disk reads in DuckDB's and the OS's messages: ENOSPC, EFBIG (a file-size limit, `ulimit -f`),
EDQUOT."""


def database_error(path: str, exc: BaseException, *, action: str = "use") -> TrdrError:
    """A DuckDB (or OS) error on database `path` as what happened, where, and how to fix it.

    By what the operator must do (every write is one transaction: a failed one is rolled back whole):
    disk full (ENOSPC, EFBIG, EDQUOT; any class) → free space; a damaged or truncated file, or one without
    the tables trdr expects (CatalogException, BinderException) → StateCorruption (E007): restore a backup;
    held by another process → stop it, and permission denied → fix it (StopError, exit 2: the operator points
    trdr at a usable file); InterruptException → Interrupted (130); out of memory, a constraint broken, a
    write conflict, a DuckDB internal or fatal error, a closed connection and anything else → StorageError
    (exit 1) naming the file, the error and the next step."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    if any(s in low for s in DISK_FULL):
        return StorageError(f"the disk holding database {path} is full ({text})",
                            hint="free disk space (or raise the file-size limit, `ulimit -f`) and run it again; "
                                 "nothing was half-written (every write is one transaction)")
    if "not a valid duckdb database" in low and not _has_duckdb_header(path):
        return not_a_database(path, text)
    if ("corrupt" in low or "checksum" in low or "not a valid duckdb database" in low
            or "could not read enough bytes" in low):
        return StateCorruption(f"database {path} is damaged or truncated ({text})",
                               hint="restore it from a backup (with its .journal file), or move it away to start "
                                    "a new one; a live run reconciles with the exchange when it starts")
    if "lock" in low and ("conflicting" in low or "could not set" in low):
        return StopError(f"cannot {action} database {path}: another process holds it ({text})",
                         hint="stop the other trdr process, or pass a different --db")
    if "permission denied" in low or "read-only file system" in low or isinstance(exc, duckdb.PermissionException):
        return StopError(f"cannot {action} database {path}: permission denied ({text})",
                         hint="make the file and its directory readable and writable by this user, or pass "
                              "a different --db")
    if isinstance(exc, duckdb.InterruptException) or low == "query interrupted":
        return Interrupted(f"interrupted while using database {path}")
    if isinstance(exc, duckdb.CatalogException | duckdb.BinderException):
        return StateCorruption(f"database {path} lacks what this trdr expects ({text})",
                               hint="point --db at a trdr database; if this one was edited by hand, restore it from "
                                    "a backup, or move it away to start a new one")
    what, hint = _STORAGE_FAULTS.get(_fault_kind(exc), _STORAGE_FAULTS[None])
    return StorageError(f"{what} database {path} ({text})", hint=hint)


DUCKDB_MAGIC = b"DUCK"
"""The bytes at offset 8 of every DuckDB database file (DuckDB's `MainHeader::MAGIC_BYTES`)."""


def _has_duckdb_header(path: str) -> bool:
    """True when the file at `path` starts like a DuckDB database (a damaged one still does)."""
    return _file_start(path)[8:12] == DUCKDB_MAGIC


def _file_start(path: str) -> bytes:
    """The first 12 bytes of the file at `path` (fewer for a shorter file; none when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read(12)
    except OSError:
        return b""


def check_database_file(path: str | Path) -> None:
    """Raise StopError (exit 2) when `path` is a non-empty file without DuckDB's header, before DuckDB opens
    it: DuckDB would open some (a `.csv`) as an empty in-memory database and save nothing. A missing or empty
    file, or one that cannot be read, is left to DuckDB (it starts a new database, or says why not)."""
    p = Path(path).expanduser()
    start = _file_start(str(p)) if p.is_file() else b""
    if start and start[8:12] != DUCKDB_MAGIC:
        raise not_a_database(str(p), "its first bytes are not DuckDB's file header")


def not_a_database(path: str, detail: str) -> StopError:
    """The file at `path` is not a DuckDB database (exit 2); it is left as it is."""
    return StopError(f"{path} is not a DuckDB database ({detail})",
                     hint="pass the database with --db and the candle file with --data; --db takes a trdr "
                          "database file, or a path that does not exist yet to start a new one; the file was "
                          "left as it is")


def not_writable(path: str, detail: str) -> StopError:
    """A new database `path` cannot be created: its directory is not writable (exit 2: pass another --db)."""
    return StopError(f"cannot create database {path}: its directory {Path(path).parent} is not writable ({detail})",
                     hint="pass --db a path in a directory this user can write to (or fix the directory's "
                          "permissions, and its immutable flag: lsattr -d)")


_STORAGE_FAULTS: dict[str | None, tuple[str, str]] = {
    "memory": ("DuckDB ran out of memory using",
               "free memory (close other programs), or work on a shorter range (--start/--end); nothing was "
               "half-written"),
    "constraint": ("a write broke a constraint of",
                   "the write was rolled back whole; the database holds rows this trdr did not write (restored or "
                   "edited by hand?): check it, or pass another --db"),
    "transaction": ("a write conflicted with another and was rolled back, in",
                    "run it again; report it if it repeats"),
    "fatal": ("DuckDB failed inside",
              "run it again: the next open recovers from DuckDB's WAL and trdr's journal; if it repeats, restore "
              "a backup and report the error"),
    "connection": ("lost its connection to", "run it again; report it if it repeats"),
    "io": ("cannot read or write",
           "check the disk and the file (the kernel log shows I/O errors); restore a backup if the disk fails"),
    None: ("unexpected error in",
           "run it again; if it repeats, report it with the command you ran"),
}


def _fault_kind(exc: BaseException) -> str | None:
    kinds: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
        (duckdb.OutOfMemoryException, "memory"), (MemoryError, "memory"),
        (duckdb.IntegrityError, "constraint"), (duckdb.TransactionException, "transaction"),
        ((duckdb.InternalError, duckdb.FatalException), "fatal"),
        (duckdb.ConnectionException, "connection"), ((duckdb.IOException, OSError), "io"),
    )
    return next((kind for cls, kind in kinds if isinstance(exc, cls)), None)


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
        self.created = False  # this open created the file (`holds_nothing`, `remove`)
        if self.path != MEMORY:
            p = Path(self.path).expanduser()
            self.path = str(p)
            if p.is_dir():
                raise StopError(f"the database {self.path} is a directory",
                                hint=f"pass --db a database file, e.g. {p / 'trdr.duckdb'}")
            check_database_file(self.path)
            self.created = not p.exists()
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise not_writable(self.path, exc.strerror or type(exc).__name__) from None
        try:
            self.conn = duckdb.connect(self.path, read_only=read_only)
        except (duckdb.Error, OSError) as exc:
            if self.created and not read_only and not Path(self.path).exists() \
                    and isinstance(exc, duckdb.IOException | duckdb.PermissionException | OSError):
                raise not_writable(self.path, str(exc).strip().splitlines()[0]) from None
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

    def holds_nothing(self) -> bool:
        """True when no table but `schema_migrations` holds a row (what a fresh migration leaves)."""
        tables = self.conn.execute("SELECT schema_name, table_name FROM duckdb_tables() "
                                   "WHERE database_name = current_database()").fetchall()
        return all(self.conn.execute(f'SELECT 1 FROM "{schema}"."{table}" LIMIT 1').fetchone() is None
                   for schema, table in tables if table != "schema_migrations")

    def remove(self) -> None:
        """Close, then delete the database file (and DuckDB's WAL beside it): for a file this open
        created and nothing was written to (`created`, `holds_nothing`). Never with a journal beside it."""
        self.close()
        if self.path == MEMORY or Path(self.path + ".journal").exists():
            return
        for name in (self.path, self.path + ".wal"):
            with suppress(FileNotFoundError):
                Path(name).unlink()

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
