"""`trdr optimize`: an Optuna study over the genome with an out-of-sample objective; `trdr tune --explain`."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from trdr_tui.commands.anywhere import path_arg
from trdr_tui.commands.context import CliContext
from trdr_tui.core.errors import ConfigError

DESCRIPTION = """\
Search the strategy's genome (agent weights, grid spacing, trail base, confidence threshold, max
drawdown, position size, max concurrent trades, stop-loss, levels) with Optuna. A candidate is
scored only out of sample: on walk-forward folds of the data, after real fees, minus a penalty when
fees eat most of the gross profit, and gated by a Monte Carlo bootstrap of its trades. Every trial
is recorded; the winner is saved as a parameter version tagged 'optimized'.

--holdout-start DATE trains on the bars before DATE only, then runs the winner once on the rest.
--walk-forward TRAIN:TEST runs a fresh study on every training window and trades the next one.
"""

EPILOG = """\
examples:
  trdr optimize --data btc_1h.csv --end 2019-01-01 --trials 100
  trdr optimize --data btc_1h.csv --holdout-start 2019-01-01 --sampler nsga2
  trdr optimize --data btc_1h.csv --walk-forward 180d:60d --trials 20
  trdr optimize --storage postgresql://trdr@db:5432/trdr --study s1 --workers 4   # on each machine
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("optimize", help="search parameters with Optuna, scored out of sample after fees",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("data")
    src.add_argument("--data", dest="bt_data", type=path_arg, metavar="FILE", help="candle file (CSV or Coinbase JSON)")
    src.add_argument("--symbol", help="symbol (default: the config's)")
    src.add_argument("--timeframe", help="timeframe of stored candles (default: the config's)")
    src.add_argument("--start", help="first bar, UTC (YYYY-MM-DD[THH:MM]); inclusive")
    src.add_argument("--end", help="end, UTC; exclusive")
    src.add_argument("--holdout-start", metavar="DATE",
                     help="train before DATE only; then run the winner once on DATE … --end")
    src.add_argument("--walk-forward", dest="wf_spec", metavar="TRAIN:TEST[:STEP]",
                     help="a study per training window, traded on the next window (e.g. 180d:60d)")
    st = p.add_argument_group("study")
    st.add_argument("--trials", type=int, default=50, help="trials in the study (default 50)")
    st.add_argument("--sampler", choices=["tpe", "cmaes", "nsga2"], default="tpe",
                    help="tpe (default), cmaes, or nsga2 (return vs drawdown)")
    st.add_argument("--seed", type=int, default=None, help="sampler seed (default: backtest.seed)")
    st.add_argument("--genes", action="append", metavar="KEY",
                    help="optimize only these keys or prefixes (repeatable; default: the whole genome)")
    st.add_argument("--range", dest="ranges", action="append", metavar="KEY=LOW:HIGH", help="a gene's range")
    st.add_argument("--folds", type=int, default=3, help="walk-forward folds of the objective (default 3)")
    st.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="worker processes on this machine (default: all cores)")
    st.add_argument("--storage", metavar="URL|FILE",
                    help="postgresql://… to share one study between machines, or a journal file "
                         "(default: optuna/STUDY.journal beside the database)")
    st.add_argument("--study", help="study name; the same name resumes (default: a new name)")
    par = p.add_argument_group("parameters")
    par.add_argument("--set", dest="set_items", action="append", metavar="KEY=VALUE", help="base override")
    out = p.add_argument_group("output")
    out.add_argument("--name", help="name of the saved parameter version (default: the study name)")
    out.add_argument("--no-save", action="store_true", help="record the study, save no parameter version")
    out.add_argument("--report", type=path_arg, metavar="FILE.html", help="importance, sensitivity, convergence plots")
    out.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)

    ps = p.add_subparsers(dest="optimize_cmd", metavar="ACTION")
    ls = ps.add_parser("list", help="recorded optimizations, newest first")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=list_runs)
    rp = ps.add_parser("report", help="write the plots of a recorded optimization")
    rp.add_argument("ident", metavar="ID")
    rp.add_argument("--out", type=path_arg, required=True, metavar="FILE.html")
    rp.set_defaults(handler=report)
    sg = ps.add_parser("suggest", help="what is not working in a backtest, which parameter to change, and why")
    sg.add_argument("session", nargs="?", metavar="SESSION", help="backtest session (default: the newest)")
    sg.add_argument("--json", action="store_true")
    sg.set_defaults(handler=suggest)

    t = sub.add_parser("tune", help="the values self-tuned from symbol, capital and risk tolerance",
                       description="Derive every parameter from the three inputs, the last 30 days of bars, "
                                   "the fee tier and the risk profile (PRD §3.5).")
    t.add_argument("--explain", action="store_true", help="print each value's formula and inputs")
    t.add_argument("--data", dest="bt_data", type=path_arg, metavar="FILE", help="candle file (default: stored candles)")
    t.add_argument("--end", help="derive as of this time (UTC; default: the last bar)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(handler=tune)


# --- data -----------------------------------------------------------------------------------------


def _bars(ctx: CliContext, start: int | None, end: int | None) -> tuple[Any, Any, str]:
    from trdr_tui.backtest import data as bt_data
    from trdr_tui.commands.backtest import build_settings

    args = ctx.args
    extra: dict[str, Any] = {"symbol": args.symbol} if getattr(args, "symbol", None) else {}
    if args.bt_data is not None:
        build_settings(ctx, extra)
        candles, timeframe = bt_data.load_file(args.bt_data, symbol=getattr(args, "symbol", None) or "BTC-USD",
                                               timeframe=getattr(args, "timeframe", None), start=start, end=end)
        extra["timeframe"] = timeframe
        settings, _ = build_settings(ctx, extra)
    else:
        if getattr(args, "timeframe", None):
            extra["timeframe"] = args.timeframe
        settings, _ = build_settings(ctx, extra)
        timeframe = settings.timeframe
        candles = bt_data.load_stored(ctx.store, settings.symbol, timeframe, start, end)
    return settings, candles, timeframe


def _data_warnings(ctx: CliContext, candles: Any, timeframe: str) -> list[str]:
    """`trdr data check`'s findings on the bars the study sees, printed on stderr and returned."""
    from trdr_tui.backtest import data as bt_data

    path = ctx.args.bt_data
    fix = (f"inspect it with `trdr data check {path}` and fix or remove those bars in the file" if path is not None
           else "inspect the stored bars with `trdr data gaps` and re-import a clean file with "
                "`trdr data import FILE --replace`")
    out = bt_data.data_warnings(candles, timeframe, fix=fix)
    for w in out:
        print(f"trdr: warning: {w}", file=sys.stderr)
    return out


def _storage_for(ctx: CliContext, study: str) -> str:
    if ctx.args.storage:
        return str(ctx.args.storage)
    base = Path(ctx.db_path).expanduser().parent if ctx.db_path != ":memory:" else Path.cwd()
    folder = base / "optuna"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / f"{study}.journal")


