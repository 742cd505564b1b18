"""Scale-out: one study in a real PostgreSQL server (started here on loopback), two worker processes.

The server binaries come from the OS package (`postgresql`, installed by `.ci/run`) under
/usr/lib/postgresql/*/bin. PostgreSQL refuses to run as root, so as root the cluster is created and
started as the unprivileged `nobody` user (`runuser`). The test is skipped only when no binaries exist.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from trdr_tui.config import Settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.tuning.genome import genome
from trdr_tui.tuning.objective import ObjectiveConfig
from trdr_tui.tuning.optimizer import StudySpec, run_study


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bindir = _bin_dir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                    "(install the 'postgresql' OS package; .ci/run does)")
    root = Path(tempfile.mkdtemp(prefix="trdr-pg-", dir="/tmp"))
    os.chmod(root, 0o755)
    data = root / "data"
    port = _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, cwd=root, timeout=120)

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE trdr_optuna")
        yield f"postgresql://postgres@127.0.0.1:{port}/trdr_optuna"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, cwd=root, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_one_study_in_postgresql(postgres_url: str, slice_bars: CandleArrays,
                                                   tiny: ObjectiveConfig, settings: Settings) -> None:
    import optuna

    spec = StudySpec(name="shared", storage=postgres_url, trials=8, seed=3,
                     genes=genome(settings, ["grid.swing_fraction", "grid.min_spacing"]), objective=tiny)
    out = run_study(spec, settings, slice_bars, workers=2)
    complete = [t for t in out.trials if t.state == "COMPLETE"]
    assert len(complete) >= 8
    workers = {t.attributes["worker"] for t in complete}
    assert len(workers) == 2, f"trials written by {workers}"
    # the study lives in the server: a fresh connection sees every trial
    from trdr_tui.tuning.optimizer import make_storage

    again = optuna.load_study(study_name="shared", storage=make_storage(postgres_url))
    assert len(again.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == len(complete)
