"""The Reconstruct tab: an image or a clip in; the overlay, a 3D viewer of one frame, joint-angle curves, a
summary and the downloads (results.npz, meshes, BVH) out. Everything is computed by ``pipeline`` and
drawn by ``viz``; this module only wires them to the UI."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from int_model.constants import SMPL_JOINT_NAMES
from pipeline.detection import DEFAULT_DETECTOR, DETECTORS, FALLBACK_DETECTOR, detectors_to_try
from pipeline.inference import DEFAULT_WINDOW, InferenceSettings
from pipeline.media import MediaLimits, open_media
from pipeline.results import RESULTS_FILE_NAME, load_results
from pipeline.run import RunSettings, run_pipeline
from int_model.precision import PRECISION_CHOICES
from viz.bvh import write_results_bvh
from viz.export import export_results_frame
from viz.figures.temporal import rotation_curves_figure
from viz.overlay import MeshSequenceSink, OverlaySettings, OverlayVideoSink
from analysis.temporal import joint_angle_curves

from .common import HEAVY_WORK, SESSIONS_AT_ONCE, ModelCache, Settings, UserError, handler

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
#: Joints drawn in the angle curves (hips, knees, shoulders, elbows).
CURVE_JOINTS = tuple(SMPL_JOINT_NAMES.index(n) for n in ("left_hip", "right_hip", "left_knee", "right_knee",
                                                          "left_shoulder", "left_elbow"))
STAGE_LABELS = {"people": "finding people", "inference": "running INT", "output": "rendering the overlay"}


def examples() -> list[str]:
    """The bundled example clips (rendered by the project's own synthetic generator)."""
    return sorted(str(p) for p in EXAMPLES_DIR.glob("*.mp4"))


def real_examples() -> list[str]:
    """Real photographs (OpenCV's sample data; studio/examples/real/README.md)."""
    return sorted(str(p) for p in (EXAMPLES_DIR / "real").glob("*") if p.suffix in (".jpg", ".png"))


def two_walkers() -> str:
    """The two-person example clip (``python -m scripts.make_examples`` writes it)."""
    path = EXAMPLES_DIR / "two-walkers.mp4"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: python -m scripts.make_examples writes it")
    return str(path)


def _limits(settings: Settings) -> MediaLimits:
    return MediaLimits(max_frames=settings.max_frames, max_duration_s=settings.max_duration_s)


def _summary(results: Any, outcome: Any, model_info: dict, body_description: str,
             people: str = "") -> str:
    checkpoint = Path(model_info["checkpoint"]).name if model_info["checkpoint"] else "none (untrained model)"
    lines = [
        f"### {results.status}: {results.message}",
        "| | |", "|:--|:--|",
        f"| Frames | {results.num_frames} at {results.fps:.2f} fps, {results.image_size[0]} x {results.image_size[1]} |",
        f"| Tracks | {len(results.track_ids)} ({len(results)} person-frames) |",
        f"| Checkpoint | {checkpoint} |",
        f"| Body model | {body_description} |",
        *([f"| People | {people} |"] if people else []),
        f"| Time | {outcome.timings['wall']:.1f} s ("
        + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(outcome.timings.items()) if k not in ("wall", "open"))
        + ") |",
    ]
    lines += [f"\n> {note}" for note in outcome.notes]
    return "\n".join(lines)


def _frame_choices(results: Any) -> tuple[int, list[str]]:
    # A slider needs a range: a single image gets 0..1 (frame 1 is clipped back to 0 by show_frame).
    return max(results.num_frames - 1, 1), [f"track {int(t)}" for t in results.track_ids]


def _track_number(track: str | None) -> int | None:
    if not track or track == "all":
        return None
    try:
        return int(str(track).split()[-1])
    except ValueError as exc:
        raise UserError(f"unknown track {track!r}") from exc


def _curves(results: Any, track: int | None):
    ids = results.track_ids if track is None else [track]
    curves = {}
    for t in ids[:3]:
        rows = results.rows_of_track(int(t))
        if len(rows) >= 3:
            curves[f"track {int(t)}"] = joint_angle_curves(results.pose[rows])
    if not curves:
        return None
    figure = rotation_curves_figure(curves, joints=CURVE_JOINTS, title="Joint rotation over time (and acceleration)")
    figure.update_layout(width=None, autosize=True)  # fill the column
    return figure