def _shown_storage(storage: str) -> str:
    """A storage URL without its credentials."""
    if "://" in storage and "@" in storage:
        scheme, rest = storage.split("://", 1)
        return f"{scheme}://…@{rest.split('@', 1)[1]}"
    return storage


# --- trdr optimize --------------------------------------------------------------------------------


def run(ctx: CliContext) -> int:
    from trdr_tui.backtest import data as bt_data
    from trdr_tui.engine.warmup import history_bars
    from trdr_tui.tuning.genome import genome, parse_genes, with_ranges
    from trdr_tui.tuning.objective import ObjectiveConfig
    from trdr_tui.tuning.optimizer import StudySpec

    args = ctx.args
    if args.trials < 1 or args.workers < 1 or args.folds < 1:
        raise ConfigError("--trials, --workers and --folds must be at least 1")
    if args.holdout_start and args.wf_spec:
        raise ConfigError("--holdout-start and --walk-forward are two different evaluations", hint="pick one")
    if args.report is not None and args.report.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--report {args.report}: the report is HTML", hint="name it FILE.html")
    start = bt_data.parse_time(args.start, "--start")
    end = bt_data.parse_time(args.end, "--end")
    holdout = bt_data.parse_time(args.holdout_start, "--holdout-start")
    settings, candles, timeframe = _bars(ctx, start, end)
    warnings = _data_warnings(ctx, candles, timeframe)
    train = candles
    test = None
    if holdout is not None:
        cut = int((candles.ts < holdout).sum())
        if cut < 2 or cut > len(candles) - 2:
            raise ConfigError(f"--holdout-start {args.holdout_start} leaves no bars on one side",
                              hint="pick a date inside the data")
        train, test = candles[:cut], candles[cut:]
    genes = with_ranges(genome(settings, args.genes), parse_genes(args.ranges))
    study = args.study or "opt-" + secrets.token_hex(4)
    spec = StudySpec(name=study, storage=_storage_for(ctx, study), sampler=args.sampler, trials=args.trials,
                     seed=settings.backtest.seed if args.seed is None else args.seed, genes=genes,
                     objective=ObjectiveConfig(folds=args.folds, warmup_bars=history_bars(settings)))
    if args.wf_spec:
        return _walk_forward(ctx, spec, settings, candles, timeframe, warnings)
    # the library and the database are loaded before the study starts: a Ctrl-C meanwhile is no interrupted study
    import optuna  # noqa: F401

    _ = ctx.store
    try:
        outcome = _study(ctx, spec, settings, train)
    except KeyboardInterrupt:  # the finished trials are in the study's storage: say how to go on
        return _interrupted(ctx, spec, settings, train, timeframe)
    summary = _record(ctx, spec, settings, outcome, train, timeframe)
    if test is not None:
        summary["holdout"] = _holdout(settings, outcome, test, timeframe)
    verdict = winner_verdict(outcome, summary.get("saved_params"))
    if verdict:
        print(f"trdr: note: {verdict}", file=sys.stderr)
    if warnings or verdict:
        summary["warnings"] = [*warnings, *([verdict] if verdict else [])]
    if args.report is not None:
        from trdr_tui.tuning.report import write_report

        write_report(args.report, outcome.trials, title=f"optimization {summary['optimization_id']}")
        summary["report"] = str(args.report)
    if args.json:
        print(json.dumps(summary, allow_nan=False))
    else:
        _print_summary(summary)
    return 0


