"""Adaptive values (PRD §3.5): bounded moves by the learning rate, confidence from evidence, stored per
symbol through the paper/live journal, restored on resume, never touched by backtests or replays."""

from __future__ import annotations

import pytest

from tests.tuning.streams import StreamFeed
from trdr_tui.config import Settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.clock import SimClock
from trdr_tui.engine.assembly import build_engine, build_replay_engine
from trdr_tui.store.db import Store
from trdr_tui.store.tuning import TuningRepository
from trdr_tui.tuning.adaptive import CONFIDENCE_MAX, AdaptiveParameters, AdaptiveValue, Outcome
from trdr_tui.tuning.apply import live_values
from trdr_tui.tuning.daily import ATTACHMENT, attach_self_tuning

LOSS = Outcome(ts=1, net_pnl=-5.0, fees=3.0)            # gross −2: a loss before fees
FEE_BOUND = Outcome(ts=1, net_pnl=-1.0, fees=3.0)       # gross +2, fees 150 % of it
CLEAN_WIN = Outcome(ts=1, net_pnl=20.0, fees=2.0)       # gross 22, fees 9 %


def test_a_poor_record_moves_each_value_by_the_learning_rate_in_its_corrective_direction() -> None:
    ap = AdaptiveParameters.start("BTC-USD", {"grid.swing_fraction": 0.3, "trailing.distance": 0.015,
                                              "risk.max_position": 0.5, "agents.min_confidence": 0.6},
                                  ["grid.swing_fraction", "trailing.distance", "risk.max_position",
                                   "agents.min_confidence"], rate=0.1, window=100, min_outcomes=3)
    assert ap.feedback(LOSS) == {} and ap.feedback(LOSS) == {}  # too little evidence yet
    moves = ap.feedback(LOSS)
    assert ap.get("grid.swing_fraction") == pytest.approx(0.33)    # wider: fees ate the trips
    assert ap.get("trailing.distance") == pytest.approx(0.0135)    # tighter: the trail gave the gain back
    assert ap.get("risk.max_position") == pytest.approx(0.45)  # smaller
    assert ap.get("agents.min_confidence") == pytest.approx(0.66)  # pickier
    assert set(moves) == set(ap.values)
    assert "poor: 0% of the last 3" in moves["risk.max_position"].reason
    assert ap.values["risk.max_position"].confidence == pytest.approx(0.65)


def test_a_good_record_moves_by_half_the_rate_the_other_way() -> None:
    v = AdaptiveValue("risk.max_position", 0.5, low=0.1, high=1.0)
    for _ in range(4):
        v.learn(CLEAN_WIN, rate=0.1, min_outcomes=5)
    assert v.value == 0.5
    adj = v.learn(CLEAN_WIN, rate=0.1, min_outcomes=5)
    assert adj is not None and adj.new == pytest.approx(0.525) and v.value == pytest.approx(0.525)
    s = AdaptiveValue("grid.swing_fraction", 0.3, low=0.1, high=1.0)
    for _ in range(5):
        s.learn(FEE_BOUND, rate=0.1, min_outcomes=5)
    assert s.value > 0.3  # fee-bound trips widen the grid


def test_values_stay_within_their_bounds_and_confidence_stops_at_0_9() -> None:
    v = AdaptiveValue("trailing.distance", 0.006, low=0.005, high=0.03)
    for _ in range(60):
        v.learn(LOSS, rate=0.1, min_outcomes=1)
    assert v.value == 0.005
    assert v.confidence == CONFIDENCE_MAX
    assert [a.new for a in v.history][:2] == [pytest.approx(0.0054), 0.005]  # the clamp is a move too, then none
    assert len(v.history) == 2


def test_a_configured_value_outside_the_optimizer_range_is_kept() -> None:
    ap = AdaptiveParameters.start("BTC-USD", {"risk.max_position": 0.05}, ["risk.max_position"], rate=0.1,
                                  window=10, min_outcomes=1)
    assert ap.get("risk.max_position") == 0.05


def _paper(settings: Settings, bars: CandleArrays, store: Store) -> object:
    return build_engine(settings, mode="paper", feed=StreamFeed(bars, settings.symbol, settings.timeframe),
                        store=store, clock=SimClock(int(bars.ts[0])))


