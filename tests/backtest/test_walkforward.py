"""Walk-forward: window layout, the grid-search hook, the robustness score, and a real engine run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trdr_tui.backtest.walkforward import (
    engine_evaluate,
    grid_search,
    parse_search,
    parse_window_spec,
    walk_forward,
    windows,
    with_overrides,
)
from trdr_tui.config import Settings, load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.timefmt import iso_utc

HOUR = 3_600_000_000_000


def test_windows_roll_by_the_step() -> None:
    assert windows(10, 4, 2, 2) == [(0, 4, 6), (2, 6, 8), (4, 8, 10)]
    assert windows(9, 4, 3, 3) == [(0, 4, 7)]
    with pytest.raises(ConfigError, match="too few"):
        windows(5, 4, 2, 2)


def test_window_spec_in_bars_and_durations() -> None:
    assert parse_window_spec("2000:500", HOUR) == (2000, 500, None)
    assert parse_window_spec("120d:30d:15d", HOUR) == (2880, 720, 360)
    assert parse_window_spec("8w:1w", 24 * HOUR) == (56, 7, None)
    with pytest.raises(ConfigError, match="TRAIN:TEST"):
        parse_window_spec("120d", HOUR)
    assert parse_search(["trailing.distance=0.01,0.02"]) == {"trailing.distance": [0.01, 0.02]}
    with pytest.raises(ConfigError, match="KEY=V1"):
        parse_search(["trailing.distance"])


def test_overrides_are_validated() -> None:
    s = with_overrides(load_settings(), {"grid.min_spacing": 0.01})
    assert s.grid.min_spacing == 0.01
    with pytest.raises(ConfigError):
        with_overrides(load_settings(), {"grid.min_spacing": 2.0})
    with pytest.raises(ConfigError):
        with_overrides(load_settings(), {"grid.nope": 1})


def fake_bars(n: int) -> CandleArrays:
    ts = HOUR * np.arange(n, dtype=np.int64)
    c = 100.0 + np.arange(n, dtype=float)
    return CandleArrays(ts, c, c, c, c, np.ones(n))


def test_grid_search_picks_the_best_and_walk_forward_scores_it() -> None:
    """A stand-in evaluation whose outcome is known: the score peaks at trailing.distance = 0.02, and
    the return is the distance × the number of bars (tests get a smaller pace than training)."""
    calls: list[tuple[int, float]] = []

    def evaluate(bars: CandleArrays, settings: Settings, warm: int) -> dict[str, Any]:
        d = float(settings.trailing.distance or 0.0)
        calls.append((len(bars), d))
        per_bar = d / 100 if warm == 0 else d / 200
        return {"total_return": math.expm1(per_bar * (len(bars) - warm)), "sharpe": -abs(d - 0.02),
                "max_drawdown": 0.1}

    best, score, trials = grid_search(fake_bars(40), load_settings(), {"trailing.distance": [0.01, 0.02, 0.03]},
                                      evaluate)
    assert best == {"trailing.distance": 0.02} and score == 0.0 and len(trials) == 3

    res = walk_forward(fake_bars(100), load_settings(), evaluate, train_bars=40, test_bars=20,
                       search_space={"trailing.distance": [0.01, 0.02, 0.03]})
    assert [(w.index, w.test_start) for w in res.windows] == [
        (0, "1970-01-02T16:00:00Z"), (1, "1970-01-03T12:00:00Z"), (2, "1970-01-04T08:00:00Z")]
    assert all(w.best_parameters == {"trailing.distance": 0.02} for w in res.windows)
    assert res.parameter_stability == 1.0
    assert res.share_positive == 1.0
    # in-sample growth 0.02/100 per bar, out-of-sample 0.02/200: efficiency one half
    assert res.efficiency == pytest.approx(0.5)
    assert res.robustness_score == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)
    assert res.test_bars == 20 and res.step_bars == 20
    # each test window (20 bars) came with every bar before it as its warm-up: the default warm-up
    # (720 bars) is more than there are
    assert res.warm_bars == 720
    assert [n for n, _ in calls if n != 40] == [60, 80, 100]


def test_losing_out_of_sample_scores_low() -> None:
    def evaluate(bars: CandleArrays, settings: Settings, warm: int) -> dict[str, Any]:
        r = 0.1 if warm == 0 else -0.05
        return {"total_return": r, "sharpe": 1.0, "max_drawdown": 0.1}

    res = walk_forward(fake_bars(80), load_settings(), evaluate, train_bars=40, test_bars=20,
                       search_space={"grid.levels": [10]})
    assert res.share_positive == 0.0
    assert res.robustness_score == 0.0
    assert res.compounded_test_return == pytest.approx(0.95**2 - 1)


def test_walk_forward_through_the_engine(hourly: CandleArrays) -> None:
    bars = hourly[:3000]
    res = walk_forward(bars, load_settings(), engine_evaluate("simple-trailing"), train_bars=1500, test_bars=700,
                       step_bars=700, search_space={"capital": [1000.0, 5000.0]}, objective="total_return")
    assert len(res.windows) == 2
    assert all(w.best_parameters["capital"] in (1000.0, 5000.0) for w in res.windows)
    w = res.windows[0]
    assert w.test_start == "2017-09-01T23:00:00Z"
    assert -1.0 < w.test_return < 10.0 and w.test_max_drawdown >= 0.0
    assert res.robustness_score is not None and 0.0 <= res.robustness_score <= 1.0


def test_walk_forward_from_the_cli_is_stored(db_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import time

    from tests.backtest.test_cli_backtest import HOURLY_REL
    from tests.conftest import REPO
    from trdr_tui.backtest import walkforward
    from trdr_tui.cli import main
    from trdr_tui.store import Store
    from trdr_tui.store.sessions import OptimizationRepository, SessionRepository

    spent: list[float] = []

    def timed(*a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            spent.append(time.perf_counter() - started)

    real = walkforward.walk_forward
    monkeypatch.setattr(walkforward, "walk_forward", timed)
    monkeypatch.chdir(REPO)
    rc = main(["--db", str(db_path), "backtest", "--data", str(HOURLY_REL), "--preset", "simple-trailing",
               "--end", "2017-11-01", "--walk-forward", "40d:20d", "--search", "capital=1000,2000", "--json",
               "--monte-carlo", "0"])
    out = capsys.readouterr().out
    assert rc == 0
    r = json.loads(out)
    assert r["elapsed_seconds"] >= spent[0]  # wall time, the walk-forward's windows included
    wf = r["walk_forward"]
    assert wf["train_bars"] == 960 and wf["test_bars"] == 480 and len(wf["windows"]) == 4
    assert wf["search_space"] == {"capital": [1000, 2000]}
    with Store(db_path) as store:
        assert SessionRepository(store).results(r["session_id"])["walk_forward"] == wf
        row = store.conn.execute("SELECT id FROM optimizations").fetchall()
        assert len(row) == 1
        opt = OptimizationRepository(store).get(row[0][0])
        assert opt.method == "walk_forward/grid_search" and opt.search_space["session_id"] == r["session_id"]
        assert opt.results["robustness_score"] == wf["robustness_score"]


def test_bars_after_the_last_window_are_reported_as_untested() -> None:
    """90 bars, 40 + 20 per window stepping 20: windows end at bar 60 and 80; the last 10 bars are traded by
    no window, and the result says so (the output used to be silent about them)."""
    def evaluate(bars: CandleArrays, settings: Settings, warm: int) -> dict[str, Any]:
        return {"total_return": 0.01, "sharpe": 1.0, "max_drawdown": 0.1}

    bars = fake_bars(90)
    res = walk_forward(bars, load_settings(), evaluate, train_bars=40, test_bars=20,
                       search_space={"grid.levels": [10]})
    assert len(res.windows) == 2
    assert res.untested_bars == 10 and res.untested_from == iso_utc(bars.ts[80])
    whole = walk_forward(fake_bars(80), load_settings(), evaluate, train_bars=40, test_bars=20,
                         search_space={"grid.levels": [10]})
    assert whole.untested_bars == 0 and whole.untested_from is None


def test_walk_forward_prints_its_windows_with_the_parameters_chosen(
    db_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --json the run used to print nothing about the walk-forward."""
    from tests.backtest.test_cli_backtest import HOURLY_REL
    from tests.conftest import REPO
    from trdr_tui.cli import main

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("COLUMNS", "200")
    rc = main(["--db", str(db_path), "backtest", "--data", str(HOURLY_REL), "--preset", "simple-trailing",
               "--end", "2017-10-01", "--walk-forward", "30d:15d", "--search", "capital=1000,2000",
               "--monte-carlo", "0", "--no-session"])
    out = capsys.readouterr().out
    assert rc == 0
    assert ("walk-forward (sharpe, 720 training bars → 360 test bars per window, each warmed on the 200 bars "
            "before it, no orders)") in out
    assert "parameters chosen" in out and "out-of-sample: compounded" in out
    window_lines = [line for line in out.splitlines() if "capital=" in line]
    assert len(window_lines) == 4 and all(("capital=1000" in x) or ("capital=2000" in x) for x in window_lines)


