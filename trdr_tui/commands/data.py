"""`trdr data`: import candle files, list coverage, find gaps, resample, backfill from Coinbase.

    trdr data import FILE [--symbol BTC-USD] [--timeframe 1h] [--replace] [--resample 4h,1d] [--override-symbol]
    trdr data check FILE [--timeframe 1h]
    trdr data list [--symbol BTC-USD]
    trdr data gaps [--symbol BTC-USD] [--timeframe 1h]
    trdr data resample [--symbol BTC-USD] --from 1h --to 4h[,1d] [--partial] [--replace]
    trdr data backfill --symbol BTC-USD --timeframe 1h --start 2024-01-01 [--end 2024-02-01]
"""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from trdr_tui.commands.anywhere import path_arg
from trdr_tui.commands.context import CliContext
from trdr_tui.core.errors import DataError, NotAvailable
from trdr_tui.core.timefmt import minute_utc
from trdr_tui.core.timeframes import TIMEFRAME_SECONDS

if TYPE_CHECKING:
    from rich.console import Console

    from trdr_tui.core.timeframes import Gap
    from trdr_tui.market.importer import ParsedCandles

_SHOWN = 10  # gaps / outliers listed in an import report before "… and N more"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("data", help="import candle files, list coverage, find gaps, resample, backfill",
                       description="Manage the candle store.")
    def print_help(_ctx: CliContext) -> int:
        p.print_help()
        return 2

    p.set_defaults(handler=print_help)
    actions = p.add_subparsers(dest="data_command", metavar="ACTION")
    tf_names = list(TIMEFRAME_SECONDS)

    imp = actions.add_parser(
        "import", help="import a candle file (CSV or Coinbase JSON) into the store",
        description="Import a candle file. The format is detected: CryptoDataDownload and Bitfinex CSVs, any "
                    "CSV whose header names time/open/high/low/close(/volume) columns, Coinbase candle JSON. "
                    "The whole file is validated first; a bad file changes nothing.")
    imp.add_argument("file", type=path_arg, help="the candle file")
    imp.add_argument("--symbol", help="product to store it under, e.g. BTC-USD (default: the config's symbol)")
    imp.add_argument("--override-symbol", action="store_true",
                     help="store the file under --symbol even though the file names another symbol")
    imp.add_argument("--timeframe", choices=tf_names, help="bar length (default: inferred from the file)")
    imp.add_argument("--replace", action="store_true",
                     help="overwrite bars already stored with the file's values (default: keep stored bars)")
    imp.add_argument("--resample", metavar="TF[,TF]",
                     help="after importing, also build these higher timeframes, e.g. 4h,1d")
    imp.set_defaults(handler=run_import)

    chk = actions.add_parser("check", help="validate a candle file and report gaps and outliers; stores nothing")
    chk.add_argument("file", type=path_arg)
    chk.add_argument("--timeframe", choices=tf_names, help="bar length (default: inferred)")
    chk.set_defaults(handler=run_check)

    ls = actions.add_parser("list", help="show stored candles: symbol, timeframe, first, last, count, gaps")
    ls.add_argument("--symbol")
    ls.set_defaults(handler=run_list)

    gaps = actions.add_parser("gaps", help="list missing ranges in the stored candles")
    gaps.add_argument("--symbol")
    gaps.add_argument("--timeframe", choices=tf_names)
    gaps.set_defaults(handler=run_gaps)

    rs = actions.add_parser("resample", help="build higher-timeframe candles from stored ones (in DuckDB)")
    rs.add_argument("--symbol", help="default: the config's symbol")
    rs.add_argument("--from", dest="source", default="1h", choices=tf_names, help="source timeframe (default 1h)")
    rs.add_argument("--to", dest="targets", required=True, metavar="TF[,TF]", help="target timeframe(s), e.g. 4h,1d")
    rs.add_argument("--partial", action="store_true",
                    help="also build bars whose source bars are incomplete (default: skip them)")
    rs.add_argument("--replace", action="store_true", help="overwrite target bars already stored")
    rs.set_defaults(handler=run_resample)

    bf = actions.add_parser("backfill", help="download missing candles from Coinbase into the store")
    bf.add_argument("--symbol", help="default: the config's symbol")
    bf.add_argument("--timeframe", choices=tf_names, default="1h")
    bf.add_argument("--start", help="first bar, ISO date/time UTC (e.g. 2024-01-01)")
    bf.add_argument("--end", help="end (exclusive), ISO date/time UTC (default: now)")
    bf.set_defaults(handler=run_backfill)


