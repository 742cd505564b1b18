"""`trdr` with no command: the cockpit (TUI) or, with --headless, the engine alone.

    trdr                                   cockpit, paper mode on Coinbase market data
    trdr --feed replay [--data F] [--speed N|max]   cockpit on replayed real candles (offline demo)
    trdr --headless [...]                  the same engine, JSON log lines, no UI
    trdr --live                            real orders: needs credentials and a typed confirmation

Everything is validated before anything starts: a bad config, data file, speed or missing credentials
is refused with a message and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trdr_tui.commands.context import CliContext
from trdr_tui.core import stop_signals
from trdr_tui.core.errors import ConfigError, CredentialsError, DataError, RetryError, TrdrError
from trdr_tui.core.types import Mode

if TYPE_CHECKING:
    from trdr_tui.api.control import Hooks
    from trdr_tui.api.host import ApiLaunch
    from trdr_tui.config import Settings
    from trdr_tui.core.arrays import CandleArrays
    from trdr_tui.core.logs import LogFiles
    from trdr_tui.engine.loop import Engine
    from trdr_tui.store.db import Store
    from trdr_tui.tui.services import BacktestRunner

def parse_speed(raw: str) -> float | None:
    """`--speed`: candles per second (> 0), or `max` for as fast as possible (None)."""
    if raw.strip().lower() == "max":
        return None
    try:
        speed = float(raw)
    except ValueError:
        raise ConfigError(f"--speed '{raw}' is not a number", hint="use candles per second, e.g. 2, or 'max'") from None
    if not (speed > 0 and speed < float("inf")):
        raise ConfigError(f"--speed must be above 0, got {raw}", hint="use candles per second, e.g. 2, or 'max'")
    return speed


def coinbase_engine(settings: Settings, *, live: bool, store: Store) -> Engine:
    """Paper (simulated fills) or live (real orders) on Coinbase market data.

    Live is crash-only: when the store holds a live run with orders still open (the process died or was
    killed), that run is resumed — ledger and orders rebuilt from the store, then reconciled with the
    exchange by client_order_id — instead of starting a new one beside it.
    """
    from trdr_tui.engine.coinbase import build_coinbase_run
    from trdr_tui.tuning.daily import attach_self_tuning

    engine, resumed = build_coinbase_run(settings, live=live, store=store)
    if resumed:
        print(f"trdr: resuming live run {engine.run_id}: it has orders still open", file=sys.stderr)
    attach_self_tuning(engine, store)  # adaptive values and the daily loop ([tuning])
    return engine


def check_live_credentials(settings: Settings) -> str | None:
    """None when credentials load; otherwise why not (the secret itself is never part of the reason)."""
    from trdr_tui.exchange.credentials import load_credentials

    try:
        creds = load_credentials(settings)
    except CredentialsError as exc:
        return exc.render()
    if creds is None:
        return ("no Coinbase API credentials: set TRDR_COINBASE_API_KEY and TRDR_COINBASE_API_SECRET, "
                "or TRDR_COINBASE_KEY_FILE")
    return None


def verify_key(settings: Settings, *, live: bool) -> None:
    """Paper and live with credentials: the exchange must accept the key before anything starts. A
    rejected key (HTTP 401/403) is bad configuration: CredentialsError naming the key and its source
    (exit 2). Live also refuses an exchange it cannot reach; paper leaves that to its feed, which keeps
    reconnecting."""
    from trdr_tui.exchange.credentials import load_credentials, verify_credentials

    creds = load_credentials(settings)
    if creds is None:
        return
    try:
        stop_signals.run(verify_credentials(creds, settings.coinbase.rest_url))
    except RetryError as exc:
        if live:
            raise
        print(f"trdr: warning: the API key could not be checked: {exc.message}", file=sys.stderr)


def confirm_live_on_terminal(settings: Settings) -> None:
    """--live: the user types `live` at a terminal prompt; anything else (or no terminal) refuses."""
    if not sys.stdin.isatty():
        raise ConfigError("--live needs a typed confirmation at a terminal", hint="run it interactively")
    print(f"trdr will place REAL orders for {settings.symbol} with up to {settings.capital:,.2f} of capital.")
    answer = input("Type 'live' to continue: ")
    if answer.strip().lower() != "live":
        raise ConfigError("live trading not confirmed; nothing was started")


def default_log_path(ctx: CliContext) -> Path:
    if ctx.args.log_file is not None:
        return Path(ctx.args.log_file)
    db = ctx.db_path
    return Path(db).expanduser().with_name("trdr.log") if db != ":memory:" else Path("trdr.log")


def replay_input(ctx: CliContext) -> tuple[Settings, CandleArrays]:
    """The settings and the candles of a replay, the file read once: `--data FILE` at `--timeframe`, else
    at the bar length inferred from the file; without `--data`, the bundled real BTC-USD hourly demo
    data at `--timeframe`, else the config's. The settings take the replay's timeframe. Raises DataError
    for a file that cannot be read, whose bar length cannot be told or disagrees with `--timeframe`."""
    from trdr_tui.config import load_settings
    from trdr_tui.market.importer import load_candle_file, read_candle_file
    from trdr_tui.resources import demo_data_path

    args = ctx.args
    settings = ctx.settings
    if args.data is not None:
        parsed = read_candle_file(args.data, args.run_timeframe)
        timeframe, candles = parsed.timeframe, parsed.candles
    else:
        timeframe = settings.timeframe if args.run_timeframe is None else args.run_timeframe
        bundled = demo_data_path()
        if not bundled.is_file():
            raise DataError("the bundled demo data is missing from this installation",
                            hint="pass a candle file with --data FILE, or reinstall trdr")
        candles = load_candle_file(Path(str(bundled)), timeframe)
    if timeframe != settings.timeframe:
        settings = load_settings(args.config, overrides={"timeframe": timeframe})
    return settings, candles


def run_app(ctx: CliContext) -> int:
    settings = ctx.settings  # a bad configuration is refused before anything starts
    args = ctx.args
    if args.run_timeframe is not None:
        from trdr_tui.config import load_settings

        settings = load_settings(args.config, overrides={"timeframe": args.run_timeframe})
    speed = parse_speed(args.speed)
    api = api_options(ctx, settings)  # a bad --api, or TLS half given, is refused before the store is opened
    feed = args.feed or "coinbase"
    replayed: CandleArrays | None = None
    if args.live:
        if feed == "replay":
            raise ConfigError("--live cannot trade on replayed candles", hint="drop --feed replay")
        reason = check_live_credentials(settings)
        if reason is not None:
            raise CredentialsError(f"live trading refused: {reason}")
        verify_key(settings, live=True)
        engine = coinbase_engine(settings, live=True, store=ctx.store)
        confirm_live_on_terminal(settings)
    elif feed == "replay":
        settings, candles = replay_input(ctx)
        replayed = candles
        notes: list[str] = []
        from trdr_tui.engine.assembly import build_replay_engine

        engine = build_replay_engine(settings, candles, speed=speed, store=ctx.store, log=notes)
        for note in notes:
            print(f"trdr: note: {note}", file=sys.stderr)
    else:
        if args.data is not None:
            raise ConfigError("--data is only used with --feed replay", hint="add --feed replay")
        verify_key(settings, live=False)
        engine = coinbase_engine(settings, live=False, store=ctx.store)

    if api is not None:
        api.hooks = api_hooks(ctx, settings, replayed)
    files = open_log_files(ctx, settings)
    try:
        if args.headless:
            def switch(mode: Mode) -> Engine:  # the API's mode switch: paper ↔ live on Coinbase market data
                return coinbase_engine(settings, live=mode is Mode.LIVE, store=ctx.store)

            return asyncio.run(run_headless_restoring(ctx, settings, engine, replayed, speed, api, files.level,
                                                      switch=None if replayed is not None else switch))
        return run_tui(ctx, settings, engine, replayed, api, log_level=files.level)
    finally:
        files.close()


MAX_RESTORES = 3
"""E007 restores from the last good checkpoint one headless process makes before it stops."""


async def run_headless_restoring(ctx: CliContext, settings: Settings, engine: Engine, replayed: CandleArrays | None,
                                 speed: float | None, api: ApiLaunch | None, level: str,
                                 switch: Callable[[Mode], Engine] | None = None) -> int:
    """The headless run; a paper or live run stopped by StateCorruption (E007) goes on from its last good
    checkpoint when that is safe (`engine.recovery.restore_after_corruption`: paper restores and replays
    the stored fills; live also reconciles orders, fills and balances with the exchange), at most
    `MAX_RESTORES` times; otherwise it stops with the checkpoint and the command to inspect it (exit 1).
    `switch` builds the engine for a mode the control API switches to (None: no switching)."""
    from trdr_tui.core.errors import StateCorruption
    from trdr_tui.engine.recovery import corruption_stop, restore_after_corruption, resume_run
    from trdr_tui.headless import run_headless

    replay_from = 0  # the replayed bar the current engine's feed starts at

    def rebuild(run_id: str) -> Engine:
        nonlocal replay_from
        from trdr_tui.engine.coinbase import build_coinbase_engine, resume_live_run

        if engine.mode is Mode.LIVE:
            fresh = build_coinbase_engine(settings, live=True, store=ctx.store, run_id=run_id)
            resume_live_run(fresh, ctx.store)
            return fresh
        if replayed is not None:
            from trdr_tui.engine.assembly import build_replay_engine

            replay_from += engine.bars_done + 1  # on after the bar that failed (its fills are stored)
            if replay_from >= len(replayed):
                raise StateCorruption(f"run {run_id}: the replay has no bar left after the one that failed")
            fresh = build_replay_engine(settings, replayed[replay_from:], speed=speed, store=ctx.store, log=[],
                                        run_id=run_id)
        else:
            fresh = build_coinbase_engine(settings, live=False, store=ctx.store, run_id=run_id)
        resume_run(fresh, ctx.store)
        return fresh

    restores = 0
    while True:
        code = await run_headless(engine, stdout=sys.stdout, min_level=level, capital=settings.capital, api=api,
                                  rebuild=switch)
        failure = engine.failure
        if not isinstance(failure, StateCorruption):
            return code
        try:
            if restores == MAX_RESTORES:
                raise corruption_stop(failure, ctx.store, engine.run_id, f"restored {restores} times already")
            engine = restore_after_corruption(engine, failure, ctx.store, rebuild)
        except StateCorruption as stop:
            print(f"trdr: error: {stop}", file=sys.stderr)
            return 1
        restores += 1
        print(f"trdr: {failure.render()}\n  restored run {engine.run_id} from its last good checkpoint and "
              f"reconciled with {engine.executor.name}; going on", file=sys.stderr)


def open_log_files(ctx: CliContext, settings: Settings) -> LogFiles:
    """The rotating JSON logs (core/logs.py) at `--log-level` (or $TRDR_LOG_LEVEL, default info)."""
    from trdr_tui.core.logs import LogFiles

    level = ctx.args.log_level or os.environ.get("TRDR_LOG_LEVEL", "info").lower()
    return LogFiles.open(default_log_path(ctx), level=level, max_bytes=settings.api.log_max_bytes,
                         backups=settings.api.log_backups)


def api_options(ctx: CliContext, settings: Settings) -> ApiLaunch | None:
    """The control API for this run (None with --no-api): its address, token file and TLS files, checked
    (`ApiLaunch.check`, ConfigError) before anything is opened or started. Its hooks are placeholders until
    `api_hooks` lends it the engine's once the engine exists."""
    args = ctx.args
    if args.no_api and args.api is not None:
        raise ConfigError(f"--api {args.api} and --no-api contradict each other", hint="give one of them")
    if args.no_api:
        return None
    from trdr_tui.api.control import Hooks
    from trdr_tui.api.host import ApiLaunch, default_token_path, discovery_path

    token = Path(settings.api.token_file) if settings.api.token_file else default_token_path(ctx.db_path)
    listen = settings.api.listen if args.api is None else args.api  # `--api ""` is refused, not the default
    launch = ApiLaunch(listen=listen, hooks=Hooks(settings=settings), token_file=token,
                       discovery=discovery_path(ctx.db_path), allow_remote=args.api_allow_remote,
                       tls_cert=args.api_tls_cert, tls_key=args.api_tls_key)
    launch.check()
    return launch


