"""What a new user's trial of `trdr backtest` / `trdr optimize` found: an implausible bar used without a
word, a report path that crashed after the run, refused input that still stored a failed session, a
losing optimizer winner saved silently, annualized figures of a two-day run shown without a note."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DAILY_2011, HOURLY_CDD
from trdr_tui.cli import main
from trdr_tui.store import Store
from trdr_tui.store.sessions import SessionRepository


def _sessions(db_path: Path) -> list[Any]:
    with Store(db_path) as store:
        return SessionRepository(store).list()


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[dict[str, Any], str]:
    rc = main(argv)
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    result: dict[str, Any] = json.loads(cap.out)
    return result, cap.err


def test_a_backtest_warns_of_the_bars_data_check_flags(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The daily 2011-2025 file's 2017-04-15 bar (low 0.06, high 1,190.99) is named on stderr and in
    `warnings`, with `trdr data check`; the bars are used as they are."""
    argv = ["--db", str(db_path), "backtest", "--data", str(DAILY_2011), "--start", "2017-03-01", "--end",
            "2017-06-01", "--preset", "simple-trailing", "--monte-carlo", "0", "--json"]
    r, err = _json(capsys, argv)
    flagged = [w for w in r["warnings"] if "suspicious bar" in w]
    assert len(flagged) == 1
    assert "2017-04-15 00:00  range: high/low 19849.83×" in flagged[0]
    assert f"trdr data check {DAILY_2011}" in flagged[0]
    assert f"trdr: warning: {flagged[0]}" in err
    assert main(["--db", str(db_path), "data", "check", str(DAILY_2011)]) == 0
    assert "2017-04-15 00:00  range: high/low 19849.83×" in capsys.readouterr().out  # the same words
    # a slice without that bar: no data warning (the short-sample notes may stay)
    clean, _ = _json(capsys, [*argv[:6], "2017-05-01", "--end", "2017-06-01", *argv[9:]])
    assert not [w for w in clean.get("warnings") or [] if "suspicious" in w or "gap" in w]


def test_an_unwritable_report_is_refused_before_the_run(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["--db", str(db_path), "backtest", "--data", str(HOURLY_CDD), "--start", "2019-08-01",
               "--report", "/proc/r.html"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "cannot write the report /proc/r.html" in err and "fix:" in err
    assert "Traceback" not in err
    assert _sessions(db_path) == []


def test_a_report_failing_after_the_run_is_a_clean_error(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder is writable when checked and fails when the report is written (disk full, say)."""
    import trdr_tui.backtest.report as report

    def full(*_a: object, **_k: object) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "write_report", full)
    rc = main(["--db", str(db_path), "backtest", "--data", str(HOURLY_CDD), "--start", "2019-10-01",
               "--preset", "simple-trailing", "--monte-carlo", "0", "--report", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "could not be written (No space left on device)" in err
    (session,) = _sessions(db_path)
    assert session.status == "completed" and session.id in err  # the run is kept and named


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--walk-forward", "10x:5d"], "'10x' is not a number of bars or a duration"),
        (["--walk-forward", "0d:0d"], "at least 2 training bars"),
        (["--walk-forward", "20d:5d", "--search", "grid.nope=1,2"], "unknown key 'nope'"),
        (["--walk-forward", "20d:5d", "--search", "grid.swing_fraction=0.5,abc"], "grid.swing_fraction='abc'"),
        (["--walk-forward", "2000d:500d"], "too few for one walk-forward window"),
    ],
)
def test_bad_walk_forward_input_stores_no_session(
    db_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    rc = main(["--db", str(db_path), "backtest", "--data", str(HOURLY_CDD), "--start", "2019-08-01",
               "--preset", "simple-trailing", "--monte-carlo", "0", *argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err
    assert _sessions(db_path) == []


def test_a_short_run_says_its_annualized_figures_mean_little(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r, err = _json(capsys, ["--db", str(db_path), "backtest", "--data", str(HOURLY_CDD), "--start", "2019-08-01",
                            "--end", "2019-08-03", "--monte-carlo", "0", "--json"])
    assert r["bars"] == 48
    short = [w for w in r["warnings"] if "annualized" in w]
    history = [w for w in r["warnings"] if "partial history" in w]
    assert len(short) == 1 and "2 days (48 bars), under 30" in short[0]
    assert len(history) == 1 and "48 bars, fewer than the 720" in history[0]
    assert f"trdr: warning: {short[0]}" in err and f"trdr: warning: {history[0]}" in err
    # 60 days of hourly bars: past both thresholds, no note
    long, err = _json(capsys, ["--db", str(db_path), "backtest", "--data", str(HOURLY_CDD), "--start", "2019-08-01",
                               "--end", "2019-09-30", "--monte-carlo", "0", "--json"])
    assert "warnings" not in long and "warning" not in err


@pytest.mark.slow
def test_a_losing_optimizer_winner_is_saved_with_a_plain_note(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Early 2018 (BTC −40 %), searching only the confidence threshold: every trial of a short study
    loses; the winner is still saved, and the command says it lost, what the default scored, and how
    to use or ignore the version."""
    r, err = _json(capsys, ["--db", str(db_path), "optimize", "--data", str(HOURLY_CDD), "--start", "2018-01-10",
                            "--end", "2018-03-10", "--trials", "4", "--workers", "1", "--folds", "2",
                            "--genes", "agents.min_confidence", "--json"])
    assert r["best_value"] < 0
    default = next(t for t in _trials(db_path, r["optimization_id"]) if t.number == 0).value
    (note,) = r["warnings"]
    assert f"the winner scored {r['best_value']:+.4f} out of sample" in note
    assert f"the default parameters scored {default:+.4f}" in note
    assert f"trdr backtest --params {r['saved_params']}" in note and "ignore it otherwise" in note
    assert f"trdr: note: {note}" in err
    assert main(["--db", str(db_path), "params", "show", r["saved_params"]]) == 0
    assert "optimized" in capsys.readouterr().out


def _trials(db_path: Path, opt_id: str) -> list[Any]:
    from trdr_tui.store.tuning import TuningRepository

    with Store(db_path) as store:
        return TuningRepository(store).trials(opt_id)
