"""Run the fake Coinbase exchange on its own: `python -m trdr_testkit.fake_coinbase --key-file key.json`.

It writes (or reuses) a CDP-style key file (chmod 600) that trdr can use through
TRDR_COINBASE_KEY_FILE, serves REST and WebSocket on 127.0.0.1, and prints the URLs to export:

    TRDR_COINBASE_REST_URL=http://127.0.0.1:PORT
    TRDR_COINBASE_WS_URL=ws://127.0.0.1:PORT/ws
    TRDR_COINBASE_USER_WS_URL=ws://127.0.0.1:PORT/ws-user
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from trdr_testkit.fake_coinbase.prices import load_candles
from trdr_testkit.fake_coinbase.server import FakeExchange
from trdr_tui.exchange.coinbase_auth import generate_ec_key_pem
from trdr_tui.exchange.credentials import credentials_from_file

KEY_NAME = "organizations/00000000-0000-4000-8000-000000000000/apiKeys/00000000-0000-4000-8000-00000000fa4e"


def ensure_key_file(path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"name": KEY_NAME, "privateKey": generate_ec_key_pem()}, fh)


async def serve(args: argparse.Namespace) -> None:
    candles = load_candles(args.data, limit=args.bars) if args.data else None
    start_ns = candles[0].ts if candles and args.accelerate else None
    fake = FakeExchange(candles=candles, step_interval_s=args.step_interval,
                        step_ns=int(args.accelerate * 1e9) if args.accelerate else None, start_ns=start_ns,
                        balances={"USD": args.usd, "BTC": "0"})
    key_path = Path(args.key_file).expanduser()
    ensure_key_file(key_path)
    creds = credentials_from_file(key_path, source="--key-file")
    fake.add_key(creds.key_name, creds.signer().public_key())
    await fake.start(args.port)
    print(f"READY rest={fake.rest_url} ws={fake.ws_url} user_ws={fake.user_ws_url}", flush=True)
    print(f"export TRDR_COINBASE_REST_URL={fake.rest_url} TRDR_COINBASE_WS_URL={fake.ws_url} "
          f"TRDR_COINBASE_USER_WS_URL={fake.user_ws_url} TRDR_COINBASE_KEY_FILE={key_path}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trdr_testkit.fake_coinbase", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--key-file", default="fake_cdp_api_key.json", help="CDP key file to create or reuse")
    p.add_argument("--data", help="candle CSV for the price path (default: a synthetic zig-zag)")
    p.add_argument("--bars", type=int, default=2000, help="use the last N bars of --data")
    p.add_argument("--step-interval", type=float, default=1.0, help="seconds between price-path steps")
    p.add_argument("--accelerate", type=float, default=0.0,
                   help="exchange seconds per step (0: real time); e.g. 900 = one hourly bar per 4 steps")
    p.add_argument("--usd", default="10000", help="starting USD balance")
    args = p.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
