"""`trdr account`: check Coinbase credentials; show balances, fee tier and trading rules.

The first thing to run after creating a CDP API key: it proves the key works (every call is signed),
shows what the bot could trade with, the maker/taker rates the simulator should use, and the
product's increments and minimum sizes that every order is rounded to.
"""

from __future__ import annotations

import argparse
from decimal import Decimal

from trdr_tui.commands.context import CliContext
from trdr_tui.core import stop_signals


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "account", help="check Coinbase credentials; show balances, fee tier and trading rules",
        description="Check the Coinbase API key (TRDR_COINBASE_API_KEY/TRDR_COINBASE_API_SECRET or a CDP key "
                    "file) against the exchange and show balances, the fee tier and the product's trading rules.")
    p.add_argument("--symbol", help="product to show trading rules for (default: the configured symbol)")
    p.add_argument("--all", action="store_true", help="list zero balances too")
    p.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    from trdr_tui.exchange.credentials import require_credentials, verify_credentials

    settings = ctx.settings
    creds = require_credentials(settings)
    symbol = ctx.args.symbol or settings.symbol
    stop_signals.run(verify_credentials(creds, settings.coinbase.rest_url))  # a rejected key: the same error as a run's
    lines = stop_signals.run(_report(settings.coinbase.rest_url, creds, symbol, show_all=ctx.args.all))
    print("\n".join(lines))
    return 0


def _money(value: Decimal) -> str:
    text = format(value.normalize(), "f") if value else "0"
    return text


async def _report(rest_url: str, creds: object, symbol: str, *, show_all: bool) -> list[str]:
    from trdr_tui.exchange.coinbase_rest import CoinbaseRest
    from trdr_tui.exchange.credentials import Credentials

    assert isinstance(creds, Credentials)
    async with CoinbaseRest(rest_url, signer=creds.signer()) as rest:
        accounts = await rest.list_accounts()
        summary = await rest.transaction_summary()
        product = await rest.get_product(symbol)
    out = [f"Credentials OK: key {creds.key_name} ({creds.algorithm}, from {creds.source}) at {rest.host}", "",
           "Balances (available / on hold):"]
    shown = 0
    for a in sorted(accounts, key=lambda a: a.currency):
        hold = a.hold.value if a.hold else Decimal(0)
        if not show_all and a.available_balance.value == 0 and hold == 0:
            continue
        out.append(f"  {a.currency:<8} {_money(a.available_balance.value):>20} / {_money(hold)}")
        shown += 1
    if not shown:
        out.append("  (all balances are zero; --all lists every account)")
    tier = summary.fee_tier
    out += ["", f"Fee tier: {tier.pricing_tier or 'unknown'} (30-day volume {summary.total_volume})",
            f"  maker {_money(tier.maker_fee_rate * 100)} %   taker {_money(tier.taker_fee_rate * 100)} %",
            f"  to simulate with these rates: [fees] tier for this volume, or a [[fees.tiers]] entry with "
            f"maker = {tier.maker_fee_rate}, taker = {tier.taker_fee_rate}"]
    flags = [name for name in ("trading_disabled", "cancel_only", "limit_only", "post_only", "is_disabled")
             if getattr(product, name)]
    out += ["", f"Trading rules for {product.product_id} (status {product.status}{', ' + ', '.join(flags) if flags else ''}):",
            f"  size increment  {_money(product.base_increment)}   min {_money(product.base_min_size)}   "
            f"max {_money(product.base_max_size)}",
            f"  price increment {_money(product.tick)}",
            f"  order value     min {_money(product.quote_min_size)}   max {_money(product.quote_max_size)}"]
    return out
