from __future__ import annotations

import optuna
import pytest

from trdr_tui.backtest.walkforward import with_overrides
from trdr_tui.config import LIVE_TUNABLE, Settings
from trdr_tui.core.errors import ConfigError
from trdr_tui.tuning.genome import (
    GENES,
    current_values,
    genome,
    parse_genes,
    suggest,
    tuned_keys,
    with_ranges,
)


def test_genome_covers_the_prd_fields_and_one_weight_per_agent(settings: Settings) -> None:
    keys = {g.key for g in genome(settings)}
    for k in ("agents.min_confidence", "risk.max_drawdown", "risk.max_position",
              "risk.max_concurrent_trades", "grid.swing_fraction", "grid.min_spacing"):
        assert k in keys
    assert {f"agents.weights.{a}" for a in settings.agents.enabled} <= keys


def test_only_filters_by_key_or_prefix_and_refuses_unknown(settings: Settings) -> None:
    got = [g.key for g in genome(settings, ["agents.weights", "risk.max_drawdown"])]
    assert got[0] == "risk.max_drawdown" and len(got) == 1 + len(settings.agents.enabled)
    with pytest.raises(ConfigError, match="not a gene"):
        genome(settings, ["grid.gird"])


def test_the_stop_on_the_average_entry_is_searched_only_when_asked_for(settings: Settings) -> None:
    """A stop a few percent under the average entry sits inside the grid (the structural loss the
    fee-aware grid removed): the default search leaves it out; `--genes risk.stop_loss` brings it in."""
    assert "risk.stop_loss" not in {g.key for g in genome(settings)}
    assert [g.key for g in genome(settings, ["risk.stop_loss"])] == ["risk.stop_loss"]


def test_trailing_distance_is_a_gene_only_when_the_grid_trails_its_exits(settings: Settings) -> None:
    assert not settings.grid.trailing_exits  # the default: post-only take-profits never read the trail
    assert "trailing.distance" not in {g.key for g in genome(settings)}
    assert tuned_keys(settings, LIVE_TUNABLE) == [k for k in LIVE_TUNABLE if k != "trailing.distance"]
    with pytest.raises(ConfigError, match="no effect without trailing orders") as err:
        genome(settings, ["trailing.distance"])
    assert "grid.trailing_exits = true" in err.value.render()
    trailing = with_overrides(settings, {"grid.trailing_exits": True})
    assert "trailing.distance" in {g.key for g in genome(trailing)}
    assert [g.key for g in genome(trailing, ["trailing.distance"])] == ["trailing.distance"]
    assert tuned_keys(trailing, LIVE_TUNABLE) == list(LIVE_TUNABLE)


def test_every_suggested_candidate_is_a_valid_config(settings: Settings) -> None:
    genes = genome(settings)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        overrides = suggest(trial, genes)
        for g in genes:
            assert g.low <= overrides[g.key] <= g.high
        s = with_overrides(settings, overrides)  # validates like any config
        assert s.risk.max_position == overrides["risk.max_position"]
        study.tell(trial, 0.0)


def test_current_values_start_from_the_config(settings: Settings) -> None:
    cur = current_values(settings, genome(settings))
    assert cur["grid.swing_fraction"] == settings.grid.swing_fraction
    assert cur["risk.max_concurrent_trades"] == settings.risk.max_concurrent_trades


def test_ranges_override_and_bad_ranges_are_refused(settings: Settings) -> None:
    genes = with_ranges(GENES, parse_genes(["trailing.distance=0.01:0.02"]))
    assert next(g for g in genes if g.key == "trailing.distance").high == 0.02
    with pytest.raises(ConfigError, match="LOW:HIGH"):
        parse_genes(["trailing.distance=0.01"])
    with pytest.raises(ConfigError, match="below"):
        parse_genes(["trailing.distance=0.03:0.01"])
    with pytest.raises(ConfigError, match="not in the genome"):
        with_ranges(GENES, {"nope": (0.0, 1.0)})
