"""Property-based run of the OpenAPI document against a live bot: no 5xx, every response as documented.

Schemathesis generates requests for every operation from `/api/openapi.json` (valid and invalid ones) and
checks each response: not a server error, a documented status code and content type, a body that
matches the documented schema. `POST /api/trading/stop` is left out: it ends the bot under test (it has
its own test in test_running_instance.py). Few examples per operation, derandomized, to stay bounded.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from tests.api.conftest import Bot

BOT: list[Bot] = []


@pytest.fixture(scope="module")
def fuzzed_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    b = Bot(tmp_path_factory.mktemp("fuzz"), bars=3000, speed="20")
    BOT.append(b)
    yield b
    assert b.stop() == 0  # the fuzzing never crashed the bot


@pytest.fixture(scope="module")
def api_schema(fuzzed_bot: Bot) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(fuzzed_bot.url + "/api/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema").exclude(operation_id="trading_stop")


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=8, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case) -> None:
    bot = BOT[-1]
    # The config document is validated like the config file (ranges, known keys, symbols), which a JSON
    # schema of "an object" cannot express: a schema-valid config may rightly be refused (422) there.
    # So may a schema-valid funding amount: zero, or a withdrawal above the free cash (409).
    refusable = ("config_put", "trading_funding")
    excluded = [positive_data_acceptance] if case.operation.definition.raw.get("operationId") in refusable else []
    case.call_and_validate(base_url=bot.url, headers={"Authorization": f"Bearer {bot.token}"},
                           excluded_checks=excluded)
