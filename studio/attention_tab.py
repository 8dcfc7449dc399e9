"""The Image attention tab: where one independent token looks in a crop.

For a frame and track of the clip, a token (by joint name, or shape / camera), a spatial block and a head (or
the head mean, or attention rollout): the token's heat map over the crop and over the full frame, the grid of
all 26 tokens' maps, and captum's integrated-gradients attribution of the token's output beside its rollout
attention. Computed by ``analysis.views``, drawn by ``viz.figures``.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

from int_model.constants import TOKEN_NAMES
from analysis import attention as att
from analysis.views import ATTRIBUTION_STEPS, attribution_view, image_attention_view, token_target
from viz.heatmap import marked_heatmap
from viz.figures.attention import attribution_figure, frame_attention_figure, token_grid_figure

from .analysis import AnalysisCache, clip_results, parse_track, track_update
from .common import HEAVY_WORK, SESSIONS_AT_ONCE, ModelCache, UserError, handler

HEAD_CHOICES = (att.MEAN, att.ROLLOUT)
DEFAULT_TOKEN = "left_knee"
#: The crop heat map is shown at this side (crops are 128 px for the small model: too small to read).
CROP_DISPLAY_PX = 384


def _layer(value: Any, depth: int) -> int:
    try:
        layer = int(value)
    except (TypeError, ValueError) as exc:
        raise UserError(f"layer must be a block number 0..{depth - 1} (or -1 for the last), got {value!r}") from exc
    if not -depth <= layer < depth:
        raise UserError(f"layer {layer} does not exist: this model has blocks 0..{depth - 1} (-1 is the last)")
    return range(depth)[layer]


def _head(value: Any, heads: int) -> int | str:
    text = str(value).strip() if value is not None else att.MEAN
    if text in HEAD_CHOICES:
        return text
    try:
        head = int(text)
    except ValueError as exc:
        raise UserError(f"head must be mean, rollout or 0..{heads - 1}, got {value!r}") from exc
    if not 0 <= head < heads:
        raise UserError(f"head {head} does not exist: this model has heads 0..{heads - 1}")
    return head


def frame_row(results: Any, track: int, frame: Any) -> int:
    """The position within ``track`` of the frame nearest ``frame`` (-1 / None: the track's middle frame)."""
    frames = results.frame[results.rows_of_track(track)]
    if frame is None or int(frame) < 0:
        return len(frames) // 2
    return int(np.argmin(np.abs(frames.astype(np.int64) - int(frame))))


@handler
def image_attention(cache: ModelCache, windows: AnalysisCache, media: Any, run_dir: str | None, model_key: str,
                    track: Any = "longest", frame: Any = -1, token: str = DEFAULT_TOKEN, layer: Any = -1,
                    head: Any = att.MEAN, attribution: bool = True, request: gr.Request | None = None,
                    progress: Any = None):
    """The tab's outputs for one frame, track, token and view (see the module docstring)."""
    results, run_path = clip_results(cache, media, run_dir, model_key, request, progress)
    track_id = parse_track(results, track)
    model, _ = cache.get(model_key)
    config = model.config
    layout = att.TokenLayout.from_config(config)
    if token not in layout.names:
        raise UserError(f"unknown token {token!r}; choose a joint name, shape or camera")
    token_index = layout.index(token)
    layer_index = _layer(layer, config.depth)
    head_choice = _head(head, config.num_heads)
    row = frame_row(results, track_id, frame)
    if progress is not None:
        progress(0.3, desc="running the image model with attention captured")
    analysis = windows.get(cache, results, run_path, model_key, track=track_id, start=row, length=1)
    window, run = analysis.window, analysis.run
    frame_number = int(window.frame_numbers[0])
    view = image_attention_view(run, window, layout=layout, token=token_index, layer=layer_index, head=head_choice)
    crop_heat = marked_heatmap(view.crop, view.maps[token_index], display_px=CROP_DISPLAY_PX,
                               point=view.joints_px[token_index] if token_index < layout.num_joints else None)
    frame_fig = frame_attention_figure(view.frame, view.token_heat, transform=view.transform, point=view.token_point,
                                       title=f"{token}: {view.title}, frame {frame_number}")
    grid_fig = token_grid_figure(view.crop, view.maps, joints_px=view.joints_px, names=layout.names,
                                 title=f"Every token's attention, {view.title} (frame {frame_number})")
    lines = [f"**Track {track_id}, frame {frame_number}** · token `{token}` · {view.title}"]
    attribution_fig = None
    if attribution:
        if progress is not None:
            progress(0.6, desc="captum integrated gradients")
        target = token_target(token_index, layout.num_joints)
        found = attribution_view(model, view.crop, run.spatial_attention, target=target, layout=layout,
                                 steps=ATTRIBUTION_STEPS)
        result = found.result
        attribution_fig = attribution_figure(
            view.crop, attention_map=found.rollout_px, attribution=result,
            joint_px=view.joints_px[target.token] if target.token < layout.num_joints else None,
            title=f"{target.label} = {result.value:.3g}; attention: rollout of token '{TOKEN_NAMES[target.token]}'")
        lines.append(f"Attribution of **{target.label}** ({result.method}, {ATTRIBUTION_STEPS} steps): value "
                     f"{result.value:.3g}, blurred-crop baseline {result.baseline_value:.3g}, completeness error "
                     f"{result.delta:.2g}; agreement with the token's rollout attention "
                     f"(Spearman over patches) {found.agreement:.2f}.")
        if token_index >= layout.num_joints:
            lines.append(f"(The {token} token is attributed through {target.label}.)")
    for figure in (frame_fig, grid_fig, *([attribution_fig] if attribution_fig is not None else [])):
        figure.update_layout(width=None, autosize=True)
    return (crop_heat, frame_fig, grid_fig, attribution_fig, "\n\n".join(lines),
            track_update(results, track_id), str(run_path))


def build_attention_tab(cache: ModelCache, windows: AnalysisCache, model_key: gr.State, media: gr.File,
                        run_state: gr.State) -> None:
    """The tab's layout and wiring; ``media`` and ``run_state`` are the Reconstruct tab's clip and last run."""
    with gr.Tab("Image attention"):
        gr.Markdown("Where each independent token looks, on the clip of the *Reconstruct* tab (its last run is "
                    "reused). Pick a frame, a track, a token, a block and a head, the mean of the heads, or "
                    "attention rollout through the blocks.")
        with gr.Row():
            track = gr.Dropdown(["longest"], value="longest", label="Track", allow_custom_value=True)
            frame = gr.Number(value=-1, precision=0, label="Frame (-1: the track's middle frame)")
            token = gr.Dropdown(list(TOKEN_NAMES), value=DEFAULT_TOKEN, label="Token")
            layer = gr.Number(value=-1, precision=0, label="Block (-1: the last)")
            head = gr.Dropdown([*HEAD_CHOICES, *map(str, range(16))], value=att.MEAN, label="Head",
                               allow_custom_value=True)
            attribution = gr.Checkbox(value=True, label="captum attribution (a few seconds)")
        show = gr.Button("Show attention", variant="primary")
        summary = gr.Markdown()
        with gr.Row():
            crop = gr.Image(label="The token's attention over the crop (dot: its projected joint)", type="numpy",
                            interactive=False, height=320)
            full = gr.Plot(label="…and in the full frame")
        grid = gr.Plot(label="All tokens")
        attribution_plot = gr.Plot(label="captum attribution beside the rollout attention")

    def on_show(media, track, frame, token, layer, head, attribution, run_dir, key, request: gr.Request,
                progress=gr.Progress()):
        return image_attention(cache, windows, media, run_dir, key, track, frame, token, layer, head, attribution,
                               request, progress)

    show.click(on_show, [media, track, frame, token, layer, head, attribution, run_state, model_key],
               [crop, full, grid, attribution_plot, summary, track, run_state], api_name="image_attention",
               concurrency_limit=SESSIONS_AT_ONCE, concurrency_id=HEAVY_WORK)
