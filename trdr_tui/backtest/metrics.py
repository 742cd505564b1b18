"""Backtest statistics (PRD §13.3): pure numpy functions of an equity curve, trades and fills.

Conventions, so every number means one thing:
- Returns and drawdowns are fractions (0.15 = 15 %). `max_drawdown` is positive (0.12 = a 12 % fall
  from the running peak).
- Ratios use **daily** returns (UTC calendar days, the equity at each day's last bar, the first day
  measured from the initial capital), annualized with 365 days: crypto trades every day. Risk-free
  rate 0. Daily returns make Sharpe comparable between hourly and daily backtests.
- Value at Risk and CVaR are historical, on daily returns, reported as (negative) returns.
- A ratio whose denominator is zero is `None` (JSON null), never infinity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from trdr_tui.backtest.results import F64, I64, AgentSignals, FillArrays, RunData, TradeArrays
from trdr_tui.core.timefmt import iso_utc

NS_PER_HOUR = 3_600_000_000_000
NS_PER_DAY = 24 * NS_PER_HOUR
DAYS_PER_YEAR = 365.0
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ROLLING_WINDOWS_DAYS = (30, 90, 180)


def _finite(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _ratio(num: float, den: float) -> float | None:
    if den == 0 or not math.isfinite(den):
        return None
    return _finite(num / den)


# --- equity-curve statistics --------------------------------------------------------------------


def bar_period_ns(ts: I64) -> int:
    """The bar spacing: the median step (robust to the odd gap)."""
    if ts.shape[0] < 2:
        return NS_PER_HOUR
    return int(np.median(np.diff(ts)))


def span_years(ts: I64) -> float:
    """Time covered by the bars, counting the last bar's own length."""
    if ts.shape[0] == 0:
        return 0.0
    span = int(ts[-1] - ts[0]) + bar_period_ns(ts)
    return span / (NS_PER_DAY * DAYS_PER_YEAR)


def total_return(equity: F64, initial: float) -> float:
    if equity.shape[0] == 0:
        return 0.0
    return float(equity[-1] / initial - 1.0)


def annualized_return(equity: F64, initial: float, ts: I64) -> float | None:
    """Compound annual growth rate over the span of the bars."""
    years = span_years(ts)
    if years <= 0 or equity.shape[0] == 0:
        return None
    growth = equity[-1] / initial
    if growth <= 0:
        return -1.0
    return _finite(growth ** (1.0 / years) - 1.0)


def drawdown_series(equity: F64, initial: float) -> F64:
    """Fractional drawdown after each bar (≤ 0), measured from the running peak incl. the start."""
    peak = np.maximum.accumulate(np.concatenate(([initial], equity)))[1:]
    return equity / peak - 1.0


def max_drawdown(equity: F64, initial: float) -> float:
    if equity.shape[0] == 0:
        return 0.0
    return float(max(0.0, -drawdown_series(equity, initial).min()))


def max_drawdown_duration_days(equity: F64, initial: float, ts: I64) -> float:
    """Longest stretch from a peak to the recovery of that peak (or to the last bar if never)."""
    if equity.shape[0] == 0:
        return 0.0
    full = np.concatenate(([initial], equity))
    period = bar_period_ns(ts)
    times = np.concatenate(([ts[0] - period], ts))
    under = full < np.maximum.accumulate(full)
    if not under.any():
        return 0.0
    edges = np.diff(under.astype(np.int8))
    starts = np.flatnonzero(edges == 1) + 1  # first underwater point of each stretch
    ends = np.flatnonzero(edges == -1) + 1  # the point where it recovered
    if ends.shape[0] < starts.shape[0]:
        ends = np.append(ends, full.shape[0] - 1)  # still underwater at the end
    return float((times[ends] - times[starts - 1]).max()) / NS_PER_DAY


def daily_equity(equity: F64, ts: I64, initial: float) -> tuple[I64, F64]:
    """Equity at each UTC day's last bar, with the initial capital prepended at the day before.

    Returns (day numbers since the epoch, equity), the first element being the starting point.
    """
    if equity.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    day = ts // NS_PER_DAY
    last = np.flatnonzero(np.append(day[1:] != day[:-1], True))
    days = np.concatenate(([day[0] - 1], day[last]))
    return days.astype(np.int64), np.concatenate(([initial], equity[last]))