def test_a_warmed_window_is_a_continuous_run_cut_at_its_end(hourly: CandleArrays) -> None:
    """Window 0 is traded exactly as a run that started its warm-up at the same bar and went on past
    the window's end; bars after the window's end change nothing in it (no look-ahead)."""
    from trdr_tui.backtest.runner import run_warmed

    settings = load_settings()
    bars = hourly[:2600]
    kw: dict[str, Any] = {"train_bars": 1000, "test_bars": 400, "search_space": {"grid.cost_multiple": [2.0]}}
    res = walk_forward(bars, settings, engine_evaluate(), **kw)
    assert res.warm_bars == 720 and len(res.windows) == 4
    run, start = run_warmed(settings, bars[1000 - 720:], 720)  # the continuous run, warmed the same way
    assert run.equity[1400 - 280 - 1] / start - 1.0 == res.windows[0].test_return
    changed = CandleArrays(bars.ts, bars.open.copy(), bars.high.copy(), bars.low.copy(), bars.close.copy(),
                           bars.volume)
    for col in (changed.open, changed.high, changed.low, changed.close):
        col[1400:] *= 0.7  # a crash right after window 0
    again = walk_forward(changed, settings, engine_evaluate(), **kw)
    assert again.windows[0] == res.windows[0]
    assert again.windows[1].test_return != res.windows[1].test_return


def test_the_trend_gate_is_armed_at_a_warmed_windows_first_bar(hourly: CandleArrays) -> None:
    """At bar 2000 (2017-09-22) the market is in a confirmed downtrend. Warmed on the 720 bars before,
    the grid sees it at once and buys nothing; started cold it stocks its cells at the first bar."""
    from trdr_tui.backtest.runner import run_warmed
    from trdr_tui.trading.grid import trend_gate

    settings = load_settings()
    g = settings.grid
    warm = hourly[2000 - 720:2200]
    _f, _s, down = trend_gate(warm.close, fast_bars=g.trend_fast_bars, slow_bars=g.trend_slow_bars, band=g.trend_band)
    assert down[720]  # the premise
    warmed, start = run_warmed(settings, warm, 720)
    cold, _ = run_warmed(settings, hourly[2000:2200], 0)
    first_close = int(hourly.ts[2000]) + HOUR  # fills are stamped at the close of their bar
    assert not bool((warmed.fills.ts <= first_close).any()) and warmed.equity[720] == start
    assert bool((cold.fills.ts == first_close).any())  # the cold grid bought into the downtrend
