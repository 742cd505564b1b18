"""Database faults end to end: sessions that die are marked failed (an exception, Ctrl-C, a full disk,
SIGKILL), a full disk during import, backtest and a paper replay (a file-size limit always; a real
full tmpfs where mounting is permitted), and every DuckDB error class through the real CLI entry."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import DAILY_CDD, HOURLY_CDD, REPO
from trdr_tui.cli import main
from trdr_tui.store import Store
from trdr_tui.store.journal import read_journal
from trdr_tui.store.sessions import ABANDONED, SessionRepository


def trdr(*args: str, limit: int | None = None) -> subprocess.Popen[str]:
    """`trdr ARGS` as a process; with `limit`, no file it writes may grow past `limit` bytes (RLIMIT_FSIZE,
    SIGXFSZ ignored: a write past it fails with EFBIG "File too large", as a full disk fails with ENOSPC)."""
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # type: ignore[arg-type]

    return subprocess.Popen([sys.executable, "-m", "trdr_tui", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=limited if limit is not None else None)


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def new_db(path: Path) -> Path:
    """A migrated trdr database, checkpointed: what a command finds after its first use."""
    Store(path).close()
    return path


def sessions(db: Path) -> list[dict[str, Any]]:
    with Store(db) as store:  # a read-write open, as `trdr sessions` does
        repo = SessionRepository(store)
        return [{"status": s.status, "error": s.error, "results": repo.results(s.id)} for s in repo.list()]


# -- sessions always end -------------------------------------------------------------------------------


def test_a_backtest_failing_after_its_run_is_marked_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import trdr_tui.backtest.walkforward as wf
    from trdr_tui.core.errors import ConfigError

    def refuse(*_a: object, **_k: object) -> None:  # bad input found only after the run
        raise ConfigError("refused after the run")

    monkeypatch.setattr(wf, "walk_forward", refuse)
    db = new_db(tmp_path / "t.duckdb")
    code = main(["--db", str(db), "backtest", "--data", str(DAILY_CDD), "--monte-carlo", "0", "--json",
                 "--walk-forward", "500:100"])
    assert code == 2, capsys.readouterr()
    [s] = sessions(db)
    assert s["status"] == "failed" and "ConfigError" in s["error"] and s["results"] is None


def wait_for_session(proc: subprocess.Popen[str], db: Path) -> None:
    """Until the backtest has written its `running` session (the WAL of a checkpointed database grows)."""
    wal = Path(f"{db}.wal")
    deadline = time.monotonic() + 60
    while not (wal.exists() and wal.stat().st_size > 0):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    time.sleep(1.0)  # its commit is over: the run and the walk-forward take seconds more


@pytest.mark.parametrize(("sig", "code", "error"), [(signal.SIGINT, 130, "interrupted (Ctrl-C)"),
                                                     (signal.SIGKILL, -9, ABANDONED)])
def test_a_backtest_stopped_midway_never_stays_running(tmp_path: Path, sig: signal.Signals, code: int,
                                                       error: str) -> None:
    db = new_db(tmp_path / "t.duckdb")
    proc = trdr("--db", str(db), "backtest", "--data", str(HOURLY_CDD), "--json", "--monte-carlo", "0",
                "--walk-forward", "120d:30d")  # ≈ 1 s of run, then many seconds of walk-forward
    wait_for_session(proc, db)
    proc.send_signal(sig)
    rc, _, err = finish(proc)
    assert rc == code, err
    assert "Traceback" not in err
    [s] = sessions(db)  # SIGKILL: the next read-write open finds the abandoned row
    assert s == {"status": "failed", "error": error, "results": None}


def test_a_ctrl_c_as_asyncio_installs_its_handler_still_ends_as_an_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """asyncio's runner resets its interrupt count just after installing its SIGINT handler; a Ctrl-C in
    that instant (a walk-forward starts an event loop per window) cancelled the main task and the
    backtest died with a CancelledError traceback. It exits 130 and marks its session failed."""
    real = signal.signal
    installs: list[int] = []

    def install_then_interrupt(sig: int, handler: Any) -> Any:
        previous = real(sig, handler)
        if sig == signal.SIGINT and getattr(handler, "func", None) is not None:  # asyncio's runner handler
            installs.append(1)
            if len(installs) == 3:  # inside the walk-forward
                handler(sig, None)  # the signal, delivered at once
        return previous

    monkeypatch.setattr(signal, "signal", install_then_interrupt)
    db = new_db(tmp_path / "t.duckdb")
    code = main(["--db", str(db), "backtest", "--data", str(HOURLY_CDD), "--start", "2019-01-01", "--json",
                 "--monte-carlo", "0", "--walk-forward", "60d:30d"])
    err = capsys.readouterr().err
    assert len(installs) == 3
    assert code == 130 and "Traceback" not in err and "CancelledError" not in err, err
    [s] = sessions(db)
    assert s == {"status": "failed", "error": "interrupted (Ctrl-C)", "results": None}


def test_the_sessions_this_process_runs_are_not_taken_for_abandoned(tmp_path: Path) -> None:
    from trdr_tui.backtest.sessions import start_session

    db = tmp_path / "t.duckdb"
    with Store(db) as store:
        repo = SessionRepository(store)
        mine = start_session(repo, name=None, description=None, symbol="BTC-USD", timeframe="1h", start_ts=None,
                             end_ts=None, parameters={}, parameter_version_id=None, now_ns=0)
        with Store(db) as again:  # a second read-write open in the same process
            assert SessionRepository(again).get(mine.id).status == "running"
        repo.complete(mine.id, {"ok": True}, None)
        assert repo.get(mine.id).status == "completed"


# -- a full disk, end to end ---------------------------------------------------------------------------


class FullDisk:
    """Where a trdr process runs out of disk: `fsize` (a file-size limit: always available) or `tmpfs`
    (a real full file system, ENOSPC; needs permission to mount)."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.dir = root / "disk"
        self.dir.mkdir()
        self.mounted = False

    def mount(self) -> None:
        if self.kind != "tmpfs":
            return
        if shutil.which("mount") is None:
            pytest.skip("no mount command: the file-size-limit variant covers a full disk")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(self.dir)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"mounting a tmpfs is not permitted here ({proc.stderr.strip()}): the file-size-limit "
                        "variant covers a full disk")
        self.mounted = True

    def run(self, *args: str, free: int) -> tuple[int, str, str]:
        """`trdr ARGS` with `free` bytes left: the limit on each file, or the tmpfs filled up to `free`."""
        if self.kind == "tmpfs":
            st = os.statvfs(self.dir)
            filler = st.f_bavail * st.f_frsize - free
            with open(self.dir / "filler", "wb") as f:
                f.write(b"\0" * filler)
            try:
                return finish(trdr(*args))
            finally:
                (self.dir / "filler").unlink()  # space freed
        return finish(trdr(*args, limit=free))

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", str(self.dir)], check=True)