def simple_returns(values: F64) -> F64:
    if values.shape[0] < 2:
        return np.zeros(0)
    return values[1:] / values[:-1] - 1.0


def sharpe_ratio(daily: F64) -> float | None:
    if daily.shape[0] < 2:
        return None
    sd = float(daily.std(ddof=1))
    if sd == 0:
        return None
    return _finite(float(daily.mean()) / sd * math.sqrt(DAYS_PER_YEAR))


def downside_deviation(daily: F64) -> float | None:
    """Root-mean-square of the negative daily returns (target 0), per day."""
    if daily.shape[0] == 0:
        return None
    return float(math.sqrt(float(np.mean(np.minimum(daily, 0.0) ** 2))))


def sortino_ratio(daily: F64) -> float | None:
    dd = downside_deviation(daily)
    if dd is None or dd == 0:
        return None
    return _finite(float(daily.mean()) / dd * math.sqrt(DAYS_PER_YEAR))


def calmar_ratio(annualized: float | None, mdd: float) -> float | None:
    if annualized is None:
        return None
    return _ratio(annualized, mdd)


def value_at_risk(daily: F64, level: float = 0.95) -> float | None:
    """Historical VaR: the daily return at the (1 - level) quantile (e.g. -0.04 = a 4 % daily loss)."""
    if daily.shape[0] == 0:
        return None
    return float(np.quantile(daily, 1.0 - level))


def conditional_var(daily: F64, level: float = 0.95) -> float | None:
    """Expected shortfall: the mean daily return on the days at or below the VaR."""
    var = value_at_risk(daily, level)
    if var is None:
        return None
    tail = daily[daily <= var]
    return float(tail.mean()) if tail.shape[0] else var


def beta_and_correlation(daily: F64, bench_daily: F64) -> tuple[float | None, float | None]:
    """Beta and Pearson correlation of the strategy's daily returns to the benchmark's."""
    n = min(daily.shape[0], bench_daily.shape[0])
    if n < 2:
        return None, None
    a, b = daily[:n], bench_daily[:n]
    var_b = float(b.var(ddof=1))
    cov = float(np.cov(a, b, ddof=1)[0, 1])
    beta = _ratio(cov, var_b)
    sa = float(a.std(ddof=1))
    sb = float(b.std(ddof=1))
    corr = _ratio(cov, sa * sb)
    return beta, corr


def equity_stats(equity: F64, ts: I64, initial: float) -> dict[str, float | None]:
    """The return / risk keys shared by the strategy and its baselines."""
    _, deq = daily_equity(equity, ts, initial)
    daily = simple_returns(deq)
    ann = annualized_return(equity, initial, ts)
    mdd = max_drawdown(equity, initial)
    return {
        "final_equity": float(equity[-1]) if equity.shape[0] else initial,
        "total_return": total_return(equity, initial),
        "annualized_return": ann,
        "sharpe": sharpe_ratio(daily),
        "sortino": sortino_ratio(daily),
        "calmar": calmar_ratio(ann, mdd),
        "max_drawdown": mdd,
        "max_drawdown_duration_days": max_drawdown_duration_days(equity, initial, ts),
        "volatility_annualized": _finite(float(daily.std(ddof=1)) * math.sqrt(DAYS_PER_YEAR))
        if daily.shape[0] > 1 else None,
    }


# --- trades -------------------------------------------------------------------------------------


def trade_returns(trades: TradeArrays) -> F64:
    """Each round trip's net return on the capital it used (pnl / entry notional)."""
    notional = trades.entry_price * trades.size
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(notional > 0, trades.pnl / notional, 0.0)
    return r.astype(np.float64)


def trade_returns_on_equity(trades: TradeArrays, ts: I64, equity: F64, initial: float) -> F64:
    """Each round trip's pnl as a fraction of the account equity just before it opened.

    These compound into the account's growth, which is what Monte Carlo resamples.
    """
    if len(trades) == 0:
        return np.zeros(0)
    idx = np.searchsorted(ts, trades.entry_ts, side="left") - 1
    before = np.where(idx >= 0, equity[np.clip(idx, 0, None)] if equity.shape[0] else initial, initial)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(before > 0, trades.pnl / before, 0.0)
    return r.astype(np.float64)


