"""The streaming modes' persistence: an append-only journal in front of DuckDB, applied off the hot path.

Paper and live (DESIGN.md invariant 11) must not wait on the analytical store, and must lose nothing
the process has seen when it dies. So every change the engine makes is first one `write(2)` of one
record to an append-only journal file beside the database (`<db>.journal`) — microseconds, and
durable against a crash of the process the moment the call returns — and a writer thread then
applies the records to DuckDB in batches (one transaction per batch, at most `flush_interval_s`
behind), and CHECKPOINTs the database every `checkpoint_interval_s`. After a checkpoint that covered
every record in the file, the journal is emptied.

A record is one JSON line `{"lsn": n, "ops": [[kind, row], ...]}`: everything in it is applied in the
same DuckDB transaction (a fill with its trade and the order's new state is one record). The highest
applied `lsn` is stored in the same transaction (table `store_journal`), so a restart replays exactly
the records the database does not hold yet — also when DuckDB's own WAL was lost after a crash: the
journal is only emptied once the main database file holds everything in it.

Power loss: `fsync` ("always": every record before `append` returns, ~ms; "batch": the writer thread
fsyncs the journal once per batch; "never": the OS decides). A record torn by a power loss is the
last line of the file and is ignored at replay; a damaged line anywhere else stops the start (E007).

Rows the engine can do without after a crash (the agent decision log) skip the journal: `defer_rows`
hands them to the writer, which inserts everything deferred in its next batch with one statement.

Errors in the writer thread (disk full, a damaged database file) are kept, and the next `append` or
`flush` raises them as a StopError naming the database and the fix; the journal still holds every
record, so nothing acknowledged is lost.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, Literal

import duckdb
import msgspec

from trdr_tui.core.errors import StateCorruption, StorageError, TrdrError
from trdr_tui.store.db import Store, database_error

FsyncPolicy = Literal["always", "batch", "never"]
Op = tuple[str, Sequence[Any]]  # (kind, row): see APPLY below
Deferred = Callable[[duckdb.DuckDBPyConnection], None]


class Record(msgspec.Struct, frozen=True):
    lsn: int
    ops: list[tuple[str, list[Any]]]


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Record).decode


def journal_path(store: Store) -> Path:
    """`<database file>.journal`."""
    return Path(store.path + ".journal")


# -- applying records: one function per kind of op, each for a list of rows in journal order ---------


def _rows_table(table: str) -> Callable[[duckdb.DuckDBPyConnection, list[list[Any]]], None]:
    from trdr_tui.store.orders import write_rows

    def apply(cur: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> None:
        write_rows(cur, table, [tuple(r) for r in rows])
    return apply


def _last_by(key: Callable[[list[Any]], object], rows: list[list[Any]]) -> list[list[Any]]:
    """One row per key, the last one written (an upsert cannot change a row twice in one statement)."""
    return list({key(r): r for r in rows}.values())


def _orders(cur: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> None:
    from trdr_tui.store.orders import write_rows

    write_rows(cur, "orders", [tuple(r) for r in _last_by(lambda r: r[0], rows)])


def _checkpoints(cur: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> None:
    for r in rows:
        cur.execute("INSERT INTO checkpoints (run_id, ts, type, mode, state) "
                    "VALUES (?, make_timestamp(?), ?, ?, ?)", r)


def _grid(cur: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> None:
    for r in _last_by(lambda r: (r[0], r[1]), rows):
        cur.execute("INSERT INTO grid_state (run_id, symbol, updated_at, state) VALUES (?, ?, make_timestamp(?), ?) "
                    "ON CONFLICT (run_id, symbol) DO UPDATE SET updated_at = excluded.updated_at, "
                    "state = excluded.state", r)


def _weights(cur: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> None:
    for r in _last_by(lambda r: r[0], rows):
        cur.execute("INSERT INTO agent_weights (agent_id, weight, updated_at) VALUES (?, ?, make_timestamp(?)) "
                    "ON CONFLICT (agent_id) DO UPDATE SET weight = excluded.weight, "
                    "updated_at = excluded.updated_at", r)


def _adaptive(cur: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> None:
    from trdr_tui.store.tuning import upsert_adaptive

    upsert_adaptive(cur, _last_by(lambda r: (r[0], r[1]), rows))


def _outbox(cur: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> None:
    """Outbox puts, updates and re-configurations, in the order they were made (an update follows its put)."""
    for r in rows:
        if r[0] == "put":
            cur.execute("INSERT INTO exchange_outbox (client_order_id, order_id, run_id, product_id, side, "
                        "configuration, state, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, "
                        "'sending', 0, make_timestamp(?), make_timestamp(?)) ON CONFLICT DO NOTHING",
                        [*r[1:], r[-1]])
        elif r[0] == "configure":  # a request re-rounded after the product's increments changed
            cur.execute("UPDATE exchange_outbox SET configuration = ?, state = 'sending', "
                        "updated_at = make_timestamp(?) WHERE client_order_id = ?", r[1:])
        else:
            cur.execute("UPDATE exchange_outbox SET state = ?, exchange_order_id = coalesce(?, exchange_order_id), "
                        "last_error = ?, attempts = coalesce(?, attempts), updated_at = make_timestamp(?) "
                        "WHERE client_order_id = ?", r[1:])


def _trades_replaced(cur: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> None:
    """`["trades.replace", [run_id, [trade row, ...]]]`: a run's trades rebuilt from its fills."""
    from trdr_tui.store.orders import write_rows

    for run_id, trades in rows:
        cur.execute("DELETE FROM trades WHERE run_id = ?", [run_id])
        write_rows(cur, "trades", [tuple(t) for t in trades])


