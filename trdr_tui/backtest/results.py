"""What a finished backtest run hands to the statistics: columnar, engine-agnostic arrays.

The engine's run record (fills, round trips, equity per bar, rejected orders, agent signals) is
converted once into these structs; every statistic, baseline comparison, Monte Carlo path and
report works from them. Keeping them plain numpy makes the metrics pure functions that are easy
to check by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from trdr_tui.core.types import Action, Fill, Liquidity, Side, Trade
from trdr_tui.trading.risk import Halt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]


class FillArrays(msgspec.Struct, frozen=True):
    """Fills in time order. `side` is +1 buy / -1 sell; `ref_price` is the price the order meant
    to trade at (trigger or limit), NaN where unknown; `maker` is True for maker fills; `wait_ns` is
    how long the order waited from creation to this fill (NaN where unknown)."""

    ts: I64
    side: I8
    price: F64
    size: F64
    fee: F64
    maker: npt.NDArray[np.bool_]
    ref_price: F64
    wait_ns: F64 | None = None

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @classmethod
    def from_fills(cls, fills: Sequence[Fill], ref_prices: Sequence[float | None] | None = None,
                   order_ts: Sequence[int | None] | None = None) -> FillArrays:
        n = len(fills)
        refs = np.full(n, np.nan)
        if ref_prices is not None:
            for i, r in enumerate(ref_prices):
                if r is not None:
                    refs[i] = float(r)
        wait = np.full(n, np.nan)
        if order_ts is not None:
            for i, t in enumerate(order_ts):
                if t is not None:
                    wait[i] = float(fills[i].ts - t)
        return cls(
            ts=np.fromiter((f.ts for f in fills), dtype=np.int64, count=n),
            side=np.fromiter((1 if f.side == Side.BUY else -1 for f in fills), dtype=np.int8, count=n),
            price=np.fromiter((f.price for f in fills), dtype=np.float64, count=n),
            size=np.fromiter((f.size for f in fills), dtype=np.float64, count=n),
            fee=np.fromiter((f.fee for f in fills), dtype=np.float64, count=n),
            maker=np.fromiter((f.liquidity == Liquidity.MAKER for f in fills), dtype=np.bool_, count=n),
            ref_price=refs,
            wait_ns=wait,
        )

    @classmethod
    def empty(cls) -> FillArrays:
        return cls.from_fills([])


class TradeArrays(msgspec.Struct, frozen=True):
    """Round trips (entry → exit). `pnl` is net of both fills' fees; `fees` is those fees."""

    entry_ts: I64
    exit_ts: I64
    entry_price: F64
    exit_price: F64
    size: F64
    pnl: F64
    fees: F64

    def __len__(self) -> int:
        return int(self.entry_ts.shape[0])

    @classmethod
    def from_trades(cls, trades: Sequence[Trade]) -> TradeArrays:
        n = len(trades)

        def ints(name: str) -> npt.NDArray[np.int64]:
            return np.fromiter((getattr(t, name) for t in trades), dtype=np.int64, count=n)

        def floats(name: str) -> npt.NDArray[np.float64]:
            return np.fromiter((getattr(t, name) for t in trades), dtype=np.float64, count=n)

        return cls(ints("entry_ts"), ints("exit_ts"), floats("entry_price"), floats("exit_price"),
                   floats("size"), floats("pnl"), floats("fees"))

    @classmethod
    def empty(cls) -> TradeArrays:
        return cls.from_trades([])


class AgentSignals(msgspec.Struct, frozen=True):
    """One agent's signal on every bar: `action` +1 TRAIL_BUY / -1 TRAIL_SELL / 0 HOLD or none."""

    action: I8
    confidence: F64

    @classmethod
    def from_actions(cls, actions: Iterable[Action | str | None], confidences: Iterable[float]) -> AgentSignals:
        code = {Action.TRAIL_BUY: 1, Action.TRAIL_SELL: -1}
        a = np.array([code.get(Action(x), 0) if x else 0 for x in actions], dtype=np.int8)
        return cls(a, np.asarray(list(confidences), dtype=np.float64))


class RunData(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the statistics need from one run, aligned on the bars that were traded.

    `ts` is each bar's open time (ns, UTC), `equity` the marked-to-market equity after that bar,
    `close` the bar's close. `initial_capital` is the equity before the first bar.
    """

    ts: I64
    equity: F64
    close: F64
    initial_capital: float
    fills: FillArrays
    trades: TradeArrays
    rejected_orders: int = 0
    agent_signals: Mapping[str, AgentSignals] = msgspec.field(default_factory=dict)
    agent_weights: Mapping[str, float] = msgspec.field(default_factory=dict)
    position: F64 | None = None  # base-currency position after each bar, when known
    halts: tuple[Halt, ...] = ()  # the risk manager's drawdown halts, in order

    def __post_init__(self) -> None:
        n = self.ts.shape[0]
        if self.position is not None and self.position.shape[0] != n:
            raise ValueError(f"run data misaligned: {n} bars, {self.position.shape[0]} positions")
        if self.equity.shape[0] != n or self.close.shape[0] != n:
            raise ValueError(f"run data misaligned: {n} bars, {self.equity.shape[0]} equity points, "
                             f"{self.close.shape[0]} closes")
        for agent_id, sig in self.agent_signals.items():
            if sig.action.shape[0] != n or sig.confidence.shape[0] != n:
                raise ValueError(f"signals of agent '{agent_id}' are not aligned with the {n} bars")
