"""Repository for the agent decision log (`agent_decisions`) and the agent weights (`agent_weights`).

Every agent signal and every consensus is a row in `agent_decisions` (the consensus has agent_id
'consensus'), with the agent's execution time. Rows are buffered and written in one insert per batch
(`batch_size` rows: thousands in backtests). With a journal in front of the store (paper/live,
store/journal.py) each decision is handed to the writer thread as it is (no rows built on the engine's
thread), and the writer builds the rows of every decision since its last batch, column by column, and
inserts them in that batch (at most a second later; the decision log is analytics, so it skips the
journal itself: a crash loses the last batch's rows, a clean stop writes them all). Batch-mode
backtests write whole columns at once with `write_columns`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from trdr_tui.core.types import Action, Decision
from trdr_tui.store.db import Store

CONSENSUS_ID = "consensus"
# an action's text as an exact str (a dict lookup: faster than `.value`; DuckDB reads a column of exact
# str objects without calling into Python, unlike one of Actions, a str subclass)
_ACTION_VALUE = {a: a.value for a in Action}

_COLUMNS = ("run_id", "ts", "agent_id", "signal", "confidence", "trail_distance", "weight", "reasoning",
            "execution_time_ms")


_Values = Sequence[Any] | npt.NDArray[Any]
Entry = tuple[Decision, Mapping[str, float], float]
"""One logged decision as `record` takes it: (decision, ms per agent, consensus ms); its rows are built
from it where they are written (`_columns`)."""


class DecisionLog:
    def __init__(self, store: Store, run_id: str, *, batch_size: int = 1) -> None:
        if not run_id:
            raise ValueError("a decision log needs a run_id")
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        self.store = store
        self.run_id = run_id
        self.batch_size = batch_size
        self._entries: list[Entry] = []  # buffered decisions, oldest first
        self._n = 0  # ... and the rows they make
        self._write = partial(_write_entries, run_id=run_id)

    def __len__(self) -> int:
        """Rows buffered (not yet written or handed to the store's writer)."""
        return self._n

    def record(self, decision: Decision, timings_ms: Mapping[str, float], consensus_ms: float) -> None:
        """Log one decision: a row per agent signal plus the consensus row. Its rows are built when they
        are written, so neither `decision` nor `timings_ms` may change afterwards (neither does: a
        Decision is frozen, its weights and the timings are made for it).

        Streaming (paper, live: `batch_size` 1 with a store writer): handed to the writer thread, which
        writes it in its next batch. Otherwise buffered and written once `batch_size` rows are."""
        writer = self.store.writer if self.batch_size == 1 else None  # streaming (paper/live) logs
        if writer is not None:
            # decisions kept by a flush that failed before the writer took over go first
            entries, self._entries, self._n = [*self._entries, (decision, timings_ms, consensus_ms)], [], 0
            writer.defer_rows("agent_decisions", entries, self._write)
            return
        self._entries.append((decision, timings_ms, consensus_ms))
        self._n += len(decision.signals) + 1
        if self._n >= self.batch_size:
            self.flush()

    def flush(self) -> int:
        """Write the buffered rows in one transaction; returns how many were written."""
        if not self._entries:
            return 0
        entries, n = self._entries, self._n
        self._entries, self._n = [], 0
        try:
            self.write_columns(_columns(entries, self.run_id))
        except BaseException:
            self._entries, self._n = entries + self._entries, n + self._n  # nothing was written: kept
            raise
        return n

    def write_columns(self, data: Mapping[str, npt.NDArray[Any]]) -> int:
        """Insert columns (numpy arrays named like `_COLUMNS`; ts in int ns; NaN → NULL) at once."""
        cols = {name: data[name] for name in _COLUMNS}
        n = len(cols["ts"])
        if n == 0:
            return 0
        for name, col in cols.items():
            if len(col) != n:
                raise ValueError(f"column {name} has {len(col)} rows, expected {n}")
        with self.store.transaction() as cur:
            _insert(cur, cols)
        return n

    def rows(self, *, agent_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """This run's rows, oldest first (for the TUI, the API and tests)."""
        sql = ("SELECT epoch_ns(ts), agent_id, signal, confidence, trail_distance, weight, reasoning,"
               " execution_time_ms FROM agent_decisions WHERE run_id = ?")
        params: list[Any] = [self.run_id]
        if agent_id is not None:
            sql += " AND agent_id = ?"
            params.append(agent_id)
        sql += " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        self.store.sync()
        keys = ("ts", "agent_id", "signal", "confidence", "trail_distance", "weight", "reasoning", "execution_time_ms")
        with self.store.transaction() as cur:
            return [dict(zip(keys, r, strict=True)) for r in cur.execute(sql, params).fetchall()]


def _write_entries(cur: Any, entries: list[Entry], *, run_id: str) -> None:
    """The store writer's insert of the deferred decisions (`StoreWriter.defer_rows`), on its thread."""
    if entries:
        _insert(cur, _columns(entries, run_id))


def _columns(entries: Sequence[Entry], run_id: str) -> dict[str, npt.NDArray[Any]]:
    """The rows of `entries` as the columns `_insert` takes: per decision a row per agent signal (in the
    panel's order) then the consensus row. A missing weight or time, and a NaN, become NaN (→ NULL).

    Built column by column from the decisions (a list comprehension per field, then numpy places the
    agent and consensus values), not row by row: the hot cost of the streaming log."""
    m = len(entries)
    decisions = [e[0] for e in entries]
    signals = [s for d in decisions for s in d.signals]
    counts = np.fromiter([len(d.signals) for d in decisions], dtype=np.int64, count=m)  # agent rows
    cons = np.cumsum(counts + 1) - 1  # the consensus rows
    n = len(signals) + m
    agent = np.ones(n, dtype=bool)
    agent[cons] = False
    nan, value = math.nan, _ACTION_VALUE

    def fill(kind: Any, agent_values: _Values, consensus_values: _Values | float) -> npt.NDArray[Any]:
        col = np.empty(n, dtype=kind)
        col[agent] = agent_values
        col[cons] = consensus_values
        return col

    # a signal without its own time (0; None from a plugin that built its AgentSignal loosely) has its decision's
    ts = fill(np.int64, [s.ts or d.ts for d in decisions for s in d.signals], [d.ts for d in decisions])
    weight = fill(np.float64, [d.weights.get(s.agent_id, nan) for d in decisions for s in d.signals], nan)
    return {
        "run_id": np.full(n, run_id, dtype=object),
        "ts": ts,
        "agent_id": fill(object, [s.agent_id for s in signals], [CONSENSUS_ID] * m),
        "signal": fill(object, [value[s.action] for s in signals], [value[d.action] for d in decisions]),
        "confidence": fill(np.float64, [s.confidence for s in signals], [d.confidence for d in decisions]),
        "trail_distance": fill(np.float64, [s.trail_distance for s in signals], [d.trail_distance for d in decisions]),
        "weight": weight,
        "reasoning": fill(object, [s.reasoning for s in signals], [d.reasoning for d in decisions]),
        "execution_time_ms": fill(np.float64, [ms.get(s.agent_id, nan) for d, ms, _ in entries for s in d.signals],
                                  [e[2] for e in entries]),
    }


def _insert(cur: Any, cols: Mapping[str, npt.NDArray[Any]]) -> None:
    rows_view = cols  # noqa: F841 - read by DuckDB's replacement scan below
    cur.execute(
        "INSERT INTO agent_decisions (run_id, ts, agent_id, signal, confidence, trail_distance, weight,"
        " reasoning, execution_time_ms)"
        " SELECT run_id, make_timestamp(ts // 1000), agent_id, signal, confidence,"
        " CASE WHEN isnan(trail_distance) THEN NULL ELSE trail_distance END,"
        " CASE WHEN isnan(weight) THEN NULL ELSE weight END, reasoning,"
        " CASE WHEN isnan(execution_time_ms) THEN NULL ELSE execution_time_ms END FROM rows_view"
    )


def save_weights(store: Store, weights: Mapping[str, float], ts_ns: int) -> None:
    """Upsert the current weight of each agent (one transaction). With the paper/live journal in front
    of the store, through it: the journal's writer thread is then the only one writing the table (two
    transactions upserting the same rows at once fail in DuckDB with "Conflict on update")."""
    if not weights:
        return
    if store.writer is not None:
        store.writer.append(*[("agent_weights", (a, float(w), ts_ns // 1000)) for a, w in weights.items()])
        return
    with store.transaction() as cur:
        for agent_id, w in weights.items():
            cur.execute(
                "INSERT INTO agent_weights (agent_id, weight, updated_at) VALUES (?, ?, make_timestamp(?))"
                " ON CONFLICT (agent_id) DO UPDATE SET weight = excluded.weight, updated_at = excluded.updated_at",
                [agent_id, float(w), ts_ns // 1000],
            )


def load_weights(store: Store, agent_ids: Sequence[str] | None = None) -> dict[str, float]:
    with store.transaction() as cur:
        rows = cur.execute("SELECT agent_id, weight FROM agent_weights ORDER BY agent_id").fetchall()
    out = {str(a): float(w) for a, w in rows}
    if agent_ids is not None:
        out = {a: w for a, w in out.items() if a in agent_ids}
    return out
