"""Evaluation: MPJPE, PA-MPJPE, PVE and acceleration error of a model on held-out clips, for image-only
inference (temporal transformer off: every frame on its own) and temporal inference (clips through the
temporal transformer).

    python -m cli.evaluate --checkpoint runs/phase2/final.pt --data data/synthetic/cpu-demo-val

prints one JSON document::

    {"checkpoint": ..., "data": ..., "joint_set": "h36m17", "clips": 16, "frames": 1024,
     "image":    {"mpjpe": ..., "pa_mpjpe": ..., "pve": ..., "accel_error": ...},
     "temporal": {... the same ...} or null for an image model,
     "mean_pose_baseline": {"mpjpe": ..., "pa_mpjpe": ..., "accel_error": ...}}

Millimetres (mm/frame^2 for acceleration). MPJPE / PA-MPJPE / acceleration use the Human3.6M-17 joints when
the body model has their regressor (``joint_set``), else SMPL-24, on frames where every joint of the set is
labelled; PVE compares with the label mesh (the body model posed by the label's theta and beta) where both are
labelled. Acceleration error runs inside each sequence only: rows are ordered by (sequence, frame) and a
second difference counts only over three consecutive frames of one sequence. The mean-pose baseline predicts
the evaluated frames' own mean pelvis-aligned pose for every frame (an optimistic constant predictor).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from int_model import BodyOutput, IntModel, IntOutput
from int_model.geometry import axis_angle_to_rotmat
from int_model.precision import autocast_context

from .metrics import accel_error, align_pelvis, mpjpe, pa_mpjpe, pve
from .sample import Batch

METRICS = ("mpjpe", "pa_mpjpe", "pve", "accel_error")
Mode = Literal["image", "temporal"]
JointSetChoice = Literal["auto", "smpl24", "h36m17"]


@dataclass
class _BatchLabels:
    """The ground truth of one batch of B clips of T frames, as B * T rows.

    Attributes:
        num_rows: B * T.
        frames: how many rows are valid frames.
        gt_joints: (B * T, J, 3) the evaluated joint set's labels.
        joint_rows: (B * T,) bool, valid rows with every joint of the set labelled.
        mesh_rows: (B * T,) bool, valid rows with pose and shape labelled.
        gt_mesh: the label mesh of the ``mesh_rows`` (None when there are none).
        keys: (sequence, frame) of each of the ``joint_rows``.
    """

    num_rows: int
    frames: int
    gt_joints: torch.Tensor
    joint_rows: torch.Tensor
    mesh_rows: torch.Tensor
    gt_mesh: BodyOutput | None
    keys: list[tuple[str, int]]


@dataclass
class _Frames:
    """Per-frame results of one inference mode, accumulated over batches."""

    mpjpe: list[np.ndarray] = field(default_factory=list)
    pa_mpjpe: list[np.ndarray] = field(default_factory=list)
    pve: list[np.ndarray] = field(default_factory=list)
    pred_joints: list[np.ndarray] = field(default_factory=list)  # pelvis-aligned, rows with full joint labels

    def add(self, out: IntOutput, labels: _BatchLabels, *, use_h36m: bool) -> None:
        """Score one batch's predictions against its labels."""
        n, rows = labels.num_rows, labels.joint_rows
        pred = (out.joints3d_h36m if use_h36m else out.joints3d).reshape(n, -1, 3).float().cpu()
        if labels.keys:
            self.mpjpe.append(mpjpe(pred[rows], labels.gt_joints[rows], reduction="none"))
            self.pa_mpjpe.append(pa_mpjpe(pred[rows], labels.gt_joints[rows], reduction="none"))
            self.pred_joints.append(align_pelvis(pred[rows]))
        if labels.gt_mesh is not None:
            keep = labels.mesh_rows.to(out.vertices.device)
            self.pve.append(pve(
                out.vertices.reshape(n, -1, 3)[keep], labels.gt_mesh.vertices,
                pred_joints=out.joints3d.reshape(n, -1, 3)[keep], gt_joints=labels.gt_mesh.joints,
                reduction="none",
            ))


