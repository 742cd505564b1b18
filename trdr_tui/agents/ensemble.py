"""The ensemble decision source (PRD §12.4): the panel, the Q-learning agent and a statistical forecaster,
combined with weights learned on a training window.

Members, each a signed score per bar in [-1, 1] (+confidence for a buy, −confidence for a sell, 0 for
HOLD):
- `panel`: the orchestrator's decision (the LLM agent, when enabled, votes inside the panel);
- `rl`: the Q-learning agent with the policy of `[agents] rl_policy` (left out when none is set);
- `ar`: an autoregressive model of hourly log returns, AR(p) with a constant, fitted by OLS with
  statsmodels (`statsmodels.tsa.ar_model.AutoReg`) on the training window; its one-bar forecast
  divided by the training forecasts' standard deviation, through tanh.

Why AR(p) from statsmodels: it is the reference implementation of the classical model, fits in
milliseconds, forecasts with a fixed linear filter (the same numbers in batch and streaming, no
library call per bar) and is transparent about how little linear predictability hourly returns have;
an LSTM (the PRD's sketch) would need a deep-learning stack for a signal with no evidence of more skill.

Weights (`fit_ensemble`): non-negative least squares (scipy.optimize.nnls, Lawson & Hanson 1974) of the
next `horizon` bars' log return on the members' scores over the training window, normalised to sum
to 1. The ensemble score e = Σ w·s is divided by its training standard deviation; |z| ≥ `z_entry` is
a decision in its sign (TRAIL_BUY / TRAIL_SELL) with confidence min(0.5 + 0.25 (|z| − z_entry), 0.95);
otherwise HOLD. A member whose weight is 0 adds nothing: the weights say which members earned a say.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from trdr_tui.agents.experimental.base import EXTRA, optional_import
from trdr_tui.agents.experimental.rl import QPolicy, RLTradingAgent
from trdr_tui.agents.orchestrator import Orchestrator
from trdr_tui.agents.protocol import (
    ACTION_CODES,
    BUY,
    CODE_ACTIONS,
    HOLD,
    SELL,
    AgentContext,
    BookView,
    MarketSnapshot,
)
from trdr_tui.core.arrays import CandleArrays
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.types import Action, AgentSignal, Candle, Decision, Tick
from trdr_tui.market.indicators import Features, compute_features

F64 = npt.NDArray[np.float64]


class EnsembleModel(msgspec.Struct, frozen=True, kw_only=True):
    """What `fit_ensemble` learned: member weights (sum 1, ≥ 0), the AR coefficients (constant first,
    then lags 1…p), the scale of the AR forecasts and of the ensemble score, and the training span."""

    members: list[str]
    weights: list[float]
    ar_params: list[float]
    ar_scale: float
    score_scale: float
    horizon: int
    z_entry: float
    train_start: int
    train_end: int

    def to_parameters(self) -> dict[str, Any]:
        return {f"ensemble.{k}": v for k, v in msgspec.to_builtins(self).items()}

    @classmethod
    def from_parameters(cls, params: dict[str, Any]) -> EnsembleModel:
        raw = {k[9:]: v for k, v in params.items() if k.startswith("ensemble.")}
        try:
            return msgspec.convert(raw, cls)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"not an ensemble version: {exc}",
                              hint="fit one with 'trdr train ensemble --data FILE'") from exc


def ar_forecasts(log_close: F64, params: F64) -> F64:
    """One-bar AR(p) forecasts of the next log return for every bar (NaN until p returns exist):
    f[t] = c + Σ_k φ_k r[t - k + 1], r the log returns. Shape like `log_close`."""
    r = np.diff(log_close)
    p = params.shape[0] - 1
    out = np.full(log_close.shape[0], np.nan)
    if r.shape[0] >= p:
        lags = np.lib.stride_tricks.sliding_window_view(r, p)[:, ::-1]  # row j: r[j+p-1], …, r[j]
        out[p:] = params[0] + lags @ params[1:]
    return out


def fit_ar(log_close: F64, lags: int) -> F64:
    """AR(`lags`) with a constant on the log returns, by OLS (statsmodels AutoReg). Needs statsmodels."""
    ar_model = optional_import("statsmodels.tsa.ar_model")
    if ar_model is None:
        raise ConfigError("the ensemble's forecaster needs statsmodels", hint=f"pip install '{EXTRA}'")
    res = ar_model.AutoReg(np.diff(log_close), lags=lags, trend="c").fit()
    return np.asarray(res.params, dtype=np.float64)


def _signed(action: npt.NDArray[np.int8], conf: F64) -> F64:
    return np.where(action == BUY, conf, np.where(action == SELL, -conf, 0.0))


class EnsembleDecisionSource:
    """A DecisionSource over an `Orchestrator` (the panel): see the module doc. Streaming (`on_candle`)
    and batch (`precompute` / `decision_at`) give the same decisions; checkpoints carry the panel's
    state and the RL agent's position."""

    def __init__(self, panel: Orchestrator, model: EnsembleModel, rl_policy: QPolicy | None) -> None:
        self.panel = panel
        self.model = model
        self.rl: RLTradingAgent | None = None
        if "rl" in model.members:
            if rl_policy is None:
                raise ConfigError("the ensemble was fitted with the rl agent but [agents] rl_policy is empty",
                                  hint="set rl_policy to the version the ensemble was fitted with")
            self.rl = RLTradingAgent()
            c = panel.config
            self.rl.initialize(AgentContext(symbol=c.symbol, timeframe=c.timeframe, base_trail=c.base_trail,
                                            min_trail=c.min_trail, max_trail=c.max_trail,
                                            params={"rl_policy": rl_policy.to_parameters()}))
        self._ar = np.asarray(model.ar_params)
        self._scores: dict[str, F64] = {}
        self._features: Features | None = None

    # -- pass-through of the panel's capabilities ------------------------------------------------

    def weights(self) -> dict[str, float]:
        return self.panel.weights()

    def base_weights(self) -> dict[str, float]:
        return self.panel.base_weights()

    def set_weight(self, agent_id: str, weight: float) -> None:
        self.panel.set_weight(agent_id, weight)

    def flush(self) -> None:
        self.panel.flush()

    def attach_book(self, book: BookView) -> None:
        self.panel.attach_book(book)

    def on_tick(self, tick: Tick) -> None:
        self.panel.on_tick(tick)

    async def close(self) -> None:
        await self.panel.close()

    def get_state(self) -> dict[str, Any]:
        return {"panel": self.panel.get_state(), "rl": self.rl.get_state() if self.rl is not None else {}}

    def set_state(self, state: dict[str, Any]) -> None:
        self.panel.set_state(state.get("panel", {}))
        if self.rl is not None:
            self.rl.set_state(state.get("rl", {}))

    # -- the combination ---------------------------------------------------------------------------

    def _decide(self, ts: int, panel: Decision, scores: dict[str, float], extra: tuple[AgentSignal, ...]) -> Decision:
        m = self.model
        e = sum(w * scores[name] for name, w in zip(m.members, m.weights, strict=True))
        z = e / m.score_scale if m.score_scale > 0 else 0.0
        if abs(z) >= m.z_entry:
            action, conf = (Action.TRAIL_BUY if z > 0 else Action.TRAIL_SELL), min(0.5 + 0.25 * (abs(z) - m.z_entry), 0.95)
        else:
            action, conf = Action.HOLD, 0.0
        parts = ", ".join(f"{name} {scores[name]:+.2f}×{w:.2f}" for name, w in zip(m.members, m.weights, strict=True))
        return Decision(ts=ts, action=action, confidence=conf, trail_distance=panel.trail_distance,
                        signals=panel.signals + extra, weights=panel.weights, meta_resolved=panel.meta_resolved,
                        reasoning=f"ensemble {action.value} (z {z:+.2f}; {parts}); panel: {panel.reasoning}")

    async def on_candle(self, candle: Candle) -> Decision | None:
        panel = await self.panel.on_candle(candle)
        state = self.panel.state
        closes = np.log(np.array([c.close for c in list(state.candles)[-(len(self._ar) + 1):]]))
        if panel is None:  # warming up; the RL agent sees the bars the panel decides on, as in batch
            return None
        scores = {"panel": float(_signed(np.array([ACTION_CODES[panel.action]]), np.array([panel.confidence]))[0])}
        extra: tuple[AgentSignal, ...] = ()
        if self.rl is not None:
            assert state.features is not None  # the panel decided, so the bar's features exist
            snap = MarketSnapshot(symbol=self.panel.config.symbol, now=self.panel.clock.now_ns(), index=state.index,
                                  features=state.features, history=state.candles)
            sig = self.rl.analyze(snap)
            scores["rl"] = float(_signed(np.array([ACTION_CODES[sig.action]]), np.array([sig.confidence]))[0])
            extra = (sig,)
        f = ar_forecasts(closes, self._ar)[-1] if closes.shape[0] == len(self._ar) + 1 else float("nan")
        scores["ar"] = 0.0 if math.isnan(f) else math.tanh(f / self.model.ar_scale)
        return self._decide(candle.ts, panel, scores, extra)

    def precompute(self, bars: CandleArrays) -> Any:
        arrays = self.panel.precompute(bars)
        self._scores = self.member_scores(bars, arrays)
        return arrays

    def member_scores(self, bars: CandleArrays, arrays: Any) -> dict[str, F64]:
        """Every member's signed score per bar (batch), shape (n,) each; NaN-free (0 where undefined)."""
        out = {"panel": np.where(arrays.valid, _signed(arrays.action, arrays.confidence), 0.0)}
        if self.rl is not None:
            self._features = compute_features(bars, self.panel.params)
            sig = self.rl.analyze_batch(self._features)
            out["rl"] = np.where(arrays.valid, _signed(sig.action, sig.confidence), 0.0)
        f = ar_forecasts(np.log(bars.close), self._ar)
        out["ar"] = np.where(np.isnan(f), 0.0, np.tanh(np.nan_to_num(f) / self.model.ar_scale))
        return out

    def decision_at(self, i: int) -> Decision | None:
        panel = self.panel.decision_at(i)
        if panel is None:
            return None
        scores = {k: float(v[i]) for k, v in self._scores.items()}
        extra: tuple[AgentSignal, ...] = ()
        if self.rl is not None:
            assert self._features is not None
            words, urgency = self.rl.explain(self._features, i)
            s = scores["rl"]
            extra = (AgentSignal(agent_id="rl", action=CODE_ACTIONS[BUY if s > 0 else SELL if s < 0 else HOLD],
                                 confidence=abs(s), trail_distance=self.panel.config.base_trail, reasoning=words,
                                 urgency=urgency, ts=panel.ts),)
        return self._decide(panel.ts, panel, scores, extra)


