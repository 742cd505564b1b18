"""The parameters a running engine takes without a restart (`config.LIVE_TUNABLE`), read and set in place.

The daily loop (`tuning/daily.py`) and the adaptive values (`tuning/adaptive.py`) change only these:

| key                     | where it lives in a running engine                                     |
|-------------------------|------------------------------------------------------------------------|
| grid.swing_fraction     | the grid policy's `cfg` (read when the grid re-centers)                |
| trailing.distance       | the grid policy's default trail (a decision without its own trail)     |
| risk.max_position       | the risk manager's position cap (at once) and, with stocked levels, the grid policy's capital share per level (`level_fraction`, read when the grid re-centers) |
| agents.min_confidence   | the grid policy's entry threshold and the agent panel's HOLD gate      |

The position size is `risk.max_position` because it is the key in force: with stocked levels
(`grid.seed_inventory`) the capital per level is `risk.max_position / levels` and `sizing.base_fraction`
is never read, so a value set here is the one a backtest of that config would use.

Every other strategy key needs a restart. An engine that runs a preset (no grid policy) takes none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from trdr_tui.config import LIVE_TUNABLE
from trdr_tui.core.errors import ConfigError
from trdr_tui.engine.loop import Engine
from trdr_tui.trading.grid import GridPolicy, level_fraction


def live_values(engine: Engine) -> dict[str, float]:
    """The value in force of each LIVE_TUNABLE key; {} for an engine without the grid policy."""
    p = engine.policy
    if not isinstance(p, GridPolicy):
        return {}
    return {"grid.swing_fraction": float(p.cfg.swing_fraction), "trailing.distance": float(p.default_trail),
            "risk.max_position": float(engine.settings.risk.max_position if engine.risk.limits.max_position is None
                                       else engine.risk.limits.max_position),
            "agents.min_confidence": float(p.min_confidence)}


def apply_live(engine: Engine, values: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """Set `values` in the running engine; returns {key: (old, new)} for the keys that changed.

    Raises ConfigError (nothing changed) for a key outside LIVE_TUNABLE, or when the engine has no grid
    policy. The new values are validated like the config (`GridConfig`/`OrchestratorConfig` structs)."""
    unknown = [k for k in values if k not in LIVE_TUNABLE]
    if unknown:
        raise ConfigError(f"a running engine cannot take {', '.join(unknown)}",
                          hint="these need a restart; live keys: " + ", ".join(LIVE_TUNABLE))
    p = engine.policy
    if not isinstance(p, GridPolicy):
        raise ConfigError("this engine runs a preset without the grid policy: there is nothing to tune")
    old = live_values(engine)
    changed = {k: (old[k], float(v)) for k, v in values.items() if float(v) != old[k]}
    if not changed:
        return {}
    cfg = p.cfg
    if "grid.swing_fraction" in changed:  # validated by the config struct's own checks
        cfg = msgspec.convert({**msgspec.to_builtins(cfg), "swing_fraction": changed["grid.swing_fraction"][1]},
                              type(cfg))
    risk_cfg = engine.settings.risk
    if "risk.max_position" in changed:  # validated like the config's [risk]
        risk_cfg = msgspec.convert({**msgspec.to_builtins(risk_cfg), "max_position": changed["risk.max_position"][1]},
                                   type(risk_cfg))
    src: Any = engine.decisions
    panel_cfg = getattr(src, "config", None)
    p.cfg = cfg
    if "trailing.distance" in changed:
        p.default_trail = changed["trailing.distance"][1]
    if "risk.max_position" in changed:
        cap = risk_cfg.max_position
        engine.risk.limits = msgspec.structs.replace(engine.risk.limits, max_position=cap)
        p.base_fraction = level_fraction(p.cfg, cap, engine.settings.sizing.base_fraction)
    if "agents.min_confidence" in changed:
        conf = changed["agents.min_confidence"][1]
        p.min_confidence = conf
        if isinstance(panel_cfg, msgspec.Struct) and hasattr(panel_cfg, "min_confidence"):
            src.config = msgspec.structs.replace(panel_cfg, min_confidence=conf)
    return changed