def win_rate(trades: TradeArrays) -> float | None:
    n = len(trades)
    return float(np.count_nonzero(trades.pnl > 0) / n) if n else None


def profit_factor(trades: TradeArrays) -> float | None:
    gains = float(trades.pnl[trades.pnl > 0].sum())
    losses = float(-trades.pnl[trades.pnl < 0].sum())
    return _ratio(gains, losses)


def expectancy(trades: TradeArrays) -> float | None:
    """Average net pnl per round trip, in the quote currency."""
    return float(trades.pnl.mean()) if len(trades) else None


def exposure(position: F64 | None) -> float | None:
    """Share of bars that ended holding a position (time in the market)."""
    if position is None or position.shape[0] == 0:
        return None
    return float(np.count_nonzero(position > 0) / position.shape[0])


def trade_stats(trades: TradeArrays) -> dict[str, float | int | None]:
    n = len(trades)
    r = trade_returns(trades)
    wins, losses = r[trades.pnl > 0], r[trades.pnl < 0]
    hold_days = (trades.exit_ts - trades.entry_ts) / NS_PER_DAY
    return {
        "count": n,
        "winning": int(wins.shape[0]),
        "losing": int(losses.shape[0]),
        "avg_return": float(r.mean()) if n else None,
        "avg_winning_return": float(wins.mean()) if wins.shape[0] else None,
        "avg_losing_return": float(losses.mean()) if losses.shape[0] else None,
        "best_return": float(r.max()) if n else None,
        "worst_return": float(r.min()) if n else None,
        "largest_win": float(trades.pnl.max()) if n and trades.pnl.max() > 0 else None,
        "largest_loss": float(trades.pnl.min()) if n and trades.pnl.min() < 0 else None,
        "avg_hold_days": float(hold_days.mean()) if n else None,
        "longest_hold_days": float(hold_days.max()) if n else None,
        "shortest_hold_days": float(hold_days.min()) if n else None,
    }


# --- execution ----------------------------------------------------------------------------------


def slippage(fills: FillArrays) -> F64:
    """Per-fill slippage against the intended price, positive = paid worse (buy higher / sell lower)."""
    known = ~np.isnan(fills.ref_price)
    ref = fills.ref_price[known]
    return (fills.price[known] - ref) / ref * fills.side[known]


def execution_stats(fills: FillArrays, trades: TradeArrays, rejected: int) -> dict[str, float | int | None]:
    fees = float(fills.fee.sum())
    slip = slippage(fills)
    gross = float(trades.pnl.sum() + trades.fees.sum())  # round-trip profit before fees
    n = len(fills)
    waits = fills.wait_ns[~np.isnan(fills.wait_ns)] if fills.wait_ns is not None else np.zeros(0)
    return {
        "fills": n,
        "buys": int(np.count_nonzero(fills.side > 0)),
        "sells": int(np.count_nonzero(fills.side < 0)),
        "maker_fills": int(np.count_nonzero(fills.maker)),
        "taker_fills": int(n - np.count_nonzero(fills.maker)),
        "total_fees": fees,
        "volume": float((fills.price * fills.size).sum()),
        "avg_slippage": float(slip.mean()) if slip.shape[0] else None,
        "avg_order_wait_hours": float(waits.mean()) / NS_PER_HOUR if waits.shape[0] else None,
        "fees_pct_of_gross_profit": _ratio(float(trades.fees.sum()), gross) if gross > 0 else None,
        "rejected_orders": int(rejected),
    }


# --- agents -------------------------------------------------------------------------------------


def _last_signal_index(action: np.ndarray, want: int) -> I64:
    """For each bar, the index of the latest bar (≤ it) where the signal was `want`, else -1."""
    idx = np.where(action == want, np.arange(action.shape[0]), -1)
    return np.maximum.accumulate(idx) if idx.shape[0] else idx.astype(np.int64)


