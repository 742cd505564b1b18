"""The optimization report (PRD §13.5): parameter importance, sensitivity and convergence plots.

One self-contained HTML file (plotly.js embedded, nothing fetched). Importance is Optuna's
`get_param_importances` (fANOVA by default) on the recorded trials rebuilt into an in-memory study;
sensitivity plots each parameter's value against the trial's score; convergence plots every
trial's score and the best score so far.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from trdr_tui.core.errors import ConfigError
from trdr_tui.store.tuning import TrialRecord


def importances(trials: Sequence[TrialRecord]) -> dict[str, float]:
    """Optuna's parameter importances of the completed trials' first objective ({} below 2 trials)."""
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" on the terminal
    done = [t for t in trials if t.state == "COMPLETE" and t.value is not None and t.parameters]
    keys = sorted({k for t in done for k in t.parameters})
    if len(done) < 2 or not keys:
        return {}
    dists = {k: FloatDistribution(min(float(t.parameters[k]) for t in done if k in t.parameters),
                                  max(float(t.parameters[k]) for t in done if k in t.parameters) + 1e-12)
             for k in keys}
    study = optuna.create_study(direction="maximize")
    study.add_trials([optuna.trial.create_trial(params={k: float(v) for k, v in t.parameters.items()},
                                                distributions={k: dists[k] for k in t.parameters}, value=t.value)
                      for t in done if set(t.parameters) == set(keys)])
    if len(study.trials) < 2:
        return {}
    out: dict[str, float] = optuna.importance.get_param_importances(study)
    return out


def write_report(path: str | Path, trials: Sequence[TrialRecord], *, title: str) -> Path:
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs
    from plotly.subplots import make_subplots

    done = [t for t in trials if t.value is not None]
    if not done:
        raise ConfigError("the optimization has no scored trial to plot")
    layout = {"template": "plotly_white", "height": 420, "margin": {"l": 60, "r": 20, "t": 50, "b": 40}}
    figs = []
    conv = go.Figure(layout={**layout, "title": "convergence: score per trial and best so far"})
    conv.add_scatter(x=[t.number for t in done], y=[t.value for t in done], mode="markers", name="trial")
    conv.add_scatter(x=[t.number for t in trials], y=[t.best_so_far for t in trials], mode="lines",
                     name="best so far", line={"shape": "hv"})
    figs.append(conv)
    imp = importances(trials)
    if imp:
        names = list(imp)[::-1]
        figs.append(go.Figure(go.Bar(x=[imp[n] for n in names], y=names, orientation="h"),
                              layout={**layout, "title": "parameter importance (fANOVA)"}))
    keys = sorted({k for t in done for k in t.parameters})
    if keys:
        cols = min(3, len(keys))
        rows = -(-len(keys) // cols)
        sens = make_subplots(rows=rows, cols=cols, subplot_titles=keys)
        for i, k in enumerate(keys):
            pts = [(t.parameters[k], t.value) for t in done if k in t.parameters]
            sens.add_scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="markers", showlegend=False,
                             row=i // cols + 1, col=i % cols + 1)
        sens.update_layout(template="plotly_white", height=260 * rows, title="sensitivity: score against each parameter")
        figs.append(sens)
    best = max(done, key=lambda t: t.value if t.value is not None else float("-inf"))
    rows_html = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in best.parameters.items())
    parts = [fig.to_html(include_plotlyjs=False, full_html=False, div_id=f"chart{i}") for i, fig in enumerate(figs)]
    text = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{len(trials)} trials; best score {best.value:+.4f} "
            f"(trial {best.number})</p><table>{rows_html}</table>{''.join(parts)}</body></html>")
    out = Path(path)
    out.write_text(text, encoding="utf-8")
    return out
