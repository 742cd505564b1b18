"""The paper/live journal in front of DuckDB (store/journal.py) and the restart checks built on it:
one record per fill with its trade, replay after a crash (also with DuckDB's WAL lost), regular
checkpoints, trades rebuilt from fills, a live run resumed while it holds a position, the ledger
against the account's balances, a store older than the exchange, and database faults as clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import REPO
from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import StateCorruption, StopError
from trdr_tui.core.types import Fill, Liquidity, Mode, Order, OrderStatus, OrderType, Side, Trade
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.recovery import check_balances, check_unknown_orders, recover_from_store
from trdr_tui.store.db import Store
from trdr_tui.store.journal import journal_path, read_journal, start_writer
from trdr_tui.store.orders import RunRepository, latest_live_run, stored_trade_count

US = 1_000


def fill(n: int, side: Side, price: float, size: float = 0.01) -> Fill:
    return Fill(id=f"f{n}", order_id=f"run-{n}", client_order_id=f"trdr-run-{n}", symbol="BTC-USD", side=side,
                price=price, size=size, fee=0.1, liquidity=Liquidity.TAKER, ts=n * 1_000 * US)


def order(n: int, side: Side, status: OrderStatus = OrderStatus.FILLED) -> Order:
    return Order(id=f"run-{n}", client_order_id=f"trdr-run-{n}", symbol="BTC-USD", side=side, type=OrderType.MARKET,
                 size=0.01, status=status, created_ts=n * 1_000 * US)


def trade(entry: int, exit_: int) -> Trade:
    return Trade(symbol="BTC-USD", entry_order_id=f"run-{entry}", exit_order_id=f"run-{exit_}", entry_ts=entry,
                 exit_ts=exit_, entry_price=100.0, exit_price=110.0, size=0.01, pnl=0.08, fees=0.2)


def test_a_fill_and_its_trade_are_one_journal_record(tmp_path: Path) -> None:
    with Store(tmp_path / "j.duckdb") as store:
        writer = start_writer(store, flush_interval_s=1.0)
        assert writer is not None
        repo = RunRepository(store, "run", Mode.LIVE)
        repo.insert_fill(fill(2, Side.SELL, 110.0), trade(1, 2))
        records = read_journal(journal_path(store))
        assert [[k for k, _ in r.ops] for r in records] == [["fills", "trades"]]
        store.sync()
        assert stored_trade_count(store, "run") == 1


def test_write_through_fill_and_trade_commit_together(tmp_path: Path) -> None:
    """Without a journal (in-memory store) a fill and its trade are one transaction: a failing trade
    insert leaves no fill behind."""
    with Store() as store:
        repo = RunRepository(store, "run", Mode.LIVE)
        bad = trade(1, 2)
        bad = Trade(**{**{f: getattr(bad, f) for f in bad.__struct_fields__}, "pnl": "x"})  # type: ignore[arg-type]
        with pytest.raises(duckdb.Error):
            repo.insert_fill(fill(2, Side.SELL, 110.0), bad)
        assert store.conn.execute("SELECT count(*) FROM fills").fetchone() == (0,)


CRASH = """
import os, sys
from trdr_tui.core.types import Mode
from trdr_tui.store.db import Store
from trdr_tui.store.journal import start_writer
from trdr_tui.store.orders import RunRepository
from tests.engine.test_journal import fill, order, trade
from trdr_tui.core.types import Side
store = Store(sys.argv[1])
start_writer(store, flush_interval_s=float(sys.argv[2]), checkpoint_interval_s=3600)
repo = RunRepository(store, "run", Mode.LIVE)
repo.insert_order(order(1, Side.BUY))
repo.insert_fill(fill(1, Side.BUY, 100.0))
repo.insert_order(order(2, Side.SELL))
repo.insert_fill(fill(2, Side.SELL, 110.0), trade(1, 2))
if sys.argv[2] != "1.0":
    store.sync()  # in DuckDB's WAL, not yet in the main file
