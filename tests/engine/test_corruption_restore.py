"""StateCorruption (E007) in the middle of a run: a paper run goes on from its last good checkpoint,
with the ledger rebuilt from the stored fills; where a restore is not safe the run stops naming the
checkpoint and the command to inspect it. The fault is real: the simulator reports one fill larger than
what its order has left, and the real order manager refuses it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.conftest import HOURLY_CDD
from trdr_tui.cli import main
from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import StateCorruption
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.loop import Engine
from trdr_tui.engine.recovery import restore_after_corruption, resume_run
from trdr_tui.exchange.sim_executor import SimExecutor
from trdr_tui.store.db import Store
from trdr_tui.store.orders import stored_fills
from trdr_tui.trading.portfolio import Portfolio

PRESET = "simple-trailing"


@pytest.fixture
def overfill_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The simulator's 3rd fill is reported at twice its order's size, once: an E007 in `_book`.
    Yields the ids of the fills it corrupted."""
    original = SimExecutor._report
    seen: list[int] = [0]
    corrupted: list[str] = []

    def report(self: SimExecutor, order: Any, status: Any, *, fill: Any = None, reason: str = "") -> None:
        if fill is not None:
            seen[0] += 1
            if seen[0] == 3:
                fill = msgspec.structs.replace(fill, size=order.size * 2)
                corrupted.append(fill.id)
        original(self, order, status, fill=fill, reason=reason)

    monkeypatch.setattr(SimExecutor, "_report", report)
    yield corrupted


def paper(bars: CandleArrays, store: Store | None, run_id: str | None = None) -> Engine:
    return build_engine(load_settings(), mode="paper", candles=bars, preset=PRESET, store=store, run_id=run_id,
                        checkpoint_interval_s=3600.0)


async def test_a_paper_run_stopped_by_e007_goes_on_from_its_last_good_checkpoint(
        hourly: CandleArrays, tmp_path: Path, overfill_once: list[str]) -> None:
    bars = hourly[:800]
    with Store(tmp_path / "r.duckdb") as store:
        first = paper(bars, store)
        with pytest.raises(StateCorruption, match="exceeds what order"):
            await first.run()
        assert overfill_once and first.bars_done > 0
        assert isinstance(first.failure, StateCorruption)
        rest = bars[first.bars_done + 1:]
        second = restore_after_corruption(first, first.failure, store,
                                          lambda run_id: _resumed(paper(rest, store, run_id), store))
        assert second.run_id == first.run_id and second is not first
        await second.run()  # to the end of the bars
        assert second.failure is None and second.bars_done == len(rest)
        fills = stored_fills(store, first.run_id)
        assert overfill_once[0] not in {f.id for f in fills}  # the refused fill was never booked
        assert len({f.id for f in fills}) == len(fills) > 3
        ledger = Portfolio(symbol="BTC-USD", cash=first.portfolio.initial_cash)
        ledger.rebuild_from_fills(fills)
        assert (second.portfolio.cash_exact, second.portfolio.position_exact) == (ledger.cash_exact,
                                                                                  ledger.position_exact)
        ids = [r[0] for r in store.conn.execute("SELECT id FROM orders WHERE run_id = ?", [first.run_id]).fetchall()]
        assert len(ids) == len(set(ids))  # order ids continue after the restore, never reused


def _resumed(engine: Engine, store: Store) -> Engine:
    resume_run(engine, store)
    return engine


async def test_where_a_restore_is_not_safe_the_run_stops_naming_its_checkpoint(
        hourly: CandleArrays, tmp_path: Path, overfill_once: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    bars = hourly[:800]
    with Store(tmp_path / "r.duckdb") as store:
        first = paper(bars, store)
        with pytest.raises(StateCorruption):
            await first.run()
        error = first.failure
        assert isinstance(error, StateCorruption)
        point = store.conn.execute("SELECT max(id) FROM checkpoints WHERE run_id = ?", [first.run_id]).fetchone()[0]
        never_ran = paper(bars[first.bars_done + 1:], store, first.run_id)  # failing again before any bar
        with pytest.raises(StateCorruption) as stop:
            restore_after_corruption(never_ran, error, store, lambda run_id: pytest.fail("restored"))
        text = stop.value.render()
        assert "before processing a bar" in text and f"checkpoint is #{point}" in text
        assert f"trdr inspect checkpoint {point} --db {store.path}" in stop.value.hint
        with pytest.raises(StateCorruption, match="no database"):
            restore_after_corruption(paper(bars, None), error, None, lambda run_id: pytest.fail("restored"))
        backtest = build_engine(load_settings(), mode="backtest", candles=bars, preset=PRESET)
        with pytest.raises(StateCorruption, match="deterministic"):
            restore_after_corruption(backtest, error, store, lambda run_id: pytest.fail("restored"))
    capsys.readouterr()
    assert main(["--db", str(tmp_path / "r.duckdb"), "inspect", "--json", "checkpoint", str(point)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == point and shown["run_id"] == first.run_id and "cash" in shown["state"]["portfolio"]
    assert main(["--db", str(tmp_path / "r.duckdb"), "inspect", "checkpoint", str(point)]) == 0
    assert f"checkpoint #{point} of run {first.run_id}" in capsys.readouterr().out


def test_a_headless_paper_replay_restores_after_e007_through_the_cli(
        tmp_path: Path, overfill_once: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    lines = HOURLY_CDD.read_text(encoding="utf-8").splitlines()
    data = tmp_path / "slice.cdd.csv"
    data.write_text("\n".join(lines[:1202]) + "\n", encoding="utf-8")
    db = tmp_path / "h.duckdb"
    code = main(["--db", str(db), "--headless", "--no-api", "--feed", "replay", "--data", str(data), "--speed", "max"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "[E007]" in err and "restored run" in err and "going on" in err
    summaries = [ln for ln in out.splitlines() if '"run.summary"' in ln]
    assert len(summaries) == 2 and '"end of feed"' in summaries[-1]
    with Store(db) as store:
        fills = store.conn.execute("SELECT id FROM fills").fetchall()
        runs = store.conn.execute("SELECT DISTINCT run_id FROM orders").fetchall()
    assert len(runs) == 1 and len(fills) == len(set(fills)) and overfill_once[0] not in {f[0] for f in fills}
