"""Crash recovery as a public engine step: checkpoint state out, state back in, reconcile at start.

    state = engine_state(engine)          # what a checkpoint stores
    restore_engine(fresh_engine, state)   # before run(): ledger, open orders, trailing book, policy
    await reconcile(engine)               # run() does this first after a restore
    await recover_from_store(engine, executor, store)   # a live run: the store's rows win, then reconcile
    restore_after_corruption(failed, error, store, rebuild)  # E007 mid-run: the last good checkpoint

Everything here goes through public calls: `Portfolio.restore` / `rebuild_from_fills`, the order
manager's `restore_sequence`, `restore_open`, `adopt` and `drop`, and the store's readers in
`store.orders`. See docs/trading.md (checkpoints) and docs/coinbase.md (resuming a live run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec

from trdr_tui.core.engine_api import Executor
from trdr_tui.core.errors import StateCorruption
from trdr_tui.core.timefmt import iso_utc
from trdr_tui.core.types import Mode, Order, OrderStatus, OrderType
from trdr_tui.engine.protocols import EngineParts, StatefulDecisionSource
from trdr_tui.store.db import Store
from trdr_tui.store.orders import (
    POSITION_EPSILON,
    checkpoint_ref,
    latest_checkpoint,
    max_order_seq,
    stored_client_order_ids,
    stored_fills,
    stored_open_orders,
    stored_order,
    stored_trade_count,
)
from trdr_tui.trading.orders import TrailingSnapshot
from trdr_tui.trading.portfolio import overdraft_note


def engine_state(engine: EngineParts) -> dict[str, Any]:
    """Everything needed to resume: ledger, open orders (with trailing state), policy/grid, weights, the
    funding schedule's position, and the DecisionSource's own state when it offers one (so a restart
    does not start indicators cold)."""
    src = engine.decisions
    return {
        "run_id": engine.run_id, "mode": engine.mode.value, "symbol": engine.symbol,
        "ts": engine.clock.now_ns(), "bars": engine.bars_done, "last_price": engine.last_price,
        "paused": engine.paused, "portfolio": engine.portfolio.to_state(),
        "open_orders": engine.orders.open_state(), "order_seq": engine.orders.sequence,
        "policy": engine.policy.state(), "weights": engine.agent_weights(),
        "decisions": src.get_state() if isinstance(src, StatefulDecisionSource) else None,
        "funding": engine.funding.state() if engine.funding is not None else None,
    }


def restore_engine(engine: EngineParts, state: dict[str, Any]) -> None:
    """Resume from a checkpoint's state (before `run`); `run()` then reconciles open orders first.

    Raises StateCorruption when the engine has already run or the checkpoint is for another symbol.
    """
    if engine.running or engine.bars_done:
        raise StateCorruption("restore() must be called before the engine runs")
    if state.get("symbol") != engine.symbol:
        raise StateCorruption(f"checkpoint is for {state.get('symbol')}, this engine trades {engine.symbol}")
    engine.portfolio.restore(state["portfolio"])
    orders = engine.orders
    orders.restore_sequence(int(state.get("order_seq", 0)))
    for item in state.get("open_orders", []):
        order = msgspec.convert(item["order"], Order)
        tr = item.get("trailing")
        snapshot = msgspec.convert(tr, TrailingSnapshot) if tr else None
        if snapshot is not None and order.status is OrderStatus.SUBMITTED:
            _armed_before_armed_existed(order)
        orders.restore_open(order, snapshot)
    engine.policy.restore(state.get("policy", {}))
    if engine.funding is not None and state.get("funding") is not None:  # scheduled events already handled
        note = engine.funding.restore(state["funding"])
        if note is not None:
            engine.log("warning", note)
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


async def reconcile(engine: EngineParts) -> int:
    """Crash-only start: the executor's truth about orders we think are at the exchange.

    ARMED orders live in the engine and need no asking; every other open order is looked up
    (by `client_order_id`) and the executor's reports go through the state machine. Returns the number
    of reports applied.
    """
    orders = engine.orders
    known = [o for o in orders.open.values() if o.status is not OrderStatus.ARMED]
    if not known:
        return 0
    reports = await engine.executor.reconcile(known)
    for report in reports:
        orders.on_report(report)
    if reports:
        engine.log("info", f"reconciled {len(reports)} order(s) with {engine.executor.name}")
    return len(reports)


def restore_latest(engine: EngineParts, store: Store, run_id: str | None = None) -> bool:
    """Load the newest checkpoint (of `run_id`, or of any run) into a fresh engine before `run()`.

    Returns False when there is none. `run()` then reconciles open orders with the executor.
    """
    found = latest_checkpoint(store, run_id)
    if found is None:
        return False
    restore_engine(engine, found[2])
    return True


async def recover_from_store(engine: EngineParts, executor: Executor, store: Store) -> tuple[int, int]:
    """Crash-only start of a live run that was interrupted: rebuild from the store, then reconcile.

    1. the ledger is rebuilt by replaying the stored fills (journaled before the engine went on, so
       nothing booked is lost), and the run's `trades` rows are rebuilt from them when they disagree;
    2. orders stored as open are loaded with status and history from the stored transitions and their
       filled size from the stored fills; the order sequence continues after the highest stored id
       (a checkpoint's sequence can be older than the last order written);
    3. ARMED orders (in the engine's trigger book, never sent) keep their trailing state when a
       checkpoint restored it (`restore_latest` first), else they are dropped as CANCELLED and the
       policy re-arms; so is a trailing order stored before it was armed;
    4. `executor.reconcile` asks the exchange about the rest; its reports go through the order
       manager (state machine, ledger, store) like any other report.

    Returns (orders reconciled, reports applied). Call before `engine.run()`, after `restore_latest` if
    the policy and trailing book should come back too. The store's rows win over the checkpoint's (the
    checkpoint can be up to an interval older than the last order or fill written). Raises
    StateCorruption when the checkpoint holds an order the store never saw (orders are written ahead).
    """
    run_id = engine.run_id
    fills = stored_fills(store, run_id)
    engine.portfolio.rebuild_from_fills(fills)
    rebuild_trades(engine, store)
    om = engine.orders
    om.restore_sequence(max_order_seq(store, run_id))
    db_open = {o.id: o for o in stored_open_orders(store, run_id, fills)}
    # a checkpoint restored first may list orders the store has closed since: the store wins
    for oid in [oid for oid in om.open if oid not in db_open]:
        closed = stored_order(store, oid, fills)
        if closed is None:
            raise StateCorruption(f"the checkpoint of run {run_id} holds order {oid}, the store does not",
                                  hint="orders are stored before anything else sees them: the database "
                                       "is not the one this run wrote")
        om.adopt(closed)
    to_reconcile: list[Order] = []
    for o in db_open.values():
        restored = om.orders.get(o.id)
        if restored is not None and restored.status is OrderStatus.ARMED and o.status is OrderStatus.ARMED:
            continue  # still armed, with its trailing anchor from the checkpoint
        om.adopt(o)  # the store's row is the truth (an ARMED copy that fired since leaves the trigger book)
        if o.status is OrderStatus.ARMED or (o.status is OrderStatus.PENDING and o.type is OrderType.TRAILING):
            om.drop(o.id, OrderStatus.CANCELLED, "armed only in the engine; re-armed after restart")
        else:
            to_reconcile.append(o)
    reports = await executor.reconcile(to_reconcile)
    for r in reports:
        om.on_report(r)
    return len(to_reconcile), len(reports)


def resume_run(engine: EngineParts, store: Store) -> bool:
    """Prepare a fresh paper engine (the run's id, its executor) to go on with its run: the newest
    checkpoint now (`restore_latest`), and when `run()` starts the store-first recovery
    (`recover_from_store`: the ledger from the stored fills, orders from the store, reconciled with the
    executor). A live engine resumes with `engine.coinbase.resume_live_run`, which also reconciles
    with the exchange's orders and balances. Returns False when the run has no checkpoint."""
    restored = restore_latest(engine, store, engine.run_id)

    async def recover() -> None:
        await recover_from_store(engine, engine.executor, store)

    engine.set_recovery(recover)
    return restored


E = TypeVar("E", bound=EngineParts)


def restore_after_corruption(failed: EngineParts, error: StateCorruption, store: Store | None,
                             rebuild: Callable[[str], E]) -> E:
    """A paper or live run stopped by StateCorruption (E007, e.g. a fill larger than what its order had
    left): a fresh engine that goes on with the same run from its last good checkpoint, or the reason why
    not, as StateCorruption naming that checkpoint and the command to inspect it.

    Possible (safe for money) only when all hold:
    - the run is paper or live (a backtest or a replay of the same bars would meet the same fault);
    - it has a store with a checkpoint of the run (a failed run writes no shutdown checkpoint, so the
      newest is the last good one), and the ledger is rebuilt from the stored fills, never guessed;
    - the failed engine processed at least one bar (an engine failing again before any progress, e.g.
      in its start-up reconciliation, would loop).
    `rebuild(run_id)` returns the fresh engine prepared to resume (`resume_run` for paper;
    `engine.coinbase.resume_live_run` for live, which reconciles orders, fills and the account's balances
    with the exchange before anything is sent, and refuses the start on a shortfall)."""
    run_id = failed.run_id
    point = checkpoint_ref(store, run_id) if store is not None else None
    why = ("a backtest is deterministic: restoring would meet the same fault" if failed.mode is Mode.BACKTEST
           else "the run has no database" if store is None
           else "the run has no checkpoint" if point is None
           else "it failed before processing a bar since its last start" if failed.bars_done == 0
           else "")
    if why or point is None:
        raise corruption_stop(error, store, run_id, why)
    engine = rebuild(run_id)
    logging.getLogger("trdr.engine").warning(
        "run %s: %s; restored from checkpoint #%d (%s) and reconciled with %s", run_id, error.message, point[0],
        iso_utc(point[1]), engine.executor.name)
    return engine


def corruption_stop(error: StateCorruption, store: Store | None, run_id: str, why: str) -> StateCorruption:
    """The E007 that stops a run which cannot be restored: what, why not, the last good checkpoint and
    how to inspect it."""
    point = checkpoint_ref(store, run_id) if store is not None else None
    if point is None or store is None:
        return StateCorruption(f"run {run_id} stopped: {error.message}; not restored: {why}",
                               hint="start again: a live run resumes from the database and reconciles with the "
                                    "exchange before it sends anything")
    return StateCorruption(
        f"run {run_id} stopped: {error.message}; not restored: {why}; its last good checkpoint is #{point[0]} "
        f"({point[2]}, {iso_utc(point[1])})",
        hint=f"inspect it with 'trdr inspect checkpoint {point[0]} --db {store.path}'; start again to resume from it "
             "(a live run reconciles with the exchange before it sends anything)")


def rebuild_trades(engine: EngineParts, store: Store) -> bool:
    """`trades` is derived from `fills`: when the stored round trips of the run are not the ones the
    rebuilt ledger (`engine.portfolio`, after `rebuild_from_fills`) closed, replace them and say so.
    Returns True when they were replaced."""
    want = engine.portfolio.trades
    have = stored_trade_count(store, engine.run_id)
    repo = engine.checkpoints
    if have == len(want) or repo is None:
        return False
    repo.replace_trades(want)
    engine.log("warning", f"run {engine.run_id}: {have} round trip(s) stored, its fills make {len(want)}: "
                          "trades rebuilt from the fills", stored=have, rebuilt=len(want))
    return True


def check_unknown_orders(store: Store, run_id: str, exchange_client_ids: Sequence[str]) -> None:
    """The store must know every order the exchange has for this run (client ids `trdr-<run_id>-<n>`).
    One it does not know means the database is older than the exchange's history (a lost WAL or
    journal, a restored backup): resuming would reuse client order ids and book fills against the
    wrong orders.

    Raises StateCorruption (E007) naming the unknown orders and the fix."""
    prefix = f"trdr-{run_id}-"
    known = stored_client_order_ids(store, run_id)
    unknown = sorted(c for c in exchange_client_ids if c.startswith(prefix) and c not in known)
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise StateCorruption(
            f"the database {store.path} is older than the exchange's history of run {run_id}: "
            f"{len(unknown)} order(s) at the exchange are not in it ({shown})",
            hint="restore the database together with its .journal file; or close the run's position on the "
                 "exchange by hand and start with a fresh --db. Nothing was sent.")


IN_FLIGHT_FEE_ALLOWANCE = 0.01  # fees an open order's fill may add to its notional (fraction)


def check_balances(engine: EngineParts, base: float, quote: float, *, tolerance: float = 1e-8) -> list[str]:
    """Reconcile the ledger with the exchange account's balances (`base`, `quote`: available + on
    hold, in base and quote units). The account may hold more than the run (other money of the
    user's): reported, and left alone. It must not hold less than the ledger minus what the run's open
    orders may already have spent or sold at the exchange (an answer lost in a crash, fills not yet
    listed): the run could not sell what it thinks it holds, or pay for what it plans to buy.

    The ledger's overdrawn bookings (`Portfolio.overdrafts`: fills the exchange made beyond the ledger,
    booked as contributions from the account) are reported too, at every start, with what to check.

    Returns the differences reported (also logged as warnings); raises StateCorruption (E007) on a
    shortfall, with the amounts."""
    pf = engine.portfolio
    sym = engine.symbol
    base_ccy, quote_ccy = sym.split("-", 1)
    notes: list[str] = []
    short_base = pf.position - base
    short_quote = pf.cash - quote
    # Orders still open (an answer lost in a crash, fills not listed yet) may have filled at the exchange
    # before the ledger hears of it: what they can spend or sell is not a shortfall (fees: 1 % allowance).
    in_flight_quote = engine.orders.committed_cash(engine.last_price) * (1.0 + IN_FLIGHT_FEE_ALLOWANCE)
    in_flight_base = engine.orders.committed_base()
    if (short_base > max(tolerance, POSITION_EPSILON) + in_flight_base
            or short_quote > max(tolerance, 0.01) + in_flight_quote):
        raise StateCorruption(
            f"the ledger of run {engine.run_id} holds {pf.position:.8f} {base_ccy} and {pf.cash:.2f} {quote_ccy}; "
            f"the exchange account only {base:.8f} {base_ccy} and {quote:.2f} {quote_ccy}",
            hint="money left the account outside this run (or the database belongs to another account): "
                 "check the account; lower `capital` to what the account holds, or close the position by hand "
                 "and start with a fresh --db. Nothing was sent.")
    if -short_base > max(tolerance, POSITION_EPSILON):
        notes.append(f"the account holds {-short_base:.8f} {base_ccy} more than run {engine.run_id}: left alone")
    if -short_quote > 0.01:
        notes.append(f"the account holds {-short_quote:.2f} {quote_ccy} more than run {engine.run_id}'s cash: "
                     "left alone")
    for od in pf.overdrafts:  # fills the exchange made beyond the ledger, booked as contributions
        what, check = overdraft_note(sym, od)
        notes.append(f"run {engine.run_id}: {what}. Check: {check}")
    for note in notes:
        engine.log("warning", note, base=base, quote=quote, ledger_position=pf.position, ledger_cash=pf.cash)
    return notes


def _armed_before_armed_existed(order: Order) -> None:
    """A checkpoint written before the ARMED status held an armed trailing order as SUBMITTED; the
    trailing snapshot it carries is what made it armed (only the trigger book's orders have one), so
    it reads ARMED, with its history to match (store migration 3 does the same to stored rows)."""
    def armed(status: OrderStatus) -> OrderStatus:
        return OrderStatus.ARMED if status is OrderStatus.SUBMITTED else status

    order.status = OrderStatus.ARMED
    order.history = [msgspec.structs.replace(t, from_status=armed(t.from_status), to_status=armed(t.to_status))
                     for t in order.history]
