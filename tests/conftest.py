"""Shared fixtures: real data paths and real DuckDB files in temporary directories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from trdr_tui.store import Store

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
HOURLY_CDD = SHARED_DATA / "coinbase_btcusd_1h_2017-07_2019-10.cdd.csv"
DAILY_CDD = SHARED_DATA / "coinbase_btcusd_1d_2015-2019.cdd.csv"
BITFINEX_1H = SHARED_DATA / "bitfinex_btcusd_1h_2017-07_2019-07.csv"
DAILY_2011 = SHARED_DATA / "btcusd_1d_2011-2025.csv"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's real config or data directories or TRDR_* variables."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    import os

    for name in list(os.environ):
        if name.startswith("TRDR_"):
            monkeypatch.delenv(name)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "trdr.duckdb"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store(db_path)
    yield s
    s.close()


# Property tests are deterministic: hypothesis derives its examples from each test itself (no random
# seed, no example database), so CI and every developer run the same cases. Every counterexample
# found while exploring is pinned as an `@example` or a regression test. Explore with new random
# cases: HYPOTHESIS_PROFILE=explore.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", max_examples=2_000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
