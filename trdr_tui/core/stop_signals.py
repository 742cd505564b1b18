"""Stop signals (SIGINT, SIGTERM) that arrive while a headless run is starting, before its event loop
handles them.

A headless run spends its first second importing, reading candles and building the engine; its event
loop's handlers (`headless.run_headless`) come last. `catch_early` (called by `cli` before its slow imports)
notes a signal in that window instead of letting it end the process (exit 143 for SIGTERM); the run takes
it (`take`) once its own handlers are in and stops as for any signal: shutdown checkpoint, exit 0.

`run` is `asyncio.run` for the commands, with Ctrl-C always ending as KeyboardInterrupt (exit 130).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_noted: list[signal.Signals] = []
_installed: list[bool] = []


def catch_early() -> None:
    """Note SIGINT/SIGTERM from now on instead of ending the process. Main thread only."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _note)
    _installed.append(True)


def release() -> None:
    """Not a headless run after all: the default handlers again, and a signal already noted is raised
    now, so it ends the process as it would have. A no-op unless `catch_early` ran."""
    if not _installed:
        return
    _installed.clear()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    noted = take()
    if noted is not None:
        signal.raise_signal(noted)


def take() -> signal.Signals | None:
    """The first stop signal noted since `catch_early`, forgotten once taken; None when none came."""
    noted = _noted[0] if _noted else None
    _noted.clear()
    return noted


def _note(signum: int, _frame: FrameType | None) -> None:
    _noted.append(signal.Signals(signum))


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`; a Ctrl-C always ends it with KeyboardInterrupt, never a bare CancelledError.

    asyncio's runner cancels its main task on SIGINT and then raises KeyboardInterrupt, but it resets its
    interrupt count just after installing its SIGINT handler (CPython 3.11-3.13, `asyncio.Runner.run`):
    a Ctrl-C in that instant cancels the task and surfaces as CancelledError (a traceback, not exit
    130). A walk-forward starts an event loop per window, so it hits that instant now and then. Only
    that handler cancels the main task, so its CancelledError is an interrupt."""
    try:
        return asyncio.run(main)
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
