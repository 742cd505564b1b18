from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import HOURLY_CDD
from trdr_tui.cli import main
from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import DataError
from trdr_tui.core.volatility import atr
from trdr_tui.store import Store
from trdr_tui.store.sessions import OptimizationRecord
from trdr_tui.store.tuning import AdaptiveRecord, Adjustment, ParameterChange, TrialRecord, TuningRepository
from trdr_tui.trading.grid import GridPolicy
from trdr_tui.tuning.derive import derive, market_stats
from trdr_tui.tuning.suggest import suggest_updates

H = 3_600_000_000_000


def zigzag(n: int, amp: float, period: int = 24) -> CandleArrays:
    """Hourly bars swinging ±amp around 100 with a triangle wave: swings of known size."""
    phase = np.abs((np.arange(n) % period) - period / 2) / (period / 2)  # 1 → 0 → 1
    close = 100.0 * (1 - amp + 2 * amp * phase)
    ts = np.arange(n, dtype=np.int64) * H + 1_500_000_000 * 1_000_000_000
    return CandleArrays(ts=ts, open=close.copy(), high=close.copy(), low=close.copy(), close=close,
                        volume=np.ones(n))


def test_derived_values_follow_their_formulas() -> None:
    s = load_settings()
    bars = zigzag(24 * 40, 0.03)
    values = {v.key: v for v in derive(s, bars)}
    swing = values["market.average_swing"].value
    lo, hi = 100 * 0.97, 100 * 1.03
    assert swing == pytest.approx(((hi - lo) / lo + (hi - lo) / hi) / 2, rel=0.02)
    assert values["market.volatility_ratio"].value == pytest.approx(1.0, abs=0.05)  # the same every week
    maker = s.fees.active_tier().maker  # post-only levels and post-only take-profits: maker both ways
    cost = 2 * maker + 2 * s.execution.half_spread
    assert values["fees.round_trip_cost"].value == pytest.approx(cost)
    floor = max(s.grid.cost_multiple * cost, cost + s.grid.fee_margin, s.grid.min_spacing)
    assert values["grid.spacing_floor"].value == pytest.approx(floor)
    spacing = values["grid.spacing"].value
    assert spacing == pytest.approx(min(max(s.grid.swing_fraction * swing, floor), s.grid.max_spacing))
    assert spacing > cost  # no round trip below its cost
    assert values["trailing.distance"].value <= spacing / 2
    assert values["risk.max_concurrent_trades"].value == 3 == s.risk.max_concurrent_trades  # 0.15 / 0.05, rounded before floor
    assert values["sizing.position_size_usd"].value == s.capital * s.risk.max_position / s.grid.levels  # stocked
    flat = {d.key: d for d in derive(load_settings(overrides={"grid.seed_inventory": False}), bars)}
    assert flat["sizing.position_size_usd"].value == s.capital * s.sizing.base_fraction
    assert values["grid.spacing"].inputs["average_swing"] == swing


def test_the_fee_floor_holds_in_a_quiet_market() -> None:
    s = load_settings()
    values = {v.key: v.value for v in derive(s, zigzag(24 * 40, 0.001))}
    assert values["grid.spacing"] >= values["fees.round_trip_cost"] + s.grid.fee_margin
    assert values["grid.spacing"] >= values["fees.round_trip_cost"] * s.grid.cost_multiple
    assert values["grid.spacing"] == values["grid.spacing_floor"]


@pytest.mark.parametrize("overrides", [{}, {"grid.trailing_exits": True}, {"fees.thirty_day_volume_usd": 2e6},
                                       {"grid.min_spacing": 0.03}])
def test_tune_explains_the_floor_the_grid_uses(overrides: dict[str, object]) -> None:
    s = load_settings(overrides=overrides)
    policy = GridPolicy(s)
    values = {v.key: v for v in derive(s, zigzag(24 * 40, 0.03))}
    assert values["fees.round_trip_cost"].value == policy.cost
    assert values["grid.spacing_floor"].value == policy.floor
    exit_order = "taker trailing SELL" if s.grid.trailing_exits else "maker take-profit"
    assert exit_order in values["fees.round_trip_cost"].formula


def test_tune_explain_prints_the_grids_floor(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one line per row: the formula is not folded
    args = ["--db", str(tmp_path / "t.duckdb"), "tune", "--explain", "--data", str(HOURLY_CDD), "--end", "2019-01-01"]
    assert main([*args, "--json"]) == 0
    shown = {d["key"]: d for d in json.loads(capsys.readouterr().out)}
    policy = GridPolicy(load_settings())
    assert shown["fees.round_trip_cost"]["value"] == policy.cost  # maker + maker + 2 × half-spread, not 2 × taker
    assert shown["grid.spacing_floor"]["value"] == policy.floor
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "grid.spacing_floor" in out and f"{policy.floor:.6g}" in out and "maker take-profit" in out


def test_too_little_history_is_a_data_error() -> None:
    with pytest.raises(DataError, match="swing pivots"):
        market_stats(zigzag(5, 0.03), 5)


def test_tune_explain_prints_formulas_and_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--db", str(tmp_path / "t.duckdb"), "tune", "--explain", "--data", str(HOURLY_CDD),
                 "--end", "2019-01-01"])
    assert code == 0
    out = capsys.readouterr().out
    assert "grid.spacing" in out and "swing_fraction" in out and "round_trip_cost" in out


