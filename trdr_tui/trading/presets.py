"""Named strategy presets: a policy (what to do each bar) plus the execution settings it needs.

`simple-trailing` is the yardstick for comparing trdr's accounting with other backtesting frameworks,
so everything about it is fixed and exact:

* flat → a trailing BUY armed at the bar's close; it tracks the lowest close since flat (starting at
  the first close, restarting at each exit's close) and fires when `close >= lowest × 1.02`, buying
  with 95 % of cash (quote-sized: units = 0.95 × cash / fill price);
* long → a trailing SELL of the whole position armed at the entry close; it tracks the highest close
  and fires when `close <= highest × 0.98`;
* the `close` price model (decide and fill on bar closes), at most one fill per bar (a new order is
  armed after the bar's trailing update, so it is first tested on the next bar), a 0.6 % taker fee
  charged on top of the notional, no slippage, no rounding to the exchange's increments, no minimum
  size, no risk caps. The ledger is exact, so sizes still live on a grid: a size step of 10⁻¹² BTC (a
  ten-thousandth of Coinbase's satoshi; the prices stay as computed, no tick). It keeps every position
  a decimal a float spells exactly (selling "the whole position" sells all of it) and moves a buy by
  under 10⁻⁸ USD.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from trdr_tui.config import PriceModel
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.types import Decision, Side
from trdr_tui.trading.policy import Policy, PolicyContext
from trdr_tui.trading.sizing import Increments


class SimpleTrailing:
    name = "simple-trailing"
    idle_only = True

    def __init__(self, trail: float = 0.02, buy_fraction: float = 0.95) -> None:
        self.trail = trail
        self.buy_fraction = buy_fraction

    def bind(self, ctx: PolicyContext) -> None:
        self.orders = ctx.orders
        self.portfolio = ctx.portfolio

    def on_bar(self, ts: int, close: float, decision: Decision | None) -> None:
        if self.orders.open:  # armed, or sent and waiting for the executor's reports
            return
        pf = self.portfolio
        if pf.position > 0.0:
            self.orders.place_trailing(Side.SELL, size=pf.position, trail=self.orders.tune_trail(Side.SELL, self.trail, close), price=close,
                                       reason="trail exit")
        else:
            self.orders.place_trailing(Side.BUY, quote=self.buy_fraction * pf.cash,
                                       trail=self.orders.tune_trail(Side.BUY, self.trail, close),
                                       price=close, reason="trail entry")

    def state(self) -> dict[str, object]:
        return {"trail": self.trail, "buy_fraction": self.buy_fraction}

    def restore(self, state: dict[str, object]) -> None:
        return None


class Preset(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str
    taker_fee: float
    maker_fee: float
    price_model: PriceModel
    slippage: bool
    risk_caps: bool
    max_duration: bool
    improvement: bool
    increments: Increments  # the steps its sizes and prices are on (exact ledger; not the exchange's)
    note: str = ""  # printed with its results: what its figures are (and are not)


SIMPLE_TRAILING = Preset(
    name="simple-trailing",
    description="2 % trailing entry and exit, 95 % of cash, 0.6 % taker fee, close prices, no caps",
    taker_fee=0.006, maker_fee=0.006, price_model="close", slippage=False, risk_caps=False,
    max_duration=False, improvement=False, increments=Increments(base=Decimal("1e-12"), price=Decimal(0)),
    note=("simple-trailing is the accounting yardstick for comparing trdr with other backtesting frameworks: "
          "no risk caps, no stop, 95 % of cash on every entry. It is not a strategy to trade; its losses "
          "say nothing about the configured strategy."),
)

PRESETS: dict[str, Preset] = {SIMPLE_TRAILING.name: SIMPLE_TRAILING}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}", hint="known presets: " + ", ".join(PRESETS)) from None


def make_policy(preset: Preset) -> Policy:
    if preset.name == SIMPLE_TRAILING.name:
        return SimpleTrailing()
    raise ConfigError(f"preset {preset.name!r} has no policy")  # pragma: no cover - table above is complete
