"""The order state machine: every legal path is accepted, no illegal step ever is (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import StateCorruption
from trdr_tui.core.fsm import (
    OPEN,
    TERMINAL,
    TRANSITIONS,
    InvalidTransition,
    OrderStateMachine,
    can_transition,
)
from trdr_tui.core.types import Order, OrderStatus, OrderType, Side

S = OrderStatus
LEGAL = {
    S.PENDING: {S.ARMED, S.SUBMITTED, S.CANCELLED},
    S.ARMED: {S.SUBMITTED, S.CANCELLED, S.EXPIRED},
    S.SUBMITTED: {S.PARTIAL, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED},
    S.PARTIAL: {S.PARTIAL, S.FILLED, S.CANCELLED, S.EXPIRED},
    S.FILLED: set(),
    S.CANCELLED: set(),
    S.REJECTED: set(),
    S.EXPIRED: set(),
}


def new_order() -> Order:
    return Order(id="o1", client_order_id="c1", symbol="BTC-USD", side=Side.BUY, type=OrderType.MARKET,
                 size=1.0, created_ts=0)


def test_table_is_exactly_the_documented_graph() -> None:
    for a in S:
        for b in S:
            assert can_transition(a, b) == (b in LEGAL[a]), (a, b)
    assert set(TRANSITIONS.values()) <= set(S)
    assert all(not LEGAL[t] for t in TERMINAL)


def test_armed_is_open_and_released_only_to_the_executor() -> None:
    """ARMED (in the engine's trigger book) is open, leaves it only by being sent, cancelled or expiring,
    and cannot fill or be rejected: nothing outside the engine knows the order yet."""
    assert S.ARMED in OPEN and S.ARMED not in TERMINAL
    fsm = OrderStateMachine(SimClock(7))
    order = new_order()
    fsm.apply(order, S.ARMED, "armed")
    for illegal in (S.FILLED, S.PARTIAL, S.REJECTED, S.PENDING, S.ARMED):
        with pytest.raises(InvalidTransition, match=f"ARMED -> {illegal.value}"):
            fsm.apply(order, illegal)
    fsm.apply(order, S.SUBMITTED, "fired")
    assert [(t.from_status, t.to_status, t.reason) for t in order.history] == [
        (S.PENDING, S.ARMED, "armed"), (S.ARMED, S.SUBMITTED, "fired")]


def test_illegal_transition_message_and_order_unchanged() -> None:
    fsm = OrderStateMachine(SimClock(5))
    order = new_order()
    fsm.apply(order, S.SUBMITTED)
    with pytest.raises(InvalidTransition, match="SUBMITTED -> PENDING") as err:
        fsm.apply(order, S.PENDING)
    assert isinstance(err.value, StateCorruption) and err.value.code == "E007"
    assert order.status is S.SUBMITTED and len(order.history) == 1


@given(st.lists(st.sampled_from(list(S)), max_size=12), st.lists(st.integers(0, 10**6), min_size=12, max_size=12))
def test_any_sequence_accepts_exactly_the_legal_steps(triggers: list[OrderStatus], dts: list[int]) -> None:
    clock = SimClock(1_000)
    seen: list[tuple[str, OrderStatus, OrderStatus]] = []
    fsm = OrderStateMachine(clock, [lambda o, t: seen.append((o.id, t.from_status, t.to_status))])
    order = new_order()
    expected_history = []
    for trig, dt in zip(triggers, dts, strict=False):
        clock.advance_to(clock.now_ns() + dt)
        before = order.status
        if trig in LEGAL[before]:
            t = fsm.apply(order, trig, "x")
            assert (t.from_status, t.to_status, t.ts) == (before, trig, clock.now_ns())
            expected_history.append((before, trig, clock.now_ns()))
        else:
            with pytest.raises(InvalidTransition):
                fsm.apply(order, trig)
            assert order.status is before
    assert [(h.from_status, h.to_status, h.ts) for h in order.history] == expected_history
    assert [(a, b) for _, a, b in seen] == [(a, b) for a, b, _ in expected_history]
    # history is a connected path from PENDING, time never goes back, terminal states are final
    status = S.PENDING
    for h in order.history:
        assert h.from_status is status and status not in TERMINAL
        status = h.to_status
    assert [h.ts for h in order.history] == sorted(h.ts for h in order.history)


@st.composite
def legal_paths(draw: st.DrawFn) -> list[OrderStatus]:
    path: list[OrderStatus] = []
    status = S.PENDING
    while (LEGAL[status] and draw(st.booleans())) or (not path and LEGAL[status]):
        status = draw(st.sampled_from(sorted(LEGAL[status])))
        path.append(status)
        if len(path) > 10:
            break
    return path


@given(legal_paths())
def test_every_legal_path_is_accepted_and_published(path: list[OrderStatus]) -> None:
    from trdr_tui.core.events import OrderEvent, order_topic

    bus = EventBus()
    got: list[OrderEvent] = []
    bus.subscribe("order.*", lambda _t, e: got.append(e))
    fsm = OrderStateMachine(SimClock(0), [lambda o, t: bus.publish(order_topic(o.id), OrderEvent(order=o, transition=t))])
    order = new_order()
    for trig in path:
        fsm.apply(order, trig)
    assert [e.transition.to_status for e in got] == path
    assert order.status is (path[-1] if path else S.PENDING)
