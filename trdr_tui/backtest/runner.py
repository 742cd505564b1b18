"""Run a backtest through the one engine and turn its run record into results.

    outcome = run_backtest(settings, candles, preset="simple-trailing")
    outcome.results["final_equity"], outcome.results["baselines"]["buy_and_hold"]["total_return"]

The engine is built by `trdr_tui.engine.build_engine` in backtest mode (SimClock + replay feed +
simulated executor): the same parts paper and live trading use. Results are a plain JSON-ready
dict whose top-level keys are stable (other tools read them, see `SUMMARY_KEYS`); everything is
deterministic except `elapsed_seconds` and `session_id`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from trdr_tui.backtest import metrics
from trdr_tui.backtest.baselines import BaselineResult, buy_and_hold, fixed_grid
from trdr_tui.backtest.montecarlo import DEFAULT_PATHS, monte_carlo
from trdr_tui.backtest.results import AgentSignals, FillArrays, RunData, TradeArrays
from trdr_tui.config import Settings
from trdr_tui.core import stop_signals
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.events import BacktestProgress
from trdr_tui.core.timefmt import iso_utc
from trdr_tui.core.types import Action, Decision
from trdr_tui.trading.funding import performance_curve

if TYPE_CHECKING:
    from trdr_tui.engine.loop import Engine
    from trdr_tui.trading.presets import Preset

ProgressHook = Callable[[int, int], None]

SUMMARY_KEYS = ("bars", "fills", "round_trips", "final_equity", "total_return", "annualized_return", "sharpe",
                "sortino", "calmar", "max_drawdown", "win_rate", "profit_factor", "fees_paid",
                "elapsed_seconds", "session_id")
BASELINE_KEYS = ("final_equity", "total_return", "annualized_return", "sharpe", "sortino", "calmar",
                 "max_drawdown", "max_drawdown_duration_days", "fills", "round_trips", "fees_paid", "maker_share")
MAX_STORED_CURVE_POINTS = 50_000


class BacktestOutcome(msgspec.Struct, kw_only=True):
    results: dict[str, Any]
    curves: dict[str, Any]
    run: RunData


# --- the engine ---------------------------------------------------------------------------------


def run_engine(settings: Settings, candles: CandleArrays, *, preset: str | None = None,
               run_id: str | None = None, on_progress: ProgressHook | None = None,
               engine_kwargs: Mapping[str, Any] | None = None) -> tuple[RunData, Engine]:
    """Replay `candles` through a backtest engine and collect its run record as RunData.

    Runs its own event loop; from inside a running loop (the TUI, the API) await `run_engine_async`.
    """
    out: list[tuple[RunData, Engine]] = []

    async def main() -> None:
        # The task returns nothing: on Python 3.11 `asyncio.run` restoring the SIGINT handler formats
        # the main task's repr, and a RunData result would be printed array by array each time.
        out.append(await run_engine_async(settings, candles, preset=preset, run_id=run_id,
                                          on_progress=on_progress, engine_kwargs=engine_kwargs))

    stop_signals.run(main())
    return out[0]


def run_warmed(settings: Settings, bars: CandleArrays, warm: int, *, preset: str | None = None,
               engine_kwargs: Mapping[str, Any] | None = None) -> tuple[RunData, float]:
    """Replay `bars` whose first `warm` bars only warm the run: they go through the engine (agents,
    the grid's trend gate and spacing window) but place no orders (`trade_from_ns` = the open of bar
    `warm`). Returns the run and its equity at the end of the warm-up (quote currency; the capital when
    `warm` is 0), from which the rest is scored. Used by the optimizer's folds and the walk-forward."""
    kwargs = {**(engine_kwargs or {}), "trade_from_ns": int(bars.ts[warm]) if warm > 0 else None}
    run, _ = run_engine(settings, bars, preset=preset, engine_kwargs=kwargs)
    return run, float(run.equity[warm - 1]) if warm > 0 else run.initial_capital


async def run_engine_async(settings: Settings, candles: CandleArrays, *, preset: str | None = None,
                           run_id: str | None = None, on_progress: ProgressHook | None = None,
                           engine_kwargs: Mapping[str, Any] | None = None) -> tuple[RunData, Engine]:
    from trdr_tui.engine.assembly import build_engine

    bus = EventBus()
    if on_progress is not None:
        hook = on_progress

        def progress(_topic: str, ev: BacktestProgress) -> None:
            hook(ev.done, ev.total)

        bus.subscribe("backtest.progress", progress)
    engine = build_engine(settings, mode="backtest", candles=candles, preset=preset, bus=bus, run_id=run_id,
                          **dict(engine_kwargs or {}))
    await engine.run()
    return run_data_from_engine(engine, candles), engine