os._exit(9)  # killed: no flush, no close
"""


@pytest.mark.parametrize("applied", [False, True], ids=["journal-only", "applied-then-wal-lost"])
def test_a_killed_process_loses_nothing_even_without_the_wal(tmp_path: Path, applied: bool) -> None:
    db = tmp_path / "k.duckdb"
    Store(db).close()
    proc = subprocess.run([sys.executable, "-c", CRASH, str(db), "0.01" if applied else "1.0"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert len(read_journal(Path(str(db) + ".journal"))) == 4
    wal = Path(str(db) + ".wal")
    if applied:
        assert wal.exists()
        wal.unlink()  # the WAL-loss variant: DuckDB forgets everything since its last checkpoint
    with Store(db) as store:  # opening replays the journal
        rows = store.conn.execute("SELECT count(*) FROM fills").fetchone()
        assert rows == (2,)
        assert stored_trade_count(store, "run") == 1
        assert store.conn.execute("SELECT status FROM orders ORDER BY id").fetchall() == [("FILLED",), ("FILLED",)]
    assert journal_path(Store(db)).stat().st_size == 0  # replayed and checkpointed: emptied


def test_the_writer_checkpoints_the_database_regularly(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    with Store(db) as store:
        writer = start_writer(store, flush_interval_s=0.01, checkpoint_interval_s=0.05)
        assert writer is not None
        repo = RunRepository(store, "run", Mode.LIVE)
        for n in range(1, 200):
            repo.insert_order(order(n, Side.BUY))
        store.sync()
        import time

        deadline = time.monotonic() + 5
        while journal_path(store).stat().st_size and time.monotonic() < deadline:
            time.sleep(0.02)
        assert journal_path(store).stat().st_size == 0  # checkpointed, then emptied
        wal = Path(str(db) + ".wal")
        assert not wal.exists() or wal.stat().st_size < 4096
        # the main file alone holds the orders
        con = duckdb.connect(str(tmp_path / "copy.duckdb"))
        con.close()
        Path(tmp_path / "copy.duckdb").write_bytes(db.read_bytes())
        con = duckdb.connect(str(tmp_path / "copy.duckdb"))
        assert con.execute("SELECT count(*) FROM orders").fetchone() == (199,)
        con.close()


def test_a_damaged_journal_line_stops_the_start_but_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    Store(db).close()
    jp = Path(str(db) + ".journal")
    jp.write_bytes(b'{"lsn":1,"ops":[["orders_x",[]]]}\n{"lsn":2,"ops"')
    with pytest.raises(StateCorruption, match="unknown kind"):
        Store(db)
    jp.write_bytes(b'garbage\n{"lsn":2,"ops":[]}\n')
    with pytest.raises(StateCorruption, match="damaged at line 1"):
        Store(db)
    jp.write_bytes(b'{"lsn":1,"ops":[]}\n{"lsn":2,"op')
    with Store(db) as store:
        assert store.conn.execute("SELECT applied_lsn FROM store_journal").fetchone() == (1,)


# -- restarts -------------------------------------------------------------------------------------


def write_run(store: Store, *, fills: list[Fill], orders: list[Order], trades: list[Trade]) -> None:
    repo = RunRepository(store, "run", Mode.LIVE)
    for o in orders:
        repo.insert_order(o)
    for f in fills:
        repo.insert_fill(f)
    with store.transaction() as cur:  # trades as an older trdr wrote them: separately from the fills
        for t in trades:
            cur.execute("INSERT INTO trades (run_id, symbol, entry_order_id, exit_order_id, size, pnl) "
                        "VALUES ('run', 'BTC-USD', ?, ?, ?, ?)", [t.entry_order_id, t.exit_order_id, t.size, t.pnl])


def test_a_live_run_holding_a_position_with_nothing_open_is_resumed(tmp_path: Path) -> None:
    with Store(tmp_path / "p.duckdb") as store:
        write_run(store, orders=[order(1, Side.BUY)], fills=[fill(1, Side.BUY, 100.0)], trades=[])
        assert latest_live_run(store) == "run"  # it holds 0.01 BTC: resume it, do not start afresh
        write_run(store, orders=[order(2, Side.SELL)], fills=[fill(2, Side.SELL, 110.0)], trades=[])
        assert latest_live_run(store) is None  # flat and nothing open: a new run starts


async def test_trades_are_rebuilt_from_fills_at_restart(hourly: CandleArrays, tmp_path: Path) -> None:
    """A crash between a fill and its trade (the old separate commits) left `trades` short of what the
    fills make: recovery rebuilds them."""
    with Store(tmp_path / "r.duckdb") as store:
        fills = [fill(1, Side.BUY, 100.0), fill(2, Side.SELL, 110.0), fill(3, Side.BUY, 100.0),
                 fill(4, Side.SELL, 105.0)]
        write_run(store, orders=[order(n, f.side) for n, f in enumerate(fills, 1)], fills=fills,
                  trades=[trade(1, 2)])
        engine = build_engine(load_settings(), mode="paper", candles=hourly[:10], preset="simple-trailing",
                              store=store, run_id="run")
        logged: list[Any] = []
        engine.bus.subscribe("log.warning", lambda _t, e: logged.append(e))
        await recover_from_store(engine, engine.executor, store)
        assert len(engine.portfolio.trades) == 2
        assert stored_trade_count(store, "run") == 2
        assert any("trades rebuilt" in e.message for e in logged)


def test_the_ledger_is_checked_against_the_account_balances(hourly: CandleArrays) -> None:
    engine = build_engine(load_settings(), mode="paper", candles=hourly[:10], preset="simple-trailing", run_id="run")
    engine.portfolio.rebuild_from_fills([fill(1, Side.BUY, 100.0, 0.5)])
    cash = engine.portfolio.cash
    assert check_balances(engine, 0.5, cash) == []
    notes = check_balances(engine, 0.7, cash + 50.0)  # the user's other money: reported, left alone
    assert len(notes) == 2 and "left alone" in notes[0]
    with pytest.raises(StateCorruption, match=r"exchange account only 0\.00000000 BTC"):
        check_balances(engine, 0.0, cash)  # the run thinks it holds BTC the account does not have
    with pytest.raises(StateCorruption, match="lower `capital`"):
        check_balances(engine, 0.5, cash - 100.0)


def test_a_store_older_than_the_exchange_is_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "o.duckdb") as store:
        write_run(store, orders=[order(1, Side.BUY)], fills=[], trades=[])
        check_unknown_orders(store, "run", ["trdr-run-1", "trdr-other-7"])  # known, or another run's
        with pytest.raises(StateCorruption, match=r"older than the exchange's history.*trdr-run-2"):
            check_unknown_orders(store, "run", ["trdr-run-1", "trdr-run-2"])


# -- database faults ------------------------------------------------------------------------------


def damaged(tmp_path: Path, how: str) -> Path:
    db = tmp_path / "good.duckdb"
    with Store(db) as store:
        store.conn.execute("CREATE TABLE bulk AS SELECT range AS i, random() AS r FROM range(300000)")
    data = db.read_bytes()
    out = tmp_path / f"{how}.duckdb"
    if how == "truncated":
        out.write_bytes(data[:len(data) // 2])
    elif how == "corrupt":
        out.write_bytes(data[:300_000] + bytes(b ^ 0xFF for b in data[300_000:300_100]) + data[300_100:])
    else:
        out.write_bytes(b"not a database" * 100)
    return out


@pytest.mark.parametrize("how", ["truncated", "corrupt", "garbage"])
def test_a_damaged_database_file_is_a_clear_error_with_the_right_hint(tmp_path: Path, how: str) -> None:
    db = damaged(tmp_path, how)
    try:
        with Store(db) as store:
            store.conn.execute("SELECT sum(r) FROM bulk").fetchall()
            store.conn.execute("CHECKPOINT")
        pytest.fail("a damaged file was read without an error")
    except StateCorruption as exc:
        assert how != "garbage"
        assert "damaged or truncated" in exc.message and "backup" in exc.hint
        assert "another" not in exc.hint
    except StopError as exc:  # no DuckDB header at all: a wrong --db (bad input), not a damaged database
        assert how == "garbage" and "is not a DuckDB database" in exc.message and "left as it is" in exc.hint
    except duckdb.Error as exc:  # damage found only on reading: the CLI maps it (test below)
        assert how == "corrupt", exc


def test_the_cli_reports_a_damaged_database_without_a_traceback(tmp_path: Path) -> None:
    db = damaged(tmp_path, "truncated")
    proc = subprocess.run([sys.executable, "-m", "trdr_tui", "--db", str(db), "data", "list"], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "TRDR_DB": str(db)})
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "damaged or truncated" in proc.stderr and "backup" in proc.stderr


class DiskFull:
    """A writer cursor whose inserts fail as DuckDB fails on a full disk (the error injected at the
    DuckDB boundary)."""

    def __init__(self, inner: duckdb.DuckDBPyConnection) -> None:
        self.inner = inner

    def execute(self, sql: str, params: Any = None) -> Any:
        if sql.startswith("INSERT"):
            raise duckdb.IOException('IO Error: Could not write file "x.wal": No space left on device')
        return self.inner.execute(sql, params) if params is not None else self.inner.execute(sql)


def test_disk_full_in_the_writer_stops_the_engine_with_a_clear_error_and_keeps_the_journal(tmp_path: Path) -> None:
    db = tmp_path / "f.duckdb"
    store = Store(db)
    writer = start_writer(store, flush_interval_s=0.01)
    assert writer is not None
    writer._cur = DiskFull(writer._cur)  # type: ignore[assignment]
    repo = RunRepository(store, "run", Mode.LIVE)
    repo.insert_order(order(1, Side.BUY))
    with pytest.raises(StopError, match="full") as err:
        store.sync()
    assert "free disk space" in err.value.hint
    with pytest.raises(StopError, match="full"):
        repo.insert_order(order(2, Side.BUY))  # the engine cannot go on writing
    assert len(read_journal(journal_path(store))) == 1  # the acknowledged record is kept
    store.close()  # the error was raised to the engine already: closing keeps the journal
    assert len(read_journal(journal_path(store))) == 1
    with Store(db) as again:  # space freed: the journal replays
        assert again.conn.execute("SELECT id FROM orders").fetchall() == [("run-1",)]
