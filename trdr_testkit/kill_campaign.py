"""A kill campaign: trdr processes (paper and live, against the fake exchange on loopback) SIGKILLed at
random and aimed moments, restarted the way `trdr` starts, and the store checked after every kill.

    tally = await run_campaign(CampaignSpec(kills=300, ...), workdir, key_name=..., secret_pem=...)
    tally.failures()   # {} when nothing was lost, duplicated or left inconsistent

Kill moments (`KINDS`): anywhere; while an order request is on its way to the exchange; right after
a fill record reached the journal (the fill with its trade is one record: killing "between a fill
and its trade" is this moment); and, live, right after a fill that left nothing open at the exchange
(the restart must resume the run that holds the position). A share of the kills also deletes
DuckDB's `.wal` file before the restart (the WAL-loss variant): the journal must bring everything back.
Those runs checkpoint the database only at open (`WAL_LOSS_CONFIG`), and the kill waits until the WAL
exists, so every WAL-loss kill really deletes one (with the 1 s checkpoints of the other runs a kill
right after a checkpoint found no WAL, and the variant silently did not happen).

After each kill the store is opened as any `trdr` command opens it (the journal is replayed) and
checked: every run's `trades` equal the round trips its `fills` make, no fill is stored twice, every
exchange order of a live run was written ahead. At the end a clean live run settles every order; from
then on the fake's market stands still, so the check does not depend on how fast the machine is: no
order may be left open at the exchange, the store's fills equal the exchange's fill for fill and the
account's balances equal the ledger the fills imply. A failure names each lost fill and open order
(its client order id, store row, transitions and outbox row, and when the fill came against the kills
and the final run). `bench/kill_campaign.py` runs it by hand; `tests/exchange/test_kill.py` runs a short one.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from trdr_testkit.fake_coinbase import FakeExchange
from trdr_testkit.fake_coinbase.matching import FakeFill
from trdr_tui.store import Store
from trdr_tui.store.orders import stored_fills
from trdr_tui.trading.portfolio import Portfolio

REPO = Path(__file__).resolve().parent.parent
KINDS = ("anywhere", "order_in_flight", "after_fill", "after_fill_flat")
START_USD = Decimal("10000")


@dataclass(frozen=True)
class CampaignSpec:
    """`kills` SIGKILLs in all, `paper_share` of them on paper runs (the rest live); `wal_loss_share` of the
    kills also delete DuckDB's WAL. `deadline_s` bounds the whole campaign (it stops early, and says so).
    `schedule`: (mode, kind, delete the WAL) per kill instead of random draws (`kills` is then its length)."""

    kills: int
    paper_share: float = 0.25
    wal_loss_share: float = 0.2
    seed: int = 7
    deadline_s: float = 1200.0
    schedule: tuple[tuple[str, str, bool], ...] | None = None


@dataclass
class Tally:
    kills: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)  # aimed kills whose moment did not come in time
    wal_deleted: int = 0
    no_wal: int = 0  # WAL-loss kills whose run never wrote a WAL in WAL_WAIT_S (the writer was stuck)
    restarts: int = 0
    resumed: int = 0
    checks: int = 0
    refused_starts: list[str] = field(default_factory=list)
    duplicated_orders: int = 0  # one intent at the exchange twice (a client order id stored twice)
    unknown_orders: int = 0  # exchange orders of a run the store never wrote ahead
    lost_fills: int = 0  # exchange fills the store lacks (after the final clean run)
    open_at_exchange: int = 0  # orders still open at the exchange after the final run settled (none may be)
    invented_fills: int = 0  # stored live fills the exchange never made
    duplicated_fills: int = 0
    fill_mismatches: int = 0  # same fill id, different side/price/size/fee
    trades_vs_fills: int = 0  # checks where a run's stored trades differ from the round trips its fills make
    forgotten_positions: int = 0  # a live run holding a position not resumed at the restart
    ledger_vs_exchange_usd: float = 0.0  # |account - ledger| after the final run
    ledger_vs_exchange_base: float = 0.0
    exchange_orders: int = 0
    exchange_fills: int = 0
    paper_fills: int = 0
    stopped_early: str = ""
    timeline: list[tuple[str, int]] = field(default_factory=list)  # (what happened, UNIX ns): kills, final run
    diagnostics: list[str] = field(default_factory=list)  # one line per lost or invented fill: where it stands

    def failures(self) -> dict[str, object]:
        """Every counter that must be zero and is not."""
        bad: dict[str, object] = {}
        for name in ("duplicated_orders", "unknown_orders", "lost_fills", "open_at_exchange", "invented_fills",
                     "duplicated_fills",
                     "fill_mismatches", "trades_vs_fills", "forgotten_positions", "no_wal"):
            if getattr(self, name):
                bad[name] = getattr(self, name)
        if self.ledger_vs_exchange_usd > 1e-6:
            bad["ledger_vs_exchange_usd"] = self.ledger_vs_exchange_usd
        if self.ledger_vs_exchange_base > 1e-9:
            bad["ledger_vs_exchange_base"] = self.ledger_vs_exchange_base
        if self.refused_starts:
            bad["refused_starts"] = self.refused_starts
        if self.stopped_early:
            bad["stopped_early"] = self.stopped_early
        if bad and self.diagnostics:
            bad["diagnostics"] = self.diagnostics
        return bad

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {self.kills[k]}" + (f" ({self.missed[k]} not in time)" if self.missed[k] else "")
                          for k in KINDS)
        return (f"{sum(self.kills.values())} SIGKILLs ({kinds}); WAL deleted after {self.wal_deleted}; "
                f"{self.restarts} restarts, {self.resumed} resumed a live run; {self.checks} store checks\n"
                f"exchange: {self.exchange_orders} orders, {self.exchange_fills} fills; paper fills {self.paper_fills}\n"
                f"duplicated orders {self.duplicated_orders} · orders not written ahead {self.unknown_orders} · "
                f"lost fills {self.lost_fills} · open at the exchange after the final run {self.open_at_exchange} · "
                f"invented fills {self.invented_fills} · duplicated fills "
                f"{self.duplicated_fills} · fill mismatches {self.fill_mismatches}\n"
                f"trades vs fills differences {self.trades_vs_fills} · forgotten positions "
                f"{self.forgotten_positions} · ledger vs exchange: {self.ledger_vs_exchange_usd:.8f} USD, "
                f"{self.ledger_vs_exchange_base:.10f} BTC · refused starts {len(self.refused_starts)}\n"
                + "final run: " + " · ".join(what.removeprefix("the final run's ") for what, _ in self.timeline
                                             if what.startswith("the final run's ")))


CONFIG = """\
symbol = "BTC-USD"
capital = 3000.0
risk_tolerance = "moderate"

