"""Plotly figures of what the model holds and does, and their export as interactive HTML and PNG.

Every builder here is a pure function: arrays (and the small result types of :mod:`viz.attention`,
:mod:`viz.attribution`, :mod:`viz.temporal`, :mod:`viz.periodicity`, :mod:`viz.priors`) in, a new
``plotly.graph_objects.Figure`` out; inputs are never modified. The app shows the figures as they are; the
report command writes each as HTML (hover, zoom, legend picking) and PNG.

PNG export (:func:`save_figures`): through kaleido (>= 1.0) when it is installed and finds a Chrome or
Chromium (it searches ``PATH`` for ``chromium`` and the other usual names; ``BROWSER_PATH`` names one
explicitly; it never downloads one); otherwise through a matplotlib rendering of the same figure
(:func:`render_png_matplotlib`), which draws the trace types used here (heatmap, image, scatter lines /
markers / text, bar, mesh3d), their subplot layout, axis titles and ranges, and titles. Which backend wrote a
PNG is returned.

Images inside figures (crops, frames, thumbnails) are embedded as PNG / JPEG data URIs, which keeps the HTML
small; a temporal attention figure can carry frame thumbnails that its HTML shows for the two frames under
the mouse (``hover_frames``).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from int_model.constants import SIDE_COLOURS, SMPL_JOINT_NAMES, TOKEN_NAMES, joint_side
from int_model.crops import CropTransform
from viz.attention import heatmap_overlay
from viz.attribution import Attribution
from viz.periodicity import PeriodEstimate
from viz.temporal import FramePair, JointAngleCurves

log = logging.getLogger(__name__)

__all__ = [
    "FigureFile",
    "attribution_figure",
    "decode_data_uri",
    "frame_attention_figure",
    "frame_pairs_figure",
    "image_data_uri",
    "jitter_figure",
    "kaleido_usable",
    "labelled_montage",
    "lag_profile_figure",
    "periodicity_figure",
    "prior_angles_figure",
    "prior_mesh_figure",
    "render_png_matplotlib",
    "rotation_curves_figure",
    "save_figure",
    "save_figures",
    "save_image",
    "signed_overlay",
    "similarity_figure",
    "temporal_grid_figure",
    "temporal_matrix_figure",
    "token_grid_figure",
    "training_curves_figure",
]

#: One colour per joint (24), for lines and arcs.
JOINT_PALETTE: tuple[str, ...] = tuple(plotly.colors.qualitative.Dark24)
#: Colour scales: attention (sequential), similarity and signed attributions (diverging).
ATTENTION_SCALE = "Inferno"
DIVERGING_SCALE = "RdBu_r"
#: Positive / negative attribution colours (RGB) in :func:`signed_overlay`.
POSITIVE_RGB = (220, 40, 40)
NEGATIVE_RGB = (40, 90, 230)
#: Opacity of an attribution overlay where |attribution| is largest.
SIGNED_ALPHA = 0.8
#: Percentile of |attribution| mapped to full colour (robust to a few extreme pixels).
ATTRIBUTION_PERCENTILE = 99.0
#: Marker of a joint's projected 2D position.
JOINT_MARKER = dict(symbol="x-thin", size=11, line=dict(width=3, color="#00e5ff"), color="#00e5ff")
#: Tile size in pixels of image grids, and the figure margins around them.
TILE_PX = 170
TITLE_PX = 90
#: Frames shown under the mouse in temporal HTML figures: thumbnail height in pixels.
HOVER_THUMB_PX = 96
#: JPEG quality of embedded thumbnails.
JPEG_QUALITY = 85
#: Default export size of a figure without its own layout size.
DEFAULT_SIZE = (1000, 700)
#: Colour of meshes in 3D figures.
MESH_COLOUR = "#e3b07a"
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
#: Colours of named series in curve plots (image-only, temporal, extra ones).
SERIES_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")


# ----------------------------------------------------------------------------------------------
# Images in figures
# ----------------------------------------------------------------------------------------------
def _check_rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {img.shape} {img.dtype}")
    return img


def image_data_uri(image: np.ndarray, *, fmt: str = "png") -> str:
    """(H, W, 3) uint8 RGB -> a ``data:image/...;base64,`` URI (PNG, or JPEG for ``fmt="jpeg"``)."""
    img = _check_rgb(image)
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if fmt == "png":
        ok, buf = cv2.imencode(".png", bgr)
    elif fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    else:
        raise ValueError(f"fmt must be 'png' or 'jpeg', got {fmt!r}")
    if not ok:
        raise ValueError("could not encode the image")
    return f"data:image/{fmt};base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def decode_data_uri(uri: str) -> np.ndarray:
    """A ``data:image/...;base64,`` URI -> (H, W, 3) uint8 RGB."""
    head, _, payload = uri.partition(",")
    if not head.startswith("data:image/") or ";base64" not in head:
        raise ValueError("not a base64 image data URI")
    buf = np.frombuffer(base64.b64decode(payload), dtype=np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("the data URI does not hold a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _image_trace(image: np.ndarray, *, name: str = "", hover: bool = False) -> go.Image:
    return go.Image(source=image_data_uri(image), name=name, hoverinfo="skip" if not hover else None)


def signed_overlay(image: np.ndarray, values: np.ndarray, *, alpha: float = SIGNED_ALPHA,
                   percentile: float = ATTRIBUTION_PERCENTILE) -> np.ndarray:
    """Signed values over an image: red where positive, blue where negative, opacity by |value|.

    Args:
        image: (H, W, 3) uint8.
        values: (H, W) signed (e.g. an attribution); scaled by the ``percentile`` of |values|.

    Returns:
        A new (H, W, 3) uint8 image.
    """
    img = _check_rgb(image)
    v = np.asarray(values, dtype=np.float64)
    if v.shape != img.shape[:2]:
        raise ValueError(f"values {v.shape} do not match the image {img.shape[:2]}")
    scale = float(np.percentile(np.abs(v), percentile)) if v.size else 0.0
    strength = np.clip(np.abs(v) / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(v)
    colour = np.where((v >= 0)[..., None], np.array(POSITIVE_RGB, float), np.array(NEGATIVE_RGB, float))
    grey = img.astype(np.float64).mean(axis=2, keepdims=True) * np.ones(3)  # the image in grey, for contrast
    weight = (alpha * strength)[..., None]
    return np.clip(np.rint(grey * (1.0 - weight) + colour * weight), 0, 255).astype(np.uint8)


def labelled_montage(images: Sequence[Sequence[np.ndarray]], *, row_labels: Sequence[str] = (),
                     column_labels: Sequence[str] = (), background: tuple[int, int, int] = (255, 255, 255),
                     label_px: int = 28) -> np.ndarray:
    """A grid of equally sized images with row labels on the left and column labels on top.

    Args:
        images: rows of (H, W, 3) uint8 images, all the same size.
        row_labels, column_labels: text per row / column (may be empty).
        background: RGB of the margins.
        label_px: height of the label band in pixels.

    Returns:
        (rows * H + top, cols * W + left, 3) uint8.
    """
    rows = [[_check_rgb(img) for img in row] for row in images]
    if not rows or not rows[0]:
        raise ValueError("at least one image is needed")
    height, width = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1
    scale = label_px / 40.0
    left = 0
    if row_labels:
        left = max(cv2.getTextSize(t, font, scale, thickness)[0][0] for t in row_labels) + label_px // 2
    top = label_px if column_labels else 0
    canvas = np.empty((top + len(rows) * height, left + cols * width, 3), np.uint8)
    canvas[:] = np.asarray(background, np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            if img.shape[:2] != (height, width):
                raise ValueError(f"image ({r}, {c}) is {img.shape[:2]}, expected {(height, width)}")
            canvas[top + r * height: top + (r + 1) * height, left + c * width: left + (c + 1) * width] = img
        if r < len(row_labels):
            y = top + r * height + height // 2 + label_px // 4
            cv2.putText(canvas, row_labels[r], (label_px // 4, y), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    for c, text in enumerate(column_labels[:cols]):
        tw = cv2.getTextSize(text, font, scale, thickness)[0][0]
        x = left + c * width + (width - tw) // 2
        cv2.putText(canvas, text, (x, int(label_px * 0.75)), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return canvas


def _hide_axes(fig: go.Figure) -> None:
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)


def _joint_colour(index: int) -> str:
    return JOINT_PALETTE[index % len(JOINT_PALETTE)]


def _side_colour(name: str) -> str:
    r, g, b = SIDE_COLOURS[joint_side(name)]
    return f"rgb({r},{g},{b})"


# ----------------------------------------------------------------------------------------------
# Token priors
# ----------------------------------------------------------------------------------------------
def prior_angles_figure(angles: Mapping[str, Sequence[float]], *,
                        joint_names: Sequence[str] = SMPL_JOINT_NAMES,
                        title: str = "Prior pose: rotation angle per joint") -> go.Figure:
    """Grouped bars of each joint's prior rotation angle (degrees), one group per joint and one bar per model.

    Args:
        angles: label (e.g. "fresh", "learned", a checkpoint name) -> (24,) degrees.
    """
    fig = go.Figure()
    for index, (label, values) in enumerate(angles.items()):
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (len(joint_names),):
            raise ValueError(f"{label}: expected {len(joint_names)} angles, got {v.shape}")
        fig.add_trace(go.Bar(x=list(joint_names), y=v, name=label, marker_color=SERIES_COLOURS[index % 4],
                             hovertemplate="%{x}<br>%{y:.1f} deg<extra>" + label + "</extra>"))
    fig.update_layout(title=title, barmode="group", yaxis_title="rotation angle (deg)", xaxis_tickangle=-45,
                      width=1100, height=480, legend=dict(orientation="h", y=1.08))
    return fig


def prior_mesh_figure(meshes: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
                      title: str = "Prior meshes (drag to rotate)") -> go.Figure:
    """Interactive 3D views side by side: label -> (vertices (V, 3) camera frame, faces (F, 3)).

    Vertices are shown y-up (the camera frame's y points down), so the bodies stand upright.
    """
    labels = list(meshes)
    if not labels:
        raise ValueError("at least one mesh is needed")
    fig = make_subplots(rows=1, cols=len(labels), specs=[[{"type": "scene"}] * len(labels)], subplot_titles=labels)
    for col, label in enumerate(labels, start=1):
        vertices, faces = meshes[label]
        # Camera frame (x right, y down, z away) -> plot frame (x right, y away from the viewer, z up): a
        # rotation, so the body keeps its handedness and faces the default eye at -y.
        v = np.asarray(vertices, dtype=np.float64)
        f = np.asarray(faces)
        fig.add_trace(go.Mesh3d(x=v[:, 0], y=v[:, 2], z=-v[:, 1], i=f[:, 0], j=f[:, 1], k=f[:, 2],
                                color=MESH_COLOUR, flatshading=False, name=label, hoverinfo="skip",
                                lighting=dict(ambient=0.5, diffuse=0.8, specular=0.1, roughness=0.8),
                                lightposition=dict(x=0, y=-1e5, z=1e5)),
                      row=1, col=col)
    fig.update_scenes(aspectmode="data", xaxis_visible=False, yaxis_visible=False, zaxis_visible=False,
                      camera=dict(eye=dict(x=0.0, y=-2.6, z=0.3), up=dict(x=0, y=0, z=1)))
    fig.update_layout(title=title, width=360 * len(labels), height=520, showlegend=False)
    return fig


def similarity_figure(similarity: np.ndarray, *, joint_names: Sequence[str] = SMPL_JOINT_NAMES,
                      title: str = "Joint-token cosine similarity") -> go.Figure:
    """(J, J) cosine similarity of the joint tokens as a heat map with named joints, diverging around 0."""
    s = np.asarray(similarity, dtype=np.float64)
    if s.shape != (len(joint_names), len(joint_names)):
        raise ValueError(f"expected ({len(joint_names)}, {len(joint_names)}), got {s.shape}")
    names = list(joint_names)
    fig = go.Figure(go.Heatmap(z=s, x=names, y=names, colorscale=DIVERGING_SCALE, zmid=0.0, zmin=-1.0, zmax=1.0,
                               colorbar=dict(title="cosine"),
                               hovertemplate="%{y} / %{x}<br>cosine %{z:.3f}<extra></extra>"))
    fig.update_layout(title=title, width=760, height=700, xaxis_tickangle=-45)
    fig.update_yaxes(autorange="reversed", scaleanchor="x")
    return fig


# ----------------------------------------------------------------------------------------------
# Image attention
# ----------------------------------------------------------------------------------------------
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
    img = _check_rgb(crop)
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
        fig.add_trace(_image_trace(heatmap_overlay(img, m[index])), row=row, col=col)
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
    """A token's attention mapped back into the full frame (see :func:`viz.attention.map_to_frame`).

    Args:
        frame: (H, W, 3) uint8.
        heat: (H, W) the map in frame pixels (0 outside the crop).
        transform: the crop's transform, drawn as a square; None draws none.
        point: (x, y) frame pixels of the token's joint, marked; None marks none.
    """
    img = _check_rgb(frame)
    h = np.asarray(heat, dtype=np.float64)
    if h.shape != img.shape[:2]:
        raise ValueError(f"heat {h.shape} does not match the frame {img.shape[:2]}")
    fig = go.Figure(_image_trace(heatmap_overlay(img, h)))
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
        attribution: from :func:`viz.attribution.attribute` for the same crop; red raises the output, blue
            lowers it.
        joint_px: (x, y) crop pixels of the token's joint, marked on every panel; None marks none.
    """
    img = _check_rgb(crop)
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
        fig.add_trace(_image_trace(panel), row=1, col=col)
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


# ----------------------------------------------------------------------------------------------
# Temporal attention
# ----------------------------------------------------------------------------------------------
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
    :func:`save_figure` with ``hover_frames``).

    Args:
        matrix: (T, T) row-stochastic.
        pairs: from :func:`viz.temporal.strongest_pairs` (indices into the matrix).
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
        pairs: per joint, from :func:`viz.temporal.strongest_pairs`; None draws none.
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
    fig = go.Figure(_image_trace(strip))
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
    """Each joint's lag profile (:func:`viz.temporal.lag_profile`), one line per joint (click the legend to
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
        curves: label -> :class:`viz.temporal.JointAngleCurves` of the same clip (use ``like=`` so that the
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


# ----------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------
@dataclass
class FigureFile:
    """A figure to write: ``stem`` (path without suffix) gets ``.html`` and ``.png``.

    Attributes:
        figure: the plotly figure (not modified).
        stem: output path without suffix.
        hover_frames: frame number -> (h, w, 3) uint8 thumbnail; the HTML shows the query and key frames of
            the heat-map cell under the mouse (temporal attention figures).
        width, height: PNG size in pixels; default the figure's layout size or :data:`DEFAULT_SIZE`.
    """

    figure: go.Figure
    stem: Path
    hover_frames: Mapping[int, np.ndarray] | None = None
    width: int | None = None
    height: int | None = None
    written: dict[str, Path] = field(default_factory=dict)

    def size(self) -> tuple[int, int]:
        layout = self.figure.layout
        width = self.width or layout.width or DEFAULT_SIZE[0]
        height = self.height or layout.height or DEFAULT_SIZE[1]
        return int(width), int(height)


_HOVER_SCRIPT = """
(function() {{
  var gd = document.getElementById('{{plot_id}}');
  var frames = {frames};
  var box = document.createElement('div');
  box.style.cssText = 'display:flex;gap:16px;font-family:sans-serif;font-size:13px;margin:6px 0 0 60px';
  function panel(label) {{
    var fig = document.createElement('figure'); fig.style.margin = '0';
    var img = document.createElement('img'); img.style.height = '{height}px'; img.alt = '';
    var cap = document.createElement('figcaption'); cap.textContent = label;
    fig.appendChild(img); fig.appendChild(cap); box.appendChild(fig);
    return [img, cap, label];
  }}
  var q = panel('query frame'), k = panel('key frame');
  gd.parentNode.insertBefore(box, gd.nextSibling);
  function show(p, frame) {{
    if (frames[frame] === undefined) return;
    p[0].src = frames[frame]; p[1].textContent = p[2] + ' ' + frame;
  }}
  gd.on('plotly_hover', function(ev) {{
    var pt = ev.points[0];
    if (!pt || pt.data.type !== 'heatmap') return;
    show(q, Math.round(pt.y)); show(k, Math.round(pt.x));
  }});
}})();
"""


def _hover_script(frames: Mapping[int, np.ndarray]) -> str:
    uris = {}
    for number, image in frames.items():
        img = _check_rgb(image)
        scale = HOVER_THUMB_PX / img.shape[0]
        small = cv2.resize(img, (max(1, round(img.shape[1] * scale)), HOVER_THUMB_PX), interpolation=cv2.INTER_AREA)
        uris[str(int(number))] = image_data_uri(small, fmt="jpeg")
    return _HOVER_SCRIPT.format(frames=json.dumps(uris), height=HOVER_THUMB_PX)


def kaleido_usable() -> bool:
    """Whether kaleido (>= 1.0) is installed and finds a Chrome / Chromium (``BROWSER_PATH`` or ``PATH``)."""
    if importlib.util.find_spec("kaleido") is None:
        return False
    try:
        from choreographer.browsers.chromium import Chromium

        return Chromium.find_browser(skip_local=False) is not None
    except ImportError:  # a kaleido without choreographer: let it try
        return True
    except Exception:  # noqa: BLE001 - any failure to find a browser means "not usable"
        return False


def save_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB image as PNG (or JPEG by suffix); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(_check_rgb(image), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path


def save_figures(items: Sequence[FigureFile], *, formats: Sequence[str] = ("html", "png"),
                 png_backend: str = "auto") -> str | None:
    """Write every figure as HTML and / or PNG; fills each item's ``written`` (format -> path).

    Args:
        formats: any of "html", "png".
        png_backend: "kaleido", "matplotlib" or "auto" (kaleido when :func:`kaleido_usable`, else
            matplotlib; a kaleido failure falls back to matplotlib with a warning).

    Returns:
        The PNG backend used, or None when no PNG was asked for.
    """
    if png_backend not in ("auto", "kaleido", "matplotlib"):
        raise ValueError(f"png_backend must be 'auto', 'kaleido' or 'matplotlib', got {png_backend!r}")
    for item in items:
        item.stem.parent.mkdir(parents=True, exist_ok=True)
        if "html" in formats:
            path = item.stem.with_suffix(".html")
            script = _hover_script(item.hover_frames) if item.hover_frames else None
            item.figure.write_html(path, include_plotlyjs="directory", full_html=True, post_script=script)
            item.written["html"] = path
    if "png" not in formats or not items:
        return None
    backend = png_backend
    if backend == "auto":
        backend = "kaleido" if kaleido_usable() else "matplotlib"
    paths = [item.stem.with_suffix(".png") for item in items]
    if backend == "kaleido":
        import plotly.io as pio

        try:
            sizes = [item.size() for item in items]
            pio.write_images([item.figure for item in items], paths, width=[s[0] for s in sizes],
                             height=[s[1] for s in sizes])
        except Exception as exc:  # noqa: BLE001 - a browser that fails to start, a kaleido error...
            if png_backend == "kaleido":
                raise
            log.warning("kaleido could not write the PNGs (%s); using matplotlib", exc)
            backend = "matplotlib"
    if backend == "matplotlib":
        for item, path in zip(items, paths, strict=True):
            render_png_matplotlib(item.figure, path, width=item.size()[0], height=item.size()[1])
    for item, path in zip(items, paths, strict=True):
        item.written["png"] = path
    return backend


def save_figure(figure: go.Figure, stem: str | Path, *, formats: Sequence[str] = ("html", "png"),
                hover_frames: Mapping[int, np.ndarray] | None = None, png_backend: str = "auto") -> dict[str, Path]:
    """Write one figure (see :func:`save_figures`); returns format -> path."""
    item = FigureFile(figure=figure, stem=Path(stem), hover_frames=hover_frames)
    save_figures([item], formats=formats, png_backend=png_backend)
    return item.written


# ----------------------------------------------------------------------------------------------
# matplotlib rendering of plotly figures (the PNG fallback)
# ----------------------------------------------------------------------------------------------
#: plotly's default margins (pixels) when a figure sets none.
_PLOTLY_MARGIN = dict(l=80, r=80, t=100, b=80)
_MPL_DPI = 100
#: Colour bar in the right margin: gap from the plot area and width, as fractions of the figure width.
COLOURBAR_GAP = 0.01
COLOURBAR_WIDTH = 0.015
_PLOTLY_SYMBOLS = {"circle": "o", "square": "s", "diamond": "D", "x": "x", "x-thin": "x", "cross": "+",
                   "triangle-up": "^"}


def _mpl_colour(value: Any, default: str = "#1f77b4") -> Any:
    if value is None:
        return default
    if isinstance(value, str) and value.startswith("rgb"):
        parts = value[value.index("(") + 1: value.index(")")].split(",")
        rgb = [float(p) for p in parts[:3]]
        return tuple(c / 255.0 for c in rgb)
    return value


def _mpl_colourmap(colorscale: Any):
    from matplotlib.colors import LinearSegmentedColormap

    if colorscale is None:
        colorscale = plotly.colors.get_colorscale("Plasma")
    elif isinstance(colorscale, str):
        colorscale = plotly.colors.get_colorscale(colorscale)
    stops = [(float(s), _mpl_colour(plotly.colors.convert_colors_to_same_type(c, "rgb")[0][0]))
             for s, c in colorscale]
    return LinearSegmentedColormap.from_list("plotly", stops)


def _axis_suffix(ref: str | None, letter: str) -> str:
    ref = ref or letter
    return ref[1:]


def _text(title: Any) -> str:
    """Plain text of a plotly title / annotation: ``<br>`` becomes a line break, other tags are dropped."""
    if title is None:
        return ""
    text = getattr(title, "text", title)
    if text is None:
        return ""
    text = re.sub(r"<br\s*/?>", "\n", str(text))
    return re.sub(r"<[^>]+>", "", text).strip()


def render_png_matplotlib(figure: go.Figure, path: str | Path, *, width: int, height: int) -> Path:
    """Draw a plotly figure with matplotlib and save it as a PNG of ``width`` x ``height`` pixels.

    Covers what the builders of this module use: heatmaps, images, scatter (lines, markers, text), bars,
    mesh3d; subplot domains, axis titles, ranges (reversed y), equal aspect, hidden axes, titles and
    subplot titles. Anything else is skipped with a debug log line.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    layout = figure.layout
    margin = {k: (getattr(layout.margin, k) if layout.margin and getattr(layout.margin, k) is not None
                  else v) for k, v in _PLOTLY_MARGIN.items()}
    mpl_fig = plt.figure(figsize=(width / _MPL_DPI, height / _MPL_DPI), dpi=_MPL_DPI)
    try:
        left, right = margin["l"] / width, 1.0 - margin["r"] / width
        bottom, top = margin["b"] / height, 1.0 - margin["t"] / height
        axes: dict[tuple[str, str], Any] = {}
        scenes: dict[str, Any] = {}
        bar_groups: dict[tuple[str, str], list[Any]] = {}
        for trace in figure.data:
            if trace.type == "bar":
                key = (_axis_suffix(trace.xaxis, "x"), _axis_suffix(trace.yaxis, "y"))
                bar_groups.setdefault(key, []).append(trace)

        def get_axes(trace: Any) -> Any:
            if trace.type == "mesh3d":
                scene = trace.scene or "scene"
                if scene not in scenes:
                    dom = layout[scene].domain
                    x0, x1 = dom.x or (0, 1)
                    y0, y1 = dom.y or (0, 1)
                    rect = [left + x0 * (right - left), bottom + y0 * (top - bottom),
                            (x1 - x0) * (right - left), (y1 - y0) * (top - bottom)]
                    scenes[scene] = mpl_fig.add_axes(rect, projection="3d")
                return scenes[scene]
            xs, ys = _axis_suffix(trace.xaxis, "x"), _axis_suffix(trace.yaxis, "y")
            if (xs, ys) not in axes:
                xa, ya = layout[f"xaxis{xs}"], layout[f"yaxis{ys}"]
                x0, x1 = xa.domain or (0, 1)
                y0, y1 = ya.domain or (0, 1)
                rect = [left + x0 * (right - left), bottom + y0 * (top - bottom),
                        (x1 - x0) * (right - left), (y1 - y0) * (top - bottom)]
                axes[(xs, ys)] = mpl_fig.add_axes(rect)
            return axes[(xs, ys)]

        colourbar_box = [right + COLOURBAR_GAP, bottom, COLOURBAR_WIDTH, top - bottom]
        categories: dict[int, list[Any]] = {}  # per matplotlib axes: category labels of its x axis, in order
        for trace in figure.data:
            ax = get_axes(trace)
            _draw_trace(ax, trace, bar_groups, colourbar_box=colourbar_box,
                        categories=categories.setdefault(id(ax), []))
        for (xs, ys), ax in axes.items():
            _style_axes(ax, layout[f"xaxis{xs}"], layout[f"yaxis{ys}"])
        for annotation in layout.annotations or ():
            if annotation.xref == "paper" and annotation.yref == "paper":
                mpl_fig.text(left + annotation.x * (right - left), bottom + annotation.y * (top - bottom),
                             _text(annotation.text), ha=annotation.xanchor if annotation.xanchor in
                             ("left", "right", "center") else "center",
                             va="bottom" if annotation.yanchor == "bottom" else "center", fontsize=9)
        title = _text(layout.title)
        if title:
            mpl_fig.text(0.02, 1.0 - 0.1 * margin["t"] / height, title, ha="left", va="top", fontsize=12)
        handles = [h for ax in axes.values() for h in ax.get_legend_handles_labels()[0]]
        if handles and layout.showlegend is not False:
            labels = [lab for ax in axes.values() for lab in ax.get_legend_handles_labels()[1]]
            unique = dict(zip(labels, handles))
            mpl_fig.legend(unique.values(), unique.keys(), loc="upper right", fontsize=8, ncol=min(len(unique), 6),
                           frameon=False)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        mpl_fig.savefig(path, dpi=_MPL_DPI, facecolor="white")
    finally:
        plt.close(mpl_fig)
    return path


