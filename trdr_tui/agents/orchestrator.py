"""The Orchestrator: runs the agent panel on each candle and turns its votes into one Decision.

It implements the engine's `DecisionSource` (`on_candle`, `weights`, `set_weight`) and, for
backtests, a batch path (`precompute` + `decision_at`) that gives the same decisions.

One candle, streaming:
1. the MarketState takes the candle (ring buffer + streaming indicators);
2. calls made `horizon` bars ago are scored; every `every` bars the adaptive weights are updated
   (published as `WeightsChanged` on `agents.weights`);
3. once warmed up, every enabled agent analyses the snapshot: plain agents inline, coroutine agents
   as concurrent tasks, `blocking` agents in a worker thread, each under its timeout. One that raises,
   returns an invalid signal or does not answer in time is skipped with E005 (`AgentFailed`,
   published on `log.warning`) and the decision goes on without it;
4. weighted consensus: each side scores Σ weight × confidence of the agents voting for it; the
   best side wins if it beats HOLD; its confidence is its share of all conviction. When the weaker
   directional side is at least `disagreement_threshold` of the stronger, the meta resolver decides;
   then a directional decision below `min_confidence` becomes HOLD;
5. the trail distance is the conviction-weighted mean of the backing agents' trails, times the
   regime multiplier, clamped to the trailing bounds;
   steps 4 and 5 are one formula, written twice: on numpy arrays of every bar at once for the batch
   path (`tally`, `conflicted`, `gate`, `consensus_trail`) and on one bar's Python floats for the
   streaming path (`_decide`, `_bar_trail`: numpy's per-call cost would be most of a one-bar call,
   and the panel runs on every candle). Both do the same operations in the same order (the agent sums
   are added in panel order), so they give the same bits; the tests hold them to it for any panel;
6. signals (`agent.signal.<id>`) and the decision (`decision.<symbol>`) are published; the decision
   log gets a row per agent and one for the consensus.

A plain (synchronous) agent cannot be interrupted once it runs: keep `analyze` cheap, or make it a
coroutine, or mark it `blocking`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from trdr_tui.agents.meta import ConflictArrays, ConflictContext, MetaResolver, Resolution, RuleBasedResolver
from trdr_tui.agents.performance import (
    AdaptiveConfig,
    AgentStats,
    PerformanceTracker,
    adapted_weight,
    batch_adapted_weights,
    batch_stats,
)
from trdr_tui.agents.protocol import (
    BUY,
    CODE_ACTIONS,
    HOLD,
    SELL,
    Agent,
    AgentContext,
    BookView,
    CandleSource,
    MarketSnapshot,
    Quote,
    TrailAdjuster,
)
from trdr_tui.config import base_weight_problem
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import Clock
from trdr_tui.core.errors import AgentFailed, ConfigError, NotAvailable
from trdr_tui.core.events import WeightsChanged
from trdr_tui.core.opevents import OperatorEvents
from trdr_tui.core.types import (
    HOLD_ACTION,
    TRAIL_BUY_ACTION,
    TRAIL_SELL_ACTION,
    Action,
    AgentSignal,
    Candle,
    Decision,
    Tick,
    Urgency,
)
from trdr_tui.market.indicators import Features, IndicatorParams, compute_features
from trdr_tui.market.state import MarketState
from trdr_tui.market.streaming import FeatureRow, feature_row
from trdr_tui.store.db import Store
from trdr_tui.store.decisions import CONSENSUS_ID, DecisionLog, save_weights

log = logging.getLogger(__name__)

WEIGHTS_TOPIC = "agents.weights"
_ACTIONS = frozenset(Action)
_URGENCIES = frozenset(Urgency)
TS_LIMIT = 2**63  # a signal's ts (ns since the epoch) is stored as a 64-bit integer
FAILURE_WINDOW_S = 60.0  # an agent's repeated failure of one kind is warned of at most once in this many seconds


class OrchestratorConfig(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    timeframe: str = "1h"
    timeout_s: float = 5.0
    min_confidence: float = 0.6
    disagreement_threshold: float = 0.4
    base_trail: float = 0.015
    min_trail: float = 0.002
    max_trail: float = 0.10
    adaptive: AdaptiveConfig = msgspec.field(default_factory=AdaptiveConfig)
    params: dict[str, Any] = msgspec.field(default_factory=dict)  # AgentContext.params for every agent


class DecisionArrays(msgspec.Struct, kw_only=True):
    """Batch decisions for every bar. Action codes: 0 HOLD, 1 TRAIL_BUY, 2 TRAIL_SELL.

    `valid` is False during warm-up (no decision: `on_candle` would return None). The per-agent
    columns follow `agent_ids`. `weights[i]` are the weights in force at bar i (adaptive).
    `agent_time_ms[k]` is agent k's batch analysis time for the whole history.
    """

    ts: npt.NDArray[np.int64]
    valid: npt.NDArray[np.bool_]
    action: npt.NDArray[np.int8]
    confidence: npt.NDArray[np.float64]
    trail_distance: npt.NDArray[np.float64]
    meta_resolved: npt.NDArray[np.bool_]
    agent_ids: tuple[str, ...]
    agent_action: npt.NDArray[np.int8]  # (n, k)
    agent_confidence: npt.NDArray[np.float64]  # (n, k)
    agent_trail: npt.NDArray[np.float64]  # (n, k)
    weights: npt.NDArray[np.float64]  # (n, k)
    trail_multiplier: npt.NDArray[np.float64]
    agent_time_ms: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.ts.shape[0])


class _Batch(msgspec.Struct, kw_only=True):
    bars: CandleArrays
    features: Features
    arrays: DecisionArrays
    regime: npt.NDArray[np.int8] | None


class Orchestrator:
    def __init__(
        self,
        agents: Sequence[Agent],
        config: OrchestratorConfig,
        *,
        bus: EventBus,
        clock: Clock,
        weights: dict[str, float] | None = None,
        params: IndicatorParams | None = None,
        resolver: MetaResolver | None = None,
        store: Store | None = None,
        decision_log: DecisionLog | None = None,
        candles: CandleSource | None = None,
        keep_weights: bool = True,
    ) -> None:
        ids = [a.id for a in agents]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"an agent id appears twice in the panel: {ids}", where="[agents] enabled")
        self.agents = list(agents)
        self.config = config
        self.bus = bus
        self.clock = clock
        self.store = store
        self.keep_weights = keep_weights
        self.decision_log = decision_log
        self.resolver: MetaResolver = resolver or RuleBasedResolver()
        self._fallback_resolver = RuleBasedResolver()
        self.params = params or IndicatorParams()
        self.state = MarketState(config.symbol, self.params)
        given = weights or {}
        for aid, w in given.items():
            _check_weight(aid, w, config.adaptive.max_weight)
        self._base = {a.id: float(given.get(a.id, 1.0)) for a in self.agents}
        self._weights = dict(self._base)
        self.tracker = PerformanceTracker(ids, config.adaptive.horizon)
        self._adjuster: TrailAdjuster | None = next((a for a in self.agents if isinstance(a, TrailAdjuster)), None)
        self._adjuster_id = getattr(self._adjuster, "id", None)
        self._by_id = {a.id: a for a in self.agents}
        self._signal_topics = {a.id: f"agent.signal.{a.id}" for a in self.agents}
        self._decision_topic = f"decision.{config.symbol}"
        self._warmup = self.params.warmup
        self._panel = [(a, a.id, bool(getattr(a, "blocking", False))) for a in self.agents]
        self._symbol = config.symbol
        self.failures: deque[AgentFailed] = deque(maxlen=200)
        # an agent failing the same way every bar is one warning and a count a minute, not one a bar
        self._failure_events = OperatorEvents(window_s=FAILURE_WINDOW_S)
        self._failure_events.bind(bus, clock)
        self.last_decision: Decision | None = None
        self.last_timings: dict[str, float] = {}
        self._batch: _Batch | None = None
        # the batch path's features of a history; a caller that runs many panels on the same bars (the
        # optimizer's trials) puts a memo here
        self.features_of: Callable[[CandleArrays, IndicatorParams], Features] = compute_features
        self._weights_dirty = False
        self.book: BookView | None = None
        self.quote: Quote | None = None
        context = AgentContext(symbol=config.symbol, timeframe=config.timeframe, base_trail=config.base_trail,
                               min_trail=config.min_trail, max_trail=config.max_trail, params=dict(config.params),
                               candles=candles)
        for agent in self.agents:
            agent.initialize(context)

    # -- DecisionSource --------------------------------------------------------------------------

    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    def base_weights(self) -> dict[str, float]:
        return dict(self._base)

    def set_weight(self, agent_id: str, weight: float) -> None:
        """Set an agent's (base) weight now: published on `agents.weights` and persisted."""
        if agent_id not in self._base:
            raise ConfigError(f"no agent '{agent_id}' in the running panel",
                              hint=f"running agents: {', '.join(self._base)}")
        _check_weight(agent_id, weight, self.config.adaptive.max_weight)
        self._base[agent_id] = float(weight)
        stats = self.tracker.stats.get(agent_id, AgentStats())
        adapt = self.config.adaptive
        self._weights[agent_id] = adapted_weight(weight, stats, adapt) if adapt.enabled and stats.n else float(weight)
        self._publish_weights("user")
        self.persist_weights()

    def attach_book(self, book: BookView) -> None:
        """Give agents a read-only view of the grid and the open orders (the engine calls this once)."""
        self.book = book

    def on_tick(self, tick: Tick) -> None:
        """Between bars (paper, live): keep the top of the book for `snapshot.quote`."""
        if tick.bid is not None and tick.ask is not None and tick.symbol == self.config.symbol:
            self.quote = Quote(ts=tick.ts, bid=tick.bid, ask=tick.ask, bid_size=tick.bid_size, ask_size=tick.ask_size)

    async def on_candle(self, candle: Candle) -> Decision | None:
        state = self.state
        row = state.update(candle)
        i = state.count - 1
        self._score_and_adapt(i, row)
        if i + 1 < self._warmup:  # not `state.ready` yet
            return None
        snapshot = MarketSnapshot(symbol=self._symbol, now=self.clock.now_ns(), index=i, features=row,
                                  book=self.book, quote=self.quote, history=state.candles)
        signals, timings, waiting = self._run_agents(snapshot)
        if waiting:
            signals = await self._collect(signals, timings, waiting)
        t0 = time.perf_counter()
        decision = self._decide(row, signals)
        if not isinstance(decision, Decision):  # the resolver answered with an awaitable
            decision = await decision
        consensus_ms = (time.perf_counter() - t0) * 1e3
        self.tracker.record(i, row.ts, row.close, tuple([(s.agent_id, BUY if s.action is TRAIL_BUY_ACTION else SELL)
                                                        for s in signals if s.action is not HOLD_ACTION]))
        self._emit(decision, timings, consensus_ms)
        return decision

    # -- streaming internals ---------------------------------------------------------------------

    def _score_and_adapt(self, i: int, row: FeatureRow) -> None:
        tracker = self.tracker
        if tracker.due(i):
            for outcome in tracker.resolve(i, row.ts, row.close):
                agent = self._by_id.get(outcome.agent_id)
                if agent is not None:
                    try:
                        agent.update_performance(outcome)
                    except Exception as exc:  # an agent's bookkeeping must not stop the panel
                        self._failed(AgentFailed(agent.id, f"update_performance raised {type(exc).__name__}: {exc}"))
        adapt = self.config.adaptive
        if adapt.enabled and i >= self._warmup and i % adapt.every == 0:
            new = {a: adapted_weight(self._base[a], tracker.stats[a], adapt) for a in self._base}
            if new != self._weights:
                self._weights = new
                self._weights_dirty = True
                self._publish_weights("adaptive", ts=row.ts)

    def _run_agents(self, snapshot: MarketSnapshot) -> tuple[list[AgentSignal], dict[str, float],
                                                             list[tuple[Agent, Awaitable[Any], float]]]:
        """Run the panel on one bar: (the valid signals of the agents that answered at once, in panel
        order; ms per agent; the agents still to be awaited — coroutines and `blocking` ones — with
        their pending answer and start time, for `_collect`)."""
        signals: list[AgentSignal] = []
        timings: dict[str, float] = {}
        waiting: list[tuple[Agent, Awaitable[Any], float]] = []
        clock = time.perf_counter
        for agent, aid, blocking in self._panel:
            t0 = clock()
            try:
                if blocking:
                    waiting.append((agent, asyncio.to_thread(agent.analyze, snapshot), t0))
                    continue
                out = agent.analyze(snapshot)
            except Exception as exc:
                self._failed(AgentFailed(aid, f"analyze raised {type(exc).__name__}: {exc}"))
                continue
            if type(out) is AgentSignal:
                timings[aid] = (clock() - t0) * 1e3
                conf, trail = out.confidence, out.trail_distance
                text, ts = out.reasoning, out.ts
                if (type(out.action) is Action and out.agent_id == aid and type(conf) is float
                        and type(trail) is float and 0.0 <= conf <= 1.0 and 0.0 < trail < 1.0
                        and type(text) is str and (text.isascii() or _encodes(text)) and type(ts) is int
                        and 0 <= ts < TS_LIMIT and type(out.urgency) is Urgency):
                    signals.append(out)  # the common case, checked cheaply
                    continue
            elif inspect.isawaitable(out):
                waiting.append((agent, out, t0))
                continue
            else:
                timings[aid] = (clock() - t0) * 1e3
            checked = self._validated(agent, out)
            if checked is not None:
                signals.append(checked)
        return signals, timings, waiting

    async def _collect(self, signals: list[AgentSignal], timings: dict[str, float],
                       waiting: list[tuple[Agent, Awaitable[Any], float]]) -> list[AgentSignal]:
        """Await the pending agents of `_run_agents` concurrently, each under its timeout; adds their
        times to `timings` and returns every valid signal in panel order."""
        answers = await asyncio.gather(*(self._await_agent(a, aw) for a, aw, _ in waiting))
        done = time.perf_counter()
        results = {s.agent_id: s for s in signals}
        for (agent, _, t0), answer in zip(waiting, answers, strict=True):
            timings[agent.id] = (done - t0) * 1e3
            checked = self._validated(agent, answer) if answer is not None else None
            if checked is not None:
                results[agent.id] = checked
        return [results[a.id] for a in self.agents if a.id in results]

    async def _await_agent(self, agent: Agent, pending: Awaitable[Any]) -> Any:
        timeout = getattr(agent, "timeout_s", None) or self.config.timeout_s
        try:
            return await asyncio.wait_for(pending, timeout)
        except TimeoutError:
            self._failed(AgentFailed(agent.id, f"no answer within {timeout:g} s (timeout)"))
        except Exception as exc:
            self._failed(AgentFailed(agent.id, f"analyze raised {type(exc).__name__}: {exc}"))
        return None

    def _validated(self, agent: Agent, out: Any) -> AgentSignal | None:
        """The signal if it is valid (an action given as a plain string, and a ts of None, are normalised), else
        None + E005."""
        problem = _signal_problem(agent.id, out)
        if problem:
            self._failed(AgentFailed(agent.id, f"invalid signal rejected: {problem}"))
            return None
        if type(out.action) is not Action:
            out = msgspec.structs.replace(out, action=Action(out.action))
        if type(out.ts) is not int:  # None: no time of its own, as 0 says; a numpy integer: the same int
            out = msgspec.structs.replace(out, ts=0 if out.ts is None else int(out.ts))
        if type(out.urgency) is not Urgency:
            out = msgspec.structs.replace(out, urgency=Urgency(out.urgency))
        return out

    def _failed(self, err: AgentFailed) -> None:
        """Keep `err` (`failures`) and warn of it on the bus (`log.warning`) and in the Python log; repeats
        of the same failure of the same agent within `FAILURE_WINDOW_S` are counted and said once when
        the window ends (core/opevents.py)."""
        self.failures.append(err)
        kind = err.message.split(":", 1)[0]  # "invalid signal rejected", "analyze raised ValueError", ...
        if self._failure_events.emit(f"agent.failed:{err.agent_id}:{kind}", "warning", "agents", err.render(),
                                     code=err.code, agent=err.agent_id):
            log.warning("%s", err)

    def _decide(self, row: FeatureRow, signals: list[AgentSignal],
                resolution: Resolution | None = None) -> Decision | Awaitable[Decision]:
        """One bar's consensus of the agents that answered: the batch formula (`tally`, `conflicted`,
        `gate`, `consensus_trail`) written out on this bar's Python floats, operation for operation and
        in the same order, so both paths give the same bits (tests hold them to it).

        When the panel is split the meta resolver decides (`resolution`, when given, is its answer);
        a resolver that answers with an awaitable makes this return an awaitable of the Decision.
        """
        w = self._weights
        used: dict[str, float] = {}  # the weights of the agents that answered
        b = s = h = 0.0  # conviction per side, added in panel order as `tally` adds it
        # per side Σ conviction × trail, and Σ trail over all signals (`consensus_trail`, `_bar_trail`)
        b_trail = s_trail = h_trail = trail_sum = 0.0
        for sig in signals:
            aid = sig.agent_id
            x = used[aid] = w[aid]
            x *= sig.confidence
            t = sig.trail_distance
            trail_sum += t
            action = sig.action
            if action is TRAIL_BUY_ACTION:
                b += x
                b_trail += x * t
            elif action is TRAIL_SELL_ACTION:
                s += x
                s_trail += x * t
            else:
                h += x
                h_trail += x * t
        total = b + s + h
        mult = 1.0
        regime_name: str | None = None
        adj = self._adjuster
        if adj is not None and self._adjuster_id in used:
            code = adj.regime_code(row)
            mult, regime_name = adj.multiplier(code), adj.regime_name(code)
        if total <= 0.0:
            return Decision(ts=row.ts, action=HOLD_ACTION, confidence=0.0,
                            trail_distance=self._bar_trail(h_trail, h, trail_sum, len(signals), mult),
                            signals=tuple(signals), weights=used, reasoning="no agent has any conviction")
        # the leader strictly beats both other sides (else HOLD); its confidence is its share of all
        # conviction; the disagreement is the weaker directional side over the stronger
        if b > s and b > h:
            leader, confidence = TRAIL_BUY_ACTION, b / total
        elif s > b and s > h:
            leader, confidence = TRAIL_SELL_ACTION, s / total
        else:
            leader, confidence = HOLD_ACTION, h / total
        hi = max(b, s)
        disagreement = min(b, s) / hi if hi > 0.0 else 0.0
        action, notes, meta = leader, "", False
        cfg = self.config
        if leader is not HOLD_ACTION and disagreement >= cfg.disagreement_threshold:  # `conflicted`
            if resolution is None:
                regime_vote = next((x.action for x in signals if x.agent_id == self._adjuster_id), None)
                ctx = ConflictContext(ts=row.ts, signals=tuple(signals), weights=used, buy_score=b, sell_score=s,
                                      hold_score=h, disagreement=disagreement, leader=leader,
                                      confidence=confidence, regime=regime_name, regime_action=regime_vote)
                answer = self._resolve(ctx)
                if not isinstance(answer, Resolution):
                    return self._decide_later(row, signals, answer)
                resolution = answer
            action, confidence, meta = Action(resolution.action), float(resolution.confidence), True
            notes = f"; {resolution.reasoning}"
        # `gate`: a directional action below the minimum confidence becomes HOLD; a HOLD's confidence
        # is HOLD's share of all conviction
        min_confidence = cfg.min_confidence
        if action is not HOLD_ACTION and confidence < min_confidence:
            notes += f"; {action} at {confidence:.2f} is below the minimum confidence {min_confidence:.2f} → HOLD"
            action = HOLD_ACTION
        if action is HOLD_ACTION:
            confidence = h / total
            trail = self._bar_trail(h_trail, h, trail_sum, len(signals), mult)
        elif action is TRAIL_BUY_ACTION:
            trail = self._bar_trail(b_trail, b, trail_sum, len(signals), mult)
        else:
            trail = self._bar_trail(s_trail, s, trail_sum, len(signals), mult)
        # an Action formats as its value (a StrEnum), without the cost of reading `.value`
        if regime_name is None:
            reasoning = f"{action} {confidence:.2f}: buy {b:.2f} / sell {s:.2f} / hold {h:.2f}{notes}"
        else:
            reasoning = (f"{action} {confidence:.2f}: buy {b:.2f} / sell {s:.2f} / hold {h:.2f}; "
                         f"{regime_name} regime, trail ×{mult:g}{notes}")
        return Decision(ts=row.ts, action=action, confidence=confidence, trail_distance=trail,
                        signals=tuple(signals), weights=used, meta_resolved=meta, reasoning=reasoning)

    def _bar_trail(self, num: float, den: float, trail_sum: float, n: int, mult: float) -> float:
        """`consensus_trail` of one bar: the conviction-weighted mean of the trails of the signals for the
        chosen action (`num`: their Σ weight × confidence × trail, `den`: their Σ weight × confidence,
        both added in panel order) — the plain mean of all `n` trails (`trail_sum`) when none has
        conviction, the base trail when there is no signal — times the regime multiplier, clamped to
        the trailing bounds. The same sums in the same order as the batch (a signal against the
        action adds 0 there, which changes no bit of these non-negative sums)."""
        cfg = self.config
        if den > 0.0:
            raw = num / den
        elif n:
            raw = trail_sum / n
        else:
            raw = cfg.base_trail
        # min(max(raw × mult, min_trail), max_trail) as the builtins compare (a NaN stays NaN)
        raw *= mult
        raw = cfg.min_trail if cfg.min_trail > raw else raw
        return cfg.max_trail if cfg.max_trail < raw else raw

    async def _decide_later(self, row: FeatureRow, signals: list[AgentSignal],
                            pending: Awaitable[Any]) -> Decision:
        """`_decide` once an asynchronous resolver has answered (under the timeout)."""
        decision = self._decide(row, signals, await pending)
        assert isinstance(decision, Decision)  # a resolution was given: nothing left to await
        return decision

    def _resolve(self, ctx: ConflictContext) -> Resolution | Awaitable[Resolution]:
        """The resolver's answer, or (when it answers with an awaitable) an awaitable of it; a resolver
        that fails or answers nonsense is replaced by the rule-based one."""
        try:
            out = self.resolver.resolve(ctx)
            if inspect.isawaitable(out):
                return self._resolve_later(ctx, out)
            return self._checked_resolution(out)
        except Exception as exc:
            return self._resolver_failed(ctx, exc)

    async def _resolve_later(self, ctx: ConflictContext, pending: Awaitable[Any]) -> Resolution:
        try:
            out = await asyncio.wait_for(pending, getattr(self.resolver, "timeout_s", None) or self.config.timeout_s)
            return self._checked_resolution(out)
        except Exception as exc:
            return self._resolver_failed(ctx, exc)

    @staticmethod
    def _checked_resolution(out: Any) -> Resolution:
        if not isinstance(out, Resolution) or not (0.0 <= out.confidence <= 1.0):
            raise TypeError(f"resolver returned {out!r}")
        return out

    def _resolver_failed(self, ctx: ConflictContext, exc: Exception) -> Resolution:
        self._failed(AgentFailed(f"meta:{getattr(self.resolver, 'name', '?')}",
                                 f"resolver failed ({type(exc).__name__}: {exc}); using the rule-based one"))
        return self._fallback_resolver.resolve(ctx)

    def _emit(self, decision: Decision, timings: dict[str, float], consensus_ms: float) -> None:
        self.last_decision = decision
        self.last_timings = timings  # ms per agent for this decision, read by the API's metrics
        publish = self.bus.publish  # the events exist already: publishing to nobody costs no more than asking
        topics = self._signal_topics
        for sig in decision.signals:
            publish(topics.get(sig.agent_id) or f"agent.signal.{sig.agent_id}", sig)
        publish(self._decision_topic, decision)
        if self.decision_log is not None:
            self.decision_log.record(decision, timings, consensus_ms)

    def _publish_weights(self, source: str, ts: int | None = None) -> None:
        if self.bus.has_subscribers(WEIGHTS_TOPIC):
            self.bus.publish(WEIGHTS_TOPIC, WeightsChanged(ts=self.clock.now_ns() if ts is None else ts,
                                                           weights=dict(self._weights), source=source))

    def persist_weights(self) -> None:
        """Write the current weights to `agent_weights` (user changes do this at once); a panel built with
        `keep_weights=False` (a backtest, a replay) writes nothing there."""
        if self.store is not None and self.keep_weights:
            save_weights(self.store, self._weights, self.clock.now_ns())
        self._weights_dirty = False

    def flush(self) -> None:
        """Write what is buffered: decision-log rows and weights changed by adaptation."""
        if self.decision_log is not None:
            self.decision_log.flush()
        if self._weights_dirty:
            self.persist_weights()

    async def close(self) -> None:
        self.flush()
        for agent in self.agents:
            try:
                agent.shutdown()
            except Exception as exc:
                self._failed(AgentFailed(agent.id, f"shutdown raised {type(exc).__name__}: {exc}"))
        self._failure_events.flush()  # the repeats counted since their last warning

    # -- checkpoints -----------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        return {
            "market": self.state.get_state(),
            "base_weights": dict(self._base),
            "weights": dict(self._weights),
            "performance": self.tracker.get_state(),
            "agents": {a.id: a.get_state() for a in self.agents},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.state.set_state(state.get("market", {}))
        self._base.update({k: float(v) for k, v in state.get("base_weights", {}).items() if k in self._base})
        self._weights.update({k: float(v) for k, v in state.get("weights", {}).items() if k in self._weights})
        self.tracker.set_state(state.get("performance", {}))
        for agent in self.agents:
            if agent.id in state.get("agents", {}):
                agent.set_state(state["agents"][agent.id])

    # -- batch (backtests) -----------------------------------------------------------------------

    def precompute(self, bars: CandleArrays) -> DecisionArrays:
        """Every bar's decision at once (numpy). Equal to streaming `on_candle` over the same bars.

        Needs every agent to implement `analyze_batch` and the resolver `resolve_batch`; otherwise it
        raises NotAvailable and the run should use `on_candle`. The decision log, if any, gets every
        row in one insert (agent rows carry no reasoning text; `decision_at(i)` rebuilds it).
        """
        missing = [a.id for a in self.agents if not hasattr(a, "analyze_batch")]
        if missing:
            raise NotAvailable(f"agents without a batch mode: {', '.join(missing)}",
                               hint="run the backtest in streaming mode (on_candle per bar)")
        readers = [a.id for a in self.agents if getattr(a, "reads_book", False)]
        if readers and self.book is not None:
            raise NotAvailable(f"agents that read the grid and open orders: {', '.join(readers)}",
                               hint="the grid depends on the decisions: the run streams bar by bar")
        if not hasattr(self.resolver, "resolve_batch"):
            raise NotAvailable(f"meta resolver '{self.resolver.name}' has no batch mode",
                               hint="run the backtest in streaming mode (on_candle per bar)")
        features = self.features_of(bars, self.params)
        n, k = len(bars), len(self.agents)
        act = np.zeros((n, k), dtype=np.int8)
        conf = np.zeros((n, k), dtype=np.float64)
        trail = np.zeros((n, k), dtype=np.float64)
        times = np.zeros(k, dtype=np.float64)
        for j, agent in enumerate(self.agents):
            t0 = time.perf_counter()
            out = agent.analyze_batch(features)  # type: ignore[attr-defined]
            times[j] = (time.perf_counter() - t0) * 1e3
            problem = _batch_problem(out, n)
            if problem:
                err = AgentFailed(agent.id, f"invalid batch signals rejected: {problem}")
                self._failed(err)
                raise NotAvailable(err.render(), hint="run the backtest in streaming mode (on_candle per bar)")
            act[:, j], conf[:, j], trail[:, j] = out.action, out.confidence, out.trail
        valid = np.arange(n) + 1 >= self.params.warmup  # as MarketState.ready
        weights = self._batch_weights(bars.close, act, valid)
        regime, mult = self._batch_regime(features)
        arrays = self._batch_consensus(bars.ts, valid, act, conf, trail, weights, regime, mult, times)
        self._batch = _Batch(bars=bars, features=features, arrays=arrays, regime=regime)
        if self.decision_log is not None:
            self._log_batch(arrays)
        return arrays

    def _batch_weights(self, close: npt.NDArray[np.float64], act: npt.NDArray[np.int8],
                       valid: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
        n = act.shape[0]
        ids = [a.id for a in self.agents]
        weights = np.tile(np.array([self._weights[a] for a in ids], dtype=np.float64), (n, 1))
        adapt = self.config.adaptive
        if not adapt.enabled:
            return weights
        first = -(-self.params.warmup // adapt.every) * adapt.every  # first multiple of `every` ≥ warmup
        updates = np.arange(first, n, adapt.every)
        if updates.size == 0:
            return weights
        known = updates - adapt.horizon  # calls resolved by each update bar: those made at bars ≤ known
        seen = known >= 0
        at = np.where(seen, known, 0)
        span = np.minimum(updates + adapt.every, n) - updates
        for j, aid in enumerate(ids):
            counts, hits, sums = batch_stats(close, act[:, j], valid, adapt.horizon)
            w = batch_adapted_weights(self._base[aid], np.where(seen, counts[at], 0),
                                      np.where(seen, hits[at], 0), np.where(seen, sums[at], 0.0), adapt)
            weights[first:, j] = np.repeat(w, span)
        return weights

    def _batch_regime(self, features: Features) -> tuple[npt.NDArray[np.int8] | None, npt.NDArray[np.float64]]:
        n = len(features)
        if self._adjuster is None:
            return None, np.ones(n)
        codes = self._adjuster.regime_codes(features)
        return codes, self._adjuster.multipliers(codes)

    def _batch_consensus(self, ts: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_], act: npt.NDArray[np.int8],
                         conf: npt.NDArray[np.float64], trail: npt.NDArray[np.float64],
                         weights: npt.NDArray[np.float64], regime: npt.NDArray[np.int8] | None,
                         mult: npt.NDArray[np.float64], times: npt.NDArray[np.float64]) -> DecisionArrays:
        n = act.shape[0]
        cfg = self.config
        votes = tally(act, conf, weights)
        meta = valid & conflicted(votes, cfg.disagreement_threshold)
        action, confidence = votes.leader.copy(), votes.confidence.copy()
        if meta.any():
            regime_j = next((j for j, a in enumerate(self.agents) if a.id == self._adjuster_id), None)
            regime_action = act[:, regime_j] if regime_j is not None else np.zeros(n, dtype=np.int8)
            volatile = np.zeros(n, dtype=bool)
            if regime is not None and self._adjuster is not None:
                names = np.array([self._adjuster.regime_name(int(c)) for c in range(int(regime.max()) + 1)])
                volatile = names[regime] == "volatile"
            ctx = ConflictArrays(buy_score=votes.buy, sell_score=votes.sell, hold_score=votes.hold,
                                 disagreement=votes.disagreement, leader=votes.leader, confidence=votes.confidence,
                                 volatile=volatile, regime_action=regime_action)
            m_action, m_conf = self.resolver.resolve_batch(ctx)  # type: ignore[attr-defined]
            action = np.where(meta, m_action, action).astype(np.int8)
            confidence = np.where(meta, m_conf, confidence)
        action, confidence = gate(votes, action, confidence, cfg.min_confidence)
        trail_d = consensus_trail(act, conf, weights, trail, action, mult, base_trail=cfg.base_trail,
                                  min_trail=cfg.min_trail, max_trail=cfg.max_trail)
        action[~valid] = HOLD
        confidence = np.where(valid, confidence, 0.0)
        return DecisionArrays(ts=ts, valid=valid, action=action, confidence=confidence, trail_distance=trail_d,
                              meta_resolved=meta, agent_ids=tuple(a.id for a in self.agents), agent_action=act,
                              agent_confidence=conf, agent_trail=trail, weights=weights, trail_multiplier=mult,
                              agent_time_ms=times)

    @property
    def batch_arrays(self) -> DecisionArrays | None:
        """The last `precompute` result (None before one)."""
        return self._batch.arrays if self._batch is not None else None

    def decision_at(self, i: int) -> Decision | None:
        """Bar i's decision from `precompute`, with every agent's signal and reasoning rebuilt.

        Advances the published weights to those in force at bar i (publishing `WeightsChanged` when
        adaptation changed them), like the streaming path. None during warm-up.
        """
        if self._batch is None:
            raise RuntimeError("decision_at needs precompute(bars) first")
        a = self._batch.arrays
        if not a.valid[i]:
            return None
        w_row = {aid: float(a.weights[i, j]) for j, aid in enumerate(a.agent_ids)}
        if w_row != self._weights:
            self._weights = w_row
            self._weights_dirty = True
            self._publish_weights("adaptive", ts=int(a.ts[i]))
        row = feature_row(self._batch.features, i)
        snapshot = MarketSnapshot(symbol=self.config.symbol, now=self.clock.now_ns(), index=i, features=row)
        signals: list[AgentSignal] = []
        for j, agent in enumerate(self.agents):
            # the batch arrays are the record; the agent's own words come from `explain` or a streaming call
            words, urgency = _reasoning_of(agent, snapshot, self._batch.features)
            signals.append(AgentSignal(agent_id=agent.id, action=CODE_ACTIONS[int(a.agent_action[i, j])],
                                       confidence=float(a.agent_confidence[i, j]),
                                       trail_distance=float(a.agent_trail[i, j]), reasoning=words, urgency=urgency,
                                       ts=int(a.ts[i])))
        action = CODE_ACTIONS[int(a.action[i])]
        head = f"{action.value} {float(a.confidence[i]):.2f} (batch)"
        if self._batch.regime is not None and self._adjuster is not None:
            name = self._adjuster.regime_name(int(self._batch.regime[i]))
            head += f"; {name} regime, trail ×{float(a.trail_multiplier[i]):g}"
        if a.meta_resolved[i]:
            head += "; meta-resolved"
        decision = Decision(ts=int(a.ts[i]), action=action, confidence=float(a.confidence[i]),
                            trail_distance=float(a.trail_distance[i]), signals=tuple(signals), weights=w_row,
                            meta_resolved=bool(a.meta_resolved[i]), reasoning=head)
        self.last_decision = decision
        return decision

    def _log_batch(self, a: DecisionArrays) -> None:
        assert self.decision_log is not None
        idx = np.flatnonzero(a.valid)
        m = idx.size
        if m == 0:
            return
        k = len(a.agent_ids)
        names = np.array([x.value for x in CODE_ACTIONS], dtype=object)
        per_bar_ms = a.agent_time_ms / max(len(a), 1)
        ts = np.concatenate([np.repeat(a.ts[idx][:, None], k + 1, axis=1)]).reshape(-1)
        agent_ids = np.tile(np.array([*a.agent_ids, CONSENSUS_ID], dtype=object), m)
        sig = np.concatenate([a.agent_action[idx], a.action[idx][:, None]], axis=1).reshape(-1)
        conf = np.concatenate([a.agent_confidence[idx], a.confidence[idx][:, None]], axis=1).reshape(-1)
        trail = np.concatenate([a.agent_trail[idx], a.trail_distance[idx][:, None]], axis=1).reshape(-1)
        weight = np.concatenate([a.weights[idx], np.full((m, 1), np.nan)], axis=1).reshape(-1)
        exec_ms = np.tile(np.append(per_bar_ms, np.nan), m)
        self.decision_log.write_columns({
            "run_id": np.full(m * (k + 1), self.decision_log.run_id, dtype=object), "ts": ts,
            "agent_id": agent_ids, "signal": names[sig], "confidence": conf, "trail_distance": trail,
            "weight": weight, "reasoning": np.full(m * (k + 1), None, dtype=object), "execution_time_ms": exec_ms,
        })



# -- the consensus formula over every bar (batch); `Orchestrator._decide` is the same on one bar's floats --


_SIDES = np.array([BUY, SELL, HOLD], dtype=np.int8).reshape(3, 1, 1)  # tally's order of the sides


class Tally(msgspec.Struct, frozen=True, kw_only=True):
    """The panel's votes per bar, all arrays of shape (n,): conviction per side (Σ weight × confidence
    of the agents voting it), their sum, the leading side (action code; HOLD unless a side strictly
    beats both others), the leader's share of all conviction (nan where `total` is 0) and how split
    the directional sides are (weaker / stronger, 0 when neither has conviction)."""

    buy: npt.NDArray[np.float64]
    sell: npt.NDArray[np.float64]
    hold: npt.NDArray[np.float64]
    total: npt.NDArray[np.float64]
    leader: npt.NDArray[np.int8]
    confidence: npt.NDArray[np.float64]
    disagreement: npt.NDArray[np.float64]


def _div(a: Any, b: Any) -> Any:
    """a / b elementwise with IEEE results for a zero divisor (x/0 is ±inf, 0/0 nan), without warnings."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(a, b)


def tally(act: npt.NDArray[np.int8], conf: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> Tally:
    """Count the votes of k agents on n bars: `act` action codes, `conf` confidences in [0, 1] and
    `weights` ≥ 0, each of shape (n, k). Sums are added in panel order (`_panel_sums`), so one bar
    gives the same bits whether it is counted alone (`Orchestrator._decide`) or with the whole history."""
    b, s, h = _panel_sums(np.where(act == _SIDES, weights * conf, 0.0))
    total = b + s + h
    leader = np.where((b > s) & (b > h), BUY, np.where((s > b) & (s > h), SELL, HOLD)).astype(np.int8)
    lead_conf = np.where(leader == BUY, _div(b, total), np.where(leader == SELL, _div(s, total), _div(h, total)))
    hi = np.maximum(b, s)
    disagreement = np.where(hi > 0.0, _div(np.minimum(b, s), hi), 0.0)
    return Tally(buy=b, sell=s, hold=h, total=total, leader=leader, confidence=lead_conf,
                 disagreement=disagreement)


def _panel_sums(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Σ over the last axis (the agents), added strictly left to right from 0.0: shape (..., n, k) →
    (..., n). Not `sum`: numpy sums pairwise, whose last bits depend on k and on the memory layout."""
    out = np.zeros(x.shape[:-1])
    per_agent = np.moveaxis(x, -1, 0).copy()  # each agent's values contiguous: the adds below run faster
    for j in range(x.shape[-1]):  # one whole-array add per agent (an accumulate along a short axis is slow)
        out = out + per_agent[j]
    return out


def conflicted(votes: Tally, threshold: float) -> npt.NDArray[np.bool_]:
    """Bars the meta resolver decides: a directional leader while the weaker directional side has at
    least `threshold` (0–1) of the stronger one's conviction."""
    split: npt.NDArray[np.bool_] = (votes.total > 0.0) & (votes.leader != HOLD) & (votes.disagreement >= threshold)
    return split


def gate(votes: Tally, action: npt.NDArray[np.int8], confidence: npt.NDArray[np.float64],
         min_confidence: float) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float64]]:
    """The final (action, confidence) per bar from the chosen ones (shape (n,)): a directional action
    below `min_confidence` becomes HOLD; a HOLD's confidence is HOLD's share of all conviction; a bar
    where no agent has conviction is HOLD at 0. Returns new arrays."""
    action = np.where((action != HOLD) & (confidence < min_confidence), HOLD, action).astype(np.int8)
    confidence = np.where(action == HOLD, _div(votes.hold, votes.total), confidence)
    empty = votes.total <= 0.0
    return np.where(empty, HOLD, action).astype(np.int8), np.where(empty, 0.0, confidence)


