"""The one engine for backtest, paper and live, and everything that assembles, runs and recovers it.

| module      | what it holds |
|-------------|---------------|
| `loop`      | `Engine`: the run loop (batch for backtests, streaming for paper/live), engine control |
| `step`      | `BarStep`: the one per-bar step both loops run |
| `protocols` | `Feed`, the optional capabilities (runtime-checkable protocols), `EngineParts` |
| `assembly`  | `build_engine` for every mode, `build_replay_engine` for the cockpit's replay |
| `coinbase`  | paper/live assembly on Coinbase, the account's fee tier, resuming and reconciling a live run |
| `recovery`  | checkpoint state, restore, reconcile, store-first recovery, balance and history checks |
| `record`    | `RunState`, `RunRecord` and the equity curve rebuilt from the ledger's change points |
| `book`      | the read-only view of the grid and open orders that agents may see |
| `timers`    | `PeriodicTimer` (auto checkpoints) |
"""

from trdr_tui.engine.assembly import build_engine
from trdr_tui.engine.loop import Engine, Feed
from trdr_tui.engine.recovery import restore_latest

__all__ = ["Engine", "Feed", "build_engine", "restore_latest"]
