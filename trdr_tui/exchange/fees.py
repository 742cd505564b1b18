"""Coinbase Advanced Trade fees: maker/taker rates by trailing 30-day USD volume.

The schedule comes from `Settings.fees` (the volume tiers; see config/default.toml). Who pays what:
market orders and triggered (trailing/stop) orders take liquidity and pay the taker rate; resting
post-only limit orders add liquidity and pay the maker rate. The tier is chosen from the 30-day
volume when one is known (`thirty_day_volume_usd` plus the volume a simulation has traded since),
else the configured tier name.
"""

from __future__ import annotations

from collections import deque

from trdr_tui.config import FeesConfig, FeeTier
from trdr_tui.core.clock import NS_PER_SECOND
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.types import Liquidity

THIRTY_DAYS_NS = 30 * 24 * 3600 * NS_PER_SECOND


class FeeSchedule:
    """Maker/taker rates by volume tier. Immutable once built."""

    def __init__(self, tiers: tuple[FeeTier, ...], default_tier: str) -> None:
        if not tiers:
            raise ConfigError("no fee tiers configured", where="[fees]",
                              hint="add [[fees.tiers]] entries (config/default.toml has the Coinbase table)")
        self.tiers = tuple(sorted(tiers, key=lambda t: t.usd_from))
        names = {t.name: t for t in self.tiers}
        if default_tier not in names:
            raise ConfigError(f"fee tier '{default_tier}' is not defined", where="[fees] tier",
                              hint="use one of: " + ", ".join(names))
        self.default = names[default_tier]

    @classmethod
    def from_config(cls, fees: FeesConfig) -> FeeSchedule:
        return cls(fees.tiers, fees.tier)

    @classmethod
    def flat(cls, taker: float, maker: float | None = None) -> FeeSchedule:
        """One tier for every volume (presets, tests)."""
        tier = FeeTier(name="flat", usd_from=0.0, maker=taker if maker is None else maker, taker=taker)
        return cls((tier,), "flat")

    def tier_for(self, volume_30d: float | None) -> FeeTier:
        """The tier for a 30-day USD volume; None → the configured default tier."""
        if volume_30d is None:
            return self.default
        chosen = self.tiers[0]
        for t in self.tiers:
            if volume_30d >= t.usd_from:
                chosen = t
        return chosen

    def rate(self, liquidity: Liquidity, volume_30d: float | None = None) -> float:
        tier = self.tier_for(volume_30d)
        return tier.taker if liquidity is Liquidity.TAKER else tier.maker


class VolumeTracker:
    """Trailing 30-day traded USD volume, from a starting figure plus the fills seen since."""

    def __init__(self, base_volume_usd: float = 0.0, window_ns: int = THIRTY_DAYS_NS) -> None:
        self.base = base_volume_usd
        self.window_ns = window_ns
        self._fills: deque[tuple[int, float]] = deque()
        self._sum = 0.0

    def add(self, ts: int, notional: float) -> None:
        self._fills.append((ts, notional))
        self._sum += notional

    def volume(self, now_ns: int) -> float:
        cutoff = now_ns - self.window_ns
        fills = self._fills
        while fills and fills[0][0] <= cutoff:
            self._sum -= fills.popleft()[1]
        return self.base + max(self._sum, 0.0)
