"""INT: 3D human pose and shape with independent tokens (Yang et al., ICLR 2023).

Public API::

    from int_model import build_model, load_checkpoint, save_checkpoint, load_body_model
    model = build_model("small")            # "paper" | "small" | "tiny", **config overrides
    out = model(frames)                       # frames (B, T, 3, H, W) -> IntOutput
"""

from .body_model import BodyModel, BodyOutput, load_body_model
from .checkpoint import DEMO_CHECKPOINT, Checkpoint, CheckpointError, demo_checkpoint, load_checkpoint, save_checkpoint
from .config import VARIANTS, IntConfig, get_config
from .model import AttentionMaps, FrameTokens, IntModel, IntOutput, build_model

__all__ = [
    "DEMO_CHECKPOINT",
    "demo_checkpoint",
    "AttentionMaps",
    "BodyModel",
    "BodyOutput",
    "Checkpoint",
    "CheckpointError",
    "IntConfig",
    "IntModel",
    "FrameTokens",
    "IntOutput",
    "VARIANTS",
    "build_model",
    "get_config",
    "load_body_model",
    "load_checkpoint",
    "save_checkpoint",
]
