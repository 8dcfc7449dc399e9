"""Figures of the token priors: each joint's prior rotation angle, the prior meshes in 3D, and the cosine
similarity of the joint tokens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from int_model.constants import SMPL_JOINT_NAMES
from viz.figures.style import MESH_COLOUR, SERIES_COLOURS

__all__ = ["prior_angles_figure", "prior_mesh_figure", "similarity_figure"]

#: Colour scale of the similarity heat map (diverging around 0).
DIVERGING_SCALE = "RdBu_r"


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