def run_data_from_engine(engine: Engine, candles: CandleArrays) -> RunData:
    rec = engine.record
    n = rec.bars
    equity, position = ledger_after_bars(engine)
    orders = {o.id: o for o in rec.orders}
    fills = rec.fills
    refs = [orders[f.order_id].price if f.order_id in orders else None for f in fills]
    created = [orders[f.order_id].created_ts if f.order_id in orders else None for f in fills]
    tf = engine.feed.timeframe_ns
    return RunData(
        ts=candles.ts[:n].copy(),
        equity=equity,
        position=position,
        close=candles.close[:n].copy(),
        initial_capital=float(rec.initial_cash),
        fills=FillArrays.from_fills(fills, refs, created),
        trades=TradeArrays.from_trades(rec.trades),
        rejected_orders=rec.rejected_orders,
        agent_signals=agent_signals(engine, candles.ts[:n], tf),
        agent_weights=engine.agent_weights(),
        halts=tuple(engine.risk.halts),
    )


def ledger_after_bars(engine: Engine) -> tuple[np.ndarray, np.ndarray]:
    """Equity and position after each bar, from the engine's run record."""
    curve = engine.record.equity_curve()
    n = engine.record.bars
    # deposits and withdrawals are not performance: taken out, time-weighted (trading.funding)
    equity = performance_curve(np.asarray(curve.equity, dtype=np.float64), curve.ts, engine.portfolio.contributions(),
                               engine.record.initial_cash)
    position = np.asarray(curve.position, dtype=np.float64)
    if equity.shape[0] != n or position.shape[0] != n:
        raise ValueError(f"the engine's equity curve has {equity.shape[0]} points for {n} bars")
    return equity, position


def agent_signals(engine: Engine, bar_ts: np.ndarray, timeframe_ns: int) -> dict[str, AgentSignals]:
    """Per-agent signals of the run: from the orchestrator's batch arrays when it precomputed the
    whole history (backtests), else from the decisions the engine saw bar by bar."""
    batch = getattr(getattr(engine, "decisions", None), "_batch", None)
    arrays = getattr(batch, "arrays", None)
    n = bar_ts.shape[0]
    if arrays is not None and len(arrays) >= n and np.array_equal(arrays.ts[:n], bar_ts):
        return agent_signals_from_arrays(arrays, n)
    return agent_signals_from_decisions(engine.record.decisions, bar_ts, timeframe_ns)


def agent_signals_from_arrays(arrays: Any, n: int) -> dict[str, AgentSignals]:
    """From the orchestrator's DecisionArrays (action codes 0 HOLD, 1 TRAIL_BUY, 2 TRAIL_SELL;
    no signal during warm-up)."""
    valid = np.asarray(arrays.valid[:n], dtype=bool)
    out: dict[str, AgentSignals] = {}
    for k, agent_id in enumerate(arrays.agent_ids):
        code = np.asarray(arrays.agent_action[:n, k])
        action = np.where(valid & (code == 1), 1, np.where(valid & (code == 2), -1, 0)).astype(np.int8)
        conf = np.where(valid, np.asarray(arrays.agent_confidence[:n, k], dtype=np.float64), 0.0)
        out[agent_id] = AgentSignals(action, conf)
    return dict(sorted(out.items()))


def agent_signals_from_decisions(decisions: Sequence[Decision], bar_ts: np.ndarray,
                                 timeframe_ns: int) -> dict[str, AgentSignals]:
    """Per-agent signal arrays aligned with the bars, from the decisions the engine saw.

    A decision stamped with a bar's close time (or its open time) belongs to that bar.
    """
    n = bar_ts.shape[0]
    if not decisions or n == 0:
        return {}
    actions: dict[str, np.ndarray] = {}
    confs: dict[str, np.ndarray] = {}
    code = {Action.TRAIL_BUY: 1, Action.TRAIL_SELL: -1, Action.HOLD: 0}
    closes = bar_ts + timeframe_ns
    for d in decisions:
        i = int(np.searchsorted(closes, d.ts, side="left"))
        if i >= n or closes[i] != d.ts:
            i = int(np.searchsorted(bar_ts, d.ts, side="right")) - 1
            if i < 0:
                continue
        for s in d.signals:
            if s.agent_id not in actions:
                actions[s.agent_id] = np.zeros(n, dtype=np.int8)
                confs[s.agent_id] = np.zeros(n, dtype=np.float64)
            actions[s.agent_id][i] = code[Action(s.action)]
            confs[s.agent_id][i] = s.confidence
    return {a: AgentSignals(actions[a], confs[a]) for a in sorted(actions)}