def fit_ensemble(panel: Orchestrator, bars: CandleArrays, *, rl_policy: QPolicy | None, horizon: int = 24,
                 ar_lags: int = 6, z_entry: float = 1.0) -> EnsembleModel:
    """Learn the member weights on `bars` (the training window; see the module doc). Raises ConfigError
    with fewer than 500 bars or without statsmodels."""
    if len(bars) < 500:
        raise ConfigError(f"the ensemble needs at least 500 training bars, got {len(bars)}")
    logc = np.log(bars.close)
    params = fit_ar(logc, ar_lags)
    f = ar_forecasts(logc, params)
    ar_scale = float(np.nanstd(f)) or 1.0
    members = ["panel", *(["rl"] if rl_policy is not None else []), "ar"]
    probe = EnsembleModel(members=members, weights=[0.0] * len(members), ar_params=params.tolist(), ar_scale=ar_scale,
                          score_scale=1.0, horizon=horizon, z_entry=z_entry, train_start=int(bars.ts[0]),
                          train_end=int(bars.ts[-1]))
    source = EnsembleDecisionSource(panel, probe, rl_policy)
    scores = source.member_scores(bars, panel.precompute(bars))
    target = np.full(len(bars), np.nan)
    target[:-horizon] = logc[horizon:] - logc[:-horizon]
    rows = ~np.isnan(target)
    x = np.column_stack([scores[m][rows] for m in members])
    nnls = optional_import("scipy.optimize")
    if nnls is None:
        raise ConfigError("fitting the ensemble needs scipy", hint=f"pip install '{EXTRA}'")
    w, _ = nnls.nnls(x, target[rows])
    total = float(w.sum())
    weights = (w / total).tolist() if total > 0 else [0.0] * len(members)
    e = x @ np.asarray(weights)
    return msgspec.structs.replace(probe, weights=weights, score_scale=float(e.std()) if total > 0 else 0.0)