def _category_positions(values: Sequence[Any], categories: list[Any]) -> np.ndarray:
    """Positions of categorical x values (plotly places categories at 0, 1, ... in order of appearance)."""
    for value in values:
        if value not in categories:
            categories.append(value)
    return np.array([categories.index(v) for v in values], dtype=np.float64)


def _per_point(value: Any, count: int, default: Any) -> list[Any]:
    if value is None:
        return [default] * count
    if isinstance(value, (str, int, float)):
        return [value] * count
    return list(value)


def _draw_trace(ax: Any, trace: Any, bar_groups: Mapping[tuple[str, str], list[Any]], *,
                colourbar_box: Sequence[float], categories: list[Any]) -> None:
    kind = trace.type
    if kind == "image":
        image = decode_data_uri(trace.source) if trace.source else np.asarray(trace.z, dtype=np.uint8)
        h, w = image.shape[:2]
        ax.imshow(image, extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="nearest")
    elif kind == "heatmap":
        z = np.asarray(trace.z, dtype=np.float64)
        x = np.arange(z.shape[1]) if trace.x is None else np.asarray(trace.x)
        y = np.arange(z.shape[0]) if trace.y is None else np.asarray(trace.y)
        numeric = np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)
        xs = x if numeric else np.arange(len(x))
        ys = y if numeric else np.arange(len(y))
        zmin = trace.zmin if trace.zmin is not None else np.nanmin(z)
        zmax = trace.zmax if trace.zmax is not None else np.nanmax(z)
        if trace.zmid is not None and trace.zmin is None:
            half = max(abs(zmax - trace.zmid), abs(trace.zmid - zmin))
            zmin, zmax = trace.zmid - half, trace.zmid + half
        step_x = (xs[1] - xs[0]) if len(xs) > 1 else 1
        step_y = (ys[1] - ys[0]) if len(ys) > 1 else 1
        image = ax.imshow(z, cmap=_mpl_colourmap(trace.colorscale), vmin=zmin, vmax=zmax, aspect="auto",
                          origin="lower", interpolation="nearest",
                          extent=(xs[0] - step_x / 2, xs[-1] + step_x / 2, ys[0] - step_y / 2, ys[-1] + step_y / 2))
        if not numeric:
            ax.set_xticks(np.arange(len(x)), [str(v) for v in x], rotation=90, fontsize=6)
            ax.set_yticks(np.arange(len(y)), [str(v) for v in y], fontsize=6)
        if trace.showscale is not False:  # in the right margin, as plotly puts it
            ax.figure.colorbar(image, cax=ax.figure.add_axes(list(colourbar_box)))
    elif kind == "scatter":
        x = np.asarray(trace.x if trace.x is not None else np.arange(len(trace.y)))
        y = np.asarray(trace.y, dtype=np.float64)
        if not np.issubdtype(x.dtype, np.number):
            x = _category_positions(list(trace.x), categories)
            ax.set_xticks(np.arange(len(categories)), [str(c) for c in categories], rotation=60, ha="right",
                          fontsize=7)
        mode = trace.mode or "lines"
        label = trace.name if trace.showlegend is not False and trace.name else None
        if "lines" in mode:
            line = trace.line
            ax.plot(x, y, color=_mpl_colour(line.color), linewidth=(line.width or 2) * 0.75,
                    linestyle="--" if line.dash == "dash" else "-", label=label)
            label = None
        if "markers" in mode:
            marker = trace.marker
            symbols = _per_point(marker.symbol, len(x), "circle")
            sizes = _per_point(marker.size, len(x), 8)
            colour = _mpl_colour(marker.color if isinstance(marker.color, str) else None)
            for index, (xi, yi) in enumerate(zip(x, y)):
                symbol = str(symbols[index])
                base, open_marker = symbol.replace("-open", ""), symbol.endswith("-open")
                style = ({"c": [colour]} if base.startswith("x") else
                         {"facecolors": "none" if open_marker else colour, "edgecolors": colour})
                ax.scatter([xi], [yi], s=(float(sizes[index]) * 0.9) ** 2, marker=_PLOTLY_SYMBOLS.get(base, "o"),
                           linewidths=2, label=label if index == 0 else None, **style)
        if "text" in mode and trace.text is not None:
            texts = [trace.text] * len(x) if isinstance(trace.text, str) else list(trace.text)
            for xi, yi, text in zip(x, y, texts):
                ax.annotate(str(text), (xi, yi), textcoords="offset points", xytext=(0, 5), ha="center",
                            fontsize=7, color=_mpl_colour(trace.textfont.color, "black"))
    elif kind == "bar":
        group = bar_groups.get((_axis_suffix(trace.xaxis, "x"), _axis_suffix(trace.yaxis, "y")), [trace])
        count = len(group)
        index = next(i for i, t in enumerate(group) if t is trace)
        centres = _category_positions(list(trace.x), categories)
        width = 0.8 / count
        ax.bar(centres - 0.4 + width * (index + 0.5), np.asarray(trace.y, dtype=np.float64), width=width,
               color=_mpl_colour(trace.marker.color), label=trace.name)
        ax.set_xticks(np.arange(len(categories)), [str(c) for c in categories], rotation=60, ha="right",
                      fontsize=7)
    elif kind == "mesh3d":
        v = np.stack([np.asarray(trace.x), np.asarray(trace.y), np.asarray(trace.z)], axis=1)
        faces = np.stack([np.asarray(trace.i), np.asarray(trace.j), np.asarray(trace.k)], axis=1)
        ax.plot_trisurf(v[:, 0], v[:, 1], v[:, 2], triangles=faces, color=_mpl_colour(trace.color, MESH_COLOUR),
                        linewidth=0, antialiased=False, shade=True)
        span = (v.max(axis=0) - v.min(axis=0)).max() / 2
        mid = (v.max(axis=0) + v.min(axis=0)) / 2
        ax.set_xlim(mid[0] - span, mid[0] + span)
        ax.set_ylim(mid[1] - span, mid[1] + span)
        ax.set_zlim(mid[2] - span, mid[2] + span)
        ax.view_init(elev=5, azim=-90)
        ax.set_axis_off()
    else:
        log.debug("matplotlib export skips a %s trace", kind)


