"""`build_orchestrator`: the one way the engine, the CLI and the tests assemble the agent panel."""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from trdr_tui.agents.ai.pattern import AIPatternAgent
from trdr_tui.agents.ai.resolver import AIMetaResolver
from trdr_tui.agents.ai.service import ClaudeService
from trdr_tui.agents.ensemble import EnsembleDecisionSource, EnsembleModel
from trdr_tui.agents.experimental.rl import QPolicy
from trdr_tui.agents.meta import MetaResolver
from trdr_tui.agents.orchestrator import WEIGHTS_TOPIC, Orchestrator, OrchestratorConfig
from trdr_tui.agents.performance import AdaptiveConfig
from trdr_tui.agents.protocol import CandleSource
from trdr_tui.agents.registry import AgentRegistry
from trdr_tui.agents.sources import StoredCandles
from trdr_tui.config import AIMode, Settings
from trdr_tui.core.bus import EventBus
from trdr_tui.core.clock import Clock, WallClock
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.events import LogEvent, WeightsChanged
from trdr_tui.market.indicators import IndicatorParams
from trdr_tui.store.db import Store
from trdr_tui.store.decisions import DecisionLog, load_weights
from trdr_tui.store.sessions import ParameterRepository

log = logging.getLogger(__name__)


def build_orchestrator(
    settings: Settings,
    *,
    bus: EventBus,
    clock: Clock,
    store: Store | None = None,
    run_id: str | None = None,
    log_batch_size: int = 1,
    restore_weights: bool = False,
    registry: AgentRegistry | None = None,
    resolver: MetaResolver | None = None,
    candles: CandleSource | None = None,
    ai: ClaudeService | None = None,
    ai_mode: AIMode = "live",
) -> Orchestrator:
    """The enabled agents of `[agents]`, weighted and configured from the (resolved) settings.

    - `store` + `run_id`: decisions are logged to `agent_decisions` (`log_batch_size` rows per
      insert: 1 for paper/live, e.g. `settings.backtest.batch_size` for backtests) and weight
      changes are persisted in `agent_weights` if `restore_weights`.
    - `restore_weights`: start from the weights saved in `agent_weights` and save changes there (a real
      paper/live session); backtests and replays leave it off so that they depend on the config alone and
      never change what a paper/live session starts with.
    - `candles`: where agents read stored candles of other products (the correlation agent's
      reference); default: the `store`'s candles, if a store is given.
    - An enabled plugin that failed to load is reported (log + `log.warning` event) and skipped;
      an enabled id nobody provides is a ConfigError.
    - Claude (docs/ai.md): when `ai_pattern` is enabled or `[ai] meta_resolver` is on, one
      `ClaudeService` (`ai`, or one built from `[ai]` in `ai_mode`: off | cache | live) serves the
      agent and the meta-resolver; its cache lives in `store` (a throwaway one without).
    """
    cfg = settings.agents
    registry = registry or AgentRegistry()
    agents = []
    for agent_id in cfg.enabled:
        if agent_id in registry.ids():
            agents.append(registry.create(agent_id))
            continue
        failed = registry.failed(agent_id)
        if failed is None:
            raise registry.unknown(agent_id)
        message = f"[E005] agent '{agent_id}' ({failed.target}) failed to load and is skipped: {failed.error}"
        log.warning("%s", message)
        bus.publish("log.warning", LogEvent(ts=clock.now_ns(), level="warning", source="agents", message=message,
                                            fields={"code": "E005", "agent": agent_id}))
    known = set(registry.ids()) | {e.id for e in registry.errors}
    for agent_id in cfg.weights:
        if agent_id not in known:
            raise ConfigError(f"weight given for unknown agent '{agent_id}'", where="[agents.weights]",
                              hint=registry.unknown(agent_id).hint)
    weights = {a.id: cfg.weights.get(a.id, 1.0) for a in agents}
    if restore_weights and store is not None:
        # a saved weight above a since-lowered `max_weight` starts at the cap (base_weight_problem)
        weights.update({a: min(w, cfg.max_weight) for a, w in load_weights(store, [a.id for a in agents]).items()})
    config = OrchestratorConfig(
        symbol=settings.symbol, timeframe=settings.timeframe, timeout_s=cfg.timeout_seconds,
        min_confidence=cfg.min_confidence, disagreement_threshold=cfg.disagreement_threshold,
        base_trail=settings.trailing.distance, min_trail=settings.trailing.min_distance,
        max_trail=settings.trailing.max_distance,
        adaptive=AdaptiveConfig(enabled=cfg.adaptive_weights, min_weight=cfg.min_weight, max_weight=cfg.max_weight),
        params={"reference_symbol": cfg.reference_symbol, "seed": settings.backtest.seed,
                "rl_policy": _version(cfg.rl_policy, store, "rl_policy", settings) if "rl" in cfg.enabled else None},
    )
    use_meta = settings.ai.meta_resolver and ai_mode != "off" and resolver is None
    if ai is None and (use_meta or AIPatternAgent.id in [a.id for a in agents]):
        ai = ClaudeService.from_settings(settings, mode=ai_mode, store=store if store is not None else Store(),
                                         clock=WallClock(), bus=bus)
    if ai is not None:
        config = msgspec.structs.replace(config, params={**config.params, "ai": ai})
        if use_meta:
            resolver = AIMetaResolver(ai, symbol=settings.symbol)
    if candles is None and store is not None:
        candles = StoredCandles(store)
    decision_log = DecisionLog(store, run_id, batch_size=log_batch_size) if store is not None and run_id else None
    orch = Orchestrator(agents, config, bus=bus, clock=clock, weights=weights,
                        params=IndicatorParams(swing_lookback=settings.grid.swing_lookback), resolver=resolver,
                        store=store, decision_log=decision_log, candles=candles, keep_weights=restore_weights)
    if isinstance(resolver, AIMetaResolver):
        resolver.attach(orch.state)
    bus.publish(WEIGHTS_TOPIC, WeightsChanged(ts=clock.now_ns(), weights=orch.weights(), source="config"))
    return orch


