"""Piped or redirected output (`trdr sessions list | less`): a table is as wide as its content, whatever
$COLUMNS says, so no cell is cut or folded; the real entry point, stdout a pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DAILY_CDD
from tests.foundation.conftest import RunCli

NAME = "a-session-name-longer-than-a-narrow-terminal-would-show-in-one-cell"


def _piped(db: Path, *argv: str, columns: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    proc = subprocess.run([sys.executable, "-m", "trdr_tui", "--db", str(db), *argv], capture_output=True,
                          env=env, timeout=120, check=False, text=True)  # stdout is a pipe
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_piped_sessions_and_agents_tables_are_not_cut(run_cli: RunCli, tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    code, _, err = run_cli("backtest", "--data", DAILY_CDD, "--start", "2019-01-01", "--end", "2019-03-01",
                           "--name", NAME, db=db)
    assert code == 0, err
    for columns in (None, "40"):  # Rich's default for a pipe (80), and a narrow $COLUMNS
        sessions = _piped(db, "sessions", "list", columns=columns)
        row = next(line for line in sessions.splitlines() if line.startswith("bt-"))
        assert NAME in row and "…" not in sessions  # the whole name on its row, nothing folded or cut
        agents = _piped(db, "agents", columns=columns)
        lines = agents.splitlines()
        assert "…" not in agents and len({len(line) for line in lines if line.startswith("│")}) == 1
        assert any("market_structure" in line and "Market structure" in line for line in lines)
