"""Front and side renders of a token prior (:class:`analysis.priors.PriorMesh`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.priors import PriorMesh
from viz.renderer import Renderer, render_side_view

#: Viewing angles (degrees about the vertical axis) of the front and side renders.
FRONT_ANGLE_DEG = 0.0
SIDE_ANGLE_DEG = 90.0
#: Default render size in pixels (square).
DEFAULT_RENDER_SIZE = 384


@dataclass(frozen=True)
class PriorRenders:
    """Front and side renders of a prior mesh: (H, W, 3) uint8 each."""

    front: np.ndarray
    side: np.ndarray


def render_prior(prior: PriorMesh, *, size: int = DEFAULT_RENDER_SIZE,
                 renderer: Renderer | None = None) -> PriorRenders:
    """Front and side renders of a prior mesh, framed automatically on a plain background.

    Args:
        prior: from :func:`prior_mesh` (use ``keep_orientation=False`` to see the body pose upright).
        size: side of each square render in pixels.
        renderer: a :class:`viz.renderer.Renderer` to reuse; default the thread's own.
    """
    front = render_side_view(prior.vertices, prior.faces, size, angle_deg=FRONT_ANGLE_DEG, renderer=renderer)
    side = render_side_view(prior.vertices, prior.faces, size, angle_deg=SIDE_ANGLE_DEG, renderer=renderer)
    return PriorRenders(front=front, side=side)