@pytest.fixture(params=["fsize", "tmpfs"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FullDisk]:
    d = FullDisk(request.param, tmp_path)
    d.mount()
    yield d
    d.close()


def assert_disk_full_reported(code: int, err: str, db: Path) -> None:
    assert code == 1, err  # README: a runtime failure
    assert "Traceback" not in err
    assert str(db) in err and "free disk space" in err
    assert "No space left on device" in err or "File too large" in err


def test_import_onto_a_full_disk_stores_nothing(disk: FullDisk) -> None:
    db = new_db(disk.dir / "t.duckdb")
    code, _, err = disk.run("--db", str(db), "data", "import", str(HOURLY_CDD), free=64 * 1024)
    assert_disk_full_reported(code, err, db)
    assert "is full" in err
    with Store(db) as store:  # space freed: not one candle of the file, and the import works
        assert store.conn.execute("SELECT count(*) FROM candles").fetchone() == (0,)
    code, out, err = finish(trdr("--db", str(db), "data", "import", str(HOURLY_CDD)))
    assert code == 0 and "20,111 candles" in out, err


def test_a_backtest_on_a_full_disk_ends_its_session_failed(disk: FullDisk) -> None:
    db = new_db(disk.dir / "t.duckdb")
    code, out, err = disk.run("--db", str(db), "backtest", "--data", str(DAILY_CDD), "--monte-carlo", "0", "--json",
                              free=64 * 1024)
    assert_disk_full_reported(code, err, db)
    assert out == ""
    [s] = sessions(db)
    assert s["status"] == "failed" and s["results"] is None
    assert s["error"] in (ABANDONED,) or "is full" in s["error"]


def test_a_paper_replay_on_a_full_disk_stops_and_a_restart_loses_nothing(disk: FullDisk, tmp_path: Path) -> None:
    lines = HOURLY_CDD.read_text(encoding="utf-8").splitlines()
    data = tmp_path / "slice.cdd.csv"
    data.write_text("\n".join(lines[:1502]) + "\n", encoding="utf-8")
    db = new_db(disk.dir / "t.duckdb")
    code, out, err = disk.run("--db", str(db), "--headless", "--no-api", "--feed", "replay", "--data", str(data),
                              "--speed", "max", free=1024 * 1024)
    assert code == 1, err[-2000:]
    assert "Traceback" not in err
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    failure = [e for e in events if e["topic"] == "engine.error"]
    assert failure and "free disk space" in failure[0]["event"]["message"], (err[-1000:], events[-3:])
    journaled = read_journal(Path(f"{db}.journal"))
    fills = {row[0] for rec in journaled for kind, row in rec.ops if kind == "fills"}
    orders = {row[0] for rec in journaled for kind, row in rec.ops if kind == "orders"}
    assert journaled, "the run stopped before it journaled anything: raise `free`"
    with Store(db) as store:  # space freed: the next open replays the journal
        stored_fills = {r[0] for r in store.conn.execute("SELECT id FROM fills").fetchall()}
        stored_orders = {r[0] for r in store.conn.execute("SELECT id FROM orders").fetchall()}
    assert fills <= stored_fills and orders <= stored_orders
    assert Path(f"{db}.journal").stat().st_size == 0


def test_a_replay_whose_last_checkpoint_finds_the_disk_full_says_so_and_loses_nothing(tmp_path: Path) -> None:
    """The run's writes fit in the file-size limit but the database file's final checkpoint does not:
    the failure comes after the engine's last write, when the store closes. It is reported (exit 1,
    the disk message), never swallowed, and the journal keeps what the database lacks."""
    disk = FullDisk("fsize", tmp_path)
    lines = HOURLY_CDD.read_text(encoding="utf-8").splitlines()
    data = tmp_path / "slice.cdd.csv"
    data.write_text("\n".join(lines[:1502]) + "\n", encoding="utf-8")
    db = new_db(disk.dir / "t.duckdb")
    code, out, err = disk.run("--db", str(db), "--headless", "--no-api", "--feed", "replay", "--data", str(data),
                              "--speed", "max", free=1536 * 1024)
    assert_disk_full_reported(code, err, db)
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert events[-1]["topic"] == "run.summary" and events[-1]["event"]["reason"] == "end of feed"
    journaled = read_journal(Path(f"{db}.journal"))
    assert journaled, "the checkpoint did not fail: lower `free`"
    fills = {row[0] for rec in journaled for kind, row in rec.ops if kind == "fills"}
    with Store(db) as store:  # no limit now: the next open replays the journal
        stored_fills = {r[0] for r in store.conn.execute("SELECT id FROM fills").fetchall()}
    assert fills <= stored_fills
    assert Path(f"{db}.journal").stat().st_size == 0


# -- every DuckDB error class through the CLI ------------------------------------------------------------

FAULTS: list[tuple[type[Exception], str, int, str, str]] = [
    # (class, DuckDB's message, exit code, what the message says, what the fix says)
    (duckdb.IOException, 'IO Error: Could not write file "x.wal": No space left on device', 1, "is full",
     "free disk space"),
    (duckdb.IOException, 'IO Error: Could not read from file "x": Input/output error', 1, "cannot read or write",
     "kernel log"),
    (duckdb.CatalogException, "Catalog Error: Table with name backtest_sessions does not exist!", 1,
     "lacks what this trdr expects", "restore it from a backup"),
    (duckdb.BinderException, 'Binder Error: Referenced column "status" not found', 1, "lacks what this trdr expects",
     "restore it from a backup"),
    (duckdb.TransactionException, "TransactionContext Error: Conflict on update!", 1, "conflicted", "run it again"),
    (duckdb.TransactionException, 'TransactionContext Error: Failed to commit: Could not write file "x.wal": File '
     "too large", 1, "is full", "ulimit -f"),
    (duckdb.ConstraintException, "Constraint Error: Duplicate key \"id: bt-1\" violates primary key constraint", 1,
     "broke a constraint", "rolled back whole"),
    (duckdb.OutOfMemoryException, "Out of Memory Error: failed to allocate data of size 256.0 KiB (1.9 GiB/1.9 GiB "
     "used)", 1, "ran out of memory", "free memory"),
    (duckdb.InternalException, "INTERNAL Error: Attempted to access index 3 within vector of size 3", 1,
     "DuckDB failed inside", "report"),
    (duckdb.FatalException, "FATAL Error: Failed to create checkpoint because of error: Could not read", 1,
     "DuckDB failed inside", "WAL"),
    (duckdb.ConnectionException, "Connection Error: Connection already closed!", 1, "lost its connection",
     "run it again"),
    (duckdb.PermissionException, "Permission Error: Cannot execute statement in read-only mode", 2,
     "permission denied", "writable"),
    (duckdb.IOException, 'IO Error: Could not set lock on file "x": Conflicting lock is held in python (PID 7)', 2,
     "another process holds it", "stop the other"),
    (duckdb.IOException, "IO Error: Corrupt database file: computed checksum 1 does not match stored checksum 2", 1,
     "damaged or truncated", "backup"),
    (duckdb.InterruptException, "INTERRUPT Error: Interrupted!", 130, "interrupted", ""),
    (RuntimeError, "Query interrupted", 130, "interrupted", ""),  # how DuckDB's Python client reports Ctrl-C
    (duckdb.ConversionException, "Conversion Error: Could not convert string 'x' to INT64", 1, "unexpected error",
     "report it"),
]


@pytest.mark.parametrize(("cls", "text", "code", "what", "fix"), FAULTS,
                         ids=[f"{c.__name__}-{i}" for i, (c, *_) in enumerate(FAULTS)])
def test_every_duckdb_error_class_is_a_clear_error_with_its_exit_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cls: type[Exception],
        text: str, code: int, what: str, fix: str) -> None:
    """Injected where a command reads the store (DuckDB's own classes and messages): `trdr sessions list`."""
    def fails(*_: Any, **__: Any) -> Any:
        raise cls(text)

    monkeypatch.setattr(SessionRepository, "list", fails)
    db = tmp_path / "t.duckdb"
    assert main(["--db", str(db), "sessions", "list"]) == code
    err = capsys.readouterr().err
    if code == 130:  # an interrupt reads as any Ctrl-C does, wherever it came
        assert err == "trdr: interrupted\n"
        return
    first = err.splitlines()[0]
    assert first.startswith("trdr: error:") and what in first and str(db) in first, err
    assert fix in err
    assert "\n  fix: " in err


