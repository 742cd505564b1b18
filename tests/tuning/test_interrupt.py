"""Ctrl-C during `trdr optimize` with worker processes: one line from the calling process, exit 130, no
traceback from any process, no worker left, and the study listed as interrupted with its finished trials."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from tests.conftest import HOURLY_CDD
from trdr_tui.tuning.optimizer import make_storage

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")]


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group `pgid`, from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp
            out.append(int(entry.name))
    return out


def _finished(journal: Path, study: str) -> int:
    if not journal.exists():
        return 0
    try:
        s = optuna.load_study(study_name=study, storage=make_storage(str(journal)))
    except KeyError:
        return 0
    return len(s.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


@pytest.mark.parametrize("target", ["group", "parent"])
def test_ctrl_c_stops_the_workers_quietly_and_lists_the_study_as_interrupted(tmp_path: Path, target: str) -> None:
    db = tmp_path / "t.duckdb"
    journal = tmp_path / "optuna" / "opt-int.journal"
    trdr = [sys.executable, "-m", "trdr_tui", "--db", str(db)]
    proc = subprocess.Popen([*trdr, "optimize", "--data", str(HOURLY_CDD), "--start", "2018-01-20",
                             "--end", "2018-03-01", "--trials", "40", "--workers", "2", "--folds", "2",
                             "--genes", "grid.swing_fraction", "--study", "opt-int"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    # the whole group (a terminal's Ctrl-C) once a trial is finished, so workers are mid-trial; the calling
    # process alone as soon as a worker exists (still starting: it reads its start-up data from the pipe)
    while time.monotonic() < deadline and proc.poll() is None:
        if _finished(journal, "opt-int") >= 1 if target == "group" else len(_group(proc.pid)) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    if target == "group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Error" not in err, err
    [line] = err.splitlines()
    assert line.startswith("trdr: study opt-int interrupted after ") and "--study opt-int" in line
    time.sleep(0.2)  # the last worker's exit status reaches /proc
    assert _group(proc.pid) == []
    assert not list(journal.parent.glob("*.lock")), "a stopped worker left the journal locked"
    finished = _finished(journal, "opt-int")
    if target == "group":
        assert finished >= 1

    listed = subprocess.run([*trdr, "optimize", "list", "--json"], capture_output=True, text=True, timeout=60)
    [run] = json.loads(listed.stdout)
    assert run["results"]["status"] == "interrupted" and run["results"]["study"] == "opt-int"
    assert run["results"]["trials"] == finished and run["best_parameters"] is None
    assert "best_value" not in run["results"]
    shown = subprocess.run([*trdr, "optimize", "list"], capture_output=True, text=True, timeout=60).stdout
    assert f"interrupted after {finished} of 40 trials: resume with `trdr optimize ... --study opt-int`" in shown
