"""The demo model's evidence on held-out synthetic test clips: ``make eval`` runs

    python -m cli.eval_report [--out reports/eval] [--test-data DIR] [--int C] [--image C] [--whole-pose C]

and prints one JSON document (also written to ``OUT/eval.json``), with figures in OUT:

* **table**: PA-MPJPE, MPJPE, PVE (mm) and acceleration error (mm/frame^2) of the mean-pose baseline (the
  *training* set's mean pose and shape, from the released checkpoint's meta, predicted for every frame), the
  phase-1 image model, the shipped phase-3 model with the temporal transformer off (image-only) and on (INT,
  per-joint), and the whole-pose temporal baseline trained the same way (the paper's Table 2);
* **windows**: the shipped model's metrics at inference windows T = 16, 32, 64, 128 (the paper's Table 4);
* **priors**: the prior pose decoded from the learned tokens against a fresh model's, as anatomical joint
  angles and how far they leave the joint ranges (``prior_renders.png``);
* **temporal_blocks**: how much each temporal block changes the joint tokens (relative residual norm) and how
  much of the tokens' frame-to-frame acceleration the temporal transformer removes, on 48 test windows of 16 frames;
* **periodicity**: on the test clips whose motion moves the legs periodically (walk, run, jumping jacks,
  squat), the period estimated from the temporal attention of the hips and knees against the true period,
  and the same from the predicted rotations (``periods.png``, ``temporal_knee.png``).

The test set is generated on first use (``data/synthetic/cpu-demo-test``: 48 clips of 128 frames, seed 3,
never used in training or for choosing anything; rendered at 20 fps where training used 30, so every motion
moves 1.5x faster per frame than any training clip; occluders in about half of the clips; new random shapes).
Metrics use the Human3.6M-17 joints of the body model (``joint_set``), as the field does.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from int_model import IntModel, load_checkpoint
from int_model.checkpoint import DEMO_CHECKPOINT, CheckpointError
from int_model.constants import SMPL_JOINT_NAMES
from int_model.geometry import axis_angle_to_rotmat

from training.data import collate_groups
from int_model.precision import autocast_context

from training.evaluate import evaluate_model, frame_segments, resolve_joint_set
from training.metrics import accel_error, align_pelvis, mpjpe, pa_mpjpe, pve
from training.synthetic import SyntheticConfig, SyntheticDataset, ensure_dataset
from analysis.priors import fresh_model, fresh_tokens
from analysis.temporal_blocks import mean_changes, temporal_block_changes
from analysis.views import prior_view

log = logging.getLogger(__name__)

#: The held-out test set (see the module docstring).
TEST_SET = dict(num_clips=48, num_frames=128, seed=3, image_size=160, fps=20.0)
DEFAULT_TEST_DATA = Path("data/synthetic/cpu-demo-test")
DEFAULT_CHECKPOINTS = {
    "int": DEMO_CHECKPOINT,
    "image": Path("checkpoints/evidence/phase1-image.pt"),
    "whole_pose": Path("checkpoints/evidence/whole-pose-phase3.pt"),
}
WINDOWS = (16, 32, 64, 128)
MAIN_WINDOW = 16  # the clip length the temporal models were trained on
#: Motions whose hips and knees move periodically, and the joints whose attention is checked.
LEG_MOTIONS = ("walk", "run", "jumping_jacks", "squat")
PERIOD_JOINTS = ("left_hip", "right_hip", "left_knee", "right_knee")
METRIC_NAMES = ("pa_mpjpe", "mpjpe", "pve", "accel_error")


def ensure_test_set(folder: Path, *, spec: dict[str, Any] = TEST_SET, progress: bool = True) -> Path:
    """The test set's folder, rendered first when missing (a few minutes for :data:`TEST_SET`)."""
    config = SyntheticConfig(image_size=spec["image_size"], fps=spec["fps"])
    ensure_dataset(out_dir=folder, num_clips=spec["num_clips"], num_frames=spec["num_frames"],
                   seed=spec["seed"], config=config, workers=1, progress=progress)
    return folder