def agent_stats(
    signals: Mapping[str, AgentSignals],
    close: F64,
    ts: I64,
    trades: TradeArrays,
    *,
    horizon_bars: int = 24,
    lookback_bars: int = 24,
    weights: Mapping[str, float] | None = None,
) -> dict[str, dict[str, float | int | None]]:
    """Per-agent signal count, accuracy, average confidence and profit contribution.

    accuracy: the share of an agent's BUY (SELL) signals after which the close `horizon_bars` later
    was higher (lower). Contribution: each round trip's net pnl is split half to its entry, half to
    its exit; each half goes to the agents whose latest signal within `lookback_bars` before that
    fill pointed the same way (BUY for entries, SELL for exits), in proportion to confidence ×
    weight. Pnl that no agent pointed to stays unattributed.
    """
    n = close.shape[0]
    out: dict[str, dict[str, float | int | None]] = {}
    future = np.full(n, np.nan)
    if n > horizon_bars:
        future[: n - horizon_bars] = close[horizon_bars:] - close[: n - horizon_bars]
    entry_bar = np.clip(np.searchsorted(ts, trades.entry_ts, side="right") - 1, 0, max(n - 1, 0))
    exit_bar = np.clip(np.searchsorted(ts, trades.exit_ts, side="right") - 1, 0, max(n - 1, 0))
    shares_entry: dict[str, F64] = {}
    shares_exit: dict[str, F64] = {}
    for agent_id, sig in signals.items():
        w = float((weights or {}).get(agent_id, 1.0))
        for want, bars, shares in ((1, entry_bar, shares_entry), (-1, exit_bar, shares_exit)):
            last = _last_signal_index(sig.action, want)
            if len(trades) and n:
                at = last[bars]
                ok = (at >= 0) & (bars - at <= lookback_bars)
                conf = np.where(ok, sig.confidence[np.clip(at, 0, None)], 0.0)
                shares[agent_id] = conf * w
            else:
                shares[agent_id] = np.zeros(len(trades))
        directional = sig.action != 0
        judged = directional & ~np.isnan(future)
        correct = np.sign(future[judged]) == sig.action[judged]
        out[agent_id] = {
            "signal_count": int(np.count_nonzero(directional)),
            "buy_signals": int(np.count_nonzero(sig.action > 0)),
            "sell_signals": int(np.count_nonzero(sig.action < 0)),
            "accuracy": float(correct.mean()) if correct.shape[0] else None,
            "avg_confidence": float(sig.confidence[directional].mean()) if directional.any() else None,
            "profit_contribution": 0.0,
        }
    half = trades.pnl / 2.0
    for shares in (shares_entry, shares_exit):
        if not shares:
            continue
        total = np.sum(list(shares.values()), axis=0)
        for agent_id, s in shares.items():
            with np.errstate(divide="ignore", invalid="ignore"):
                part = np.where(total > 0, half * s / total, 0.0)
            out[agent_id]["profit_contribution"] = float(out[agent_id]["profit_contribution"] or 0.0) + float(
                part.sum())
    return out


# --- time analysis ------------------------------------------------------------------------------


def month_keys(ts: I64) -> list[str]:
    return [str(m) for m in ts.astype("datetime64[ns]").astype("datetime64[M]")]


def monthly_returns(equity: F64, ts: I64, initial: float) -> dict[str, float]:
    """Return of each calendar month (UTC), from the previous month's last equity (or the start)."""
    if equity.shape[0] == 0:
        return {}
    months = ts.astype("datetime64[ns]").astype("datetime64[M]")
    last = np.flatnonzero(np.append(months[1:] != months[:-1], True))
    ends = equity[last]
    starts = np.concatenate(([initial], ends[:-1]))
    return {str(months[i]): float(e / s - 1.0) for i, e, s in zip(last, ends, starts, strict=True)}


def rolling_returns(deq: F64, window_days: int) -> F64:
    """Return over each trailing `window_days` days of daily equity."""
    if deq.shape[0] <= window_days:
        return np.zeros(0)
    return deq[window_days:] / deq[:-window_days] - 1.0


def _summary(x: F64) -> dict[str, float | None]:
    if x.shape[0] == 0:
        return {"count": 0, "mean": None, "min": None, "max": None, "last": None, "share_positive": None}
    return {"count": int(x.shape[0]), "mean": float(x.mean()), "min": float(x.min()), "max": float(x.max()),
            "last": float(x[-1]), "share_positive": float(np.count_nonzero(x > 0) / x.shape[0])}


