"""A trdr process for the kill tests: engine + CoinbaseFeed (+ CoinbaseExecutor) against a fake exchange.

Run as `python -m trdr_testkit.kill_driver --db ... --rest ... --ws ... --user-ws ...` with
TRDR_COINBASE_KEY_FILE set. At start it recovers crash-only from the store and reconciles with the
exchange (`engine.recovery.recover_from_store`), then trades until killed (or until `--run-seconds`,
then it stops cleanly).

`--product live|paper [--config FILE]` starts the way `trdr --live` / `trdr` do instead
(`engine.coinbase.build_coinbase_run`: a live run holding a position or open orders is resumed, its
ledger reconciled with the account's balances; paper starts a new run), with the `simple-trailing`
preset so orders come often.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from trdr_tui.config import load_settings
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.coinbase import build_coinbase_run
from trdr_tui.engine.loop import Engine
from trdr_tui.engine.recovery import recover_from_store, restore_latest
from trdr_tui.exchange.coinbase_executor import CoinbaseExecutor
from trdr_tui.exchange.coinbase_feed import CoinbaseFeed
from trdr_tui.exchange.coinbase_rest import CoinbaseRest, RetryPolicy
from trdr_tui.exchange.credentials import require_credentials
from trdr_tui.store import Store

RUN_ID = "kill-run"


async def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--rest", required=True)
    p.add_argument("--ws", required=True)
    p.add_argument("--user-ws", required=True)
    p.add_argument("--run-seconds", type=float, default=None)
    p.add_argument("--product", choices=("live", "paper"), default=None)
    p.add_argument("--config", default=None)
    args = p.parse_args(argv)
    if args.product is not None:
        return await product(args)
    settings = load_settings(env={})
    creds = require_credentials(settings)
    store = Store(args.db)
    fast = RetryPolicy(initial_s=0.02, cap_s=0.2)
    rest = CoinbaseRest(args.rest, signer=creds.signer(), retry=fast, timeout_s=1.0)
    feed = CoinbaseFeed(settings.symbol, "1h", ws_url=args.ws, rest=rest, signer=creds.signer(), reconnect=fast,
                        close_grace_s=0, poll_interval_s=0.5)
    executor = CoinbaseExecutor(rest, symbol=settings.symbol, store=store, run_id=RUN_ID, user_ws_url=args.user_ws,
                                signer=creds.signer(), retry=fast, poll_interval_s=0.2, recovery_interval_s=0.5,
                                ws_reconnect=fast)
    engine = build_engine(settings, mode="live", feed=feed, executor=executor, store=store, run_id=RUN_ID,
                          preset="simple-trailing", checkpoint_interval_s=1.0)
    await executor.start()
    restore_latest(engine, store, RUN_ID)  # policy and trailing book from the newest checkpoint, if any
    checked, reported = await recover_from_store(engine, executor, store)
    print(f"READY reconciled={checked} reports={reported}", flush=True)
    if not await run_for(engine, args.run_seconds):
        return 0
    await settle(executor)
    await feed.stop()
    await executor.stop()
    await rest.close()
    store.close()
    print("CLEAN EXIT", flush=True)
    return 0


async def run_for(engine: Engine, seconds: float | None) -> bool:
    """Run the engine until killed (`seconds` None: returns False when the feed ends), or for `seconds`
    and then stop it cleanly with its orders settled (True)."""
    task = asyncio.create_task(engine.run())
    if seconds is None:
        await task
        return False
    await asyncio.sleep(seconds)
    await engine.stop("clean exit")
    await task
    await engine.orders.settle()
    return True


async def settle(executor: CoinbaseExecutor) -> None:
    """Until every order the executor still tracks reaches a final state (bounded: 60 s). Prints
    `SETTLED tracked=N failed=M seconds=S`: the orders still followed and the sends still failed when
    it stopped waiting (both 0 unless the bound was reached)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() < started + 60.0:
        await executor.retry_failed()
        await executor.sync_all()
        await executor.settle()
        if not executor._orders and not executor.outbox.failed():
            break
        await asyncio.sleep(0.1)
    print(f"SETTLED tracked={len(executor._orders)} failed={len(executor.outbox.failed())} "
          f"seconds={loop.time() - started:.1f}", flush=True)


async def product(args: argparse.Namespace) -> int:
    """Start as the `trdr` command does (paper or live on Coinbase market data)."""
    env = {"TRDR_COINBASE_REST_URL": args.rest, "TRDR_COINBASE_WS_URL": args.ws,
           "TRDR_COINBASE_USER_WS_URL": args.user_ws}
    settings = load_settings(args.config, env=env)
    store = Store(args.db)
    engine, resumed = build_coinbase_run(settings, live=args.product == "live", store=store,
                                         preset="simple-trailing")
    print(f"READY run={engine.run_id} resumed={int(resumed)}", flush=True)
    if not await run_for(engine, args.run_seconds):
        return 0
    executor = engine.executor
    if isinstance(executor, CoinbaseExecutor):
        await settle(executor)
        await executor.stop()
    feed = engine.feed
    if isinstance(feed, CoinbaseFeed):
        await feed.stop()
        await feed.rest.close()  # the executor's client too
    store.close()
    print("CLEAN EXIT", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
