"""What a new user typed: global options after the command, piping into `head`, a daily file replayed,
absurd config values, and exit codes that mean the same thing for every kind of bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DAILY_CDD, HOURLY_CDD
from tests.foundation.conftest import RunCli
from trdr_tui.cli import main


@pytest.mark.parametrize("argv", [
    ["data", "import", str(HOURLY_CDD), "--db", "{db}"],
    ["data", "list", "--db", "{db}", "--config", "{config}"],
    ["--db", "{other}", "data", "list", "--db", "{db}"],  # the later value wins
])
def test_global_options_are_accepted_after_the_command(
    run_cli: RunCli, tmp_path: Path, argv: list[str]
) -> None:
    db = tmp_path / "x.duckdb"
    config = tmp_path / "c.toml"
    config.write_text('symbol = "BTC-USD"\ncapital = 1000\nrisk_tolerance = "moderate"\n')
    args = [a.format(db=db, config=config, other=tmp_path / "other.duckdb") for a in argv]
    if "list" in argv:  # candles in {db} only: the listing shows which database was read
        assert main(["--db", str(db), "data", "import", str(DAILY_CDD)]) == 0
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert db.exists() and not (tmp_path / "other.duckdb").exists()
    if "list" in argv:
        assert "BTC-USD" in out, out


def test_config_after_the_command_is_read(run_cli: RunCli, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('symbol = "BTC-USD"\ncapital = 1000\nrisk_tolerance = "moderat"\n')
    code, _, err = run_cli("agents", "--config", config)
    assert code == 2 and "moderat" in err


@pytest.mark.parametrize("argv", [["agents", "--json"], ["agents"], ["data", "list"]])
def test_a_reader_closing_the_pipe_ends_quietly(tmp_path: Path, argv: list[str]) -> None:
    """`trdr agents --json | head -c0`: the reader is gone before trdr writes. No traceback; exit 1 (the
    output was cut short), the same whether Python's print or Rich's console hit the closed pipe."""
    env = {**os.environ, "TRDR_DB": str(tmp_path / "p.duckdb")}
    read, write = os.pipe()
    os.close(read)  # the reader has already gone: every write gets EPIPE
    proc = subprocess.run([sys.executable, "-m", "trdr_tui", *argv], stdout=write, stderr=subprocess.PIPE,
                          env=env, timeout=60, check=False)
    os.close(write)
    assert proc.returncode == 1, proc.stderr
    assert b"Traceback" not in proc.stderr and b"BrokenPipe" not in proc.stderr


def test_a_daily_file_replays_without_a_missing_option(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """`trdr --feed replay --data daily.csv` used to ask for a `--timeframe` that `trdr` did not have."""
    code = main(["--db", str(tmp_path / "r.duckdb"), "--feed", "replay", "--data", str(DAILY_CDD),
                 "--headless", "--speed", "max"])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert '"bars":1770' in out.replace(" ", "")


def test_run_timeframe_option_exists_and_is_checked_against_the_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code = main(["--db", str(tmp_path / "r.duckdb"), "--feed", "replay", "--data", str(DAILY_CDD),
                 "--timeframe", "1h", "--headless", "--speed", "max"])
    err = capfd.readouterr().err
    assert code == 2 and "the bars are 1d apart but --timeframe is 1h" in err and "pass --timeframe 1d" in err


@pytest.mark.parametrize(("line", "needle"), [
    ("capital = 1e308", "`capital` must be between"),
    ("capital = 2e9", "`capital` must be between"),
    ("[fees]\nthirty_day_volume_usd = 1e300", "`thirty_day_volume_usd` must be between"),
])
def test_absurd_config_values_are_refused(run_cli: RunCli, tmp_path: Path, line: str, needle: str) -> None:
    config = tmp_path / "c.toml"
    head = "" if line.startswith("capital") else "capital = 1000\n"
    config.write_text(f'symbol = "BTC-USD"\nrisk_tolerance = "moderate"\n{head}{line}\n')
    code, _, err = run_cli("agents", config=config)
    assert code == 2 and needle in err


def test_bad_input_of_every_kind_exits_2(run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Config, data file and credentials are all input the user must fix: one exit code, 2."""
    bad_config = tmp_path / "c.toml"
    bad_config.write_text('symbol = "BTC-USD"\ncapital = -1\nrisk_tolerance = "moderate"\n')
    bad_data = tmp_path / "bad.csv"
    bad_data.write_text("timestamp,open,high,low,close\n1571302800,1,0.5,0.4,1\n")
    assert run_cli("agents", config=bad_config)[0] == 2
    assert run_cli("data", "import", bad_data, db=tmp_path / "d.duckdb")[0] == 2
    assert run_cli("account")[0] == 2  # no credentials
