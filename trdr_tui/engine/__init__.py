"""The one engine for backtest, paper and live, and everything that assembles, runs and recovers it.

| module        | what it holds |
|---------------|---------------|
| `loop`        | `Engine`: the run loop (batch for backtests, streaming for paper/live), engine control |
| `assembly`    | `build_engine`: the one factory that wires an engine for every mode |
| `coinbase`    | Coinbase paper/live assembly and the resume of an interrupted live run |
"""

from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.loop import Engine, Feed
from trdr_tui.engine.recovery import restore_latest

__all__ = ["Engine", "Feed", "build_engine", "restore_latest"]