def build_decision_source(settings: Settings, *, bus: EventBus, clock: Clock, store: Store | None = None,
                          **kwargs: Any) -> Orchestrator | EnsembleDecisionSource:
    """`build_orchestrator` (same arguments), wrapped in the ensemble when `[agents] decision_source =
    "ensemble"`: its weights come from the parameter version `[agents] ensemble_model` (needs `store`)."""
    orch = build_orchestrator(settings, bus=bus, clock=clock, store=store, **kwargs)
    cfg = settings.agents
    if cfg.decision_source != "ensemble":
        return orch
    model = _version(cfg.ensemble_model, store, "ensemble_model", settings)
    assert model is not None
    policy = _version(cfg.rl_policy, store, "rl_policy", settings)
    return EnsembleDecisionSource(orch, EnsembleModel.from_parameters(model),
                                  QPolicy.from_parameters(policy) if policy else None)


def _version(ident: str, store: Store | None, key: str, settings: Settings) -> dict[str, object] | None:
    """The parameters of the version `ident` ([agents] `key`), None when none is set. Read from `store`,
    else (a backtest's engine has no store of its own) from the database named by TRDR_DB, `[store]
    path` or the default path."""
    if not ident:
        return None
    if store is not None:
        return dict(ParameterRepository(store).find(ident).parameters)
    import os

    from trdr_tui.store import default_db_path

    path = os.environ.get("TRDR_DB") or settings.store.path or str(default_db_path())
    if not os.path.isfile(path):
        raise ConfigError(f"[agents] {key} = '{ident}' names a parameter version, but there is no database at {path}",
                          hint="set TRDR_DB (or [store] path) to the database 'trdr train' saved it in")
    with Store(path) as db:  # the configuration of any connection this process already has open
        return dict(ParameterRepository(db).find(ident).parameters)


