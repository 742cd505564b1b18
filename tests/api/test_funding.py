"""`POST /api/trading/funding`: a paper bot books a deposit or withdrawal through the engine; bad amounts,
withdrawals above the free cash and live runs are refused with nothing changed."""

from __future__ import annotations

import re

import aiohttp
import pytest

from tests.api.conftest import Bot
from tests.conftest import HOURLY_CDD
from trdr_tui.api.control import ApiError, Controller, Hooks
from trdr_tui.config import load_settings
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.clock import SimClock
from trdr_tui.engine.assembly import build_engine
from trdr_tui.exchange.fees import FeeSchedule
from trdr_tui.exchange.sim_executor import SimExecutor
from trdr_tui.market.importer import load_candle_file


def test_a_paper_bot_books_a_deposit_and_refuses_what_it_cannot(bot: Bot) -> None:
    status, ack = bot.call("POST", "/api/trading/funding", {"amount": 2500.0})
    assert status == 200, ack
    before, after = re.search(r"equity ([\d,.]+) -> ([\d,.]+)", ack["detail"]).groups()  # type: ignore[union-attr]
    assert ack["detail"].startswith("deposit of 2,500.00 booked")
    assert float(after.replace(",", "")) - float(before.replace(",", "")) == pytest.approx(2500.0, abs=0.011)
    # the return leaves the deposit out, time-weighted as in backtests (it counted it as +25 % before)
    perf = bot.get("/api/performance")
    counted = perf["equity"] / 10_000.0 - 1.0
    assert perf["total_return"] < counted - 0.2
    assert perf["total_return"] == pytest.approx((perf["equity"] - 2_500.0) / 10_000.0 - 1.0, abs=0.01)
    assert perf["max_drawdown"] < 0.2
    status, body = bot.call("POST", "/api/trading/funding", {"amount": -1e9})
    assert status == 409 and "free cash" in body["error"] and "never sells a position" in body["hint"]
    for bad in ({"amount": 0.0}, {"amount": 2e9}, {"amount": "lots"}, {"amount": 5.0, "currency": "USD"}):
        assert bot.call("POST", "/api/trading/funding", bad)[0] == 422, bad
    assert bot.call("POST", "/api/trading/funding", raw=b"{not json")[0] == 400


@pytest.fixture(scope="module")
def few_bars() -> CandleArrays:
    return load_candle_file(HOURLY_CDD)[:5]


def test_a_live_run_refuses_funding_by_hand(few_bars: CandleArrays) -> None:
    settings = load_settings()
    clock = SimClock(int(few_bars.ts[0]))
    engine = build_engine(settings, mode="live", candles=few_bars, preset="simple-trailing", clock=clock,
                          executor=SimExecutor(clock, FeeSchedule.from_config(settings.fees)))
    control = Controller(lambda: engine, Hooks(settings=settings))
    with pytest.raises(ApiError, match="exchange account's balance is the source") as err:
        control.fund(1_000.0)
    assert err.value.status == 409 and engine.portfolio.contributed_exact == 0


async def test_the_websocket_fund_command_books_through_the_same_path(bot: Bot) -> None:
    """What an attached cockpit's `f` sends (`RemoteEngine.fund`): the `fund` command, acked or refused."""
    headers = {"Authorization": f"Bearer {bot.token}"}
    async with aiohttp.ClientSession() as session, session.ws_connect(bot.url + "/api/ws", headers=headers) as ws:

        async def command(params: dict[str, object]) -> dict[str, object]:
            await ws.send_json({"type": "command", "action": "fund", "params": params})
            while True:
                msg = await ws.receive_json(timeout=10)
                if msg.get("type") in ("ack", "error"):
                    return msg  # type: ignore[no-any-return]

        ack = await command({"amount": 100.0})
        assert ack["type"] == "ack" and str(ack["result"]["detail"]).startswith("deposit of 100.00 booked")  # type: ignore[index]
        refused = await command({"amount": -1e9})
        assert refused["type"] == "error" and "free cash" in str(refused["error"])
        bad = await command({"amount": "much"})
        assert bad["type"] == "error" and "amount" in str(bad["error"])
