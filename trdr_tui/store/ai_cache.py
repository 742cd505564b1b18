"""Repository for Claude's answers (`ai_responses`) and the ledger of paid calls (`ai_calls`).

`ai_responses` is the response cache: one validated answer per key (a sha256 of the kind, the model,
the prompt version and the input), so a backtest re-run reads the same answers again and pays
nothing. `ai_calls` records every paid call (tokens, USD, outcome): the daily budget and the hourly
call limit are counted from it, so they survive a restart. Neither table ever holds a key.
"""

from __future__ import annotations

from typing import Any

import msgspec

from trdr_tui.store.db import Store


class AICall(msgspec.Struct, frozen=True, kw_only=True):
    """One paid call: wall time (ns), what it was for, its tokens and its cost in USD."""

    ts: int
    kind: str
    model: str
    priority: str
    outcome: str  # ok | invalid | failed
    input_tokens: int
    output_tokens: int
    cost_usd: float


class AIResponseRepository:
    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self, model: str, prompt_version: str, kind: str) -> dict[str, dict[str, Any]]:
        """Every cached answer for (model, prompt version, kind): key → the answer's JSON object."""
        with self.store.transaction() as cur:
            rows = cur.execute("SELECT key, response FROM ai_responses WHERE model = ? AND prompt_version = ? "
                               "AND kind = ?", [model, prompt_version, kind]).fetchall()
        return {str(k): msgspec.json.decode(v) for k, v in rows}

    def put(self, key: str, *, kind: str, model: str, prompt_version: str, response: dict[str, Any],
            created_ns: int) -> None:
        """Store one validated answer (a key already stored keeps its first answer)."""
        with self.store.transaction() as cur:
            cur.execute("INSERT INTO ai_responses VALUES (?, ?, ?, ?, ?, make_timestamp(?)) ON CONFLICT DO NOTHING",
                        [key, kind, model, prompt_version, msgspec.json.encode(response).decode(), created_ns // 1000])

    def record_call(self, call: AICall) -> None:
        with self.store.transaction() as cur:
            cur.execute("INSERT INTO ai_calls VALUES (make_timestamp(?), ?, ?, ?, ?, ?, ?, ?)",
                        [call.ts // 1000, call.kind, call.model, call.priority, call.outcome, call.input_tokens,
                         call.output_tokens, call.cost_usd])

    def spend_since(self, since_ns: int) -> tuple[float, int]:
        """(USD spent, number of calls) from `since_ns` (wall time, ns) on."""
        with self.store.transaction() as cur:
            row = cur.execute("SELECT coalesce(sum(cost_usd), 0), count(*) FROM ai_calls "
                              "WHERE ts >= make_timestamp(?)", [since_ns // 1000]).fetchone()
        return (float(row[0]), int(row[1])) if row else (0.0, 0)

    def call_times_since(self, since_ns: int) -> list[int]:
        """Wall times (ns) of the calls from `since_ns` on, oldest first."""
        with self.store.transaction() as cur:
            rows = cur.execute("SELECT epoch_us(ts) FROM ai_calls WHERE ts >= make_timestamp(?) ORDER BY ts",
                               [since_ns // 1000]).fetchall()
        return [int(r[0]) * 1000 for r in rows]