def test_real_catalog_and_constraint_errors_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    """Not injected: a database whose table refuses what trdr writes, then one that lost a table."""
    db = new_db(tmp_path / "t.duckdb")
    with duckdb.connect(str(db)) as conn:
        conn.execute("DROP TABLE backtest_results")
        conn.execute("CREATE TABLE backtest_results (session_id VARCHAR PRIMARY KEY,"
                     " results JSON NOT NULL CHECK (length(results) < 10), equity_curve JSON)")
    capsys.readouterr()
    assert main(["--db", str(db), "backtest", "--data", str(DAILY_CDD), "--monte-carlo", "0", "--json"]) == 1
    err = capsys.readouterr().err
    err = err[err.index("trdr: error:"):]  # after the data check's warnings on the 2015 daily bars
    assert err.startswith(f"trdr: error: a write broke a constraint of database {db} (Constraint Error"), err
    [s] = sessions(db)
    assert s["status"] == "failed" and "broke a constraint" in s["error"]
    with duckdb.connect(str(db)) as conn:
        conn.execute("DROP TABLE backtest_results")
    assert main(["--db", str(db), "sessions", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"trdr: error: [E007] database {db} lacks what this trdr expects (Catalog Error"), err
    assert "restore it from a backup" in err


def test_a_database_in_a_directory_that_is_not_writable_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    """Not a disk fault: the operator pointed --db somewhere it cannot live (exit 2, the path named)."""
    db = "/proc/trdr-test.duckdb"
    assert main(["--db", db, "sessions", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"trdr: error: cannot create database {db}: its directory /proc is not writable"), err
    assert "disk" not in err.splitlines()[0] and "pass --db a path in a directory" in err


def test_a_read_command_on_a_database_in_a_missing_directory_is_bad_input(
        capsys: pytest.CaptureFixture[str]) -> None:
    db = "/proc/trdr-missing/trdr-test.duckdb"  # a read command creates no directory (nor could it here)
    assert main(["--db", db, "sessions", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"trdr: error: there is no database at {db} (the directory /proc/trdr-missing "
                          "does not exist)"), err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_database_in_a_read_only_directory_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(["--db", str(folder / "t.duckdb"), "sessions", "list"]) == 2
    finally:
        folder.chmod(0o755)
    assert f"its directory {folder} is not writable" in capsys.readouterr().err
    assert not (folder / "t.duckdb").exists()


def test_a_text_file_given_as_the_database_is_not_called_damaged(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("timestamp,open,high,low,close\n")
    assert main(["--db", str(text), "sessions", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"trdr: error: {text} is not a DuckDB database"), err
    assert "damaged" not in err and "left as it is" in err
    assert text.read_text() == "timestamp,open,high,low,close\n"


@pytest.mark.parametrize("argv", [
    ["backtest", "--data", str(HOURLY_CDD), "--start", "2019-10-01"],
    ["sessions", "list"],
    ["--headless", "--feed", "replay", "--data", str(DAILY_CDD), "--speed", "max", "--no-api"],
], ids=["backtest", "sessions-list", "headless-replay"])
def test_a_candle_csv_given_as_the_database_is_refused_before_duckdb_opens_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """DuckDB opens a `.csv` path as an empty database (nothing saved): trdr reads the header first."""
    csv = tmp_path / "some.csv"
    shutil.copyfile(DAILY_CDD, csv)
    before = csv.read_bytes()
    assert main(["--db", str(csv), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"trdr: error: {csv} is not a DuckDB database (its first bytes are not DuckDB's file "
                          "header)"), err
    assert "pass the database with --db and the candle file with --data" in err
    assert csv.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["some.csv"]  # no .journal, .wal, log or token


def test_a_database_with_duckdbs_header_opens_and_an_empty_file_is_still_refused_by_duckdb(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The header check refuses only a non-empty file without DuckDB's magic bytes (`DUCK` at offset 8)."""
    db = tmp_path / "named.csv"  # a real database, whatever its name
    duckdb.connect(str(db)).close()
    assert db.read_bytes()[8:12] == b"DUCK"
    assert main(["--db", str(db), "sessions", "list"]) == 0
    empty = tmp_path / "empty.duckdb"
    empty.touch()
    assert main(["--db", str(empty), "sessions", "list"]) == 2
    assert "not a valid DuckDB database file" in capsys.readouterr().err  # DuckDB's own refusal, as before
    assert empty.read_bytes() == b""


def test_commands_that_fail_or_only_read_leave_no_database_behind(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "new.duckdb"
    assert main(["--db", str(db), "tune", "--explain"]) == 2  # nothing stored to explain
    assert main(["--db", str(db), "sessions", "list"]) == 0  # reads only
    bad = tmp_path / "bad.csv"
    bad.write_text("this is not candle data\n")
    assert main(["--db", str(db), "data", "import", str(bad), "--symbol", "BTC-USD"]) == 2  # refused
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]
    # what a command stores stays, and a database that existed is never removed
    assert main(["--db", str(db), "data", "import", str(DAILY_CDD), "--symbol", "BTC-USD"]) == 0
    assert main(["--db", str(db), "data", "import", str(bad), "--symbol", "BTC-USD"]) == 2
    empty = new_db(tmp_path / "empty.duckdb")
    assert main(["--db", str(empty), "sessions", "list"]) == 0
    assert db.exists() and empty.exists()
