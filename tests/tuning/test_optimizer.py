"""The Optuna study: deterministic with one seeded worker, resumable from its journal after a crash,
every trial recorded, the winner saved as a version tagged `optimized` (through the CLI)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from tests.conftest import HOURLY_CDD
from trdr_tui.cli import main
from trdr_tui.config import Settings, load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.engine.warmup import history_bars
from trdr_tui.store import Store
from trdr_tui.store.sessions import ParameterRepository
from trdr_tui.store.tuning import TuningRepository
from trdr_tui.tuning.genome import genome
from trdr_tui.tuning.objective import ObjectiveConfig
from trdr_tui.tuning.optimizer import StudySpec, make_storage, run_study, work

GENES = ["grid.swing_fraction", "grid.min_spacing"]


def _spec(settings: Settings, tiny: ObjectiveConfig, path: Path, *, trials: int, sampler: str = "tpe",
          name: str = "s") -> StudySpec:
    return StudySpec(name=name, storage=str(path), sampler=sampler, trials=trials, seed=7,
                     genes=genome(settings, GENES), objective=tiny)


def test_one_seeded_worker_is_deterministic(tmp_path: Path, slice_bars: CandleArrays, tiny: ObjectiveConfig,
                                            settings: Settings) -> None:
    a = run_study(_spec(settings, tiny, tmp_path / "a.journal", trials=4), settings, slice_bars)
    b = run_study(_spec(settings, tiny, tmp_path / "b.journal", trials=4), settings, slice_bars)
    assert [t.value for t in a.trials] == [t.value for t in b.trials]
    assert a.best_parameters == b.best_parameters
    assert len(a.trials) == 4 and all(t.state == "COMPLETE" for t in a.trials)
    # the first trial is the configuration as it stands
    assert a.trials[0].parameters["grid.swing_fraction"] == settings.grid.swing_fraction
    # convergence: best so far never decreases and ends at the winner's score
    conv = [c for c in a.convergence if c is not None]
    assert conv == sorted(conv) and conv[-1] == a.best_value
    assert set(a.trials[0].attributes) >= {"folds", "fee_share", "mc_loss_probability", "gated", "worker"}


def test_nsga2_picks_from_the_pareto_front_within_the_drawdown_limit(
        tmp_path: Path, slice_bars: CandleArrays, tiny: ObjectiveConfig, settings: Settings) -> None:
    out = run_study(_spec(settings, tiny, tmp_path / "n.journal", trials=4, sampler="nsga2"), settings, slice_bars)
    assert out.method == "optuna/nsga2"
    done = [t for t in out.trials if t.values]
    assert all(len(t.values or []) == 2 for t in done)
    winner = next(t for t in done if t.parameters == out.best_parameters)
    values = winner.values or []
    dominated = any(t.values and t.values[0] > values[0] and t.values[1] < values[1] for t in done)
    assert not dominated


def _crashing_worker(spec_raw: bytes, settings_data: dict, bars: CandleArrays) -> None:  # type: ignore[type-arg]
    import msgspec

    work(msgspec.msgpack.decode(spec_raw, type=StudySpec), settings_data, bars)


@pytest.mark.slow
def test_a_killed_study_resumes_from_its_journal(tmp_path: Path, slice_bars: CandleArrays, tiny: ObjectiveConfig,
                                                 settings: Settings) -> None:
    import msgspec

    journal = tmp_path / "crash.journal"
    spec = _spec(settings, tiny, journal, trials=6, name="crash")
    proc = mp.get_context("spawn").Process(target=_crashing_worker,
                                           args=(msgspec.msgpack.encode(spec), settings.to_dict(), slice_bars))
    proc.start()
    storage = make_storage(str(journal))
    deadline = time.monotonic() + 120
    done: list[optuna.trial.FrozenTrial] = []
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name="crash", storage=storage)
            done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        except KeyError:
            done = []
        if len(done) >= 2:
            break
        time.sleep(0.1)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert len(done) >= 2
    before = {t.number: t.value for t in done}
    out = run_study(spec, settings, slice_bars)
    complete = [t for t in out.trials if t.state == "COMPLETE"]
    assert len(complete) >= 6
    assert {t.number: t.value for t in complete if t.number in before} == before  # kept, not rerun


def test_cli_records_every_trial_and_saves_the_winner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "t.duckdb"
    code = main(["--db", str(db), "optimize", "--data", str(HOURLY_CDD), "--start", "2018-01-20",
                 "--end", "2018-03-01", "--holdout-start", "2018-02-20", "--trials", "3", "--workers", "1",
                 "--folds", "2", "--genes", "grid.swing_fraction", "--json", "--report", str(tmp_path / "r.html")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["holdout"]) >= {"default", "optimized", "buy_and_hold", "fixed_grid"}
    assert out["holdout"]["optimized"]["fills"] >= 0 and "maker_share" in out["holdout"]["default"]
    with Store(db) as store:
        trials = TuningRepository(store).trials(out["optimization_id"])
        assert [t.number for t in trials] == [0, 1, 2]
        assert all("grid.swing_fraction" in t.parameters for t in trials)
        v = ParameterRepository(store).find("optimized")
        assert v.id == out["saved_params"]
        assert v.parameters["grid.swing_fraction"] == out["best_parameters"]["grid.swing_fraction"]
    text = (tmp_path / "r.html").read_text()
    assert "convergence" in text and "sensitivity" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["--trials", "0"], "at least 1"),
    (["--storage", "mysql://u@h/db"], "neither PostgreSQL nor a file path"),
    (["--genes", "grid.gird"], "not a gene"),
    (["--range", "trailing.distance=0.5"], "LOW:HIGH"),
])
def test_cli_bad_input_is_refused_with_exit_2(tmp_path: Path, argv: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "t.duckdb"
    code = main(["--db", str(db), "optimize", "--data", str(HOURLY_CDD), "--start", "2018-01-20",
                 "--end", "2018-03-01", "--workers", "1", *argv])
    assert code == 2
    assert message in capsys.readouterr().err
    with Store(db) as store:
        assert TuningRepository(store).recent() == []


def test_an_interrupted_study_names_itself_so_it_can_be_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import trdr_tui.tuning.optimizer as optimizer

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(optimizer, "run_study", interrupted)
    code = main(["--db", str(tmp_path / "t.duckdb"), "optimize", "--data", str(HOURLY_CDD), "--start", "2018-01-20",
                 "--end", "2018-03-01", "--trials", "3", "--study", "opt-ctrlc", "--json"])
    assert code == 130
    err = capsys.readouterr().err
    assert "study opt-ctrlc interrupted" in err and "--study opt-ctrlc" in err


def test_workers_share_out_exactly_the_trials_asked_for() -> None:
    from trdr_tui.tuning.optimizer import shares

    assert shares(7, 2) == [4, 3] and shares(6, 4) == [2, 2, 1, 1] and shares(1, 4) == [1] and shares(0, 2) == []


def test_cli_study_output_is_honest_and_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two workers run exactly --trials trials (the configuration as it stands is one of them); `list`
    has a header and a result for every kind of run; `report` prints no Optuna log line; piped
    key/value rows carry no padding."""
    from trdr_tui.store.sessions import OptimizationRecord

    db = tmp_path / "t.duckdb"
    argv = ["--db", str(db), "optimize", "--data", str(HOURLY_CDD), "--start", "2018-01-20", "--end", "2018-03-01",
            "--trials", "5", "--workers", "2", "--folds", "2", "--no-save"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert all(line == line.rstrip() for line in out.splitlines()), [len(x) for x in out.splitlines()]
    trials_row = next(line for line in out.splitlines() if line.split()[:1] == ["trials"])
    assert trials_row.split() == ["trials", "5"]
    with Store(db) as store:
        [run] = TuningRepository(store).recent()
        assert len(TuningRepository(store).trials(run.id)) == 5
        # each fold warms on the bars the grid looks back over (its trend gate armed), as a deployed bot does
        assert run.search_space["objective_config"]["warmup_bars"] == history_bars(load_settings()) == 720
        TuningRepository(store).record_study(OptimizationRecord(
            id="opt-walkforward", created_at=run.created_at + 1, method="walk_forward/optuna/tpe",
            objective="out-of-sample return per window", search_space={},
            results={"windows": [{}, {}, {}], "compounded_test_return": -0.065}, best_parameters=None), [])
    assert main(["--db", str(db), "optimize", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "created", "(UTC)", "method", "trials", "result"]
    assert "None" not in "\n".join(lines)
    assert any("opt-walkforward" in x and "out of sample -6.50% compounded over 3 windows" in x for x in lines)
    assert any(run.id in x and "best score" in x for x in lines)
    proc = subprocess.run([sys.executable, "-m", "trdr_tui", "--db", str(db), "optimize", "report", run.id,
                           "--out", str(tmp_path / "r.html")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
