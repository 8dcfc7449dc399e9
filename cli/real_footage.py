"""The shipped pipeline on real footage: who is found, and how well the bodies match 2D keypoints.

``python -m cli.real_footage [--out reports/real] [--media-dir data/real]`` (``make eval-real``).

The media are real photographs and a street clip that Debian's ``opencv-doc`` package ships (OpenCV's sample
data, fetched with ``apt-get download`` into ``--media-dir`` on first use) and matplotlib's portrait of Grace
Hopper. For each medium the CLI runs twice (``--refine`` off and on), and:

* **people**: the clearly visible people (counted by eye, written in :data:`MEDIA`) against the people found
  (photos) or the tracks made (the clip);
* **2D error** of the SMPL joints BlazePose also marks (shoulders, elbows, wrists, hips, knees, ankles), against
  BlazePose's keypoints in the same box (visibility > 0.5, inside the frame): the mean distance as % of the box
  height, and PCK@0.1 (share of joints within 0.1 box heights). BlazePose is an independent network, not
  ground truth; INT never saw its output. Rows:

  - ``int``: the network's own output;
  - ``mean_skeleton``: the baseline, the training set's mean pose and shape (the checkpoint's ``train_mean``)
    as a mesh standing in the same box (the mesh's height is the box's, its top the box's top, its centre
    the box's centre);
  - ``refined_fitted``: after ``--refine``, against the very keypoints it was fitted to (how closely the fit
    follows them; *not* an independent measure);
  - ``refined_held_out``: each limb (elbow + wrist, knee + ankle) after a fit to every *other* keypoint: what
    the fit gets right where it was given nothing.

The clip's frames 0-199 were used to choose the tracker's and the detector's settings, and the tracker's rule
against a second box on one person was added after looking at frames 400-499; nothing was chosen on frames
600-699, which were only looked at to count the people in them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch

from int_model.checkpoint import DEMO_CHECKPOINT, load_checkpoint
from cli.reconstruct import run as run_cli
from int_model.constants import SMPL_JOINT_NAMES
from int_model.geometry import axis_angle_to_rotmat
from int_model.model import IntModel
from int_model.crops import CropBatch, CropSettings
from pipeline.keypoints import BLAZEPOSE_TO_SMPL, BlazePose
from pipeline.refine import RefineParams, refine_to_keypoints
from pipeline.results import load_results

DEBIAN_PACKAGE = "opencv-doc"
DEBIAN_DATA = "usr/share/doc/opencv-doc/examples/data"
PCK_THRESHOLD = 0.1
MIN_VISIBILITY = 0.5
MIN_REFERENCE_JOINTS = 6
LIMBS = {"left arm": ("left_elbow", "left_wrist"), "right arm": ("right_elbow", "right_wrist"),
         "left leg": ("left_knee", "left_ankle"), "right leg": ("right_knee", "right_ankle")}
MEASURED = [SMPL_JOINT_NAMES.index(name) for name in BLAZEPOSE_TO_SMPL.values()]


@dataclass(frozen=True)
class Medium:
    """One test medium. ``visible``: clearly visible people, counted by eye (distinct people for a clip)."""

    name: str
    kind: str
    file: str
    visible: int
    note: str
    frames: tuple[int, int] | None = None  # (first, count) of a clip
    fps: float | None = None


MEDIA: tuple[Medium, ...] = (
    Medium("messi5", "photo", "messi5.jpg", 1, "a footballer kicking; the blurred crowd behind is not counted"),
    Medium("basketball1", "photo, grayscale", "basketball1.png", 2, "two players; the right one cut by the edge"),
    Medium("basketball2", "photo, grayscale", "basketball2.png", 2, "the same pair a moment later"),
    Medium("grace_hopper", "photo, portrait", "grace_hopper.jpg", 1, "head and shoulders only (truncated)"),
    Medium("vtest-400", "clip, 768x576, 10 fps", "vtest.avi", 6, "street scene, frames 400-499: 6 people pass "
           "(counted on a contact sheet of every 10th frame; one walks out in the first 4 frames), up to 5 at once, "
           "crossing and passing behind a sign post; the tracker's duplicate-box rule was added after looking at "
           "these frames", frames=(400, 100), fps=10.0),
    Medium("vtest-600", "clip, 768x576, 10 fps", "vtest.avi", 10, "street scene, frames 600-699: 10 people pass "
           "(counted on contact sheets of every 10th frame), up to 8 at once, small ones on the far path, pairs "
           "crossing; nothing was chosen on these frames",
           frames=(600, 100), fps=10.0),
)


# ----------------------------------------------------------------------------------------------
# Media
# ----------------------------------------------------------------------------------------------


def fetch_media(folder: Path) -> Path:
    """Make sure every medium's file is in ``folder`` (from Debian's opencv-doc and matplotlib)."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = [m.file for m in MEDIA if m.file != "grace_hopper.jpg"]
    if not all((folder / name).is_file() for name in wanted):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                subprocess.run(["apt-get", "download", DEBIAN_PACKAGE], cwd=tmp, check=True, capture_output=True)
                deb = next(Path(tmp).glob(f"{DEBIAN_PACKAGE}_*.deb"))
                subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True, capture_output=True)
            except (OSError, subprocess.CalledProcessError, StopIteration) as error:
                raise SystemExit(f"could not fetch Debian's {DEBIAN_PACKAGE} (needs apt-get and dpkg-deb and the "
                                 f"Debian mirror): {error}") from error
            for name in wanted:
                shutil.copy(Path(tmp) / "x" / DEBIAN_DATA / name, folder / name)
    import matplotlib

    portrait = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not (folder / "grace_hopper.jpg").is_file():
        shutil.copy(portrait, folder / "grace_hopper.jpg")
    return folder


