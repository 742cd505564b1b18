"""Configuration: msgspec structs loaded from TOML, with errors that say what, where and how to fix.

Layers, later wins: the shipped `config/default.toml` → the user's file (`--config`, else
`$XDG_CONFIG_HOME/trdr/config.toml` if it exists) → `TRDR_*` environment variables.

The minimal user file is three keys: `symbol`, `capital`, `risk_tolerance`. Values left unset
(`None` below) are derived from the risk profile when the config is resolved (PRD §3.5).
Secrets are never part of the config: they come from the environment or a key file.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import msgspec

from trdr_tui.core.errors import ConfigError
from trdr_tui.resources import read_bundled_text

RiskTolerance = Literal["conservative", "moderate", "aggressive"]
PriceModel = Literal["close", "ohlc-path"]
Timeframe = Literal["1m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "1d"]


class _Section(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    def __post_init__(self) -> None:
        _check_finite(self)


def _check_finite(obj: msgspec.Struct) -> None:
    for name in obj.__struct_fields__:
        value = getattr(obj, name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"`{name}` must be a finite number, got {value}")


def _in_range(name: str, value: float | int | None, lo: float, hi: float) -> None:
    if value is not None and not (lo <= value <= hi):
        raise ValueError(f"`{name}` must be between {lo} and {hi}, got {value}")


# --- risk profiles (PRD §3.5) -------------------------------------------------------------------


class RiskProfile(msgspec.Struct, frozen=True):
    max_drawdown: float
    min_confidence: float
    trail_base: float


RISK_PROFILES: dict[str, RiskProfile] = {
    "conservative": RiskProfile(max_drawdown=0.10, min_confidence=0.70, trail_base=0.02),
    "moderate": RiskProfile(max_drawdown=0.15, min_confidence=0.60, trail_base=0.015),
    "aggressive": RiskProfile(max_drawdown=0.25, min_confidence=0.50, trail_base=0.01),
}


# --- sections -----------------------------------------------------------------------------------


class GridConfig(_Section):
    auto_spacing: bool = True
    spacing: float = 0.015
    min_spacing: float = 0.005
    max_spacing: float = 0.05
    swing_lookback: int = 5
    swing_fraction: float = 0.3
    levels: int = 10
    activation_distance: float = 0.05
    initial_entry_drop: float = 0.02
    initial_entry_confidence: float = 0.70

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("spacing", self.spacing, 0.0001, 0.5)
        _in_range("min_spacing", self.min_spacing, 0.0001, 0.5)
        _in_range("max_spacing", self.max_spacing, 0.0001, 0.5)
        if self.min_spacing > self.max_spacing:
            raise ValueError(f"`min_spacing` ({self.min_spacing}) must not exceed `max_spacing` ({self.max_spacing})")
        _in_range("swing_lookback", self.swing_lookback, 1, 100)
        _in_range("swing_fraction", self.swing_fraction, 0.01, 1.0)
        _in_range("levels", self.levels, 2, 200)
        _in_range("activation_distance", self.activation_distance, 0.0, 1.0)
        _in_range("initial_entry_drop", self.initial_entry_drop, 0.0, 1.0)
        _in_range("initial_entry_confidence", self.initial_entry_confidence, 0.0, 1.0)


class TrailingConfig(_Section):
    distance: float | None = None  # None: the risk profile's trail base
    min_distance: float = 0.002
    max_distance: float = 0.10
    improvement_threshold: float = 0.001
    max_duration_hours: float = 72.0
    partial_fill_cancel: float = 0.80

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("distance", self.distance, 0.0001, 0.5)
        _in_range("min_distance", self.min_distance, 0.0001, 0.5)
        _in_range("max_distance", self.max_distance, 0.0001, 0.5)
        _in_range("improvement_threshold", self.improvement_threshold, 0.0, 0.1)
        _in_range("max_duration_hours", self.max_duration_hours, 0.01, 24 * 365)
        _in_range("partial_fill_cancel", self.partial_fill_cancel, 0.0, 1.0)


class SizingConfig(_Section):
    base_fraction: float = 0.05
    kelly_safety: float = 0.5
    kelly_lookback_days: float = 30.0  # Kelly reads trades closed this recently (then they age out)
    kelly_min_trades: int = 20  # and only once the window holds this many

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("base_fraction", self.base_fraction, 0.0001, 1.0)
        _in_range("kelly_safety", self.kelly_safety, 0.0, 1.0)
        _in_range("kelly_lookback_days", self.kelly_lookback_days, 1.0, 3650.0)
        _in_range("kelly_min_trades", self.kelly_min_trades, 1, 100_000)


class RiskConfig(_Section):
    max_drawdown: float | None = None  # None: from the risk profile
    daily_loss_limit: float = 0.05
    stop_loss: float = 0.02
    max_position: float = 0.25
    max_concurrent_trades: int | None = None  # None: floor(max_drawdown / 0.05)

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("max_drawdown", self.max_drawdown, 0.001, 1.0)
        _in_range("daily_loss_limit", self.daily_loss_limit, 0.001, 1.0)
        _in_range("stop_loss", self.stop_loss, 0.0, 1.0)
        _in_range("max_position", self.max_position, 0.001, 1.0)
        _in_range("max_concurrent_trades", self.max_concurrent_trades, 1, 1000)


class FeeTier(_Section):
    name: str
    usd_from: float
    maker: float
    taker: float
    usd_to: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("maker", self.maker, 0.0, 0.05)
        _in_range("taker", self.taker, 0.0, 0.05)


class FeesConfig(_Section):
    tier: str = "0-10K"
    thirty_day_volume_usd: float = 0.0
    tiers: tuple[FeeTier, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tiers and self.tier not in {t.name for t in self.tiers}:
            names = ", ".join(t.name for t in self.tiers)
            raise ValueError(f"`tier` '{self.tier}' is not one of the tiers: {names}")

    def active_tier(self) -> FeeTier:
        for t in self.tiers:
            if t.name == self.tier:
                return t
        raise ConfigError(f"fee tier '{self.tier}' is not defined", hint="add it under [[fees.tiers]]")


class ExecutionConfig(_Section):
    price_model: PriceModel = "ohlc-path"
    half_spread: float = 0.0002
    impact_coefficient: float = 0.1
    max_volume_share: float = 0.10
    smart_placement_spread: float = 0.002

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("half_spread", self.half_spread, 0.0, 0.05)
        _in_range("impact_coefficient", self.impact_coefficient, 0.0, 10.0)
        _in_range("max_volume_share", self.max_volume_share, 0.0001, 1.0)
        _in_range("smart_placement_spread", self.smart_placement_spread, 0.0, 0.1)


class AgentsConfig(_Section):
    enabled: tuple[str, ...] = ("volatility", "momentum", "volume_profile", "market_structure", "regime")
    weights: dict[str, float] = msgspec.field(default_factory=dict)
    timeout_seconds: float = 5.0
    min_confidence: float | None = None  # None: from the risk profile
    disagreement_threshold: float = 0.4
    adaptive_weights: bool = True
    min_weight: float = 0.2
    max_weight: float = 3.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("timeout_seconds", self.timeout_seconds, 0.01, 120.0)
        _in_range("min_confidence", self.min_confidence, 0.0, 1.0)
        _in_range("disagreement_threshold", self.disagreement_threshold, 0.0, 1.0)
        _in_range("min_weight", self.min_weight, 0.0, 100.0)
        _in_range("max_weight", self.max_weight, 0.0, 100.0)
        if self.min_weight > self.max_weight:
            raise ValueError("`min_weight` must not exceed `max_weight`")
        for agent_id, w in self.weights.items():
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"weight for agent '{agent_id}' must be a finite number ≥ 0, got {w}")


class AIConfig(_Section):
    model: str = "claude-sonnet-4-5"
    max_calls_per_hour: int = 100
    base_url: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("max_calls_per_hour", self.max_calls_per_hour, 0, 100_000)


class CoinbaseConfig(_Section):
    rest_url: str = "https://api.coinbase.com"
    ws_url: str = "wss://advanced-trade-ws.coinbase.com"
    user_ws_url: str = "wss://advanced-trade-ws-user.coinbase.com"
    key_file: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("rest_url", "ws_url", "user_ws_url"):
            value = getattr(self, name)
            scheme = value.split("://", 1)[0] if "://" in value else ""
            allowed = ("http", "https") if name == "rest_url" else ("ws", "wss")
            if scheme not in allowed:
                raise ValueError(f"`{name}` must start with {' or '.join(s + '://' for s in allowed)}, got {value!r}")


class BacktestConfig(_Section):
    seed: int = 42
    warmup_bars: int = 200
    batch_size: int = 5000

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("warmup_bars", self.warmup_bars, 0, 100_000)
        _in_range("batch_size", self.batch_size, 1, 10_000_000)


class TuiConfig(_Section):
    theme: str = "trdr-dark"
    keys: dict[str, str] = msgspec.field(default_factory=dict)
    refresh_hz: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("refresh_hz", self.refresh_hz, 0.5, 120.0)


class StoreConfig(_Section):
    path: str | None = None  # None: $XDG_DATA_HOME/trdr/trdr.duckdb
    checkpoint_interval_seconds: float = 60.0


class ApiConfig(_Section, frozen=True):
    """The control API and metrics (`trdr --api`, docs/operations.md)."""

    listen: str = "127.0.0.1:0"  # HOST:PORT (port 0: a free one); a non-loopback host needs --api-allow-remote
    token_file: str | None = None  # None: `api-token` beside the database (created 0600 on first start)
    max_body_bytes: int = 65_536  # larger request bodies are refused (413)
    ws_queue: int = 1000  # events buffered per WebSocket client before the oldest are dropped
    webhook_url: str | None = None  # alerts (fills, risk halts, errors, feed outages) are POSTed here
    log_max_bytes: int = 10_000_000  # a log file rotates at this size
    log_backups: int = 5  # rotated files kept per log

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("max_body_bytes", self.max_body_bytes, 1024, 100_000_000)
        _in_range("ws_queue", self.ws_queue, 10, 1_000_000)
        _in_range("log_max_bytes", self.log_max_bytes, 10_000, 10_000_000_000)
        _in_range("log_backups", self.log_backups, 0, 1000)


class Settings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    symbol: str = "BTC-USD"
    capital: float = 10_000.0
    risk_tolerance: RiskTolerance = "moderate"
    mode: Literal["paper", "live"] = "paper"
    timeframe: Timeframe = "1h"
    grid: GridConfig = msgspec.field(default_factory=GridConfig)
    trailing: TrailingConfig = msgspec.field(default_factory=TrailingConfig)
    sizing: SizingConfig = msgspec.field(default_factory=SizingConfig)
    risk: RiskConfig = msgspec.field(default_factory=RiskConfig)
    fees: FeesConfig = msgspec.field(default_factory=FeesConfig)
    execution: ExecutionConfig = msgspec.field(default_factory=ExecutionConfig)
    agents: AgentsConfig = msgspec.field(default_factory=AgentsConfig)
    ai: AIConfig = msgspec.field(default_factory=AIConfig)
    coinbase: CoinbaseConfig = msgspec.field(default_factory=CoinbaseConfig)
    backtest: BacktestConfig = msgspec.field(default_factory=BacktestConfig)
    tui: TuiConfig = msgspec.field(default_factory=TuiConfig)
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    api: ApiConfig = msgspec.field(default_factory=ApiConfig)

    def __post_init__(self) -> None:
        if not _valid_symbol(self.symbol):
            raise ValueError(f"`symbol` must look like BASE-QUOTE (e.g. BTC-USD), got {self.symbol!r}")
        if not math.isfinite(self.capital) or self.capital <= 0:
            raise ValueError(f"`capital` must be a positive amount in the quote currency, got {self.capital}")

    @property
    def profile(self) -> RiskProfile:
        return RISK_PROFILES[self.risk_tolerance]

    def resolved(self) -> Settings:
        """Fill every profile-derived value left unset."""
        p = self.profile
        risk = self.risk
        max_dd = risk.max_drawdown if risk.max_drawdown is not None else p.max_drawdown
        max_conc = (
            risk.max_concurrent_trades
            if risk.max_concurrent_trades is not None
            else max(1, math.floor(round(max_dd / 0.05, 9)))
        )
        risk = msgspec.structs.replace(risk, max_drawdown=max_dd, max_concurrent_trades=max_conc)
        trailing = self.trailing
        if trailing.distance is None:
            trailing = msgspec.structs.replace(trailing, distance=p.trail_base)
        agents = self.agents
        if agents.min_confidence is None:
            agents = msgspec.structs.replace(agents, min_confidence=p.min_confidence)
        return msgspec.structs.replace(self, risk=risk, trailing=trailing, agents=agents)

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


def _valid_symbol(symbol: str) -> bool:
    parts = symbol.split("-")
    return len(parts) == 2 and all(p.isalnum() and p.isupper() and 2 <= len(p) <= 10 for p in parts)


# --- loading ------------------------------------------------------------------------------------

DEFAULT_CONFIG_NAME = "default.toml"

# Environment variables that are not config keys: never treated as overrides.
NON_CONFIG_ENV = frozenset(
    {
        "TRDR_CONFIG",
        "TRDR_DB",
        "TRDR_COINBASE_API_KEY",
        "TRDR_COINBASE_API_SECRET",
        "TRDR_COINBASE_KEY_FILE",
        "TRDR_ANTHROPIC_API_KEY",
        "TRDR_LOG_LEVEL",
    }
)
# Documented single-underscore names for nested keys.
ENV_ALIASES = {
    "TRDR_COINBASE_REST_URL": ("coinbase", "rest_url"),
    "TRDR_COINBASE_WS_URL": ("coinbase", "ws_url"),
    "TRDR_COINBASE_USER_WS_URL": ("coinbase", "user_ws_url"),
}


def xdg_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "trdr" / "config.toml"


def xdg_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "trdr"


def load_settings(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load, validate and resolve the configuration. Raises ConfigError with a precise message."""
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    shipped = "config/default.toml (shipped)"
    _deep_merge(merged, _parse_toml(read_bundled_text("config", DEFAULT_CONFIG_NAME), shipped), sources, shipped)

    user_path: Path | None = None
    if path is not None:
        user_path = Path(path)
        if not user_path.is_file():
            raise ConfigError(f"config file {user_path} does not exist", hint="check the --config path")
    elif env.get("TRDR_CONFIG"):
        user_path = Path(env["TRDR_CONFIG"])
        if not user_path.is_file():
            raise ConfigError(f"config file {user_path} (from TRDR_CONFIG) does not exist",
                              hint="fix or unset TRDR_CONFIG")
    elif xdg_config_path().is_file():
        user_path = xdg_config_path()

    if user_path is not None:
        try:
            text = user_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {user_path}: {exc.strerror}") from exc
        user = _parse_toml(text, str(user_path))
        _check_keys(user, str(user_path))
        _deep_merge(merged, user, sources, str(user_path))

    env_values = _env_overrides(env)
    if env_values:
        _check_keys(env_values, "environment (TRDR_*)")
        _deep_merge(merged, env_values, sources, "environment (TRDR_*)")

    if overrides:
        nested: dict[str, Any] = {}
        for dotted, value in overrides.items():
            _set_dotted(nested, dotted.split("."), value)
        _check_keys(nested, "command-line overrides (--set)")
        _deep_merge(merged, nested, sources, "command-line overrides (--set)")

    return convert_settings(merged, sources=sources)


