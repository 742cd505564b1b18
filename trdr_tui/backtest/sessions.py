"""Backtest sessions (PRD §13.1): each run stored with its parameters, data range, status and results.

A session is created `running` before the engine starts, and becomes `completed` (with its results,
in one transaction) or `failed` (with the error: `ended_on_error` covers every exception and Ctrl-C; a
process killed outside Python is found by the next read-write open, `store.sessions.mark_abandoned`).
`compare` lines sessions up side by side.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb

from trdr_tui.core.errors import TrdrError
from trdr_tui.core.stop_signals import interrupted_by
from trdr_tui.store.db import database_error
from trdr_tui.store.sessions import SessionRecord, SessionRepository

# (label, key, kind) rows of `trdr sessions compare`
COMPARE_ROWS: tuple[tuple[str, str, str], ...] = (
    ("name", "name", "str"),
    ("data", "range", "str"),
    ("strategy", "strategy", "str"),
    ("bars", "bars", "int"),
    ("fills", "fills", "int"),
    ("round trips", "round_trips", "int"),
    ("final equity", "final_equity", "money"),
    ("total return", "total_return", "pct"),
    ("annualized return", "annualized_return", "pct"),
    ("Sharpe", "sharpe", "num"),
    ("Sortino", "sortino", "num"),
    ("Calmar", "calmar", "num"),
    ("max drawdown", "max_drawdown", "pct"),
    ("win rate", "win_rate", "pct"),
    ("profit factor", "profit_factor", "num"),
    ("fees paid", "fees_paid", "money"),
    ("buy-and-hold return", "bh_return", "pct"),
    ("fixed grid return", "grid_return", "pct"),
    ("MC median return", "mc_median", "pct"),
    ("MC P(loss)", "mc_ploss", "pct"),
)


def new_session_id() -> str:
    return "bt-" + secrets.token_hex(5)


def start_session(repo: SessionRepository, *, name: str | None, description: str | None, symbol: str,
                  timeframe: str, start_ts: int | None, end_ts: int | None, parameters: dict[str, Any],
                  parameter_version_id: str | None, now_ns: int) -> SessionRecord:
    sid = new_session_id()
    return repo.create(SessionRecord(
        id=sid, name=name or f"backtest {sid[3:]}", description=description, created_at=now_ns,
        status="running", symbol=symbol, timeframe=timeframe, start_ts=start_ts, end_ts=end_ts,
        parameters=parameters, parameter_version_id=parameter_version_id))


@contextmanager
def ended_on_error(repo: SessionRepository | None, session: SessionRecord | None) -> Iterator[None]:
    """Mark `session` failed, with the reason, when the block raises (any exception, Ctrl-C included:
    "interrupted (Ctrl-C)", also when it came inside a DuckDB query); the exception goes on. When the
    mark itself cannot be written (the disk that failed the run is still full) it is logged and the next read-write open marks the session abandoned. No-op without
    a session (`--no-session`)."""
    try:
        yield
    except BaseException as exc:
        if repo is None or session is None:
            raise
        reason = ("interrupted (Ctrl-C)" if interrupted_by(exc)  # also DuckDB's "Query interrupted"
                  else database_error(repo.store.path, exc).render() if isinstance(exc, duckdb.Error)
                  else f"{type(exc).__name__}: {exc}")
        try:
            repo.fail(session.id, reason)
        except (duckdb.Error, TrdrError) as mark:
            logging.getLogger("trdr.backtest").warning("session %s stays 'running' until the next open: %s",
                                                       session.id, mark)
        raise


def compare_values(session: SessionRecord, results: dict[str, Any] | None) -> dict[str, Any]:
    r = results or {}
    bl = r.get("baselines") or {}
    mc = r.get("monte_carlo") or {}
    out: dict[str, Any] = {k: r.get(k) for _, k, _ in COMPARE_ROWS}
    out.update(
        name=session.name,
        range=f"{(r.get('start') or '?')[:10]} → {(r.get('end') or '?')[:10]}",
        strategy=r.get("preset") or session.parameter_version_id or "config",
        bh_return=(bl.get("buy_and_hold") or {}).get("total_return"),
        grid_return=(bl.get("fixed_grid") or {}).get("total_return"),
        mc_median=mc.get("median_return"),
        mc_ploss=mc.get("probability_of_loss"),
    )
    if session.status != "completed":
        out["name"] = f"{session.name} ({session.status})"
    return out


def compare(repo: SessionRepository, idents: Sequence[str],
            fmt: Callable[[Any, str], str]) -> tuple[list[str], list[list[str]]]:
    """Header (session ids) and rows (one per metric) for a side-by-side table."""
    sessions = [repo.get(i) for i in idents]
    values = [compare_values(s, repo.results(s.id)) for s in sessions]
    header = ["", *[s.id for s in sessions]]
    rows = [[label, *[fmt(v.get(key), kind) for v in values]] for label, key, kind in COMPARE_ROWS]
    return header, rows