def consensus_trail(act: npt.NDArray[np.int8], conf: npt.NDArray[np.float64], weights: npt.NDArray[np.float64],
                    trail: npt.NDArray[np.float64], action: npt.NDArray[np.int8], mult: npt.NDArray[np.float64], *,
                    base_trail: float, min_trail: float, max_trail: float) -> npt.NDArray[np.float64]:
    """Trail distance per bar (fraction of price, shape (n,)): the conviction-weighted mean of the
    trails of the agents backing `action` — the plain mean of all k trails when none of them has
    conviction, `base_trail` when k is 0 — times the regime multiplier `mult`, clamped to
    [min_trail, max_trail]. `act`, `conf`, `weights`, `trail` have shape (n, k)."""
    k = act.shape[1]
    backing = np.where(act == action[:, None], weights * conf, 0.0)
    num, den, trail_sum = _panel_sums(np.stack((backing * trail, backing, trail)))
    plain = trail_sum / k if k else np.full(act.shape[0], base_trail)
    raw = np.where(den > 0.0, _div(num, den), plain)
    out: npt.NDArray[np.float64] = np.minimum(np.maximum(raw * mult, min_trail), max_trail)
    return out


def _batch_problem(out: Any, n: int) -> str:
    try:
        action, conf, trail = (np.asarray(x) for x in (out.action, out.confidence, out.trail))
    except AttributeError:
        return f"expected SignalArrays, got {type(out).__name__}"
    if action.shape != (n,) or conf.shape != (n,) or trail.shape != (n,):
        return f"arrays must have shape ({n},), got {action.shape}, {conf.shape}, {trail.shape}"
    if not np.isin(action, (HOLD, BUY, SELL)).all():
        return "action codes must be 0 (HOLD), 1 (TRAIL_BUY) or 2 (TRAIL_SELL)"
    if not ((conf >= 0.0) & (conf <= 1.0)).all():
        return f"confidence outside [0, 1] at bar {int(np.flatnonzero(~((conf >= 0.0) & (conf <= 1.0)))[0])}"
    if not ((trail > 0.0) & (trail < 1.0)).all():
        return f"trail distance outside (0, 1) at bar {int(np.flatnonzero(~((trail > 0.0) & (trail < 1.0)))[0])}"
    return ""