def _clip_frames(path: Path, first: int, count: int, out: Path) -> list[Path]:
    """Frames first .. first + count - 1 of a video as PNGs in ``out`` (an image folder the CLI reads)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= first + count:
                break
            if index >= first:
                target = out / f"{index:06d}.png"
                cv2.imwrite(str(target), frame.to_ndarray(format="bgr24"))
                written.append(target)
    return written


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# ----------------------------------------------------------------------------------------------
# Measures
# ----------------------------------------------------------------------------------------------


def mean_skeleton_layout(model: IntModel, train_mean: dict[str, Any]) -> np.ndarray:
    """(24, 2) the training set's mean body's joints in box units: x from the box centre, y from the box top, both
    divided by the box height (its mesh seen from the front, orthographically, spanning the box's height)."""
    pose = torch.tensor(train_mean["pose"], dtype=torch.float32).reshape(1, -1, 3)
    betas = torch.tensor(train_mean["betas"], dtype=torch.float32).reshape(1, -1)
    with torch.no_grad():
        body = model.body_model(rotmat=axis_angle_to_rotmat(pose.reshape(-1, 3)).reshape(1, -1, 3, 3), betas=betas)
    vertices, joints = body.vertices[0, :, :2].numpy(), body.joints[0, :, :2].numpy()
    top, bottom = vertices[:, 1].min(), vertices[:, 1].max()
    centre = (vertices[:, 0].min() + vertices[:, 0].max()) / 2
    return np.stack([(joints[:, 0] - centre), (joints[:, 1] - top)], axis=1) / (bottom - top)


def _errors(predicted: np.ndarray, reference: np.ndarray, used: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """Per used joint: distance / box height. predicted, reference (N, 24, 2); used (N, 24) bool; heights (N,)."""
    distance = np.linalg.norm(predicted - reference, axis=-1) / heights[:, None]
    return distance[used]


def _summary(errors: np.ndarray) -> dict[str, float | int | None]:
    if errors.size == 0:
        return {"error_pct": None, "pck": None, "joints": 0}
    return {"error_pct": round(float(errors.mean() * 100), 1), "pck": round(float((errors < PCK_THRESHOLD).mean()), 3),
            "joints": int(errors.size)}


def _refine_in_image(model: IntModel, results: Any, rows: np.ndarray, keypoints: np.ndarray, weight: np.ndarray,
                     params: RefineParams) -> np.ndarray:
    """(R, 24, 2) image pixels of the fitted joints of result rows ``rows`` fitted to ``keypoints`` (image px)."""
    squares = CropBatch.from_boxes(results.bbox[rows], settings=CropSettings(size=model.img_size))
    pose = torch.from_numpy(results.pose[rows]).reshape(-1, 3)
    rotmat = axis_angle_to_rotmat(pose).reshape(len(rows), -1, 3, 3)
    fit = refine_to_keypoints(model.body_model, rotmat, torch.from_numpy(results.betas[rows]),
                              torch.from_numpy(results.cam[rows]),
                              torch.from_numpy(squares.to_crop(keypoints)), torch.from_numpy(weight), params=params)
    return squares.to_image(fit.joints2d.numpy())


def measure(model: IntModel, layout: np.ndarray, results: Any, images: dict[int, np.ndarray], estimator: BlazePose,
            params: RefineParams) -> dict[str, Any]:
    """The 2D rows of the table for one medium's results (see the module docstring)."""
    n = len(results.frame)
    reference, visible, fit_points, fit_weight = (np.zeros((n, 24, 2)), np.zeros((n, 24), bool),
                                                  np.zeros((n, 24, 2)), np.zeros((n, 24)))
    for r in range(n):
        image = images[int(results.frame[r])]
        (person,) = estimator.estimate(image, results.bbox[r][None])
        if person is None:
            continue
        size = (image.shape[1], image.shape[0])
        points, confidence = person.smpl_joints(frame_size=size)
        reference[r], visible[r] = points, confidence > MIN_VISIBILITY
        fit_points[r], fit_weight[r] = person.smpl_joints(head=True, frame_size=size)
    rows = np.nonzero(visible.sum(axis=1) >= MIN_REFERENCE_JOINTS)[0]
    out: dict[str, Any] = {"person_frames": n, "measured_person_frames": len(rows)}
    if not len(rows):
        return out
    boxes = results.bbox[rows].astype(np.float64)
    heights = boxes[:, 3]
    used = visible[rows]
    skeleton = np.stack([boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1]], axis=1)[:, None] + layout[None] * heights[:,
                                                                                                          None, None]
    out["int"] = _summary(_errors(results.joints2d[rows], reference[rows], used, heights))
    out["mean_skeleton"] = _summary(_errors(skeleton, reference[rows], used, heights))
    fitted = _refine_in_image(model, results, rows, fit_points[rows], fit_weight[rows], params)
    out["refined_fitted"] = _summary(_errors(fitted, reference[rows], used, heights))
    held_out, int_on_limbs = [], []
    for names in LIMBS.values():
        limb = [SMPL_JOINT_NAMES.index(name) for name in names]
        weight = fit_weight[rows].copy()
        weight[:, limb] = 0.0
        predicted = _refine_in_image(model, results, rows, fit_points[rows], weight, params)
        mask = np.zeros_like(used)
        mask[:, limb] = used[:, limb]
        held_out.append(_errors(predicted, reference[rows], mask, heights))
        int_on_limbs.append(_errors(results.joints2d[rows], reference[rows], mask, heights))
    out["refined_held_out"] = _summary(np.concatenate(held_out))
    out["int_on_held_out_limbs"] = _summary(np.concatenate(int_on_limbs))
    return out


# ----------------------------------------------------------------------------------------------
# Runs and figures
# ----------------------------------------------------------------------------------------------


def _run(source: Path, out: Path, *, refine: bool, fps: float | None) -> Any:
    argv = [str(source), "--out", str(out), "--quiet"] + (["--refine"] if refine else [])
    argv += ["--fps", str(fps)] if fps else []
    code = run_cli(argv)
    if code not in (0, 3):  # 3: nobody found (results.npz says so)
        raise SystemExit(f"the CLI failed on {source} (exit {code})")
    return load_results(out / "results.npz")


def _overlay_frames(video: Path, wanted: Sequence[int]) -> dict[int, np.ndarray]:
    frames = {}
    if not video.is_file():
        return frames
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                frames[index] = frame.to_ndarray(format="rgb24")
            if index >= max(wanted):
                break
    return frames


def _figure(panels: list[tuple[str, np.ndarray]], path: Path, *, width: int = 560) -> None:
    """Panels side by side, each scaled to ``width`` pixels and titled, written as a PNG."""
    scaled = []
    for title, image in panels:
        h = int(round(image.shape[0] * width / image.shape[1]))
        panel = cv2.resize(image, (width, h), interpolation=cv2.INTER_AREA)
        bar = np.full((28, width, 3), 255, np.uint8)
        cv2.putText(bar, title, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        scaled.append(np.vstack([bar, panel]))
    tallest = max(p.shape[0] for p in scaled)
    row = np.hstack([np.vstack([p, np.full((tallest - p.shape[0], width, 3), 255, np.uint8)]) for p in scaled])
    cv2.imwrite(str(path), cv2.cvtColor(row, cv2.COLOR_RGB2BGR))


def evaluate(media_dir: Path, out_dir: Path, *, params: RefineParams = RefineParams(),
             media: Sequence[Medium] = MEDIA) -> dict[str, Any]:
    checkpoint = load_checkpoint(DEMO_CHECKPOINT)
    model, train_mean = checkpoint.model, checkpoint.meta["train_mean"]
    layout = mean_skeleton_layout(model, train_mean)
    estimator = BlazePose()
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"checkpoint": str(DEMO_CHECKPOINT.name), "pck_threshold": PCK_THRESHOLD,
                              "refine": params.__dict__, "media": []}
    with tempfile.TemporaryDirectory() as tmp:
        for medium in media:
            work = Path(tmp) / medium.name
            if medium.frames is not None:
                files = _clip_frames(media_dir / medium.file, *medium.frames, work / "frames")
                source = work / "frames"
                images = {k: _rgb(f) for k, f in enumerate(files)}
            else:
                source = media_dir / medium.file
                images = {0: _rgb(source)}
            plain = _run(source, work / "plain", refine=False, fps=medium.fps)
            _run(source, work / "refined", refine=True, fps=medium.fps)  # its overlay is shown below
            found = (len(np.unique(plain.track_id)) if medium.frames is not None else len(plain.frame))
            entry = {"name": medium.name, "kind": medium.kind, "note": medium.note, "visible": medium.visible,
                     "found": found, "frames": len(images),
                     "people_per_frame": round(len(plain.frame) / max(len(images), 1), 2)}
            entry.update(measure(model, layout, plain, images, estimator, params))
            report["media"].append(entry)
            shown = [0, len(images) // 2] if medium.frames is not None else [0]
            plain_frames = _overlay_frames(work / "plain" / "overlay.mp4", shown)
            refined_frames = _overlay_frames(work / "refined" / "overlay.mp4", shown)
            for k in shown:
                if k in plain_frames and k in refined_frames:
                    name = (f"{Path(medium.file).stem}-{medium.frames[0] + k}" if medium.frames is not None
                            else medium.name)
                    _figure([("INT (demo model)", plain_frames[k]), ("INT + --refine (BlazePose keypoints)",
                                                                      refined_frames[k])], out_dir / f"{name}.png")
            print(json.dumps(entry), flush=True)
    path = out_dir / "real_footage.json"
    if len(media) < len(MEDIA) and path.is_file():  # a partial run updates its media's entries only
        done = {entry["name"]: entry for entry in report["media"]}
        earlier = json.loads(path.read_text())
        earlier["media"] = [done.pop(e["name"], e) for e in earlier["media"]] + list(done.values())
        report = {**report, "media": earlier["media"]}
    path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.real_footage", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports/real"))
    parser.add_argument("--media-dir", type=Path, default=Path("data/real"))
    parser.add_argument("--only", nargs="*", help="names of the media to run (default: all)")
    args = parser.parse_args(argv)
    media = [m for m in MEDIA if not args.only or m.name in args.only]
    evaluate(fetch_media(args.media_dir), args.out, media=media)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