def convert_settings(
    data: Mapping[str, Any], origin: str = "<settings>", *, sources: Mapping[str, str] | None = None
) -> Settings:
    """Validate a plain mapping into resolved Settings; `sources` maps dotted keys to where they came from."""
    _check_keys(data, origin)
    try:
        settings = msgspec.convert(data, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise _explain_validation(exc, origin, data, sources or {}) from None
    return settings.resolved()


def _parse_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=origin,
                          hint="check quoting and brackets on that line") from None


def _explain_validation(
    exc: msgspec.ValidationError, origin: str, data: Mapping[str, Any], sources: Mapping[str, str]
) -> ConfigError:
    text = str(exc)
    message, _, where = text.partition(" - at `$")
    key = where.rstrip("`").lstrip(".") if where else ""
    key = key.replace("[", ".").replace("]", "")
    named = re.match(r"`(\w+)`", message)  # range checks name their field first
    if named and not key.endswith(named.group(1)):
        key = f"{key}.{named.group(1)}" if key else named.group(1)
    value = _lookup(data, key.split(".")) if key else None
    shown = f" = {value!r}" if value is not None and not isinstance(value, Mapping) else ""
    label = f"key '{key}'{shown}" if key else "settings"
    hint = "use a value of the type and range shown; config/default.toml lists every key with its default"
    choices = _choices_for(key.split(".")) if key else None
    if choices:
        message = f"must be one of: {', '.join(choices)}"
        guess = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6) if isinstance(value, str) else []
        hint = f"did you mean '{guess[0]}'?" if guess else f"use one of: {', '.join(choices)}"
    return ConfigError(f"{label}: {message}", where=_source_of(key, sources, origin), hint=hint)


