from __future__ import annotations

import pytest

from trdr_tui.config import Settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import ConfigError
from trdr_tui.market import indicators
from trdr_tui.tuning.objective import GATE_PENALTY, DatasetCache, ObjectiveConfig, evaluate


def test_folds_are_scored_on_their_own_bars_after_warmup(slice_bars: CandleArrays, tiny: ObjectiveConfig,
                                                        settings: Settings) -> None:
    cache = DatasetCache(slice_bars, tiny)
    assert len(cache.slices) == 2
    (a0, b0, c0), (_a1, b1, _c1) = cache.slices
    assert b0 - a0 == tiny.warmup_bars and c0 == b1  # the second fold's test starts where the first ended
    ev = evaluate(cache, settings, {})
    assert len(ev.folds) == 2
    assert ev.mean_return == pytest.approx(sum(f.total_return for f in ev.folds) / 2)
    assert ev.score == pytest.approx(ev.mean_return - ev.fee_penalty - (GATE_PENALTY if ev.gated else 0.0))
    assert all(f.fees > 0 for f in ev.folds)  # real fees are paid


def test_reused_agent_signals_give_the_same_result(slice_bars: CandleArrays, tiny: ObjectiveConfig,
                                                   settings: Settings) -> None:
    cache = DatasetCache(slice_bars, tiny)
    first = evaluate(cache, settings, {"trailing.distance": 0.012})
    assert cache.hits == 0
    again = evaluate(cache, settings, {"trailing.distance": 0.012})
    assert cache.hits == len(settings.agents.enabled) * 2  # every agent, both folds, from the cache
    fresh = evaluate(DatasetCache(slice_bars, tiny), settings, {"trailing.distance": 0.012})
    assert first == again == fresh


def test_features_are_computed_once_per_fold(slice_bars: CandleArrays, tiny: ObjectiveConfig, settings: Settings,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cache = DatasetCache(slice_bars, tiny)
    first = evaluate(cache, settings, {"trailing.distance": 0.012})

    def computed_again(*_args: object) -> None:
        raise AssertionError("features computed again for a fold already seen")

    monkeypatch.setattr(indicators, "compute_features", computed_again)
    assert evaluate(cache, settings, {"trailing.distance": 0.012}) == first
    with pytest.raises(AssertionError, match="computed again"):  # a new dataset does compute them
        evaluate(DatasetCache(slice_bars, tiny), settings, {"trailing.distance": 0.012})


def test_fee_dominated_results_are_penalized(slice_bars: CandleArrays, settings: Settings) -> None:
    lenient = ObjectiveConfig(folds=2, mc_paths=0, min_trades=0, fee_share_limit=1.0)
    strict = ObjectiveConfig(folds=2, mc_paths=0, min_trades=0, fee_share_limit=0.0, fee_penalty=1.0)
    a = evaluate(DatasetCache(slice_bars, lenient), settings, {})
    b = evaluate(DatasetCache(slice_bars, strict), settings, {})
    assert a.mean_return == b.mean_return
    fees = sum(f.fees for f in b.folds)
    ratio = b.fee_share if b.fee_share is not None else float("inf")
    expected = min(max(ratio, 0.0), 1.0) * fees / settings.capital / 2
    assert b.fee_penalty == pytest.approx(expected) and b.fee_penalty > 0
    assert b.score < a.score or a.fee_penalty > 0


def test_the_monte_carlo_gate_drops_a_candidate_with_too_few_trades(slice_bars: CandleArrays,
                                                                     settings: Settings) -> None:
    cfg = ObjectiveConfig(folds=2, mc_paths=100, min_trades=100_000)
    ev = evaluate(DatasetCache(slice_bars, cfg), settings, {})
    assert ev.gated and ev.score <= ev.mean_return - GATE_PENALTY


def test_too_few_bars_is_a_clear_error(slice_bars: CandleArrays) -> None:
    with pytest.raises(ConfigError, match="too few"):
        DatasetCache(slice_bars[:205], ObjectiveConfig(folds=3))
