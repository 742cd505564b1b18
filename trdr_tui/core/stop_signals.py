"""Stop signals (SIGINT, SIGTERM) that arrive while a headless run is starting, before its event loop
handles them.

A headless run spends its first second importing, reading candles and building the engine; its event
loop's handlers (`headless.run_headless`) come last. `catch_early` (called by `cli` before its slow imports)
notes a signal in that window instead of letting it end the process (exit 143 for SIGTERM); the run takes
it (`take`) once its own handlers are in and stops as for any signal: shutdown checkpoint, exit 0.

`run` is `asyncio.run` for the commands, with Ctrl-C always ending as KeyboardInterrupt (exit 130).

A command (`cli.main`) also remembers that a Ctrl-C came (`note_interrupts`): DuckDB turns a Ctrl-C inside a
query into `RuntimeError("Query interrupted")` and the statements after it can fail with other errors
(a transaction aborted), so `interrupted_by` tells an interrupted command's errors from genuine ones.
"""

from __future__ import annotations

import signal
from collections.abc import Coroutine
from types import FrameType
from typing import Any, TypeVar

from trdr_tui.core.errors import Interrupted

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_noted: list[signal.Signals] = []
_installed: list[bool] = []
_interrupts: list[bool] = []  # a Ctrl-C came since `note_interrupts`


def trdr_process() -> bool:
    """True when this process is `trdr` itself (the `trdr` script or `python -m trdr_tui`), not a program
    that imports it (tests)."""
    import sys

    path = sys.argv[0].replace("\\", "/") if sys.argv else ""
    return path == "trdr" or path.endswith(("/trdr", "trdr_tui/__main__.py"))


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


def note_interrupts() -> None:
    """From now on a SIGINT raises KeyboardInterrupt, as Python's default handler does, and is remembered
    (`interrupted_by`); one remembered before is forgotten. Main thread only."""
    _interrupts.clear()
    signal.signal(signal.SIGINT, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _interrupts.append(True)
    signal.default_int_handler(signum, frame)


def interrupted_by(exc: BaseException) -> bool:
    """True when `exc` ends an interrupted command: a Ctrl-C came since `note_interrupts`, or `exc` or an
    exception it was raised from or while handling (`__cause__`, `__context__`) is an interrupt —
    KeyboardInterrupt, `Interrupted`, or DuckDB's for a Ctrl-C inside a query (`RuntimeError("Query
    interrupted")`, `duckdb.InterruptException`)."""
    if _interrupts and signal.getsignal(signal.SIGINT) is _interrupt:  # still this command's
        return True
    seen: set[int] = set()
    at: BaseException | None = exc
    while at is not None and id(at) not in seen:
        seen.add(id(at))
        if (isinstance(at, KeyboardInterrupt | Interrupted) or type(at).__name__ == "InterruptException"
                or (isinstance(at, RuntimeError) and str(at) == "Query interrupted")):
            return True
        at = at.__cause__ or at.__context__
    return False


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`; a Ctrl-C always ends it with KeyboardInterrupt, never a bare CancelledError.

    asyncio's runner cancels its main task on SIGINT and then raises KeyboardInterrupt, but it resets its
    interrupt count just after installing its SIGINT handler (CPython 3.11-3.13, `asyncio.Runner.run`):
    a Ctrl-C in that instant cancels the task and surfaces as CancelledError (a traceback, not exit
    130). A walk-forward starts an event loop per window, so it hits that instant now and then. Only
    that handler cancels the main task, so its CancelledError is an interrupt. The runner installs its
    handler only over Python's default one: `note_interrupts`'s is set aside meanwhile."""
    import asyncio
    import threading

    ours = signal.getsignal(signal.SIGINT) is _interrupt and threading.current_thread() is threading.main_thread()
    if ours:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        try:
            return asyncio.run(main)
        except asyncio.CancelledError:
            raise KeyboardInterrupt from None
    except KeyboardInterrupt:
        if ours:
            _interrupts.append(True)
        raise
    finally:
        if ours:
            signal.signal(signal.SIGINT, _interrupt)
