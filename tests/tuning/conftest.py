"""Fixtures for the tuning tests: a short slice of the real hourly series, a tiny objective."""

from __future__ import annotations

import pytest

from tests.conftest import HOURLY_CDD
from trdr_tui.config import Settings, load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.tuning.objective import ObjectiveConfig


@pytest.fixture(scope="session")
def hourly() -> CandleArrays:
    from trdr_tui.backtest.data import load_file

    return load_file(HOURLY_CDD)[0]


@pytest.fixture(scope="session")
def slice_bars(hourly: CandleArrays) -> CandleArrays:
    """About seven weeks of hourly bars (2018-01 … 2018-02): two folds of ~500 bars after warm-up."""
    return hourly[4000:5200]


@pytest.fixture(scope="session")
def tiny() -> ObjectiveConfig:
    return ObjectiveConfig(folds=2, warmup_bars=200, mc_paths=200, min_trades=1)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()
