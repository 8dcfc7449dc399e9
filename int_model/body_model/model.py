"""The body model: SMPL arrays (licensed files or the procedural model) run through smplx's SMPL code."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import smplx
import torch
from torch import nn

from ..constants import NUM_BETAS, NUM_JOINTS
from .procedural.cache import content_hash, load_procedural_arrays, procedural_identity
from .procedural.landmarks import landmark_dict
from .smpl_files import SMPL_DIR_ENV, SMPL_FILE_NAME, SMPL_KEYS, read_smpl_arrays

BODY_KINDS = ("procedural", "smpl")
SMPL_NUM_VERTICES = 6890  # the SMPL topology; smplx's landmark vertex ids refer to it
#: Two body models whose fingerprints agree this closely (metres) are the same one. The identity hash rounds
#: every array to 1e-5, so the float noise between two CPUs (AVX2 and AVX-512 builds of the same numpy code)
#: flips a rounding somewhere among the millions of values and changes the hash; the fingerprint does not.
FINGERPRINT_ATOL_M = 1e-4
FINGERPRINT_DECIMALS = 6


@dataclass(frozen=True)
class BodyOutput:
    """Posed body (float32).

    Attributes:
        vertices: (B, V, 3) mesh vertices.
        joints: (B, 24, 3) the SMPL skeleton joints.
        joints_h36m: (B, 17, 3) Human3.6M joints from the H36M regressor, or None when the body model has none
            (licensed SMPL without ``J_regressor_h36m.npy``).
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    joints_h36m: torch.Tensor | None