def _loader(folder: Path, *, clip_len: int, img_size: int) -> DataLoader:
    dataset = SyntheticDataset(folder, clip_len=clip_len, stride=clip_len, img_size=img_size, train=False)
    return DataLoader(dataset, batch_size=max(1, 64 // clip_len), shuffle=False, collate_fn=collate_groups)


def _rounded(metrics: dict[str, Any] | None) -> dict[str, float | None] | None:
    if metrics is None:
        return None
    return {k: (None if metrics.get(k) is None else round(float(metrics[k]), 2)) for k in METRIC_NAMES}


# ------------------------------------------------------------------------------------------ the baseline
@torch.no_grad()
def mean_pose_baseline(model: IntModel, folder: Path, train_mean: dict[str, Any], *, clip_len: int) -> dict[str, Any]:
    """The four metrics of predicting ``train_mean`` (pose (72,), betas (10,)) for every test frame."""
    body = model.body_model
    use_h36m = resolve_joint_set(model, "auto") == "h36m17"
    pose = torch.tensor(train_mean["pose"], dtype=torch.float32).reshape(1, -1, 3)
    betas = torch.tensor(train_mean["betas"], dtype=torch.float32).reshape(1, -1)
    device = next(model.parameters()).device
    mean = body(rotmat=axis_angle_to_rotmat(pose).to(device), betas=betas.to(device))
    pred = (mean.joints_h36m if use_h36m else mean.joints).cpu()
    rows: dict[str, list] = {k: [] for k in ("mpjpe", "pa_mpjpe", "pve", "pred", "gt", "keys")}
    for batch in _loader(folder, clip_len=clip_len, img_size=model.img_size):
        for group in ([batch] if isinstance(batch, dict) else batch):
            b, t = group["frames"].shape[:2]
            valid = group["valid"].reshape(-1).bool()
            gt = group["joints3d_h36m" if use_h36m else "joints3d"].reshape(b * t, -1, 3).float()[valid]
            n = len(gt)
            if not n:
                continue
            guess = pred.expand(n, -1, -1)
            rows["mpjpe"].append(mpjpe(guess, gt, reduction="none"))
            rows["pa_mpjpe"].append(pa_mpjpe(guess, gt, reduction="none"))
            gt_pose = group["pose"].reshape(b * t, -1, 3)[valid].float().to(device)
            gt_betas = group["betas"].reshape(b * t, -1)[valid].float().to(device)
            gt_mesh = body(rotmat=axis_angle_to_rotmat(gt_pose), betas=gt_betas)
            rows["pve"].append(pve(mean.vertices.expand(n, -1, -1), gt_mesh.vertices,
                                   pred_joints=mean.joints.expand(n, -1, -1), gt_joints=gt_mesh.joints,
                                   reduction="none"))
            rows["gt"].append(align_pelvis(gt))
            rows["pred"].append(align_pelvis(guess))
            frame_index = group["frame_index"].reshape(b, t)
            keys = [(f"{group['dataset'][r // t]}/{group['sequence'][r // t]}", int(frame_index[r // t, r % t]))
                    for r in valid.nonzero().flatten().tolist()]
            rows["keys"].extend(keys)
    out = {k: float(np.concatenate(rows[k]).mean()) for k in ("mpjpe", "pa_mpjpe", "pve")}
    # A constant prediction: its acceleration error is the labels' own acceleration (inside each sequence,
    # over consecutive frames only, as for the models).
    kept, segments = frame_segments(rows["keys"])
    out["accel_error"] = float(accel_error(np.concatenate(rows["pred"])[kept], np.concatenate(rows["gt"])[kept],
                                           sequence_ids=segments, align=False))
    return out


# ------------------------------------------------------------------------------------------ priors
def priors_section(model: IntModel, out_dir: Path) -> dict[str, Any]:
    from viz.figures.export import save_image
    from viz.figures.images import labelled_montage
    from viz.priors import render_prior

    candidates = {"learned tokens": model, "fresh model": fresh_model(model),
                  "fresh tokens, trained heads": fresh_tokens(model)}
    priors = prior_view(candidates)
    result: dict[str, Any] = dict(priors.plausibility)
    try:
        renders = [render_prior(p, size=256) for p in priors.upright.values()]
        montage = labelled_montage([[r.front, r.side] for r in renders], row_labels=list(candidates),
                                   column_labels=["front", "side"])
        result["figure"] = str(save_image(out_dir / "prior_renders.png", montage))
    except Exception as exc:  # noqa: BLE001 - no renderer: the numbers still stand
        log.warning("prior renders skipped: %s", exc)
    return result


# ------------------------------------------------------------------------------------------ temporal blocks
@torch.no_grad()
def temporal_blocks_section(model: IntModel, folder: Path, *, clip_len: int, max_clips: int = 48) -> dict[str, Any]:
    """How much each temporal block changes the joint tokens, and how much of the tokens' frame-to-frame
    acceleration the temporal transformer removes, on up to ``max_clips`` test windows of ``clip_len`` frames."""
    dataset = SyntheticDataset(folder, clip_len=clip_len, stride=clip_len, img_size=model.img_size, train=False)
    device = next(model.parameters()).device
    picks = np.linspace(0, len(dataset) - 1, min(max_clips, len(dataset))).astype(int)
    changes = []
    for index in picks:
        frames = torch.as_tensor(dataset[int(index)]["frames"]).to(device)
        tokens = model.encode_frames(frames).sequences(1, len(frames))
        changes.append(temporal_block_changes(model, tokens.joints))
    mean = mean_changes(changes)
    return {"clips": len(picks), "clip_len": clip_len,
            "per_block_relative_change": [round(v, 4) for v in mean.per_block],
            "whole_relative_change": round(mean.whole, 4),
            "token_accel_image": round(mean.accel_in, 4), "token_accel_temporal": round(mean.accel_out, 4),
            "token_accel_reduction": round(mean.accel_reduction, 4)}


# ------------------------------------------------------------------------------------------ periodicity
@torch.no_grad()
def periodicity_section(model: IntModel, folder: Path, out_dir: Path, *, precision: str, clip_len: int,
                        max_clips: int | None = None) -> dict[str, Any]:
    """Periods of the hips and knees from temporal attention (mean over layers and heads) and from the
    predicted rotations, on whole test clips, against the true period."""
    from analysis.periodicity import period_from_attention, period_from_rotations
    from int_model.geometry import relative_rotation_vectors

    dataset = SyntheticDataset(folder, clip_len=clip_len, img_size=model.img_size, train=False)
    device = next(model.parameters()).device
    joints = [SMPL_JOINT_NAMES.index(n) for n in PERIOD_JOINTS]
    records, example = [], None
    for index in range(len(dataset)):
        track = dataset.track_of(index)
        motion = str(dataset.track_info["motion"][track])
        true = float(dataset.track_info["period"][track])
        if motion not in LEG_MOTIONS or not math.isfinite(true):
            continue
        if max_clips is not None and len({r["clip"] for r in records}) >= max_clips:
            break
        sample = dataset[index]
        frames = torch.as_tensor(sample["frames"])[None].to(device)
        with autocast_context(device, precision):
            out = model(frames, capture_attention=True)
        attention = out.attention.temporal[0].float().mean(dim=(0, 1)).cpu().numpy()  # (J, T, T)
        rotvecs = relative_rotation_vectors(out.pose[0].float().cpu().numpy())  # (T, 24, 3)
        for name, j in zip(PERIOD_JOINTS, joints, strict=True):
            from_attention = period_from_attention(attention[j])
            from_rotation = period_from_rotations(rotvecs[:, j])
            records.append({"clip": index, "motion": motion, "joint": name, "true": round(true, 2),
                            "attention": from_attention.period, "rotation": from_rotation.period,
                            "attention_reason": from_attention.reason})
        if example is None and motion == "walk":
            example = (index, attention[SMPL_JOINT_NAMES.index("left_knee")], true)

    def summary(key: str) -> dict[str, Any]:
        found = [r for r in records if r[key] is not None]
        errors = [abs(r[key] - r["true"]) / r["true"] for r in found]
        return {"median_relative_error": round(float(np.median(errors)), 4) if errors else None,
                "within_10_percent": round(float(np.mean([e < 0.1 for e in errors])), 3) if errors else None,
                "found": len(found), "asked": len(records)}

    result = {"clips": len({r["clip"] for r in records}), "joints": list(PERIOD_JOINTS),
              "from_attention": summary("attention"), "from_rotation": summary("rotation"), "records": records}
    result["figures"] = _period_figures(records, example, out_dir)
    return result


def _period_figures(records: list[dict[str, Any]], example: tuple[int, np.ndarray, float] | None,
                    out_dir: Path) -> list[str]:
    import plotly.graph_objects as go

    from viz.figures.export import save_figure
    from viz.figures.temporal import temporal_matrix_figure

    written = []
    fig = go.Figure()
    for key, symbol in (("attention", "circle"), ("rotation", "x")):
        found = [r for r in records if r[key] is not None]
        fig.add_trace(go.Scatter(x=[r["true"] for r in found], y=[r[key] for r in found], mode="markers",
                                 marker=dict(symbol=symbol, size=8), name=f"from {key}"))
    if records:
        top = max(r["true"] for r in records) * 1.1
        fig.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", line=dict(dash="dash", color="grey"),
                                 name="exact"))
    fig.update_layout(title="Hip and knee periods on held-out clips: estimated vs true (frames)",
                      xaxis_title="true period (frames)", yaxis_title="estimated period (frames)",
                      width=720, height=520)
    written.append(str(save_figure(fig, out_dir / "periods", formats=("png",))["png"]))
    if example is not None:
        index, matrix, true = example
        title = f"Left knee, test clip {index}: walk, true period {true:.1f} frames"
        figure = temporal_matrix_figure(matrix, title=title)
        written.append(str(save_figure(figure, out_dir / "temporal_knee", formats=("png",))["png"]))
    return written


# ------------------------------------------------------------------------------------------ the table
@dataclass(frozen=True)
class Models:
    """The checkpoints of the table (None: not available here, its rows say so)."""

    int: Path
    image: Path | None
    whole_pose: Path | None


def _load(path: Path | None, device: torch.device) -> tuple[IntModel | None, dict[str, Any]]:
    if path is None or not Path(path).is_file():
        return None, {}
    checkpoint = load_checkpoint(path, device=device)
    return checkpoint.model, checkpoint.meta


def evaluate_all(models: Models, test_data: Path, out_dir: Path, *, device: torch.device, precision: str = "fp32",
                 windows: Sequence[int] = WINDOWS, periodicity_clips: int | None = None,
                 test_set: dict[str, Any] = TEST_SET, progress: bool = True) -> dict[str, Any]:
    """Every section of the report (see the module docstring) as one JSON-ready dict; figures into ``out_dir``."""
    started = time.perf_counter()
    model, meta = _load(models.int, device)
    if model is None:
        raise CheckpointError(f"the shipped checkpoint {models.int} is missing")
    out_dir.mkdir(parents=True, exist_ok=True)
    ensure_test_set(test_data, spec=test_set, progress=progress)

    def run(m: IntModel, mode: str, clip_len: int) -> dict[str, Any]:
        log.info("evaluating %s at T=%d", mode, clip_len)
        return evaluate_model(m, _loader(test_data, clip_len=clip_len, img_size=m.img_size), device=device,
                              precision=precision, modes=(mode,))

    table: list[dict[str, Any]] = []
    train_mean = meta.get("train_mean")
    if train_mean is not None:
        table.append({"model": "mean-pose baseline (training-set mean pose and shape)", "checkpoint": str(models.int),
                      **_rounded(mean_pose_baseline(model, test_data, train_mean, clip_len=MAIN_WINDOW))})
    else:
        table.append({"model": "mean-pose baseline", "missing": f"{models.int} carries no train_mean"})
    image_model, _ = _load(models.image, device)
    if image_model is not None:
        table.append({"model": "image model after phase 1", "checkpoint": str(models.image),
                      **_rounded(run(image_model, "image", MAIN_WINDOW)["image"])})
    else:
        table.append({"model": "image model after phase 1", "missing": str(models.image)})
    first = run(model, "image", MAIN_WINDOW)
    shipped = f"shipped model ({meta.get('phase', 'unknown phase')})"
    table.append({"model": f"{shipped}, temporal transformer off (image-only)", "checkpoint": str(models.int),
                  **_rounded(first["image"])})
    per_window = {}
    for t in windows:
        per_window[t] = _rounded(run(model, "temporal", t)["temporal"])
    main = per_window[MAIN_WINDOW] if MAIN_WINDOW in per_window else _rounded(run(model, "temporal", MAIN_WINDOW)["temporal"])
    table.append({"model": f"{shipped}, INT per-joint temporal (T={MAIN_WINDOW})", "checkpoint": str(models.int),
                  **main})
    whole, _ = _load(models.whole_pose, device)
    if whole is not None:
        table.append({"model": f"whole-pose temporal baseline (T={MAIN_WINDOW})",
                      "checkpoint": str(models.whole_pose),
                      **_rounded(run(whole, "temporal", MAIN_WINDOW)["temporal"])})
    else:
        table.append({"model": "whole-pose temporal baseline", "missing": str(models.whole_pose)})

    report = {
        "test_set": {"path": str(test_data), **test_set, "frames_evaluated": first["frames"],
                     "joint_set": first["joint_set"]},
        "checkpoint": {"path": str(models.int), "phase": meta.get("phase"), "step": meta.get("step"),
                       "body_model": meta.get("body_model")},
        "table": table,
        "windows": {str(t): v for t, v in per_window.items()},
        "priors": priors_section(model, out_dir),
        "temporal_blocks": temporal_blocks_section(model, test_data, clip_len=MAIN_WINDOW,
                                                   max_clips=periodicity_clips or 48),
        "periodicity": periodicity_section(model, test_data, out_dir, precision=precision,
                                           clip_len=test_set["num_frames"], max_clips=periodicity_clips),
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    _window_figure(per_window, out_dir)
    return report


def _window_figure(per_window: dict[int, dict[str, Any]], out_dir: Path) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from viz.figures.export import save_figure

    t = sorted(per_window)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("PA-MPJPE (mm)", "acceleration error (mm/frame^2)"))
    fig.add_trace(go.Scatter(x=t, y=[per_window[k]["pa_mpjpe"] for k in t], mode="lines+markers", name="PA-MPJPE"),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=t, y=[per_window[k]["accel_error"] for k in t], mode="lines+markers",
                             name="acceleration"), row=1, col=2)
    fig.update_xaxes(title_text="inference window T (frames)", type="log", tickvals=t)
    fig.update_layout(title="INT (per-joint temporal) at longer inference windows", width=900, height=420,
                      showlegend=False)
    save_figure(fig, out_dir / "windows", formats=("png",))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.eval_report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("reports/eval"), help="figures and eval.json")
    parser.add_argument("--test-data", type=Path, default=DEFAULT_TEST_DATA, help="the test set's folder")
    parser.add_argument("--int", type=Path, default=DEFAULT_CHECKPOINTS["int"], help="the shipped checkpoint")
    parser.add_argument("--image", type=Path, default=DEFAULT_CHECKPOINTS["image"], help="the phase-1 checkpoint")
    parser.add_argument("--whole-pose", type=Path, default=DEFAULT_CHECKPOINTS["whole_pose"],
                        help="the whole-pose baseline's phase-3 checkpoint")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--windows", type=int, nargs="+", default=list(WINDOWS), help="inference windows T")
    parser.add_argument("--periodicity-clips", type=int, default=None, help="at most this many clips (quick runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    try:
        report = evaluate_all(Models(int=args.int, image=args.image, whole_pose=args.whole_pose), args.test_data,
                              args.out, device=torch.device(args.device), precision=args.precision,
                              windows=args.windows, periodicity_clips=args.periodicity_clips,
                              progress=not args.quiet)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(report, indent=2)
    (args.out / "eval.json").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