@dataclass
class _Labels:
    """Per-frame labels, accumulated over batches (identical for every mode)."""

    gt_joints: list[np.ndarray] = field(default_factory=list)
    keys: list[tuple[str, int]] = field(default_factory=list)  # (sequence, frame) of each joint row

    def add(self, labels: _BatchLabels) -> None:
        """Keep one batch's pelvis-aligned joint labels and their keys."""
        self.keys.extend(labels.keys)
        self.gt_joints.append(align_pelvis(labels.gt_joints[labels.joint_rows]))


def _cat(parts: list[np.ndarray], shape: tuple[int, ...] = (0,)) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(shape)


def frame_segments(keys: Sequence[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Row order by (sequence, frame) with duplicates dropped, and a segment id per kept row that changes at
    every sequence boundary and every gap in the frame numbers."""
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    kept, ids, segment, previous = [], [], -1, None
    for i in order:
        key = keys[i]
        if previous is not None and key == previous:
            continue
        if previous is None or key[0] != previous[0] or key[1] != previous[1] + 1:
            segment += 1
        kept.append(i)
        ids.append(segment)
        previous = key
    return np.asarray(kept, dtype=np.int64), np.asarray(ids, dtype=np.int64)


def _batches(loader: Iterable[Any]) -> Iterable[Batch]:
    """Batches of a loader that yields batches or lists of batches (grouped by clip length)."""
    for item in loader:
        if isinstance(item, dict):
            yield item
        else:
            yield from item


def resolve_joint_set(model: IntModel, joint_set: JointSetChoice) -> str:
    if joint_set == "auto":
        return "h36m17" if model.body_model.has_h36m else "smpl24"
    if joint_set == "h36m17" and not model.body_model.has_h36m:
        raise ValueError("joint_set h36m17 needs a body model with the Human3.6M regressor")
    return joint_set


def _evaluated_modes(model: IntModel, modes: Sequence[Mode] | None) -> Sequence[Mode]:
    """The inference modes to evaluate: both by default when the model has a temporal transformer."""
    if modes is None:
        modes = ("image", "temporal") if model.temporal_transformer is not None else ("image",)
    if "temporal" in modes and model.temporal_transformer is None:
        raise ValueError("temporal evaluation needs a model with a temporal transformer")
    return modes


@torch.inference_mode()
def evaluate_model(
    model: IntModel,
    loader: Iterable[Any],
    *,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    modes: Sequence[Mode] | None = None,
    joint_set: JointSetChoice = "auto",
    max_batches: int | None = None,
) -> dict[str, Any]:
    """The four metrics per inference mode on every clip of ``loader`` (see the module docstring).

    Args:
        model: the network (its own body model gives the label meshes); it is put in eval mode and restored.
        loader: yields collated batches (or lists of them) of clips, in any order.
        modes: ``image`` and / or ``temporal`` (default: both when the model has a temporal transformer).
        joint_set: ``auto`` (H36M-17 when the body model has the regressor), ``smpl24`` or ``h36m17``.
    Returns:
        ``{"joint_set", "clips", "frames", "image": {metric: mm}, "temporal": {...} or None,
        "mean_pose_baseline": {...}}``; a metric with no labelled frame is None.
    """
    device = torch.device(device)
    modes = _evaluated_modes(model, modes)
    use_h36m = resolve_joint_set(model, joint_set) == "h36m17"
    was_training = model.training
    model.eval()
    per_mode = {mode: _Frames() for mode in modes}
    labels = _Labels()
    clips = frames_seen = 0
    for number, batch in enumerate(_batches(loader)):
        if max_batches is not None and number >= max_batches:
            break
        clips += batch["frames"].shape[0]
        frames = batch["frames"].to(device, non_blocking=True)
        batch_labels = _batch_labels(model, batch, device=device, use_h36m=use_h36m)
        frames_seen += batch_labels.frames
        labels.add(batch_labels)
        for mode in modes:
            with autocast_context(device, precision):
                out = model(frames, temporal=mode == "temporal")
            per_mode[mode].add(out, batch_labels, use_h36m=use_h36m)
    model.train(was_training)
    return _summary(per_mode, labels, joint_set="h36m17" if use_h36m else "smpl24", clips=clips,
                    frames=frames_seen)


def _batch_labels(model: IntModel, batch: Batch, *, device: torch.device, use_h36m: bool) -> _BatchLabels:
    """A batch's labels as rows, with the label meshes posed by the model's body model on ``device``."""
    b, t = batch["frames"].shape[:2]
    valid = batch["valid"].reshape(-1).bool()
    gt_key, vis_key = ("joints3d_h36m", "joints3d_h36m_vis") if use_h36m else ("joints3d", "joints3d_vis")
    joint_rows = valid & (batch[vis_key].reshape(b * t, -1) > 0).all(dim=1)
    mesh_rows = valid & (batch["has_pose"].reshape(-1) > 0) & (batch["has_betas"].reshape(-1) > 0)
    gt_mesh = None
    if bool(mesh_rows.any()):
        pose = batch["pose"].reshape(b * t, -1, 3)[mesh_rows].to(device).float()
        betas = batch["betas"].reshape(b * t, -1)[mesh_rows].to(device).float()
        gt_mesh = model.body_model(rotmat=axis_angle_to_rotmat(pose), betas=betas)
    sequences = [f"{d}/{s}" for d, s in zip(batch["dataset"], batch["sequence"])]
    frame_index = batch["frame_index"].reshape(b, t)
    keys = [(sequences[r // t], int(frame_index[r // t, r % t])) for r in joint_rows.nonzero().flatten().tolist()]
    return _BatchLabels(num_rows=b * t, frames=int(valid.sum()), gt_joints=batch[gt_key].reshape(b * t, -1, 3).float(),
                        joint_rows=joint_rows, mesh_rows=mesh_rows, gt_mesh=gt_mesh, keys=keys)


def _mean(parts: list[np.ndarray]) -> float | None:
    values = _cat(parts)
    return float(values.mean()) if values.size else None


def _summary(per_mode: dict[str, _Frames], labels: _Labels, *, joint_set: str, clips: int,
             frames: int) -> dict[str, Any]:
    """The result of :func:`evaluate_model` from the accumulated per-frame errors and labels."""
    gt_all = _cat(labels.gt_joints, (0, 1, 3))
    kept, segment_ids = frame_segments(labels.keys)

    def accel(pred_all: np.ndarray) -> float | None:
        if kept.size < 3:
            return None
        value = accel_error(pred_all[kept], gt_all[kept], sequence_ids=segment_ids, align=False)
        return None if np.isnan(value) else float(value)

    result: dict[str, Any] = {
        "joint_set": joint_set,
        "clips": clips,
        "frames": frames,
        "image": None,
        "temporal": None,
    }
    for mode, acc in per_mode.items():
        result[mode] = {
            "mpjpe": _mean(acc.mpjpe),
            "pa_mpjpe": _mean(acc.pa_mpjpe),
            "pve": _mean(acc.pve),
            "accel_error": accel(_cat(acc.pred_joints, (0, 1, 3))),
        }
    if gt_all.shape[0]:
        mean_pose = np.broadcast_to(gt_all.mean(axis=0), gt_all.shape)
        result["mean_pose_baseline"] = {
            "mpjpe": float(mpjpe(mean_pose, gt_all)),
            "pa_mpjpe": float(pa_mpjpe(mean_pose, gt_all)),
            "accel_error": accel(mean_pose),
        }
    else:
        result["mean_pose_baseline"] = None
    return result


# ------------------------------------------------------------------------------------------------------ CLI
def eval_dataset(data: Path, *, clip_len: int, img_size: int, split: str):
    """The evaluation dataset in ``data``: a synthetic dataset folder, or a 3DPW folder (``sequenceFiles/``)."""
    if (data / "sequenceFiles").is_dir():
        from .datasets import ThreeDPW

        return ThreeDPW(data, split=split, clip_len=clip_len, stride=clip_len, img_size=img_size, train=False)
    from .synthetic import SyntheticDataset
    from .synthetic.generate import MANIFEST_NAME

    if not (data / MANIFEST_NAME).is_file():
        raise FileNotFoundError(f"{data} is neither a synthetic dataset (python -m cli.synthetic --out DIR) "
                                "nor a 3DPW folder (with sequenceFiles/)")
    return SyntheticDataset(data, clip_len=clip_len, stride=clip_len, img_size=img_size, train=False)
