"""`trdr train rl`: train the Q-learning agent on history and save its Q-table as a parameter version."""

from __future__ import annotations

import argparse
import json
import sys

from trdr_tui.commands.anywhere import path_arg
from trdr_tui.commands.context import CliContext

DESCRIPTION = """\
Train the tabular Q-learning agent ('rl', docs/agents.md) on a candle file: ε-greedy episodes over the
training window, a reward that pays the taker fee of the configured tier on every trade and penalises
drawdown. The Q-table is saved as a parameter version tagged 'rl-policy'; enable the agent with
[agents] enabled = [..., "rl"] and rl_policy = "<the version's name or id>". The same data, settings
and --seed give the same table. --test-start/--test-end replay the greedy policy on a later window it
never trained on.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("train", help="train a learning agent on history (trdr train rl)", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ts = p.add_subparsers(dest="train_what", metavar="AGENT")
    rl = ts.add_parser("rl", help="tabular Q-learning (PRD §12.3); saves the Q-table as a parameter version",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    rl.add_argument("--data", dest="train_data", type=path_arg, metavar="FILE", required=True,
                    help="candle file (CSV or Coinbase JSON)")
    rl.add_argument("--start", help="first training bar, UTC (YYYY-MM-DD[THH:MM]); inclusive")
    rl.add_argument("--end", help="end of training, UTC; exclusive")
    rl.add_argument("--episodes", type=int, default=20, help="passes over the training window (default 20)")
    rl.add_argument("--seed", type=int, help="exploration seed (default: [backtest] seed)")
    rl.add_argument("--name", default="rl-policy", help="name of the saved version (default rl-policy)")
    rl.add_argument("--test-start", help="evaluate the greedy policy from here (UTC; after --end)")
    rl.add_argument("--test-end", help="end of the evaluation window (UTC; exclusive)")
    rl.add_argument("--json", action="store_true", help="print one JSON object")
    rl.set_defaults(handler=run_rl)
    en = ts.add_parser("ensemble", help="learn the ensemble's weights (panel, rl, AR forecaster; PRD §12.4)",
                       description="Fit the AR forecaster and learn the ensemble members' weights (non-negative "
                                   "least squares on the next 24 bars' return) on a training window; save them as a "
                                   "parameter version tagged 'ensemble'. Select the ensemble with [agents] "
                                   "decision_source = \"ensemble\" and ensemble_model = \"<version>\". The rl member "
                                   "is included when [agents] rl_policy is set.")
    en.add_argument("--data", dest="train_data", type=path_arg, metavar="FILE", required=True,
                    help="candle file (CSV or Coinbase JSON)")
    en.add_argument("--start", help="first training bar, UTC (YYYY-MM-DD[THH:MM]); inclusive")
    en.add_argument("--end", help="end of training, UTC; exclusive")
    en.add_argument("--name", default="ensemble", help="name of the saved version (default ensemble)")
    en.add_argument("--json", action="store_true", help="print one JSON object")
    en.set_defaults(handler=run_ensemble)

    def show_help(ctx: CliContext) -> int:
        p.print_help()
        return 2

    p.set_defaults(handler=show_help)


def run_rl(ctx: CliContext) -> int:
    import msgspec

    from trdr_tui.agents.experimental.rl import core_consensus_batch, evaluate, train
    from trdr_tui.agents.protocol import AgentContext
    from trdr_tui.backtest import data as bt_data
    from trdr_tui.backtest.params import new_version_id
    from trdr_tui.config import load_settings
    from trdr_tui.core.clock import WallClock
    from trdr_tui.core.errors import ConfigError
    from trdr_tui.market.indicators import IndicatorParams, compute_features
    from trdr_tui.store.sessions import ParameterRepository, ParameterVersion

    args = ctx.args
    start, end = bt_data.parse_time(args.start, "--start"), bt_data.parse_time(args.end, "--end")
    t_start, t_end = bt_data.parse_time(args.test_start, "--test-start"), bt_data.parse_time(args.test_end, "--test-end")
    if start is not None and end is not None and end <= start:
        raise ConfigError("--end must be after --start")
    if t_start is not None and (end is None or t_start < end):
        raise ConfigError("--test-start must not be before --end: the evaluation window must be unseen in training",
                          hint="e.g. --end 2019-01-01 --test-start 2019-01-01")
    settings = ctx.settings
    seed = settings.backtest.seed if args.seed is None else args.seed
    fee = settings.fees.active_tier().taker
    candles, timeframe = bt_data.load_file(args.train_data, symbol=settings.symbol, start=start, end=end)
    settings = load_settings(args.config, overrides={"timeframe": timeframe})
    context = AgentContext(symbol=settings.symbol, timeframe=timeframe, base_trail=settings.trailing.distance,
                           min_trail=settings.trailing.min_distance, max_trail=settings.trailing.max_distance)
    params = IndicatorParams(swing_lookback=settings.grid.swing_lookback)
    features = compute_features(candles, params)
    consensus = core_consensus_batch(features, context)
    quiet = args.json or not sys.stderr.isatty()
    from rich.progress import Progress

    with Progress(disable=quiet, transient=True) as progress:
        task = progress.add_task(f"Q-learning on {len(candles)} {timeframe} bars", total=args.episodes)

        def step(k: int, log_return: float) -> None:
            progress.update(task, advance=1, description=f"episode {k + 1}/{args.episodes}: log return {log_return:+.3f}")

        policy = train(features, consensus, fee=fee, episodes=args.episodes, seed=seed, on_episode=step)
    in_sample = evaluate(policy, features, consensus)
    version = ParameterVersion(id=new_version_id(), name=args.name, created_at=WallClock().now_ns(),
                               parameters=policy.to_parameters(), tags=["rl-policy"],
                               notes=f"Q-table: {args.episodes} episodes, seed {seed}, taker fee {fee:g}, "
                                     f"{len(candles)} {timeframe} bars of {args.train_data.name}")
    ParameterRepository(ctx.store).save(version)
    out: dict[str, object] = {"version": version.id, "name": version.name, "bars": len(candles), "seed": seed,
                              "episodes": args.episodes, "fee": fee, "visited_states": sum(1 for v in policy.visits if v),
                              "train": msgspec.to_builtins(in_sample)}
    if t_start is not None or t_end is not None:
        test_bars, _ = bt_data.load_file(args.train_data, symbol=settings.symbol, start=t_start, end=t_end)
        test_features = compute_features(test_bars, params)
        out["test"] = msgspec.to_builtins(evaluate(policy, test_features, core_consensus_batch(test_features, context)))
    if args.json:
        print(json.dumps(out, allow_nan=False))
        return 0
    print(f"saved Q-table as parameter version {version.id} ('{version.name}', tag rl-policy): "
          f"{out['visited_states']} states visited, seed {seed}, taker fee {fee:g}")
    for key in ("train", "test"):
        if key in out:
            e = out[key]
            assert isinstance(e, dict)
            print(f"{key:5s} {e['bars']:6d} bars: return {e['total_return'] * 100:+.2f}% (buy and hold "
                  f"{e['buy_and_hold'] * 100:+.2f}%), max drawdown {e['max_drawdown'] * 100:.2f}%, "
                  f"{e['trades']} trades, fees {e['fees'] * 100:.2f}% of equity")
    print(f"use it: [agents] enabled = [..., \"rl\"] and rl_policy = \"{version.id}\"")
    return 0


def run_ensemble(ctx: CliContext) -> int:
    from trdr_tui.agents.ensemble import fit_ensemble
    from trdr_tui.agents.experimental.rl import QPolicy
    from trdr_tui.agents.factory import build_orchestrator
    from trdr_tui.backtest import data as bt_data
    from trdr_tui.backtest.params import new_version_id
    from trdr_tui.config import load_settings
    from trdr_tui.core.bus import EventBus
    from trdr_tui.core.clock import SimClock, WallClock
    from trdr_tui.core.errors import ConfigError
    from trdr_tui.store.sessions import ParameterRepository, ParameterVersion

    args = ctx.args
    start, end = bt_data.parse_time(args.start, "--start"), bt_data.parse_time(args.end, "--end")
    if start is not None and end is not None and end <= start:
        raise ConfigError("--end must be after --start")
    candles, timeframe = bt_data.load_file(args.train_data, symbol=ctx.settings.symbol, start=start, end=end)
    settings = load_settings(args.config, overrides={"timeframe": timeframe})
    repo = ParameterRepository(ctx.store)
    policy = QPolicy.from_parameters(dict(repo.find(settings.agents.rl_policy).parameters)) \
        if settings.agents.rl_policy else None
    panel = build_orchestrator(settings, bus=EventBus(), clock=SimClock(0), store=ctx.store)
    model = fit_ensemble(panel, candles, rl_policy=policy)
    version = ParameterVersion(id=new_version_id(), name=args.name, created_at=WallClock().now_ns(),
                               parameters=model.to_parameters(), tags=["ensemble"],
                               notes=f"ensemble weights fitted on {len(candles)} {timeframe} bars of "
                                     f"{args.train_data.name}; panel {', '.join(settings.agents.enabled)}")
    repo.save(version)
    weights = dict(zip(model.members, model.weights, strict=True))
    if args.json:
        print(json.dumps({"version": version.id, "name": version.name, "bars": len(candles), "weights": weights,
                          "ar_params": model.ar_params}, allow_nan=False))
        return 0
    print(f"saved ensemble weights as parameter version {version.id} ('{version.name}', tag ensemble): "
          + ", ".join(f"{k} {v:.3f}" for k, v in weights.items()))
    print(f"use it: [agents] decision_source = \"ensemble\" and ensemble_model = \"{version.id}\"")
    return 0
