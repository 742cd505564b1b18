"""RLTradingAgent: a tabular Q-learning policy (Watkins 1989; PRD §12.3) trained on history.

State (PRD §12.3), discretised per bar:
- price change: the 6-bar log return, in 10 bins (deciles of the training window);
- volatility: ATR % of price, in 5 bins (quintiles of the training window);
- position: flat or long (the policy's own position: the agent tracks what its votes imply);
- grid level: where the close sits in the Bollinger band, %B in 5 bins (< 0, 0–⅓, ⅓–⅔, ⅔–1, > 1);
- panel consensus: the core panel's equal-weight vote (the side with the larger Σ confidence:
  HOLD, BUY or SELL), computed by the agent from the five core agents.

Actions: HOLD, BUY (go long), SELL (go flat). Training (`train`) replays the training window `episodes`
times from flat; each step picks an ε-greedy action (ε = `epsilon`; the draws come from the seed),
takes the next bar's log return while long, pays the taker fee on every change of position, and is
rewarded r − `drawdown_penalty` × (the deepening of the equity curve's drawdown, if any), so losses
that dig a deeper hole cost more than their size, and fees are paid in full. Update:
Q(s, a) += α (reward + γ max_a' Q(s', a') − Q(s, a)). Same data, settings and seed → the same table.

The agent votes the greedy action: TRAIL_BUY when the policy goes long, TRAIL_SELL when it exits,
HOLD otherwise; confidence 0.5 + 0.4 tanh(advantage / 1 %), the advantage being the best action's Q
over the next best's. A state never visited in training → HOLD at confidence 0. Without a trained
policy (`[agents] rl_policy` empty) the agent votes HOLD at confidence 0 and says how to train one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import msgspec
import numpy as np
import numpy.typing as npt

from trdr_tui.agents.core.market_structure import MarketStructureAgent
from trdr_tui.agents.core.momentum import MomentumAgent
from trdr_tui.agents.core.regime import RegimeAgent
from trdr_tui.agents.core.volatility import VolatilityAgent
from trdr_tui.agents.core.volume_profile import VolumeProfileAgent
from trdr_tui.agents.protocol import (
    ACTION_CODES,
    BUY,
    CODE_ACTIONS,
    HOLD,
    SELL,
    AgentContext,
    BaseAgent,
    MarketSnapshot,
    SignalArrays,
)
from trdr_tui.core.errors import ConfigError
from trdr_tui.core.types import AgentSignal, Urgency
from trdr_tui.market.indicators import Features

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
RETURN_BARS = 6
SHAPE = (10, 5, 2, 5, 3)  # price change, volatility, position, grid level, consensus
N_STATES = int(np.prod(SHAPE))
PB_EDGES = (0.0, 1 / 3, 2 / 3, 1.0)
CONSENSUS_NAMES = ("HOLD", "BUY", "SELL")


class QPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """A trained Q-table and what it was trained with. `q` and `visits` are flat (N_STATES × 3 and
    N_STATES), row-major over SHAPE; the edges are the training window's quantiles."""

    q: list[float]
    visits: list[int]
    return_edges: list[float]
    vol_edges: list[float]
    episodes: int
    seed: int
    alpha: float
    gamma: float
    epsilon: float
    drawdown_penalty: float
    fee: float
    train_start: int  # ns, first bar
    train_end: int  # ns, last bar
    bars: int

    def table(self) -> F64:
        return np.asarray(self.q, dtype=np.float64).reshape(N_STATES, 3)

    def to_parameters(self) -> dict[str, Any]:
        """The policy as parameter-version entries (`rl.*` keys, JSON-safe)."""
        return {f"rl.{k}": v for k, v in msgspec.to_builtins(self).items()}

    @classmethod
    def from_parameters(cls, params: dict[str, Any]) -> QPolicy:
        raw = {k[3:]: v for k, v in params.items() if k.startswith("rl.")}
        try:
            return msgspec.convert(raw, cls)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"not an RL policy version: {exc}", hint="train one with 'trdr train rl --data FILE'") from exc


def core_consensus_batch(features: Features, context: AgentContext) -> npt.NDArray[np.int8]:
    """The core panel's equal-weight vote per bar: the side (HOLD, BUY, SELL) with the largest Σ confidence
    (ties: HOLD, then BUY). Shape (n,)."""
    scores = np.zeros((len(features.close), 3))
    for make in CORE:
        agent = make()
        agent.initialize(context)
        out = agent.analyze_batch(features)
        for code in (HOLD, BUY, SELL):
            scores[:, code] += np.where(out.action == code, out.confidence, 0.0)
    return np.argmax(scores, axis=1).astype(np.int8)


