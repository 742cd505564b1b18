"""Plain `trdr backtest` hands the correlation agent the reference product's stored candles; without
them the agent is unavailable (naming the fetch command) and the run goes on."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import HOURLY_CDD
from trdr_tui.cli import main
from trdr_tui.store import Store
from trdr_tui.store.sessions import SessionRepository

BARS = 1500


def write_pair(directory: Path) -> tuple[Path, Path]:
    """The newest BARS hourly BTC-USD rows of the real file, and a correlated ETH-USD file on the same
    hours: 0.9 × BTC's log returns plus its own noise (seeded), priced around 1/40 of BTC."""
    lines = HOURLY_CDD.read_text(encoding="utf-8").splitlines()
    head, rows = lines[:2], lines[2: 2 + BARS]
    btc = directory / "btc.cdd.csv"
    btc.write_text("\n".join(head + rows) + "\n", encoding="utf-8")
    cells = [r.split(",") for r in rows][::-1]  # oldest first
    close = np.array([float(c[5]) for c in cells])
    rng = np.random.default_rng(11)
    r = np.diff(np.log(close), prepend=np.log(close[0]))
    eth_close = close[0] / 40.0 * np.exp(np.cumsum(0.9 * r + rng.normal(0.0, 0.004, len(close))))
    out = []
    for c, px in zip(cells, eth_close, strict=True):
        out.append(f"{c[0]},ETHUSD,{px:.2f},{px * 1.002:.2f},{px * 0.998:.2f},{px:.2f},{float(c[6]) * 30:.2f},"
                   f"{float(c[7]):.2f}")
    eth = directory / "eth.cdd.csv"
    eth.write_text("\n".join([head[0], head[1].replace("volume_btc", "volume_eth"), *out[::-1]]) + "\n",
                   encoding="utf-8")
    return btc, eth


def backtest_json(capsys: pytest.CaptureFixture[str], db: Path, config: Path, data: Path) -> dict[str, Any]:
    """The run's stored results (the session keeps the per-agent statistics)."""
    assert main(["--db", str(db), "--config", str(config), "backtest", "--data", str(data), "--json",
                 "--monte-carlo", "0"]) == 0
    session = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["session_id"]
    with Store(db) as store:
        result = SessionRepository(store).results(session)
    assert result is not None
    agents: dict[str, Any] = result["stats"]["agents"]
    return agents


def test_plain_backtest_reads_the_stored_reference_product(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    btc, eth = write_pair(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text('[agents]\nenabled = ["momentum", "correlation"]\nreference_symbol = "ETH-USD"\n',
                      encoding="utf-8")
    db = tmp_path / "trdr.duckdb"

    with caplog.at_level(logging.WARNING):
        missing = backtest_json(capsys, db, config, btc)
    # unavailable: no vote at all, the reason names the command that fetches the data; the panel went on
    assert missing["correlation"]["signal_count"] == 0
    assert "trdr data backfill --symbol ETH-USD" in caplog.text
    assert missing["momentum"]["signal_count"] > 0

    assert main(["--db", str(db), "data", "import", str(eth), "--symbol", "ETH-USD"]) == 0
    capsys.readouterr()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        found = backtest_json(capsys, db, config, btc)
    assert "unavailable" not in caplog.text
    corr = found["correlation"]
    assert corr["signal_count"] > 0, corr  # it voted on the ratio against the stored ETH-USD bars
    assert corr["buy_signals"] > 0 and corr["sell_signals"] > 0
