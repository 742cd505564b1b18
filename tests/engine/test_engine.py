"""The Engine end to end: paths agree, events, pause, checkpoints and restore, persistence, weights."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.events import (
    BacktestProgress,
    CandleEvent,
    EngineStatus,
    OrderEvent,
    PortfolioSnapshot,
    WeightsChanged,
)
from trdr_tui.core.types import Action, Candle, Decision, Fill, Mode, OrderStatus
from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.loop import Engine
from trdr_tui.store.db import Store
from trdr_tui.store.orders import latest_checkpoint, load_weights


def preset_engine(bars: CandleArrays, **kw: Any) -> Engine:
    return build_engine(load_settings(), mode=kw.pop("mode", "backtest"), candles=bars, preset="simple-trailing",
                        **kw)


def fills_of(engine: Engine) -> list[tuple[int, str, float, float, float]]:
    return [(f.ts, f.side.value, f.price, f.size, f.fee) for f in engine.record.fills]


async def test_streaming_path_gives_the_same_run_as_the_batch_loop(hourly: CandleArrays) -> None:
    bars = hourly[:4000]
    batch = preset_engine(bars)
    await batch.run()
    paced = preset_engine(bars, speed=1e9)  # paced replay: the async per-candle path
    await paced.run()
    assert len(batch.record.fills) > 50
    assert fills_of(paced) == fills_of(batch)
    assert paced.record.final_equity == batch.record.final_equity
    assert (paced.record.equity_curve().equity == batch.record.equity_curve().equity).all()


async def test_events_are_published_and_do_not_change_the_run(hourly: CandleArrays) -> None:
    bars = hourly[:3000]
    quiet = preset_engine(bars)
    await quiet.run()

    bus = EventBus()
    got: dict[type, list[Any]] = {}
    bus.subscribe("*", lambda _t, e: got.setdefault(type(e), []).append(e))
    loud = preset_engine(bars, bus=bus)
    await loud.run()
    assert fills_of(loud) == fills_of(quiet)
    assert len(got[CandleEvent]) == len(bars)
    assert len(got[PortfolioSnapshot]) == len(bars)
    assert len(got[Fill]) == len(quiet.record.fills)
    # three transitions per filled trailing order (armed, triggered+filled) and one for the open one
    assert {e.transition.to_status for e in got[OrderEvent]} >= {OrderStatus.SUBMITTED, OrderStatus.FILLED}
    assert got[BacktestProgress][-1].done == len(bars)
    assert [e.running for e in got[EngineStatus]][:1] == [True]
    snap = got[PortfolioSnapshot][-1]
    assert snap.equity == pytest.approx(quiet.record.final_equity)
    assert snap.ts == int(bars.ts[-1]) + 3_600_000_000_000


async def test_pause_stops_new_orders_but_armed_orders_keep_tracking(hourly: CandleArrays) -> None:
    bars = hourly[:600]
    engine = preset_engine(bars, speed=1e9)
    events: list[OrderEvent] = []
    engine.bus.subscribe("order.*", lambda _t, e: events.append(e))
    paused_at: list[int] = []

    def on_candle(_t: str, e: CandleEvent) -> None:
        if len(paused_at) == 0 and engine.orders.trailing and engine.portfolio.position > 0:
            engine.pause()
            paused_at.append(e.candle.ts)

    engine.bus.subscribe("market.candle.*", on_candle)
    await engine.run()
    assert engine.paused and paused_at
    created_after = [e for e in events if e.transition.from_status is OrderStatus.PENDING
                     and e.transition.ts > paused_at[0] + 3_600_000_000_000]
    assert created_after == []  # nothing new while paused
    # the SELL armed before the pause still fired while paused
    assert engine.portfolio.position == 0.0
    assert engine.record.fills[-1].side.value == "SELL"
    engine.resume()
    assert not engine.paused


async def test_stop_writes_a_shutdown_checkpoint_and_restore_continues_the_run(hourly: CandleArrays,
                                                                                tmp_path: Any) -> None:
    bars = hourly[:6000]
    full = preset_engine(bars)
    await full.run()

    cut = 3333
    with Store(tmp_path / "a.duckdb") as store:
        first = preset_engine(bars[:cut], store=store, run_id="first")
        await first.run()
        found = latest_checkpoint(store, "first")
        assert found is not None
        run_id, kind, state = found
        assert (run_id, kind) == ("first", "shutdown")
        assert Decimal(state["portfolio"]["cash"]) == first.portfolio.cash_exact
        assert len(state["open_orders"]) == 1 and "trailing" in state["open_orders"][0]

        second = preset_engine(bars[cut:], store=store, run_id="second")
        second.restore(state)
        await second.run()
    assert second.record.final_equity == full.record.final_equity
    assert fills_of(first) + fills_of(second) == fills_of(full)


async def test_stop_mid_run(hourly: CandleArrays, tmp_path: Any) -> None:
    bus = EventBus()
    with Store(tmp_path / "b.duckdb") as store:
        engine = preset_engine(hourly, store=store, bus=bus, run_id="stopper")

        async def stop_soon(_t: str, e: BacktestProgress) -> None:
            await engine.stop("user")

        bus.subscribe("backtest.progress", stop_soon)
        await engine.run()
        assert engine.record.bars < len(hourly)
        assert latest_checkpoint(store, "stopper") is not None


async def test_orders_fills_and_trades_are_persisted(hourly: CandleArrays, tmp_path: Any) -> None:
    with Store(tmp_path / "c.duckdb") as store:
        engine = preset_engine(hourly[:5000], store=store, run_id="persist")
        await engine.run()
        rec = engine.record
        q = store.conn.execute
        assert q("SELECT count(*) FROM orders WHERE run_id = 'persist'").fetchone()[0] == len(rec.orders)
        assert q("SELECT count(*) FROM fills WHERE run_id = 'persist'").fetchone()[0] == len(rec.fills)
        assert q("SELECT count(*) FROM trades WHERE run_id = 'persist'").fetchone()[0] == len(rec.trades)
        n_trans = sum(len(o.history) for o in rec.orders)
        assert q("SELECT count(*) FROM order_transitions").fetchone()[0] == n_trans
        fee_sum = q("SELECT sum(fee)::DOUBLE FROM fills").fetchone()[0]
        assert math.isclose(fee_sum, rec.fees, rel_tol=1e-9)
        statuses = dict(q("SELECT status, count(*) FROM orders GROUP BY 1").fetchall())
        assert statuses.get("FILLED") == len(rec.fills) and statuses.get("ARMED") == 1  # the one still armed


class RecordingExecutor:
    """A sim executor wrapper that checks the write-ahead rule at the moment of each submit."""

    def __init__(self, inner: Any, store: Store) -> None:
        self.inner = inner
        self.store = store
        self.name = "recording"
        self.seen_in_db: list[bool] = []

    def bind(self, on_report: Any) -> None:
        self.inner.bind(on_report)

    async def submit(self, order: Any) -> None:
        """Durable = in the database, or in the journal in front of it (paper/live)."""
        from trdr_tui.store.journal import journal_path, read_journal

        row = self.store.cursor().execute("SELECT count(*) FROM orders WHERE id = ?", [order.id]).fetchone()
        journaled = any(kind == "orders" and r[0] == order.id
                        for rec in read_journal(journal_path(self.store)) for kind, r in rec.ops)
        self.seen_in_db.append(row[0] == 1 or journaled)
        await self.inner.submit(order)

    async def cancel(self, order: Any) -> None:
        await self.inner.cancel(order)

    async def reconcile(self, known_open: Any) -> Any:
        return []

    def on_bar(self, high: float, low: float, close: float, volume: float) -> None:
        self.inner.on_bar(high, low, close, volume)

    def on_tick(self, tick: Any) -> None:
        self.inner.on_tick(tick)


async def test_paper_mode_stores_each_order_before_it_is_sent(hourly: CandleArrays, tmp_path: Any) -> None:
    from trdr_tui.core.clock import SimClock
    from trdr_tui.exchange.fees import FeeSchedule
    from trdr_tui.exchange.sim_executor import SimExecutor

    bars = hourly[:800]
    clock = SimClock(int(bars.ts[0]))
    with Store(tmp_path / "d.duckdb") as store:
        ex = RecordingExecutor(SimExecutor(clock, FeeSchedule.flat(0.006)), store)
        engine = build_engine(load_settings(), mode="paper", candles=bars, preset="simple-trailing", store=store,
                              clock=clock, executor=ex, checkpoint_interval_s=24 * 3600)
        await engine.run()
        assert ex.seen_in_db and all(ex.seen_in_db)
        assert len(ex.seen_in_db) == len(engine.record.fills)
        kinds = [r[0] for r in store.conn.execute("SELECT type FROM checkpoints ORDER BY id").fetchall()]
        assert 800 // 24 - 1 <= kinds.count("auto") <= 800 // 24 + 1 and kinds[-1] == "shutdown"
    assert engine.mode is Mode.PAPER


class FakeSource:
    """A DecisionSource without a batch path: the engine streams bar by bar."""

    def __init__(self) -> None:
        self._w = {"a": 1.0, "b": 1.0}
        self.seen = 0

    async def on_candle(self, candle: Candle) -> Decision | None:
        self.seen += 1
        action = Action.TRAIL_SELL if self.seen % 10 == 0 else Action.HOLD
        return Decision(ts=candle.ts, action=action, confidence=0.5, trail_distance=0.02)

    def weights(self) -> dict[str, float]:
        return dict(self._w)

    def set_weight(self, agent_id: str, weight: float) -> None:
        if agent_id not in self._w:
            raise KeyError(agent_id)
        self._w[agent_id] = weight


async def test_set_agent_weight_publishes(hourly: CandleArrays, store: Store) -> None:
    src = FakeSource()
    engine = build_engine(load_settings(), mode="backtest", candles=hourly[:300], decisions=src, store=store)
    got: list[WeightsChanged] = []
    engine.bus.subscribe("agents.weights", lambda _t, e: got.append(e))
    engine.set_agent_weight("a", 2.5)
    assert engine.agent_weights() == {"a": 2.5, "b": 1.0}
    assert got[-1].weights == {"a": 2.5, "b": 1.0}
    assert load_weights(store) == {}  # a backtest never writes the weights paper/live start from
    await engine.run()
    assert src.seen == 300  # no batch path: every candle went through on_candle
    # the record keeps the actionable decisions
    assert [d.action for d in engine.record.decisions] == [Action.TRAIL_SELL] * 30


def test_preset_engine_has_no_weights(hourly: CandleArrays) -> None:
    engine = preset_engine(hourly[:10])
    assert engine.agent_weights() == {}
    with pytest.raises(Exception, match="no weights"):
        engine.set_agent_weight("x", 1.0)


def test_build_engine_refuses_bad_arguments(hourly: CandleArrays) -> None:
    from trdr_tui.core.errors import ConfigError

    with pytest.raises(ConfigError, match="exactly one"):
        build_engine(load_settings(), mode="backtest", preset="simple-trailing")
    with pytest.raises(ConfigError, match="unknown mode"):
        build_engine(load_settings(), mode="sideways", candles=hourly[:10], preset="simple-trailing")
    with pytest.raises(ConfigError, match="unknown preset"):
        build_engine(load_settings(), mode="backtest", candles=hourly[:10], preset="nope")
    with pytest.raises(ConfigError, match="candles are 1h bars but the configured timeframe is 1d"):
        build_engine(load_settings(overrides={"timeframe": "1d"}), mode="backtest", candles=hourly[:10],
                     preset="simple-trailing")
    with pytest.raises(ConfigError, match="live mode needs"):
        build_engine(load_settings(), mode="live", candles=hourly[:10], preset="simple-trailing")


async def test_a_failed_run_writes_no_shutdown_checkpoint(hourly: CandleArrays, tmp_path: Any) -> None:
    with Store(tmp_path / "f.duckdb") as store:
        engine = preset_engine(hourly[:500], store=store, run_id="boom")
        statuses: list[EngineStatus] = []
        engine.bus.subscribe("engine.status", lambda _t, e: statuses.append(e))

        def explode(*_a: Any) -> None:
            raise RuntimeError("policy bug")

        engine.policy.on_bar = explode  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="policy bug"):
            await engine.run()
        assert latest_checkpoint(store, "boom") is None
        assert statuses[-1].detail.startswith("failed: RuntimeError") and not statuses[-1].running
        await engine.stop()  # stopping a failed engine is harmless and writes nothing
        assert latest_checkpoint(store, "boom") is None


@pytest.mark.parametrize("speed", [None, 1e9])  # the batch loop and the streaming one
async def test_warmup_bars_place_no_orders(hourly: CandleArrays, speed: float | None) -> None:
    bars = hourly[:1500]
    start = int(bars.ts[600])
    warm = preset_engine(bars, trade_from_ns=start, speed=speed)
    await warm.run()
    first_order = min(o.created_ts for o in warm.record.orders)
    assert first_order >= start + 3_600_000_000_000  # created at the close of bar 600 at the earliest
    cold = preset_engine(bars, speed=speed)
    await cold.run()
    assert min(o.created_ts for o in cold.record.orders) < start  # without it, orders from the first bars
    assert warm.record.bars == cold.record.bars == len(bars)  # the warm-up bars still ran through the step
