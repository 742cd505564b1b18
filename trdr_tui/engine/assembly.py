"""`build_engine`: the one factory the TUI, the headless runner, the backtest runner and tests use.

    engine = build_engine(settings, mode="backtest", candles=arrays, preset="simple-trailing")
    await engine.run()
    engine.record.final_equity, engine.record.fills, engine.record.equity_curve()

Defaults by mode (each part can be passed in instead):

| mode     | clock                                  | feed                    | executor                 |
|----------|----------------------------------------|-------------------------|--------------------------|
| backtest | SimClock at the first bar              | ReplayFeed(candles)     | SimExecutor              |
| paper    | WallClock (SimClock for a replay feed) | `feed` (or a replay)    | SimExecutor              |
| live     | WallClock                              | `feed` (required)       | `executor` (required)    |

Decisions: a preset (`simple-trailing`) brings its own policy and no agents. Otherwise `decisions` (a
core.engine_api.DecisionSource) or, when None, the orchestrator built from `trdr_tui.agents` drives the
grid policy (`trading.grid.GridPolicy`). In backtests a source with a batch path (`precompute`,
`decision_at`) is asked once for every bar's decision.
"""

from __future__ import annotations

import uuid
from typing import Any

from trdr_tui.agents.ai.service import ClaudeService
from trdr_tui.agents.protocol import CandleSource
from trdr_tui.config import Settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import NS_PER_SECOND, Clock, SimClock, WallClock
from trdr_tui.core.engine_api import DecisionSource, Executor
from trdr_tui.core.errors import ConfigError, NotAvailable
from trdr_tui.core.timeframes import infer_timeframe
from trdr_tui.core.types import Mode
from trdr_tui.engine.loop import Engine, Feed
from trdr_tui.exchange.fees import FeeSchedule
from trdr_tui.exchange.sim_executor import SimExecutor, SlippageModel
from trdr_tui.market.replay import ReplayFeed
from trdr_tui.store.db import Store
from trdr_tui.store.journal import start_writer
from trdr_tui.store.orders import RunRepository
from trdr_tui.trading.constraints import TimeConstraints
from trdr_tui.trading.funding import FundingSchedule
from trdr_tui.trading.grid import GridPolicy
from trdr_tui.trading.orders import OrderManager
from trdr_tui.trading.policy import Policy
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.presets import Preset, get_preset, make_policy
from trdr_tui.trading.risk import RiskLimits, RiskManager
from trdr_tui.trading.sizing import Increments, ProductSpec
from trdr_tui.trading.slippage import SlippageMinimizer

HOUR_NS = 3600 * NS_PER_SECOND


