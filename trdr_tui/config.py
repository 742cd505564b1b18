"""Configuration: msgspec structs loaded from TOML, with errors that say what, where and how to fix.

Layers, later wins: the shipped `config/default.toml` → the user's file (`--config`, else
`$XDG_CONFIG_HOME/trdr/config.toml` if it exists) → `TRDR_*` environment variables.

The minimal user file is three keys: `symbol`, `capital`, `risk_tolerance`.

Where each default lives (one place per value):

- every key's default is in the shipped `config/default.toml`; the structs below declare types and
  ranges only, so a key missing from that file is an error at load, never a silent second default;
- the values the risk profile derives (PRD §3.5) when the user leaves them out — `risk.max_drawdown`,
  `agents.min_confidence`, `trailing.distance`, and `risk.max_concurrent_trades` through
  `DRAWDOWN_PER_CONCURRENT_TRADE` — are in `RISK_PROFILES` below.

The merged layers decode into `SettingsInput` (profile values may be unset), and `resolve` turns that,
once, into `Settings`, the type every consumer reads: no optional numbers, nothing left to default.
Secrets are never part of the config: they come from the environment or a key file.
"""

from __future__ import annotations

import copy
import difflib
import functools
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
SpacingMethod = Literal["swing", "atr"]
Timeframe = Literal["1m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "1d"]
# Amounts beyond any retail account: a typo (or 1e308) would otherwise run and report nonsense.
MAX_CAPITAL = 1e9


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


def base_weight_problem(agent_id: str, weight: object, max_weight: float) -> str | None:
    """Why `weight` cannot be `agent_id`'s base weight, or None. The one rule for the config file, the
    control API (`PUT /api/agents/{id}/weight`) and the cockpit's `+`/`-`: a finite number from 0 (mutes the
    agent) to `[agents] max_weight` (the cap of the weight in force too, agents/performance.py)."""
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) \
            or not 0 <= weight <= max_weight:
        return f"weight for agent '{agent_id}' must be a number from 0 to {max_weight:g} ([agents] max_weight), " \
               f"got {weight!r}"
    return None


# --- risk profiles (PRD §3.5) -------------------------------------------------------------------


class RiskProfile(msgspec.Struct, frozen=True):
    max_drawdown: float
    min_confidence: float
    trail_base: float


RISK_PROFILES: dict[RiskTolerance, RiskProfile] = {
    "conservative": RiskProfile(max_drawdown=0.10, min_confidence=0.70, trail_base=0.02),
    "moderate": RiskProfile(max_drawdown=0.15, min_confidence=0.60, trail_base=0.015),
    "aggressive": RiskProfile(max_drawdown=0.25, min_confidence=0.50, trail_base=0.01),
}
DRAWDOWN_PER_CONCURRENT_TRADE = 0.05  # unset max_concurrent_trades = floor(max_drawdown / this), at least 1


# --- sections -----------------------------------------------------------------------------------


class GridConfig(_Section, frozen=True):
    auto_spacing: bool
    spacing_method: SpacingMethod
    spacing: float
    min_spacing: float
    max_spacing: float
    swing_lookback: int
    swing_fraction: float
    levels: int
    activation_distance: float
    fee_margin: float
    cost_multiple: float
    min_trip_profit: float
    trailing_exits: bool
    trend_fast_bars: int
    trend_slow_bars: int
    trend_band: float
    regime_exit: bool
    stop_buffer: float
    seed_inventory: bool
    rebuild_in_uptrend: bool
    atr_bars: int
    atr_multiple: float

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
        _in_range("fee_margin", self.fee_margin, 0.0, 0.5)
        _in_range("cost_multiple", self.cost_multiple, 1.0, 20.0)
        _in_range("min_trip_profit", self.min_trip_profit, 0.0, 1e9)
        _in_range("trend_fast_bars", self.trend_fast_bars, 1, 100_000)
        _in_range("trend_slow_bars", self.trend_slow_bars, 1, 100_000)
        if self.trend_fast_bars >= self.trend_slow_bars:
            raise ValueError(f"`trend_fast_bars` ({self.trend_fast_bars}) must be below `trend_slow_bars` "
                             f"({self.trend_slow_bars})")
        _in_range("trend_band", self.trend_band, 0.0, 0.5)
        _in_range("stop_buffer", self.stop_buffer, 0.0, 1.0)
        _in_range("atr_bars", self.atr_bars, 1, 10_000)
        _in_range("atr_multiple", self.atr_multiple, 0.1, 100.0)