def _study(ctx: CliContext, spec: Any, settings: Any, bars: Any) -> Any:
    from trdr_tui.tuning.optimizer import run_study

    show = not ctx.args.json and sys.stderr.isatty()
    if not show:
        return run_study(spec, settings, bars, workers=ctx.args.workers)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TextColumn("best {task.fields[best]}"),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("trials", total=spec.trials, best="—")

        def hook(done: int, total: int, best: float | None) -> None:
            bar.update(task, completed=done, total=total, best="—" if best is None else f"{best:+.4f}")

        return run_study(spec, settings, bars, workers=ctx.args.workers, on_progress=hook)


def _save_study(ctx: CliContext, spec: Any, settings: Any, bars: Any, timeframe: str, *, method: str,
                results: dict[str, Any], trials: Any, best_parameters: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """Record a study (finished or interrupted) in `optimizations`: `results` with the study, its storage,
    the symbol, timeframe and bar range added, and every trial. Returns (its id, the results as stored)."""
    import msgspec

    from trdr_tui.backtest.runner import clean_json
    from trdr_tui.core.clock import WallClock
    from trdr_tui.core.timefmt import iso_utc
    from trdr_tui.store.sessions import OptimizationRecord
    from trdr_tui.store.tuning import TuningRepository

    opt_id = "opt-" + secrets.token_hex(5)
    stored = clean_json({"study": spec.name, "storage": _shown_storage(spec.storage), **results,
                         "symbol": settings.symbol, "timeframe": timeframe,
                         "start": iso_utc(int(bars.ts[0])), "end": iso_utc(int(bars.ts[-1]))})
    space = {g.key: [g.low, g.high] for g in spec.genes}
    rec = OptimizationRecord(id=opt_id, created_at=WallClock().now_ns(), method=method,
                             objective=f"walk-forward {spec.objective.folds} folds: mean return − fee penalty − "
                                       "Monte Carlo gate", search_space=clean_json({**space,
                                       "objective_config": msgspec.to_builtins(spec.objective)}),
                             results=stored, best_parameters=clean_json(best_parameters))
    TuningRepository(ctx.store).record_study(
        rec, [msgspec.structs.replace(t, attributes=clean_json(t.attributes)) for t in trials])
    return opt_id, stored


def _record(ctx: CliContext, spec: Any, settings: Any, outcome: Any, bars: Any, timeframe: str) -> dict[str, Any]:
    from trdr_tui.backtest.params import ParameterVersions, strategy_parameters
    from trdr_tui.core.clock import WallClock
    from trdr_tui.store.sessions import ParameterRepository, SessionRepository
    from trdr_tui.tuning.optimizer import winner_settings

    opt_id, results = _save_study(
        ctx, spec, settings, bars, timeframe, method=outcome.method, trials=outcome.trials,
        best_parameters=outcome.best_parameters,
        results={"trials": len(outcome.trials), "best_value": outcome.best_value,
                 "best_attributes": outcome.best_attributes, "convergence": outcome.convergence})
    summary: dict[str, Any] = {"optimization_id": opt_id, **results, "best_parameters": outcome.best_parameters}
    if not ctx.args.no_save:
        pv = ParameterVersions(ParameterRepository(ctx.store), SessionRepository(ctx.store))
        v = pv.save(ctx.args.name or spec.name, strategy_parameters(winner_settings(settings, outcome)),
                    now_ns=WallClock().now_ns(), tags=["optimized"],
                    notes=f"winner of {outcome.method} study {spec.name} ({opt_id}); "
                          f"out-of-sample score {outcome.best_value:+.4f}")
        summary["saved_params"] = v.id
    return summary


def _interrupted(ctx: CliContext, spec: Any, settings: Any, bars: Any, timeframe: str) -> int:
    """A study stopped by Ctrl-C (its workers already stopped): recorded as interrupted, with the trials its
    storage holds and no result, so `trdr optimize list` shows it and how to resume it; one line on stderr.
    Exit code 130."""
    from trdr_tui.tuning.optimizer import sigint_deferred, stored_trials

    resume = f"trdr optimize ... --study {spec.name}"
    with sigint_deferred():  # a second Ctrl-C waits for the record (a few ms)
        trials = stored_trials(spec)
        finished = sum(t.state in ("COMPLETE", "PRUNED") for t in trials)
        opt_id, _ = _save_study(ctx, spec, settings, bars, timeframe, method=f"optuna/{spec.sampler}",
                                trials=trials, best_parameters=None,
                                results={"status": "interrupted", "trials": finished, "trials_asked": spec.trials,
                                         "resume": resume})
    print(f"trdr: study {spec.name} interrupted after {finished} of {spec.trials} trials ({opt_id} in "
          f"`trdr optimize list`); its finished trials are kept in {_shown_storage(spec.storage)}: "
          f"resume with `{resume}`", file=sys.stderr)
    return 130


def winner_verdict(outcome: Any, saved: str | None) -> str | None:
    """A plain note when the study's winner is no real winner: a negative out-of-sample score (it lost
    money after fees on the walk-forward folds), or a score no better than the configuration as it
    stands (trial 0 of a new study; `open_study`). None for a winner that beat both."""
    default = next((t.value for t in outcome.trials if t.number == 0 and t.value is not None), None)
    best = outcome.best_value
    lost = best < 0
    not_better = default is not None and best <= default
    if not (lost or not_better):
        return None
    parts = []
    mean = outcome.best_attributes.get("mean_return")
    if lost:
        why = (f"it lost money after fees on the walk-forward folds (mean return {mean:+.2%})"
               if isinstance(mean, float) and mean < 0 else "its fee penalty and Monte Carlo gate outweigh its return")
        parts.append(f"the winner scored {best:+.4f} out of sample: {why}")
    if default is not None:
        parts.append(f"the default parameters scored {default:+.4f}"
                     + (": the study found nothing better" if not_better else ""))
    use = (f"It is saved as parameter version {saved} (tagged 'optimized'), used only if you ask for it "
           f"(`trdr backtest --params {saved}` to look at it; `trdr params` lists versions); ignore it otherwise"
           if saved else "nothing was saved")
    return "; ".join(parts) + f". {use}"


def _holdout(settings: Any, outcome: Any, test: Any, timeframe: str) -> dict[str, Any]:
    """The default configuration and the winner, each run once on the held-out bars."""
    from trdr_tui.backtest.runner import run_backtest
    from trdr_tui.tuning.optimizer import winner_settings

    out: dict[str, Any] = {}
    for label, s in (("default", settings), ("optimized", winner_settings(settings, outcome))):
        o = run_backtest(s, test, monte_carlo_paths=0, timeframe=timeframe)
        out[label] = row_of(o.results, o.run)
        if label == "default":
            for b in ("buy_and_hold", "fixed_grid"):
                out[b] = {k: o.results["baselines"][b].get(k) for k in
                          ("fills", "total_return", "annualized_return", "sharpe", "sortino", "max_drawdown",
                           "calmar", "fees_paid")}
    out["start"], out["end"] = o.results["start"], o.results["end"]
    return out


def row_of(results: dict[str, Any], run: Any) -> dict[str, Any]:
    fills = len(run.fills)
    fees = float(run.fills.fee.sum())
    gross = results["final_equity"] - results["initial_capital"] + fees
    return {"fills": fills, "maker_share": float(run.fills.maker.sum()) / fills if fills else None,
            **{k: results.get(k) for k in ("total_return", "annualized_return", "sharpe", "sortino", "max_drawdown",
                                           "calmar")},
            "fees_paid": fees, "fees_share_of_gross": fees / gross if gross > 0 else None}


def _walk_forward(ctx: CliContext, spec: Any, settings: Any, candles: Any, timeframe: str,
                  warnings: list[str]) -> int:
    import msgspec

    from trdr_tui.backtest.runner import clean_json
    from trdr_tui.backtest.walkforward import engine_evaluate, parse_window_spec, walk_forward
    from trdr_tui.core.clock import WallClock
    from trdr_tui.market.replay import timeframe_ns
    from trdr_tui.store.sessions import OptimizationRecord
    from trdr_tui.store.tuning import TuningRepository
    from trdr_tui.tuning.optimizer import run_study

    train_bars, test_bars, step = parse_window_spec(ctx.args.wf_spec, timeframe_ns(timeframe))
    counter = iter(range(10_000))

    def optimizer(train: Any, base: Any, _space: Any, _ev: Any) -> tuple[dict[str, Any], float, list[Any]]:
        i = next(counter)
        window_spec = msgspec.structs.replace(spec, name=f"{spec.name}-w{i}",
                                              storage=_storage_for(ctx, f"{spec.name}-w{i}"))
        o = run_study(window_spec, base, train, workers=ctx.args.workers)
        return o.best_parameters, o.best_value, [msgspec.to_builtins(t) for t in o.trials]

    def on_window(w: Any) -> None:
        if not ctx.args.json:
            print(f"window {w.index}: {w.test_start[:10]} → {w.test_end[:10]}  out of sample {w.test_return:+.2%}"
                  f"  (buy-and-hold {w.test_buy_and_hold_return:+.2%})", file=sys.stderr)

    result = walk_forward(candles, settings, engine_evaluate(), train_bars=train_bars, test_bars=test_bars,
                          step_bars=step, search_space={g.key: [g.low, g.high] for g in spec.genes},
                          optimizer=optimizer, on_window=on_window)
    out = clean_json(result.to_dict())
    opt_id = "opt-" + secrets.token_hex(5)
    TuningRepository(ctx.store).record_study(OptimizationRecord(
        id=opt_id, created_at=WallClock().now_ns(), method=f"walk_forward/optuna/{spec.sampler}",
        objective="out-of-sample return per window", search_space=out["search_space"], results=out,
        best_parameters=result.windows[-1].best_parameters if result.windows else None), [])
    summary = {"optimization_id": opt_id, "windows": len(result.windows), "warm_bars": result.warm_bars,
               "compounded_test_return": result.compounded_test_return, "share_positive": result.share_positive,
               "robustness_score": result.robustness_score, "efficiency": result.efficiency,
               "window_returns": [w.test_return for w in result.windows]}
    if warnings:
        summary["warnings"] = warnings
    if ctx.args.json:
        print(json.dumps(clean_json(summary), allow_nan=False))
    else:
        _print_summary(summary)
    return 0


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.table import Table

    from trdr_tui.commands.output import command_console

    console = command_console()
    holdout = summary.pop("holdout", None)
    table = Table(show_header=False, box=None)
    table.add_column()
    table.add_column(overflow="fold")
    for k, v in summary.items():
        if k in ("convergence", "best_attributes"):
            continue
        table.add_row(k, json.dumps(v) if isinstance(v, dict | list) else str(v))
    console.print(table)
    if holdout:
        from trdr_tui.backtest.report import fmt

        t = Table(title=f"held out: {holdout.pop('start')} → {holdout.pop('end')}")
        t.add_column("")
        for col in holdout:
            t.add_column(col, justify="right")
        keys = ("fills", "maker_share", "total_return", "annualized_return", "sharpe", "sortino", "max_drawdown",
                "calmar", "fees_paid", "fees_share_of_gross")
        kinds = {"fills": "int", "maker_share": "pct", "total_return": "pct", "annualized_return": "pct",
                 "max_drawdown": "pct", "fees_paid": "money", "fees_share_of_gross": "pct"}
        for k in keys:
            t.add_row(k, *[fmt(row.get(k), kinds.get(k, "")) for row in holdout.values()])
        console.print(t)


# --- list / report / suggest ------------------------------------------------------------------------


def list_runs(ctx: CliContext) -> int:
    import msgspec

    from trdr_tui.store.tuning import TuningRepository

    runs = TuningRepository(ctx.store).recent()
    if ctx.args.json:
        print(json.dumps([msgspec.to_builtins(r) for r in runs], allow_nan=False))
        return 0
    if not runs:
        print("no optimizations yet: 'trdr optimize --data FILE'")
        return 0
    from rich.table import Table

    from trdr_tui.commands.output import command_console
    from trdr_tui.core.timefmt import iso_utc

    table = Table("id", "created (UTC)", "method", "trials", "result", box=None)
    for r in runs:
        res = r.results if isinstance(r.results, dict) else {}
        table.add_row(r.id, iso_utc(r.created_at)[:16].replace("T", " "), r.method, str(res.get("trials", "—")),
                      _result_text(res))
    command_console().print(table)
    return 0


def _result_text(res: dict[str, Any]) -> str:
    """What a stored run found: a study's best score, or a walk-forward's compounded out-of-sample return;
    for an interrupted study, how far it got and how to resume it."""
    if res.get("status") == "interrupted":
        return (f"interrupted after {res.get('trials')} of {res.get('trials_asked')} trials: "
                f"resume with `{res.get('resume')}`")
    if "compounded_test_return" in res:
        windows = res.get("windows") or []
        ret = res.get("compounded_test_return")
        shown = "—" if ret is None else f"{ret:+.2%}"
        return f"out of sample {shown} compounded over {len(windows)} windows"
    best = res.get("best_value")
    return "—" if best is None else f"best score {best:+.4f}"


def report(ctx: CliContext) -> int:
    from trdr_tui.store.tuning import TuningRepository
    from trdr_tui.tuning.report import write_report

    repo = TuningRepository(ctx.store)
    oid = repo.resolve(ctx.args.ident)
    write_report(ctx.args.out, repo.trials(oid), title=f"optimization {oid}")
    print(f"wrote {ctx.args.out}")
    return 0


def suggest(ctx: CliContext) -> int:
    from trdr_tui.store.sessions import SessionRepository
    from trdr_tui.tuning.suggest import suggest_updates

    repo = SessionRepository(ctx.store)
    ident = ctx.args.session
    if ident is None:
        done = repo.list(limit=1, status="completed")
        if not done:
            raise ConfigError("no completed backtest to learn from", hint="run 'trdr backtest' first")
        ident = done[0].id
    session = repo.get(ident)
    results = repo.results(session.id) or {}
    out = suggest_updates(session.parameters, results)
    if ctx.args.json:
        print(json.dumps({"session": session.id, **out}, allow_nan=False))
        return 0
    print(f"session {session.id} ({session.name})")
    if not out["suggestions"]:
        print("nothing stands out: no suggestion")
    for s in out["suggestions"]:
        print(f"- {s['issue']}\n  {s['parameter']}: {s['current_value']} → {s['suggested_value']}\n  {s['reasoning']}")
    print(f"confidence {out['confidence']:.2f}; backtest recommended: {'yes' if out['backtest_recommended'] else 'no'}")
    return 0


# --- trdr tune --------------------------------------------------------------------------------------


def tune(ctx: CliContext) -> int:
    from trdr_tui.backtest import data as bt_data
    from trdr_tui.tuning.derive import derive

    args = ctx.args
    end = bt_data.parse_time(args.end, "--end")
    args.symbol = None
    args.timeframe = None
    args.set_items = None
    args.params = None
    settings, candles, _tf = _bars(ctx, None, end)
    values = derive(settings, candles)
    if args.json:
        import msgspec

        print(json.dumps(msgspec.to_builtins(values), allow_nan=False))
        return 0
    from rich.table import Table

    from trdr_tui.commands.output import command_console

    t = Table(title=f"{settings.symbol} · capital {settings.capital:,.2f} · {settings.risk_tolerance}")
    t.add_column("parameter")
    t.add_column("value", justify="right")
    if args.explain:
        t.add_column("formula", overflow="fold")
        t.add_column("inputs", overflow="fold")
    for v in values:
        row = [v.key, f"{v.value:.6g}"]
        if args.explain:
            row += [v.formula, ", ".join(f"{k} = {x:.6g}" if isinstance(x, float) else f"{k} = {x}"
                                         for k, x in v.inputs.items())]
        t.add_row(*row)
    command_console().print(t)
    return 0
