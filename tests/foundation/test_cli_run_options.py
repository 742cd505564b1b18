"""Run options (`--data`, `--timeframe`, `--feed`, …) typed before a command: handed to the command that
has the same option, refused for one that has not; never silently dropped."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from tests.conftest import DAILY_CDD
from tests.foundation.conftest import RunCli
from trdr_tui.cli import RUN_OPTIONS, build_parser

WINDOW = ["--start", "2019-01-01", "--end", "2019-04-01", "--json"]


def test_data_before_or_after_backtest_backtests_that_file(run_cli: RunCli, tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"  # no stored candles: only the file can give these bars
    code, _, err = run_cli("backtest", *WINDOW, db=db)
    assert code == 2 and "no stored BTC-USD 1h candles" in err, err
    results = []
    for argv in (["--data", DAILY_CDD, "backtest", *WINDOW], ["backtest", "--data", DAILY_CDD, *WINDOW]):
        code, out, err = run_cli(*argv, db=db)
        assert code == 0, err
        result = json.loads(out)
        for key in ("session_name", "session_id", "elapsed_seconds"):  # differ from run to run
            result.pop(key, None)
        results.append(result)
    assert results[0] == results[1] and results[0]["bars"] > 0


def test_data_given_twice_with_different_files_is_refused(run_cli: RunCli, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli("--data", DAILY_CDD, "backtest", "--data", tmp_path / "other.csv", db=tmp_path / "x.duckdb")
    assert exc.value.code == 2


@pytest.mark.parametrize("option", [["--feed", "replay"], ["--speed", "max"], ["--headless"], ["--data", "x.csv"]])
def test_a_run_option_before_a_command_without_it_is_refused(run_cli: RunCli, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str],
                                                             option: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli(*option, "sessions", db=tmp_path / "x.duckdb")
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"{option[0]} is an option of the cockpit and headless runs, not of 'trdr sessions'" in err


def test_no_command_reuses_a_run_options_dest() -> None:
    """A command's option under the same dest as a run option would overwrite the value typed before the
    command (argparse applies the command's default last): the bug `trdr --data FILE backtest` had."""
    parser = build_parser()

    def walk(p: argparse.ArgumentParser) -> list[argparse.Action]:
        found = []
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in set(action.choices.values()):
                    found += [a for a in child._actions if not isinstance(a, argparse._SubParsersAction)]
                    found += walk(child)
        return found

    clashes = [(a.option_strings, a.dest) for a in walk(parser) if a.dest in RUN_OPTIONS.values()]
    assert clashes == []


@pytest.mark.parametrize(("argv", "said"), [
    (["--headless", "--feed", "replay", "--spede", "max"], "unrecognized option --spede (did you mean --speed?)"),
    (["--spede=max", "--headless"], "unrecognized option --spede (did you mean --speed?)"),
    (["--frobnicate", "backtest"], "unrecognized option --frobnicate"),
    (["-speed", "max", "--headless"], "unrecognized option -speed (did you mean --speed?)"),
    (["-db", "x.duckdb", "status"], "unrecognized option -db (did you mean --db?)"),
    (["\u2014speed", "max"], "unrecognized option \u2014speed: options start with two hyphens (--speed)"),
])
def test_a_misspelt_option_before_the_command_is_named(
        argv: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    from trdr_tui.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)  # argparse alone said "argument COMMAND: invalid choice: 'max'"
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"trdr: error: {said}"


def test_an_unambiguous_prefix_of_an_option_is_still_accepted() -> None:
    from trdr_tui.cli import _refuse_unknown_options

    parser = build_parser()
    _refuse_unknown_options(parser, ["--spe", "max", "--headless"])  # argparse's own abbreviation rule
    assert parser.parse_args(["--spe", "max"]).speed == "max"


@pytest.mark.parametrize("argv", [
    ["--db", "", "status"], ["--db=", "status"], ["backtest", "--db", ""], ["--log-file", "", "--headless"],
    ["--config", " ", "status"], ["--data", "", "--headless", "--feed", "replay"], ["data", "import", ""],
    ["--db", ".", "status"], ["--db", "/", "data", "list"], ["--log-file", ".", "--headless"],
    ["--db", "newdir/", "data", "list"],
])
def test_an_empty_path_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`Path("")` is the current folder: `--db ''` (and `--db .`) ended in a ValueError traceback (exit 1),
    `--data ''` looked for candles in the current folder."""
    from trdr_tui.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert "an empty path: give a file name" in last or "is a folder: give a file name" in last, last
    assert list(tmp_path.iterdir()) == []
