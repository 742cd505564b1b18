"""The one per-bar step: what every closed bar goes through, in backtests, paper and live alike.

For bar `i` (opened at `ts`, closed at `now`, both ns), in this order (DESIGN.md "the way one market
update travels"):

1. a simulated Clock moves to `now`; due timers (checkpoints) fire;
2. `market.candle.<symbol>` is published (only when someone listens);
3. a simulating executor (`BarExecutor`) matches resting limit orders against the bar;
4. armed trailing orders walk the bar's price path (`close`: the close only; `ohlc-path`: open → nearer
   extreme → other extreme → close) and fire → fills → ledger;
5. the stop-loss rule closes a losing position;
6. unless paused or still in the warm-up (`trade_from_ns`), the policy turns the bar's decision into new
   orders (sized, risk-checked);
7. the portfolio is marked (peak equity, daily loss window) and `portfolio.<symbol>` published.

A `BarStep` is built for a stretch of bars during which the listeners do not change (a backtest chunk, or
one streamed candle): it looks the listeners and the parts up once, and `run` loops over its bars on
plain locals, which keeps the backtest loop fast. The decision comes from outside: the batch loop reads it from the
DecisionSource's precomputed arrays, the streaming loop awaits it per candle.
"""

from __future__ import annotations

from collections.abc import Sequence

from trdr_tui.core.clock import SimClock
from trdr_tui.core.errors import RiskLimitExceeded
from trdr_tui.core.events import CandleEvent
from trdr_tui.core.types import Action, Candle, Decision
from trdr_tui.engine.protocols import BarExecutor, EngineParts
from trdr_tui.trading.trailing import path_prices


class BarStep:
    """The per-bar step for one engine, valid until its listeners or parts change (see the module doc)."""

    def __init__(self, engine: EngineParts) -> None:
        self.engine = engine
        bus = engine.bus
        self.bus_version = bus.version
        self.executor = engine.executor
        self.candle_subs = bus.has_subscribers(engine.candle_topic)
        self.portfolio_subs = bus.has_subscribers(engine.portfolio_topic)
        self.decision_subs = bus.has_subscribers(engine.decision_topic)
        executor = engine.executor
        self.on_bar = executor.on_bar if isinstance(executor, BarExecutor) else None

    def current(self, engine: EngineParts) -> bool:
        """Whether this step is still valid for `engine` (same listeners, same executor)."""
        return engine is self.engine and engine.bus.version == self.bus_version and engine.executor is self.executor

    def run(self, first: int, start: int, stop: int, ts_s: Sequence[int], now_s: Sequence[int], o_s: Sequence[float],
            h_s: Sequence[float], l_s: Sequence[float], c_s: Sequence[float], v_s: Sequence[float],
            decision_s: Sequence[Decision | None]) -> None:
        """Elements `start` … `stop - 1` of the sequences are bars `first`, `first + 1`, … of the run: open
        and close times (ns), open/high/low/close (quote currency), volume (base units) and the bar's
        decision (None: no decision this bar)."""
        engine = self.engine
        clock = engine.clock
        advance = clock.advance_to if isinstance(clock, SimClock) else None
        timer = engine.polled_timer
        publish = engine.bus.publish
        candle_subs = self.candle_subs
        portfolio_subs = self.portfolio_subs
        decision_subs = self.decision_subs
        hold = Action.HOLD
        candle_topic = engine.candle_topic
        portfolio_topic = engine.portfolio_topic
        symbol = engine.symbol
        timeframe = engine.feed.timeframe
        orders = engine.orders
        trailing = orders.trailing
        open_orders = orders.open
        on_prices = orders.on_prices
        on_price = orders.on_price
        on_bar = self.on_bar
        policy_bar = engine.policy.on_bar
        idle_only = engine.policy.idle_only
        risk = engine.risk
        needs_marks = risk.needs_marks
        stop_loss = risk.limits.stop_loss
        pf = engine.portfolio
        close_only = engine.price_model == "close"
        state = engine.run_state
        on_decision = engine.on_decision
        close_at_stop = engine.close_at_stop
        snapshot = engine.snapshot
        i = first
        for k in range(start, stop):
            now = now_s[k]
            if advance is not None:
                advance(now)
                if timer is not None and now >= timer.next_ns:
                    timer.poll(now)
            state.bar_index = i
            h = h_s[k]
            lo = l_s[k]
            c = c_s[k]
            if candle_subs:
                publish(candle_topic, CandleEvent(symbol=symbol, timeframe=timeframe,
                                                  candle=Candle(ts_s[k], o_s[k], h, lo, c, v_s[k])))
            if on_bar is not None:
                on_bar(h, lo, c, v_s[k])
            if orders.expiring:
                orders.expire(now)
            if trailing:
                if close_only:
                    on_price(c)
                else:
                    on_prices(path_prices(o_s[k], h, lo, c))
            state.last_price = c
            if stop_loss is not None and pf.position > 0.0 and risk.stop_loss_hit(c):
                close_at_stop(c)
            decision = decision_s[k]
            if decision is not None and (decision_subs or decision.action is not hold):
                on_decision(decision)  # kept when actionable, published when someone listens
            if not state.paused and ts_s[k] >= state.trade_from_ns and not (idle_only and open_orders):
                try:  # noqa: SIM105 - try/except is the cheap form in the hot loop
                    policy_bar(now, c, decision)
                except RiskLimitExceeded:
                    pass  # recorded and published by the order manager
            if needs_marks:
                risk.on_mark(now, pf.mark(c))
            if portfolio_subs:
                publish(portfolio_topic, snapshot())
            i += 1
        state.bars_done = i
