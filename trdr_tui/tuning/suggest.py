"""`trdr optimize suggest` (PRD §13.5 `suggestParameterUpdates`): what is not working in a backtest,
which parameter is related, a suggested value and the reasoning.

Rules, each on the backtest's own results (a session's `results` and `parameters`):

| issue                                         | parameter                | suggestion                      |
|-----------------------------------------------|--------------------------|---------------------------------|
| fees above half of gross profit               | grid.min_spacing         | 1.5 × (2 × taker + 2 × half-spread) |
| max drawdown above risk.max_drawdown          | risk.max_position (stocked grid), else sizing.base_fraction | × max_drawdown / drawdown |
| win rate below 40 %                           | trailing.distance        | × 1.25 (capped at max_distance) |
| profit factor below 1 with many stop exits... | risk.stop_loss           | 2 × grid spacing (out of the grid) |
| fewer than 10 round trips a year              | agents.min_confidence    | − 0.05 (floor 0.5)              |

Confidence is the share of the rules that had the data they need; a backtest is recommended when
more than two suggestions apply (PRD).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def suggest_updates(parameters: Mapping[str, Any], results: Mapping[str, Any]) -> dict[str, Any]:
    """{"suggestions": [{issue, parameter, current_value, suggested_value, reasoning}], "confidence",
    "backtest_recommended"}."""
    out: list[dict[str, Any]] = []
    checked = 0
    rules = 5
    fees = _num(results.get("fees_paid"))
    final, initial = _num(results.get("final_equity")), _num(results.get("initial_capital"))
    rates = results.get("fee_rates") or {}
    taker = _num(rates.get("taker"))
    half = _num(parameters.get("execution.half_spread")) or 0.0
    if fees is not None and final is not None and initial is not None and taker is not None:
        checked += 1
        gross = final - initial + fees
        if fees > 0.5 * max(gross, 0.0):
            share = "more than all" if gross <= 0 else f"{fees / gross:.0%}"
            target = round(1.5 * (2 * taker + 2 * half), 4)
            out.append({"issue": f"fees took {share} of the gross profit ({fees:,.2f})",
                        "parameter": "grid.min_spacing", "current_value": parameters.get("grid.min_spacing"),
                        "suggested_value": max(target, _num(parameters.get("grid.min_spacing")) or 0.0),
                        "reasoning": f"a round trip costs {2 * taker + 2 * half:.2%} at this tier; a spacing "
                                     "of 1.5 × that leaves each trip a profit after fees"})
    dd, max_dd = _num(results.get("max_drawdown")), _num(parameters.get("risk.max_drawdown"))
    size_key = "risk.max_position" if parameters.get("grid.seed_inventory") is True else "sizing.base_fraction"
    size = _num(parameters.get(size_key))  # the position size in force (trading.grid.level_fraction)
    if dd is not None and max_dd is not None and size is not None:
        checked += 1
        if dd > max_dd:
            out.append({"issue": f"max drawdown {dd:.1%} exceeded the limit {max_dd:.1%}",
                        "parameter": size_key, "current_value": size,
                        "suggested_value": round(size * max_dd / dd, 4),
                        "reasoning": "smaller positions scale the drawdown down in proportion"})
    win = _num(results.get("win_rate"))
    trail = _num(parameters.get("trailing.distance"))
    if win is not None and trail is not None:
        checked += 1
        if win < 0.4:
            cap = _num(parameters.get("trailing.max_distance")) or 0.1
            out.append({"issue": f"only {win:.0%} of round trips won", "parameter": "trailing.distance",
                        "current_value": trail, "suggested_value": round(min(trail * 1.25, cap), 4),
                        "reasoning": "a tight trail fires on noise; a wider one lets a swing develop"})
    pf, stop = _num(results.get("profit_factor")), _num(parameters.get("risk.stop_loss"))
    spacing = _num(parameters.get("grid.spacing"))
    if pf is not None and stop is not None and spacing is not None:
        checked += 1
        if pf < 1.0 and 0 < stop < 2 * spacing:
            out.append({"issue": f"profit factor {pf:.2f} with a stop-loss ({stop:.1%}) inside the grid",
                        "parameter": "risk.stop_loss", "current_value": stop,
                        "suggested_value": round(2 * spacing, 4),
                        "reasoning": "a stop closer than two grid steps cuts lots the grid would sell at a profit"})
    trips, bars = _num(results.get("round_trips")), _num(results.get("bars"))
    conf = _num(parameters.get("agents.min_confidence"))
    if trips is not None and bars and conf is not None:
        checked += 1
        per_year = trips / bars * 24 * 365 if results.get("timeframe") == "1h" else None
        if per_year is not None and per_year < 10:
            out.append({"issue": f"{per_year:.1f} round trips a year: too few to learn from",
                        "parameter": "agents.min_confidence", "current_value": conf,
                        "suggested_value": round(max(conf - 0.05, 0.5), 2),
                        "reasoning": "a lower threshold lets more of the panel's signals through"})
    return {"suggestions": out, "confidence": checked / rules, "backtest_recommended": len(out) > 2}
