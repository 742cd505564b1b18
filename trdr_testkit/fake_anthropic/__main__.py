"""`python -m trdr_testkit.fake_anthropic [--port N] [--key KEY] [--default BEHAVIOUR]`: serve the fake
until interrupted; prints `READY url=http://127.0.0.1:PORT` once listening."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from trdr_testkit.fake_anthropic.server import BEHAVIOURS, FakeAnthropic


async def main(args: argparse.Namespace) -> None:
    fake = FakeAnthropic(api_key=args.key, default=args.default)
    await fake.start(args.port)
    print(f"READY url={fake.url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--key", default="sk-ant-test", help="the API key the fake accepts")
    p.add_argument("--default", default="valid", choices=BEHAVIOURS, help="how every request is answered")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(p.parse_args()))