# --- fees the baselines pay -----------------------------------------------------------------------


def fee_rates(settings: Settings, preset: Preset | None) -> tuple[float, float]:
    """(maker, taker) the bot pays at the start of the run; the baselines pay the same."""
    if preset is not None:
        return preset.maker_fee, preset.taker_fee
    from trdr_tui.exchange.fees import FeeSchedule

    sched = FeeSchedule.from_config(settings.fees)
    vol = settings.fees.thirty_day_volume_usd if settings.fees.thirty_day_volume_usd > 0 else None
    tier = sched.tier_for(vol)
    return tier.maker, tier.taker


# --- results ------------------------------------------------------------------------------------


def clean_json(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, non-finite floats to None, recursively."""
    if isinstance(value, Mapping):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def baseline_summary(b: BaselineResult, ts: np.ndarray, initial: float) -> dict[str, Any]:
    stats = metrics.equity_stats(b.equity, ts, initial)
    out = {k: stats.get(k) for k in BASELINE_KEYS if k in stats}
    out.update(fills=b.fills, round_trips=b.round_trips, fees_paid=b.fees_paid,
               maker_share=b.maker_fills / b.fills if b.fills else None)
    return {k: out.get(k) for k in BASELINE_KEYS}


def open_position_return(run: RunData) -> float | None:
    """The position still held after the last bar, marked at the last close, as one more trade return for
    Monte Carlo: its P&L (final equity − initial capital − the round trips' P&L, so net of its entry fees)
    over the equity it is held against (final equity − that P&L). None when the run ends flat or its
    position is unknown. Without it, a run holding losing lots past its last exit resamples only its
    closed round trips and reports P(loss) 0 % while it has lost money."""
    if run.position is None or run.position.shape[0] == 0 or abs(float(run.position[-1])) <= 1e-12:
        return None
    final = float(run.equity[-1])
    held_pnl = final - run.initial_capital - float(run.trades.pnl.sum())
    base = final - held_pnl
    return held_pnl / base if base > 0 else None


def evaluate(
    run: RunData,
    candles: CandleArrays,
    settings: Settings,
    *,
    preset: Preset | None = None,
    monte_carlo_paths: int = DEFAULT_PATHS,
    seed: int | None = None,
    timeframe: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Statistics, baselines and Monte Carlo for one run → (results, curves)."""
    n = run.ts.shape[0]
    bars = candles[:n]
    maker, taker = fee_rates(settings, preset)
    bh = buy_and_hold(bars, run.initial_capital, taker)
    grid = fixed_grid(bars, run.initial_capital, spacing=settings.grid.spacing, levels=settings.grid.levels,
                      maker_fee=maker, taker_fee=taker)
    stats = metrics.compute_statistics(run, benchmark_equity=bh.equity)
    perf = stats["performance"]
    trade_r_eq = metrics.trade_returns_on_equity(run.trades, run.ts, run.equity, run.initial_capital)
    seed = settings.backtest.seed if seed is None else seed
    open_r = open_position_return(run)
    sample = trade_r_eq if open_r is None else np.append(trade_r_eq, open_r)
    mc = monte_carlo(sample, paths=monte_carlo_paths, seed=seed) if monte_carlo_paths > 0 else None
    results: dict[str, Any] = {
        "bars": int(n),
        "fills": len(run.fills),
        "round_trips": len(run.trades),
        "final_equity": perf["final_equity"],
        "total_return": perf["total_return"],
        "annualized_return": perf["annualized_return"],
        "sharpe": perf["sharpe"],
        "sortino": perf["sortino"],
        "calmar": perf["calmar"],
        "max_drawdown": perf["max_drawdown"],
        "max_drawdown_duration_days": perf["max_drawdown_duration_days"],
        "win_rate": perf["win_rate"],
        "profit_factor": perf["profit_factor"],
        "expectancy": perf["expectancy"],
        "fees_paid": float(run.fills.fee.sum()),
        "maker_share": float(run.fills.maker.mean()) if len(run.fills) else None,
        "rejected_orders": run.rejected_orders,
        "halted_at": iso_utc(run.halts[-1].ts) if run.halts else None,
        "halt_reason": run.halts[-1].reason if run.halts else None,
        "halts": [{"at": iso_utc(h.ts), "reason": h.reason,
                   "resumed_at": iso_utc(h.resumed_ts) if h.resumed_ts is not None else None,
                   "resume_reason": h.resume_reason or None} for h in run.halts],
        "elapsed_seconds": None,
        "session_id": None,
        "initial_capital": run.initial_capital,
        "symbol": settings.symbol,
        "timeframe": timeframe or settings.timeframe,
        "start": iso_utc(int(run.ts[0])) if n else None,
        "end": iso_utc(int(run.ts[-1])) if n else None,
        "preset": preset.name if preset is not None else None,
        "fee_rates": {"maker": maker, "taker": taker},
        "baselines": {
            "buy_and_hold": baseline_summary(bh, run.ts, run.initial_capital),
            "fixed_grid": baseline_summary(grid, run.ts, run.initial_capital),
        },
        "stats": stats,
        "monte_carlo": {**mc.to_dict(), "open_position_return": open_r} if mc is not None else None,
    }
    curves = stored_curves(run, bh.equity, grid.equity, trade_r_eq)
    return clean_json(results), curves


def float_list(values: np.ndarray) -> list[float | None]:
    """A float array as a JSON-ready list (non-finite → None), without a Python loop when all finite."""
    arr = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(arr)
    if finite.all():
        out: list[float | None] = arr.tolist()
        return out
    return [float(v) if ok else None for v, ok in zip(arr.tolist(), finite.tolist(), strict=True)]


def stored_curves(run: RunData, bh: np.ndarray, grid: np.ndarray, trade_r: np.ndarray) -> dict[str, Any]:
    """Curves kept with a session for reports; thinned to at most MAX_STORED_CURVE_POINTS points."""
    n = run.ts.shape[0]
    step = max(1, math.ceil(n / MAX_STORED_CURVE_POINTS))
    idx = np.arange(0, n, step)
    if n and idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    return {
        "ts": run.ts[idx].tolist(),
        "equity": float_list(run.equity[idx]),
        "buy_and_hold": float_list(bh[idx]),
        "fixed_grid": float_list(grid[idx]),
        "close": float_list(run.close[idx]),
        "thinned_every": step,
        "trade_returns": float_list(metrics.trade_returns(run.trades)),
        "trade_returns_on_equity": float_list(trade_r),
        "trade_pnl": float_list(run.trades.pnl),
    }


def run_backtest(
    settings: Settings,
    candles: CandleArrays,
    *,
    preset: str | None = None,
    run_id: str | None = None,
    on_progress: ProgressHook | None = None,
    monte_carlo_paths: int = DEFAULT_PATHS,
    timeframe: str | None = None,
    engine_kwargs: Mapping[str, Any] | None = None,
) -> BacktestOutcome:
    """Engine run + evaluation. `elapsed_seconds` covers both (wall time, not engine time).
    `engine_kwargs` go to `build_engine` (e.g. `ai`: the Claude service)."""
    from trdr_tui.trading.presets import get_preset

    preset_obj = get_preset(preset) if preset else None
    started = time.perf_counter()
    run, engine = run_engine(settings, candles, preset=preset, run_id=run_id, on_progress=on_progress,
                             engine_kwargs=engine_kwargs)
    results, curves = evaluate(run, candles, settings, preset=preset_obj, monte_carlo_paths=monte_carlo_paths,
                               timeframe=timeframe)
    results["elapsed_seconds"] = time.perf_counter() - started
    results["volume_known"] = bool((candles.volume > 0).any())
    if engine.funding is not None:
        results["funding"] = funding_summary(engine)
    if not results["volume_known"]:
        results.setdefault("warnings", []).append(VOLUME_UNKNOWN)
    return BacktestOutcome(results=results, curves=curves, run=run)


def funding_summary(engine: Engine) -> dict[str, Any]:
    """The scheduled deposits and withdrawals of a run: applied and refused ones, the net contribution
    and the ledger's own final equity (quote currency; `final_equity` is the time-weighted curve's)."""
    f = engine.funding
    assert f is not None
    pf = engine.portfolio
    return {
        "applied": [{"at": iso_utc(r.ts), "amount": r.amount, "equity_before": r.equity_before,
                     "equity_after": r.equity_after, "orders_resized": r.cancelled} for r in f.applied],
        "refused": [{"at": iso_utc(at), "amount": amount, "reason": why} for at, amount, why in f.refused],
        "net_contributions": float(pf.contributed_exact),
        "account_equity": pf.equity(engine.run_state.last_price),
    }


VOLUME_UNKNOWN = ("the candles have no volume: fills are not capped by bar volume and pay no size impact "
                  "(optimistic for large orders)")


def summary(results: Mapping[str, Any]) -> dict[str, Any]:
    """The stable `--json` keys first, then everything else."""
    head = {k: results.get(k) for k in SUMMARY_KEYS}
    return {**head, **{k: v for k, v in results.items() if k not in head}}
