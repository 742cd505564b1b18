"""Fixtures for the trading-core tests: the real hourly series, loaded once."""

from __future__ import annotations

import pytest

from tests.conftest import HOURLY_CDD
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.market.importer import load_candle_file


@pytest.fixture(scope="session")
def hourly() -> CandleArrays:
    return load_candle_file(HOURLY_CDD)
