"""Monte Carlo by bootstrap of trade returns (PRD §13.4).

Each path draws the run's round-trip returns (as fractions of the equity before each trade) with
replacement, compounds them, and records the final return and the path's maximum drawdown. The
spread of those outcomes says how much of the backtest's result was the luck of the order and mix
of its trades. Fully vectorized: paths are simulated in blocks of whole numpy arrays, seeded, so
the same inputs and seed always give the same figures.
"""

from __future__ import annotations

import msgspec
import numpy as np

from trdr_tui.backtest.results import F64

DEFAULT_PATHS = 10_000
_BLOCK_CELLS = 250_000  # ~2 MB of float64 per array per block: stays in cache


class MonteCarloResult(msgspec.Struct, frozen=True, kw_only=True):
    paths: int
    trades_per_path: int
    seed: int
    median_return: float
    mean_return: float
    ci95_low: float
    ci95_high: float
    probability_of_loss: float
    expected_max_drawdown: float
    median_max_drawdown: float
    max_drawdown_p95: float

    def to_dict(self) -> dict[str, float | int]:
        return msgspec.to_builtins(self)


def simulate_paths(
    trade_returns: F64, *, paths: int, trades_per_path: int, rng: np.random.Generator
) -> tuple[F64, F64]:
    """Final returns and maximum drawdowns of `paths` bootstrap paths (one block).

    Works on log-equity: the drawdown at a trade is `x - max(0, running peak of x)`, whose minimum is
    the smaller of min(x - peak) and min(x) — no extra pass to fold in the starting point.
    """
    growth = np.log1p(np.maximum(np.asarray(trade_returns, dtype=np.float64), -1.0 + 1e-15))
    draws = rng.integers(0, growth.shape[0], size=(paths, trades_per_path), dtype=np.int32)
    x = np.take(growth, draws)
    np.cumsum(x, axis=1, out=x)
    lowest = x.min(axis=1)
    peak = np.maximum.accumulate(x, axis=1)
    np.subtract(x, peak, out=peak)
    worst = np.minimum(peak.min(axis=1), np.minimum(lowest, 0.0))
    drawdown = -np.expm1(worst)
    final = np.expm1(x[:, -1])
    return final, drawdown


def monte_carlo(
    trade_returns: F64,
    *,
    paths: int = DEFAULT_PATHS,
    trades_per_path: int | None = None,
    seed: int = 42,
) -> MonteCarloResult | None:
    """Bootstrap `paths` equity paths of `trades_per_path` trades (default: as many as were made).

    Returns None when the run made no round trips (nothing to resample).
    """
    r = np.asarray(trade_returns, dtype=np.float64)
    if r.shape[0] == 0 or paths <= 0:
        return None
    if not np.all(np.isfinite(r)):
        raise ValueError("trade returns must be finite numbers")
    n = int(trades_per_path or r.shape[0])
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // n)
    finals: list[F64] = []
    dds: list[F64] = []
    done = 0
    while done < paths:
        m = min(block, paths - done)
        f, d = simulate_paths(r, paths=m, trades_per_path=n, rng=rng)
        finals.append(f)
        dds.append(d)
        done += m
    final = np.concatenate(finals)
    dd = np.concatenate(dds)
    lo, med, hi = np.quantile(final, [0.025, 0.5, 0.975])
    return MonteCarloResult(
        paths=paths,
        trades_per_path=n,
        seed=seed,
        median_return=float(med),
        mean_return=float(final.mean()),
        ci95_low=float(lo),
        ci95_high=float(hi),
        probability_of_loss=float(np.count_nonzero(final < 0) / paths),
        expected_max_drawdown=float(dd.mean()),
        median_max_drawdown=float(np.median(dd)),
        max_drawdown_p95=float(np.quantile(dd, 0.95)),
    )
