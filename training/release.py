"""Release a trained checkpoint: the weights a user needs, small, with what evaluation needs to know.

    python -m cli.release runs/cpu-demo/phase3/final.pt checkpoints/int-small-synthetic.pt \
        --train-data data/synthetic/cpu-demo-train [--dtype float16]

writes an INT Studio checkpoint without training state (no optimiser, no RNG), the weights stored as float16
(half the size; :func:`int_model.load_checkpoint` loads them into the float32 model), and adds to its meta:

* ``train_mean``: the training set's mean pose (72, axis-angle: the chordal mean rotation of each joint) and
  mean shape (10), from the training labels. The mean-pose baseline of ``python -m cli.eval_report``
  predicts exactly this for every frame, so the baseline is the *training* set's, never the test set's.
* ``released_from``: the source checkpoint's path, phase and step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from int_model import load_checkpoint, save_checkpoint
from int_model.geometry import rotmat_to_axis_angle
from int_model.geometry import mean_rotations

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def training_mean(pose: np.ndarray, betas: np.ndarray, valid: np.ndarray | None = None) -> dict[str, list[float]]:
    """Mean pose (72,) and shape (10,) of labelled training frames: pose (N, 72) axis-angle, betas (N, 10)."""
    pose = np.asarray(pose, dtype=np.float64)
    betas = np.asarray(betas, dtype=np.float64)
    if valid is not None:
        keep = np.asarray(valid) > 0
        pose, betas = pose[keep], betas[keep]
    if len(pose) == 0:
        raise ValueError("no labelled training frames to average")
    mean = mean_rotations(pose)  # (24, 3, 3) chordal means
    mean_pose = rotmat_to_axis_angle(torch.as_tensor(mean)).reshape(-1).numpy()
    return {"pose": [float(v) for v in mean_pose], "betas": [float(v) for v in betas.mean(axis=0)],
            "frames": int(len(pose))}


def synthetic_training_mean(folder: str | Path) -> dict[str, Any]:
    """:func:`training_mean` of a synthetic dataset's labels (read from its table, no image decoded)."""
    from .synthetic import SyntheticDataset

    table = SyntheticDataset(folder, clip_len=1, train=False).table
    result = training_mean(table.pose, table.betas, valid=table.valid * table.has_pose)
    return {**result, "data": str(folder)}


def release(source: str | Path, target: str | Path, *, train_data: str | Path | None = None,
            dtype: str = "float16") -> Path:
    """Write the released copy of ``source`` to ``target`` (see the module docstring); returns ``target``."""
    checkpoint = load_checkpoint(source)
    model = checkpoint.model
    meta = {k: v for k, v in checkpoint.meta.items() if k not in ("created",)}
    meta["released_from"] = {"path": str(source), "phase": meta.get("phase"), "step": meta.get("step")}
    if train_data is not None:
        meta["train_mean"] = synthetic_training_mean(train_data)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    cast = DTYPES[dtype]
    originals = {name: p.data for name, p in model.named_parameters()}
    try:
        for p in model.parameters():
            p.data = p.data.to(cast)
        save_checkpoint(target, model, meta=meta)
    finally:
        for name, p in model.named_parameters():
            p.data = originals[name]
    return target