def _choices_for(parts: list[str], struct: type[msgspec.Struct] = Settings) -> tuple[str, ...] | None:
    """The allowed values of a Literal-typed key (e.g. risk_tolerance), for 'must be one of' messages."""
    fields = {f.name: f for f in msgspec.structs.fields(struct)}
    field = fields.get(parts[0])
    if field is None:
        return None
    if len(parts) > 1:
        sub = _struct_type(field.type)
        return _choices_for(parts[1:], sub) if sub is not None else None
    tp = field.type
    if get_origin(tp) is Literal:
        return tuple(str(a) for a in get_args(tp))
    return None


def _source_of(key: str, sources: Mapping[str, str], default: str) -> str:
    parts = key.split(".")
    while parts:
        found = sources.get(".".join(parts))
        if found:
            return found
        parts.pop()
    return default


def _lookup(data: Any, parts: list[str]) -> Any:
    for p in parts:
        if isinstance(data, Mapping) and p in data:
            data = data[p]
        elif isinstance(data, list) and p.isdigit() and int(p) < len(data):
            data = data[int(p)]
        else:
            return None
    return data


def _check_keys(data: Mapping[str, Any], origin: str, struct: type[msgspec.Struct] = Settings, prefix: str = "") -> None:
    """Refuse unknown keys with a 'did you mean' before msgspec sees them."""
    fields = {f.name: f for f in msgspec.structs.fields(struct)}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            section = f" [{prefix.rstrip('.')}]" if prefix else ""
            guess = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f"did you mean '{guess[0]}'?" if guess else f"known keys here: {', '.join(sorted(fields))}"
            raise ConfigError(f"unknown key '{key}'{section}", where=origin, hint=hint)
        sub = _struct_type(fields[key].type)
        if sub is not None and isinstance(value, Mapping):
            _check_keys(value, origin, sub, f"{dotted}.")


def _struct_type(tp: Any) -> type[msgspec.Struct] | None:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tp
    return None


def _deep_merge(
    base: dict[str, Any], extra: Mapping[str, Any], sources: dict[str, str], origin: str, prefix: str = ""
) -> None:
    for key, value in extra.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            target = base.setdefault(key, {})
            if isinstance(target, dict):
                _deep_merge(target, value, sources, origin, f"{dotted}.")
                continue
        base[key] = value
        sources[dotted] = origin


def _set_dotted(target: dict[str, Any], parts: list[str], value: Any) -> None:
    for p in parts[:-1]:
        target = target.setdefault(p, {})
    target[parts[-1]] = value


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """`TRDR_CAPITAL=500`, `TRDR_GRID__MIN_SPACING=0.008` (double underscore nests)."""
    out: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith("TRDR_") or name in NON_CONFIG_ENV:
            continue
        if name in ENV_ALIASES:
            parts = list(ENV_ALIASES[name])
        else:
            parts = [p.lower() for p in name[len("TRDR_"):].split("__")]
        _set_dotted(out, parts, parse_scalar(raw))
    return out


def parse_scalar(raw: str) -> Any:
    """A value as TOML would read it (numbers, booleans, arrays), else the plain string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