[store]
checkpoint_interval_seconds = 1.0
flush_interval_seconds = 0.1
db_checkpoint_seconds = 1.0
"""
WAL_LOSS_CONFIG = CONFIG.replace("db_checkpoint_seconds = 1.0", "db_checkpoint_seconds = 3600.0")
WAL_WAIT_S = 10.0  # the writer applies a batch every 0.1 s: the WAL exists long before this


class Driver:
    """One `trdr_testkit.kill_driver --product MODE` process and its output."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def spawn(cls, mode: str, fake: FakeExchange, db: Path, config: Path, key_file: Path,
                    run_seconds: float | None = None) -> Driver:
        args = [sys.executable, "-m", "trdr_testkit.kill_driver", "--product", mode, "--config", str(config),
                "--db", str(db), "--rest", fake.rest_url, "--ws", fake.ws_url, "--user-ws", fake.user_ws_url]
        if run_seconds is not None:
            args += ["--run-seconds", str(run_seconds)]
        env = {**os.environ, "TRDR_COINBASE_KEY_FILE": str(key_file)}
        proc = await asyncio.create_subprocess_exec(*args, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        return cls(proc)

    async def wait_line(self, prefix: str, timeout: float = 60.0) -> str:
        """The first output line starting with `prefix`; raises RuntimeError with the output when the
        process ends first."""
        stdout = self.proc.stdout
        assert stdout is not None

        async def read() -> str:
            while True:
                raw = await stdout.readline()
                if not raw:
                    raise RuntimeError("driver exited:\n" + "".join(self.lines[-30:]))
                line = raw.decode(errors="replace")
                self.lines.append(line)
                if line.startswith(prefix):
                    return line

        return await asyncio.wait_for(read(), timeout)

    def alive(self) -> bool:
        return self.proc.returncode is None

    async def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        if self.proc.stdout is not None:  # drain, so the next check sees the whole output
            self.lines += [b.decode(errors="replace") for b in (await self.proc.stdout.read()).splitlines(True)]


class JournalWatch:
    """Waits for a kind of change to reach `<db>.journal` (tails the file; it is emptied at checkpoints)."""

    def __init__(self, db: Path) -> None:
        self.path = Path(str(db) + ".journal")
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    async def wait(self, needle: bytes, timeout: float, alive: Callable[[], bool]) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and alive():
            size = self.path.stat().st_size if self.path.exists() else 0
            if size < self.offset:
                self.offset = 0
            if size > self.offset:
                with open(self.path, "rb") as fh:
                    fh.seek(self.offset)
                    chunk = fh.read(size - self.offset)
                cut = chunk.rfind(b"\n") + 1
                self.offset += cut
                if needle in chunk[:cut]:
                    return True
            await asyncio.sleep(0.001)
        return False


async def _until(ready: Callable[[], bool], timeout: float) -> bool:
    """Poll `ready` every 10 ms for up to `timeout` s; its last answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not ready() and loop.time() < deadline:
        await asyncio.sleep(0.01)
    return ready()


async def wait_for_send(fake: FakeExchange, timeout: float, alive: Callable[[], bool]) -> bool:
    before = sum(fake.create_posts.values())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and alive():
        if sum(fake.create_posts.values()) != before:
            return True
        await asyncio.sleep(0.002)
    return False


def open_orders_at_exchange(fake: FakeExchange) -> int:
    return sum(1 for o in fake.orders.values() if o.status in ("OPEN", "PENDING", "QUEUED"))


# -- checks ------------------------------------------------------------------------------------------


def check_store(db: Path, fake: FakeExchange, tally: Tally) -> tuple[str | None, float]:
    """Open the store as `trdr` does (journal replayed) and check it. Returns the newest live run and
    its position (base units) from its fills."""
    tally.checks += 1
    with Store(db) as store:
        cur = store.cursor()
        tally.duplicated_orders += int(cur.execute(
            "SELECT count(*) FROM (SELECT client_order_id FROM orders GROUP BY 1 HAVING count(*) > 1)").fetchone()[0])
        tally.duplicated_fills += int(cur.execute(
            "SELECT count(*) FROM (SELECT id FROM fills GROUP BY 1 HAVING count(*) > 1)").fetchone()[0])
        stored = {str(r[0]) for r in cur.execute("SELECT client_order_id FROM orders").fetchall()}
        tally.unknown_orders += sum(1 for o in fake.orders.values() if o.client_order_id not in stored)
        runs = [str(r[0]) for r in cur.execute("SELECT DISTINCT run_id FROM fills").fetchall()]
        for run_id in runs:
            fills = stored_fills(store, run_id)
            ledger = Portfolio(fills[0].symbol, 1e12)
            ledger.rebuild_from_fills(fills)
            want = sorted((t.entry_order_id, t.exit_order_id, round(t.size, 12)) for t in ledger.trades)
            have = sorted((str(r[0]), str(r[1]), round(float(r[2]), 12)) for r in cur.execute(
                "SELECT entry_order_id, exit_order_id, size FROM trades WHERE run_id = ?", [run_id]).fetchall())
            tally.trades_vs_fills += want != have
        row = cur.execute("SELECT run_id FROM orders WHERE mode = 'live' ORDER BY created_at DESC LIMIT 1").fetchone()
        if row is None:
            return None, 0.0
        held = cur.execute("SELECT coalesce(sum(CASE WHEN side = 'BUY' THEN size ELSE -size END), 0)::DOUBLE "
                           "FROM fills WHERE run_id = ?", [row[0]]).fetchone()
        return str(row[0]), float(held[0]) if held else 0.0


def check_against_exchange(db: Path, fake: FakeExchange, tally: Tally) -> None:
    """After the final clean run: live fills against the exchange's, balances against the ledger."""
    with Store(db) as store:
        rows = store.cursor().execute(
            "SELECT f.id, f.client_order_id, f.side, f.price, f.size, f.fee FROM fills f "
            "JOIN (SELECT DISTINCT run_id FROM orders WHERE mode = 'live') r USING (run_id)").fetchall()
        tally.paper_fills = int(store.cursor().execute(
            "SELECT count(*) FROM fills f JOIN (SELECT DISTINCT run_id FROM orders WHERE mode = 'paper') r "
            "USING (run_id)").fetchone()[0])
    exchange = {f.trade_id: f for f in fake.fills}
    ours = {str(r[0]): r for r in rows}
    tally.exchange_orders, tally.exchange_fills = len(fake.orders), len(fake.fills)
    tally.lost_fills = sum(1 for fid in exchange if fid not in ours)
    tally.invented_fills = sum(1 for fid in ours if fid not in exchange)
    usd, base = float(START_USD), 0.0
    for fid, coid, side, price, size, fee in rows:
        x = exchange.get(fid)
        if x is not None and (fake.orders[x.order_id].client_order_id != coid or side != x.side
                              or abs(float(price) - float(x.price)) > 1e-9 or abs(float(size) - float(x.size)) > 1e-12
                              or abs(float(fee) - float(x.commission)) > 1e-9):
            tally.fill_mismatches += 1
        notional = float(price) * float(size)
        usd += -(notional + float(fee)) if side == "BUY" else notional - float(fee)
        base += float(size) if side == "BUY" else -float(size)
    tally.ledger_vs_exchange_usd = abs(usd - float(fake.balances["USD"]))
    tally.ledger_vs_exchange_base = abs(base - float(fake.balances["BTC"]))
    for fid, x in exchange.items():
        if fid not in ours:
            tally.diagnostics.append("lost " + explain_fill(db, fake, x, tally.timeline))
    for fid in ours:
        if fid not in exchange:
            tally.diagnostics.append(f"invented fill {fid} (client order {ours[fid][1]})")
    for o in fake.orders.values():
        if o.status in ("OPEN", "PENDING", "QUEUED"):
            tally.open_at_exchange += 1
            tally.diagnostics.append(f"still open at the exchange: {o.side} {o.base_size} @ {o.limit_price}; "
                                     + store_view(db, o.client_order_id))


def explain_fill(db: Path, fake: FakeExchange, fill: FakeFill, timeline: list[tuple[str, int]]) -> str:
    """Where an exchange fill the store lacks stands: its order at the exchange, the order's row and
    transitions and its outbox row in the store, and when the exchange made the fill against the
    campaign's timeline (kills, the final run)."""
    order = fake.orders[fill.order_id]
    before = [(what, ts) for what, ts in timeline if ts <= fill.ts_ns]
    after = [(what, ts) for what, ts in timeline if ts > fill.ts_ns]
    when = "; ".join([f"{(fill.ts_ns - ts) / 1e9:.3f} s after {what}" for what, ts in before[-1:]]
                     + [f"{(ts - fill.ts_ns) / 1e9:.3f} s before {what}" for what, ts in after[:1]])
    return (f"fill {fill.trade_id}: {fill.side} {fill.size} @ {fill.price} ({fill.liquidity}), made "
            f"{when or 'outside the campaign'}; its order {order.kind} {order.status} at the exchange, placed "
            f"{(fill.ts_ns - order.created_ns) / 1e9:.3f} s before the fill; " + store_view(db, order.client_order_id))


def store_view(db: Path, coid: str) -> str:
    """The client order `coid` as the store has it: its order row, transitions and outbox row."""
    with Store(db) as store:
        cur = store.cursor()
        row = cur.execute("SELECT run_id, mode, type, status, filled_size, created_at FROM orders "
                          "WHERE client_order_id = ?", [coid]).fetchone()
        moves = [f"{r[0]}->{r[1]}" + (f" ({r[2]})" if r[2] else "") for r in cur.execute(
            "SELECT t.from_status, t.to_status, t.reason FROM order_transitions t JOIN orders o ON o.id = t.order_id "
            "WHERE o.client_order_id = ? ORDER BY t.seq", [coid]).fetchall()]
        outbox = cur.execute("SELECT state, attempts, exchange_order_id, last_error FROM exchange_outbox "
                             "WHERE client_order_id = ?", [coid]).fetchone()
    return (f"client order {coid}: store order (run, mode, type, status, filled, created) "
            f"{row if row is not None else 'absent'}, transitions {moves or 'none'}; outbox (state, attempts, "
            f"exchange id, last error) {outbox if outbox is not None else 'absent'}")


# -- the campaign -------------------------------------------------------------------------------------


async def _aim(kind: str, driver: Driver, fake: FakeExchange, watch: JournalWatch, rng: random.Random) -> bool:
    """Wait for the moment of a kill of `kind`; False when it did not come (the kill lands anyway)."""
    alive = driver.alive
    if kind == "anywhere":
        await asyncio.sleep(rng.uniform(0.05, 1.0))
        return True
    if kind == "order_in_flight":
        hit = await wait_for_send(fake, 8.0, alive)
        await asyncio.sleep(rng.uniform(0.0, 0.1))
        return hit
    if kind == "after_fill":
        hit = await watch.wait(b'["fills",', 8.0, alive)
        await asyncio.sleep(rng.choice((0.0, 0.0, rng.uniform(0.0, 0.005))))
        return hit
    # after_fill_flat: a fill that leaves nothing open at the exchange, then the kill within ~1.5 s
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while loop.time() < deadline and alive():
        if await watch.wait(b'["fills",', deadline - loop.time(), alive) and open_orders_at_exchange(fake) == 0:
            await asyncio.sleep(rng.uniform(0.0, 1.5))
            return True
    return False


async def run_campaign(spec: CampaignSpec, workdir: Path, fake: FakeExchange, key_file: Path,
                       progress: Callable[[str], None] | None = None) -> Tally:
    """Run the campaign in `workdir` against a started `fake` (loopback). See the module docstring."""
    rng = random.Random(spec.seed)
    config = workdir / "trdr.toml"
    config.write_text(CONFIG)
    wal_loss_config = workdir / "trdr-wal-loss.toml"
    wal_loss_config.write_text(WAL_LOSS_CONFIG)
    db = workdir / "kill.duckdb"
    wal = Path(str(db) + ".wal")
    tally = Tally()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + spec.deadline_s
    expect_resume = False
    for n in range(len(spec.schedule) if spec.schedule is not None else spec.kills):
        if loop.time() > deadline:
            tally.stopped_early = f"deadline after {n} kills"  # reported; the final run still settles
            break
        if spec.schedule is not None:
            mode, kind, lose_wal = spec.schedule[n]
        else:
            mode = "paper" if rng.random() < spec.paper_share else "live"
            kind = rng.choice(KINDS if mode == "live" else KINDS[:3])
            if mode == "paper" and kind == "order_in_flight":
                kind = "anywhere"  # paper orders never reach the exchange
            lose_wal = rng.random() < spec.wal_loss_share
        watch = JournalWatch(db)
        driver = await Driver.spawn(mode, fake, db, wal_loss_config if lose_wal else config, key_file)
        try:
            ready = await driver.wait_line("READY")
        except (RuntimeError, TimeoutError) as exc:
            await driver.kill()
            tally.refused_starts.append(str(exc)[-2000:])
            tally.stopped_early = f"a start was refused after {n} kills"
            break
        tally.restarts += 1
        resumed = "resumed=1" in ready
        tally.resumed += resumed
        if mode == "live" and expect_resume and not resumed:
            tally.forgotten_positions += 1
        if not await _aim(kind, driver, fake, watch, rng):
            tally.missed[kind] += 1
        if lose_wal and not await _until(wal.exists, WAL_WAIT_S):
            tally.no_wal += 1  # the writer wrote nothing for WAL_WAIT_S: a failure, not a skipped variant
        exited = not driver.alive()
        await driver.kill()
        tally.timeline.append((f"kill {n + 1} ({mode}, {kind})", time.time_ns()))
        if exited and driver.proc.returncode not in (0, -signal.SIGKILL):
            tally.refused_starts.append("".join(driver.lines[-30:]))
            tally.stopped_early = f"the driver failed after {n} kills"
            break
        tally.kills[kind] += 1
        if lose_wal and wal.exists():
            wal.unlink()
            tally.wal_deleted += 1
        run_id, held = check_store(db, fake, tally)
        expect_resume = run_id is not None and held > 1e-12
        if progress is not None and (n + 1) % 10 == 0:
            progress(f"{n + 1} kills; failures so far: {tally.failures() or 'none'}")
    if not tally.refused_starts:  # also after a deadline: orders left open must settle before the checks
        tally.timeline.append(("the final run's start", time.time_ns()))
        final = await Driver.spawn("live", fake, db, config, key_file, run_seconds=1.0)
        try:
            await final.wait_line("READY", timeout=120.0)
            tally.timeline.append(("the final run's READY", time.time_ns()))
            settled = await final.wait_line("SETTLED", timeout=120.0)
            # from here the market stands still: an order the final run left open stays open and is
            # reported as such, instead of filling (or not) before the checks depending on the machine's load
            fake.paused = True
            tally.timeline.append((f"the final run's {settled.strip()}", time.time_ns()))
            await final.wait_line("CLEAN EXIT", timeout=120.0)
            tally.timeline.append(("the final run's CLEAN EXIT", time.time_ns()))
        except (RuntimeError, TimeoutError) as exc:
            tally.refused_starts.append(str(exc)[-2000:])
        await final.kill()
    check_store(db, fake, tally)
    check_against_exchange(db, fake, tally)
    return tally
