"""`trdr agents ablate` shows a progress bar on stderr (one step per backtested variant) when stderr is a
terminal, and none with --json."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DAILY_CDD
from trdr_tui.cli import main

ARGS = ["agents", "ablate", "--data", str(DAILY_CDD), "--start", "2017-01-01", "--end", "2018-01-01",
        "--agents", "momentum,regime"]


def test_ablate_shows_its_progress_on_stderr(tmp_path: object, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["--db", f"{tmp_path}/a.duckdb", *ARGS]) == 0
    out, err = capsys.readouterr()
    assert "agent ablation" in out and "ablation" in err
    assert "2/3" in err and "without:regime" in err, err  # one step per variant, named (a quick one may not show)
    assert main(["--db", f"{tmp_path}/a.duckdb", *ARGS, "--json"]) == 0
    out, err = capsys.readouterr()
    assert [r["label"] for r in json.loads(out)["runs"]] == ["full", "without:momentum", "without:regime"]
    assert "without:" not in err  # no bar with --json


def test_an_unavailable_agent_is_reported_once_not_once_per_variant(tmp_path: object) -> None:
    import subprocess
    import sys

    # correlation without stored ETH-USD candles: built for "full" and "without:momentum", said once
    argv = [sys.executable, "-m", "trdr_tui", "--db", f"{tmp_path}/a.duckdb", *ARGS[:-1], "momentum,correlation"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("agent 'correlation' unavailable") == 1, done.stderr
