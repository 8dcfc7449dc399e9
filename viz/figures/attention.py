"""Figures of image attention: every token's attention over one crop, one token's attention in the full
frame, and a token's attention beside the pixel attribution of its output."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from int_model.constants import TOKEN_NAMES
from int_model.crops import CropTransform
from viz.heatmap import heatmap_overlay
from analysis.attribution import Attribution
from viz.figures.images import check_rgb, image_trace, signed_overlay
from viz.figures.style import TILE_PX, TITLE_PX

__all__ = ["attribution_figure", "frame_attention_figure", "token_grid_figure"]

#: Marker of a joint's projected 2D position.
JOINT_MARKER = dict(symbol="x-thin", size=11, line=dict(width=3, color="#00e5ff"), color="#00e5ff")


def token_grid_figure(crop: np.ndarray, maps: np.ndarray, *, joints_px: np.ndarray | None = None,
                      names: Sequence[str] = TOKEN_NAMES, columns: int = 6,
                      title: str = "Image attention per token") -> go.Figure:
    """All independent tokens' attention over one crop: a grid of heat maps over the crop, one per token,
    labelled with the token's name, each joint token with its own projected 2D position marked.

    Args:
        crop: (S, S, 3) uint8 crop.
        maps: (K, S, S) attention per token in crop pixels (K = 26: joints, shape, camera); each is
            normalised to its own range for display.
        joints_px: (J, 2) projected joints in crop pixels (x, y), or None.
        names: K token names.
        columns: tiles per row.
    """
    img = check_rgb(crop)
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim != 3 or m.shape[1:] != img.shape[:2]:
        raise ValueError(f"maps must be (K, {img.shape[0]}, {img.shape[1]}), got {m.shape}")
    if len(names) < len(m):
        raise ValueError(f"{len(m)} maps but {len(names)} names")
    count = len(m)
    rows = math.ceil(count / columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=list(names[:count]),
                        horizontal_spacing=0.01, vertical_spacing=0.2 / rows)
    joints = None if joints_px is None else np.asarray(joints_px, dtype=np.float64)
    for index in range(count):
        row, col = index // columns + 1, index % columns + 1
        peak = np.unravel_index(np.argmax(m[index]), m[index].shape)
        fig.add_trace(image_trace(heatmap_overlay(img, m[index])), row=row, col=col)
        fig.add_trace(go.Scatter(x=[peak[1]], y=[peak[0]], mode="markers", showlegend=False,
                                 marker=dict(symbol="circle-open", size=9, color="white", line=dict(width=2)),
                                 hovertemplate=f"{names[index]}: attention peak<extra></extra>"), row=row, col=col)
        if joints is not None and index < len(joints):
            fig.add_trace(go.Scatter(x=[joints[index, 0]], y=[joints[index, 1]], mode="markers", showlegend=False,
                                     marker=JOINT_MARKER,
                                     hovertemplate=f"{names[index]}: projected joint<extra></extra>"),
                          row=row, col=col)
    size = img.shape[0]
    fig.update_xaxes(visible=False, range=[-0.5, size - 0.5])
    fig.update_yaxes(visible=False, range=[size - 0.5, -0.5], scaleanchor="x")
    for annotation in fig.layout.annotations:
        annotation.font = dict(size=12)
    fig.update_layout(title=dict(text=f"{title}<br><sup>each map on its own scale; x: the token's projected "
                                      "joint; o: the map's peak</sup>"),
                      width=columns * TILE_PX, height=rows * (TILE_PX + 22) + TITLE_PX,
                      margin=dict(l=10, r=10, t=TITLE_PX, b=10), showlegend=False)
    return fig


def frame_attention_figure(frame: np.ndarray, heat: np.ndarray, *, transform: CropTransform | None = None,
                           point: Sequence[float] | None = None,
                           title: str = "Token attention in the full frame") -> go.Figure:
    """A token's attention mapped back into the full frame (see :func:`analysis.attention.map_to_frame`).

    Args:
        frame: (H, W, 3) uint8.
        heat: (H, W) the map in frame pixels (0 outside the crop).
        transform: the crop's transform, drawn as a square; None draws none.
        point: (x, y) frame pixels of the token's joint, marked; None marks none.
    """
    img = check_rgb(frame)
    h = np.asarray(heat, dtype=np.float64)
    if h.shape != img.shape[:2]:
        raise ValueError(f"heat {h.shape} does not match the frame {img.shape[:2]}")
    fig = go.Figure(image_trace(heatmap_overlay(img, h)))
    if transform is not None:
        x0, y0 = transform.origin
        side = transform.side
        fig.add_trace(go.Scatter(x=[x0, x0 + side, x0 + side, x0, x0], y=[y0, y0, y0 + side, y0 + side, y0],
                                 mode="lines", line=dict(color="#00e5ff", width=2), name="crop",
                                 hoverinfo="skip"))
    if point is not None:
        fig.add_trace(go.Scatter(x=[point[0]], y=[point[1]], mode="markers", marker=JOINT_MARKER,
                                 name="projected joint"))
    height, width = img.shape[:2]
    fig.update_xaxes(visible=False, range=[-0.5, width - 0.5])
    fig.update_yaxes(visible=False, range=[height - 0.5, -0.5], scaleanchor="x")
    scale = min(900 / width, 700 / height, 2.0)
    fig.update_layout(title=title, width=int(width * scale) + 40, height=int(height * scale) + TITLE_PX + 20,
                      margin=dict(l=20, r=20, t=TITLE_PX, b=20), showlegend=False)
    return fig


def attribution_figure(crop: np.ndarray, *, attention_map: np.ndarray, attribution: Attribution,
                       joint_px: Sequence[float] | None = None, title: str | None = None) -> go.Figure:
    """The crop, a token's attention over it, and the pixel attribution of the output read from that token.

    Args:
        crop: (S, S, 3) uint8.
        attention_map: (S, S) the token's attention in crop pixels.
        attribution: from :func:`analysis.attribution.attribute` for the same crop; red raises the output, blue
            lowers it.
        joint_px: (x, y) crop pixels of the token's joint, marked on every panel; None marks none.
    """
    img = check_rgb(crop)
    a = np.asarray(attention_map, dtype=np.float64)
    if a.shape != img.shape[:2] or attribution.pixels.shape != img.shape[:2]:
        raise ValueError("attention map, attribution and crop must have the same size")
    delta_note = ("" if not np.isfinite(attribution.delta) else
                  f"; IG completeness error {attribution.delta:+.3g} of change "
                  f"{attribution.value - attribution.baseline_value:+.3g}")
    subtitles = ["crop", "attention of the token", f"attribution ({attribution.method.replace('_', ' ')})"]
    fig = make_subplots(rows=1, cols=3, subplot_titles=subtitles, horizontal_spacing=0.02)
    panels = (img, heatmap_overlay(img, a), signed_overlay(img, attribution.pixels))
    for col, panel in enumerate(panels, start=1):
        fig.add_trace(image_trace(panel), row=1, col=col)
        if joint_px is not None:
            fig.add_trace(go.Scatter(x=[joint_px[0]], y=[joint_px[1]], mode="markers", marker=JOINT_MARKER,
                                     hovertemplate="projected joint<extra></extra>"), row=1, col=col)
    size = img.shape[0]
    fig.update_xaxes(visible=False, range=[-0.5, size - 0.5])
    fig.update_yaxes(visible=False, range=[size - 0.5, -0.5], scaleanchor="x")
    heading = title or f"{attribution.target.label}: value {attribution.value:.3g}"
    fig.update_layout(title=dict(text=f"{heading}<br><sup>red raises the output, blue lowers it{delta_note}</sup>"),
                      width=3 * 300, height=300 + TITLE_PX + 30, margin=dict(l=10, r=10, t=TITLE_PX + 20, b=10),
                      showlegend=False)
    return fig