async def test_paper_stores_them_through_the_journal_and_a_restart_restores_them(
        hourly: CandleArrays, store: Store, settings: Settings) -> None:
    bars = hourly[:30]
    e1 = _paper(settings, bars, store)
    t1 = attach_self_tuning(e1, store)  # type: ignore[arg-type]
    assert t1 is not None and e1.attachments[ATTACHMENT] is t1  # type: ignore[attr-defined]
    assert t1.adaptive is not None
    start = live_values(e1)  # type: ignore[arg-type]
    for _ in range(settings.tuning.adaptive_min_outcomes):
        moves = t1.adaptive.feedback(LOSS)
    t1._apply({k: a.new for k, a in moves.items()}, "adaptive", "test")
    t1.repo.save_adaptive(t1.adaptive.records(int(bars.ts[0])))
    assert store.writer is not None  # paper: the journal is in front of the store
    moved = live_values(e1)  # type: ignore[arg-type]
    assert moved["risk.max_position"] == pytest.approx(start["risk.max_position"] * 0.9)
    await e1.run()  # type: ignore[attr-defined]
    trades = e1.record.trades  # type: ignore[attr-defined]
    assert trades  # the run's own round trips were fed to the values too
    assert len(t1.adaptive.values["risk.max_position"].outcomes) == \
        settings.tuning.adaptive_min_outcomes + len(trades)
    final = live_values(e1)  # type: ignore[arg-type]
    store.sync()
    rows = {r.name: r for r in TuningRepository(store).adaptive("BTC-USD")}
    assert set(rows) == set(final) - {"trailing.distance"}  # post-only take-profits never read the trail
    assert {k: r.value for k, r in rows.items()} == pytest.approx({k: final[k] for k in rows})
    assert rows["risk.max_position"].history[0].reason.startswith("poor")
    assert len(rows["risk.max_position"].outcomes) == settings.tuning.adaptive_min_outcomes + len(trades)

    e2 = _paper(settings, bars, store)
    t2 = attach_self_tuning(e2, store)  # type: ignore[arg-type]
    assert t2 is not None and t2.adaptive is not None
    assert live_values(e2) == pytest.approx(final)  # type: ignore[arg-type]
    assert len(t2.adaptive.values["risk.max_position"].outcomes) == len(rows["risk.max_position"].outcomes)


async def test_backtests_and_replays_neither_read_nor_write_them(
        hourly: CandleArrays, store: Store, settings: Settings) -> None:
    bars = hourly[:300]
    backtest = build_engine(settings, mode="backtest", candles=bars, store=store)
    replay = build_replay_engine(settings, bars, speed=None, store=store, log=[])
    assert attach_self_tuning(backtest, store) is None
    assert attach_self_tuning(replay, store) is None
    await backtest.run()
    await replay.run()
    store.sync()
    assert TuningRepository(store).adaptive() == []
    assert TuningRepository(store).changes() == []


def test_trdr_params_tuning_lists_the_verdicts_and_the_values(db_path: object, capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    import json

    from trdr_tui.cli import main
    from trdr_tui.store.tuning import ParameterChange

    with Store(db_path) as store:  # type: ignore[arg-type]
        repo = TuningRepository(store)
        ap = AdaptiveParameters.start("BTC-USD", {"trailing.distance": 0.015}, ["trailing.distance"], rate=0.1,
                                      window=10, min_outcomes=1)
        ap.feedback(LOSS)
        repo.save_adaptive(ap.records(1_700_000_000 * 10**9))
        repo.record_change(ParameterChange(ts=1_700_000_000 * 10**9, adopted=False, symbol="BTC-USD", changes={},
                                           reason="kept: the winner did not beat the version in force"))
    assert main(["--db", str(db_path), "params", "tuning", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changes"][0]["reason"].startswith("kept") and out["changes"][0]["symbol"] == "BTC-USD"
    [v] = out["adaptive"]
    assert v["name"] == "trailing.distance" and v["value"] == pytest.approx(0.0135)
    assert v["history"][0]["reason"].startswith("poor")
    assert main(["--db", str(db_path), "params", "tuning"]) == 0
    text = capsys.readouterr().out
    assert "adaptive values" in text and "0.0135" in text and "kept" in text


def test_trdr_params_tuning_before_any_self_tuning_names_the_config_section(
        db_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from trdr_tui.cli import main

    assert main(["--db", str(db_path), "params", "tuning"]) == 0
    assert "([tuning] in the config)" in capsys.readouterr().out  # printed as text, not read as markup