APPLY: dict[str, Callable[[duckdb.DuckDBPyConnection, list[list[Any]]], None]] = {
    "orders": _orders,
    "order_transitions": _rows_table("order_transitions"),
    "fills": _rows_table("fills"),
    "trades": _rows_table("trades"),
    "trades.replace": _trades_replaced,
    "checkpoints": _checkpoints,
    "grid_state": _grid,
    "agent_weights": _weights,
    "outbox": _outbox,
    "adaptive_values": _adaptive,
}
_ORDER = tuple(APPLY)  # within one batch, kinds are applied in this order


def apply_records(cur: duckdb.DuckDBPyConnection, records: Sequence[Record]) -> None:
    """Apply `records` (in lsn order) inside the caller's transaction. Rows of a kind keep their order.

    Raises StateCorruption for a kind this trdr does not know (a journal from a newer version)."""
    by_kind: dict[str, list[list[Any]]] = {}
    for rec in records:
        for kind, row in rec.ops:
            if kind not in APPLY:
                raise StateCorruption(f"journal record {rec.lsn} has an unknown kind of change '{kind}'",
                                      hint="the journal was written by a newer trdr: upgrade trdr")
            by_kind.setdefault(kind, []).append(row)
    for kind in _ORDER:
        rows = by_kind.get(kind)
        if rows:
            APPLY[kind](cur, rows)