@handler
def reconstruct(cache: ModelCache, media: Any, model_key: str, detector: str = DEFAULT_DETECTOR,
                window: float = DEFAULT_WINDOW, precision: str = "fp32", side_view: bool = False,
                meshes: bool = False, boxes: Any = None, request: gr.Request | None = None,
                progress: gr.Progress | None = None, *, refine: bool = False):
    """Run the pipeline on an uploaded image or clip; returns the outputs of the tab."""
    if media is None:
        raise UserError("upload an image or a clip first (or pick one of the examples)")
    source = Path(media if isinstance(media, str) else media.name)
    if detector not in DETECTORS:
        raise UserError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}")
    if precision not in PRECISION_CHOICES:
        raise UserError(f"precision must be one of {', '.join(PRECISION_CHOICES)}")
    window = int(window)
    if window < 2:
        raise UserError("the temporal window must be at least 2 frames")
    model, info = cache.get(model_key)
    box_path = None if boxes is None else str(boxes if isinstance(boxes, str) else boxes.name)
    tried = detectors_to_try(detector) if box_path is None else [detector]

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress((done, max(total, 1)), desc=STAGE_LABELS.get(stage, stage))

    for attempt, used in enumerate(tried):
        run_dir = (cache.sessions.folder(request)
                   / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}")
        reader = open_media(source, limits=_limits(cache.settings))  # MediaError: a clear message, nothing written
        run_settings = RunSettings(detector=used, boxes=box_path, refine=bool(refine),
                                   inference=InferenceSettings(window=window, precision=precision))
        overlay = OverlayVideoSink(run_dir / "overlay", fps=reader.info.fps,
                                   settings=OverlaySettings(side_view=side_view))
        sinks = [overlay] + ([MeshSequenceSink(run_dir / "meshes", suffixes=(".glb",))] if meshes else [])
        outcome = run_pipeline(reader, run_dir, model=model, checkpoint=info["checkpoint"] or "none (untrained)",
                               settings=run_settings, sinks=sinks, progress=report)
        if outcome.results.status != "no_person" or attempt == len(tried) - 1:
            break
    results = outcome.results
    people = "boxes file" if box_path else f"detector {used}"
    if used != detector:
        people += f" ({detector} found nobody; {used} finds rendered figures like the bundled examples)"
    if refine:
        people += ", bodies fitted to BlazePose keypoints"
    downloads = [str(run_dir / RESULTS_FILE_NAME)]
    if results.status == "no_person":
        gr.Warning(results.message)
        return (gr.update(value=None), gr.update(value=None),
                _summary(results, outcome, info, model.body_model.description, people),
                downloads, None,
                gr.update(maximum=1, value=0), gr.update(choices=["all"], value="all"), None, str(run_dir))
    downloads += [str(p) for p in write_results_bvh(results, body_model=model.body_model, out_dir=run_dir / "bvh")]
    if meshes:
        archive = run_dir / "meshes.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted((run_dir / "meshes").glob("*.glb")):
                zf.write(path, arcname=path.name)
        downloads.append(str(archive))
    still = None
    if results.num_frames == 1:  # an image: show the overlay as a picture
        still = next(iter(open_media(overlay.path)))[1]
    last_frame, tracks = _frame_choices(results)
    first = int(results.frame[results.rows_of_track(int(results.track_ids[0]))[0]])
    mesh = str(export_results_frame(run_dir / f"frame_{first:06d}.glb", results, model.body_model, frame=first,
                                    centre=True, natural_depth=True))
    return (gr.update(value=None if still is not None else str(overlay.path), visible=still is None),
            gr.update(value=still, visible=still is not None),
            _summary(results, outcome, info, model.body_model.description, people), downloads, mesh,
            gr.update(maximum=last_frame, value=first), gr.update(choices=["all", *tracks], value="all"),
            _curves(results, None), str(run_dir))


