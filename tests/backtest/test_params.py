"""Parameter versions: save, load by id/name/tag, branch, merge, attach — repository and CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trdr_tui.backtest.params import ParameterVersions, diff, parse_assignments, strategy_parameters
from trdr_tui.cli import main
from trdr_tui.config import load_settings
from trdr_tui.core.errors import ConfigError
from trdr_tui.store import Store
from trdr_tui.store.sessions import ParameterRepository, SessionRecord, SessionRepository


@pytest.fixture
def pv(store: Store) -> ParameterVersions:
    return ParameterVersions(ParameterRepository(store), SessionRepository(store))


def attach_result(pv: ParameterVersions, version_id: str, total_return: float, sharpe: float) -> None:
    sid = f"bt-{version_id[-6:]}"
    pv.sessions.create(SessionRecord(id=sid, name=sid, description=None, created_at=1, status="running",
                                     symbol="BTC-USD", timeframe="1h", start_ts=None, end_ts=None, parameters={}))
    pv.sessions.complete(sid, {"total_return": total_return, "sharpe": sharpe}, None)
    pv.params.attach(version_id, sid)


def base_params() -> dict[str, Any]:
    return strategy_parameters(load_settings())


def test_strategy_parameters_round_trip_through_load_settings() -> None:
    params = base_params()
    assert params["grid.min_spacing"] == 0.005
    assert params["agents.weights.momentum"] == 1.0
    assert params["trailing.distance"] == 0.015  # the profile's value, resolved
    assert not any(k.startswith(("coinbase", "tui", "store", "fees.tiers")) for k in params)
    again = strategy_parameters(load_settings(overrides=params))
    assert again == params


def test_save_and_load_by_id_name_and_tag(pv: ParameterVersions) -> None:
    a = pv.save("base", base_params(), now_ns=1_000, tags=["production"])
    b = pv.save("base", {**base_params(), "grid.levels": 12}, now_ns=2_000, tags=["experimental"])
    assert pv.load(a.id).id == a.id
    assert pv.load(a.id[:6]).id == a.id  # unique prefix
    assert pv.load("base").id == b.id  # the newest with that name
    assert pv.load("production").id == a.id
    assert pv.load("experimental").parameters["grid.levels"] == 12
    with pytest.raises(ConfigError, match="no parameter version"):
        pv.load("nothing-like-this")


def test_invalid_parameters_are_refused_before_saving(pv: ParameterVersions) -> None:
    with pytest.raises(ConfigError, match="min_spacing"):
        pv.save("bad", {"grid.min_spacing": 0.9}, now_ns=1)
    with pytest.raises(ConfigError, match="unknown key"):
        pv.save("bad", {"grid.spacin": 0.01}, now_ns=1)
    assert pv.params.list() == []


def test_branch_links_to_its_parent(pv: ParameterVersions) -> None:
    base = pv.save("base", base_params(), now_ns=1, tags=["production"])
    br = pv.branch("base", "tight", {"grid.min_spacing": 0.008}, now_ns=2)
    assert br.parent_ids == [base.id]
    assert br.tags == ["branch"]
    assert diff(base.parameters, br.parameters) == {"grid.min_spacing": (0.005, 0.008)}


def test_a_tag_keeps_naming_its_version_after_branch_and_merge(pv: ParameterVersions) -> None:
    """`params branch` / `merge` used to copy the base's tags, so `params show TAG` returned the copy."""
    base = pv.save("base", base_params(), now_ns=1, tags=["v1", "production"])
    pv.branch("base", "tight", {"grid.min_spacing": 0.008}, now_ns=2)
    assert pv.load("v1").id == base.id
    merged = pv.merge("tight", "base", "average", now_ns=3)
    assert pv.load("v1").id == base.id and merged.tags == ["merged"]


