"""The order state machine: a transition table, and nothing else may change an order's status.

Legal paths (PRD §3.3.2, plus ARMED for orders the engine triggers itself and EXPIRED for
time-limited orders):

    PENDING   → ARMED | SUBMITTED | CANCELLED
    ARMED     → SUBMITTED | CANCELLED | EXPIRED
    SUBMITTED → PARTIAL | FILLED | CANCELLED | REJECTED | EXPIRED
    PARTIAL   → PARTIAL | FILLED | CANCELLED | EXPIRED
    FILLED, CANCELLED, REJECTED, EXPIRED are final.

ARMED is "in the engine's trigger book, not yet sent": a trailing order (Coinbase has no trailing type)
waits there until its trigger fires, then ARMED → SUBMITTED releases it to the executor (the
EMULATED → RELEASED step of NautilusTrader's order model). An ARMED order is open but not at the
exchange, so it cannot fill or be rejected there; it is cancelled or expires locally.
`PARTIAL → PARTIAL` is a further partial fill (the status stays, the history records the fill).
Every applied transition is time-stamped by the Clock, appended to `Order.history` and handed to the
listeners (the order manager publishes it on `order.<id>` and persists it).
"""

from __future__ import annotations

from collections.abc import Callable

from trdr_tui.core.clock import Clock
from trdr_tui.core.errors import StateCorruption
from trdr_tui.core.types import Order, OrderStatus, OrderTransition

S = OrderStatus

TRANSITIONS: dict[tuple[OrderStatus, OrderStatus], OrderStatus] = {
    (S.PENDING, S.ARMED): S.ARMED,
    (S.PENDING, S.SUBMITTED): S.SUBMITTED,
    (S.PENDING, S.CANCELLED): S.CANCELLED,
    (S.ARMED, S.SUBMITTED): S.SUBMITTED,
    (S.ARMED, S.CANCELLED): S.CANCELLED,
    (S.ARMED, S.EXPIRED): S.EXPIRED,
    (S.SUBMITTED, S.PARTIAL): S.PARTIAL,
    (S.SUBMITTED, S.FILLED): S.FILLED,
    (S.SUBMITTED, S.CANCELLED): S.CANCELLED,
    (S.SUBMITTED, S.REJECTED): S.REJECTED,
    (S.SUBMITTED, S.EXPIRED): S.EXPIRED,
    (S.PARTIAL, S.PARTIAL): S.PARTIAL,
    (S.PARTIAL, S.FILLED): S.FILLED,
    (S.PARTIAL, S.CANCELLED): S.CANCELLED,
    (S.PARTIAL, S.EXPIRED): S.EXPIRED,
}
"""(current state, trigger) → next state. The trigger is the status an event asks for."""

TERMINAL: frozenset[OrderStatus] = frozenset({S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED})
OPEN: frozenset[OrderStatus] = frozenset({S.PENDING, S.ARMED, S.SUBMITTED, S.PARTIAL})

TransitionListener = Callable[[Order, OrderTransition], None]


class InvalidTransition(StateCorruption):
    """An event asked for a status change the table does not allow. The order is left unchanged."""

    def __init__(self, from_status: OrderStatus, to_status: OrderStatus, order_id: str = "") -> None:
        self.from_status = from_status
        self.to_status = to_status
        where = f"order {order_id}" if order_id else ""
        super().__init__(f"{from_status.value} -> {to_status.value}", where=where,
                         hint="an order's status only moves along the transition table in trdr_tui/core/fsm.py")


def can_transition(from_status: OrderStatus, to_status: OrderStatus) -> bool:
    return (from_status, to_status) in TRANSITIONS


def next_status(from_status: OrderStatus, trigger: OrderStatus) -> OrderStatus:
    """The table lookup; raises InvalidTransition for anything not in it."""
    try:
        return TRANSITIONS[(from_status, trigger)]
    except KeyError:
        raise InvalidTransition(from_status, trigger) from None


class OrderStateMachine:
    """Applies transitions to orders, stamping them with the Clock's time and telling the listeners."""

    def __init__(self, clock: Clock, listeners: list[TransitionListener] | None = None) -> None:
        self.clock = clock
        self.listeners: list[TransitionListener] = list(listeners or [])

    def apply(self, order: Order, trigger: OrderStatus, reason: str = "") -> OrderTransition:
        key = (order.status, trigger)
        to_status = TRANSITIONS.get(key)
        if to_status is None:
            raise InvalidTransition(order.status, trigger, order.id)
        transition = OrderTransition(self.clock.now_ns(), order.status, to_status, reason)
        order.status = to_status
        order.history.append(transition)
        for listener in self.listeners:
            listener(order, transition)
        return transition
