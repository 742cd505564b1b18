"""The decision log repository: batched inserts, nothing lost when a write fails, weights upsert; the
streaming log (paper/live) writes the same rows through the store writer, and a stop writes them all."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from trdr_tui.core.types import Action, AgentSignal, Decision
from trdr_tui.store import Store
from trdr_tui.store.decisions import CONSENSUS_ID, DecisionLog, load_weights, save_weights
from trdr_tui.store.journal import start_writer

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


# -- the rows a decision makes, whichever path writes them ------------------------------------------------------

def _varied(i: int) -> tuple[Decision, dict[str, float], float]:
    """Decision i with what the rows must carry through: 0 to 3 signals, a signal without its own ts
    (the decision's is used), an agent without a weight or a time (NULL), a NaN trail (NULL), non-ASCII
    reasoning, every action."""
    actions = list(Action)
    signals = tuple(
        AgentSignal(agent_id=f"agent{j}", action=actions[(i + j) % 3], confidence=0.1 * j + 0.01 * (i % 7),
                    trail_distance=math.nan if (i + j) % 5 == 0 else 0.01 + 0.001 * j,
                    reasoning=f"#{i}.{j} ATR {i % 13}% → ×{j}", ts=0 if (i + j) % 4 == 0 else TS + i * 10**9 + j * 1000)
        for j in range(i % 4))
    weights = {s.agent_id: 1.0 + 0.5 * k for k, s in enumerate(signals) if (i + k) % 3 != 1}
    timings = {s.agent_id: 0.001 * (i + k) for k, s in enumerate(signals) if (i + k) % 4 != 2}
    decision = Decision(ts=TS + i * 10**9, action=actions[i % 3], confidence=0.5 + 0.001 * i,
                        trail_distance=math.nan if i % 6 == 0 else 0.02, signals=signals, weights=weights,
                        reasoning=f"consensus #{i} — buy {i % 3}")
    return decision, timings, 0.01 * i


def _expected(entries: list[tuple[Decision, Mapping[str, float], float]]) -> list[dict[str, Any]]:
    """The rows as `DecisionLog.rows` returns them, built row by row from the decisions."""
    def f(x: float | None) -> float | None:
        return None if x is None or math.isnan(x) else x

    out: list[dict[str, Any]] = []
    for d, timings, consensus_ms in entries:
        out += [{"ts": s.ts or d.ts, "agent_id": s.agent_id, "signal": s.action.value, "confidence": s.confidence,
                 "trail_distance": f(s.trail_distance), "weight": d.weights.get(s.agent_id), "reasoning": s.reasoning,
                 "execution_time_ms": timings.get(s.agent_id)} for s in d.signals]
        out.append({"ts": d.ts, "agent_id": CONSENSUS_ID, "signal": d.action.value, "confidence": d.confidence,
                    "trail_distance": f(d.trail_distance), "weight": None, "reasoning": d.reasoning,
                    "execution_time_ms": consensus_ms})
    return out


def _columns_of(rows: list[dict[str, Any]], run_id: str) -> dict[str, np.ndarray]:
    """Rows as the columns `write_columns` takes (as the batch backtest gives them)."""
    def num(key: str) -> np.ndarray:
        return np.array([math.nan if r[key] is None else r[key] for r in rows], dtype=np.float64)

    return {"run_id": np.full(len(rows), run_id, dtype=object), "ts": np.array([r["ts"] for r in rows], dtype=np.int64),
            "agent_id": np.array([r["agent_id"] for r in rows], dtype=object),
            "signal": np.array([r["signal"] for r in rows], dtype=object), "confidence": num("confidence"),
            "trail_distance": num("trail_distance"), "weight": num("weight"),
            "reasoning": np.array([r["reasoning"] for r in rows], dtype=object),
            "execution_time_ms": num("execution_time_ms")}


def test_buffered_streamed_and_column_rows_are_the_same(tmp_path: Path) -> None:
    """The same decisions logged buffered (a streamed backtest), through the store writer (paper/live)
    and as columns (a batch backtest) make the same rows, in the same order of id."""
    entries = [_varied(i) for i in range(400)]
    expected = _expected(entries)
    assert {len(d.signals) for d, _, _ in entries} == {0, 1, 2, 3}
    with Store(tmp_path / "paths.duckdb") as store:
        buffered = DecisionLog(store, "buffered", batch_size=50)
        for e in entries:
            buffered.record(*e)
        buffered.flush()
        DecisionLog(store, "columns").write_columns(_columns_of(expected, "columns"))
        start_writer(store, flush_interval_s=0.01)
        streamed = DecisionLog(store, "streamed", batch_size=1)
        for e in entries:
            streamed.record(*e)
        assert len(streamed) == 0  # handed to the writer
        for log in (buffered, DecisionLog(store, "columns"), streamed):
            assert log.rows() == expected, log.run_id
        ids = store.conn.execute("SELECT run_id, list(id ORDER BY id) FROM agent_decisions GROUP BY run_id").fetchall()
        assert all(len(x) == len(expected) for _, x in ids)


def test_a_plugin_signal_without_a_time_is_logged_at_its_decisions_and_the_writer_goes_on(tmp_path: Path) -> None:
    """An AgentSignal built loosely (msgspec does not check types when a Struct is built: ts=None) is
    logged at its decision's time, as a signal with ts 0 is; the writer thread, which builds the rows
    in paper and live, must not fail on it (its failure stops the engine)."""
    loose = AgentSignal(agent_id="plugin", action=Action.HOLD, confidence=0.5, trail_distance=0.02,
                        reasoning="no clock", ts=None)  # type: ignore[arg-type]
    decision = Decision(ts=TS, action=Action.HOLD, confidence=0.5, trail_distance=0.02, signals=(loose,),
                        weights={"plugin": 1.0}, reasoning="hold")
    with Store(tmp_path / "loose.duckdb") as store:
        writer = start_writer(store, flush_interval_s=0.01)
        assert writer is not None
        log = DecisionLog(store, "loose", batch_size=1)
        log.record(decision, {"plugin": 0.1}, 0.2)
        log.record(*_varied(5))
        rows = log.rows()
        assert writer.error is None
    assert [r["ts"] for r in rows[:2]] == [TS, TS] and rows[0]["agent_id"] == "plugin"
    assert rows[2:] == _expected([_varied(5)])


def test_a_stop_writes_every_streamed_row(tmp_path: Path) -> None:
    """Decisions logged while the writer thread commits batches (a short interval, so many batches
    start while rows are being handed over): closing the store writes every one, once, in order."""
    entries = [_varied(i) for i in range(3000)]
    path = tmp_path / "stop.duckdb"
    store = Store(path)
    start_writer(store, flush_interval_s=0.001)
    log = DecisionLog(store, "s", batch_size=1)
    for e in entries:
        log.record(*e)
    store.close()
    with Store(path) as again:
        assert DecisionLog(again, "s").rows() == _expected(entries)


def test_rows_deferred_from_two_threads_are_each_written_once(tmp_path: Path) -> None:
    """Rows deferred from two threads at once, while the writer takes batches, are all written, once,
    each thread's in its own order."""
    seen: list[tuple[int, int]] = []

    def write(cur: Any, rows: list[tuple[int, int]]) -> None:
        assert rows  # an empty batch is not written
        seen.extend(rows)

    store = Store(tmp_path / "threads.duckdb")
    writer = start_writer(store, flush_interval_s=0.001)
    assert writer is not None

    def defer(k: int) -> None:
        for i in range(20_000):
            writer.defer_rows("pairs", [(k, i)], write)

    threads = [threading.Thread(target=defer, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    assert sorted(seen) == [(k, i) for k in (0, 1) for i in range(20_000)]
    assert [i for k, i in seen if k == 1] == list(range(20_000))


def test_rows_kept_by_a_failed_flush_go_first_once_the_writer_takes_over(tmp_path: Path) -> None:
    entries = [_varied(i) for i in range(1, 5)]
    with Store(tmp_path / "f.duckdb") as store:
        log = DecisionLog(store, "f", batch_size=1)
        store.conn.execute("ALTER TABLE agent_decisions RENAME TO agent_decisions_away")
        with pytest.raises(duckdb.Error):
            log.record(*entries[0])
        assert len(log) == len(entries[0][0].signals) + 1  # kept
        store.conn.execute("ALTER TABLE agent_decisions_away RENAME TO agent_decisions")
        start_writer(store, flush_interval_s=0.01)
        for e in entries[1:]:
            log.record(*e)
        assert len(log) == 0
        assert log.rows() == _expected(entries)
