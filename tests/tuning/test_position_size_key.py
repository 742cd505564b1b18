"""The tunable position size is the key in force: with stocked levels (the default) the capital per level
is `risk.max_position / levels`, so the optimizer, the daily loop, the adaptive values and a live change
all use `risk.max_position`, and a value set live sizes the grid like a run configured with it."""

from __future__ import annotations

import msgspec
import pytest

from tests.tuning.streams import StreamFeed
from trdr_tui.config import LIVE_TUNABLE, Settings, load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import ConfigError
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.loop import Engine
from trdr_tui.store.db import Store
from trdr_tui.trading.grid import GridPolicy
from trdr_tui.tuning.adaptive import RULES
from trdr_tui.tuning.apply import apply_live, live_values
from trdr_tui.tuning.genome import genome
from trdr_tui.tuning.suggest import suggest_updates


def _paper(settings: Settings, bars: CandleArrays, store: Store) -> Engine:
    return build_engine(settings, mode="paper", feed=StreamFeed(bars, settings.symbol, settings.timeframe),
                        store=store, clock=SimClock(int(bars.ts[0])))


def test_every_tuner_uses_the_size_key_in_force(settings: Settings) -> None:
    assert settings.grid.seed_inventory  # the default grid is stocked
    keys = {g.key for g in genome(settings)}
    assert "risk.max_position" in keys and "sizing.base_fraction" not in keys
    with pytest.raises(ConfigError, match="no effect with stocked grid levels"):
        genome(settings, ["sizing.base_fraction"])
    unstocked = load_settings(overrides={"grid": {"seed_inventory": False}})
    assert {"risk.max_position", "sizing.base_fraction"} <= {g.key for g in genome(unstocked)}
    assert "risk.max_position" in LIVE_TUNABLE and "sizing.base_fraction" not in LIVE_TUNABLE
    assert "risk.max_position" in RULES
    assert "risk.max_position" in settings.tuning.daily_genes and "risk.max_position" in settings.tuning.adaptive_keys
    with pytest.raises(ConfigError, match="a running engine cannot take"):
        load_settings(overrides={"tuning": {"daily_genes": ["sizing.base_fraction"]}})


def test_suggest_names_the_size_key_in_force() -> None:
    params = {"risk.max_drawdown": 0.15, "risk.max_position": 0.5, "sizing.base_fraction": 0.05,
              "grid.seed_inventory": True}
    results = {"max_drawdown": 0.20}
    by = {s["parameter"]: s for s in suggest_updates(params, results)["suggestions"]}
    assert by["risk.max_position"]["suggested_value"] == pytest.approx(0.5 * 0.15 / 0.20, abs=1e-4)
    assert "sizing.base_fraction" not in by


async def test_a_size_set_live_sizes_the_grid_like_a_run_configured_with_it(
        hourly: CandleArrays, store: Store, settings: Settings) -> None:
    bars = hourly[:120]
    live = _paper(settings, bars, store)
    changed = apply_live(live, {"risk.max_position": 0.3})
    assert changed == {"risk.max_position": (settings.risk.max_position, 0.3)}
    assert live_values(live)["risk.max_position"] == 0.3
    configured = _paper(load_settings(overrides={"risk": {"max_position": 0.3}}), bars, store)
    default = _paper(settings, bars, store)
    for e in (live, configured, default):
        await e.run()
    p, q, d = live.policy, configured.policy, default.policy
    assert isinstance(p, GridPolicy) and isinstance(q, GridPolicy) and isinstance(d, GridPolicy)
    assert p.base_fraction == q.base_fraction == 0.3 / settings.grid.levels
    assert live.risk.limits == configured.risk.limits
    assert p.quote > 0.0 and p.quote == q.quote  # the same per-level quote …
    assert p.quote != d.quote  # … which the change did move
    assert [(f.side, f.size, f.price) for f in live.record.fills] == \
        [(f.side, f.size, f.price) for f in configured.record.fills]


def test_a_bad_size_changes_nothing(hourly: CandleArrays, store: Store, settings: Settings) -> None:
    e = _paper(settings, hourly[:10], store)
    before = live_values(e)
    with pytest.raises(msgspec.ValidationError, match="max_position"):
        apply_live(e, {"risk.max_position": 1.5})
    assert live_values(e) == before
    with pytest.raises(ConfigError, match=r"cannot take sizing\.base_fraction"):
        apply_live(e, {"sizing.base_fraction": 0.08})
