"""`trdr backtest` end to end through the CLI main, on the real hourly Coinbase file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HOURLY_CDD, REPO
from trdr_tui.cli import main
from trdr_tui.store import Store
from trdr_tui.store.sessions import SessionRepository

# The shared data path as a user would type it from the repository root.
HOURLY_REL = Path("..") / HOURLY_CDD.relative_to(REPO.parent)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    rc = main(list(argv))
    out = capsys.readouterr().out
    assert rc == 0, out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, "--json prints exactly one JSON object and nothing else"
    result: dict[str, Any] = json.loads(lines[0])
    return result


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


def test_simple_trailing_matches_the_peer_frameworks(
    in_repo: None, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_json(capsys, "--db", str(db_path), "backtest", "--data", str(HOURLY_REL), "--preset",
                 "simple-trailing", "--json", "--monte-carlo", "1000")
    assert r["fills"] == 1170
    assert r["round_trips"] == 585
    assert r["final_equity"] == pytest.approx(15.6737165617, rel=1e-6)
    assert r["bars"] == 20111
    for key in ("bars", "fills", "round_trips", "final_equity", "total_return", "annualized_return", "sharpe",
                "sortino", "calmar", "max_drawdown", "win_rate", "profit_factor", "fees_paid", "elapsed_seconds",
                "session_id"):
        assert key in r, key
    assert list(r)[:15][0] == "bars"
    # returns are fractions: -99.84 %
    assert r["total_return"] == pytest.approx(15.6737165617 / 10_000 - 1, rel=1e-6)
    bh = r["baselines"]["buy_and_hold"]
    # all-in at the first close (2,509.17) with the 0.6 % fee, marked at the last close (8,035.88)
    assert bh["final_equity"] == pytest.approx(10_000 / (2509.17 * 1.006) * 8035.88, rel=1e-9)
    for name in ("buy_and_hold", "fixed_grid"):
        for key in ("total_return", "annualized_return", "sharpe", "sortino", "calmar", "max_drawdown"):
            assert key in r["baselines"][name]
    assert r["fee_rates"] == {"maker": 0.006, "taker": 0.006}
    # the session is stored, completed, with its results
    with Store(db_path) as store:
        repo = SessionRepository(store)
        s = repo.get(r["session_id"])
        assert s.status == "completed"
        stored = repo.results(s.id)
        assert stored is not None and stored["fills"] == 1170


def test_two_identical_runs_give_identical_json(
    in_repo: None, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("--db", str(db_path), "backtest", "--data", str(HOURLY_REL), "--preset", "simple-trailing",
            "--start", "2018-01-01", "--end", "2018-07-01", "--json", "--monte-carlo", "2000")
    a = run_json(capsys, *argv)
    b = run_json(capsys, *argv)
    assert a["session_id"] != b["session_id"]
    for r in (a, b):
        r.pop("elapsed_seconds")
        r.pop("session_id")
        r.pop("session_name")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["start"] == "2018-01-01T00:00:00Z"
    assert a["end"] == "2018-06-30T23:00:00Z"


def test_reports_and_sessions_commands(
    in_repo: None, db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html = tmp_path / "report.html"
    md = tmp_path / "report.md"
    common = ("--db", str(db_path), "backtest", "--data", str(HOURLY_REL), "--preset", "simple-trailing",
              "--start", "2019-01-01", "--monte-carlo", "500")
    r1 = run_json(capsys, *common, "--json", "--report", str(html), "--name", "first")
    r2 = run_json(capsys, *common, "--json", "--report", str(md), "--set", "capital=500")
    # the capital override reached the engine and the baselines
    assert r2["initial_capital"] == 500
    assert r2["baselines"]["buy_and_hold"]["final_equity"] == pytest.approx(
        r1["baselines"]["buy_and_hold"]["final_equity"] * 0.05)
    text = html.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # plotly.js is inline (works offline): no script is loaded from anywhere
    assert re.search(r"<script[^>]*\bsrc=", text) is None
    assert "Plotly.newPlot" in text and len(text) > 1_000_000
    for chart in ("Equity vs buy-and-hold", "Drawdown", "Monthly returns", "Trade return distribution"):
        assert chart in text
    mtext = md.read_text(encoding="utf-8")
    assert "| Total return |" in mtext and "### Monthly returns" in mtext

    assert main(["--db", str(db_path), "sessions", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [x["id"] for x in listed] == [r2["session_id"], r1["session_id"]] or \
        {x["id"] for x in listed} == {r1["session_id"], r2["session_id"]}
    assert main(["--db", str(db_path), "sessions", "list", "--status", "running"]) == 0
    assert capsys.readouterr().out == "no running sessions (`trdr sessions list` shows every status)\n"
    assert main(["--db", str(db_path), "sessions", "show", r1["session_id"][:7], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["session"]["name"] == "first"
    assert shown["results"]["final_equity"] == pytest.approx(r1["final_equity"])
    assert main(["--db", str(db_path), "sessions", "compare", r1["session_id"], r2["session_id"], "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert [c["final_equity"] for c in compared] == [pytest.approx(r1["final_equity"]),
                                                     pytest.approx(r2["final_equity"])]
    assert main(["--db", str(db_path), "sessions", "compare", r1["session_id"], r2["session_id"]]) == 0
    assert "final equity" in capsys.readouterr().out
    later = tmp_path / "later.html"
    assert main(["--db", str(db_path), "sessions", "show", r2["session_id"], "--report", str(later)]) == 0
    assert later.stat().st_size > 1_000_000  # the inline plotly.js alone is megabytes


def test_table_output_without_json(
    in_repo: None, db_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # as on a terminal: the progress bar runs
    rc = main(["--db", str(db_path), "backtest", "--data", str(HOURLY_REL), "--preset", "simple-trailing",
               "--start", "2019-06-01", "--monte-carlo", "0", "--no-session"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "buy-and-hold" in out and "fixed grid" in out and "not stored" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--preset", "nope"], "unknown preset"),
        (["--set", "grid.min_spacin=0.01"], "did you mean"),
        (["--set", "nonsense"], "KEY=VALUE"),
        (["--start", "2019-02-01", "--end", "2019-01-01"], "--end must be after --start"),
        (["--start", "yesterday"], "is not a date"),
        (["--report", "out.pdf"], "report format"),
        (["--params", "missing"], "no parameter version"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(
    in_repo: None, db_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    rc = main(["--db", str(db_path), "backtest", "--data", str(HOURLY_REL), "--preset", "simple-trailing", *argv]
              if "--preset" not in argv and "--params" not in argv
              else ["--db", str(db_path), "backtest", "--data", str(HOURLY_REL), *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err
    with Store(db_path) as store:
        assert SessionRepository(store).list() == []


def test_stored_candles_are_used_when_no_file_is_given(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from trdr_tui.backtest.data import load_file
    from trdr_tui.store.candles import CandleRepository

    bars, tf = load_file(HOURLY_CDD, start=None)
    with Store(db_path) as store:
        CandleRepository(store).insert("BTC-USD", tf, bars[:3000])
    r = run_json(capsys, "--db", str(db_path), "backtest", "--symbol", "BTC-USD", "--timeframe", "1h",
                 "--start", "2017-08-01", "--preset", "simple-trailing", "--json", "--monte-carlo", "0")
    assert r["start"] == "2017-08-01T00:00:00Z"
    assert r["monte_carlo"] is None
    rc = main(["--db", str(db_path), "backtest", "--symbol", "ETH-USD", "--preset", "simple-trailing"])
    assert rc == 2 and "no stored ETH-USD 1h candles" in capsys.readouterr().err


def test_default_configuration_is_deterministic_and_reports_its_agents(
    in_repo: None, db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Five core agents, the grid, trailing orders, risk checks and real fees: same run, same JSON."""
    report = tmp_path / "default.html"
    argv = ("--db", str(db_path), "backtest", "--data", str(HOURLY_REL), "--end", "2017-10-01", "--json",
            "--monte-carlo", "1000")
    a = run_json(capsys, *argv, "--report", str(report))
    b = run_json(capsys, *argv)
    for r in (a, b):
        for key in ("elapsed_seconds", "session_id", "session_name"):
            r.pop(key)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["preset"] is None
    assert a["fee_rates"] == {"maker": 0.004, "taker": 0.006}  # the configured 0-10K tier
    agents = a["stats"]["agents"]
    assert set(agents) == {"volatility", "momentum", "volume_profile", "market_structure", "regime"}
    assert all(m["signal_count"] > 0 and 0.0 <= (m["accuracy"] or 0.0) <= 1.0 for m in agents.values())
    assert a["fills"] > 0 and a["fees_paid"] > 0
    ex = a["stats"]["execution"]
    if ex["maker_fills"] == 0:  # taker fills pay the tier's 0.6 % of notional
        assert a["fees_paid"] == pytest.approx(0.006 * ex["volume"], rel=1e-9)
    assert "Agent profit contribution" in report.read_text(encoding="utf-8")