def build_engine(
    settings: Settings,
    *,
    mode: Mode | str,
    candles: CandleArrays | None = None,
    feed: Feed | None = None,
    store: Store | None = None,
    clock: Clock | None = None,
    bus: EventBus | None = None,
    executor: Executor | None = None,
    decisions: DecisionSource | None = None,
    run_id: str | None = None,
    preset: str | Preset | None = None,
    speed: float | None = None,
    checkpoint_interval_s: float | None = None,
    product: ProductSpec | None = None,
    candle_source: CandleSource | None = None,
    trade_from_ns: int | None = None,
    ai: ClaudeService | None = None,
) -> Engine:
    """Assemble an Engine; raises ConfigError for inconsistent arguments, NotAvailable for missing parts.

    `candle_source`: stored candles of other products for the agents (a reference product); default
    the `store`'s. `ai`: the Claude service (agents.ai.service.ClaudeService) the panel shares; default
    one from `[ai]` (backtests in mode `ai.backtest`), only when an AI consumer is enabled."""
    mode = _mode(mode)
    if (candles is None) == (feed is None):
        raise ConfigError("build_engine needs exactly one of `candles` (a replay) or `feed`")
    if feed is None:
        assert candles is not None
        if len(candles) == 0:
            raise ConfigError("no candles to replay", hint="import data first: trdr data import <file>")
        bar = infer_timeframe(candles.ts)
        if bar is not None and bar != settings.timeframe:
            raise ConfigError(f"the candles are {bar} bars but the configured timeframe is {settings.timeframe}",
                              hint=f"set timeframe = \"{bar}\" (or --set timeframe={bar}), or resample the candles")
        feed = ReplayFeed(candles, symbol=settings.symbol, timeframe=settings.timeframe, speed=speed)
    if feed.symbol != settings.symbol:
        raise ConfigError(f"the feed streams {feed.symbol} but the configured symbol is {settings.symbol}",
                          hint="build the feed for the configured symbol")
    if mode is Mode.BACKTEST and not isinstance(feed, ReplayFeed):
        raise ConfigError("backtest mode replays candles", hint="pass candles=..., not a live feed")
    if clock is None:
        if isinstance(feed, ReplayFeed):
            clock = SimClock(int(feed.arrays.ts[0]))
        elif mode is Mode.BACKTEST:  # pragma: no cover - guarded above
            raise ConfigError("backtest needs a SimClock")
        else:
            clock = WallClock()
    bus = bus or EventBus()
    run_id = run_id or f"{mode.value[:2]}-{uuid.uuid4().hex[:10]}"
    preset_obj = get_preset(preset) if isinstance(preset, str) else preset

    # the steps every size and price is on: the preset's; else the product's (the simulator's product
    # when none is given); a live executor without a product given rounds at its own boundary
    increments = preset_obj.increments if preset_obj is not None else \
        (product or ProductSpec(symbol=settings.symbol)).increments if product is not None or executor is None \
        else None
    if executor is None:
        if mode is Mode.LIVE:
            raise ConfigError("live mode needs the Coinbase executor", hint="pass executor=CoinbaseExecutor(...)")
        executor = _sim_executor(settings, clock, preset_obj, increments)
        if isinstance(feed, ReplayFeed) and not bool((feed.arrays.volume > 0).any()):
            executor.volume_known = False  # a file without volume: fills uncapped (SimExecutor docs)

    portfolio = Portfolio(settings.symbol, settings.capital, increments=increments)
    limits = RiskLimits.none() if preset_obj is not None and not preset_obj.risk_caps \
        else RiskLimits.from_settings(settings)
    risk = RiskManager(limits, portfolio)
    # Only a real paper/live session reads and writes the saved agent weights; backtests and replays
    # (the demo) depend on the config alone and leave them as they were.
    keep_weights = mode is not Mode.BACKTEST and not isinstance(feed, ReplayFeed)
    repo = None
    if store is not None:
        if mode is not Mode.BACKTEST:  # paper/live: the journal in front of the store (invariant 11)
            sc = settings.store
            start_writer(store, fsync=sc.journal_fsync, flush_interval_s=sc.flush_interval_seconds,
                         checkpoint_interval_s=sc.db_checkpoint_seconds)
        repo = RunRepository(store, run_id, mode, batched=mode is Mode.BACKTEST,
                             batch_size=settings.backtest.batch_size, keep_weights=keep_weights)
    tr = settings.trailing
    use_time = preset_obj is None or preset_obj.max_duration
    use_improve = preset_obj is None or preset_obj.improvement
    orders = OrderManager(symbol=settings.symbol, clock=clock, bus=bus, portfolio=portfolio, risk=risk,
                          executor=executor, run_id=run_id, repo=repo, partial_fill_cancel=tr.partial_fill_cancel,
                          max_duration_ns=int(tr.max_duration_hours * HOUR_NS) if use_time else None,
                          improvement=tr.improvement_threshold if use_improve else 0.0, increments=increments)

    if preset_obj is None:
        orders.smart_spread = settings.execution.smart_placement_spread
    policy: Policy
    if preset_obj is not None:
        policy = make_policy(preset_obj)
        price_model = preset_obj.price_model
        decisions = None
    else:
        if decisions is None:
            decisions = _orchestrator(settings, bus=bus, clock=clock, store=store, run_id=run_id, mode=mode,
                                      candles=candle_source, ai=ai, keep_weights=keep_weights)
        policy = GridPolicy(settings, product=product)
        price_model = settings.execution.price_model

    if checkpoint_interval_s is None and mode is not Mode.BACKTEST:
        checkpoint_interval_s = settings.store.checkpoint_interval_seconds
    interval = int(checkpoint_interval_s * NS_PER_SECOND) if checkpoint_interval_s else None
    engine = Engine(settings=settings, mode=mode, clock=clock, bus=bus, feed=feed, executor=executor,
                    portfolio=portfolio, orders=orders, risk=risk, policy=policy, decisions=decisions,
                    price_model=price_model, run_id=run_id, checkpoints=repo, checkpoint_interval_ns=interval,
                    trade_from_ns=trade_from_ns)
    _order_rules(settings, engine, mode)
    return engine


def _order_rules(settings: Settings, engine: Engine, mode: Mode) -> None:
    """Time constraints, scheduled funding and the slippage minimizer, when configured (none by default)."""
    orders = engine.orders
    orders.set_constraints(TimeConstraints.from_config(settings.time_constraints))
    if settings.funding.events:
        if mode is Mode.LIVE:
            raise ConfigError("`[funding] events` are for backtests and paper runs",
                              hint="remove them: a live account's deposits are made at the exchange")
        schedule = FundingSchedule(settings.funding, orders, engine.policy)
        if mode is not Mode.BACKTEST:  # paper: events whose time passed before the start are not applied
            schedule.skip(sum(1 for at, _ in schedule.events if at < engine.clock.now_ns()))
        schedule.listeners.append(lambda r: engine.funded(r, "schedule"))
        schedule.refusal_listeners.append(lambda at, amount, why: engine.funding_refused(at, amount, why, "schedule"))
        engine.funding = schedule
        orders.on_time(schedule.on_time)
    if settings.slippage.enabled:
        tr = settings.trailing
        orders.slippage = SlippageMinimizer(settings.slippage, engine.recent_bars, engine.clock,
                                            min_trail=tr.min_distance, max_trail=tr.max_distance)


