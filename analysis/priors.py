"""The prior pose and shape that a model's independent tokens encode, as a mesh and as numbers, and how
plausible it is against the anatomical joint ranges and against tokens that learned nothing."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from int_model import IntModel, build_model
from int_model.constants import SMPL_JOINT_NAMES
from int_model.joint_ranges import range_excess, rotmat_to_angles

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
# What the tokens learned: against fresh tokens, joint ranges, token similarity
# ------------------------------------------------------------------------------------------------------

#: Seed of the freshly initialised model that stands for "what the model knew before training".
FRESH_SEED = 0

def fresh_model(model: IntModel, *, seed: int = FRESH_SEED) -> IntModel:
    """A freshly initialised model of the same configuration and body model (eval mode).

    The global random state is left as it was (the initialisation draws from a forked generator).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = build_model(model.config, body_model=model.body_model)
    device = next(model.parameters()).device
    return fresh.to(device).eval()


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


@torch.no_grad()
def prior_plausibility(model: IntModel) -> dict[str, Any]:
    """The prior pose's anatomical joint angles and their excess over the joint ranges (body joints only:
    the root's orientation is the camera's business)."""
    rotmat = model.decode_prior().rotmat[0, 0].cpu().numpy()
    angles = rotmat_to_angles(rotmat)
    excess = range_excess(angles)[1:].sum(axis=-1)  # (23,) degrees outside per body joint
    names = SMPL_JOINT_NAMES[1:]
    return {
        "joints_outside": [n for n, e in zip(names, excess, strict=True) if e > 1.0],
        "max_excess_deg": round(float(excess.max()), 1),
        "total_excess_deg": round(float(excess.sum()), 1),
        "angles_deg": {n: [round(float(v), 1) for v in a] for n, a in zip(names, angles[1:], strict=True)},
    }


def fresh_tokens(model: IntModel, *, seed: int = 0) -> IntModel:
    """A copy of ``model`` whose token parameters are freshly initialised (trained heads kept): what the same
    read-out makes of tokens that learned nothing."""
    twin = copy.deepcopy(model)
    std = model.config.token_init_std
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for p in twin.tokens.parameters():
            torch.nn.init.trunc_normal_(p, std=std, a=-2 * std, b=2 * std)
    return twin