def _style_axes(ax: Any, xaxis: Any, yaxis: Any) -> None:
    if xaxis.range is not None:
        ax.set_xlim(*xaxis.range)
    if yaxis.range is not None:
        ax.set_ylim(*yaxis.range)
    elif yaxis.autorange == "reversed":
        low, high = ax.get_ylim()
        ax.set_ylim(max(low, high), min(low, high))
    if yaxis.type == "log":
        ax.set_yscale("log")
    if yaxis.scaleanchor:
        ax.set_aspect("equal", adjustable="box")
    for axis, set_ticks in ((xaxis, ax.set_xticks), (yaxis, ax.set_yticks)):
        if axis.tickvals is not None:
            labels = list(axis.ticktext) if axis.ticktext is not None else [str(v) for v in axis.tickvals]
            set_ticks(list(axis.tickvals), labels)
    ax.set_xlabel(_text(xaxis.title), fontsize=9)
    ax.set_ylabel(_text(yaxis.title), fontsize=9)
    ax.tick_params(labelsize=7)
    if xaxis.visible is False:
        ax.get_xaxis().set_visible(False)
    if yaxis.visible is False:
        ax.get_yaxis().set_visible(False)
    if xaxis.visible is False and yaxis.visible is False:
        ax.set_frame_on(False)
    if xaxis.showticklabels is False:
        ax.set_xticklabels([])
    if yaxis.showticklabels is False:
        ax.set_yticklabels([])