CORE: tuple[Callable[[], Any], ...] = (VolatilityAgent, MomentumAgent, VolumeProfileAgent, MarketStructureAgent,
                                       RegimeAgent)


def state_parts(features: Features, consensus: npt.NDArray[np.int8], return_edges: F64 | None = None,
                vol_edges: F64 | None = None) -> tuple[I64, F64, F64, F64, npt.NDArray[np.bool_]]:
    """Per bar: the state index with position flat, the bar's log return (from the previous close), the
    quantile edges used (the given ones, else the deciles / quintiles of these bars) and whether the
    state is defined (features warm)."""
    close = features.close
    r6 = np.full(close.shape[0], np.nan)
    r6[RETURN_BARS:] = np.log(close[RETURN_BARS:] / close[:-RETURN_BARS])
    vol = features.atr_pct
    with np.errstate(divide="ignore", invalid="ignore"):
        pb = (close - features.bb_lower) / (features.bb_upper - features.bb_lower)
    # defined once every feature is warm (the bar from which the orchestrator asks agents, so that the
    # policy's position starts flat at the same bar in batch and streaming)
    warm = ~(np.isnan(features.atr_pct_ma) | np.isnan(features.rsi_slow) | np.isnan(features.rsi_max)
             | np.isnan(features.macd_signal) | np.isnan(features.sma_slow) | np.isnan(features.vol_ma))
    valid = ~(np.isnan(r6) | np.isnan(vol) | np.isnan(pb)) & (np.cumsum(warm) > 0)
    if return_edges is None or vol_edges is None:
        if not valid.any():
            raise ConfigError("too few bars to train on", hint="give at least a few hundred bars")
        return_edges = np.quantile(r6[valid], np.linspace(0.1, 0.9, 9))
        vol_edges = np.quantile(vol[valid], np.linspace(0.2, 0.8, 4))
    b_ret = np.searchsorted(return_edges, np.where(valid, r6, 0.0), side="right")
    b_vol = np.searchsorted(vol_edges, np.where(valid, vol, 0.0), side="right")
    b_pb = np.searchsorted(np.asarray(PB_EDGES), np.where(valid, pb, 0.0), side="right")
    state = np.ravel_multi_index((b_ret, b_vol, np.zeros_like(b_ret), b_pb, consensus.astype(np.int64)), SHAPE)
    lr = np.concatenate(([0.0], np.diff(np.log(close))))
    return state.astype(np.int64), lr, np.asarray(return_edges), np.asarray(vol_edges), valid


POSITION_STRIDE = SHAPE[3] * SHAPE[4]  # adding this to a state index sets position = long


def train(features: Features, consensus: npt.NDArray[np.int8], *, fee: float, episodes: int, seed: int,
          alpha: float = 0.05, gamma: float = 0.95, epsilon: float = 0.1, drawdown_penalty: float = 2.0,
          on_episode: Callable[[int, float], None] | None = None) -> QPolicy:
    """Q-learning over the bars of `features` (see the module doc). `fee` is the taker fee per change of
    position (fraction, e.g. 0.006). `on_episode(k, log_return)` is called after each episode with the
    episode's log return (exploration included). Raises ConfigError for episodes < 1 or too few bars."""
    if episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")
    state, lr, return_edges, vol_edges, valid = state_parts(features, consensus)
    idx = np.flatnonzero(valid)
    if idx.size < 50:
        raise ConfigError(f"only {idx.size} bars have warm features", hint="train on a longer window")
    s_list, lr_list = state.tolist(), lr.tolist()
    steps = idx.tolist()
    q = [[0.0, 0.0, 0.0] for _ in range(N_STATES)]
    visits = [0] * N_STATES
    rng = np.random.default_rng(seed)
    for ep in range(episodes):
        explore = (rng.random(len(steps)) < epsilon).tolist()
        random_action = rng.integers(0, 3, len(steps)).tolist()
        pos, equity, peak, dd, total = 0, 0.0, 0.0, 0.0, 0.0
        for k in range(len(steps) - 1):
            t, t1 = steps[k], steps[k + 1]
            s = s_list[t] + pos * POSITION_STRIDE
            row = q[s]
            a = random_action[k] if explore[k] else _argmax(row)
            new_pos = 1 if a == BUY else 0 if a == SELL else pos
            r = new_pos * lr_list[t1] - (fee if new_pos != pos else 0.0)
            equity += r
            peak = max(peak, equity)
            new_dd = peak - equity
            reward = r - drawdown_penalty * max(new_dd - dd, 0.0)
            dd = new_dd
            nxt = q[s_list[t1] + new_pos * POSITION_STRIDE]
            row[a] += alpha * (reward + gamma * max(nxt) - row[a])
            visits[s] += 1
            pos, total = new_pos, total + r
        if on_episode is not None:
            on_episode(ep, total)
    return QPolicy(q=[v for row in q for v in row], visits=visits, return_edges=return_edges.tolist(),
                   vol_edges=vol_edges.tolist(), episodes=episodes, seed=seed, alpha=alpha, gamma=gamma,
                   epsilon=epsilon, drawdown_penalty=drawdown_penalty, fee=fee, train_start=int(features.ts[0]),
                   train_end=int(features.ts[-1]), bars=len(features.close))