class BodyModel(nn.Module):
    """SMPL-format body model through ``smplx.SMPL``; none of its tensors enter a state dict.

    Args:
        arrays: SMPL arrays: ``v_template (V,3)``, ``f (F,3)``, ``shapedirs (V,3,>=10)``, ``posedirs (V,3,207)``,
            ``J_regressor (24,V)``, ``weights (V,24)``, ``kintree_table (2,24)``; optional
            ``J_regressor_h36m (17,V)``.
        kind: ``'procedural'`` or ``'smpl'``.
        identity: a content-hash based name of the arrays (checkpoints record it).
        description: one line for the UI saying which body model is in use.
        landmarks: vertex ids for smplx's extra joints (keys of ``smplx.vertex_ids.vertex_ids['smplh']``);
            None uses smplx's SMPL ones.
    """

    def __init__(
        self,
        *,
        arrays: Mapping[str, np.ndarray],
        kind: str,
        identity: str,
        description: str,
        landmarks: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        if kind not in BODY_KINDS:
            raise ValueError(f"kind must be one of {BODY_KINDS}, got {kind!r}")
        self.kind = kind
        self.identity = identity
        self.description = description
        struct = SimpleNamespace(**{key: np.asarray(arrays[key]) for key in SMPL_KEYS})
        shapedirs = struct.shapedirs
        if shapedirs.shape[-1] < smplx.SMPL.SHAPE_SPACE_DIM:  # zero-padded: smplx then keeps 10 without a warning
            pad = smplx.SMPL.SHAPE_SPACE_DIM - shapedirs.shape[-1]
            struct.shapedirs = np.concatenate([shapedirs, np.zeros(shapedirs.shape[:-1] + (pad,), np.float32)], -1)
        self.smpl = smplx.SMPL(
            model_path=kind,  # unused: the arrays come in data_struct
            data_struct=struct,
            create_global_orient=False,
            create_body_pose=False,
            create_betas=False,
            create_transl=False,
            vertex_ids=dict(landmarks) if landmarks is not None else None,
            num_betas=NUM_BETAS,
        )
        h36m = arrays.get("J_regressor_h36m")
        self.register_buffer(
            "J_regressor_h36m",
            None if h36m is None else torch.from_numpy(np.array(h36m, dtype=np.float32)),
            persistent=False,
        )
        for module in self.smpl.modules():  # the body model never enters a network checkpoint
            for name, buffer in list(module._buffers.items()):
                if buffer is not None:
                    module.register_buffer(name, buffer, persistent=False)
        self.faces: np.ndarray = np.asarray(arrays["f"], dtype=np.int64)

    @property
    def num_vertices(self) -> int:
        """Number of mesh vertices V."""
        return int(self.smpl.v_template.shape[0])

    @property
    def has_h36m(self) -> bool:
        """Whether ``joints_h36m`` is available."""
        return self.J_regressor_h36m is not None

    def extra_repr(self) -> str:
        return f"kind={self.kind}, identity={self.identity}, vertices={self.num_vertices}"

    @functools.cached_property
    def fingerprint(self) -> tuple[float, ...]:
        """(11 * 24 * 3) values, metres: the rest-pose joints at beta = 0 and at +1 on each shape direction.

        Checkpoints record it beside :attr:`identity` so that :meth:`matches` can tell the same body model
        generated on another machine (other float noise, another hash) from a different one.
        """
        betas = torch.cat([torch.zeros(1, NUM_BETAS), torch.eye(NUM_BETAS)])
        rotmat = torch.eye(3).expand(len(betas), NUM_JOINTS, 3, 3)
        device = self.smpl.v_template.device
        with torch.no_grad():
            joints = self(rotmat.to(device), betas.to(device)).joints
        return tuple(np.round(joints.double().cpu().numpy().ravel(), FINGERPRINT_DECIMALS).tolist())

    def matches(self, identity: str | None, fingerprint: Sequence[float] | None = None) -> bool:
        """Whether a recorded body model (a checkpoint's ``body_model`` and ``body_model_fingerprint``) is this
        one: the same identity, or the same fingerprint within :data:`FINGERPRINT_ATOL_M`. Unknown (None) matches."""
        if identity is None or identity == self.identity:
            return True
        if fingerprint is None or len(fingerprint) != len(self.fingerprint):
            return False
        return bool(np.allclose(fingerprint, self.fingerprint, rtol=0.0, atol=FINGERPRINT_ATOL_M))

    def forward(self, rotmat: torch.Tensor, betas: torch.Tensor) -> BodyOutput:
        """Pose the body.

        Args:
            rotmat: (B, 24, 3, 3) joint rotations, global orientation first (SMPL order).
            betas: (B, 10) shape coefficients.

        Returns:
            :class:`BodyOutput` in float32 (autocast is disabled inside; linear blend skinning runs in fp32).
        """
        if rotmat.shape[1:] != (NUM_JOINTS, 3, 3):
            raise ValueError(f"rotmat must be (B, {NUM_JOINTS}, 3, 3), got {tuple(rotmat.shape)}")
        if betas.shape[1:] != (NUM_BETAS,):
            raise ValueError(f"betas must be (B, {NUM_BETAS}), got {tuple(betas.shape)}")
        with torch.autocast(device_type=rotmat.device.type, enabled=False):
            rotmat = rotmat.float()
            out = self.smpl(
                betas=betas.float(),
                global_orient=rotmat[:, :1],
                body_pose=rotmat[:, 1:],
                pose2rot=False,
            )
            vertices = out.vertices
            joints_h36m = None
            if self.J_regressor_h36m is not None:
                joints_h36m = torch.einsum("jv,bvc->bjc", self.J_regressor_h36m, vertices)
        return BodyOutput(vertices=vertices, joints=out.joints[:, :NUM_JOINTS], joints_h36m=joints_h36m)


@functools.lru_cache(maxsize=4)
def _smpl_arrays(path: str, mtime_ns: int) -> tuple[tuple[str, np.ndarray], ...]:
    arrays = read_smpl_arrays(path)
    for a in arrays.values():
        a.setflags(write=False)
    return tuple(sorted(arrays.items()))


def _smpl_model(smpl_dir: Path) -> BodyModel:
    pkl = smpl_dir / SMPL_FILE_NAME
    mtime = pkl.stat().st_mtime_ns if pkl.is_file() else -1
    arrays = dict(_smpl_arrays(str(smpl_dir), mtime)) if mtime >= 0 else read_smpl_arrays(smpl_dir)
    if arrays["v_template"].shape[0] != SMPL_NUM_VERTICES:
        raise ValueError(
            f"{pkl}: {arrays['v_template'].shape[0]} vertices, expected the SMPL topology "
            f"({SMPL_NUM_VERTICES} vertices)"
        )
    identity = f"smpl:{content_hash({key: arrays[key] for key in SMPL_KEYS})}"
    h36m = "with" if "J_regressor_h36m" in arrays else "without"
    description = (
        f"licensed SMPL model ({arrays['v_template'].shape[0]:,} vertices) from {smpl_dir}, "
        f"{h36m} the Human3.6M regressor"
    )
    return BodyModel(arrays=arrays, kind="smpl", identity=identity, description=description)


def _procedural_model() -> BodyModel:
    arrays = load_procedural_arrays()
    description = (
        f"procedural SMPL-format body ({arrays['v_template'].shape[0]:,} vertices) — not the licensed SMPL model"
    )
    return BodyModel(
        arrays=arrays,
        kind="procedural",
        identity=procedural_identity(arrays),
        description=description,
        landmarks=landmark_dict(arrays),
    )


def load_body_model(smpl_dir: str | os.PathLike | None = None) -> BodyModel:
    """The body model to use: licensed SMPL from ``smpl_dir``, else from ``$INT_SMPL_DIR``, else procedural.

    A folder that is given but lacks ``SMPL_NEUTRAL.pkl`` raises FileNotFoundError (no silent fallback).
    """
    if smpl_dir is None:
        smpl_dir = os.environ.get(SMPL_DIR_ENV) or None
    if smpl_dir is not None:
        return _smpl_model(Path(smpl_dir))
    return _procedural_model()
