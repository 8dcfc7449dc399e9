"""The Temporal attention tab: how each joint's token attends across the frames of a window.

For a track and a window of the clip, a joint, a temporal block and head (or their means): the joint's T x T
matrix (and an interactive copy whose hover shows the query and key frames), small multiples for all 24
joints, the strongest frame pairs as arcs over the frames, each joint's period from its attention and from its
rotation, and the rotation curves of the image-only and the temporal model. Computed by ``analysis.views``,
drawn by ``viz.figures``.
"""

from __future__ import annotations

import hashlib
import html
from typing import Any

import gradio as gr

from int_model.constants import SMPL_JOINT_NAMES
from pipeline.inference import DEFAULT_WINDOW
from viz.figures.export import save_figure
from viz.figures.temporal import (
    frame_pairs_figure,
    periodicity_figure,
    rotation_curves_figure,
    temporal_grid_figure,
    temporal_matrix_figure,
)
from analysis.temporal import MEAN
from analysis.views import CURVE_JOINTS, PAIR_JOINTS, temporal_view
from viz.figures.images import thumbnails

from .analysis import MAX_WINDOW, AnalysisCache, clip_results, parse_track, track_update
from .common import HEAVY_WORK, SESSIONS_AT_ONCE, ModelCache, UserError, handler

DEFAULT_JOINT = "left_knee"
NUM_PAIRS = 5


def _selection(value: Any, count: int, what: str) -> int | str:
    text = MEAN if value is None else str(value).strip()
    if text == MEAN:
        return MEAN
    try:
        index = int(text)
    except ValueError as exc:
        raise UserError(f"{what} must be mean or a number 0..{count - 1}, got {value!r}") from exc
    if not -count <= index < count:
        raise UserError(f"{what} {index} does not exist: the temporal transformer has {what}s 0..{count - 1}")
    return range(count)[index]


def _period_text(estimate: Any, fps: float) -> str:
    if estimate.period is None:
        return f"none ({estimate.reason})" if estimate.reason else "none"
    return f"{estimate.period:.1f} frames ({estimate.period / fps:.2f} s, confidence {estimate.confidence:.2f})"


def _hover_frame(path: str) -> str:
    src = html.escape(f"/gradio_api/file={path}", quote=True)
    return (f'<iframe src="{src}" title="temporal attention with frame hover" '
            'style="width:100%;height:760px;border:0"></iframe>')


