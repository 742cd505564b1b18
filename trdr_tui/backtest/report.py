"""Backtest reports: Markdown, and one self-contained HTML file with plotly charts.

Both are built from what a session stores (its results and curves), so a report can be written
right after a run or later from `trdr sessions show ID --report FILE`. The HTML embeds plotly.js
inline: it opens offline, with nothing fetched from the network.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trdr_tui.core.errors import ConfigError

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# (label, key, kind) for the headline comparison; kind: pct | num | money | days | int
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("Final equity", "final_equity", "money"),
    ("Total return", "total_return", "pct"),
    ("Annualized return", "annualized_return", "pct"),
    ("Sharpe", "sharpe", "num"),
    ("Sortino", "sortino", "num"),
    ("Calmar", "calmar", "num"),
    ("Max drawdown", "max_drawdown", "pct"),
    ("Max drawdown duration (days)", "max_drawdown_duration_days", "days"),
    ("Fills", "fills", "int"),
    ("Fees paid", "fees_paid", "money"),
)


def fmt(value: Any, kind: str = "num") -> str:
    """A value for a table cell; None and non-finite numbers show as '—'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, str):
        return value
    if kind == "pct":
        return f"{value * 100:,.2f} %"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "days":
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"


def _pct_kind(key: str) -> str:
    pct_words = ("return", "drawdown", "rate", "var", "deviation", "slippage", "pct", "probability", "ci95",
                 "accuracy", "share_positive", "volatility", "exposure")
    if key.endswith("_days"):
        return "days"
    if any(w in key for w in pct_words) and "count" not in key:
        return "pct"
    if key in ("total_fees", "volume", "expectancy", "largest_win", "largest_loss", "profit_contribution",
               "final_equity", "fees_paid"):
        return "money"
    return "num"


