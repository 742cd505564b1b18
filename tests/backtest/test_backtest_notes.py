"""What `trdr backtest` says next to its figures: simple-trailing is the accounting yardstick (no risk
caps), not a strategy; Monte Carlo names the position held at the end when it resampled it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import HOURLY_CDD
from trdr_tui.cli import main

YARDSTICK = "simple-trailing is the accounting yardstick"
WINDOW = ["--start", "2017-09-01", "--end", "2018-01-15", "--monte-carlo", "500"]


def test_simple_trailing_says_it_is_a_yardstick_without_risk_caps(db_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--db", str(db_path), "backtest", "--data", str(HOURLY_CDD), "--preset", "simple-trailing", *WINDOW]
    assert main(argv) == 0
    out = " ".join(capsys.readouterr().out.split())  # the note wraps at the console's width
    assert f"note: {YARDSTICK}" in out and "no risk caps" in out and "not a strategy to trade" in out
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["preset"] == "simple-trailing"  # stdout stays one JSON document
    assert f"trdr: note: {YARDSTICK}" in captured.err


def test_the_configured_strategy_carries_no_yardstick_note_and_names_the_held_position(
        db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # this window (the autumn 2018 slide) ends holding lots bought on the way down
    held = ["--start", "2018-08-22", "--end", "2018-12-25", "--monte-carlo", "500"]
    assert main(["--db", str(db_path), "backtest", "--data", str(HOURLY_CDD), *held]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the table wraps at the console's width
    assert YARDSTICK not in out
    assert "Monte Carlo P(loss)" in out and "incl. position held at the end" in out
