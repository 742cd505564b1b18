"""Paths a new user gets wrong: a config file that is not UTF-8 or is a directory, a `--db` that is a
directory or lies in a directory that does not exist. Each is a clear usage error (exit 2) naming the fix,
and nothing is created."""

from __future__ import annotations

from pathlib import Path

from tests.foundation.conftest import RunCli


def test_a_config_file_that_is_not_utf8_is_a_config_error(run_cli: RunCli, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_bytes(b"# trdr\ncapital = 1000\xff\n")
    code, _, err = run_cli("agents", config=config)
    assert code == 2, err
    assert f"config file {config} is not UTF-8 text (byte 0xff on line 2)" in err
    assert "save the file as UTF-8" in err and "Traceback" not in err


def test_a_config_path_that_is_a_directory_says_so(run_cli: RunCli, tmp_path: Path) -> None:
    code, _, err = run_cli("agents", config=tmp_path)
    assert code == 2
    assert f"config file {tmp_path} is a directory" in err and "does not exist" not in err
    assert f"pass --config a TOML file, e.g. {tmp_path / 'config.toml'}" in err


def test_a_db_path_that_is_a_directory_says_so(run_cli: RunCli, tmp_path: Path) -> None:
    before = sorted(tmp_path.iterdir())
    code, _, err = run_cli("sessions", "list", db=tmp_path)
    assert code == 2, err
    assert f"the database {tmp_path} is a directory" in err and "kernel log" not in err
    assert f"pass --db a database file, e.g. {tmp_path / 'trdr.duckdb'}" in err
    assert sorted(tmp_path.iterdir()) == before  # nothing created inside it


def test_a_read_command_creates_no_directory(run_cli: RunCli, tmp_path: Path) -> None:
    db = tmp_path / "missing" / "dir" / "x.duckdb"
    for argv in (("sessions", "list"), ("data", "list"), ("data", "gaps"), ("params", "list")):
        code, _, err = run_cli(*argv, db=db)
        assert code == 2, (argv, err)
        assert f"there is no database at {db}" in err
        assert f"trdr data import FILE --symbol BTC-USD --timeframe 1h --db {db}" in err
        assert not (tmp_path / "missing").exists()


def test_a_read_command_in_an_existing_directory_leaves_nothing(run_cli: RunCli, tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    code, _, err = run_cli("sessions", "list", db=db)
    assert code == 0, err
    assert list(tmp_path.iterdir()) == []
