"""Body model: licensed SMPL files when the user has them, else a procedural SMPL-format body; both via smplx."""

from .model import BodyModel, BodyOutput, load_body_model
from .procedural.cache import load_procedural_arrays
from .procedural.generate import generate_procedural_body
from .procedural.proportions import SHAPE_NAMES, proportions_for_betas
from .procedural.skeleton import shaped_rest_joints
from .smpl_files import RefusedGlobalError, SmplFileError, allowed_global, read_smpl_arrays, restricted_load

__all__ = [
    "SHAPE_NAMES",
    "BodyModel",
    "BodyOutput",
    "RefusedGlobalError",
    "SmplFileError",
    "allowed_global",
    "generate_procedural_body",
    "load_body_model",
    "load_procedural_arrays",
    "proportions_for_betas",
    "read_smpl_arrays",
    "restricted_load",
    "shaped_rest_joints",
]
