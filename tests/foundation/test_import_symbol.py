"""`trdr data import` refuses a file that names another symbol than the one it would be stored under
(its symbol column on any row, or a data.binance.vision file name), unless told `--override-symbol`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import DAILY_CDD, HOURLY_CDD
from tests.foundation.conftest import RunCli
from trdr_tui.store import Store

HEADER = "date,symbol,open,high,low,close,volume"


def _stored(db: Path) -> int:
    if not db.exists():
        return 0
    with Store(db) as store:
        row = store.conn.execute("SELECT count(*) FROM candles").fetchone()
    return int(row[0]) if row else 0


def _head_of(path: Path, lines: int) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [next(f).rstrip("\n") for _ in range(lines)]


@pytest.mark.parametrize("source", [DAILY_CDD, HOURLY_CDD], ids=["cdd-daily", "cdd-hourly"])
def test_a_file_naming_another_symbol_is_refused(run_cli: RunCli, tmp_path: Path, source: Path) -> None:
    db = tmp_path / "x.duckdb"
    code, _, err = run_cli("data", "import", source, "--symbol", "ETH-USD", db=db)
    assert code == 2
    assert "the file's candles are 'BTCUSD', not ETH-USD" in err and "--override-symbol" in err
    assert _stored(db) == 0


def test_the_configs_symbol_is_checked_too(run_cli: RunCli, tmp_path: Path) -> None:
    cfg = tmp_path / "trdr.toml"
    cfg.write_text('symbol = "BTC-EUR"\ncapital = 1000\nrisk_tolerance = "moderate"\n')
    db = tmp_path / "x.duckdb"
    code, _, err = run_cli("data", "import", DAILY_CDD, db=db, config=cfg)
    assert code == 2 and "not BTC-EUR" in err and _stored(db) == 0
    code, out, err = run_cli("data", "import", DAILY_CDD, "--override-symbol", db=db, config=cfg)
    assert code == 0, err
    assert "BTC-EUR 1d" in out and "stored as BTC-EUR (--override-symbol)" in out and _stored(db) > 0


def test_the_same_symbol_in_another_spelling_is_accepted(run_cli: RunCli, tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    code, out, err = run_cli("data", "import", DAILY_CDD, "--symbol", "BTC-USD", db=db)  # the file says BTCUSD
    assert code == 0, err
    assert "override" not in out and _stored(db) > 0


def test_a_file_mixing_symbols_is_refused_naming_the_line(run_cli: RunCli, tmp_path: Path) -> None:
    lines = _head_of(DAILY_CDD, 12)  # a banner line, the header, ten real daily bars
    lines[8] = lines[8].replace("BTCUSD", "ETHUSD")
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "x.duckdb"
    code, _, err = run_cli("data", "import", path, "--symbol", "BTC-USD", db=db)
    assert code == 2
    assert "mixes symbols: 'BTCUSD' above, 'ETHUSD' on this line" in err and f"{path}:9" in err
    assert _stored(db) == 0


def test_a_binance_file_name_is_the_files_symbol(run_cli: RunCli, tmp_path: Path) -> None:
    rows = []
    for line in _head_of(DAILY_CDD, 12)[2:]:  # real daily bars as Binance's 12 kline columns, times in ms
        date, _, o, h, low, c, vol, _ = line.split(",")
        t = int(datetime.fromisoformat(date).replace(tzinfo=UTC).timestamp() * 1000)
        rows.append(",".join([str(t), o, h, low, c, vol, str(t + 86_400_000 - 1), "0", "1", "0", "0", "0"]))
    path = tmp_path / "ETHUSDT-1d-2019-10.csv"
    path.write_text("\n".join(reversed(rows)) + "\n", encoding="utf-8")
    db = tmp_path / "x.duckdb"
    code, _, err = run_cli("data", "import", path, "--symbol", "BTC-USD", db=db)
    assert code == 2 and "the file's candles are 'ETHUSDT', not BTC-USD" in err and _stored(db) == 0
    code, _, err = run_cli("data", "import", path, "--symbol", "ETH-USDT", db=db)
    assert code == 0, err
