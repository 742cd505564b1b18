"""The engine commands the API offers (REST and WebSocket alike), and the reads behind its endpoints.

Every write goes through the engine's public commands (`pause`, `resume`, `set_agent_weight`, `stop`)
or a host-supplied mode switcher — the same ones the cockpit calls — so the risk manager and the order
state machine see API actions exactly as they see the cockpit's. Errors are `ApiError`s carrying the
HTTP status and the what/how-to-fix text.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from trdr_tui.agents.orchestrator import Orchestrator
from trdr_tui.api.profiling import profiler_for
from trdr_tui.api.schemas import (
    Ack,
    AgentInfo,
    AgentList,
    AgentPerformance,
    AgentPerformanceList,
    BacktestJob,
    BacktestRequestBody,
    BacktestResults,
    CliResult,
    ConfigDoc,
    Decisions,
    ExecutionQuality,
    OrderOut,
    OrderTrace,
    Performance,
    Status,
    TradeList,
    TradeOut,
)
from trdr_tui.config import MAX_CAPITAL, Settings, convert_settings
from trdr_tui.core.errors import TrdrError
from trdr_tui.core.types import Mode, Order, OrderStatus, Side
from trdr_tui.engine.loop import Engine

ModeSwitcher = Callable[[Mode], Awaitable[None]]
"""Stops the running engine (its checkpoint written) and starts one in the given mode (paper ↔ live) on
the same market data: the cockpit's `m` switch, or the headless runner's. Raises TrdrError when the new
engine cannot be built."""
CredentialCheck = Callable[[], str | None]
"""None when live trading may start; otherwise why not (never the secret itself)."""
ProgressHook = Callable[[int, int], None]
BacktestFn = Callable[[BacktestRequestBody, ProgressHook], dict[str, Any]]
"""Runs one backtest to completion in a worker thread; returns the statistics (`trdr backtest --json` keys)."""
CliReader = Callable[[list[str]], CliResult]
"""Runs a read-only `trdr` subcommand inside this process (the one holding the database)."""

LIVE_CONFIRMATION = "live"
# Config keys a running engine takes without a restart (applied through engine commands).
LIVE_KEYS = ("agents.weights.",)
REDACTED = "***"


class ApiError(Exception):
    """A refused request: HTTP `status`, what went wrong and how to fix it."""

    def __init__(self, status: int, message: str, hint: str = "", code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
        self.code = code


@dataclass
class Hooks:
    """What the host (headless runner or cockpit) lends the API besides the engine."""

    settings: Settings
    credential_check: CredentialCheck | None = None
    mode_switcher: ModeSwitcher | None = None
    backtest: BacktestFn | None = None
    cli_reader: CliReader | None = None
    mode_switch_unavailable: str = "this run cannot switch mode (a replay feed trades only on paper)"


@dataclass
class Job:
    id: str
    status: str = "running"
    done: int = 0
    total: int = 0
    error: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None


def _flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(data, dict):
        if not data and prefix:
            yield prefix[:-1], {}
        for key, value in data.items():
            yield from _flatten(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], data


def order_out(order: Order) -> OrderOut:
    return OrderOut(id=order.id, client_order_id=order.client_order_id, side=order.side, type=order.type,
                    size=order.size, status=order.status, created_ts=order.created_ts, price=order.price,
                    filled_size=order.filled_size, avg_fill_price=order.avg_fill_price, fees=order.fees)


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class Controller:
    """The API's view of the running engine. `engine()` gives the current one (the cockpit swaps it on a
    mode switch); `started` is the monotonic time the API started, for uptime."""

    def __init__(self, engine: Callable[[], Engine], hooks: Hooks) -> None:
        self._engine = engine
        self.hooks = hooks
        self.settings = hooks.settings
        self.started = time.monotonic()
        self.jobs: dict[str, Job] = {}
        self.agent_ms: dict[str, tuple[int, float, float]] = {}  # id -> (calls, total ms, last ms)
        self._stops: set[asyncio.Task[None]] = set()

    @property
    def engine(self) -> Engine:
        return self._engine()

    def uptime(self) -> float:
        return time.monotonic() - self.started

    # -- reads -----------------------------------------------------------------------------------

    def status(self) -> Status:
        e = self.engine
        snap = e.snapshot()
        return Status(mode=e.mode, symbol=e.symbol, running=e.running, paused=e.paused,
                      stopped=e.stopped, run_id=e.run_id, bars=e.bars_done, last_price=e.last_price,
                      equity=snap.equity, position=snap.position, open_orders=len(e.orders.open),
                      fills=len(e.portfolio.fills), uptime_seconds=self.uptime(), engine_time=e.clock.now_ns())

    def ack(self, detail: str) -> Ack:
        return Ack(ok=True, detail=detail, status=self.status())

    def config(self) -> ConfigDoc:
        return ConfigDoc(config=self.public_config(self.settings))

    @staticmethod
    def public_config(settings: Settings) -> dict[str, Any]:
        """The settings as JSON, with anything secret-bearing (a webhook URL holds its token) redacted."""
        data = settings.to_dict()
        api = data.get("api", {})
        if api.get("webhook_url"):
            api["webhook_url"] = REDACTED
        return data

    def agents(self) -> AgentList:
        e = self.engine
        weights, base = e.agent_weights(), e.agent_base_weights()
        return AgentList(agents=[AgentInfo(id=a, weight=weights.get(a, w), base_weight=w) for a, w in base.items()])

    def performance(self) -> Performance:
        e = self.engine
        snap = e.snapshot()
        trades = e.portfolio.trades
        wins = sum(1 for t in trades if t.pnl > 0)
        # time-weighted with contributions taken out, as the backtests measure (Engine.performance)
        total_return, max_dd = e.performance()
        max_dd = max(max_dd, snap.drawdown)
        total = snap.realized_pnl + snap.unrealized_pnl - snap.fees  # after fees, as the cockpit's status bar
        return Performance(ts=snap.ts, equity=snap.equity, cash=snap.cash, position=snap.position,
                           price=snap.price, realized_pnl=snap.realized_pnl, unrealized_pnl=snap.unrealized_pnl,
                           total_pnl=total, total_return=total_return,
                           fees=snap.fees, drawdown=snap.drawdown, max_drawdown=max_dd, trades=len(trades),
                           wins=wins, win_rate=wins / len(trades) if trades else None)

    def trades(self, limit: int, offset: int) -> TradeList:
        trades = self.engine.portfolio.trades
        page = trades[::-1][offset:offset + limit]  # newest first
        return TradeList(total=len(trades), trades=[TradeOut(**msgspec.structs.asdict(t)) for t in page])

    def agent_performance(self) -> AgentPerformanceList:
        e = self.engine
        src = e.decisions
        weights = e.agent_weights()
        rows = []
        stats = src.tracker.stats if isinstance(src, Orchestrator) else {}
        failures: dict[str, int] = {}
        if isinstance(src, Orchestrator):
            for f in src.failures:
                failures[f.agent_id] = failures.get(f.agent_id, 0) + 1
        memory = profiler_for(src).stats if isinstance(src, Orchestrator) else {}
        for aid in e.agent_base_weights():
            st = stats.get(aid)
            calls, total_ms, last_ms = self.agent_ms.get(aid, (0, 0.0, 0.0))
            n = st.n if st is not None else 0
            mem = memory.get(aid)
            sampled = mem is not None and mem.samples > 0
            rows.append(AgentPerformance(
                id=aid, weight=weights.get(aid, 0.0), scored_calls=n, hits=st.hits if st is not None else 0,
                accuracy=st.hits / n if st is not None and n else None,
                edge=st.signed_sum / n if st is not None and n else None, failures=failures.get(aid, 0),
                last_ms=last_ms if calls else None, mean_ms=total_ms / calls if calls else None,
                mem_samples=mem.samples if mem else 0, mem_pending=mem.pending if mem else 0,
                mem_peak_kib=mem.peak_sum / mem.samples / 1024 if mem and sampled else None,
                mem_peak_max_kib=mem.peak_max / 1024 if mem and sampled else None,
                mem_retained_kib=mem.retained / 1024 if mem and sampled else None))
        return AgentPerformanceList(agents=rows)

    def profile_memory(self, agent_ids: list[str] | None, calls: int) -> AgentPerformanceList:
        """Measure the memory of the next `calls` calls of the named agents (all by default): see
        api/profiling.py. The figures appear in `agent_performance` as the calls happen."""
        e = self._live_engine()
        src = e.decisions
        if not isinstance(src, Orchestrator):
            raise ApiError(409, "this engine runs a preset without agents: there is nothing to profile")
        by_id = {a.id: a for a in src.agents}
        wanted = list(by_id) if agent_ids is None else agent_ids
        unknown = [a for a in wanted if a not in by_id]
        if unknown:
            raise ApiError(404, f"no agent {', '.join(map(repr, unknown))} in the running panel",
                           f"running agents: {', '.join(by_id) or 'none'}")
        profiler_for(src).sample([by_id[a] for a in wanted], calls)
        return self.agent_performance()

    def note_agent_times(self, timings: dict[str, float]) -> None:
        for aid, ms in timings.items():
            calls, total, _ = self.agent_ms.get(aid, (0, 0.0, 0.0))
            self.agent_ms[aid] = (calls + 1, total + ms, ms)

    def execution_quality(self) -> ExecutionQuality:
        e = self.engine
        orders = e.orders.orders
        fills = e.portfolio.fills
        slips: list[float] = []
        waits: list[float] = []
        for f in fills:
            order = orders.get(f.order_id)
            if order is None:
                continue
            ref = order.price
            if ref:
                sign = 1.0 if f.side is Side.BUY else -1.0
                slips.append(sign * (f.price - ref) / ref * 1e4)
            waits.append((f.ts - order.created_ts) / 1e9)
        failed = sum(1 for o in orders.values() if o.status in (OrderStatus.REJECTED, OrderStatus.EXPIRED))
        maker = sum(1 for f in fills if f.liquidity.value == "MAKER")
        return ExecutionQuality(orders=len(orders), fills=len(fills), maker_fills=maker, taker_fills=len(fills) - maker,
                                fees=e.portfolio.fees, avg_slippage_bps=_finite(float(np.mean(slips))) if slips else None,
                                avg_fill_seconds=_finite(float(np.mean(waits))) if waits else None,
                                failed_orders=failed, risk_rejections=len(e.orders.rejections))

    def order_trace(self, order_id: str) -> OrderTrace:
        e = self.engine
        order = e.orders.orders.get(order_id)
        if order is None:
            raise ApiError(404, f"no order '{order_id}' in this run", "list orders with GET /api/trades or the cockpit")
        timeline: list[dict[str, Any]] = [{"ts": order.created_ts, "kind": "created", "side": order.side.value,
                                           "type": order.type.value, "size": order.size, "price": order.price}]
        timeline += [{"ts": t.ts, "kind": "status", "from": t.from_status.value, "to": t.to_status.value,
                      "reason": t.reason} for t in order.history]
        timeline += [{"ts": f.ts, "kind": "fill", "price": f.price, "size": f.size, "fee": f.fee,
                      "liquidity": f.liquidity.value} for f in e.portfolio.fills if f.order_id == order_id]
        timeline.sort(key=lambda r: (r["ts"], {"created": 0, "status": 1, "fill": 2}[r["kind"]]))
        return OrderTrace(order=order_out(order), timeline=timeline)

    def decisions(self, limit: int) -> Decisions:
        recent = self.engine.record.decisions[-limit:][::-1]
        return Decisions(decisions=[msgspec.to_builtins(d) for d in recent])

    # -- writes (engine commands) ------------------------------------------------------------------

    def _live_engine(self) -> Engine:
        e = self.engine
        if e.stopped:
            raise ApiError(409, "the engine has stopped", "start trdr again for a new run")
        return e

    def pause(self) -> Ack:
        self._live_engine().pause()
        return self.ack("paused: no new orders; the feed, the ledger and open orders go on")

    def start(self) -> Ack:
        e = self._live_engine()
        if not e.paused:
            return self.ack("already trading")
        e.resume()
        return self.ack("resumed")

    def fund(self, amount: float) -> Ack:
        """A deposit (> 0) or withdrawal (< 0) of quote currency through `Engine.fund` (paper only)."""
        e = self._live_engine()
        if not (math.isfinite(amount) and amount != 0.0 and abs(amount) <= MAX_CAPITAL):
            raise ApiError(422, f"`amount` must be a non-zero amount of quote currency up to {MAX_CAPITAL:g} "
                                f"(positive: deposit, negative: withdrawal), got {amount}")
        if e.mode is Mode.LIVE:
            raise ApiError(409, "a live run books no deposits or withdrawals by hand: the exchange account's "
                                "balance is the source", "deposit or withdraw at Coinbase; trdr reads the account "
                                                         "and resizes the grid itself")
        try:
            result = e.fund(amount)
        except TrdrError as exc:  # a withdrawal above the free cash (E002): nothing changed
            raise ApiError(409, exc.message, exc.hint or "", exc.code) from None
        kind = "deposit" if amount > 0 else "withdrawal"
        return self.ack(f"{kind} of {abs(amount):,.2f} booked; equity {result.equity_before:,.2f} -> "
                        f"{result.equity_after:,.2f}; {result.cancelled} BUY order(s) re-sized")

    def stop(self) -> Ack:
        e = self._live_engine()
        task = asyncio.get_running_loop().create_task(e.stop("api"))
        self._stops.add(task)
        task.add_done_callback(self._stops.discard)
        return self.ack("stopping: the engine writes its shutdown checkpoint and ends the run")

    def set_weight(self, agent_id: str, weight: float) -> AgentList:
        e = self._live_engine()
        if agent_id not in e.agent_base_weights():
            raise ApiError(404, f"no agent '{agent_id}' in the running panel",
                           f"running agents: {', '.join(e.agent_base_weights()) or 'none'}")
        e.set_agent_weight(agent_id, weight)
        return self.agents()

    async def switch_mode(self, mode: str, confirm: str | None) -> Ack:
        e = self._live_engine()
        target = Mode(mode)
        if target is e.mode:
            return self.ack(f"already in {mode} mode")
        if target is Mode.LIVE:
            if confirm != LIVE_CONFIRMATION:
                raise ApiError(403, "switching to live trading needs an explicit confirmation",
                               'send {"mode": "live", "confirm": "live"}')
            reason = self.hooks.credential_check() if self.hooks.credential_check else "no credential check"
            if reason is not None:
                raise ApiError(403, f"live trading refused: {reason}")
        if self.hooks.mode_switcher is None:
            raise ApiError(409, self.hooks.mode_switch_unavailable)
        try:
            await self.hooks.mode_switcher(target)
        except TrdrError as exc:
            raise ApiError(409, f"could not switch to {mode}: {exc.message}", exc.hint or "", exc.code or "") from None
        return self.ack(f"switched to {mode}")

    def put_config(self, data: dict[str, Any]) -> ConfigDoc:
        """Validate `data` like the config file; apply it whole or refuse it whole (nothing changes).

        A running engine takes `agents.weights` (through `set_agent_weight`); any other changed key needs a
        restart, so the request is refused naming those keys. A redacted webhook URL sent back means "as is".
        """
        api = data.get("api")
        if isinstance(api, dict) and api.get("webhook_url") == REDACTED:
            data = {**data, "api": {**api, "webhook_url": self.settings.api.webhook_url}}
        try:
            new = convert_settings(data, "PUT /api/config")
        except TrdrError as exc:
            raise ApiError(422, exc.message, exc.hint or "", exc.code or "") from None
        old_flat = dict(_flatten(self.settings.to_dict()))
        new_flat = dict(_flatten(new.to_dict()))
        changed = sorted(k for k in old_flat.keys() | new_flat.keys() if old_flat.get(k) != new_flat.get(k))
        restart = [k for k in changed if not (k.startswith(LIVE_KEYS) or f"{k}.".startswith(LIVE_KEYS))]
        if restart:
            raise ApiError(409, f"these keys need a restart: {', '.join(restart)}; nothing was changed",
                           "edit the config file and restart trdr, or change only agents.weights here")
        weights = dict(new.agents.weights)
        if changed:
            e = self._live_engine()
            running = e.agent_base_weights()
            unknown = [a for a in weights if a not in running]
            if unknown:
                raise ApiError(409, f"agents not in the running panel: {', '.join(unknown)}; nothing was changed",
                               f"running agents: {', '.join(running) or 'none'}")
            if e.decisions is None and weights:
                raise ApiError(409, "this engine runs a preset without agents: there are no weights to set")
            for aid, w in weights.items():
                if running.get(aid) != w:
                    e.set_agent_weight(aid, w)
        self.settings = msgspec.structs.replace(
            self.settings, agents=msgspec.structs.replace(self.settings.agents, weights=weights))
        return ConfigDoc(config=self.public_config(self.settings))

    # -- backtests -------------------------------------------------------------------------------

    def start_backtest(self, request: BacktestRequestBody) -> BacktestJob:
        run = self.hooks.backtest
        if run is None:
            raise ApiError(409, "this instance has no candle data to backtest on",
                           "run trdr with --feed replay, or import candles (trdr data import)")
        if any(j.status == "running" for j in self.jobs.values()):
            raise ApiError(409, "a backtest is already running", "poll GET /api/backtest/{id}/status")
        job = Job(id=uuid.uuid4().hex[:12])

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        async def work() -> None:
            try:
                job.stats = await asyncio.to_thread(run, request, progress)
                job.status = "done"
            except TrdrError as exc:
                job.status, job.error = "failed", exc.render()
            except Exception as exc:  # reported to the client, never raised into the server
                job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"

        job.task = asyncio.get_running_loop().create_task(work())
        self.jobs[job.id] = job
        return self.job_status(job.id)

    def _job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"no backtest '{job_id}'", "start one with POST /api/backtest/run")
        return job

    def job_status(self, job_id: str) -> BacktestJob:
        job = self._job(job_id)
        return BacktestJob(id=job.id, status=job.status, done=job.done, total=job.total,  # type: ignore[arg-type]
                           error=job.error)

    def job_results(self, job_id: str) -> BacktestResults:
        job = self._job(job_id)
        if job.status == "running":
            raise ApiError(409, f"backtest '{job_id}' is still running", "poll GET /api/backtest/{id}/status")
        if job.status == "failed":
            raise ApiError(409, f"backtest '{job_id}' failed: {job.error}")
        return BacktestResults(id=job.id, stats=job.stats)

    async def close(self) -> None:
        for job in self.jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
        if self._stops:
            await asyncio.gather(*self._stops, return_exceptions=True)
