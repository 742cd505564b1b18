"""`trdr data …` end to end through `trdr_tui.cli.main`, with a real DuckDB file per test."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from tests.conftest import BITFINEX_1H, DAILY_2011, DAILY_CDD, HOURLY_CDD
from tests.foundation.conftest import RunCli, edit_line, replace_field
from trdr_tui.store import Store
from trdr_tui.store.candles import CandleRepository


def _rows(db: Path) -> list[tuple]:
    with Store(db) as store:
        return store.conn.execute("SELECT * FROM candles ORDER BY symbol, timeframe, ts").fetchall()


def test_import_hourly_twice_then_gaps_and_list(run_cli: RunCli, db_path: Path) -> None:
    args = ("data", "import", HOURLY_CDD, "--symbol", "BTC-USD", "--timeframe", "1h")
    code, out, err = run_cli(*args, db=db_path)
    assert code == 0, err
    assert "CryptoDataDownload CSV" in out and "20,111 added · 0 already stored" in out
    assert "2017-07-01 11:00 → 2019-10-17 09:00 UTC" in out

    code, out, _ = run_cli(*args, db=db_path)
    assert code == 0 and "0 added · 20,111 already stored" in out

    code, out, _ = run_cli("data", "gaps", db=db_path)
    assert code == 0 and out.strip() == "BTC-USD 1h: no gaps (20,111 bars)"

    code, out, _ = run_cli("data", "list", db=db_path)
    assert code == 0
    row = next(line for line in out.splitlines() if "BTC-USD" in line)
    for cell in ("1h", "2017-07-01 11:00", "2019-10-17 09:00", "20,111", "none"):
        assert cell in row
    with Store(db_path) as store:
        assert CandleRepository(store).count("BTC-USD", "1h") == 20_111


@pytest.mark.parametrize(("path", "tf", "count"), [(DAILY_CDD, "1d", 1_770), (BITFINEX_1H, "1h", 17_583),
                                                   (DAILY_2011, "1d", 5_152)], ids=lambda v: getattr(v, "name", v))
def test_each_shared_file_imports(run_cli: RunCli, db_path: Path, path: Path, tf: str, count: int) -> None:
    code, out, err = run_cli("data", "import", path, "--symbol", "BTC-USD", db=db_path)  # timeframe inferred
    assert code == 0, err
    assert f"BTC-USD {tf}" in out and f"{count:,} added" in out
    with Store(db_path) as store:
        assert CandleRepository(store).count("BTC-USD", tf) == count


def test_gaps_lists_missing_ranges(run_cli: RunCli, db_path: Path) -> None:
    assert run_cli("data", "import", DAILY_CDD, "--symbol", "BTC-USD", db=db_path)[0] == 0
    code, out, _ = run_cli("data", "gaps", "--symbol", "BTC-USD", "--timeframe", "1d", db=db_path)
    assert code == 0
    assert "BTC-USD 1d: 1 gaps, 12 bars missing" in out
    assert "2019-03-20 00:00 → 2019-03-31 00:00  (12 bars)" in out


@pytest.mark.parametrize(
    ("line_no", "edit", "needles"),
    [
        (1000, lambda ln: replace_field(ln, 3, "10500.00"), ("line 1000", "field 'high'")),
        (5000, lambda ln: replace_field(ln, 4, "low?"), ("line 5000", "field 'low'", "not a number")),
        (7777, lambda ln: ln[:20], ("line 7777", "truncated")),
    ],
    ids=["high-below-low", "non-numeric", "truncated"],
)
def test_corrupted_copy_is_refused_and_db_unchanged(
    run_cli: RunCli, db_path: Path, tmp_path: Path, line_no: int, edit: object, needles: tuple[str, ...]
) -> None:
    assert run_cli("data", "import", DAILY_CDD, "--symbol", "BTC-USD", db=db_path)[0] == 0
    before = _rows(db_path)
    bad = tmp_path / "corrupt.csv"
    edit_line(HOURLY_CDD, bad, line_no, edit)  # type: ignore[arg-type]
    code, out, err = run_cli("data", "import", bad, "--symbol", "BTC-USD", "--timeframe", "1h", db=db_path)
    assert code == 2 and out == ""
    assert f"{bad}:{line_no}" in err
    for needle in needles:
        assert needle in err
    assert _rows(db_path) == before


def test_import_into_fresh_db_refused_leaves_it_empty(run_cli: RunCli, db_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.csv"
    edit_line(HOURLY_CDD, bad, 20_000, lambda ln: replace_field(ln, 2, "x"))
    code, _, err = run_cli("data", "import", bad, "--symbol", "BTC-USD", db=db_path)
    assert code == 2 and "line 20000" in err
    assert _rows(db_path) == []


def test_import_with_resample_and_resample_command(run_cli: RunCli, db_path: Path) -> None:
    code, out, _ = run_cli("data", "import", HOURLY_CDD, "--symbol", "BTC-USD", "--resample", "4h", db=db_path)
    assert code == 0 and "→ 4h" in out and "5,027 bars added" in out
    code, out, _ = run_cli("data", "resample", "--symbol", "BTC-USD", "--from", "1h", "--to", "4h,1d", db=db_path)
    assert code == 0
    assert "1h → 4h: 20,111 bars into 5,029: 0 added, 5,027 already stored" in out
    assert "1h → 1d: 20,111 bars into 839: 837 added" in out
    code, out, _ = run_cli("data", "list", db=db_path)
    assert all(tf in out for tf in ("1h", "4h", "1d"))


def test_resample_bad_target_is_refused(run_cli: RunCli, db_path: Path) -> None:
    code, _, err = run_cli("data", "resample", "--symbol", "BTC-USD", "--to", "90m", db=db_path)
    assert code == 2 and "unknown timeframe '90m'" in err


def test_check_validates_without_storing(run_cli: RunCli, db_path: Path) -> None:
    code, out, _ = run_cli("data", "check", DAILY_CDD, db=db_path)
    assert code == 0 and "Valid" in out and "12 bars missing" in out and "outliers" in out
    assert _rows(db_path) == []


def test_import_uses_config_symbol_by_default(run_cli: RunCli, db_path: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "trdr.toml"
    cfg.write_text('symbol = "BTC-EUR"\ncapital = 1000\nrisk_tolerance = "moderate"\n')
    code, out, _ = run_cli("data", "import", DAILY_CDD, "--override-symbol", db=db_path, config=cfg)
    assert code == 0 and "BTC-EUR 1d" in out
    assert "the file's candles are 'BTCUSD'" in out  # the file itself names another product


def test_bad_config_is_refused_before_the_store_is_touched(run_cli: RunCli, db_path: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "trdr.toml"
    cfg.write_text('symbol = "BTC-USD"\ncapital = 1000\nrisk_tolerance = "bold"\n')
    code, _, err = run_cli("data", "import", HOURLY_CDD, "--symbol", "BTC-USD", db=db_path, config=cfg)
    assert code == 2 and "risk_tolerance" in err and str(cfg) in err
    assert not db_path.exists()


def test_data_without_action_prints_help(run_cli: RunCli) -> None:
    code, out, _ = run_cli("data")
    assert code == 2 and "import" in out and "resample" in out


def test_list_and_gaps_on_an_empty_store(run_cli: RunCli, db_path: Path) -> None:
    code, out, _ = run_cli("data", "list", db=db_path)
    assert code == 0 and "No candles stored" in out
    code, out, _ = run_cli("data", "gaps", db=db_path)  # nothing stored is not a failure: nothing to check
    assert code == 0 and "No candles stored: no gaps to check" in out
    code, out, _ = run_cli("data", "gaps", "--symbol", "ETH-USD", db=db_path)
    assert code == 0 and "No candles stored for ETH-USD" in out


def test_backfill_is_not_available_without_its_module(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trdr_tui.exchange.backfill", None)  # as if it did not exist
    monkeypatch.delitem(sys.modules, "trdr_tui.commands.backfill", raising=False)  # imported afresh
    code, _, err = run_cli("data", "backfill", "--symbol", "BTC-USD", "--start", "2024-01-01")
    assert code == 2 and "not yet available" in err


def test_backfill_calls_the_backfill_module(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}
    fake = types.ModuleType("trdr_tui.commands.backfill")

    def run(ctx: object) -> int:
        args = ctx.args  # type: ignore[attr-defined]
        seen.update(symbol=args.symbol, timeframe=args.timeframe, start=args.start, end=args.end)
        return 0

    fake.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "trdr_tui.commands.backfill", fake)
    code, _, err = run_cli("data", "backfill", "--symbol", "ETH-USD", "--timeframe", "4h", "--start", "2024-01-01",
                           "--end", "2024-02-01")
    assert code == 0, err
    assert seen == {"symbol": "ETH-USD", "timeframe": "4h", "start": "2024-01-01", "end": "2024-02-01"}


def test_import_with_unfit_resample_target_stores_nothing(run_cli: RunCli, db_path: Path) -> None:
    code, _, err = run_cli("data", "import", DAILY_CDD, "--symbol", "BTC-USD", "--resample", "4h", db=db_path)
    assert code == 2 and "cannot resample 1d into 4h" in err
    assert _rows(db_path) == []


def test_a_directory_or_an_empty_file_is_named_for_what_it_is(run_cli: RunCli, db_path: Path,
                                                               tmp_path: Path) -> None:
    folder = tmp_path / "candles"
    folder.mkdir()
    (folder / "btc_1h.csv").write_text("timestamp,open,high,low,close\n")
    code, _, err = run_cli("data", "check", folder, db=db_path)
    assert code == 2 and f"{folder} is a directory, not a candle file" in err and "does not exist" not in err
    assert f"e.g. {folder / 'btc_1h.csv'}" in err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = run_cli("data", "import", empty, "--symbol", "BTC-USD", db=db_path)
    assert code == 2 and f"candle file {empty} is empty" in err and "header row" not in err