@handler
def show_frame(cache: ModelCache, run_dir: str | None, model_key: str, frame: float, track: str | None):
    """The 3D viewer's mesh and the angle curves for one frame and track of the last run."""
    if not run_dir:
        raise UserError("reconstruct a clip first")
    results = load_results(Path(run_dir) / RESULTS_FILE_NAME)
    if results.status == "no_person":
        raise UserError("this run found nobody: there is nothing to show in 3D")
    model, _ = cache.get(model_key)
    chosen = _track_number(track)
    frame = int(np.clip(int(frame), 0, max(results.num_frames - 1, 0)))
    name = f"frame_{frame:06d}_{'all' if chosen is None else chosen}.glb"
    path = export_results_frame(Path(run_dir) / name, results, model.body_model, frame=frame,
                                track_ids=None if chosen is None else [chosen], centre=True,
                                natural_depth=True)
    return str(path), _curves(results, chosen)


def build_reconstruct_tab(cache: ModelCache, model_key: gr.State) -> tuple[gr.File, gr.State]:
    """The tab's layout and wiring (inside an open ``gr.Blocks``); returns the clip input and the state holding
    the last run's folder, which the attention tabs analyse."""
    with gr.Tab("Reconstruct"):
        run_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                media = gr.File(label="Image or clip", file_types=["image", "video", ".gif"])
                with gr.Accordion("Settings", open=False):
                    detector = gr.Dropdown(list(DETECTORS), value=DEFAULT_DETECTOR, label="Person detector")
                    window = gr.Slider(2, 128, value=DEFAULT_WINDOW, step=1, label="Temporal window (frames)")
                    precision = gr.Dropdown(list(PRECISION_CHOICES), value="fp32", label="Precision")
                    side_view = gr.Checkbox(value=False, label="Side view panel in the overlay")
                    meshes = gr.Checkbox(value=False, label="Per-frame meshes (.glb, zipped)")
                    refine = gr.Checkbox(value=False, label="Fit the bodies to 2D keypoints (BlazePose; slower)",
                                         info="a few optimiser steps from INT's output towards the keypoints "
                                              "BlazePose finds in each box; the analysis tabs never use it")
                    boxes = gr.File(label="Boxes file (CSV/JSON: frame, x, y, w, h[, id]); replaces detection",
                                    file_types=[".csv", ".json"])
                run = gr.Button("Reconstruct", variant="primary")
                if examples() or real_examples():
                    # Rendered clips show procedural mannequins that HOG finds; real photos need the default.
                    gr.Examples([[p, FALLBACK_DETECTOR] for p in examples()]
                                + [[p, DEFAULT_DETECTOR] for p in real_examples()], inputs=[media, detector],
                                label="Examples: clips made by the synthetic generator (HOG), real photos "
                                      "(OpenCV's sample data)")
            with gr.Column(scale=2):
                video = gr.Video(label="Overlay", autoplay=False)
                still = gr.Image(label="Overlay (image)", type="numpy", visible=False)
        summary = gr.Markdown()
        downloads = gr.File(label="Downloads: results.npz, BVH per track, meshes", file_count="multiple")
        with gr.Row():
            with gr.Column(scale=1):
                frame = gr.Slider(0, 1, value=0, step=1, label="Frame")
                track = gr.Dropdown(["all"], value="all", label="Track")
                viewer = gr.Model3D(label="The chosen frame in 3D", clear_color=(0.95, 0.95, 0.95, 1.0), height=420)
            curves = gr.Plot(label="Joint angles over time")

    # The boxes file travels as state, so that the API endpoint needs only the media (an optional file input
    # would be a required API argument).
    boxes_state = gr.State(None)
    boxes.change(lambda f: None if f is None else (f if isinstance(f, str) else f.name), boxes, boxes_state,
                 api_name=False)

    def on_run(media, key: str, detector: str, window: float, precision: str, side_view: bool, meshes: bool,
               boxes, refine: bool, request: gr.Request, progress=gr.Progress()):
        return reconstruct(cache, media, key, detector, window, precision, side_view, meshes, boxes, request,
                           progress, refine=refine)

    def on_frame(run_dir: str | None, key: str, frame: float, track: str | None):
        return show_frame(cache, run_dir, key, frame, track)

    run.click(on_run, [media, model_key, detector, window, precision, side_view, meshes, boxes_state, refine],
              [video, still, summary, downloads, viewer, frame, track, curves, run_state], api_name="reconstruct",
              concurrency_limit=SESSIONS_AT_ONCE, concurrency_id=HEAVY_WORK)
    frame.release(on_frame, [run_state, model_key, frame, track], [viewer, curves], api_name=False)
    track.change(on_frame, [run_state, model_key, frame, track], [viewer, curves], api_name=False)
    return media, run_state