def _argmax(row: list[float]) -> int:
    """The first index of the largest value (HOLD wins ties, then BUY)."""
    best = 0
    for i in (1, 2):
        if row[i] > row[best]:
            best = i
    return best


class Evaluation(msgspec.Struct, frozen=True, kw_only=True):
    """The greedy policy replayed on a window: growth of 1 unit, its max drawdown (fraction), trades
    (changes of position), fees paid (fraction of equity, summed), buy-and-hold's return for comparison."""

    total_return: float
    max_drawdown: float
    trades: int
    fees: float
    buy_and_hold: float
    bars: int


def evaluate(policy: QPolicy, features: Features, consensus: npt.NDArray[np.int8]) -> Evaluation:
    """Replay the greedy policy (no exploration, no learning) over `features`, paying `policy.fee` per trade."""
    actions = greedy_actions(policy, features, consensus)[0]
    _, lr, _, _, valid = state_parts(features, consensus, np.asarray(policy.return_edges), np.asarray(policy.vol_edges))
    pos, equity, peak, mdd, trades, fees = 0, 0.0, 0.0, 0.0, 0, 0.0
    idx = np.flatnonzero(valid)
    for k in range(idx.size - 1):
        a = int(actions[idx[k]])
        new_pos = 1 if a == BUY else 0 if a == SELL else pos
        if new_pos != pos:
            trades += 1
            fees += policy.fee
        equity += new_pos * lr[idx[k + 1]] - (policy.fee if new_pos != pos else 0.0)
        peak = max(peak, equity)
        mdd = max(mdd, 1.0 - math.exp(equity - peak))
        pos = new_pos
    first, last = (int(idx[0]), int(idx[-1])) if idx.size else (0, 0)
    return Evaluation(total_return=math.expm1(equity), max_drawdown=mdd, trades=trades, fees=fees,
                      buy_and_hold=float(features.close[last] / features.close[first] - 1.0), bars=int(idx.size))


def greedy_actions(policy: QPolicy, features: Features,
                   consensus: npt.NDArray[np.int8]) -> tuple[npt.NDArray[np.int8], F64, I64, npt.NDArray[np.int8]]:
    """Per bar: the vote (HOLD / BUY when going long / SELL when exiting), the advantage of the greedy
    action, the state index and the position before the bar; the position follows the votes."""
    table = policy.table()
    visits = np.asarray(policy.visits)
    state, _, _, _, valid = state_parts(features, consensus, np.asarray(policy.return_edges), np.asarray(policy.vol_edges))
    n = state.shape[0]
    vote = np.zeros(n, dtype=np.int8)
    adv = np.zeros(n)
    states = np.full(n, -1, dtype=np.int64)
    position = np.zeros(n, dtype=np.int8)
    pos = 0
    for t in np.flatnonzero(valid).tolist():
        s = int(state[t]) + pos * POSITION_STRIDE
        states[t], position[t] = s, pos
        if visits[s] == 0:
            continue
        row = table[s]
        a = _argmax(row.tolist())
        adv[t] = float(row[a] - max(row[i] for i in range(3) if i != a))
        new_pos = 1 if a == BUY else 0 if a == SELL else pos
        if new_pos != pos:
            vote[t] = BUY if new_pos == 1 else SELL
        pos = new_pos
    return vote, adv, states, position