def headline_rows(results: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(label, strategy, buy-and-hold, fixed grid) rows."""
    bl = results.get("baselines") or {}
    bh, fg = bl.get("buy_and_hold") or {}, bl.get("fixed_grid") or {}
    rows = []
    for label, key, kind in HEADLINE:
        rows.append((label, fmt(results.get(key), kind), fmt(bh.get(key), kind), fmt(fg.get(key), kind)))
    return rows


def section_rows(section: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, value in section.items():
        if isinstance(value, Mapping | list):
            continue
        rows.append((key.replace("_", " "), fmt(value, _pct_kind(key))))
    return rows


def _verdict(results: Mapping[str, Any]) -> str:
    bl = results.get("baselines") or {}
    tr = results.get("total_return")
    parts = []
    for name, label in (("buy_and_hold", "buy-and-hold"), ("fixed_grid", "the fixed grid")):
        other = (bl.get(name) or {}).get("total_return")
        if tr is None or other is None:
            continue
        word = "beat" if tr > other else "trailed"
        parts.append(f"{word} {label} by {abs(tr - other) * 100:,.2f} percentage points")
    if not parts:
        return ""
    return "The strategy " + " and ".join(parts) + "."


# --- Markdown ---------------------------------------------------------------------------------------


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _title(results: Mapping[str, Any]) -> str:
    name = results.get("session_name") or results.get("session_id") or "backtest"
    return f"Backtest report — {name}"


def _subtitle(results: Mapping[str, Any]) -> str:
    what = results.get("preset") or results.get("params_version") or "configured strategy"
    return (f"{results.get('symbol', '?')} {results.get('timeframe', '?')}, {results.get('start', '?')} → "
            f"{results.get('end', '?')}, {fmt(results.get('bars'), 'int')} bars; strategy: {what}; "
            f"initial capital {fmt(results.get('initial_capital'), 'money')}")


def monthly_table(monthly: Mapping[str, float]) -> tuple[list[int], np.ndarray]:
    """Years and a years × 12 matrix of monthly returns (NaN where no data)."""
    years = sorted({int(k[:4]) for k in monthly})
    grid = np.full((len(years), 12), np.nan)
    for key, value in monthly.items():
        grid[years.index(int(key[:4])), int(key[5:7]) - 1] = value
    return years, grid


def markdown_report(results: Mapping[str, Any]) -> str:
    stats = results.get("stats") or {}
    out = [f"# {_title(results)}", "", _subtitle(results), ""]
    verdict = _verdict(results)
    if verdict:
        out += [verdict, ""]
    out += ["## Strategy vs baselines", "",
            _md_table(("", "strategy", "buy-and-hold", "fixed grid"), headline_rows(results)), ""]
    for title, key in (("Performance", "performance"), ("Risk", "risk"), ("Trades", "trades"),
                       ("Execution", "execution")):
        rows = section_rows(stats.get(key) or {})
        if rows:
            out += [f"## {title}", "", _md_table(("metric", "value"), rows), ""]
    agents = stats.get("agents") or {}
    if agents:
        agent_rows = [(str(a), fmt(m.get("signal_count"), "int"), fmt(m.get("accuracy"), "pct"),
                       fmt(m.get("avg_confidence")), fmt(m.get("profit_contribution"), "money"))
                      for a, m in agents.items()]
        out += ["## Agents", "", _md_table(("agent", "signals", "accuracy", "avg confidence",
                                            "profit contribution"), agent_rows), ""]
    time = stats.get("time") or {}
    if time:
        out += ["## Time analysis", "",
                f"Best hour (UTC): {fmt(time.get('best_hour'))}, worst hour: {fmt(time.get('worst_hour'))}; "
                f"best weekday: {fmt(time.get('best_weekday'))}, worst weekday: {fmt(time.get('worst_weekday'))}.",
                ""]
        monthly = time.get("monthly_returns") or {}
        if monthly:
            years, grid = monthly_table(monthly)
            month_rows = [[str(y)] + [fmt(None if np.isnan(v) else float(v), "pct") for v in grid[i]]
                          for i, y in enumerate(years)]
            out += ["### Monthly returns", "", _md_table(("year", *MONTHS), month_rows), ""]
        rolling = time.get("rolling") or {}
        if rolling:
            rolling_rows = [(str(w), fmt(s.get("mean"), "pct"), fmt(s.get("min"), "pct"), fmt(s.get("max"), "pct"),
                             fmt(s.get("share_positive"), "pct")) for w, s in rolling.items()]
            out += ["### Rolling returns", "",
                    _md_table(("window", "mean", "worst", "best", "positive"), rolling_rows), ""]
    mc = results.get("monte_carlo")
    if mc:
        held = (" and the position held at the end, marked to market" if mc.get("open_position_return") is not None
                else "")
        out += [f"## Monte Carlo ({fmt(mc.get('paths'), 'int')} paths × {fmt(mc.get('trades_per_path'), 'int')}"
                f" trades, bootstrap of trade returns{held})", "", _md_table(("metric", "value"), section_rows(mc)), ""]
    wf = results.get("walk_forward")
    if wf:
        from trdr_tui.backtest.walkforward import WINDOW_COLUMNS, window_rows

        out += ["## Walk-forward", "", f"Robustness score: {fmt(wf.get('robustness_score'))}. Each test window is "
                f"warmed on the {fmt(wf.get('warm_bars'), 'int')} bars before it (no orders).", "",
                _md_table(WINDOW_COLUMNS, window_rows(wf, fmt)), ""]
    params = results.get("parameters") or {}
    if params:
        rows = [(k, str(v)) for k, v in params.items()]
        out += ["## Parameters", "", _md_table(("setting", "value"), rows), ""]
    out += ["---", "Returns and drawdowns are fractions of equity shown as percentages. Ratios use daily returns "
            "annualized over 365 days; baselines run on the same bars with the same capital and fees.", ""]
    return "\n".join(out)


# --- HTML -------------------------------------------------------------------------------------------


def _dates(ts: Sequence[int]) -> list[str]:
    return [str(t) for t in np.asarray(ts, dtype=np.int64).astype("datetime64[ns]").astype("datetime64[m]")]


def _charts(results: Mapping[str, Any], curves: Mapping[str, Any]) -> list[tuple[str, Any]]:
    import plotly.graph_objects as go

    charts: list[tuple[str, Any]] = []
    layout = {"template": "plotly_white", "height": 420, "margin": {"l": 60, "r": 20, "t": 50, "b": 40}}
    ts = curves.get("ts") or []
    if ts:
        x = _dates(ts)
        fig = go.Figure()
        for key, label in (("equity", "strategy"), ("buy_and_hold", "buy-and-hold"), ("fixed_grid", "fixed grid")):
            if curves.get(key):
                fig.add_trace(go.Scattergl(x=x, y=curves[key], name=label, mode="lines"))
        fig.update_layout(title="Equity vs buy-and-hold", yaxis_title="equity", **layout)
        charts.append(("equity", fig))
        fig = go.Figure()
        initial = float(results.get("initial_capital") or 1.0)
        for key, label in (("equity", "strategy"), ("buy_and_hold", "buy-and-hold")):
            if curves.get(key):
                eq = np.asarray(curves[key], dtype=np.float64)
                peak = np.maximum.accumulate(np.concatenate(([initial], eq)))[1:]
                fig.add_trace(go.Scattergl(x=x, y=(eq / peak - 1.0) * 100, name=label, mode="lines",
                                           fill="tozeroy"))
        fig.update_layout(title="Drawdown (%)", yaxis_title="% below peak", **layout)
        charts.append(("drawdown", fig))
    monthly = ((results.get("stats") or {}).get("time") or {}).get("monthly_returns") or {}
    if monthly:
        years, grid = monthly_table(monthly)
        cells = np.round(grid * 100, 2).astype(object)
        cells[np.isnan(grid)] = None  # an empty month: a blank cell
        z = cells.tolist()
        fig = go.Figure(go.Heatmap(z=z, x=list(MONTHS), y=[str(y) for y in years], colorscale="RdYlGn",
                                   zmid=0, texttemplate="%{z}", hovertemplate="%{y} %{x}: %{z} %<extra></extra>",
                                   colorbar={"title": "%"}))
        fig.update_layout(title="Monthly returns (%)", **{**layout, "height": 120 + 45 * len(years)})
        charts.append(("monthly", fig))
    trade_returns = curves.get("trade_returns") or []
    if trade_returns:
        fig = go.Figure(go.Histogram(x=np.asarray(trade_returns) * 100, nbinsx=60, name="round trips"))
        fig.update_layout(title=f"Trade return distribution ({len(trade_returns):,} round trips)",
                          xaxis_title="net return per round trip (%)", yaxis_title="count", **layout)
        charts.append(("trades", fig))
    agents = (results.get("stats") or {}).get("agents") or {}
    if agents:
        names = list(agents)
        fig = go.Figure(go.Bar(x=names, y=[agents[a].get("profit_contribution") or 0.0 for a in names],
                               name="profit contribution",
                               text=[f"acc {fmt(agents[a].get('accuracy'), 'pct')}" for a in names]))
        fig.update_layout(title="Agent profit contribution", yaxis_title="quote currency", **layout)
        charts.append(("agents", fig))
    return charts


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}.sub{color:#555}.grid{display:flex;flex-wrap:wrap;gap:2rem}
.note{color:#666;font-size:.9rem}
"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_report(results: Mapping[str, Any], curves: Mapping[str, Any] | None) -> str:
    from plotly.offline import get_plotlyjs

    stats = results.get("stats") or {}
    parts = [f"<h1>{html.escape(_title(results))}</h1>", f"<p class='sub'>{html.escape(_subtitle(results))}</p>"]
    verdict = _verdict(results)
    if verdict:
        parts.append(f"<p><strong>{html.escape(verdict)}</strong></p>")
    parts += ["<h2>Strategy vs baselines</h2>",
              _html_table(("", "strategy", "buy-and-hold", "fixed grid"), headline_rows(results))]
    charts = _charts(results, curves or {})
    for i, (_, fig) in enumerate(charts):
        parts.append(fig.to_html(include_plotlyjs=False, full_html=False, div_id=f"chart{i}",
                                 config={"displaylogo": False}))
    if not (stats.get("agents") or {}):
        parts.append("<p class='note'>No agents took part in this run (a preset policy decided), so there is no "
                     "agent contribution chart.</p>")
    tables = []
    for title, key in (("Performance", "performance"), ("Risk", "risk"), ("Trades", "trades"),
                       ("Execution", "execution")):
        rows = section_rows(stats.get(key) or {})
        if rows:
            tables.append(f"<div><h2>{title}</h2>{_html_table(('metric', 'value'), rows)}</div>")
    parts.append("<div class='grid'>" + "".join(tables) + "</div>")
    md_tail = markdown_report(results)  # agents, time analysis, Monte Carlo, walk-forward as tables
    for title in ("## Agents", "## Time analysis", "## Monte Carlo", "## Walk-forward", "## Parameters"):
        block = _md_section(md_tail, title)
        if block:
            parts.append(_md_block_to_html(block))
    parts.append("<p class='note'>Returns and drawdowns are fractions of equity shown as percentages. Ratios use "
                 "daily returns annualized over 365 days; baselines run on the same bars with the same capital "
                 "and fees.</p>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(_title(results))}</title><style>{_CSS}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
            + "\n".join(parts) + "</body></html>")


def _md_section(md: str, heading: str) -> str:
    lines = md.splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("## "):
            inside = line.startswith(heading)
        if inside:
            if line.startswith("---"):
                break
            out.append(line)
    return "\n".join(out)


def _md_block_to_html(block: str) -> str:
    """The small Markdown subset the report itself writes: headings, paragraphs and tables."""
    out: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            out.append(_html_table(table[0], table[2:] if len(table) > 1 else []))
            table.clear()

    for line in block.splitlines():
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip("|").split("|")])
            continue
        flush()
        if line.startswith("### "):
            out.append(f"<h3>{html.escape(line[4:])}</h3>")
        elif line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)


def write_report(path: str | Path, results: Mapping[str, Any], curves: Mapping[str, Any] | None) -> Path:
    """Write `.html` or `.md` by the file's suffix; the file is written whole or not at all."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".html", ".htm"):
        text = html_report(results, curves)
    elif suffix in (".md", ".markdown"):
        text = markdown_report(results)
    else:
        raise ConfigError(f"cannot tell the report format of {p}", hint="name it FILE.html or FILE.md")
    if not p.parent.exists():
        raise ConfigError(f"report folder {p.parent} does not exist", hint="create it or choose another path")
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(p)
    return p