def time_analysis(equity: F64, ts: I64, initial: float) -> dict[str, Any]:
    """Best/worst UTC hour (mean bar return), best/worst weekday (mean daily return), monthly and
    rolling 30/90/180-day returns."""
    out: dict[str, Any] = {}
    if equity.shape[0] == 0:
        return {"best_hour": None, "worst_hour": None, "best_weekday": None, "worst_weekday": None,
                "monthly_returns": {}, "rolling": {}}
    bar_r = np.concatenate(([equity[0] / initial - 1.0], simple_returns(equity)))
    hour = (ts // NS_PER_HOUR) % 24
    counts = np.bincount(hour, minlength=24)
    sums = np.bincount(hour, weights=bar_r, minlength=24)
    present = counts > 0
    mean_h = np.where(present, sums / np.maximum(counts, 1), np.nan)
    out["hourly_mean_return"] = {int(h): float(mean_h[h]) for h in np.flatnonzero(present)}
    out["best_hour"] = int(np.nanargmax(mean_h))
    out["worst_hour"] = int(np.nanargmin(mean_h))
    days, deq = daily_equity(equity, ts, initial)
    daily = simple_returns(deq)
    wd = (days[1:] + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    wcounts = np.bincount(wd, minlength=7)
    wsums = np.bincount(wd, weights=daily, minlength=7)
    wmean = np.where(wcounts > 0, wsums / np.maximum(wcounts, 1), np.nan)
    out["weekday_mean_return"] = {WEEKDAYS[d]: float(wmean[d]) for d in np.flatnonzero(wcounts > 0)}
    out["best_weekday"] = WEEKDAYS[int(np.nanargmax(wmean))] if (wcounts > 0).any() else None
    out["worst_weekday"] = WEEKDAYS[int(np.nanargmin(wmean))] if (wcounts > 0).any() else None
    out["monthly_returns"] = monthly_returns(equity, ts, initial)
    out["rolling"] = {f"{w}d": _summary(rolling_returns(deq, w)) for w in ROLLING_WINDOWS_DAYS}
    return out


def rolling_series(equity: F64, ts: I64, initial: float) -> dict[str, list[float]]:
    """The full rolling-return series (for reports and the stored result)."""
    _, deq = daily_equity(equity, ts, initial)
    return {f"{w}d": rolling_returns(deq, w).tolist() for w in ROLLING_WINDOWS_DAYS}


# --- everything ---------------------------------------------------------------------------------


def compute_statistics(run: RunData, benchmark_equity: F64 | None = None) -> dict[str, Any]:
    """All of PRD §13.3 for one run, as plain JSON-ready values (None for undefined ratios)."""
    eq, ts, initial = run.equity, run.ts, run.initial_capital
    perf: dict[str, Any] = equity_stats(eq, ts, initial)
    perf["win_rate"] = win_rate(run.trades)
    perf["profit_factor"] = profit_factor(run.trades)
    perf["expectancy"] = expectancy(run.trades)
    _, deq = daily_equity(eq, ts, initial)
    daily = simple_returns(deq)
    beta = corr = None
    if benchmark_equity is not None:
        _, bdeq = daily_equity(benchmark_equity, ts, initial)
        beta, corr = beta_and_correlation(daily, simple_returns(bdeq))
    risk = {
        "var_95": value_at_risk(daily),
        "cvar_95": conditional_var(daily),
        "downside_deviation": downside_deviation(daily),
        "beta": beta,
        "correlation": corr,
    }
    return {
        "performance": perf,
        "risk": risk,
        "trades": {**trade_stats(run.trades), "exposure": exposure(run.position),
                   "first_fill": iso_utc(run.fills.ts[0]) if len(run.fills) else None,
                   "last_fill": iso_utc(run.fills.ts[-1]) if len(run.fills) else None},
        "execution": execution_stats(run.fills, run.trades, run.rejected_orders),
        "agents": agent_stats(run.agent_signals, run.close, ts, run.trades, weights=run.agent_weights),
        "time": time_analysis(eq, ts, initial),
    }
