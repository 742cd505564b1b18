"""Kill test: a live trdr process is SIGKILLed at random moments while orders are in flight, restarted,
reconciles, and at the end the exchange and the ledger agree. CI runs 5 kills; set TRDR_KILL_RUNS for more."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.exchange.test_e2e_engine import accelerated_fake
from trdr_testkit.fake_coinbase import FakeExchange
from trdr_testkit.kill_campaign import CampaignSpec, run_campaign
from trdr_tui.exchange.credentials import Credentials
from trdr_tui.store import Store

KILLS = int(os.environ.get("TRDR_KILL_RUNS", "5"))


async def spawn(fake: FakeExchange, db: Path, key_file: Path, run_seconds: float | None = None
                ) -> asyncio.subprocess.Process:
    args = [sys.executable, "-m", "trdr_testkit.kill_driver", "--db", str(db), "--rest", fake.rest_url,
            "--ws", fake.ws_url, "--user-ws", fake.user_ws_url]
    if run_seconds is not None:
        args += ["--run-seconds", str(run_seconds)]
    env = {**os.environ, "TRDR_COINBASE_KEY_FILE": str(key_file)}
    return await asyncio.create_subprocess_exec(*args, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)


async def wait_line(proc: asyncio.subprocess.Process, prefix: str, timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    seen: list[str] = []

    async def read() -> str:
        while True:
            raw = await proc.stdout.readline()  # type: ignore[union-attr]
            if not raw:
                raise AssertionError("driver exited early:\n" + "".join(seen[-40:]))
            line = raw.decode(errors="replace")
            seen.append(line)
            if line.startswith(prefix):
                return line

    return await asyncio.wait_for(read(), timeout)


def in_flight(db: Path) -> int:
    """Orders written ahead whose final outcome the store did not have when the process died."""
    with Store(db) as store:
        row = store.cursor().execute(
            "SELECT count(*) FROM exchange_outbox x JOIN orders o ON o.client_order_id = x.client_order_id "
            "WHERE x.state = 'sending' OR coalesce((SELECT to_status FROM order_transitions t "
            "WHERE t.order_id = o.id ORDER BY seq DESC LIMIT 1), o.status) NOT IN "
            "('FILLED', 'CANCELLED', 'REJECTED', 'EXPIRED')").fetchone()
        return int(row[0]) if row else 0


async def wait_for_send(fake: FakeExchange, timeout: float = 8.0) -> None:
    """Until the exchange sees a new order request (so the kill lands while one is in flight)."""
    before = sum(fake.create_posts.values())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while sum(fake.create_posts.values()) == before and loop.time() < deadline:
        await asyncio.sleep(0.005)


def ledger_matches_exchange(db: Path, fake: FakeExchange) -> None:
    with Store(db) as store:
        fills = store.cursor().execute("SELECT id, order_id, client_order_id, side, price, size, fee FROM fills"
                                       ).fetchall()
        orders = {r[0]: r for r in store.cursor().execute(
            "SELECT client_order_id, id, status, "
            "(SELECT to_status FROM order_transitions t WHERE t.order_id = o.id ORDER BY seq DESC LIMIT 1) "
            "FROM orders o").fetchall()}
    ids = [f[0] for f in fills]
    assert len(ids) == len(set(ids)), "a fill was booked twice"
    exchange = {f.trade_id: f for f in fake.fills}
    assert set(ids) == set(exchange), "ledger and exchange fills differ (lost or invented fills)"
    for fid, _oid, coid, side, price, size, fee in fills:
        x = exchange[fid]
        assert fake.orders[x.order_id].client_order_id == coid
        assert (side, float(price), float(size), float(fee)) == pytest.approx(
            (x.side, float(x.price), float(x.size), float(x.commission)))
    cash, position = 10_000.0, 0.0
    for _fid, _oid, _coid, side, price, size, fee in fills:
        notional = float(price) * float(size)
        if side == "BUY":
            cash -= notional + float(fee)
            position += float(size)
        else:
            cash += notional - float(fee)
            position -= float(size)
    assert cash == pytest.approx(float(fake.balances["USD"]), abs=1e-6)
    assert position == pytest.approx(float(fake.balances["BTC"]), abs=1e-9)
    for o in fake.orders.values():
        assert o.client_order_id in orders, "the exchange has an order the store never wrote ahead"
        latest = orders[o.client_order_id][3] or orders[o.client_order_id][2]
        if o.status == "FILLED":
            assert latest == "FILLED"


@pytest.mark.slow
async def test_sigkill_restart_reconcile(creds: Credentials, secret_pem: str, tmp_path: Path) -> None:
    fake = accelerated_fake(creds, step_interval_s=0.01, offset=0)
    fake.faults.slow_s = 0.05  # every request takes a little while: more kills land mid-request
    await fake.start()
    key_file = tmp_path / "cdp_api_key.json"
    key_file.write_text(json.dumps({"name": creds.key_name, "privateKey": secret_pem}))
    key_file.chmod(0o600)
    db = tmp_path / "live.duckdb"
    rng = random.Random(int(os.environ.get("TRDR_KILL_SEED", "7")))
    stats = {"kills": 0, "in_flight": 0, "reconciled": 0}
    try:
        for _ in range(KILLS):
            proc = await spawn(fake, db, key_file)
            ready = await wait_line(proc, "READY")
            stats["reconciled"] += int(ready.split("reconciled=")[1].split()[0])
            await asyncio.sleep(rng.uniform(0.1, 0.8))
            if rng.random() < 0.7:  # most kills aimed at an order on its way; the rest land anywhere
                await wait_for_send(fake)
                await asyncio.sleep(rng.uniform(0.0, 0.15))
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            stats["kills"] += 1
            stats["in_flight"] += in_flight(db) > 0
        proc = await spawn(fake, db, key_file, run_seconds=1.0)
        await wait_line(proc, "CLEAN EXIT")
        assert await proc.wait() == 0
    finally:
        await fake.stop()
    print(f"\nkill test: {stats['kills']} SIGKILLs, {stats['in_flight']} with an order in flight, "
          f"{stats['reconciled']} open orders reconciled at restarts, {len(fake.orders)} exchange orders, "
          f"{len(fake.fills)} fills")
    assert fake.fills, "no trading happened"
    ledger_matches_exchange(db, fake)


CAMPAIGN = (  # (mode, kill moment, delete DuckDB's WAL before the restart)
    ("live", "after_fill_flat", True),  # holding a position with nothing open, and the WAL gone
    ("live", "after_fill", False),  # between a fill and its trade
    ("live", "order_in_flight", True),
    ("paper", "after_fill", True),
    ("live", "anywhere", False),
)


@pytest.mark.slow
async def test_kill_campaign_paper_and_live(creds: Credentials, secret_pem: str, tmp_path: Path) -> None:
    """The campaign `bench/kill_campaign.py` runs by hand (≥ 300 kills), short: each kill moment once,
    paper and live, with the WAL-loss variant; nothing lost, duplicated or inconsistent."""
    fake = accelerated_fake(creds, step_interval_s=0.01, offset=0)
    fake.faults.slow_s = 0.05
    await fake.start()
    key_file = tmp_path / "cdp_api_key.json"
    key_file.write_text(json.dumps({"name": creds.key_name, "privateKey": secret_pem}))
    key_file.chmod(0o600)
    try:
        tally = await run_campaign(CampaignSpec(kills=len(CAMPAIGN), schedule=CAMPAIGN, deadline_s=150.0),
                                   tmp_path, fake, key_file)
    finally:
        await fake.stop()
    print("\n" + tally.summary())
    assert tally.failures() == {}
    assert sum(tally.kills.values()) == len(CAMPAIGN) and tally.wal_deleted >= 1
    assert tally.exchange_fills > 0 and tally.paper_fills > 0, "no trading happened"
    assert tally.kills["after_fill"] - tally.missed["after_fill"] >= 1, "no kill landed right after a fill"