def _reasoning_of(agent: Agent, snapshot: MarketSnapshot, features: Features) -> tuple[str, Urgency]:
    """An agent's own words (and urgency) for a batch bar: its `explain(features, i)` when it has one
    (agents with windows of their own), else a synchronous `analyze` of the bar."""
    explain = getattr(agent, "explain", None)
    try:
        if explain is not None:
            words, urgency = explain(features, snapshot.index)
            return str(words), Urgency(urgency)
        out = agent.analyze(snapshot)
    except Exception as exc:
        return f"(no reasoning: analyze raised {type(exc).__name__})", Urgency.NORMAL
    if isinstance(out, AgentSignal):
        return out.reasoning, out.urgency
    if inspect.iscoroutine(out):
        out.close()
    return "(batch signal)", Urgency.NORMAL


def _check_weight(agent_id: str, weight: float, max_weight: float) -> None:
    problem = base_weight_problem(agent_id, weight, max_weight)
    if problem is not None:
        raise ConfigError(problem, hint="use e.g. 1.0 (neutral), 2.0 (double say) or 0 (mute)")


def _signal_problem(agent_id: str, out: Any) -> str:
    if not isinstance(out, AgentSignal):
        return f"expected an AgentSignal, got {type(out).__name__}"
    if out.agent_id != agent_id:
        return f"agent_id is '{out.agent_id}'"
    if not isinstance(out.action, str) or out.action not in _ACTIONS:
        return f"action {out.action!r} is not TRAIL_BUY, TRAIL_SELL or HOLD"
    if not (isinstance(out.confidence, (int, float)) and 0.0 <= out.confidence <= 1.0):
        return f"confidence {out.confidence!r} is not in [0, 1]"
    if not (isinstance(out.trail_distance, (int, float)) and math.isfinite(out.trail_distance)
            and 0.0 < out.trail_distance < 1.0):
        return f"trail distance {out.trail_distance!r} is not a fraction in (0, 1)"
    if not isinstance(out.reasoning, str):
        return f"reasoning is {type(out.reasoning).__name__}, not text"
    if not _encodes(out.reasoning):
        return "reasoning is not valid Unicode text (it holds a lone surrogate)"
    ts = out.ts
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int | np.integer) or not 0 <= ts < TS_LIMIT):
        return f"ts {ts!r} is not a time in ns since the epoch (0 or None: the bar's)"
    if not isinstance(out.urgency, str) or out.urgency not in _URGENCIES:
        return f"urgency {out.urgency!r} is not low, normal or high"
    return ""


def _encodes(text: str) -> bool:
    """Whether `text` is valid Unicode (UTF-8 encodable: no lone surrogate), as the store and the JSON
    logs need it."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
