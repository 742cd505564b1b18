"""The runner's conversions: agent signals from batch arrays and from decisions; JSON cleaning."""

from __future__ import annotations

import json
import math

import msgspec
import numpy as np

from trdr_tui.backtest.runner import (
    SUMMARY_KEYS,
    agent_signals_from_arrays,
    agent_signals_from_decisions,
    clean_json,
    float_list,
    summary,
)
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.types import Action, AgentSignal, Decision

HOUR = 3_600_000_000_000


class FakeArrays(msgspec.Struct):
    ts: np.ndarray
    valid: np.ndarray
    agent_ids: tuple[str, ...]
    agent_action: np.ndarray
    agent_confidence: np.ndarray


def test_signals_from_batch_arrays_respect_warmup_and_codes() -> None:
    n = 4
    arrays = FakeArrays(
        ts=HOUR * np.arange(n, dtype=np.int64), valid=np.array([False, True, True, True]),
        agent_ids=("b", "a"),
        agent_action=np.array([[1, 2], [1, 0], [2, 1], [0, 2]], dtype=np.int8),
        agent_confidence=np.array([[0.9, 0.9], [0.8, 0.1], [0.7, 0.6], [0.0, 0.5]]),
    )
    sig = agent_signals_from_arrays(arrays, n)
    assert list(sig) == ["a", "b"]
    np.testing.assert_array_equal(sig["b"].action, [0, 1, -1, 0])  # bar 0 is warm-up
    np.testing.assert_array_equal(sig["a"].action, [0, 0, 1, -1])
    np.testing.assert_allclose(sig["b"].confidence, [0.0, 0.8, 0.7, 0.0])


def test_signals_from_decisions_align_on_bar_close_time() -> None:
    bar_ts = HOUR * np.arange(3, dtype=np.int64)

    def decision(ts: int, action: Action, conf: float) -> Decision:
        s = AgentSignal(agent_id="momentum", action=action, confidence=conf, trail_distance=0.01, reasoning="")
        return Decision(ts=ts, action=action, confidence=conf, trail_distance=0.01, signals=(s,))

    sig = agent_signals_from_decisions([decision(HOUR, Action.TRAIL_BUY, 0.8),  # closes bar 0
                                        decision(3 * HOUR, Action.TRAIL_SELL, 0.6)], bar_ts, HOUR)
    np.testing.assert_array_equal(sig["momentum"].action, [1, 0, -1])
    np.testing.assert_allclose(sig["momentum"].confidence, [0.8, 0.0, 0.6])
    assert agent_signals_from_decisions([], bar_ts, HOUR) == {}


def test_json_cleaning_and_summary_order() -> None:
    cleaned = clean_json({"a": np.float64(1.5), "b": [math.inf, np.int64(3)], "c": {"d": math.nan}})
    assert cleaned == {"a": 1.5, "b": [None, 3], "c": {"d": None}}
    json.dumps(cleaned, allow_nan=False)
    assert float_list(np.array([1.0, np.nan])) == [1.0, None]
    s = summary({"zeta": 1, "fills": 3, "bars": 10})
    assert list(s)[: len(SUMMARY_KEYS)] == list(SUMMARY_KEYS)
    assert s["zeta"] == 1 and s["sharpe"] is None


async def test_run_engine_async_inside_a_running_loop(hourly: CandleArrays) -> None:
    from trdr_tui.backtest.runner import run_engine_async
    from trdr_tui.config import load_settings

    progress: list[tuple[int, int]] = []
    run, engine = await run_engine_async(load_settings(), hourly[:5000], preset="simple-trailing",
                                         on_progress=lambda done, total: progress.append((done, total)))
    assert run.ts.shape[0] == 5000 and engine.record.bars == 5000
    assert progress and progress[-1] == (5000, 5000)