class RLTradingAgent(BaseAgent):
    id = "rl"
    name = "Q-learning (RL)"
    version = "1.0.0"
    description = "tabular Q-learning policy trained by 'trdr train rl' (PRD §12.3); needs [agents] rl_policy"

    advantage_scale: ClassVar[float] = 0.01

    def __init__(self) -> None:
        super().__init__()
        self.policy: QPolicy | None = None
        self.position = 0
        self._core: list[Any] = []
        self._last: tuple[int, npt.NDArray[np.int8], F64, I64, npt.NDArray[np.int8], npt.NDArray[np.int8]] | None = None

    def initialize(self, context: AgentContext) -> None:
        super().initialize(context)
        raw = context.params.get("rl_policy")
        self.policy = QPolicy.from_parameters(raw) if raw else None
        self._core = []
        for make in CORE:
            agent = make()
            agent.initialize(context)
            self._core.append(agent)

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "position": self.position}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.position = int(state.get("position", 0))

    def _untrained(self) -> str:
        return "no trained policy: run 'trdr train rl --data FILE' and set [agents] rl_policy to the version it saves"

    def _words(self, vote: int, adv: float, state: int, position: int) -> tuple[str, Urgency]:
        if state < 0:
            return "warming up: not enough history yet", Urgency.NORMAL
        b_ret, b_vol, _, b_pb, cons = np.unravel_index(state, SHAPE)
        where = (f"state: 6-bar return decile {int(b_ret) + 1}/10, volatility quintile {int(b_vol) + 1}/5, "
                 f"{'long' if position else 'flat'}, %B bin {int(b_pb) + 1}/5, core panel {CONSENSUS_NAMES[int(cons)]}")
        assert self.policy is not None
        if self.policy.visits[state] == 0:
            return f"state never visited in training ({where}): no opinion", Urgency.NORMAL
        if vote == BUY:
            return f"policy goes long (Q advantage {adv * 100:+.2f}%; {where})", Urgency.NORMAL
        if vote == SELL:
            return f"policy exits (Q advantage {adv * 100:+.2f}%; {where})", Urgency.NORMAL
        return f"policy holds (Q advantage {adv * 100:+.2f}%; {where})", Urgency.NORMAL

    def _confidence(self, vote: int, adv: float, visited: bool) -> float:
        if not visited:
            return 0.0
        c = 0.5 + 0.4 * math.tanh(adv / self.advantage_scale)
        return c if vote != HOLD else min(c, 0.5)

    def analyze(self, snapshot: MarketSnapshot) -> AgentSignal:
        if self.policy is None:
            return self.signal(snapshot, CODE_ACTIONS[HOLD], 0.0, self.context.base_trail, self._untrained())
        hist = snapshot.history
        f = snapshot.features
        if len(hist) <= RETURN_BARS:
            return self.warming_up(snapshot)
        scores = [0.0, 0.0, 0.0]
        for agent in self._core:
            sig = agent.analyze(snapshot)
            scores[ACTION_CODES[sig.action]] += sig.confidence
        cons = _argmax(scores)
        r6 = math.log(f.close / hist[-1 - RETURN_BARS].close)
        with np.errstate(divide="ignore", invalid="ignore"):
            pb = (f.close - f.bb_lower) / (f.bb_upper - f.bb_lower) if f.bb_upper != f.bb_lower else float("nan")
        if any(map(math.isnan, (r6, f.atr_pct, pb))):
            return self.warming_up(snapshot)
        parts = (int(np.searchsorted(self.policy.return_edges, r6, side="right")),
                 int(np.searchsorted(self.policy.vol_edges, f.atr_pct, side="right")), self.position,
                 int(np.searchsorted(PB_EDGES, pb, side="right")), cons)
        s = int(np.ravel_multi_index(parts, SHAPE))
        vote, adv = HOLD, 0.0
        if self.policy.visits[s]:
            row = self.policy.table()[s]
            a = _argmax(row.tolist())
            adv = float(row[a] - max(row[i] for i in range(3) if i != a))
            new_pos = 1 if a == BUY else 0 if a == SELL else self.position
            if new_pos != self.position:
                vote = BUY if new_pos == 1 else SELL
        words, urgency = self._words(vote, adv, s, self.position)
        self.position = 1 if vote == BUY else 0 if vote == SELL else self.position
        return self.signal(snapshot, CODE_ACTIONS[vote], self._confidence(vote, adv, bool(self.policy.visits[s])),
                           self.context.base_trail, words, urgency)

    def analyze_batch(self, features: Features) -> SignalArrays:
        n = len(features.close)
        if self.policy is None:
            return SignalArrays(np.zeros(n, dtype=np.int8), np.zeros(n), np.full(n, self.context.base_trail))
        cons = core_consensus_batch(features, self.context)
        vote, adv, states, position = greedy_actions(self.policy, features, cons)
        visited = np.zeros(n, dtype=bool)
        ok = states >= 0
        visited[ok] = np.asarray(self.policy.visits)[states[ok]] > 0
        conf = np.array([self._confidence(int(v), float(a), bool(b)) for v, a, b in zip(vote, adv, visited, strict=True)])
        self._last = (n, vote, adv, states, position, cons)
        return SignalArrays(vote, conf, np.full(n, self.context.base_trail))

    def explain(self, features: Features, i: int) -> tuple[str, Urgency]:
        if self.policy is None:
            return self._untrained(), Urgency.NORMAL
        if self._last is None or self._last[0] != len(features):
            self.analyze_batch(features)
        assert self._last is not None
        _, vote, adv, states, position, _ = self._last
        return self._words(int(vote[i]), float(adv[i]), int(states[i]), int(position[i]))