def _mode(mode: Mode | str) -> Mode:
    try:
        return Mode(mode)
    except ValueError:
        raise ConfigError(f"unknown mode {mode!r}", hint="use backtest, paper or live") from None


def _sim_executor(settings: Settings, clock: Clock, preset: Preset | None,
                  increments: Increments | None) -> SimExecutor:
    if preset is not None:
        fees = FeeSchedule.flat(preset.taker_fee, preset.maker_fee)
        slippage = SlippageModel.from_config(settings.execution) if preset.slippage else SlippageModel()
        return SimExecutor(clock, fees, slippage=slippage, max_volume_share=settings.execution.max_volume_share,
                           taker_volume_cap=preset.slippage, increments=increments)
    base = settings.fees.thirty_day_volume_usd if settings.fees.thirty_day_volume_usd > 0 else None
    return SimExecutor.from_settings(clock, FeeSchedule.from_config(settings.fees), settings.execution,
                                     base_volume_usd=base, increments=increments)


def _orchestrator(settings: Settings, *, bus: EventBus, clock: Clock, store: Store | None, run_id: str,
                  mode: Mode, candles: CandleSource | None = None, ai: ClaudeService | None = None,
                  keep_weights: bool = False) -> DecisionSource:
    """The agent panel from `[agents]`, or the ensemble over it (trdr_tui.agents.factory.build_decision_source)."""
    try:
        from trdr_tui.agents.factory import build_decision_source
    except ImportError as exc:
        raise NotAvailable(f"agent-driven trading needs the agents package ({exc})",
                           hint="run a preset instead: --preset simple-trailing") from None
    backtest = mode is Mode.BACKTEST
    orch: Any = build_decision_source(settings, bus=bus, clock=clock, store=store, run_id=run_id,
                                      log_batch_size=settings.backtest.batch_size if backtest else 1,
                                      restore_weights=keep_weights, candles=candles, ai=ai,
                                      ai_mode=settings.ai.backtest if backtest else "live")
    return orch  # type: ignore[no-any-return]


# --- a replay in paper mode (the cockpit's offline demo, `trdr --feed replay`) --------------------

FALLBACK_PRESET = "simple-trailing"
# A replay runs on market time (hours per second): checkpoints follow market time too, once a market day.
# The live 60 s interval would mean one checkpoint per replayed hourly bar (about 14 ms of DuckDB work
# each, measured: roughly triples a max-speed replay).
REPLAY_CHECKPOINT_S = 86_400.0
# A max-speed replay crosses several market days per second: it also waits this long in wall time
# between auto checkpoints (a replay is reproducible from its file; the shutdown checkpoint is kept).
REPLAY_MAX_SPEED_CHECKPOINT_WALL_S = 1.0


def replay_feed(settings: Settings, candles: CandleArrays, speed: float | None) -> ReplayFeed:
    """At max speed the feed itself hands the event loop back every few candles (market.replay). A paced
    replay plays the agents' warm-up history at max speed first, so the panel votes from the start."""
    warmup = settings.backtest.warmup_bars if speed is not None else 0
    return ReplayFeed(candles, symbol=settings.symbol, timeframe=settings.timeframe, speed=speed, warmup=warmup)


def build_replay_engine(settings: Settings, candles: CandleArrays, *, speed: float | None,
                        store: Store | None, log: list[str], run_id: str | None = None) -> Engine:
    """Paper mode on replayed candles. Without the agents package, the simple-trailing preset (said so).

    The first `backtest.warmup_bars` bars are the agents' warm-up: they run through the engine but place
    no orders (`trade_from_ns`). With `run_id`, an engine that goes on with that run (restored from its
    checkpoint, `recovery.resume_run`): no warm-up."""
    interval = max(settings.store.checkpoint_interval_seconds, REPLAY_CHECKPOINT_S)
    warm = settings.backtest.warmup_bars
    trade_from = int(candles.ts[warm]) if 0 < warm < len(candles) and run_id is None else None
    try:
        engine = build_engine(settings, mode=Mode.PAPER, feed=replay_feed(settings, candles, speed), store=store,
                              checkpoint_interval_s=interval, trade_from_ns=trade_from, run_id=run_id)
    except NotAvailable as exc:
        log.append(f"{exc.message}; running the '{FALLBACK_PRESET}' preset instead")
        engine = build_engine(settings, mode=Mode.PAPER, feed=replay_feed(settings, candles, speed), store=store,
                              preset=FALLBACK_PRESET, checkpoint_interval_s=interval, trade_from_ns=trade_from,
                              run_id=run_id)
    if speed is None:
        engine.checkpoint_min_wall_ns = int(REPLAY_MAX_SPEED_CHECKPOINT_WALL_S * NS_PER_SECOND)
    return engine