class _TrailingShared(_Section, frozen=True):
    min_distance: float
    max_distance: float
    improvement_threshold: float
    max_duration_hours: float
    partial_fill_cancel: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("min_distance", self.min_distance, 0.0001, 0.5)
        _in_range("max_distance", self.max_distance, 0.0001, 0.5)
        _in_range("improvement_threshold", self.improvement_threshold, 0.0, 0.1)
        _in_range("max_duration_hours", self.max_duration_hours, 0.01, 24 * 365)
        _in_range("partial_fill_cancel", self.partial_fill_cancel, 0.0, 1.0)


class TrailingInput(_TrailingShared, frozen=True):
    """`[trailing]` as written: `distance` may be left out (the risk profile's trail base)."""

    distance: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("distance", self.distance, 0.0001, 0.5)


class TrailingConfig(_TrailingShared, frozen=True):
    """`[trailing]` resolved. Distances are fractions of price (0.015 = 1.5 %)."""

    distance: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("distance", self.distance, 0.0001, 0.5)


class SizingConfig(_Section, frozen=True):
    base_fraction: float
    kelly_safety: float
    kelly_lookback_days: float  # Kelly reads trades closed this recently (then they age out)
    kelly_min_trades: int  # and only once the window holds this many

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("base_fraction", self.base_fraction, 0.0001, 1.0)
        _in_range("kelly_safety", self.kelly_safety, 0.0, 1.0)
        _in_range("kelly_lookback_days", self.kelly_lookback_days, 1.0, 3650.0)
        _in_range("kelly_min_trades", self.kelly_min_trades, 1, 100_000)


class _RiskShared(_Section, frozen=True):
    daily_loss_limit: float
    stop_loss: float  # 0.0: no stop-loss
    max_position: float
    halt_cooloff_hours: float
    drawdown_scaling: bool

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("daily_loss_limit", self.daily_loss_limit, 0.001, 1.0)
        _in_range("stop_loss", self.stop_loss, 0.0, 1.0)
        _in_range("max_position", self.max_position, 0.001, 1.0)
        _in_range("halt_cooloff_hours", self.halt_cooloff_hours, 0.0, 1e6)


class RiskInput(_RiskShared, frozen=True):
    """`[risk]` as written: `max_drawdown` and `max_concurrent_trades` may be left out (risk profile)."""

    max_drawdown: float | None = None
    max_concurrent_trades: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("max_drawdown", self.max_drawdown, 0.001, 1.0)
        _in_range("max_concurrent_trades", self.max_concurrent_trades, 1, 1000)


class RiskConfig(_RiskShared, frozen=True):
    """`[risk]` resolved. Fractions of equity/capital; `max_concurrent_trades` counts open entries."""

    max_drawdown: float
    max_concurrent_trades: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("max_drawdown", self.max_drawdown, 0.001, 1.0)
        _in_range("max_concurrent_trades", self.max_concurrent_trades, 1, 1000)


class FeeTier(_Section, frozen=True):
    name: str
    usd_from: float
    maker: float
    taker: float
    usd_to: float | None = None  # None: no upper bound (the top tier)

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("maker", self.maker, 0.0, 0.05)
        _in_range("taker", self.taker, 0.0, 0.05)


