"""Ctrl-C (SIGINT) through the real `trdr` entry: exit 130 with `trdr: interrupted`, never a traceback, a
database error that only followed the interrupt, or a process killed by the signal; an interrupted
backtest's session is failed "interrupted (Ctrl-C)" and keeps no results."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import DAILY_CDD, HOURLY_CDD, REPO
from trdr_tui.cli import main
from trdr_tui.core.stop_signals import interrupted_by
from trdr_tui.store import Store
from trdr_tui.store.sessions import SessionRepository


def new_db(path: Path) -> Path:
    Store(path).close()
    return path


def query_interrupted_then(exc: Exception) -> Exception:
    """`exc` raised while handling DuckDB's error for a Ctrl-C inside a query, as a `finally` that runs
    another statement on the aborted transaction raises it (store.candles's unregister)."""
    try:
        try:
            raise RuntimeError("Query interrupted")
        finally:
            raise exc
    except Exception as raised:
        return raised


def test_an_error_is_an_interrupt_only_when_a_ctrl_c_caused_it() -> None:
    aborted = duckdb.TransactionException("TransactionContext Error: Current transaction is aborted (please ROLLBACK)")
    assert interrupted_by(query_interrupted_then(aborted))
    assert interrupted_by(RuntimeError("Query interrupted"))
    assert not interrupted_by(duckdb.TransactionException("TransactionContext Error: Conflict on update"))
    assert not interrupted_by(RuntimeError("something else"))


def test_a_database_error_after_an_interrupted_query_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The trial's `a write conflicted … Current transaction is aborted` exit 1 after a Ctrl-C."""
    import trdr_tui.backtest.data as bt_data

    def interrupted(*_a: object, **_k: object) -> None:
        raise query_interrupted_then(duckdb.TransactionException(
            "TransactionContext Error: Current transaction is aborted (please ROLLBACK)"))

    monkeypatch.setattr(bt_data, "load_file", interrupted)
    code = main(["--db", str(new_db(tmp_path / "t.duckdb")), "backtest", "--data", str(DAILY_CDD), "--json"])
    err = capsys.readouterr().err
    assert (code, err) == (130, "trdr: interrupted\n")


def test_a_genuine_database_error_stays_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import trdr_tui.backtest.data as bt_data

    def conflict(*_a: object, **_k: object) -> None:
        raise duckdb.TransactionException("TransactionContext Error: Conflict on update")

    monkeypatch.setattr(bt_data, "load_file", conflict)
    code = main(["--db", str(new_db(tmp_path / "t.duckdb")), "backtest", "--data", str(DAILY_CDD), "--json"])
    assert code == 1 and "a write conflicted" in capsys.readouterr().err


def test_a_walk_forward_interrupted_while_storing_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Ctrl-C inside the query that stores the results: the session fails "interrupted (Ctrl-C)" (not
    `RuntimeError: Query interrupted`), no walk-forward record is kept, and the command says interrupted."""
    def interrupted(*_a: object, **_k: object) -> None:
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(SessionRepository, "complete", interrupted)
    db = new_db(tmp_path / "t.duckdb")
    code = main(["--db", str(db), "backtest", "--data", str(DAILY_CDD), "--monte-carlo", "0", "--json",
                 "--walk-forward", "500:100"])
    assert (code, capsys.readouterr().err.splitlines()[-1]) == (130, "trdr: interrupted")
    monkeypatch.undo()
    with Store(db) as store:
        [s] = SessionRepository(store).list()
        assert (s.status, s.error) == ("failed", "interrupted (Ctrl-C)")
        assert store.conn.execute("SELECT count(*) FROM optimizations").fetchone() == (0,)


def test_an_interrupt_caught_inside_exec_does_not_kill_the_exiting_process(tmp_path: Path) -> None:
    """CPython 3.11 marks a KeyboardInterrupt escaping exec() of a string (dataclasses and typing build
    methods so, on import) as unhandled even once caught, and then ends the process by SIGINT (-2) after
    `trdr: interrupted`. Also: a SIGINT after `main` returned on the process's own entry is ignored."""
    script = f"""
import os, signal, sys, time
sys.argv = ["trdr", "--db", {str(tmp_path / 't.duckdb')!r}, "data", "list"]
import trdr_tui.commands.data as data
from trdr_tui.cli import main
late = os.environ["LATE"] == "1"
if not late:
    data.run_list = lambda ctx: exec("raise KeyboardInterrupt")
code = main()
if late:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
sys.exit(code)
"""
    for late, expected in (("0", 130), ("1", 0)):
        proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60,
                              env={"LATE": late, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert proc.returncode == expected, proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr


def sigterm_caught(pid: int) -> bool:
    """The process has installed a SIGTERM handler (`stop_signals.catch_early`): SigCgt in /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    mask = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(mask & (1 << (signal.SIGTERM - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the signal mask from /proc")
@pytest.mark.parametrize("entry", ["module", "script"])
def test_a_ctrl_c_while_starting_ends_cleanly(tmp_path: Path, entry: str) -> None:
    """From the moment trdr's first module runs (its handler is in: before that only the interpreter
    itself starts), a Ctrl-C at any moment of the imports, the parsing and the database open exits 130
    with `trdr: interrupted` and no traceback; the trial saw 7 of 8 raw tracebacks at 0.04-0.2 s."""
    db = new_db(tmp_path / "t.duckdb")
    cmd = ([sys.executable, "-m", "trdr_tui"] if entry == "module" else [str(Path(sys.executable).parent / "trdr")])
    for delay in (0.0, 0.03, 0.08, 0.15, 0.3):
        proc = subprocess.Popen([*cmd, "--db", str(db), "backtest", "--data", str(HOURLY_CDD), "--start",
                                 "2019-01-01", "--json", "--monte-carlo", "0"], cwd=REPO, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not sigterm_caught(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.0005)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert (proc.returncode, err, out) == (130, "trdr: interrupted\n", ""), f"at +{delay} s"