@handler
def temporal_attention(cache: ModelCache, windows: AnalysisCache, media: Any, run_dir: str | None, model_key: str,
                       track: Any = "longest", start: Any = 0, length: Any = DEFAULT_WINDOW,
                       joint: str = DEFAULT_JOINT, layer: Any = MEAN, head: Any = MEAN,
                       request: gr.Request | None = None, progress: Any = None):
    """The tab's outputs for one track window, joint and view (see the module docstring)."""
    model, _ = cache.get(model_key)
    if model.temporal_transformer is None:
        raise UserError("this model has no temporal transformer (an image model): load a video model (phase 2 or "
                        "3) in the Model tab")
    if joint not in SMPL_JOINT_NAMES:
        raise UserError(f"unknown joint {joint!r}; choose one of the 24 SMPL joints")
    results, run_path = clip_results(cache, media, run_dir, model_key, request, progress)
    track_id = parse_track(results, track)
    rows = results.rows_of_track(track_id)
    if len(rows) < 2:
        raise UserError(f"track {track_id} has a single frame: temporal attention needs a clip")
    try:
        start, length = int(start), int(length)
    except (TypeError, ValueError) as exc:
        raise UserError("the window's start and length must be whole numbers") from exc
    if not 2 <= length <= MAX_WINDOW:
        raise UserError(f"the window must be 2..{MAX_WINDOW} frames long, got {length}")
    if not 0 <= start < len(rows) - 1:
        raise UserError(f"start {start} is outside track {track_id}'s frames 0..{len(rows) - 2} (counted in the track)")
    length = min(length, len(rows) - start)
    if progress is not None:
        progress(0.3, desc=f"running the model over {length} frames with attention captured")
    analysis = windows.get(cache, results, run_path, model_key, track=track_id, start=start, length=length)
    window, run = analysis.window, analysis.run
    depth, heads = run.temporal_attention.shape[:2]
    layer_choice = _selection(layer, depth, "block")
    head_choice = _selection(head, heads, "head")
    found = temporal_view(run, window, layer=layer_choice, head=head_choice, num_pairs=NUM_PAIRS)
    matrices, pairs, view = found.matrices, found.pairs, found.title
    j = SMPL_JOINT_NAMES.index(joint)
    numbers = window.frame_numbers

    matrix_fig = temporal_matrix_figure(matrices[j], pairs=pairs[j], frame_numbers=numbers,
                                        title=f"Temporal attention of {joint} ({view})")
    grid_fig = temporal_grid_figure(matrices, pairs=pairs, frame_numbers=numbers,
                                    title=f"Temporal attention per joint ({view})")
    thumbs = thumbnails(window.crops)
    pair_joints = list(dict.fromkeys([joint, *PAIR_JOINTS]))
    pairs_fig = frame_pairs_figure(thumbs, {name: pairs[SMPL_JOINT_NAMES.index(name)] for name in pair_joints},
                                   frame_numbers=numbers)
    periods_fig = periodicity_figure(found.from_attention, found.from_rotation,
                                     title=f"Dominant period per joint, frames {numbers[0]}-{numbers[-1]}")
    curve_joints = list(dict.fromkeys([j, *(SMPL_JOINT_NAMES.index(n) for n in CURVE_JOINTS)]))
    curves_fig = rotation_curves_figure(found.curves, joints=curve_joints, frame_numbers=numbers)
    for figure in (matrix_fig, grid_fig, pairs_fig, periods_fig, curves_fig):
        figure.update_layout(width=None, autosize=True)

    # The same matrix as a stand-alone page whose hover shows both frames (served from the session folder).
    digest = hashlib.sha1(f"{run_path}|{track_id}|{start}|{length}|{joint}|{view}|{model_key}".encode()).hexdigest()[:12]
    hover = save_figure(temporal_matrix_figure(matrices[j], pairs=pairs[j], frame_numbers=numbers,
                                               title=f"Temporal attention of {joint} ({view})"),
                        run_path / f"temporal-{digest}", formats=("html",),
                        hover_frames={int(n): thumbs[i] for i, n in enumerate(numbers)})["html"]
    jitter = found.jitter(j)
    summary = "\n".join([
        f"**Track {track_id}, frames {numbers[0]}–{numbers[-1]}** ({length} frames at {window.fps:.1f} fps) · "
        f"joint `{joint}` · {view}",
        "",
        "| | |", "|:--|:--|",
        f"| Period from attention | {_period_text(found.from_attention[j], window.fps)} |",
        f"| Period from rotation | {_period_text(found.from_rotation[j], window.fps)} |",
        "| Strongest frame pairs | " + (", ".join(f"{numbers[p.query]}↔{numbers[p.key]} ({p.weight:.2f})"
                                               for p in pairs[j]) or "none") + " |",
        f"| Jitter (mean abs. angle acceleration) | image-only {jitter['image-only']:.2f}, temporal "
        f"{jitter['temporal']:.2f} °/frame² |",
    ])
    return (matrix_fig, _hover_frame(str(hover)), grid_fig, pairs_fig, periods_fig, curves_fig, summary,
            track_update(results, track_id), str(run_path))


def build_temporal_tab(cache: ModelCache, windows: AnalysisCache, model_key: gr.State, media: gr.File,
                       run_state: gr.State) -> None:
    """The tab's layout and wiring; ``media`` and ``run_state`` are the Reconstruct tab's clip and last run."""
    with gr.Tab("Temporal attention"):
        gr.Markdown("How each joint's token attends across the frames of a window of the *Reconstruct* tab's clip "
                    "(its last run is reused). Periodic motion shows as stripes parallel to the diagonal, one "
                    "period apart.")
        with gr.Row():
            track = gr.Dropdown(["longest"], value="longest", label="Track", allow_custom_value=True)
            start = gr.Number(value=0, precision=0, label="Window start (frame within the track)")
            length = gr.Slider(2, MAX_WINDOW, value=DEFAULT_WINDOW, step=1, label="Window length T")
            joint = gr.Dropdown(list(SMPL_JOINT_NAMES), value=DEFAULT_JOINT, label="Joint")
            layer = gr.Dropdown([MEAN, "-1", *map(str, range(8))], value=MEAN, label="Temporal block (-1: last)",
                                allow_custom_value=True)
            head = gr.Dropdown([MEAN, *map(str, range(16))], value=MEAN, label="Head", allow_custom_value=True)
        show = gr.Button("Show temporal attention", variant="primary")
        summary = gr.Markdown()
        with gr.Row():
            matrix = gr.Plot(label="T x T attention of the joint")
            periods = gr.Plot(label="Periods from attention and from rotation")
        with gr.Accordion("The matrix with the frames under the mouse", open=False):
            hover = gr.HTML()
        grid = gr.Plot(label="All joints")
        pairs = gr.Plot(label="Strongest frame pairs")
        curves = gr.Plot(label="Rotation curves: image-only vs temporal")

    def on_show(media, track, start, length, joint, layer, head, run_dir, key, request: gr.Request,
                progress=gr.Progress()):
        return temporal_attention(cache, windows, media, run_dir, key, track, start, length, joint, layer, head,
                                  request, progress)

    show.click(on_show, [media, track, start, length, joint, layer, head, run_state, model_key],
               [matrix, hover, grid, pairs, periods, curves, summary, track, run_state],
               api_name="temporal_attention", concurrency_limit=SESSIONS_AT_ONCE, concurrency_id=HEAVY_WORK)