class FeesConfig(_Section, frozen=True):
    tier: str
    thirty_day_volume_usd: float
    tiers: tuple[FeeTier, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("thirty_day_volume_usd", self.thirty_day_volume_usd, 0.0, MAX_CAPITAL * 1000)
        if self.tiers and self.tier not in {t.name for t in self.tiers}:
            names = ", ".join(t.name for t in self.tiers)
            raise ValueError(f"`tier` '{self.tier}' is not one of the tiers: {names}")

    def active_tier(self) -> FeeTier:
        for t in self.tiers:
            if t.name == self.tier:
                return t
        raise ConfigError(f"fee tier '{self.tier}' is not defined", hint="add it under [[fees.tiers]]")


class ExecutionConfig(_Section, frozen=True):
    price_model: PriceModel
    half_spread: float
    impact_coefficient: float
    max_volume_share: float
    smart_placement_spread: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("half_spread", self.half_spread, 0.0, 0.05)
        _in_range("impact_coefficient", self.impact_coefficient, 0.0, 10.0)
        _in_range("max_volume_share", self.max_volume_share, 0.0001, 1.0)
        _in_range("smart_placement_spread", self.smart_placement_spread, 0.0, 0.1)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_hhmm(text: str, name: str) -> int:
    """Minutes after midnight of an "HH:MM" time of day (00:00 … 24:00); ValueError naming `name` otherwise."""
    m = re.fullmatch(r"(\d{2}):(\d{2})", text)
    minutes = int(m.group(1)) * 60 + int(m.group(2)) if m else -1
    if m is None or int(m.group(2)) > 59 or not 0 <= minutes <= 24 * 60:
        raise ValueError(f"`{name}` must be a UTC time of day as \"HH:MM\" (00:00 … 24:00), got {text!r}")
    return minutes


def parse_utc(text: str, name: str) -> int:
    """ns since the epoch of an ISO 8601 date or date-time (no offset: UTC); ValueError naming `name`."""
    import datetime as dt  # the parser only: no clock is read here

    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"`{name}` must be an ISO 8601 date-time such as \"2019-06-30T00:00:00Z\", "
                         f"got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


class Blackout(_Section, frozen=True):
    """A UTC window with no new BUY orders: `start`–`end` ("HH:MM"; an end at or before the start runs
    past midnight), on `days` (mon … sun, the day the window starts; empty: every day)."""

    start: str
    end: str
    days: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        start, end = parse_hhmm(self.start, "start"), parse_hhmm(self.end, "end")
        if start == 24 * 60:
            raise ValueError("blackout `start` must be before 24:00")
        if start == end % (24 * 60) and not (start == 0 and end == 24 * 60):
            raise ValueError(f"blackout `start` and `end` are both {self.start}: give a window of some length "
                             "(a whole day is start = \"00:00\", end = \"24:00\")")
        for day in self.days:
            if day not in WEEKDAYS:
                raise ValueError(f"blackout day {day!r} is not one of {', '.join(WEEKDAYS)}")


class TimeConstraintsConfig(_Section, frozen=True):
    """PRD §3.3.1 time constraints (trading/constraints.py)."""

    limit_max_duration_hours: float  # a resting limit older than this is cancelled (re-placed by the policy); 0: never
    blackouts: tuple[Blackout, ...]
    expires_at: str  # ISO 8601 (UTC without an offset); after it no new BUYs; "": never

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("limit_max_duration_hours", self.limit_max_duration_hours, 0.0, 24 * 365)
        if self.expires_at:
            parse_utc(self.expires_at, "expires_at")


class FundingEvent(_Section, frozen=True):
    """A scheduled deposit (`amount` > 0) or withdrawal (< 0) of quote currency at `at` (ISO 8601, UTC)."""

    at: str
    amount: float

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_utc(self.at, "at")
        if self.amount == 0.0 or abs(self.amount) > MAX_CAPITAL:
            raise ValueError(f"funding `amount` must be a non-zero amount of quote currency up to {MAX_CAPITAL:g} "
                             f"(positive: deposit, negative: withdrawal), got {self.amount}")


class FundingConfig(_Section, frozen=True):
    """PRD §3.3.3 funding changes: scheduled in backtests and paper runs (trading/funding.py), read from
    the account in live runs (engine/coinbase.py `AccountWatch`)."""

    events: tuple[FundingEvent, ...]
    account_check_seconds: float  # live: how often the account's balances are read for deposits/withdrawals

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("account_check_seconds", self.account_check_seconds, 1.0, 86_400.0)


class SlippageConfig(_Section, frozen=True):
    """PRD §3.4 slippage minimizer for trailing orders (trading/slippage.py)."""

    enabled: bool
    volatility_bars: int  # σ of close-to-close returns over this many bars
    volatility_reference: float  # trail × (1 + σ / this)
    liquidity_bars: int  # liquidity score = last bar's volume / the average of this many, capped at 1
    cluster_zone: float  # a trigger this close to a round number or swing is moved …
    cluster_shift: float  # … to this far beyond it, on its own side
    swing_bars: int  # swing highs/lows of this many recent bars are stop clusters
    high_volatility_hours: tuple[int, ...]  # UTC hours with wider trails
    high_volatility_widen: float  # the trail is multiplied by this in those hours

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("volatility_bars", self.volatility_bars, 2, 10_000)
        _in_range("volatility_reference", self.volatility_reference, 0.0001, 1.0)
        _in_range("liquidity_bars", self.liquidity_bars, 1, 10_000)
        _in_range("cluster_zone", self.cluster_zone, 0.0, 0.1)
        _in_range("cluster_shift", self.cluster_shift, 0.0, 0.1)
        _in_range("swing_bars", self.swing_bars, 3, 10_000)
        _in_range("high_volatility_widen", self.high_volatility_widen, 1.0, 10.0)
        for h in self.high_volatility_hours:
            _in_range("high_volatility_hours", h, 0, 23)


class _AgentsShared(_Section, frozen=True):
    enabled: tuple[str, ...]
    weights: dict[str, float]
    reference_symbol: str  # the correlation agent's reference product, e.g. ETH-USD (≠ symbol)
    rl_policy: str  # the rl agent's Q-table: a parameter version (id, name or tag) from `trdr train rl`; "" = none
    decision_source: str  # "panel" or "ensemble" (agents/ensemble.py)
    ensemble_model: str  # the ensemble's weights: a parameter version from `trdr train ensemble`; "" = none
    timeout_seconds: float
    disagreement_threshold: float
    adaptive_weights: bool
    min_weight: float
    max_weight: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("timeout_seconds", self.timeout_seconds, 0.01, 120.0)
        _in_range("disagreement_threshold", self.disagreement_threshold, 0.0, 1.0)
        _in_range("min_weight", self.min_weight, 0.0, 100.0)
        _in_range("max_weight", self.max_weight, 0.0, 100.0)
        if not _valid_symbol(self.reference_symbol):
            raise ValueError(f"`reference_symbol` must look like BASE-QUOTE (e.g. ETH-USD), got {self.reference_symbol!r}")
        if self.min_weight > self.max_weight:
            raise ValueError("`min_weight` must not exceed `max_weight`")
        if self.decision_source not in ("panel", "ensemble"):
            raise ValueError(f"`decision_source` must be 'panel' or 'ensemble', got {self.decision_source!r}")
        if self.decision_source == "ensemble" and not self.ensemble_model:
            raise ValueError("`decision_source = \"ensemble\"` needs `ensemble_model` (fit one: trdr train ensemble)")
        for agent_id, w in self.weights.items():
            problem = base_weight_problem(agent_id, w, self.max_weight)
            if problem is not None:
                raise ValueError(problem)


class AgentsInput(_AgentsShared, frozen=True):
    """`[agents]` as written: `min_confidence` may be left out (the risk profile's)."""

    min_confidence: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("min_confidence", self.min_confidence, 0.0, 1.0)


class AgentsConfig(_AgentsShared, frozen=True):
    """`[agents]` resolved. `min_confidence` (0–1) gates directional decisions; 0.0 gates nothing."""

    min_confidence: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("min_confidence", self.min_confidence, 0.0, 1.0)


class ModelPrice(_Section, frozen=True):
    """USD per million tokens (Anthropic's price list)."""

    input: float
    output: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("input", self.input, 0.0, 1000.0)
        _in_range("output", self.output, 0.0, 1000.0)


AIMode = Literal["off", "cache", "live"]


class AIConfig(_Section, frozen=True):
    """`[ai]`: Claude for the `ai_pattern` agent and the meta-resolver (docs/ai.md). No key here:
    `ANTHROPIC_API_KEY` or a 0600 `key_file`."""

    model: str
    max_calls_per_hour: int
    daily_budget_usd: float  # USD per UTC day; critical calls may exceed it
    timeout_seconds: float  # one request
    max_tokens: int
    meta_resolver: bool  # Claude resolves split panels (falls back to the rule-based resolver)
    backtest: AIMode  # off | cache (cached answers only) | live; `trdr backtest --ai` overrides
    prices: dict[str, ModelPrice]  # model → USD per million tokens
    base_url: str | None = None  # None: the SDK's own endpoint
    key_file: str | None = None  # None: the key comes from ANTHROPIC_API_KEY only

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("max_calls_per_hour", self.max_calls_per_hour, 0, 100_000)
        _in_range("daily_budget_usd", self.daily_budget_usd, 0.0, 100_000.0)
        _in_range("timeout_seconds", self.timeout_seconds, 1.0, 600.0)
        _in_range("max_tokens", self.max_tokens, 64, 8192)


class CoinbaseConfig(_Section, frozen=True):
    rest_url: str
    ws_url: str
    user_ws_url: str
    key_file: str | None = None  # None: no key file (credentials from the environment, or none)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("rest_url", "ws_url", "user_ws_url"):
            value = getattr(self, name)
            scheme = value.split("://", 1)[0] if "://" in value else ""
            allowed = ("http", "https") if name == "rest_url" else ("ws", "wss")
            if scheme not in allowed:
                raise ValueError(f"`{name}` must start with {' or '.join(s + '://' for s in allowed)}, got {value!r}")


class BacktestConfig(_Section, frozen=True):
    seed: int
    warmup_bars: int
    batch_size: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("warmup_bars", self.warmup_bars, 0, 100_000)
        _in_range("batch_size", self.batch_size, 1, 10_000_000)


# The cockpit's actions `[tui.keys]` may rebind (the ids of its bindings) → their default keys; a test keeps
# both equal to the cockpit's bindings.
KEY_ACTIONS: dict[str, str] = {
    "pause": "space", "switch_mode": "m", "backtest": "b", "weight_up": "plus", "weight_down": "minus",
    "next_pane": "tab", "previous_pane": "shift+tab", "pane_right": "right", "pane_left": "left", "log_level": "l",
    "log_filter": "slash", "export_chart": "e", "inspector": "i", "help": "question_mark", "quit": "q",
    "cycle_theme": "t", "command_palette": "ctrl+p", "funding": "f", "tuning": "u",
}


def key_conflicts(keys: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(key, action, other action) for every key two cockpit actions would share once `keys` (action →
    "key[,key…]") is laid over the defaults (KEY_ACTIONS)."""
    owner: dict[str, str] = {}
    out: list[tuple[str, str, str]] = []
    for action, default in KEY_ACTIONS.items():
        for key in (k.strip() for k in keys.get(action, default).split(",") if k.strip()):
            if key in owner and owner[key] != action:
                out.append((key, owner[key], action))
            owner.setdefault(key, action)
    return out


class TuiConfig(_Section, frozen=True):
    theme: str
    keys: dict[str, str]  # action (KEY_ACTIONS) → key(s), e.g. pause = "p"; checked when the config loads
    refresh_hz: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("refresh_hz", self.refresh_hz, 0.5, 120.0)
        for conflict in key_conflicts(self.keys):  # the merged sources (each source alone: _check_key_actions)
            what, hint = _key_conflict_text(*conflict)
            raise ValueError(f"{what}; {hint}")


class StoreConfig(_Section, frozen=True):
    checkpoint_interval_seconds: float
    # paper/live journal (docs/trading.md, "Persistence in paper and live")
    journal_fsync: Literal["always", "batch", "never"]
    flush_interval_seconds: float  # the writer thread's batches: (0, 1] s
    db_checkpoint_seconds: float  # DuckDB CHECKPOINT cadence, then the journal is emptied
    path: str | None = None  # None: `--db`, $TRDR_DB, else $XDG_DATA_HOME/trdr/trdr.duckdb

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.flush_interval_seconds <= 1.0:
            raise ValueError(f"`store.flush_interval_seconds` must be in (0, 1], got {self.flush_interval_seconds}")
        if not self.db_checkpoint_seconds > 0.0:
            raise ValueError(f"`store.db_checkpoint_seconds` must be above 0, got {self.db_checkpoint_seconds}")


class ApiConfig(_Section, frozen=True):
    """The control API and metrics (`trdr --api`, docs/operations.md)."""

    listen: str  # HOST:PORT (port 0: a free one); a non-loopback host needs --api-allow-remote
    max_body_bytes: int  # larger request bodies are refused (413)
    ws_queue: int  # events buffered per WebSocket client before the oldest are dropped
    log_max_bytes: int  # a log file rotates at this size
    log_backups: int  # rotated files kept per log
    token_file: str | None = None  # None: `api-token` beside the database (created 0600 on first start)
    webhook_url: str | None = None  # alerts (fills, risk halts, errors, feed outages) are POSTed here

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("max_body_bytes", self.max_body_bytes, 1024, 100_000_000)
        _in_range("ws_queue", self.ws_queue, 10, 1_000_000)
        _in_range("log_max_bytes", self.log_max_bytes, 10_000, 10_000_000_000)
        _in_range("log_backups", self.log_backups, 0, 1000)
        if self.webhook_url is not None and not self.webhook_url.startswith(("https://", "http://")):
            raise ValueError("`webhook_url` must be an http(s) URL, e.g. https://hooks.slack.com/services/...")


# The keys a running engine can take without a restart (tuning/apply.py): the daily loop searches these
# and the adaptive values (PRD §3.5 AdaptiveParameters) move them.
LIVE_TUNABLE = ("grid.swing_fraction", "trailing.distance", "risk.max_position", "agents.min_confidence")


class TuningConfig(_Section, frozen=True):
    """Self-tuning in paper and live (PRD §3.5, docs/tuning.md): adaptive values and the daily loop."""

    learning_rate: float  # PRD: 0.1; a step of the adaptive values, and the daily blend toward the winner
    adaptive: bool  # adaptive values follow the outcomes of closed round trips
    adaptive_window: int  # outcomes kept per value (the success rate is over these)
    adaptive_min_outcomes: int  # outcomes before a value moves
    adaptive_keys: list[str]  # which of LIVE_TUNABLE adapt
    daily: bool  # the daily re-optimization in a worker process
    daily_interval_hours: float  # clock time between runs
    daily_lookback_days: float  # stored candles the worker optimizes on
    daily_holdout_fraction: float  # the last share of those bars: the out-of-sample comparison
    daily_trials: int  # Optuna trials per run
    daily_folds: int  # walk-forward folds of the training part
    daily_margin: float  # the winner must beat the current version out of sample by this (return, fraction)
    daily_genes: list[str]  # which of LIVE_TUNABLE the daily loop searches

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("learning_rate", self.learning_rate, 0.0001, 1.0)
        _in_range("adaptive_window", self.adaptive_window, 1, 10_000)
        _in_range("adaptive_min_outcomes", self.adaptive_min_outcomes, 1, 10_000)
        _in_range("daily_interval_hours", self.daily_interval_hours, 0.01, 24.0 * 365)
        _in_range("daily_lookback_days", self.daily_lookback_days, 1.0, 3650.0)
        _in_range("daily_holdout_fraction", self.daily_holdout_fraction, 0.05, 0.8)
        _in_range("daily_trials", self.daily_trials, 1, 10_000)
        _in_range("daily_folds", self.daily_folds, 1, 20)
        _in_range("daily_margin", self.daily_margin, 0.0, 1.0)
        for name in ("adaptive_keys", "daily_genes"):
            for key in getattr(self, name):
                if key not in LIVE_TUNABLE:
                    raise ValueError(f"`{name}` names {key!r}, which a running engine cannot take; "
                                     f"use some of: {', '.join(LIVE_TUNABLE)}")
        if not self.daily_genes:
            raise ValueError("`daily_genes` is empty: name at least one key, or set `daily = false`")


class _SettingsShared(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    symbol: str
    capital: float
    risk_tolerance: RiskTolerance
    mode: Literal["paper", "live"]
    timeframe: Timeframe
    grid: GridConfig
    sizing: SizingConfig
    fees: FeesConfig
    execution: ExecutionConfig
    ai: AIConfig
    coinbase: CoinbaseConfig
    backtest: BacktestConfig
    tui: TuiConfig
    store: StoreConfig
    api: ApiConfig
    time_constraints: TimeConstraintsConfig
    funding: FundingConfig
    slippage: SlippageConfig
    tuning: TuningConfig

    def __post_init__(self) -> None:
        if not _valid_symbol(self.symbol):
            raise ValueError(f"`symbol` must look like BASE-QUOTE (e.g. BTC-USD), got {self.symbol!r}")
        if not math.isfinite(self.capital) or self.capital <= 0:
            raise ValueError(f"`capital` must be a positive amount in the quote currency, got {self.capital}")
        _in_range("capital", self.capital, 0.0, MAX_CAPITAL)

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins (nested dicts, lists), as `convert_settings` accepts them back."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out


class SettingsInput(_SettingsShared, frozen=True):
    """The merged configuration as written (shipped defaults, user file, environment, overrides),
    validated but not resolved: the risk-profile values may still be unset. Only `resolve` reads it."""

    trailing: TrailingInput
    risk: RiskInput
    agents: AgentsInput

    def __post_init__(self) -> None:
        super().__post_init__()
        if "correlation" in self.agents.enabled and self.agents.reference_symbol == self.symbol:
            raise ValueError(f"`[agents] reference_symbol` is {self.symbol}, the traded symbol itself: the "
                             f"correlation agent needs another product (e.g. ETH-USD); set reference_symbol "
                             f"or remove \"correlation\" from [agents] enabled")


class Settings(_SettingsShared, frozen=True):
    """The resolved configuration every consumer reads: no value is left to derive or default.

    Built only by `resolve` (via `load_settings` / `convert_settings`). The only optional fields
    left are absences with a meaning of their own: `store.path`, `coinbase.key_file`, `ai.base_url`,
    `ai.key_file` and the top fee tier's `usd_to`.
    """

    trailing: TrailingConfig
    risk: RiskConfig
    agents: AgentsConfig


def resolve(raw: SettingsInput) -> Settings:
    """Fill every value the risk profile derives (PRD §3.5), once; a value that is set, 0.0 included, stays.

    - `risk.max_drawdown`, `agents.min_confidence`, `trailing.distance`: the profile's (RISK_PROFILES);
    - `risk.max_concurrent_trades`: floor(max_drawdown / DRAWDOWN_PER_CONCURRENT_TRADE), at least 1.
    """
    p = RISK_PROFILES[raw.risk_tolerance]
    r = raw.risk
    max_dd = p.max_drawdown if r.max_drawdown is None else r.max_drawdown
    max_conc = max(1, math.floor(round(max_dd / DRAWDOWN_PER_CONCURRENT_TRADE, 9))) \
        if r.max_concurrent_trades is None else r.max_concurrent_trades
    t = raw.trailing
    a = raw.agents
    fields = msgspec.structs.asdict(raw)
    fields["risk"] = RiskConfig(**{**msgspec.structs.asdict(r), "max_drawdown": max_dd,
                                   "max_concurrent_trades": max_conc})
    fields["trailing"] = TrailingConfig(**{**msgspec.structs.asdict(t),
                                           "distance": p.trail_base if t.distance is None else t.distance})
    fields["agents"] = AgentsConfig(**{**msgspec.structs.asdict(a), "min_confidence":
                                       p.min_confidence if a.min_confidence is None else a.min_confidence})
    return Settings(**fields)


def _valid_symbol(symbol: str) -> bool:
    parts = symbol.split("-")
    return len(parts) == 2 and all(p.isalnum() and p.isupper() and 2 <= len(p) <= 10 for p in parts)


# --- loading ------------------------------------------------------------------------------------

DEFAULT_CONFIG_NAME = "default.toml"
SHIPPED = "config/default.toml (shipped)"

# Environment variables that are not config keys: never treated as overrides.
NON_CONFIG_ENV = frozenset(
    {
        "TRDR_CONFIG",
        "TRDR_DB",
        "TRDR_COINBASE_API_KEY",
        "TRDR_COINBASE_API_SECRET",
        "TRDR_COINBASE_KEY_FILE",
        "TRDR_ANTHROPIC_API_KEY",
        "TRDR_API_TOKEN",
        "TRDR_LOG_LEVEL",
    }
)
ENV_SOURCE = "environment variable "
"""How a value from a `TRDR_*` variable is named in errors: `environment variable TRDR_CAPITAL`."""
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
    _deep_merge(merged, _shipped_defaults(), sources, SHIPPED)

    user_path: Path | None = None
    if path is not None:
        user_path = Path(path)
        if user_path.is_dir():
            raise ConfigError(f"config file {user_path} is a directory",
                              hint=f"pass --config a TOML file, e.g. {user_path / 'config.toml'}")
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
        except UnicodeDecodeError as exc:
            line = user_path.read_bytes()[:exc.start].count(b"\n") + 1
            raise ConfigError(f"config file {user_path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} "
                              f"on line {line})", hint="save the file as UTF-8 (TOML files are UTF-8)") from None
        user = _parse_toml(text, str(user_path))
        _check_keys(user, str(user_path))
        _deep_merge(merged, user, sources, str(user_path))

    for name, values in _env_overrides(env):  # each named in errors: "environment variable TRDR_CAPITAL"
        _check_keys(values, f"{ENV_SOURCE}{name}")
        _deep_merge(merged, values, sources, f"{ENV_SOURCE}{name}")

    if overrides:
        nested: dict[str, Any] = {}
        for dotted, value in overrides.items():
            _set_dotted(nested, dotted.split("."), value)
        _check_keys(nested, "command-line overrides (--set)")
        _deep_merge(merged, nested, sources, "command-line overrides (--set)")

    return _convert(merged, "<settings>", sources)


def convert_settings(
    data: Mapping[str, Any], origin: str = "<settings>", *, sources: Mapping[str, str] | None = None
) -> Settings:
    """Validate a plain mapping, layered over the shipped defaults, into resolved Settings.

    `data` is nested like the TOML (`{"grid": {"levels": 12}}`); `sources` maps dotted keys to where
    they came from, for error messages (else `origin`). Raises ConfigError naming the key and the fix.
    """
    _check_keys(data, origin)
    merged = _shipped_defaults()
    _deep_merge(merged, data, {}, origin)
    return _convert(merged, origin, sources or {})


def _convert(merged: Mapping[str, Any], origin: str, sources: Mapping[str, str]) -> Settings:
    try:
        raw = msgspec.convert(merged, SettingsInput, strict=False)
    except msgspec.ValidationError as exc:
        raise _explain_validation(exc, origin, merged, sources) from None
    return resolve(raw)


def _shipped_defaults() -> dict[str, Any]:
    """A fresh (mutable) copy of the parsed `config/default.toml`."""
    return copy.deepcopy(_parse_shipped())


@functools.cache
def _parse_shipped() -> dict[str, Any]:
    return _parse_toml(read_bundled_text("config", DEFAULT_CONFIG_NAME), SHIPPED)


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
    where = _source_of(key, sources, origin)
    if where.startswith(ENV_SOURCE):
        hint = f"{hint} (or unset {where[len(ENV_SOURCE):]})"
    return ConfigError(f"{label}: {message}", where=where, hint=hint)


def _choices_for(parts: list[str], struct: type[msgspec.Struct] = SettingsInput) -> tuple[str, ...] | None:
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


def _check_keys(data: Mapping[str, Any], origin: str, struct: type[msgspec.Struct] = SettingsInput, prefix: str = "") -> None:
    """Refuse unknown keys with a 'did you mean' before msgspec sees them."""
    fields = {f.name: f for f in msgspec.structs.fields(struct)}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            section = f" [{prefix.rstrip('.')}]" if prefix else ""
            guess = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f"did you mean '{guess[0]}'?" if guess else f"known keys here: {', '.join(sorted(fields))}"
            if origin.startswith(ENV_SOURCE):
                hint = f"{hint} (or unset {origin[len(ENV_SOURCE):]})"
            raise ConfigError(f"unknown key '{key}'{section}", where=origin, hint=hint)
        sub = _struct_type(fields[key].type)
        if sub is not None and isinstance(value, Mapping):
            _check_keys(value, origin, sub, f"{dotted}.")
        elif dotted == "tui.keys" and isinstance(value, Mapping):
            _check_key_actions(value, origin)


def _check_key_actions(keys: Mapping[str, Any], origin: str) -> None:
    """Refuse a `[tui.keys]` entry naming no cockpit action, binding no key, or taking a key another
    action has (`key_conflicts`), for every command."""
    for action, key in keys.items():
        if action not in KEY_ACTIONS:
            guess = difflib.get_close_matches(action, KEY_ACTIONS, n=1, cutoff=0.6)
            hint = (f"did you mean '{guess[0]}'? " if guess else "") + f"actions: {', '.join(KEY_ACTIONS)}"
            raise ConfigError(f"unknown action '{action}' in [tui.keys]", where=origin, hint=hint)
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(f"no key for action '{action}' in [tui.keys]", where=origin,
                              hint='give the key as a string, e.g. pause = "p" (several: "p,ctrl+p")')
    for conflict in key_conflicts(keys):
        what, hint = _key_conflict_text(*conflict)
        raise ConfigError(what, where=origin, hint=hint)


def _key_conflict_text(key: str, first: str, second: str) -> tuple[str, str]:
    return (f"key '{key}' is bound to two actions in [tui.keys]: '{first}' and '{second}'",
            f"give one of them another key (the defaults: {first} = \"{KEY_ACTIONS[first]}\", "
            f"{second} = \"{KEY_ACTIONS[second]}\")")


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


def _env_overrides(env: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """(variable, nested value) per override: `TRDR_CAPITAL=500` → ("TRDR_CAPITAL", {"capital": 500}),
    `TRDR_GRID__MIN_SPACING=0.008` (double underscore nests)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name, raw in sorted(env.items()):
        if not name.startswith("TRDR_") or name in NON_CONFIG_ENV:
            continue
        if name in ENV_ALIASES:
            parts = list(ENV_ALIASES[name])
        else:
            parts = [p.lower() for p in name[len("TRDR_"):].split("__")]
        nested: dict[str, Any] = {}
        _set_dotted(nested, parts, parse_scalar(raw))
        out.append((name, nested))
    return out


def parse_scalar(raw: str) -> Any:
    """A value as TOML would read it (numbers, booleans, arrays), else the plain string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
