"""Fixtures for the Coinbase tests: a real CDP-style key, the fake exchange on 127.0.0.1, a client."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import HOURLY_CDD, REPO
from trdr_testkit.fake_coinbase import FakeExchange
from trdr_testkit.fake_coinbase.prices import load_candles
from trdr_tui.core.types import Candle
from trdr_tui.exchange.coinbase_auth import generate_ec_key_pem
from trdr_tui.exchange.coinbase_rest import CoinbaseRest, RetryPolicy
from trdr_tui.exchange.credentials import Credentials, credentials_from_values

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


@pytest.fixture(scope="module")
def standalone_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`python -m trdr_testkit.fake_coinbase` in a subprocess: (REST URL, key file)."""
    key_file = tmp_path_factory.mktemp("fake") / "fake_key.json"
    proc = subprocess.Popen([sys.executable, "-m", "trdr_testkit.fake_coinbase", "--key-file", str(key_file),
                             "--data", str(HOURLY_CDD), "--bars", "100"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY"), line + proc.stdout.read()
        rest = line.split("rest=")[1].split()[0]
        yield rest, key_file
    finally:
        proc.terminate()
        proc.wait(timeout=10)
