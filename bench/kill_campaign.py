"""Kill campaign by hand: paper and live trdr processes SIGKILLed at random and aimed moments against
the fake exchange on loopback, with a WAL-loss variant; prints what was lost, duplicated or left
inconsistent (every figure must be zero). See `trdr_testkit/kill_campaign.py` for the kill moments
and the checks.

    .venv/bin/python bench/kill_campaign.py [--kills 300] [--seed 7] [--paper-share 0.25]
                                            [--wal-loss-share 0.2] [--minutes 30]

Exit status 0 when every counter is zero, 1 otherwise. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trdr_testkit.fake_coinbase import FakeExchange  # noqa: E402
from trdr_testkit.fake_coinbase.prices import load_candles  # noqa: E402
from trdr_testkit.kill_campaign import CampaignSpec, run_campaign  # noqa: E402
from trdr_tui.exchange.coinbase_auth import generate_ec_key_pem  # noqa: E402
from trdr_tui.exchange.credentials import credentials_from_values  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "coinbase_btcusd_1h_2017-07_2019-10.cdd.csv"
KEY_NAME = "organizations/11111111-2222-3333-4444-555555555555/apiKeys/66666666-7777-8888-9999-000000000000"
NS = 1_000_000_000


async def main(args: argparse.Namespace) -> int:
    pem = generate_ec_key_pem()
    creds = credentials_from_values(KEY_NAME, pem, source="bench")
    candles = load_candles(DATA, limit=2000)
    fake = FakeExchange(candles=candles, heartbeat_s=0.05, step_ns=15 * 60 * NS, start_ns=candles[0].ts,
                        step_interval_s=0.01)
    fake.add_key(creds.key_name, creds.signer().public_key())
    fake.faults.slow_s = 0.05  # every request takes a little while: more kills land mid-request
    await fake.start()
    spec = CampaignSpec(kills=args.kills, seed=args.seed, paper_share=args.paper_share,
                        wal_loss_share=args.wal_loss_share, deadline_s=args.minutes * 60)
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="trdr-kill-") as tmp:
            work = Path(tmp)
            key_file = work / "cdp_api_key.json"
            key_file.write_text(json.dumps({"name": creds.key_name, "privateKey": pem}))
            key_file.chmod(0o600)
            tally = await run_campaign(spec, work, fake, key_file, progress=lambda s: print(s, flush=True))
    finally:
        await fake.stop()
    print(f"\nkill campaign, seed {args.seed}, {time.perf_counter() - started:.0f} s")
    print(tally.summary())
    bad = tally.failures()
    if bad:
        print("FAILURES:")
        for name, value in bad.items():
            print(f"  {name}: {value}")
    return 1 if bad else 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=300)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--paper-share", type=float, default=0.25)
    p.add_argument("--wal-loss-share", type=float, default=0.2)
    p.add_argument("--minutes", type=float, default=30.0)
    sys.exit(asyncio.run(main(p.parse_args())))
