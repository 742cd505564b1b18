"""The engine driven by the real agent panel (orchestrator) and the grid policy."""

from __future__ import annotations

import math

from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.events import GridSnapshot, RiskRejection
from trdr_tui.core.types import Side
from trdr_tui.engine.assembly import build_engine


async def test_batch_decisions_and_streaming_decisions_trade_identically(hourly: CandleArrays) -> None:
    bars = hourly[:3000]
    batch = build_engine(load_settings(), mode="backtest", candles=bars)
    grids: list[GridSnapshot] = []
    rejections: list[RiskRejection] = []
    batch.bus.subscribe("grid.*", lambda _t, e: grids.append(e))
    batch.bus.subscribe("risk.rejected", lambda _t, e: rejections.append(e))
    await batch.run()
    assert batch.decision_arrays is not None  # the orchestrator's batch path was used
    stream = build_engine(load_settings(), mode="backtest", candles=bars, speed=1e9)
    await stream.run()
    assert stream.decision_arrays is None

    a, b = batch.record, stream.record
    assert len(a.fills) > 5
    assert [(f.ts, f.side, f.price, f.size, f.fee) for f in a.fills] == \
        [(f.ts, f.side, f.price, f.size, f.fee) for f in b.fills]
    assert [(d.ts, d.action) for d in a.decisions] == [(d.ts, d.action) for d in b.decisions]
    assert all(math.isclose(x.confidence, y.confidence, rel_tol=1e-9) for x, y in zip(a.decisions, b.decisions,
                                                                                         strict=True))
    assert a.final_equity == b.final_equity
    assert [r.failed_checks for r in a.rejections] == [r.failed_checks for r in b.rejections]
    assert [(r.ts, r.failed_checks) for r in rejections] == [(r.ts, r.failed_checks) for r in a.rejections]

    # the grid was built, with self-tuned spacing in bounds, and published
    assert grids and all(0.005 <= g.spacing <= 0.05 for g in grids)
    assert {lv.state for g in grids for lv in g.levels} >= {"idle", "armed", "filled"}
    # real fees, sizes rounded to the product increment, cash never negative
    curve = a.equity_curve()
    assert (curve.cash >= 0).all() and (curve.position >= -1e-12).all()
    for f in a.fills:
        assert f.fee > 0
        if f.side is Side.BUY:
            assert math.isclose(f.size * 1e8, round(f.size * 1e8), abs_tol=1e-6)
    pf = batch.portfolio
    last = float(bars.close[-1])
    assert math.isclose(a.final_equity - pf.initial_cash, pf.realized_pnl + pf.unrealized_pnl(last) - pf.fees,
                        rel_tol=1e-9, abs_tol=1e-6)


async def test_checkpoint_carries_the_orchestrator_state(hourly: CandleArrays, tmp_path: object) -> None:
    from pathlib import Path

    from trdr_tui.engine.recovery import restore_latest
    from trdr_tui.store.db import Store

    bars = hourly[:700]
    with Store(Path(str(tmp_path)) / "o.duckdb") as store:
        first = build_engine(load_settings(), mode="paper", candles=bars[:400], store=store, run_id="o1",
                             checkpoint_interval_s=7 * 86400)
        await first.run()
        second = build_engine(load_settings(), mode="paper", candles=bars[400:], store=store, run_id="o1",
                              checkpoint_interval_s=7 * 86400)
        assert restore_latest(second, store, "o1")
        restored = second.decisions.get_state()  # type: ignore[union-attr]
        assert restored["weights"] == first.decisions.get_state()["weights"]  # type: ignore[union-attr]
        await second.run()
    # the restarted panel decides exactly as one that never stopped
    whole = build_engine(load_settings(), mode="paper", candles=bars)
    await whole.run()
    cut = int(bars.ts[400])
    after = [(d.ts, d.action) for d in whole.record.decisions if d.ts >= cut]
    assert after and [(d.ts, d.action) for d in second.record.decisions] == after


async def test_no_buy_is_placed_while_the_drawdown_halt_is_in_force(hourly: CandleArrays) -> None:
    import numpy as np

    bars = hourly[4000:9000]  # into the 2018 fall
    limit = 0.005
    settings = load_settings(overrides={"risk.max_drawdown": limit, "risk.max_concurrent_trades": 5,
                                        "risk.daily_loss_limit": 0.5, "risk.halt_cooloff_hours": 48.0})
    engine = build_engine(settings, mode="backtest", candles=bars)
    statuses: list[str] = []
    engine.bus.subscribe("engine.status", lambda _t, e: statuses.append(e.detail))
    await engine.run()
    rec = engine.record
    halts = engine.risk.halts
    assert len(halts) >= 2 and all("max_drawdown" in h.reason for h in halts)
    assert [s for s in statuses if s.startswith(("halted", "resumed"))][:2] == \
        [f"halted: {halts[0].reason}", f"resumed: {halts[0].resume_reason}"]
    buys = [o for o in rec.orders if o.side is Side.BUY]
    assert buys
    for h in halts:  # nothing bought while halted; the halt lifts after its 48 h cool-off
        end = h.resumed_ts if h.resumed_ts is not None else 2**63
        assert not [o for o in buys if h.ts <= o.created_ts < end]
        assert h.resumed_ts is None or h.resumed_ts - h.ts >= 48 * 3_600_000_000_000
    curve = rec.equity_curve()
    assert float(np.max(1 - curve.equity / np.maximum.accumulate(curve.equity))) > 2 * limit


async def test_base_weights_are_the_user_set_weights_before_adaptive_scaling(hourly: CandleArrays) -> None:
    engine = build_engine(load_settings(), mode="paper", candles=hourly[:1500])
    agent = next(iter(engine.agent_base_weights()))
    engine.set_agent_weight(agent, 2.0)
    await engine.run()
    base, in_force = engine.agent_base_weights(), engine.agent_weights()
    assert base[agent] == 2.0
    assert base == engine.decisions.base_weights()  # type: ignore[union-attr]
    assert set(base) == set(in_force)
    assert base != in_force  # adaptation scaled the weights in force, not the ones the user set
    preset = build_engine(load_settings(), mode="paper", candles=hourly[:10], preset="simple-trailing")
    assert preset.agent_base_weights() == {}
