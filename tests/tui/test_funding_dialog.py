"""The cockpit's deposit/withdrawal key (`f`): a dialog for the amount, booked through the engine in a paper
run; typos explained in place; a withdrawal above the free cash refused; a live run only told where to go."""

from __future__ import annotations

from decimal import Decimal

from textual.widgets import Static

from tests.tui.conftest import CockpitFactory, real_candles, settle
from trdr_tui.config import Settings
from trdr_tui.core.clock import SimClock
from trdr_tui.engine.assembly import build_engine
from trdr_tui.exchange.fees import FeeSchedule
from trdr_tui.exchange.sim_executor import SimExecutor
from trdr_tui.tui.app import make_app
from trdr_tui.tui.screens.funding import FundingScreen, parse_amount
from trdr_tui.tui.screens.main import MainScreen

SIZE = (120, 40)


async def test_funding_key_books_a_deposit_and_explains_refusals(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit(preset="simple-trailing")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pf = app.engine.portfolio  # type: ignore[attr-defined]
        cash = pf.cash_exact
        await pilot.press("f")
        assert isinstance(app.screen, FundingScreen)
        await pilot.press(*"12x", "enter")  # a typo: explained, the dialog stays
        assert isinstance(app.screen, FundingScreen)
        assert "not a number" in str(app.screen.query_one("#funding-error", Static).render())
        await pilot.press("backspace", "backspace", "backspace", *"2,500", "enter")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert pf.contributed_exact == Decimal("2500") and pf.cash_exact == cash + 2500
        await pilot.press("f", *"-1000000000", "enter")  # above the free cash: refused, nothing booked
        await pilot.pause()
        assert pf.contributed_exact == Decimal("2500")
        assert any("free cash" in n.message for n in app._notifications)
        await pilot.press("f", "escape")
        assert isinstance(app.screen, MainScreen) and pf.contributed_exact == Decimal("2500")


async def test_funding_key_in_live_mode_books_nothing(settings: Settings) -> None:
    bars = real_candles()[:5]
    clock = SimClock(int(bars.ts[0]))
    engine = build_engine(settings, mode="live", candles=bars, preset="simple-trailing", clock=clock,
                          executor=SimExecutor(clock, FeeSchedule.from_config(settings.fees)))  # the exchange's stand-in
    app = make_app(settings, engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f")
        assert isinstance(app.screen, MainScreen)
        assert any("deposit or withdraw at Coinbase" in n.message for n in app._notifications)
        assert engine.portfolio.contributed_exact == 0


def test_amounts_are_parsed_or_explained() -> None:
    assert parse_amount(" -1,000.50 ") == -1000.5
    assert "not a number" in str(parse_amount("lots"))
    assert "non-zero" in str(parse_amount("0")) and "non-zero" in str(parse_amount("1e12"))
    assert "non-zero" in str(parse_amount("nan"))
