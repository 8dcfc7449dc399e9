"""Figures of temporal attention and of what it is compared with: each joint's T x T matrix (alone and as
small multiples), the strongest frame pairs as arcs over the clip, lag profiles, periods per joint, and the
rotation curves and jitter of the image-only and temporal models.

A temporal matrix figure can carry frame thumbnails that its HTML shows for the two frames under the mouse
(``hover_frames`` of :func:`viz.figures.export.save_figure`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from int_model.constants import SMPL_JOINT_NAMES
from viz.figures.images import image_trace
from viz.figures.style import SERIES_COLOURS, TILE_PX, TITLE_PX
from analysis.periodicity import PeriodEstimate
from analysis.temporal import FramePair, JointAngleCurves

__all__ = [
    "frame_pairs_figure",
    "jitter_figure",
    "lag_profile_figure",
    "periodicity_figure",
    "rotation_curves_figure",
    "temporal_grid_figure",
    "temporal_matrix_figure",
]

#: One colour per joint (24), for lines and arcs.
JOINT_PALETTE: tuple[str, ...] = tuple(plotly.colors.qualitative.Dark24)
#: Colour scale of attention heat maps (sequential).
ATTENTION_SCALE = "Inferno"
#: Percentiles of the values that span a heat map's colour scale (robust to the diagonal's peak).
HEAT_PERCENTILES = (1.0, 99.0)
#: Distinct colours for the few joints drawn as arcs.
PAIR_PALETTE: tuple[str, ...] = tuple(plotly.colors.qualitative.D3)
#: Pixels per frame of the pairs strip, and its width limits.
PAIR_FRAME_PX = 36
PAIR_WIDTH_RANGE = (900, 2400)
#: Arc heights in thumbnail heights: the shortest arc's, plus this much more for an arc across the whole clip.
ARC_MIN_LIFT = 0.4
ARC_EXTRA_LIFT = 2.6


def _joint_colour(index: int) -> str:
    return JOINT_PALETTE[index % len(JOINT_PALETTE)]


def _frame_labels(count: int, frame_numbers: Sequence[int] | None) -> np.ndarray:
    numbers = np.arange(count) if frame_numbers is None else np.asarray(frame_numbers, dtype=np.int64)
    if numbers.shape != (count,):
        raise ValueError(f"expected {count} frame numbers, got {numbers.shape}")
    return numbers


def _pair_markers(pairs: Sequence[FramePair], numbers: np.ndarray, *, name: str) -> go.Scatter:
    return go.Scatter(
        x=[numbers[p.key] for p in pairs], y=[numbers[p.query] for p in pairs], mode="markers+text",
        text=[str(rank) for rank in range(1, len(pairs) + 1)], textposition="top center",
        textfont=dict(color="#00e5ff", size=10), name=name, showlegend=False,
        marker=dict(symbol="circle-open", size=10, color="#00e5ff", line=dict(width=2)),
        customdata=[[p.weight, p.lag] for p in pairs],
        hovertemplate="query %{y} -> key %{x}<br>attention %{customdata[0]:.3f}, %{customdata[1]} frames apart"
                      "<extra>strong pair</extra>",
    )


def temporal_matrix_figure(matrix: np.ndarray, *, pairs: Sequence[FramePair] = (),
                           frame_numbers: Sequence[int] | None = None,
                           title: str = "Temporal attention") -> go.Figure:
    """One joint's (T, T) temporal attention: query frame (rows) by key frame (columns), with the strongest
    off-diagonal pairs circled and numbered. Hover names both frames (their thumbnails too in the HTML of
    :func:`viz.figures.export.save_figure` with ``hover_frames``).

    Args:
        matrix: (T, T) row-stochastic.
        pairs: from :func:`analysis.temporal.strongest_pairs` (indices into the matrix).
        frame_numbers: (T,) the frames' numbers in the clip (default 0..T-1).
    """
    a = np.asarray(matrix, dtype=np.float64)
    numbers = _frame_labels(len(a), frame_numbers)
    low, high = _heat_range(a)
    fig = go.Figure(go.Heatmap(z=a, x=numbers, y=numbers, colorscale=ATTENTION_SCALE, zmin=low, zmax=high,
                               colorbar=dict(title="attention"),
                               hovertemplate="query frame %{y} -> key frame %{x}<br>attention %{z:.4f}"
                                             "<extra></extra>"))
    if pairs:
        fig.add_trace(_pair_markers(pairs, numbers, name="strongest pairs"))
    span = [numbers[0] - 0.5, numbers[-1] + 0.5]
    fig.update_xaxes(title="key frame", range=span, constrain="domain")
    fig.update_yaxes(title="query frame", range=span[::-1], scaleanchor="x", constrain="domain")
    fig.update_layout(title=dict(text=f"{title}<br><sup>colours span the 1st-99th percentile</sup>"),
                      width=640, height=600)
    return fig


def temporal_grid_figure(matrices: np.ndarray, *, joint_names: Sequence[str] = SMPL_JOINT_NAMES,
                         pairs: Sequence[Sequence[FramePair]] | None = None,
                         frame_numbers: Sequence[int] | None = None, columns: int = 6,
                         shared_scale: bool = True,
                         title: str = "Temporal attention per joint") -> go.Figure:
    """Small multiples: each joint's (T, T) temporal attention, on one colour scale (its 99th percentile)
    unless ``shared_scale`` is False, with its strongest pairs circled.

    Args:
        matrices: (J, T, T).
        pairs: per joint, from :func:`analysis.temporal.strongest_pairs`; None draws none.
    """
    m = np.asarray(matrices, dtype=np.float64)
    if m.ndim != 3 or m.shape[1] != m.shape[2]:
        raise ValueError(f"expected (J, T, T), got {m.shape}")
    count, t = m.shape[:2]
    numbers = _frame_labels(t, frame_numbers)
    rows = math.ceil(count / columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=list(joint_names[:count]),
                        horizontal_spacing=0.025, vertical_spacing=0.25 / rows)
    shared = _heat_range(m) if shared_scale else None
    for j in range(count):
        row, col = j // columns + 1, j % columns + 1
        low, high = shared if shared is not None else _heat_range(m[j])
        fig.add_trace(go.Heatmap(z=m[j], x=numbers, y=numbers, colorscale=ATTENTION_SCALE, zmin=low,
                                 zmax=high, showscale=(j == 0 and shared_scale),
                                 hovertemplate=f"{joint_names[j]}<br>query frame %{{y}} -> key frame %{{x}}"
                                               "<br>attention %{z:.4f}<extra></extra>"),
                      row=row, col=col)
        if pairs is not None and pairs[j]:
            fig.add_trace(_pair_markers(pairs[j][:3], numbers, name=joint_names[j]), row=row, col=col)
    span = [numbers[0] - 0.5, numbers[-1] + 0.5]
    fig.update_xaxes(showticklabels=False, range=span, constrain="domain")
    fig.update_yaxes(showticklabels=False, range=span[::-1], constrain="domain")
    for index in range(count):
        suffix = "" if index == 0 else str(index + 1)
        fig.layout[f"yaxis{suffix}"].scaleanchor = f"x{suffix}"
    for annotation in fig.layout.annotations:
        annotation.font = dict(size=12)
    scale_note = "one colour scale" if shared_scale else "each joint on its own colour scale"
    fig.update_layout(title=dict(text=f"{title}<br><sup>query frame (down) by key frame (across); {scale_note}, "
                                      "1st-99th percentile; circles: strongest pairs</sup>"),
                      width=columns * TILE_PX, height=rows * (TILE_PX + 20) + TITLE_PX,
                      margin=dict(l=10, r=10, t=TITLE_PX, b=10), showlegend=False)
    return fig


def _heat_range(values: np.ndarray) -> tuple[float, float]:
    """Colour-scale limits: the :data:`HEAT_PERCENTILES` of the values (widened if they coincide)."""
    low, high = (float(v) for v in np.percentile(values, HEAT_PERCENTILES))
    if high <= low:
        low, high = float(values.min()), float(values.max()) + 1e-12
    return low, high


def frame_pairs_figure(thumbnails: np.ndarray, pairs: Mapping[str, Sequence[FramePair]], *,
                       frame_numbers: Sequence[int] | None = None,
                       title: str = "Strongest frame pairs per joint") -> go.Figure:
    """The clip as a strip of frames with arcs joining the frames each joint attends across (the paper's
    coloured lines): one colour per joint, line width by attention; click a legend entry to hide a joint.

    Args:
        thumbnails: (T, h, w, 3) uint8 frames (or crops) of the clip, small.
        pairs: joint name -> its strongest pairs (indices into the clip).
        frame_numbers: (T,) numbers shown under the frames (default 0..T-1).
    """
    thumbs = np.asarray(thumbnails)
    if thumbs.ndim != 4 or thumbs.shape[3] != 3 or thumbs.dtype != np.uint8:
        raise ValueError(f"thumbnails must be (T, h, w, 3) uint8, got {thumbs.shape} {thumbs.dtype}")
    t, h, w = thumbs.shape[:3]
    numbers = _frame_labels(t, frame_numbers)
    strip = np.concatenate(list(thumbs), axis=1)
    fig = go.Figure(image_trace(strip))
    centres = (np.arange(t) + 0.5) * w - 0.5
    weights = [p.weight for joint_pairs in pairs.values() for p in joint_pairs]
    top = max(weights) if weights else 1.0
    arc_base = -0.06 * h
    names = list(pairs)
    for joint_name in names:
        colour = PAIR_PALETTE[names.index(joint_name) % len(PAIR_PALETTE)]
        first = True
        for p in pairs[joint_name]:
            x0, x1 = centres[p.query], centres[p.key]
            lift = h * (ARC_MIN_LIFT + ARC_EXTRA_LIFT * abs(x1 - x0) / (t * w))
            s = np.linspace(0.0, 1.0, 32)
            xs = x0 + (x1 - x0) * s
            ys = arc_base - lift * 4.0 * s * (1.0 - s)
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines", line=dict(color=colour, width=1.0 + 5.0 * p.weight / top),
                name=joint_name, legendgroup=joint_name, showlegend=first,
                hovertemplate=f"{joint_name}: frame {numbers[p.query]} -> {numbers[p.key]}, "
                              f"attention {p.weight:.3f}<extra></extra>"))
            first = False
    tick_step = max(1, t // 16)
    fig.update_xaxes(range=[-0.5, t * w - 0.5], tickmode="array", tickvals=centres[::tick_step],
                     ticktext=[str(n) for n in numbers[::tick_step]], title="frame", showgrid=False, zeroline=False)
    max_lift = h * (ARC_MIN_LIFT + ARC_EXTRA_LIFT)
    fig.update_yaxes(range=[h - 0.5, arc_base - max_lift - 0.05 * h], visible=False, scaleanchor="x")
    width = int(np.clip(t * PAIR_FRAME_PX, *PAIR_WIDTH_RANGE))
    fig.update_layout(title=title, width=width, height=int(width * (h + max_lift) / (t * w)) + 160,
                      margin=dict(l=20, r=20, t=TITLE_PX, b=50), plot_bgcolor="white",
                      legend=dict(orientation="h", y=-0.25))
    return fig


def lag_profile_figure(profiles: np.ndarray, *, joint_names: Sequence[str] = SMPL_JOINT_NAMES,
                       periods: Sequence[float | None] | None = None,
                       title: str = "Mean temporal attention by frame distance") -> go.Figure:
    """Each joint's lag profile (:func:`analysis.temporal.lag_profile`), one line per joint (click the legend to
    pick), with the joint's estimated period marked where there is one.

    Args:
        profiles: (J, T) mean attention at frame distance 0..T-1.
        periods: (J,) period in frames or None per joint.
    """
    p = np.asarray(profiles, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"expected (J, T), got {p.shape}")
    fig = go.Figure()
    lags = np.arange(p.shape[1])
    for j in range(p.shape[0]):
        colour = _joint_colour(j)
        fig.add_trace(go.Scatter(x=lags, y=p[j], mode="lines", name=joint_names[j], legendgroup=joint_names[j],
                                 line=dict(color=colour, width=1.5),
                                 hovertemplate=f"{joint_names[j]}<br>%{{x}} frames apart: %{{y:.4f}}<extra></extra>"))
        period = None if periods is None else periods[j]
        if period is not None and np.isfinite(period):
            fig.add_trace(go.Scatter(x=[period], y=[float(np.interp(period, lags, p[j]))], mode="markers",
                                     marker=dict(color=colour, size=9, symbol="diamond"), legendgroup=joint_names[j],
                                     showlegend=False,
                                     hovertemplate=f"{joint_names[j]}: period {period:.2f} frames<extra></extra>"))
    fig.update_xaxes(title="frame distance |i - j|")
    fig.update_yaxes(title="mean attention")
    fig.update_layout(title=title, width=1000, height=560)
    return fig


def periodicity_figure(attention: Sequence[PeriodEstimate], rotation: Sequence[PeriodEstimate], *,
                       joint_names: Sequence[str] = SMPL_JOINT_NAMES, known_period: float | None = None,
                       title: str = "Dominant period per joint") -> go.Figure:
    """Each joint's period from its temporal attention and from its rotation over time, side by side.

    A joint found non-periodic is drawn as an open marker on the axis (period 0) whose hover says why;
    marker size grows with the estimate's confidence. ``known_period`` (frames), e.g. of a synthetic clip,
    is drawn as a dashed line.
    """
    if len(attention) != len(joint_names) or len(rotation) != len(joint_names):
        raise ValueError("one estimate per joint is needed for both sources")
    fig = go.Figure()
    names = list(joint_names)
    for offset, (label, estimates, colour, symbol) in enumerate((
            ("from attention", attention, SERIES_COLOURS[1], "circle"),
            ("from rotation", rotation, SERIES_COLOURS[0], "square"))):
        y = [e.period if e.is_periodic else 0.0 for e in estimates]
        text = [(f"{e.period:.2f} frames, confidence {e.confidence:.2f}" if e.is_periodic
                 else f"not periodic: {e.reason}") for e in estimates]
        symbols = [symbol if e.is_periodic else f"{symbol}-open" for e in estimates]
        sizes = [8 + 10 * e.confidence if e.is_periodic else 9 for e in estimates]
        fig.add_trace(go.Scatter(x=names, y=y, mode="markers", name=label, text=text,
                                 marker=dict(color=colour, symbol=symbols, size=sizes, line=dict(width=1.5,
                                                                                                 color=colour)),
                                 offsetgroup=str(offset),
                                 hovertemplate="%{x}<br>%{text}<extra>" + label + "</extra>"))
    if known_period is not None:
        fig.add_trace(go.Scatter(x=[names[0], names[-1]], y=[known_period, known_period], mode="lines",
                                 line=dict(color="black", dash="dash", width=1), name=f"known period "
                                                                                     f"{known_period:.1f}"))
    fig.update_layout(title=dict(text=f"{title}<br><sup>open markers at 0: no period found (hover for the "
                                      "reason); marker size: confidence</sup>"),
                      scattermode="group", width=1100, height=520, xaxis_tickangle=-45,
                      yaxis_title="period (frames)", legend=dict(orientation="h", y=1.1))
    fig.update_yaxes(rangemode="tozero")
    return fig


def rotation_curves_figure(curves: Mapping[str, JointAngleCurves], *, joints: Sequence[int],
                           joint_names: Sequence[str] = SMPL_JOINT_NAMES,
                           frame_numbers: Sequence[int] | None = None,
                           title: str = "Joint rotation over time and its acceleration") -> go.Figure:
    """For each chosen joint, its rotation angle over time (left) and the acceleration magnitude (right),
    one line per model (e.g. "image-only" and "temporal"); jitter shows as spikes of acceleration.

    Args:
        curves: label -> :class:`analysis.temporal.JointAngleCurves` of the same clip (use ``like=`` so that the
            curves share their reference rotations and axes).
        joints: joint indices to show, one row each.
    """
    labels = list(curves)
    if not labels:
        raise ValueError("at least one set of curves is needed")
    t = curves[labels[0]].angle_deg.shape[0]
    numbers = _frame_labels(t, frame_numbers)
    titles = [text for j in joints for text in (f"{joint_names[j]}: angle (deg)",
                                                f"{joint_names[j]}: acceleration (deg/frame^2)")]
    fig = make_subplots(rows=len(joints), cols=2, subplot_titles=titles, shared_xaxes=True,
                        horizontal_spacing=0.08, vertical_spacing=0.35 / max(len(joints), 1))
    for index, label in enumerate(labels):
        c = curves[label]
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        for row, j in enumerate(joints, start=1):
            first = row == 1
            fig.add_trace(go.Scatter(x=numbers, y=c.angle_deg[:, j], mode="lines", name=label, legendgroup=label,
                                     showlegend=first, line=dict(color=colour, width=1.5),
                                     hovertemplate=f"{label}<br>frame %{{x}}: %{{y:.1f}} deg<extra></extra>"),
                          row=row, col=1)
            fig.add_trace(go.Scatter(x=numbers[1:-1], y=c.acceleration_deg[:, j], mode="lines", name=label,
                                     legendgroup=label, showlegend=False, line=dict(color=colour, width=1.2),
                                     hovertemplate=f"{label}<br>frame %{{x}}: %{{y:.2f}} deg/frame^2"
                                                   "<extra></extra>"),
                          row=row, col=2)
    for annotation in fig.layout.annotations:
        annotation.font = dict(size=12)
    fig.update_xaxes(title="frame", row=len(joints))
    fig.update_layout(title=title, width=1100, height=190 * len(joints) + 140,
                      legend=dict(orientation="h", y=1.04, x=0.5, xanchor="center"),
                      margin=dict(t=TITLE_PX + 30))
    return fig


def jitter_figure(curves: Mapping[str, JointAngleCurves], *, joint_names: Sequence[str] = SMPL_JOINT_NAMES,
                  title: str = "Mean acceleration per joint (jitter)") -> go.Figure:
    """Each joint's mean acceleration magnitude (deg / frame^2) for each model, as grouped bars."""
    fig = go.Figure()
    for index, (label, c) in enumerate(curves.items()):
        fig.add_trace(go.Bar(x=list(joint_names), y=c.mean_abs_acceleration, name=label,
                             marker_color=SERIES_COLOURS[index % len(SERIES_COLOURS)],
                             hovertemplate="%{x}<br>%{y:.2f} deg/frame^2<extra>" + label + "</extra>"))
    fig.update_layout(title=title, barmode="group", width=1100, height=460, xaxis_tickangle=-45,
                      yaxis_title="mean |acceleration| (deg/frame^2)", legend=dict(orientation="h", y=1.08))
    return fig
