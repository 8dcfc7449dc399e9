"""The prior pose and shape that a model's independent tokens encode, as a mesh and as numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from int_model import IntModel, build_model
from int_model.constants import SMPL_JOINT_NAMES
from viz.renderer import Renderer, render_side_view

# Root rotation that shows an SMPL body (y up) upright and facing the camera in the camera frame (y down).
UPRIGHT_ROOT = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class PriorMesh:
    """The token prior decoded through the heads and the body model.

    Attributes:
        vertices: (V, 3) camera frame (x right, y down).
        faces: (F, 3).
        betas: (10,).
        joint_angles_deg: (24,) rotation angle of each joint (the root's is its global orientation).
        joint_names: the 24 SMPL joint names.
        root_replaced: True when the learned global orientation was replaced by an upright one.
    """

    vertices: np.ndarray
    faces: np.ndarray
    betas: np.ndarray
    joint_angles_deg: np.ndarray
    joint_names: tuple[str, ...]
    root_replaced: bool


@torch.no_grad()
def prior_mesh(model: IntModel, *, keep_orientation: bool = True) -> PriorMesh:
    """Decode ``model``'s learned tokens (no image) into a mesh.

    With ``keep_orientation`` False the global orientation is set upright and facing the camera, so that the
    body pose itself can be seen even for a fresh model, whose prior root rotation is arbitrary.
    """
    prior = model.decode_prior()
    rotmat = prior.rotmat[0, 0].clone()
    angles = torch.rad2deg(prior.pose[0, 0].reshape(-1, 3).norm(dim=-1))
    vertices = prior.vertices[0, 0]
    if not keep_orientation:
        rotmat[0] = torch.as_tensor(UPRIGHT_ROOT, dtype=rotmat.dtype, device=rotmat.device)
        vertices = model.body_model(rotmat=rotmat[None], betas=prior.betas[0]).vertices[0]
    return PriorMesh(
        vertices=vertices.cpu().numpy(),
        faces=np.asarray(model.body_model.faces),
        betas=prior.betas[0, 0].cpu().numpy(),
        joint_angles_deg=angles.cpu().numpy(),
        joint_names=SMPL_JOINT_NAMES,
        root_replaced=not keep_orientation,
    )


# ------------------------------------------------------------------------------------------------------
# Fresh tokens, renders, token similarity (issue 5)
# ------------------------------------------------------------------------------------------------------

#: Seed of the freshly initialised model that stands for "what the model knew before training".
FRESH_SEED = 0
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


def fresh_model(model: IntModel, *, seed: int = FRESH_SEED) -> IntModel:
    """A freshly initialised model of the same configuration and body model (eval mode).

    The global random state is left as it was (the initialisation draws from a forked generator).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = build_model(model.config, body_model=model.body_model)
    device = next(model.parameters()).device
    return fresh.to(device).eval()


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


@torch.no_grad()
def joint_token_similarity(model: IntModel) -> np.ndarray:
    """Cosine similarity of the learned joint tokens (the prior parameters themselves): (24, 24), symmetric,
    ones on the diagonal, in SMPL joint order."""
    tokens = model.tokens.joints[0].detach().float()
    unit = tokens / tokens.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (unit @ unit.T).cpu().numpy().astype(np.float64)


def prior_angles(prior: PriorMesh) -> dict[str, float]:
    """Joint name -> rotation angle in degrees of a prior, for reports."""
    return {name: float(angle) for name, angle in zip(prior.joint_names, prior.joint_angles_deg, strict=True)}
