"""``python -m cli.report INPUT --out DIR [--checkpoint C]``: every analysis figure for one clip, in batch.

INPUT is a pipeline results folder (or its ``results.npz``), or a video / image folder / image, which is first
run through the pipeline (:func:`pipeline.run.run_pipeline`, results in ``DIR/pipeline``). For
one track (the longest unless ``--track``) and an analysis window of ``--window`` consecutive frames from
``--start``, the frames are read again, cut into crops the way the pipeline cut them, and the model runs once
more on them with attention captured: the image model (spatial attention, image-only poses) and the
temporal transformer over the window (temporal attention, temporal poses).

Written to DIR (each figure as ``NAME.html``, interactive, and ``NAME.png``):

* ``prior_renders.png`` (front and side renders; rows: fresh tokens, learned tokens[, ``--compare``
  checkpoint]), ``prior_<label>.glb``, ``prior_meshes`` (3D), ``prior_angles``, ``token_similarity``;
* ``attention_tokens_<view>`` for the views ``layer<L>_head<H>``, ``layer<L>_mean`` and ``rollout`` (all 26
  tokens over the crop, joints marked) and ``attention_frame_<view>`` (``--token``'s map in the full frame);
* ``attribution_<target>`` (captum integrated gradients of ``--token``'s rotation angle, of beta 0 and of
  the camera scale, beside the token's rollout attention);
* ``temporal_joints`` (24 matrices), ``temporal_<token>`` (one joint, hover shows the frames),
  ``temporal_pairs`` (the strongest frame pairs as arcs), ``lag_profiles``, ``periods``;
* ``rotation_curves`` and ``jitter`` (image-only vs temporal model);
* ``analysis.json``: periods per joint from attention and from rotation (window and whole track), attention
  peak distances, strongest pairs, prior pose angles, jitter, attribution numbers, the settings and files.

Without ``--checkpoint`` (and no checkpoint recorded in the results) the bundled demo model is used, or with
``--variant`` an untrained model of that variant:
the figures' layout is real, their content is noise, and ``analysis.json`` says ``"untrained": true``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis import attention as att
from analysis.attribution import AttributionTarget
from analysis.capture import ClipWindow, ModelRun, read_window, run_model
from analysis.priors import fresh_model, prior_angles
from analysis.temporal import MEAN, JointAngleCurves, attention_peak_distance
from analysis.views import (
    CURVE_JOINTS,
    NUM_PAIRS,
    PAIR_JOINTS,
    ImageAttentionView,
    PriorView,
    TemporalView,
    attribution_view,
    image_attention_view,
    periods_from_rotation,
    prior_view,
    temporal_view,
)
from int_model import IntModel
from int_model.constants import SMPL_JOINT_NAMES, TOKEN_NAMES
from int_model.crops import INFERENCE_BBOX_SCALE
from int_model.loading import ModelKey, load_model
from pipeline.inference import DEFAULT_WINDOW, InferenceSettings
from pipeline.results import RESULTS_FILE_NAME, UNTRAINED_CHECKPOINT, load_results
from pipeline.run import RunSettings, run_pipeline
from viz.export import export_mesh
from viz.figures.attention import attribution_figure, frame_attention_figure, token_grid_figure
from viz.figures.export import FigureFile, save_figures, save_image
from viz.figures.images import labelled_montage, thumbnails
from viz.figures.priors import prior_angles_figure, prior_mesh_figure, similarity_figure
from viz.figures.temporal import (
    frame_pairs_figure,
    jitter_figure,
    lag_profile_figure,
    periodicity_figure,
    rotation_curves_figure,
    temporal_grid_figure,
    temporal_matrix_figure,
)
from viz.priors import render_prior

log = logging.getLogger("cli.report")

DEFAULT_TOKEN = "left_knee"
ANALYSIS_FILE = "analysis.json"


@dataclass(frozen=True)
class ReportSettings:
    """What the report analyses and how.

    Attributes:
        track: track id (None: the longest track).
        start: first frame of the analysis window, counted within the track.
        window: frames in the analysis window (the temporal transformer sees them all at once).
        frame: frame of the window whose image attention is shown (None: the middle one).
        token: the token shown in the full frame, in one temporal matrix and in the attributions.
        layer: spatial block of the single-layer views (negative counts from the end).
        head: head of the single-head view.
        temporal_layer, temporal_head: the temporal attention view (index or "mean").
        attribution_steps: integrated-gradients steps.
        num_pairs: strongest pairs per joint.
        crop_scale: crop side over box side (the pipeline's, 1.1).
        known_period: true period in frames (synthetic clips), drawn and stored; None if unknown.
        png_backend: "auto", "kaleido" or "matplotlib".
    """

    track: int | None = None
    start: int = 0
    window: int = DEFAULT_WINDOW
    frame: int | None = None
    token: str = DEFAULT_TOKEN
    layer: int = -1
    head: int = 0
    temporal_layer: int | str = -1
    temporal_head: int | str = MEAN
    attribution_steps: int = 16
    num_pairs: int = NUM_PAIRS
    crop_scale: float = INFERENCE_BBOX_SCALE
    known_period: float | None = None
    png_backend: str = "auto"


# ----------------------------------------------------------------------------------------------
# Input
# ----------------------------------------------------------------------------------------------
def _results_path(path: Path) -> Path | None:
    if path.is_dir() and (path / RESULTS_FILE_NAME).is_file():
        return path / RESULTS_FILE_NAME
    if path.is_file() and path.name.endswith(".npz"):
        return path
    return None


# ----------------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------------
@dataclass
class Report:
    """What a report run produced: the numbers (``analysis``), the files, and the PNG backend used."""

    analysis: dict[str, Any]
    files: dict[str, dict[str, str]] = field(default_factory=dict)
    png_backend: str | None = None


class _Stopwatch:
    """Seconds taken by each step of a report (``analysis.json``'s ``timings_s``), logged as they pass."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._clock, 3)
        self._clock = now
        log.info("%s: %.1f s", name, self.timings[name])


class _Outputs:
    """The report's files: figures queued for one :func:`save_figures` call at the end (``add``), and ``files``,
    every file written by name (the prior renders and meshes as they are made, the figures once saved)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.items: list[FigureFile] = []
        self.files: dict[str, dict[str, str]] = {}

    def add(self, name: str, figure: Any, **kwargs: Any) -> None:
        self.items.append(FigureFile(figure=figure, stem=self.out_dir / name, **kwargs))

    def save(self, *, png_backend: str) -> str:
        """Write the queued figures (HTML and PNG); returns the PNG backend used."""
        backend = save_figures(self.items, png_backend=png_backend)
        for item in self.items:
            self.files[item.stem.name] = {k: str(v) for k, v in item.written.items()}
        return backend


@dataclass
class _Temporal:
    """What the temporal section found.

    Attributes:
        periods: per joint, the period estimates (``attention`` with a temporal transformer, ``rotation`` over
            the window, ``rotation_whole_track``).
        curves: rotation curves by model (``image-only``[, ``temporal``]).
        analysis: the attention view, peak distances and strongest pairs (empty without a temporal transformer).
    """

    periods: dict[str, dict[str, Any]]
    curves: dict[str, JointAngleCurves]
    analysis: dict[str, Any]


def _shown_frame_index(settings: ReportSettings, num_frames: int) -> int:
    shown = num_frames // 2 if settings.frame is None else settings.frame
    if not 0 <= shown < num_frames:
        raise ValueError(f"--frame {settings.frame} is outside the window of {num_frames} frames")
    return shown


def _prior_figures(model: IntModel, outputs: _Outputs, *, model_label: str,
                   compare: tuple[str, IntModel] | None) -> PriorView:
    """Fresh and learned token priors (and ``compare``'s): renders, GLB meshes, 3D meshes, angles, similarity."""
    out_dir = outputs.out_dir
    models = {"fresh tokens": fresh_model(model), f"learned ({model_label})": model}
    if compare is not None:
        models[f"learned ({compare[0]})"] = compare[1]
    priors = prior_view(models)
    renders = {label: render_prior(p) for label, p in priors.upright.items()}
    montage = labelled_montage([[r.front, r.side] for r in renders.values()], row_labels=list(renders),
                               column_labels=["front", "side"])
    outputs.files["prior_renders"] = {"png": str(save_image(out_dir / "prior_renders.png", montage))}
    for name, p in zip(("fresh", "learned", "compare"), priors.upright.values()):
        outputs.files[f"prior_{name}"] = {"glb": str(export_mesh(out_dir / f"prior_{name}.glb", p.vertices,
                                                                 p.faces))}
    outputs.add("prior_meshes", prior_mesh_figure({label: (p.vertices, p.faces) for label, p in priors.upright.items()}))
    outputs.add("prior_angles", prior_angles_figure({label: p.joint_angles_deg for label, p in priors.upright.items()}))
    outputs.add("token_similarity", similarity_figure(priors.similarity[f"learned ({model_label})"],
                                                      title=f"Joint-token cosine similarity ({model_label})"))
    return priors


def _image_attention_figures(run: ModelRun, window: ClipWindow, outputs: _Outputs, *, settings: ReportSettings,
                             layout: att.TokenLayout, depth: int, shown: int) -> dict[str, ImageAttentionView]:
    """Per view (one block and head, the block's head mean, rollout through all blocks): every token's attention
    over the shown crop, and ``settings.token``'s in the full frame. Returns the views by file-name suffix."""
    layer = range(depth)[settings.layer]
    choices = {f"layer{layer}_head{settings.head}": (layer, settings.head, None),
               f"layer{layer}_mean": (layer, att.MEAN, None),
               "rollout": (depth - 1, att.ROLLOUT, "attention rollout through all blocks")}
    views = {}
    for name, (block, head, title) in choices.items():
        view = image_attention_view(run, window, layout=layout, token=settings.token, layer=block, head=head,
                                    shown=shown, title=title)
        views[name] = view
        outputs.add(f"attention_tokens_{name}",
                    token_grid_figure(view.crop, view.maps, joints_px=view.joints_px, names=layout.names,
                                      title=f"Image attention per token, {view.title} (frame {view.frame_number})"))
        outputs.add(f"attention_frame_{name}",
                    frame_attention_figure(view.frame, view.token_heat, transform=view.transform,
                                           point=view.token_point,
                                           title=f"{settings.token}: {view.title}, in frame {view.frame_number}"))
    return views


def _attribution_figures(model: IntModel, run: ModelRun, shown: ImageAttentionView, outputs: _Outputs, *,
                         settings: ReportSettings, layout: att.TokenLayout) -> list[dict[str, Any]]:
    """Integrated gradients of ``settings.token``'s angle (a joint's only), beta 0 and the camera scale, each
    beside its token's rollout attention; returns the numbers of each."""
    token_index = layout.index(settings.token)
    targets = [AttributionTarget("joint_angle", index=token_index)] if token_index < layout.num_joints else []
    targets += [AttributionTarget("shape", index=0), AttributionTarget("camera", index=0)]
    numbers = []
    for target in targets:
        found = attribution_view(model, shown.crop, run.spatial_attention, target=target, layout=layout,
                                 steps=settings.attribution_steps)
        result = found.result
        name = {"joint_angle": f"angle_{settings.token}", "shape": "shape_beta0", "camera": "camera_scale"}[target.kind]
        joint = shown.joints_px[target.token] if target.token < layout.num_joints else None
        outputs.add(f"attribution_{name}",
                    attribution_figure(shown.crop, attention_map=found.rollout_px, attribution=result, joint_px=joint,
                                       title=f"{target.label} = {result.value:.3g} (frame {shown.frame_number}); "
                                             f"attention: rollout of token '{TOKEN_NAMES[target.token]}'"))
        numbers.append(dict(target=target.label, token=TOKEN_NAMES[target.token], value=result.value,
                            baseline_value=result.baseline_value, delta=result.delta, method=result.method,
                            n_steps=settings.attribution_steps, attention_agreement=found.agreement))
    return numbers


def _temporal_attention_figures(view: TemporalView, window: ClipWindow, outputs: _Outputs, *,
                                settings: ReportSettings, layout: att.TokenLayout) -> dict[str, Any]:
    """The temporal transformer's attention: all joints, ``settings.token``'s joint, the strongest pairs, lag
    profiles. Returns the numbers for ``analysis.json``."""
    joint_names = list(SMPL_JOINT_NAMES)
    token_index = layout.index(settings.token)
    matrices, pairs = view.matrices, view.pairs
    thumbs = thumbnails(window.crops)
    hover = {int(n): thumbs[i] for i, n in enumerate(window.frame_numbers)}
    outputs.add("temporal_joints", temporal_grid_figure(matrices, pairs=pairs, frame_numbers=window.frame_numbers,
                                                        title=f"Temporal attention per joint ({view.title})"),
                hover_frames=hover)
    joint = token_index if token_index < layout.num_joints else 0
    outputs.add(f"temporal_{joint_names[joint]}",
                temporal_matrix_figure(matrices[joint], pairs=pairs[joint], frame_numbers=window.frame_numbers,
                                       title=f"Temporal attention of {joint_names[joint]} ({view.title})"),
                hover_frames=hover)
    pair_joints = [j for j in PAIR_JOINTS if j in joint_names]
    outputs.add("temporal_pairs", frame_pairs_figure(thumbs, {j: pairs[joint_names.index(j)] for j in pair_joints},
                                                     frame_numbers=window.frame_numbers))
    outputs.add("lag_profiles", lag_profile_figure(view.lag_profiles, periods=[e.period for e in view.from_attention]))
    return {
        "view": {"layer": settings.temporal_layer, "head": settings.temporal_head},
        "attention_peak_distance": {name: attention_peak_distance(matrices[j]) for j, name in enumerate(joint_names)},
        "strongest_pairs": {name: [p.to_dict() for p in pairs[j]] for j, name in enumerate(joint_names)},
    }


def _temporal_figures(run: ModelRun, window: ClipWindow, outputs: _Outputs, *, settings: ReportSettings,
                      layout: att.TokenLayout) -> _Temporal:
    """Temporal attention (with a temporal transformer), periods per joint, rotation curves and jitter."""
    joint_names = list(SMPL_JOINT_NAMES)
    view = temporal_view(run, window, layer=settings.temporal_layer, head=settings.temporal_head,
                         num_pairs=settings.num_pairs)
    analysis = {} if view.matrices is None else _temporal_attention_figures(view, window, outputs, settings=settings,
                                                                             layout=layout)
    from_track = periods_from_rotation(window.track_pose)
    periods: dict[str, dict[str, Any]] = {name: {} for name in joint_names}
    for j, name in enumerate(joint_names):
        if view.from_attention is not None:
            periods[name]["attention"] = view.from_attention[j].to_dict()
        periods[name]["rotation"] = view.from_rotation[j].to_dict()
        periods[name]["rotation_whole_track"] = from_track[j].to_dict()
    if view.from_attention is not None:
        outputs.add("periods", periodicity_figure(view.from_attention, view.from_rotation,
                                                  known_period=settings.known_period,
                                                  title=f"Dominant period per joint, frames "
                                                        f"{window.frame_numbers[0]}-{window.frame_numbers[-1]}"))
    curve_joints = [joint_names.index(j) for j in CURVE_JOINTS]
    outputs.add("rotation_curves", rotation_curves_figure(view.curves, joints=curve_joints,
                                                          frame_numbers=window.frame_numbers))
    outputs.add("jitter", jitter_figure(view.curves))
    return _Temporal(periods=periods, curves=view.curves, analysis=analysis)


def _analysis(model: IntModel, window: ClipWindow, *, settings: ReportSettings, model_label: str, untrained: bool,
              extra: dict[str, Any] | None, shown: ImageAttentionView, priors: PriorView, temporal: _Temporal,
              attributions: list[dict[str, Any]], png_backend: str, files: dict[str, dict[str, str]],
              timings: dict[str, float]) -> dict[str, Any]:
    """The contents of ``analysis.json``: the settings, the numbers of every section and the files."""
    joint_names = list(SMPL_JOINT_NAMES)
    return {
        **(extra or {}),
        "model": model_label,
        "variant": model.config.variant,
        "untrained": untrained,
        "body_model": model.body_model.description,
        "track": window.track_id,
        "frames": [int(window.frame_numbers[0]), int(window.frame_numbers[-1])],
        "num_frames": len(window.crops),
        "track_frames": int(len(window.track_pose)),
        "fps": window.fps,
        "shown_frame": shown.frame_number,
        "token": settings.token,
        "known_period_frames": settings.known_period,
        "settings": asdict(settings),
        "periods": temporal.periods,
        **temporal.analysis,
        "prior_angles_deg": {label: prior_angles(p) for label, p in priors.meshes.items()},
        "prior_betas": {label: p.betas.tolist() for label, p in priors.meshes.items()},
        "token_similarity": priors.similarity[f"learned ({model_label})"].round(4).tolist(),
        "jitter_deg_per_frame2": {label: dict(zip(joint_names, c.mean_abs_acceleration.round(4).tolist()))
                                  for label, c in temporal.curves.items()},
        "attributions": attributions,
        "png_backend": png_backend,
        "files": files,
        "timings_s": timings,
    }


def write_report(model: IntModel, window: ClipWindow, out_dir: Path, *, settings: ReportSettings,
                 model_label: str, untrained: bool, compare: tuple[str, IntModel] | None = None,
                 extra: dict[str, Any] | None = None) -> Report:
    """Compute everything for one window and write every figure and ``analysis.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    watch = _Stopwatch()
    layout = att.TokenLayout.from_config(model.config)
    layout.index(settings.token)  # an unknown token fails before any work
    shown_index = _shown_frame_index(settings, len(window.crops))
    outputs = _Outputs(out_dir)

    priors = _prior_figures(model, outputs, model_label=model_label, compare=compare)
    watch.lap("priors")
    run = run_model(model, window.crops, shown_frame=shown_index)
    watch.lap("model")
    views = _image_attention_figures(run, window, outputs, settings=settings, layout=layout,
                                     depth=model.config.depth, shown=shown_index)
    shown = views["rollout"]
    watch.lap("image attention")
    attributions = _attribution_figures(model, run, shown, outputs, settings=settings, layout=layout)
    watch.lap("attributions")
    temporal = _temporal_figures(run, window, outputs, settings=settings, layout=layout)
    watch.lap("temporal")
    backend = outputs.save(png_backend=settings.png_backend)
    watch.lap("writing figures")

    analysis = _analysis(model, window, settings=settings, model_label=model_label, untrained=untrained,
                         extra=extra, shown=shown, priors=priors, temporal=temporal, attributions=attributions,
                         png_backend=backend, files=outputs.files, timings=watch.timings)
    (out_dir / ANALYSIS_FILE).write_text(json.dumps(_jsonable(analysis), indent=2))
    return Report(analysis=analysis, files=outputs.files, png_backend=backend)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def _selection(text: str) -> int | str:
    return text if text == MEAN else int(text)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cli.report", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="results folder / results.npz, or a video, image folder or image")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--checkpoint", help="model checkpoint (INT Studio or public INT)")
    parser.add_argument("--compare", help="a second checkpoint whose prior is shown beside (e.g. phase 1 vs 3)")
    parser.add_argument("--variant", default=None,
                        help="analyse an UNTRAINED model of this variant (default: the checkpoint, else the demo model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--detector", default=None, help="pipeline detector (for a media INPUT)")
    parser.add_argument("--track", type=int)
    parser.add_argument("--start", type=int, default=0, help="first frame of the window within the track")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW, help="frames analysed together")
    parser.add_argument("--frame", type=int, help="frame of the window for image attention (default: middle)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, choices=TOKEN_NAMES)
    parser.add_argument("--layer", type=int, default=-1, help="spatial block of the single-layer views")
    parser.add_argument("--head", type=int, default=0, help="head of the single-head view")
    parser.add_argument("--temporal-layer", type=_selection, default=-1, help="index or 'mean'")
    parser.add_argument("--temporal-head", type=_selection, default=MEAN, help="index or 'mean'")
    parser.add_argument("--ig-steps", type=int, default=16, help="integrated-gradients steps")
    parser.add_argument("--known-period", type=float, help="true period in frames (synthetic clips)")
    parser.add_argument("--png-backend", default="auto", choices=("auto", "kaleido", "matplotlib"))
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    out_dir = Path(args.out)
    source = Path(args.input)
    results_file = _results_path(source)
    checkpoint = args.checkpoint
    if results_file is not None and checkpoint is None:
        recorded = load_results(results_file).checkpoint
        if recorded != UNTRAINED_CHECKPOINT and Path(recorded).is_file():
            checkpoint = recorded
    loaded = load_model(ModelKey.choose(checkpoint=checkpoint, variant=args.variant), device=args.device)
    for warning in loaded.warnings:
        log.warning(warning)
    model, untrained = loaded.model, loaded.untrained
    label = loaded.checkpoint.name if loaded.checkpoint else f"untrained {loaded.key.value}"
    if untrained:
        log.warning("no checkpoint: using an untrained %s model (layout only; the content is noise)", label)
    settings = ReportSettings(
        track=args.track, start=args.start, window=args.window, frame=args.frame, token=args.token,
        layer=args.layer, head=args.head, temporal_layer=args.temporal_layer, temporal_head=args.temporal_head,
        attribution_steps=args.ig_steps, known_period=args.known_period, png_backend=args.png_backend,
    )
    if results_file is None:
        log.info("running the pipeline on %s", source)
        run_settings = RunSettings(inference=InferenceSettings(window=max(2, args.window)),
                                   **({"detector": args.detector} if args.detector else {}))
        outcome = run_pipeline(source, out_dir / "pipeline", model=model,
                               checkpoint=str(loaded.checkpoint or UNTRAINED_CHECKPOINT), settings=run_settings)
        results = outcome.results
        results_file = outcome.results_path
    else:
        results = load_results(results_file)
    window = read_window(results, crop_size=model.config.img_size, track=settings.track, start=settings.start,
                         length=settings.window, crop_scale=settings.crop_scale)
    compare = None
    if args.compare:
        compare = (Path(args.compare).name,
                   load_model(ModelKey.checkpoint(args.compare), device=args.device, body_model=model.body_model).model)
    report = write_report(model, window, out_dir, settings=settings, model_label=label, untrained=untrained,
                          compare=compare, extra={"input": str(source), "results": str(results_file)})
    print(f"wrote {len(report.files)} figures and {ANALYSIS_FILE} to {out_dir} (PNG via {report.png_backend})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
