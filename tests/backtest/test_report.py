"""Reports: the charts carry the run's numbers; Markdown and HTML hold every section; bad paths refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trdr_tui.backtest.report import _charts, fmt, html_report, markdown_report, monthly_table, write_report
from trdr_tui.core.errors import ConfigError

DAY = 86_400_000_000_000
T0 = 1_514_764_800 * 1_000_000_000  # 2018-01-01


def sample() -> tuple[dict[str, Any], dict[str, Any]]:
    n = 90
    ts = (T0 + DAY * np.arange(n)).tolist()
    eq = (10_000 * 1.002 ** np.arange(n)).tolist()
    bh = (10_000 * 1.001 ** np.arange(n)).tolist()
    results = {
        "session_id": "bt-123", "symbol": "BTC-USD", "timeframe": "1d", "start": "2018-01-01T00:00:00Z",
        "end": "2018-03-31T00:00:00Z", "bars": n, "initial_capital": 10_000.0, "final_equity": eq[-1],
        "total_return": eq[-1] / 10_000 - 1, "sharpe": 2.5, "max_drawdown": 0.0, "fills": 4, "fees_paid": 12.0,
        "baselines": {"buy_and_hold": {"total_return": bh[-1] / 10_000 - 1, "final_equity": bh[-1]},
                      "fixed_grid": {"total_return": 0.01, "final_equity": 10_100.0}},
        "stats": {
            "performance": {"total_return": eq[-1] / 10_000 - 1, "win_rate": 0.5},
            "risk": {"var_95": -0.01, "beta": None},
            "trades": {"count": 2},
            "execution": {"total_fees": 12.0},
            "agents": {"momentum": {"signal_count": 10, "accuracy": 0.6, "avg_confidence": 0.7,
                                    "profit_contribution": 55.0},
                       "regime": {"signal_count": 3, "accuracy": 0.3, "avg_confidence": 0.5,
                                  "profit_contribution": -5.0}},
            "time": {"best_hour": 0, "worst_hour": 0, "best_weekday": "Monday", "worst_weekday": "Friday",
                     "monthly_returns": {"2018-01": 0.05, "2018-02": -0.02, "2018-03": 0.04},
                     "rolling": {"30d": {"mean": 0.06, "min": 0.05, "max": 0.07, "share_positive": 1.0}}},
        },
        "parameters": {"grid.levels": 10, "preset": "simple-trailing"},
        "monte_carlo": {"paths": 10_000, "trades_per_path": 2, "median_return": 0.1, "probability_of_loss": 0.2},
        "walk_forward": {"robustness_score": 0.75, "windows": [
            {"index": 0, "test_start": "2018-02-01", "test_end": "2018-03-01", "train_return": 0.1,
             "test_return": 0.05}]},
    }
    curves = {"ts": ts, "equity": eq, "buy_and_hold": bh, "fixed_grid": bh, "trade_returns": [0.02, -0.01]}
    return results, curves


def test_charts_show_the_run() -> None:
    results, curves = sample()
    charts = dict(_charts(results, curves))
    assert list(charts) == ["equity", "drawdown", "monthly", "trades", "agents"]
    eq = charts["equity"]
    assert [t.name for t in eq.data] == ["strategy", "buy-and-hold", "fixed grid"]
    np.testing.assert_allclose(eq.data[0].y, curves["equity"])
    assert eq.data[0].x[0] == "2018-01-01T00:00"
    assert max(charts["drawdown"].data[0].y) == 0.0  # a rising curve never draws down
    heat = charts["monthly"].data[0]
    assert list(heat.y) == ["2018"] and list(heat.z[0][:3]) == [5.0, -2.0, 4.0]
    assert list(charts["agents"].data[0].y) == [55.0, -5.0]
    np.testing.assert_allclose(charts["trades"].data[0].x, [2.0, -1.0])


def test_markdown_and_html_hold_every_section(tmp_path: Path) -> None:
    results, curves = sample()
    md = markdown_report(results)
    for heading in ("## Strategy vs baselines", "## Performance", "## Risk", "## Agents", "### Monthly returns",
                    "### Rolling returns", "## Monte Carlo", "## Walk-forward", "## Parameters"):
        assert heading in md
    assert "The strategy beat buy-and-hold" in md
    page = html_report(results, curves)
    assert "<h2>Parameters</h2>" in page and "<td>grid.levels</td>" in page
    assert "<h2>Agents</h2>" in page and "<h2>Walk-forward</h2>" in page and "Robustness score: 0.75" in page
    assert page.count("Plotly.newPlot") == 5
    out = write_report(tmp_path / "r.md", results, curves)
    assert out.read_text(encoding="utf-8") == md
    with pytest.raises(ConfigError, match=r"FILE\.html or FILE\.md"):
        write_report(tmp_path / "r.pdf", results, curves)
    with pytest.raises(ConfigError, match="does not exist"):
        write_report(tmp_path / "missing" / "r.md", results, curves)
    assert not (tmp_path / "r.pdf").exists()


def test_formatting_and_monthly_table() -> None:
    assert fmt(None) == "—" and fmt(float("nan")) == "—"
    assert fmt(0.1234, "pct") == "12.34 %"
    assert fmt(1234.5, "money") == "1,234.50"
    years, grid = monthly_table({"2018-11": 0.1, "2019-01": -0.2})
    assert years == [2018, 2019]
    assert grid[0, 10] == 0.1 and grid[1, 0] == -0.2 and np.isnan(grid[0, 0])
