"""Crash recovery as a public engine step: checkpoint state out, state back in, reconcile at start.

    state = engine_state(engine)          # what a checkpoint stores
    restore_engine(fresh_engine, state)   # before run(): ledger, open orders, trailing book, policy
    await reconcile(engine)               # run() does this first after a restore

See docs/trading.md (checkpoints) and docs/coinbase.md (resuming a live run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from trdr_tui.core.errors import StateCorruption
from trdr_tui.core.types import Order
from trdr_tui.engine.protocols import StatefulDecisionSource
from trdr_tui.store.db import Store
from trdr_tui.store.orders import latest_checkpoint
from trdr_tui.trading.portfolio import Portfolio
from trdr_tui.trading.trailing import TrailingState

if TYPE_CHECKING:
    from trdr_tui.engine.loop import Engine


def engine_state(engine: Engine) -> dict[str, Any]:
    """Everything needed to resume: ledger, open orders (with trailing state), policy/grid, weights, and
    the DecisionSource's own state when it offers one (so a restart does not start indicators cold)."""
    src = engine.decisions
    return {
        "run_id": engine.run_id, "mode": engine.mode.value, "symbol": engine.symbol,
        "ts": engine.clock.now_ns(), "bars": engine.bars_done, "last_price": engine.last_price,
        "paused": engine.paused, "portfolio": engine.portfolio.to_state(),
        "open_orders": engine.orders.open_state(), "order_seq": engine.orders._seq,
        "policy": engine.policy.state(), "weights": engine.agent_weights(),
        "decisions": src.get_state() if isinstance(src, StatefulDecisionSource) else None,
    }


def restore_engine(engine: Engine, state: dict[str, Any]) -> None:
    """Resume from a checkpoint's state (before `run`); `run()` then reconciles open orders first.

    Raises StateCorruption when the engine has already run or the checkpoint is for another symbol.
    """
    if engine.running or engine.bars_done:
        raise StateCorruption("restore() must be called before the engine runs")
    if state.get("symbol") != engine.symbol:
        raise StateCorruption(f"checkpoint is for {state.get('symbol')}, this engine trades {engine.symbol}")
    pf = Portfolio.from_state(state["portfolio"])
    engine.portfolio.__dict__.update(pf.__dict__)
    orders = engine.orders
    orders._seq = int(state.get("order_seq", 0))
    for item in state.get("open_orders", []):
        order = msgspec.convert(item["order"], Order)
        orders.orders[order.id] = order
        orders.open[order.id] = order
        tr = item.get("trailing")
        if tr:
            st = TrailingState(order, float(tr["best"]), float(order.trail or 0.0),
                               improvement=orders.improvement, expires_ns=tr.get("expires_ns"))
            st.anchor = float(tr["anchor"])
            st.trigger = float(tr["trigger"])
            orders.trailing.append(st)
            if st.expires_ns is not None:
                orders.expiring = True
    engine.policy.restore(state.get("policy", {}))
    engine.last_price = float(state.get("last_price", 0.0))
    if state.get("paused", False):
        engine.pause()
    src = engine.decisions
    if state.get("decisions") is not None and isinstance(src, StatefulDecisionSource):
        src.set_state(state["decisions"])
    elif engine.decisions is not None:
        for agent_id, w in (state.get("weights") or {}).items():
            engine.decisions.set_weight(agent_id, float(w))

    async def reconcile_at_start() -> None:
        await reconcile(engine)

    engine.set_recovery(reconcile_at_start)


async def reconcile(engine: Engine) -> int:
    """Crash-only start: the executor's truth about orders we think are at the exchange.

    Armed trailing orders live in the engine and need no asking; every other open order is looked up
    (by `client_order_id`) and the executor's reports go through the state machine. Returns the number
    of reports applied.
    """
    orders = engine.orders
    known = [o for o in orders.open.values() if orders.trailing_state(o) is None]
    if not known:
        return 0
    reports = await engine.executor.reconcile(known)
    for report in reports:
        orders.on_report(report)
    if reports:
        engine.log("info", f"reconciled {len(reports)} order(s) with {engine.executor.name}")
    return len(reports)


def restore_latest(engine: Engine, store: Store, run_id: str | None = None) -> bool:
    """Load the newest checkpoint (of `run_id`, or of any run) into a fresh engine before `run()`.

    Returns False when there is none. `run()` then reconciles open orders with the executor.
    """
    found = latest_checkpoint(store, run_id)
    if found is None:
        return False
    restore_engine(engine, found[2])
    return True