def test_suggest_names_the_parameter_and_the_reason() -> None:
    params = {"grid.min_spacing": 0.005, "grid.spacing": 0.015, "execution.half_spread": 0.0002,
              "risk.max_drawdown": 0.15, "sizing.base_fraction": 0.05, "trailing.distance": 0.015,
              "trailing.max_distance": 0.1, "risk.stop_loss": 0.02, "agents.min_confidence": 0.6}
    results = {"fees_paid": 1396.89, "final_equity": 8495.0, "initial_capital": 10000.0,
               "fee_rates": {"maker": 0.004, "taker": 0.006}, "max_drawdown": 0.20, "win_rate": 0.35,
               "profit_factor": 0.8, "round_trips": 300, "bars": 20000, "timeframe": "1h"}
    out = suggest_updates(params, results)
    by = {s["parameter"]: s for s in out["suggestions"]}
    assert by["grid.min_spacing"]["suggested_value"] == pytest.approx(1.5 * (2 * 0.006 + 2 * 0.0002), abs=1e-4)
    assert by["sizing.base_fraction"]["suggested_value"] == pytest.approx(0.05 * 0.15 / 0.20, abs=1e-4)
    assert by["risk.stop_loss"]["suggested_value"] == 0.03
    assert "agents.min_confidence" not in by  # 300 trips in 20,000 h is plenty
    assert out["backtest_recommended"] and out["confidence"] == 1.0
    assert suggest_updates({}, {})["suggestions"] == []


def test_tuning_repository_round_trips(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        repo = TuningRepository(store)
        rec = OptimizationRecord(id="opt-abc123", created_at=1_700_000_000_000_000_000, method="optuna/tpe",
                                 objective="x", search_space={"a": [0, 1]}, results={"trials": 2},
                                 best_parameters={"a": 0.5})
        trials = [TrialRecord(number=i, state="COMPLETE", value=float(i), values=[float(i)], best_so_far=float(i),
                              parameters={"a": i / 2}, attributes={"gated": False}, duration_ms=1.0)
                  for i in range(2)]
        repo.record_study(rec, trials)
        assert repo.trials("opt-abc") == trials
        assert repo.recent()[0].id == rec.id
        ch = ParameterChange(ts=1_700_000_000_000_000_000, adopted=True, reason="better out of sample",
                             changes={"trailing.distance": [0.015, 0.016]}, from_version="pv-1", to_version="pv-2",
                             symbol="BTC-USD")
        repo.record_change(ch)
        assert repo.changes() == [ch]
        assert repo.changes(symbol="ETH-USD") == [] and repo.changes(adopted=False) == []
        a = AdaptiveRecord(symbol="BTC-USD", name="trailing.distance", value=0.016, low=0.005, high=0.03,
                           confidence=0.55, outcomes=[True, False],
                           history=[Adjustment(ts=1_700_000_000_000_000_000, old=0.015, new=0.016, reason="good")],
                           updated_at=1_700_000_000_000_000_000)
        repo.save_adaptive([a])
        repo.save_adaptive([a])
        assert repo.adaptive() == [a]
        assert repo.adaptive("ETH-USD") == []


def test_tune_explains_atr_spacing_with_the_grids_own_formula() -> None:
    s = load_settings(overrides={"grid.spacing_method": "atr", "grid.atr_multiple": 4.0})
    bars = zigzag(24 * 40, 0.03)
    values = {v.key: v for v in derive(s, bars)}
    atr_fraction = values["market.atr_fraction"].value
    w = bars[int(np.searchsorted(bars.ts, int(bars.ts[-1]) - 30 * 86_400_000_000_000, side="right")):]
    assert atr_fraction == pytest.approx(atr(w.high, w.low, w.close, 14)[-1] / w.close[-1])
    spacing = values["grid.spacing"]
    floor = values["grid.spacing_floor"].value
    assert "atr_multiple × atr_fraction" in spacing.formula and spacing.inputs["atr_multiple"] == 4.0
    assert spacing.value == pytest.approx(min(max(4.0 * atr_fraction, floor), max(s.grid.max_spacing, floor)))
    tiny = {v.key: v.value for v in derive(load_settings(overrides={"grid.spacing_method": "atr",
                                                                    "grid.atr_multiple": 0.1}), bars)}
    assert tiny["grid.spacing"] == tiny["grid.spacing_floor"]  # never below the fee floor


def test_a_study_recorded_again_replaces_its_interrupted_rows(tmp_path: Path) -> None:
    """Resumed and finished (or interrupted again), a study keeps one row in `optimize list`: its earlier
    interrupted rows (and their trials) go; another study's interrupted row stays."""

    def rec(oid: str, study: str, status: str | None, at: int) -> OptimizationRecord:
        results: dict[str, object] = {"study": study, "trials": 1}
        if status is not None:
            results["status"] = status
        return OptimizationRecord(id=oid, created_at=at, method="optuna/tpe", objective="o", search_space={},
                                  results=results, best_parameters=None)

    trial = TrialRecord(number=0, state="COMPLETE", value=0.1, values=None, best_so_far=0.1, parameters={},
                        attributes={}, duration_ms=1.0)
    with Store(tmp_path / "t.duckdb") as store:
        repo = TuningRepository(store)
        repo.record_study(rec("opt-a1", "study-a", "interrupted", 1), [trial])
        repo.record_study(rec("opt-b1", "study-b", "interrupted", 2), [trial])
        repo.record_study(rec("opt-a2", "study-a", "interrupted", 3), [trial])
        assert [r.id for r in repo.recent()] == ["opt-a2", "opt-b1"]
        repo.record_study(rec("opt-a3", "study-a", None, 4), [trial])
        assert [r.id for r in repo.recent()] == ["opt-a3", "opt-b1"]
        assert store.conn.execute("SELECT count(*) FROM optimization_trials").fetchone() == (2,)
