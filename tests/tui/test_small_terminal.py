"""The cockpit at 80×24, the smallest supported terminal: what a key does must be seen there."""

from __future__ import annotations

import html
import re
from typing import Any

from textual.widgets import Footer, Input

from tests.tui.conftest import CockpitFactory, settle
from trdr_tui.tui.screens.backtest import BacktestFormScreen
from trdr_tui.tui.screens.help import HelpScreen

SIZE = (80, 24)


def screen_text(app: Any) -> str:
    """What the terminal shows, as text (the SVG screenshot without its markup)."""
    return html.unescape(re.sub(r"<[^>]+>", "", app.export_screenshot())).replace("\xa0", " ")


async def test_a_form_error_is_seen_at_80x24(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE, notifications=True) as pilot:  # as a real terminal shows them
        await settle(pilot)
        await pilot.press("b")
        form = app.screen
        assert isinstance(form, BacktestFormScreen)
        form.query_one("#start", Input).value = "abcd"
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not form.running
        await pilot.pause()
        assert "'abcd' is not a date" in screen_text(app)


async def test_the_help_screen_shows_every_binding_at_80x24(make_cockpit: CockpitFactory) -> None:
    app = make_cockpit()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        shown = screen_text(app)
        assert "trdr keys" in shown and "esc closes" in shown
        missing = [binding_id for _, _, binding_id in help_screen.rows if binding_id not in shown]
        assert missing == []  # every binding on screen, none below the last row


async def test_a_notification_leaves_the_status_bar_and_footer_visible_at_80x24(make_cockpit: CockpitFactory) -> None:
    """A toast sits above the status bar and the footer: at 80×24 it must not hide the mode, the pause
    state or the key hints while it shows."""
    app = make_cockpit()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("space")  # pause: a toast says so
        await pilot.pause()
        toasts = list(app.screen.query("Toast"))  # the notification widget (its class is private)
        assert toasts, "pausing showed no notification"
        covered = [(t.region, w.region) for t in toasts for w in (app.main.status, app.screen.query_one(Footer))
                   if t.region.overlaps(w.region)]
        assert covered == []
        assert "Quit" in screen_text(app).rstrip().splitlines()[-1]
