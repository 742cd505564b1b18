"""Repository for the agent decision log (`agent_decisions`) and the agent weights (`agent_weights`).

Every agent signal and every consensus is a row in `agent_decisions` (the consensus has agent_id
'consensus'), with the agent's execution time. Rows are buffered and written in one insert per batch
(`batch_size` rows: thousands in backtests). With a journal in front of the store (paper/live,
store/journal.py) each decision's rows are handed to the writer thread, which inserts them in its
next batch (at most a second later; the decision log is analytics, so it skips the journal itself).
Batch-mode backtests write whole columns at once with `write_columns`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from trdr_tui.core.types import Decision
from trdr_tui.store.db import Store

CONSENSUS_ID = "consensus"

_COLUMNS = ("run_id", "ts", "agent_id", "signal", "confidence", "trail_distance", "weight", "reasoning",
            "execution_time_ms")


class DecisionLog:
    def __init__(self, store: Store, run_id: str, *, batch_size: int = 1) -> None:
        if not run_id:
            raise ValueError("a decision log needs a run_id")
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        self.store = store
        self.run_id = run_id
        self.batch_size = batch_size
        self._rows: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def record(self, decision: Decision, timings_ms: Mapping[str, float], consensus_ms: float) -> None:
        """Buffer one decision: a row per agent signal plus the consensus row."""
        rid, ts, weights = self.run_id, decision.ts, decision.weights
        rows = [(rid, s.ts or ts, s.agent_id, s.action.value, s.confidence, s.trail_distance, weights.get(s.agent_id),
                 s.reasoning, timings_ms.get(s.agent_id)) for s in decision.signals]
        rows.append((rid, ts, CONSENSUS_ID, decision.action.value, decision.confidence, decision.trail_distance, None,
                     decision.reasoning, consensus_ms))
        writer = self.store.writer if self.batch_size == 1 else None  # streaming (paper/live) logs
        if writer is not None:
            if self._rows:  # rows kept by a flush that failed before the writer took over go first
                rows, self._rows = self._rows + rows, []
            writer.defer_rows("agent_decisions", rows, _write_batch)
            return
        self._rows += rows
        if len(self._rows) >= self.batch_size:
            self.flush()

    def flush(self) -> int:
        """Write the buffered rows in one transaction; returns how many were written."""
        if not self._rows:
            return 0
        rows, self._rows = self._rows, []
        try:
            self.write_columns(_columns(rows))
        except BaseException:
            self._rows = rows + self._rows  # nothing was written: keep them for the next try
            raise
        return len(rows)

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


def _write_batch(cur: Any, rows: list[tuple[Any, ...]]) -> None:
    """The store writer's insert of the deferred rows (`StoreWriter.defer_rows`), on its thread."""
    _insert(cur, _columns(rows))


def _columns(rows: list[tuple[Any, ...]]) -> dict[str, npt.NDArray[Any]]:
    """Buffered rows (in `_COLUMNS` order) as the columns `_insert` takes."""
    raw = dict(zip(_COLUMNS, zip(*rows, strict=True), strict=True))
    data: dict[str, npt.NDArray[Any]] = {"ts": np.asarray(raw["ts"], dtype=np.int64)}
    for name in ("confidence", "trail_distance", "weight", "execution_time_ms"):
        data[name] = np.array([np.nan if v is None else v for v in raw[name]], dtype=np.float64)
    for name in ("run_id", "agent_id", "signal", "reasoning"):
        data[name] = np.array(raw[name], dtype=object)
    return data


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
