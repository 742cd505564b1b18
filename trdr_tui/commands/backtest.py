"""`trdr backtest`: run a backtest through the engine on stored or file data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trdr_tui.commands.anywhere import path_arg
from trdr_tui.commands.context import CliContext
from trdr_tui.core.errors import ConfigError, StorageError

DESCRIPTION = """\
Replay candles through the same engine paper and live trading use (simulated clock, replay feed,
simulated executor with real fees), then report the full statistics next to two baselines on the
same bars: buy-and-hold and a classic fixed grid. Every run is stored as a session.

Data: stored candles (--symbol/--timeframe/--start/--end) or a file (--data FILE).
Parameters: the config, then a saved version (--params), then --set overrides; or a preset.
"""

EPILOG = """\
examples:
  trdr backtest --data btc_1h.csv --preset simple-trailing --json
  trdr backtest --symbol BTC-USD --timeframe 1h --start 2018-01-01 --end 2019-01-01
  trdr backtest --params tight-grid --set grid.swing_fraction=0.7 --report out.html
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("backtest", help="run a backtest through the engine on stored or file data",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("data")
    src.add_argument("--data", dest="bt_data", type=path_arg, metavar="FILE",
                     help="candle file (CSV or Coinbase JSON), imported on the fly into a throwaway store")
    src.add_argument("--symbol", help="symbol (default: the config's)")
    src.add_argument("--timeframe", help="timeframe of stored candles (default: the config's; inferred for --data)")
    src.add_argument("--start", help="first bar, UTC (YYYY-MM-DD[THH:MM]); inclusive")
    src.add_argument("--end", help="end, UTC (YYYY-MM-DD[THH:MM]); exclusive")
    par = p.add_argument_group("parameters")
    par.add_argument("--params", metavar="NAME|ID|TAG", help="a saved parameter version (see 'trdr params')")
    par.add_argument("--preset", metavar="NAME", help="a named strategy preset, e.g. simple-trailing")
    par.add_argument("--ai", dest="ai_mode", choices=("off", "cache", "live"),
                     help="Claude (the ai_pattern agent, the AI meta-resolver): off, cache (cached answers only; "
                          "uncached bars HOLD with reason 'not cached') or live (asks and caches, within the "
                          "budget). Default: [ai] backtest (cache)")
    par.add_argument("--set", dest="set_items", action="append", metavar="KEY=VALUE",
                     help="override one setting, e.g. --set grid.swing_fraction=0.7 (repeatable)")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print one JSON object (stable keys) and nothing else")
    out.add_argument("--report", type=path_arg, metavar="FILE.html|FILE.md", help="write a report")
    out.add_argument("--name", help="session name")
    out.add_argument("--description", help="session description")
    out.add_argument("--monte-carlo", dest="mc_paths", type=int, default=None, metavar="PATHS",
                     help="bootstrap paths for Monte Carlo (default 10000; 0 = skip)")
    out.add_argument("--save-params", metavar="NAME",
                     help="also save this run's parameters as a version, with this result attached")
    out.add_argument("--no-session", action="store_true", help="do not store the run as a session")
    wf = p.add_argument_group("walk-forward")
    wf.add_argument("--walk-forward", dest="wf_spec", metavar="TRAIN:TEST[:STEP]",
                    help="also run a walk-forward analysis; windows in bars or durations, e.g. 120d:30d")
    wf.add_argument("--search", dest="wf_search", action="append", metavar="KEY=V1,V2,...",
                    help="a setting the optimizer may vary (repeatable; default: grid.swing_fraction and "
                         "risk.max_position)")
    wf.add_argument("--objective", default="sharpe", choices=["sharpe", "total_return", "calmar", "sortino"],
                    help="what the optimizer maximizes on each training window (default sharpe)")
    p.set_defaults(handler=run)


def build_settings(ctx: CliContext, extra: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """Settings from config ← parameter version ← --set ← flags; returns (settings, version or None)."""
    from trdr_tui.backtest.params import ParameterVersions, parse_assignments
    from trdr_tui.config import load_settings
    from trdr_tui.store.sessions import ParameterRepository, SessionRepository

    args = ctx.args
    overrides: dict[str, Any] = {}
    version = None
    if getattr(args, "params", None):
        pv = ParameterVersions(ParameterRepository(ctx.store), SessionRepository(ctx.store))
        version = pv.load(args.params)
        overrides.update({k: v for k, v in version.parameters.items() if k != "fees.tier"})
        if "fees.tier" in version.parameters:
            overrides["fees.tier"] = version.parameters["fees.tier"]
    overrides.update(parse_assignments(getattr(args, "set_items", None)))
    overrides.update(extra or {})
    return load_settings(args.config, overrides=overrides or None), version


def run(ctx: CliContext) -> int:
    from trdr_tui.backtest import data as bt_data
    from trdr_tui.backtest.params import ParameterVersions, strategy_parameters
    from trdr_tui.backtest.report import write_report
    from trdr_tui.backtest.runner import run_backtest, summary
    from trdr_tui.backtest.sessions import ended_on_error, start_session
    from trdr_tui.core.clock import WallClock, ns_to_seconds
    from trdr_tui.store.sessions import ParameterRepository, SessionRepository
    from trdr_tui.trading.presets import get_preset

    args = ctx.args
    if args.preset:
        get_preset(args.preset)  # unknown names fail before any work
    if args.report is not None and args.report.suffix.lower() not in (".html", ".htm", ".md", ".markdown"):
        raise ConfigError(f"cannot tell the report format of {args.report}", hint="name it FILE.html or FILE.md")
    if args.report is not None:  # checked before the run stores anything
        check_writable(args.report)
    if args.mc_paths is not None and args.mc_paths < 0:
        raise ConfigError("--monte-carlo must be ≥ 0")
    start = bt_data.parse_time(args.start, "--start")
    end = bt_data.parse_time(args.end, "--end")
    if start is not None and end is not None and end <= start:
        raise ConfigError("--end must be after --start")
    extra: dict[str, Any] = {}
    if args.ai_mode:
        extra["ai.backtest"] = args.ai_mode
    if args.symbol:
        extra["symbol"] = args.symbol
    if args.bt_data is not None:
        build_settings(ctx, extra)  # a bad config or version is refused before the file is read
        candles, timeframe = bt_data.load_file(args.bt_data, symbol=args.symbol or "BTC-USD",
                                               timeframe=args.timeframe, start=start, end=end)
        extra["timeframe"] = timeframe
        settings, version = build_settings(ctx, extra)
    else:
        if args.timeframe:
            extra["timeframe"] = args.timeframe
        settings, version = build_settings(ctx, extra)
        timeframe = settings.timeframe
        candles = bt_data.load_stored(ctx.store, settings.symbol, timeframe, start, end)
    wf_plan = _walk_forward_plan(ctx, settings, len(candles), timeframe) if args.wf_spec else None
    early = early_warnings(ctx, settings, candles, timeframe, args.preset)

    repo = SessionRepository(ctx.store) if not args.no_session else None
    params = strategy_parameters(settings)
    if args.preset:
        params["preset"] = args.preset
    session = None
    if repo is not None:
        session = start_session(repo, name=args.name, description=args.description, symbol=settings.symbol,
                                timeframe=timeframe, start_ts=int(candles.ts[0]), end_ts=int(candles.ts[-1]),
                                parameters=params, parameter_version_id=version.id if version else None,
                                now_ns=WallClock().now_ns())
    mc_paths = 10_000 if args.mc_paths is None else args.mc_paths
    with ended_on_error(repo, session):  # the run, the walk-forward and storing the results
        with _progress(enabled=not args.json and sys.stdout.isatty(), total=len(candles)) as hook:
            outcome = run_backtest(settings, candles, preset=args.preset, run_id=session.id if session else None,
                                   on_progress=hook, monte_carlo_paths=mc_paths, timeframe=timeframe,
                                   engine_kwargs={**_ai_service(ctx, settings), **_reference_candles(ctx, settings)})
        results = outcome.results
        results["parameters"] = params
        if early:
            results["warnings"] = [*early, *(results.get("warnings") or [])]
        if wf_plan is not None:
            wf_started = WallClock().now_ns()
            wf_result, results["walk_forward"] = _walk_forward(settings, candles, wf_plan, args)
            # wall time: the run and the windows (the run's own figure alone read 0.66 s for a 16 s command)
            results["elapsed_seconds"] += ns_to_seconds(WallClock().now_ns() - wf_started)
        if session is not None and repo is not None:
            results["session_id"] = session.id
            results["session_name"] = session.name
            if version is not None:
                results["params_version"] = version.id
            repo.complete(session.id, results, outcome.curves)
    if session is not None and repo is not None:  # after the results: an interrupted run records nothing else
        if wf_plan is not None:
            _record_walk_forward(ctx, wf_result, results["walk_forward"], session.id)
        pv = ParameterVersions(ParameterRepository(ctx.store), repo)
        if version is not None:
            pv.params.attach(version.id, session.id)
        if args.save_params:
            saved = pv.save(args.save_params, strategy_parameters(settings), now_ns=WallClock().now_ns(),
                            notes=f"saved from backtest {session.id}", session_id=session.id,
                            parent_ids=[version.id] if version else None)
            results["saved_params"] = saved.id
    if args.report is not None:
        try:
            write_report(args.report, results, outcome.curves)
        except OSError as exc:
            stored = f"session {session.id}" if session is not None else None
            raise StorageError(f"the report {args.report} could not be written ({exc.strerror or exc})"
                               + (f"; the run itself is stored as {stored}" if stored else ""),
                               hint=f"trdr sessions show {session.id} --report FILE.html writes it elsewhere"
                               if session is not None else "choose a writable path with --report") from None
    if args.json:
        note = preset_note(args.preset)
        if note:
            print(f"trdr: note: {note}", file=sys.stderr)  # stdout stays one JSON document
        print(json.dumps(summary(results), allow_nan=False))
    else:
        _print_table(results, args.report, shown=early)
    return 0


def check_writable(report: Path) -> None:
    """Refuse (ConfigError, exit 2) a report path that cannot be written, before any work: its folder
    must exist and take the temporary file `write_report` writes first (created and removed here)."""
    if not report.parent.is_dir():
        raise ConfigError(f"report folder {report.parent} does not exist", hint="create it or choose another path")
    probe = report.with_name(report.name + ".tmp")
    existed = probe.exists()
    try:
        with probe.open("a", encoding="utf-8"):
            pass
        if not existed:
            probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write the report {report} ({exc.strerror or exc})",
                          hint="choose a writable folder with --report, e.g. --report ./report.html") from None


def early_warnings(ctx: CliContext, settings: Any, candles: Any, timeframe: str, preset: str | None) -> list[str]:
    """The data check's findings and the short-sample notes, printed on stderr before the run (so a
    --json run's stdout stays one document); returned for the results' `warnings`."""
    from trdr_tui.backtest import data as bt_data
    from trdr_tui.engine.warmup import history_bars

    path = getattr(ctx.args, "bt_data", None)
    fix = (f"inspect it with `trdr data check {path}` and fix or remove those bars in the file" if path is not None
           else "inspect the stored bars with `trdr data gaps` and re-import a clean file with "
                "`trdr data import FILE --replace`")
    out = bt_data.data_warnings(candles, timeframe, fix=fix) + bt_data.sample_warnings(
        candles, timeframe, history_bars(settings, preset))
    for w in out:
        print(f"trdr: warning: {w}", file=sys.stderr)
    return out


def preset_note(preset: str | None) -> str | None:
    """What a preset's figures mean, printed with them: simple-trailing is a yardstick, not a strategy."""
    if preset is None:
        return None
    from trdr_tui.trading.presets import get_preset

    return get_preset(preset).note or None


def _ai_service(ctx: CliContext, settings: Any) -> dict[str, Any]:
    """The Claude service for the run, its cache in the user's database (re-runs read it), when the
    panel asks Claude (the ai_pattern agent or [ai] meta_resolver) and the preset does not replace it."""
    if ctx.args.preset or not ("ai_pattern" in settings.agents.enabled or settings.ai.meta_resolver):
        return {}
    from trdr_tui.agents.ai.service import ClaudeService
    from trdr_tui.core.clock import WallClock

    service = ClaudeService.from_settings(settings, mode=settings.ai.backtest, store=ctx.store, clock=WallClock())
    return {"ai": service}


def _reference_candles(ctx: CliContext, settings: Any) -> dict[str, Any]:
    """The correlation agent's reference product read from the user's database (`trdr data import` /
    `backfill --symbol ETH-USD`), when the agent is enabled and no preset replaces the panel; without
    stored reference candles the agent reports itself unavailable, naming the fetch command."""
    if ctx.args.preset or "correlation" not in settings.agents.enabled:
        return {}
    from trdr_tui.agents.sources import StoredCandles

    return {"candle_source": StoredCandles(ctx.store)}


def _walk_forward_plan(ctx: CliContext, settings: Any, bars: int, timeframe: str) -> Any:
    """--walk-forward and --search parsed and checked against the bars and the settings (ConfigError,
    exit 2) before any session is stored."""
    from trdr_tui.backtest.walkforward import check_plan, parse_search, parse_window_spec
    from trdr_tui.market.replay import timeframe_ns

    train, test, step = parse_window_spec(ctx.args.wf_spec, timeframe_ns(timeframe))
    space = parse_search(ctx.args.wf_search)
    check_plan(settings, bars, train_bars=train, test_bars=test, step_bars=step, search_space=space)
    return train, test, step, space


def _walk_forward(settings: Any, candles: Any, plan: Any, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Run the walk-forward analysis: (the result, its JSON form for the session's results)."""
    from trdr_tui.backtest.runner import clean_json
    from trdr_tui.backtest.walkforward import engine_evaluate, walk_forward
    from trdr_tui.engine.warmup import history_bars

    train, test, step, space = plan
    result = walk_forward(candles, settings, engine_evaluate(args.preset), train_bars=train, test_bars=test,
                          step_bars=step, search_space=space, objective=args.objective,
                          warm_bars=history_bars(settings, args.preset))
    return result, clean_json(result.to_dict())


def _record_walk_forward(ctx: CliContext, result: Any, out: dict[str, Any], session_id: str) -> None:
    """Record a completed session's walk-forward as an optimization run."""
    import secrets

    from trdr_tui.core.clock import WallClock
    from trdr_tui.store.sessions import OptimizationRecord, OptimizationRepository

    OptimizationRepository(ctx.store).record(OptimizationRecord(
        id="opt-" + secrets.token_hex(5), created_at=WallClock().now_ns(), method="walk_forward/grid_search",
        objective=ctx.args.objective, search_space={**result.search_space, "session_id": session_id},
        results=out, best_parameters=result.windows[-1].best_parameters if result.windows else None))


class _progress:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, *, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self._bar: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("backtest"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                             transient=True)
        self._bar.__enter__()
        task = self._bar.add_task("bars", total=self.total)

        def hook(done: int, total: int) -> None:
            self._bar.update(task, completed=done, total=total)

        return hook

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _print_table(results: dict[str, Any], report: Path | None, *, shown: list[str]) -> None:
    from rich.table import Table

    from trdr_tui.backtest.report import fmt, headline_rows
    from trdr_tui.commands.output import command_console

    console = command_console()
    for warning in [w for w in results.get("warnings") or [] if w not in shown]:  # `shown`: already on stderr
        console.print(f"[bold]warning:[/bold] {warning}")
    note = preset_note(results.get("preset"))
    if note:
        console.print(f"[bold]note:[/bold] {note}")
    title = (f"{results.get('symbol')} {results.get('timeframe')} {results.get('start')} → {results.get('end')}"
             f" · {results.get('bars'):,} bars")
    table = Table(title=title)
    table.add_column("")
    for col in ("strategy", "buy-and-hold", "fixed grid"):
        table.add_column(col, justify="right")
    for row in headline_rows(results):
        table.add_row(*row)
    console.print(table)
    extra = Table(show_header=False, box=None)
    extra.add_column()
    extra.add_column(justify="right")
    trades = (results.get("stats") or {}).get("trades") or {}
    for label, value in (
        ("round trips", fmt(results.get("round_trips"), "int")),
        ("win rate", fmt(results.get("win_rate"), "pct")),
        ("profit factor", fmt(results.get("profit_factor"))),
        ("expectancy / trip", fmt(results.get("expectancy"), "money")),
        ("avg hold (days)", fmt(trades.get("avg_hold_days"), "days")),
        ("rejected orders", fmt(results.get("rejected_orders"), "int")),
    ):
        extra.add_row(label, value)
    mc = results.get("monte_carlo")
    if mc:
        extra.add_row("Monte Carlo median", fmt(mc.get("median_return"), "pct"))
        extra.add_row("Monte Carlo 95 % interval",
                      f"{fmt(mc.get('ci95_low'), 'pct')} … {fmt(mc.get('ci95_high'), 'pct')}")
        extra.add_row("Monte Carlo P(loss)", fmt(mc.get("probability_of_loss"), "pct"))
        if mc.get("open_position_return") is not None:  # resampled with the round trips
            extra.add_row("  incl. position held at the end", fmt(mc.get("open_position_return"), "pct"))
    console.print(extra)
    wf = results.get("walk_forward")
    if wf:
        from trdr_tui.backtest.walkforward import WINDOW_COLUMNS, window_rows

        wf_table = Table(title=f"walk-forward ({wf.get('objective')}, {wf.get('train_bars'):,} training bars → "
                               f"{wf.get('test_bars'):,} test bars per window, each warmed on the "
                               f"{wf.get('warm_bars'):,} bars before it, no orders)", title_justify="left")
        for i, col in enumerate(WINDOW_COLUMNS):
            wf_table.add_column(col, justify="right" if i >= 4 else "left")
        for cells in window_rows(wf, fmt):
            wf_table.add_row(*cells)
        console.print(wf_table)
        console.print(f"out-of-sample: compounded {fmt(wf.get('compounded_test_return'), 'pct')} · "
                      f"windows positive {fmt(wf.get('share_positive'), 'pct')} · "
                      f"efficiency {fmt(wf.get('efficiency'))} · robustness {fmt(wf.get('robustness_score'))}")
        if wf.get("untested_bars"):
            console.print(f"the last {wf['untested_bars']:,} bars (from {wf['untested_from']}) are fewer than a test "
                          "window: no window traded them, and they are not in these figures")
    sid = results.get("session_id")
    tail = f"session {sid}" if sid else "not stored"
    if report is not None:
        tail += f" · report {report}"
    console.print(f"{tail} · {results.get('elapsed_seconds', 0.0):.2f} s")