def test_a_single_bar_gives_undefined_ratios_not_errors(
    in_repo: None, db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_json(capsys, "--db", str(db_path), "backtest", "--data", str(HOURLY_REL), "--preset", "simple-trailing",
                 "--start", "2019-10-17T09:00", "--json", "--report", str(tmp_path / "one.html"))
    assert r["bars"] == 1 and r["fills"] == 0 and r["final_equity"] == 10_000.0
    assert r["sharpe"] is None and r["profit_factor"] is None and r["monte_carlo"] is None
    rc = main(["--db", str(db_path), "backtest", "--data", str(HOURLY_REL), "--start", "2019-10-20"])
    assert rc == 2 and "no bars in the requested range" in capsys.readouterr().err


def test_ohlc_without_volume_trades_and_says_so(
    tmp_path: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file with no volume column used to import with volume 0 and then make no strategy fill at all
    (every market order IOC-cancelled for "no volume") while both baselines traded."""
    lines = HOURLY_CDD.read_text().splitlines()[1:]  # date,symbol,open,high,low,close,volume_btc,volume
    rows = [",".join(line.split(",")[:6]) for line in lines[:2000]]
    path = tmp_path / "ohlc.csv"
    path.write_text("\n".join(rows) + "\n")
    r = run_json(capsys, "--db", str(db_path), "backtest", "--data", str(path), "--preset", "simple-trailing",
                 "--monte-carlo", "0", "--json")
    assert r["fills"] > 0 and r["volume_known"] is False
    assert any("no volume" in w for w in r["warnings"])
    with_volume = tmp_path / "ohlcv.csv"
    with_volume.write_text("\n".join([lines[0], *lines[1:2000]]) + "\n")
    assert run_json(capsys, "--db", str(db_path), "backtest", "--data", str(with_volume), "--preset",
                    "simple-trailing", "--monte-carlo", "0", "--json")["volume_known"] is True
    assert main(["--db", str(db_path), "backtest", "--data", str(path), "--preset", "simple-trailing",
                 "--monte-carlo", "0", "--no-session"]) == 0
    assert "warning: the candles have no volume" in capsys.readouterr().out


def test_a_report_into_a_missing_folder_is_refused_before_the_run(
    in_repo: None, db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--db", str(db_path), "backtest", "--data", str(HOURLY_REL), "--start", "2019-06-01",
            "--report", str(tmp_path / "missing" / "r.md")]
    assert main(argv) == 2
    assert "report folder" in capsys.readouterr().err
    with Store(db_path) as store:  # nothing was run or stored
        assert SessionRepository(store).list() == []