def api_hooks(ctx: CliContext, settings: Settings, replayed: CandleArrays | None) -> Hooks:
    """What this run lends the control API: the settings, the credential check, backtests, read commands."""
    from trdr_tui.api.control import Hooks

    runner = backtest_runner(ctx, settings, replayed)

    def backtest(request: Any, progress: Any) -> dict[str, Any]:
        from trdr_tui.tui.services import BacktestRequest

        outcome = runner(BacktestRequest(start=request.start, end=request.end, preset=request.preset), progress)
        return outcome.stats

    return Hooks(settings=settings, credential_check=lambda: check_live_credentials(settings), backtest=backtest,
                 cli_reader=cli_reader(ctx),
                 mode_switch_unavailable="a replay trades only on paper: run trdr on Coinbase market data "
                                         "(without --feed replay) to switch between paper and live")


def cli_reader(ctx: CliContext) -> Any:
    """Runs read-only subcommands inside this process, on its open store (see commands/remote.py)."""
    from trdr_tui.commands.remote import make_cli_reader

    return make_cli_reader(ctx)


def run_tui(ctx: CliContext, settings: Settings, engine: Engine, replayed: CandleArrays | None,
            api: ApiLaunch | None = None, log_level: str = "info") -> int:
    from trdr_tui.core.logs import EventLog
    from trdr_tui.tui.app import make_app

    events = EventLog(engine.bus, engine.clock, min_level=log_level)

    async def switch_mode(mode: Mode) -> Engine:
        """paper ↔ live on Coinbase market data (the old engine has stopped and checkpointed). A key the
        exchange rejects refuses the switch (the cockpit shows the error and keeps the old engine)."""
        from trdr_tui.exchange.credentials import load_credentials, verify_credentials

        creds = load_credentials(settings)
        if creds is not None:
            await verify_credentials(creds, settings.coinbase.rest_url)
        new = coinbase_engine(settings, live=mode is Mode.LIVE, store=ctx.store)
        events.bind(new.bus, new.clock)  # the log follows the cockpit to the new engine
        return new

    app = make_app(settings, engine, backtest_runner=backtest_runner(ctx, settings, replayed),
                   credential_check=lambda: check_live_credentials(settings), mode_switcher=switch_mode)
    if api is not None:
        api.hooks.mode_switcher = app.switch_engine  # the API's switch is the `m` key's
    if api is None:
        app.run()
    else:
        async def with_api() -> None:
            """The API serves whichever engine the cockpit drives (it follows a mode switch)."""
            await api.start(lambda: app.engine)  # type: ignore[arg-type, return-value]
            try:
                await app.run_async()
            finally:
                await api.stop()

        asyncio.run(with_api())
    events.close()
    if app.engine_error is not None:
        error = app.engine_error
        text = error.render() if isinstance(error, TrdrError) else f"{type(error).__name__}: {error}"
        logging.getLogger("trdr.cockpit").error("engine error: %s", text)
        print(f"trdr: engine error: {text}", file=sys.stderr)
        return 1
    return app.return_code or 0


def backtest_runner(ctx: CliContext, settings: Settings, replayed: CandleArrays | None) -> BacktestRunner:
    """The backtest screen's runner: on the replayed bars, else on the candle store (read in the worker)."""
    from trdr_tui.backtest.data import load_stored
    from trdr_tui.tui.services import EngineBacktests, slice_candles

    store = ctx.store  # runs are stored as sessions, as `trdr backtest` stores them
    if replayed is not None:
        return EngineBacktests(settings, slice_candles(replayed), store=store)

    def stored(start: int | None, end: int | None) -> CandleArrays:
        return load_stored(store, settings.symbol, settings.timeframe, start, end)

    return EngineBacktests(settings, stored, store=store)