def test_merge_average_performance_and_best(pv: ParameterVersions) -> None:
    p = base_params()
    target = pv.save("target", {**p, "grid.spacing": 0.01, "grid.levels": 10, "execution.price_model": "close"},
                     now_ns=1)
    branch = pv.save("branch", {**p, "grid.spacing": 0.02, "grid.levels": 15,
                                "execution.price_model": "ohlc-path"}, now_ns=2, parent_ids=[target.id])
    avg = pv.merge("branch", "target", "average", now_ns=3)
    assert avg.parameters["grid.spacing"] == pytest.approx(0.015)
    assert avg.parameters["grid.levels"] == 12  # round(12.5) → 12 (ints stay ints)
    assert avg.parameters["execution.price_model"] == "close"  # non-numbers: the target's
    assert avg.parent_ids == [target.id, branch.id]
    assert "merged" in avg.tags

    with pytest.raises(ConfigError, match="needs a backtest result attached"):
        pv.merge("branch", "target", "performance", now_ns=4)
    attach_result(pv, target.id, total_return=0.0, sharpe=0.5)  # growth 1.0
    attach_result(pv, branch.id, total_return=2.0, sharpe=1.5)  # growth 3.0: 3× the weight
    perf = pv.merge("branch", "target", "performance", now_ns=5, name="perf")
    assert perf.parameters["grid.spacing"] == pytest.approx((0.01 * 1 + 0.02 * 3) / 4)
    assert perf.parameters["execution.price_model"] == "ohlc-path"  # from the better side
    best = pv.merge("branch", "target", "best", now_ns=6)
    assert best.parameters == branch.parameters
    with pytest.raises(ConfigError, match="unknown merge strategy"):
        pv.merge("branch", "target", "vote", now_ns=7)


def test_parse_assignments() -> None:
    assert parse_assignments(["grid.min_spacing=0.008", "agents.enabled=[\"momentum\"]", "risk_tolerance=aggressive"]) \
        == {"grid.min_spacing": 0.008, "agents.enabled": ["momentum"], "risk_tolerance": "aggressive"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignments(["grid.min_spacing"])


def cli(capsys: pytest.CaptureFixture[str], db: Path, *argv: str) -> Any:
    rc = main(["--db", str(db), *argv])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return json.loads(captured.out) if "--json" in argv else captured.out


def test_params_cli_workflow(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = cli(capsys, db_path, "params", "save", "base", "--tag", "production", "--json")
    assert saved["parameters"]["grid.min_spacing"] == 0.005
    branched = cli(capsys, db_path, "params", "branch", "production", "tight", "--set", "grid.min_spacing=0.008",
                   "--json")
    assert branched["parent_ids"] == [saved["id"]]
    d = cli(capsys, db_path, "params", "diff", "base", "tight", "--json")
    assert d == {"grid.min_spacing": {"a": 0.005, "b": 0.008}}
    merged = cli(capsys, db_path, "params", "merge", "tight", "base", "--strategy", "average", "--json")
    assert merged["parameters"]["grid.min_spacing"] == pytest.approx(0.0065)
    listed = cli(capsys, db_path, "params", "list", "--json")
    assert len(listed) == 3
    assert "tight" in cli(capsys, db_path, "params", "show", "tight")
    cli(capsys, db_path, "params", "tag", "tight", "candidate")
    assert cli(capsys, db_path, "params", "show", "candidate", "--json")["id"] == branched["id"]
    rc = main(["--db", str(db_path), "params", "merge", "tight", "base", "--strategy", "performance"])
    assert rc == 2 and "needs a backtest result" in capsys.readouterr().err


def test_backtest_with_params_attaches_its_result(
    db_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.backtest.test_cli_backtest import HOURLY_REL
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)
    cli(capsys, db_path, "params", "save", "small", "--set", "capital=2000", "--set", "grid.spacing=0.02")
    r = cli(capsys, db_path, "backtest", "--data", str(HOURLY_REL), "--params", "small", "--preset",
            "simple-trailing", "--start", "2019-03-01",
            "--json", "--monte-carlo", "0", "--save-params", "small-result")
    # a preset decides, but the version's capital and grid spacing apply (engine and baselines)
    assert r["initial_capital"] == 2000
    assert r["params_version"].startswith("pv-")
    shown = cli(capsys, db_path, "params", "show", "small", "--json")
    assert shown["session_id"] == r["session_id"]
    again = cli(capsys, db_path, "params", "show", "small-result", "--json")
    assert again["parent_ids"] == [shown["id"]] and again["session_id"] == r["session_id"]
    with Store(db_path) as store:
        s = SessionRepository(store).get(r["session_id"])
        assert s.parameter_version_id == shown["id"]
        assert s.parameters["grid.spacing"] == 0.02
