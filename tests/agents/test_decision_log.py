"""The decision log repository: batched inserts, nothing lost when a write fails, weights upsert."""

from __future__ import annotations

import duckdb
import pytest

from trdr_tui.core.types import Action, AgentSignal, Decision
from trdr_tui.store import Store
from trdr_tui.store.decisions import DecisionLog, load_weights, save_weights

TS = 1_600_000_000 * 10**9


def _decision(i: int) -> Decision:
    sig = AgentSignal(agent_id="momentum", action=Action.TRAIL_BUY, confidence=0.7, trail_distance=0.02,
                      reasoning=f"oversold #{i}", ts=TS + i)
    return Decision(ts=TS + i, action=Action.TRAIL_BUY, confidence=0.7, trail_distance=0.02, signals=(sig,),
                    weights={"momentum": 1.5}, reasoning=f"consensus #{i}")


def test_rows_are_buffered_then_written_in_one_batch(store: Store) -> None:
    log = DecisionLog(store, "r", batch_size=6)
    for i in range(2):
        log.record(_decision(i), {"momentum": 0.05}, 0.01)
    assert log.rows() == [] and len(log) == 4
    log.record(_decision(2), {"momentum": 0.05}, 0.01)  # 6 rows: the batch is full
    rows = log.rows()
    assert len(rows) == 6 and len(log) == 0
    assert rows[0] == {"ts": TS, "agent_id": "momentum", "signal": "TRAIL_BUY", "confidence": 0.7,
                       "trail_distance": 0.02, "weight": 1.5, "reasoning": "oversold #0", "execution_time_ms": 0.05}
    assert rows[1]["agent_id"] == "consensus" and rows[1]["weight"] is None and rows[1]["reasoning"] == "consensus #0"


def test_a_failed_write_loses_nothing(store: Store) -> None:
    log = DecisionLog(store, "r", batch_size=100)
    log.record(_decision(0), {}, 0.0)
    store.conn.execute("ALTER TABLE agent_decisions RENAME TO agent_decisions_away")
    with pytest.raises(duckdb.Error):
        log.flush()
    assert len(log) == 2  # still buffered
    store.conn.execute("ALTER TABLE agent_decisions_away RENAME TO agent_decisions")
    assert log.flush() == 2 and len(log.rows()) == 2


def test_weights_upsert_and_reload(store: Store) -> None:
    save_weights(store, {"a": 1.0, "b": 2.0}, TS)
    save_weights(store, {"a": 0.5}, TS + 1)
    assert load_weights(store) == {"a": 0.5, "b": 2.0}
    assert load_weights(store, ["b"]) == {"b": 2.0}


def test_bad_arguments_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="run_id"):
        DecisionLog(store, "")
    with pytest.raises(ValueError, match="batch_size"):
        DecisionLog(store, "r", batch_size=0)
