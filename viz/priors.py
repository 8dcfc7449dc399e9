"""The prior pose and shape that a model's independent tokens encode, as a mesh and as numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from int_model import IntModel
from int_model.constants import SMPL_JOINT_NAMES

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
