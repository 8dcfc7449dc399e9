"""The training figure: the loss per step and the validation metrics per evaluation of a run."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz.figures.style import SERIES_COLOURS

__all__ = ["training_curves_figure"]

#: Validation metrics drawn by :func:`training_curves_figure` (mm), and the line style of each evaluation mode.
VAL_METRICS = ("mpjpe", "pa_mpjpe", "pve")
VAL_MODE_DASH = {"image": "solid", "temporal": "dash"}
VAL_COLOURS = (SERIES_COLOURS[0], SERIES_COLOURS[2], SERIES_COLOURS[3])  # the loss is SERIES_COLOURS[1]


def _thin(records: Sequence[Mapping[str, Any]], max_points: int) -> list[Mapping[str, Any]]:
    """Every k-th record (and the last) so that at most about ``max_points`` are drawn."""
    if len(records) <= max_points:
        return list(records)
    stride = math.ceil(len(records) / max_points)
    return [*records[::stride], *([records[-1]] if (len(records) - 1) % stride else [])]


def training_curves_figure(train: Sequence[Mapping[str, Any]], val: Sequence[Mapping[str, Any]] = (), *,
                           metrics: Sequence[str] = VAL_METRICS, title: str = "Training",
                           max_points: int = 2000) -> go.Figure:
    """The training loss per step (left, log scale) and the validation metrics per evaluation (right, mm).

    Args:
        train: a run's step records (``metrics.jsonl`` lines with ``step`` and ``loss``; ``loss`` None on a
            skipped step, which is left out).
        val: its ``"split": "val"`` records (``step``, ``mode`` image / temporal and the metrics); one line per
            metric and mode (dashed: temporal).
        metrics: which validation metrics to draw.
        max_points: longer loss curves are thinned to about this many points.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "validation (mm)"),
                        horizontal_spacing=0.1)
    steps = [r for r in train if isinstance(r.get("loss"), (int, float)) and math.isfinite(r["loss"])]
    drawn = _thin(steps, max_points)
    if drawn:
        fig.add_trace(go.Scatter(x=[r["step"] for r in drawn], y=[r["loss"] for r in drawn], mode="lines",
                                 name="loss", line=dict(color=SERIES_COLOURS[1], width=1.5),
                                 hovertemplate="step %{x}: loss %{y:.4g}<extra></extra>"), row=1, col=1)
        fig.update_yaxes(type="log", row=1, col=1)
    for index, metric in enumerate(metrics):
        for mode, dash in VAL_MODE_DASH.items():
            rows = [r for r in val if r.get("mode", "image") == mode and isinstance(r.get(metric), (int, float))]
            if not rows:
                continue
            colour = VAL_COLOURS[index % len(VAL_COLOURS)]
            fig.add_trace(go.Scatter(x=[r["step"] for r in rows], y=[r[metric] for r in rows],
                                     mode="lines+markers", name=f"{metric} ({mode})",
                                     line=dict(color=colour, dash=dash, width=1.5),
                                     customdata=[r.get("epoch") for r in rows],
                                     hovertemplate=f"{metric} ({mode})<br>step %{{x}}, epoch %{{customdata}}: "
                                                   "%{y:.1f} mm<extra></extra>"), row=1, col=2)
    if not fig.data:
        fig.add_annotation(text="no steps logged yet", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(title="step")
    fig.update_layout(title=title, height=380, legend=dict(orientation="h", y=-0.25),
                      margin=dict(l=50, r=20, t=70, b=40))
    return fig
