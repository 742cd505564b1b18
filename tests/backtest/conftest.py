"""Fixtures for the backtest tests: the real hourly Coinbase series as CandleArrays."""

from __future__ import annotations

import pytest

from tests.conftest import HOURLY_CDD
from trdr_tui.core.arrays import CandleArrays


@pytest.fixture(scope="session")
def hourly() -> CandleArrays:
    from trdr_tui.backtest.data import load_file

    return load_file(HOURLY_CDD)[0]
