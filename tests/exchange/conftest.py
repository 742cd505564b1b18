"""Fixtures for the Coinbase tests: a real CDP-style key, the fake exchange on 127.0.0.1, a client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import HOURLY_CDD
from trdr_tui.core.types import Candle
from trdr_tui.exchange.coinbase_auth import generate_ec_key_pem
from trdr_tui.exchange.coinbase_rest import CoinbaseRest, RetryPolicy
from trdr_tui.exchange.credentials import Credentials, credentials_from_values
from trdr_tui.exchange.fake import FakeExchange
from trdr_tui.exchange.fake.prices import load_candles

KEY_NAME = "organizations/11111111-2222-3333-4444-555555555555/apiKeys/66666666-7777-8888-9999-000000000000"
FAST_RETRY = RetryPolicy(initial_s=0.005, cap_s=0.05)

_CANDLES: list[Candle] = []


def real_candles() -> list[Candle]:
    """The last 2,000 real Coinbase hourly bars (loaded once)."""
    if not _CANDLES:
        _CANDLES.extend(load_candles(HOURLY_CDD, limit=2000))
    return _CANDLES


@pytest.fixture(scope="session")
def secret_pem() -> str:
    return generate_ec_key_pem()


@pytest.fixture
def creds(secret_pem: str) -> Credentials:
    return credentials_from_values(KEY_NAME, secret_pem, source="test")


@pytest.fixture
async def fake(creds: Credentials) -> AsyncIterator[FakeExchange]:
    ex = FakeExchange(candles=real_candles(), heartbeat_s=0.05)
    ex.add_key(creds.key_name, creds.signer().public_key())
    await ex.start()
    yield ex
    await ex.stop()


@pytest.fixture
async def rest(fake: FakeExchange, creds: Credentials) -> AsyncIterator[CoinbaseRest]:
    client = CoinbaseRest(fake.rest_url, signer=creds.signer(), retry=FAST_RETRY, timeout_s=0.5)
    yield client
    await client.close()