def read_journal(path: Path) -> list[Record]:
    """The records in a journal file, in order. A last line cut short (a power loss during its write)
    is left out; a damaged line before the last raises StateCorruption (E007)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    out: list[Record] = []
    for k, line in enumerate(lines):
        if not line:
            continue
        try:
            out.append(_decode(line))
        except msgspec.DecodeError:
            if k == len(lines) - 1:  # no newline after it: torn while being written
                break
            raise StateCorruption(f"journal {path} is damaged at line {k + 1}",
                                  hint="restore the database and its journal from a backup taken together; "
                                       "a live run then reconciles with the exchange") from None
    return out


def _commit(cur: duckdb.DuckDBPyConnection, records: Sequence[Record], deferred: Sequence[Deferred]) -> None:
    """One transaction: the records, the highest lsn applied, and the deferred writes."""
    cur.execute("BEGIN TRANSACTION")
    try:
        if records:
            apply_records(cur, records)
            cur.execute("INSERT INTO store_journal VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET "
                        "applied_lsn = excluded.applied_lsn", [records[-1].lsn])
        for fn in deferred:
            fn(cur)
    except BaseException:
        with suppress(duckdb.Error):
            cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")


def replay(store: Store, path: Path, cur: duckdb.DuckDBPyConnection | None = None) -> tuple[int, int]:
    """Apply the journal records the database does not hold yet (lsn above the stored one) in one
    transaction, CHECKPOINT, and empty the journal (kept when the checkpoint cannot run now). Returns (records applied, highest lsn known).
    Every read-write open of a database file does this (Store), so no reader sees a store older than
    its journal. Raises StateCorruption for a damaged journal; DuckDB errors propagate."""
    cur = cur if cur is not None else store.cursor()
    cur.execute("CREATE TABLE IF NOT EXISTS store_journal (id INTEGER PRIMARY KEY, applied_lsn BIGINT NOT NULL)")
    row = cur.execute("SELECT applied_lsn FROM store_journal WHERE id = 1").fetchone()
    applied = int(row[0]) if row else 0
    records = read_journal(path)
    if path.is_file():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):  # a torn last record: cut it, so appends start on a new line
            with open(path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
    todo = [r for r in records if r.lsn > applied]
    if todo:
        _commit(cur, todo, [])
    try:
        cur.execute("CHECKPOINT")
    except duckdb.TransactionException:
        pass  # not now (another transaction is open): the journal is kept, and skipped by lsn next time
    else:
        if path.exists():
            with open(path, "r+b") as fh:  # everything in it is in the checkpointed database now
                fh.truncate(0)
    return len(todo), max([applied] + [r.lsn for r in records])


class StoreWriter:
    """The journal and its writer thread for one Store (see the module docstring).

    `append(*ops)` returns once the record is in the journal (and fsynced, policy "always");
    `flush()` returns once everything appended so far is in DuckDB. Intervals in seconds.
    """

    def __init__(self, store: Store, path: Path, *, fsync: FsyncPolicy = "batch", flush_interval_s: float = 0.25,
                 checkpoint_interval_s: float = 30.0) -> None:
        if not 0.0 < flush_interval_s <= 1.0:
            raise ValueError(f"flush interval must be in (0, 1] s, got {flush_interval_s}")
        self.store = store
        self.path = path
        self.fsync: FsyncPolicy = fsync
        self.flush_interval_s = flush_interval_s
        self.checkpoint_interval_s = checkpoint_interval_s
        self.error: BaseException | None = None
        self._error_raised = False  # whether the writer's failure has reached a caller
        self.replayed = 0  # records applied from the journal at start
        self._cur = store.cursor()
        self._lock = threading.Lock()  # the journal file and the queues
        self._wake = threading.Condition(self._lock)
        self._records: list[Record] = []
        self._deferred: list[Deferred] = []
        self._rows: dict[str, tuple[list[Any], Callable[[duckdb.DuckDBPyConnection, list[Any]], None]]] = {}
        self._lsn = 0
        self._applied = 0  # highest lsn in DuckDB
        self._deferred_in = 0  # functions deferred so far
        self._deferred_done = 0  # ... and run
        self._urgent = False  # flush(): write now, not at the end of the interval
        self._closing = False
        self._fd = -1
        self._thread: threading.Thread | None = None

    # -- start: replay ---------------------------------------------------------------------------

    def start(self) -> StoreWriter:
        """Replay what the database lacks, checkpoint, empty the journal, start the thread."""
        self.replayed, self._applied = replay(self.store, self.path, self._cur)
        self._lsn = self._applied
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._thread = threading.Thread(target=self._run, name="trdr-store-writer", daemon=True)
        self._thread.start()
        return self

    # -- the hot path ------------------------------------------------------------------------------

    def append(self, *ops: Op) -> int:
        """Make `ops` durable as one record (one write(2)) and queue them for DuckDB; returns its lsn.

        Raises StorageError (a StopError) when the journal cannot be written or the writer thread has failed."""
        if self.error is not None:
            raise self._stop_error()
        with self._lock:
            self._lsn += 1
            rec = Record(self._lsn, [(k, list(r)) for k, r in ops])
            line = _encode(rec) + b"\n"
            try:
                os.write(self._fd, line)
                if self.fsync == "always":
                    os.fsync(self._fd)
            except OSError as exc:
                self._lsn -= 1
                raise StorageError(f"cannot write the journal {self.path}: {exc.strerror}",
                                hint="free disk space (or fix the file's permissions), then restart: "
                                     "nothing acknowledged was lost") from None
            self._records.append(rec)
        return rec.lsn

    def defer_rows(self, kind: str, rows: list[Any], write: Callable[[duckdb.DuckDBPyConnection, list[Any]], None]
                   ) -> None:
        """Rows not worth a journal record (the decision log): in the writer's next batch, `write(cursor,
        rows)` runs once per `kind` with every row deferred under it since the last batch."""
        if self.error is not None:
            raise self._stop_error()
        with self._lock:
            pending = self._rows.get(kind)
            if pending is None:
                self._rows[kind] = pending = ([], write)
                self._deferred.append(lambda cur: self._write_rows(cur, kind))
                self._deferred_in += 1
            pending[0].extend(rows)

    def _write_rows(self, cur: duckdb.DuckDBPyConnection, kind: str) -> None:
        with self._lock:
            rows, write = self._rows.pop(kind)
        write(cur, rows)

    def flush(self) -> None:
        """Block until everything appended or deferred so far is in DuckDB. Raises the writer's error."""
        self._wait_applied()
        if self.error is not None:
            raise self._stop_error()

    def _wait_applied(self) -> None:
        """Block until everything appended or deferred so far is in DuckDB, or the writer failed."""
        with self._wake:
            lsn, deferred = self._lsn, self._deferred_in
            self._urgent = True
            self._wake.notify_all()
            while (self._applied < lsn or self._deferred_done < deferred) and self.error is None:
                if self._thread is None or not self._thread.is_alive():
                    break
                self._wake.wait(0.5)

    def close(self) -> None:
        """Flush, checkpoint, empty the journal and stop the thread (Store.close calls this). After a
        writer failure it only stops: the journal keeps the records, and the next open replays them.
        A failure no caller has been told of yet (the writer failed on the last batch, after the
        engine's last write) is raised here, once the thread has stopped."""
        if self._thread is None:
            return
        try:
            self._wait_applied()
        finally:
            with self._wake:
                self._closing = True
                self._wake.notify_all()
            self._thread.join()
            self._thread = None
            if self.error is None:
                self._checkpoint(final=True)
            os.close(self._fd)
        if self.error is not None and not self._error_raised:
            raise self._stop_error()

    # -- the writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        last_checkpoint = time.monotonic()
        while True:
            with self._wake:
                if not self._closing and not self._urgent:
                    self._wake.wait(self.flush_interval_s)
                self._urgent = False
                records, self._records = self._records, []
                deferred, self._deferred = self._deferred, []
                closing = self._closing
            if records or deferred:
                try:
                    self._commit(records, deferred)
                    if self.fsync == "batch":
                        os.fsync(self._fd)
                except BaseException as exc:  # kept; raised to the engine at its next append/flush
                    with self._wake:
                        self.error = exc
                        self._records = records + self._records
                        self._wake.notify_all()
                    return
                with self._wake:
                    if records:
                        self._applied = records[-1].lsn
                    self._deferred_done += len(deferred)
                    self._wake.notify_all()
            if closing:
                return
            if time.monotonic() - last_checkpoint >= self.checkpoint_interval_s:
                last_checkpoint = time.monotonic()
                self._checkpoint()

    def _commit(self, records: list[Record], deferred: list[Deferred]) -> None:
        _commit(self._cur, records, deferred)

    def _checkpoint(self, *, final: bool = False) -> None:
        """CHECKPOINT the database; then, if nothing was appended since the last batch, empty the
        journal (its records are all in the main database file now). A checkpoint that cannot run now
        (another transaction is open) is tried again at the next interval; the `final` one, at close,
        has nothing to wait for, so its failure (a full disk) becomes the writer's error: the journal
        keeps its records for the next open."""
        with self._lock:
            applied = self._applied
        try:
            self._cur.execute("CHECKPOINT")
        except duckdb.Error as exc:
            if final:
                self.error = exc
            return
        with self._lock:
            if self._lsn == applied and not self._records:
                os.ftruncate(self._fd, 0)

    def _stop_error(self) -> TrdrError:
        self._error_raised = True
        exc = self.error
        if isinstance(exc, TrdrError):
            return exc
        return database_error(self.store.path, exc if isinstance(exc, Exception) else Exception(str(exc)),
                              action="write to")


def start_writer(store: Store, *, fsync: FsyncPolicy = "batch", flush_interval_s: float = 0.25,
                 checkpoint_interval_s: float = 30.0) -> StoreWriter | None:
    """Put a journal and writer thread in front of `store` (paper and live); the one already there
    if any. None for an in-memory store (nothing survives the process anyway)."""
    if isinstance(store.writer, StoreWriter):
        return store.writer
    if store.path == ":memory:":
        return None
    writer = StoreWriter(store, journal_path(store), fsync=fsync, flush_interval_s=flush_interval_s,
                         checkpoint_interval_s=checkpoint_interval_s)
    writer.start()
    store.writer = writer
    return writer


__all__ = ["APPLY", "FsyncPolicy", "Record", "StoreWriter", "apply_records", "journal_path", "read_journal",
           "start_writer"]


def replay_pending(store: Store) -> None:
    """Apply what `<db>.journal` holds that the database does not (a process that died): the hook
    `trdr_tui.store` registers on `Store.on_open`."""
    path = journal_path(store)
    if path.is_file() and path.stat().st_size > 0:
        replay(store, path, store.conn)