# --- handlers -------------------------------------------------------------------------------------------


def run_import(ctx: CliContext) -> int:
    from trdr_tui.market.importer import import_candle_file

    _check_config(ctx)
    args = ctx.args
    symbol = _symbol(ctx)
    targets = _timeframes(args.resample) if args.resample else []
    report = import_candle_file(ctx.store, args.file, symbol, args.timeframe, replace=args.replace,
                                resample_to=targets, override_symbol=args.override_symbol)
    out = _console()
    parsed = report.parsed
    _print_parsed(out, "Imported", parsed, f"{symbol} {parsed.timeframe}")
    s = report.stored
    stored = f"{s.added:,} added · {s.already_present:,} already stored"
    if s.differing:
        stored += (f" ({s.differing:,} with different values: replaced)" if args.replace
                   else f" ({s.differing:,} with different values: kept the stored ones; --replace overwrites)")
    _row(out, "stored", stored)
    for w in report.warnings:
        _row(out, "note", w)
    for target, r in report.resampled:
        _row(out, f"→ {target}", f"{r.added:,} bars added, {r.already_present:,} already stored"
             + (f", {r.incomplete} incomplete skipped" if r.incomplete else ""))
    return 0


def run_check(ctx: CliContext) -> int:
    from trdr_tui.market.importer import read_candle_file

    _check_config(ctx)
    parsed = read_candle_file(ctx.args.file, ctx.args.timeframe)
    out = _console()
    _print_parsed(out, "Valid", parsed, parsed.timeframe)
    for w in parsed.warnings:
        _row(out, "note", w)
    _row(out, "stored", "nothing (check only)")
    return 0


