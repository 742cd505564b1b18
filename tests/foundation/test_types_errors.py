"""Domain types and the error hierarchy: the basics every package relies on."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from trdr_tui.core import errors
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.timeframes import find_gaps, infer_timeframe, timeframe_ns
from trdr_tui.core.types import Action, AgentSignal, Candle, Decision, Fill, Liquidity, Order, OrderType, Side

HOUR = 3600 * 10**9


def test_candle_is_frozen_and_round_trips_compactly() -> None:
    c = Candle(ts=1_571_302_800 * 10**9, open=8051.0, high=8056.83, low=8021.23, close=8035.88, volume=61.25)
    with pytest.raises(AttributeError):
        c.close = 1.0  # type: ignore[misc]
    raw = msgspec.json.encode(c)
    assert raw.startswith(b"[")  # array_like: compact on the event log
    assert msgspec.json.decode(raw, type=Candle) == c


def test_candle_arrays_round_trip_candles() -> None:
    bars = [Candle(i * HOUR, 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, 1.0) for i in range(5)]
    arrays = CandleArrays.from_candles(bars)
    assert len(arrays) == 5 and list(arrays.candles()) == bars and arrays.candle(3) == bars[3]
    assert len(arrays[1:3]) == 2 and arrays[1:3].candle(0) == bars[1]
    assert len(CandleArrays.empty()) == 0


def test_order_remaining_and_fill_notional() -> None:
    o = Order(id="o1", client_order_id="c1", symbol="BTC-USD", side=Side.BUY, type=OrderType.TRAILING, size=0.5,
              created_ts=0, filled_size=0.2)
    assert o.remaining == pytest.approx(0.3)
    f = Fill(id="f1", order_id="o1", client_order_id="c1", symbol="BTC-USD", side=Side.BUY, price=100.0, size=0.2,
             fee=0.01, liquidity=Liquidity.TAKER, ts=0)
    assert f.notional == pytest.approx(20.0)


def test_decision_carries_signals() -> None:
    s = AgentSignal(agent_id="momentum", action=Action.TRAIL_BUY, confidence=0.8, trail_distance=0.01, reasoning="up")
    d = Decision(ts=1, action=Action.TRAIL_BUY, confidence=0.8, trail_distance=0.01, signals=(s,))
    assert msgspec.json.decode(msgspec.json.encode(d), type=Decision) == d


@pytest.mark.parametrize(
    ("cls", "code", "group"),
    [
        (errors.ConnectionLost, "E001", errors.RetryError),
        (errors.InsufficientFunds, "E002", errors.RejectError),
        (errors.RateLimited, "E003", errors.RetryError),
        (errors.InvalidResponse, "E004", errors.SkipError),
        (errors.StateCorruption, "E007", errors.RestoreError),
    ],
)
def test_error_codes_and_groups(cls: type[errors.TrdrError], code: str, group: type) -> None:
    err = cls("something happened", where="here", hint="do this")
    assert err.code == code and isinstance(err, group) and isinstance(err, errors.TrdrError)
    assert str(err) == f"[{code}] here: something happened\n  fix: do this"


def test_agent_and_risk_errors() -> None:
    agent = errors.AgentFailed("momentum", "timed out after 5 s")
    assert agent.code == "E005" and isinstance(agent, errors.SkipError) and "agent momentum" in str(agent)
    risk = errors.RiskLimitExceeded(["max_position", "daily_loss"])
    assert risk.code == "E006" and isinstance(risk, errors.RejectError) and "max_position, daily_loss" in str(risk)


def test_input_errors_stop() -> None:
    for cls in (errors.ConfigError, errors.DataError, errors.CredentialsError, errors.NotAvailable):
        assert issubclass(cls, errors.StopError)
    assert str(errors.DataError("bad", where="f.csv:3")) == "f.csv:3: bad"


def test_timeframes_and_gaps() -> None:
    assert timeframe_ns("4h") == 4 * HOUR
    with pytest.raises(errors.DataError, match="use one of: 1m, 5m"):
        timeframe_ns("90m")
    ts = np.array([0, 1, 2, 5, 6, 9], dtype=np.int64) * HOUR
    assert infer_timeframe(ts) == "1h"
    assert [(g.start, g.end, g.missing) for g in find_gaps(ts, HOUR)] == [(3 * HOUR, 4 * HOUR, 2),
                                                                          (7 * HOUR, 8 * HOUR, 2)]
    assert infer_timeframe(np.array([0], dtype=np.int64)) is None