def run_list(ctx: CliContext) -> int:
    from rich.table import Table

    from trdr_tui.store.candles import CandleRepository

    _check_config(ctx)
    rows = CandleRepository(ctx.store).coverage(symbol=ctx.args.symbol)
    out = _console()
    if not rows:
        out.print("No candles stored" + (f" for {ctx.args.symbol}" if ctx.args.symbol else "")
                  + ". Import some: trdr data import FILE --symbol BTC-USD --timeframe 1h")
        return 0
    table = Table(title=f"Candles in {ctx.db_path}", title_justify="left")
    for name, justify in (("symbol", "left"), ("timeframe", "left"), ("first (UTC)", "left"),
                          ("last (UTC)", "left"), ("count", "right"), ("gaps", "right")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for c in rows:
        gaps = "none" if c.gaps == 0 else f"{c.gaps:,} ({c.missing:,} bars)"
        table.add_row(c.symbol, c.timeframe, minute_utc(c.first), minute_utc(c.last), f"{c.count:,}", gaps)
    out.print(table)
    return 0


def run_gaps(ctx: CliContext) -> int:
    from trdr_tui.store.candles import CandleRepository

    _check_config(ctx)
    repo = CandleRepository(ctx.store)
    series = repo.coverage(symbol=ctx.args.symbol, timeframe=ctx.args.timeframe)
    out = _console()
    if not series:  # nothing stored is not a failure (as `data list`): nothing to check
        what = " ".join(x for x in (ctx.args.symbol, ctx.args.timeframe) if x)
        out.print("No candles stored" + (f" for {what}" if what else "") + ": no gaps to check. "
                  "Import some: trdr data import FILE --symbol BTC-USD --timeframe 1h")
        return 0
    for c in series:
        if c.gaps == 0:
            out.print(f"{c.symbol} {c.timeframe}: no gaps ({c.count:,} bars)")
            continue
        out.print(f"{c.symbol} {c.timeframe}: {c.gaps:,} gaps, {c.missing:,} bars missing")
        for g in repo.gaps(c.symbol, c.timeframe):
            out.print(f"  {_gap_text(g)}")
    return 0


def run_resample(ctx: CliContext) -> int:
    from trdr_tui.store.candles import CandleRepository

    _check_config(ctx)
    symbol = _symbol(ctx)
    repo = CandleRepository(ctx.store)
    out = _console()
    for target in _timeframes(ctx.args.targets):
        r = repo.resample(symbol, ctx.args.source, target, partial=ctx.args.partial, replace=ctx.args.replace)
        skipped = ""
        if r.incomplete:
            skipped = (f"; {r.incomplete} with missing source bars included" if ctx.args.partial
                       else f"; {r.incomplete} with missing source bars skipped (--partial includes them)")
        out.print(f"{symbol} {ctx.args.source} → {target}: {r.source_bars:,} bars into {r.buckets:,}: "
                  f"{r.added:,} added, {r.already_present:,} already stored{skipped}")
    return 0


def run_backfill(ctx: CliContext) -> int:
    _check_config(ctx)
    try:
        backfill = importlib.import_module("trdr_tui.commands.backfill")
    except ModuleNotFoundError as exc:
        if exc.name not in {"trdr_tui.commands.backfill", "trdr_tui.exchange.backfill", "trdr_tui.exchange"}:
            raise
        raise NotAvailable("'trdr data backfill' is not yet available in this version",
                           hint="import downloaded files with 'trdr data import FILE' meanwhile") from None
    return int(backfill.run(ctx) or 0)


# --- helpers ---------------------------------------------------------------------------------------------


def _check_config(ctx: CliContext) -> None:
    """Refuse to touch the store with an invalid configuration (raises ConfigError, exit 2)."""
    _ = ctx.settings


def _symbol(ctx: CliContext) -> str:
    symbol: str = ctx.args.symbol or ctx.settings.symbol
    if not re.fullmatch(r"[A-Z0-9]{2,10}-[A-Z0-9]{2,10}", symbol):
        raise DataError(f"symbol {symbol!r} is not a product id", hint="use BASE-QUOTE in capitals, e.g. BTC-USD")
    return symbol


def _timeframes(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        if name not in TIMEFRAME_SECONDS:
            raise DataError(f"unknown timeframe {name!r}", hint=f"use one of: {', '.join(TIMEFRAME_SECONDS)}")
    return names


def _console() -> Console:
    from trdr_tui.commands.output import command_console

    return command_console(highlight=False, soft_wrap=True)


def _row(out: Console, label: str, text: str) -> None:
    from rich.markup import escape

    out.print(f"  {label:<10} {escape(text)}")


def _gap_text(g: Gap) -> str:
    return f"{minute_utc(g.start)} → {minute_utc(g.end)}  ({g.missing:,} bars)"


def _print_parsed(out: Console, verb: str, parsed: ParsedCandles, stored_as: str) -> None:
    from rich.markup import escape

    from trdr_tui.market.importer import describe_outlier

    c = parsed.candles
    out.print(f"{verb} {escape(Path(parsed.path).name)}")
    _row(out, "format", parsed.format)
    _row(out, "as", stored_as)
    _row(out, "rows", f"{parsed.rows_read:,} read · {parsed.duplicates:,} duplicates dropped · {len(c):,} candles")
    _row(out, "span", f"{minute_utc(int(c.ts[0]))} → {minute_utc(int(c.ts[-1]))} UTC")
    if not parsed.gaps:
        _row(out, "gaps", "none")
    else:
        _row(out, "gaps", f"{len(parsed.gaps):,} ({parsed.missing_bars:,} bars missing)")
        for g in parsed.gaps[:_SHOWN]:
            _row(out, "", _gap_text(g))
        if len(parsed.gaps) > _SHOWN:
            _row(out, "", f"… and {len(parsed.gaps) - _SHOWN:,} more")
    if not parsed.outliers:
        _row(out, "outliers", "none")
    else:
        _row(out, "outliers", f"{len(parsed.outliers):,} (kept; check them)")
        for o in parsed.outliers[:_SHOWN]:
            _row(out, "", describe_outlier(o))
        if len(parsed.outliers) > _SHOWN:
            _row(out, "", f"… and {len(parsed.outliers) - _SHOWN:,} more")
