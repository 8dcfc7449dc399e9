"""The Model tab: the model card, and the prior pose and shape decoded from the learned tokens as a 3D mesh."""

from __future__ import annotations

import hashlib
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go

from int_model import IntModel
from int_model.loading import ModelKey
from viz import export_mesh
from analysis.priors import prior_mesh

from .common import CHECKPOINT_SUFFIXES, FRESH_VARIANTS, ModelCache, UserError, handler, uploaded_checkpoint


def model_card(model: IntModel, info: dict) -> str:
    cfg = model.config
    counts = model.parameter_counts()
    mil = lambda n: f"{n / 1e6:.2f} M"  # noqa: E731
    if info["checkpoint"]:
        meta = info["meta"]
        origin = f"`{Path(info['checkpoint']).name}` ({'public INT code' if info['source'] == 'public-int' else 'INT Studio'})"
        trained = ", ".join(f"{k}: {meta[k]}" for k in ("phase", "step", "epoch") if k in meta) or "no training metadata"
        metrics = meta.get("metrics") or {}
        metric_text = ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
    else:
        origin = "none: **freshly initialised, untrained weights** (predictions are meaningless until trained)"
        trained, metric_text = "untrained", ""
    plural = lambda n, word: f"{n} {word}{'' if n == 1 else 's'}"  # noqa: E731
    temporal = (f"{plural(cfg.temporal_depth, 'block')} x {plural(cfg.temporal_heads, 'head')}, "
                f"embedding length {cfg.temporal_len}"
                if cfg.has_temporal else "none (image model)")
    lines = [
        f"### Model: `{cfg.variant}` variant",
        "| Property | Value |", "|:--|:--|",
        f"| Checkpoint | {origin} |",
        f"| Training | {trained} |",
        *([f"| Metrics | {metric_text} |"] if metric_text else []),
        f"| Parameters | {mil(counts['total'])} (backbone {mil(counts['backbone'])}, spatial transformer "
        f"{mil(counts['spatial_transformer'])}, temporal transformer {mil(counts['temporal_transformer'])}) |",
        f"| Input | {cfg.img_size} x {cfg.img_size} crops, {cfg.num_patches} patches of stride {cfg.patch_stride} |",
        f"| Spatial transformer | {plural(cfg.depth, 'block')} x {plural(cfg.num_heads, 'head')}, width {cfg.embed_dim} |",
        f"| Temporal transformer | {temporal} |",
        f"| Body model | {model.body_model.description} |",
        f"| Device | {next(model.parameters()).device} |",
    ]
    lines += [f"\n> ⚠ {w}" for w in info["warnings"]]
    return "\n".join(lines)


def joint_angle_figure(names, angles_deg) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(names), y=list(angles_deg), marker_color="#4287f5",
                           hovertemplate="%{x}: %{y:.1f}°<extra></extra>"))
    fig.update_layout(title="Prior rotation angle per joint", yaxis_title="degrees", height=360,
                      margin=dict(l=40, r=10, t=40, b=100), xaxis_tickangle=-60)
    return fig


@handler
def show_model(cache: ModelCache, key: str, keep_orientation: bool, request: gr.Request | None = None):
    """Model card, prior mesh (glb) and prior joint angles of the model ``key``."""
    model, info = cache.get(key)
    prior = prior_mesh(model, keep_orientation=keep_orientation)
    name = f"prior-{hashlib.sha1(f'{key}|{keep_orientation}'.encode()).hexdigest()[:12]}.glb"
    glb = export_mesh(cache.sessions.folder(request) / name, prior.vertices, prior.faces)
    return model_card(model, info), str(glb), joint_angle_figure(prior.joint_names, prior.joint_angles_deg), key


@handler
def choose_model(cache: ModelCache, upload, path_text: str | None, variant: str, keep_orientation: bool,
                 request: gr.Request | None = None):
    """An uploaded checkpoint, else a server path (inside the checkpoint folders), else a fresh model of
    ``variant``."""
    if upload is not None:
        path = uploaded_checkpoint(upload)
    elif path_text and path_text.strip():
        path = cache.settings.server_checkpoint(path_text)
    else:
        if variant not in FRESH_VARIANTS:
            raise UserError(f"unknown variant {variant!r}; choose one of {', '.join(FRESH_VARIANTS)}")
        return show_model(cache, str(ModelKey.variant(variant)), keep_orientation, request)
    return show_model(cache, str(ModelKey.checkpoint(path)), keep_orientation, request)


def build_model_tab(cache: ModelCache, model_key: gr.State):
    """The tab's layout and wiring (inside an open ``gr.Blocks``); ``model_key`` is the session's model.
    Returns (handler, inputs, outputs) of the card, which the app also runs when a page loads."""
    with gr.Tab("Model") as tab:
        with gr.Row():
            upload = gr.File(label="Checkpoint file (INT Studio or public INT)", file_types=list(CHECKPOINT_SUFFIXES))
            with gr.Column():
                path_text = gr.Textbox(label="…or a checkpoint path on the server", placeholder="runs/phase3/last.pt")
                variant = gr.Dropdown(FRESH_VARIANTS, value="small", label="…or a fresh (untrained) model of variant")
                load = gr.Button("Load model", variant="primary")
        card = gr.Markdown()
        keep = gr.Checkbox(value=False, label="Show the prior's learned global orientation "
                           "(off: the body upright and facing the camera, so the prior body pose is visible)")
        with gr.Row():
            mesh = gr.Model3D(label="Prior pose and shape decoded from the tokens", clear_color=(0.95, 0.95, 0.95, 1.0),
                              height=420)
            angles = gr.Plot(label="Prior joint rotations")
    outputs = [card, mesh, angles, model_key]

    # Wiring: Gradio injects the request by annotation, so each event gets a small typed adapter.
    def on_load_click(upload, path_text: str, variant: str, keep: bool, request: gr.Request):
        return choose_model(cache, upload, path_text, variant, keep, request)

    def on_show(key: str, keep: bool, request: gr.Request):
        return show_model(cache, key, keep, request)

    load.click(on_load_click, [upload, path_text, variant, keep], outputs, api_name="load_model")
    keep.change(on_show, [model_key, keep], outputs, api_name="model_card")
    # Gradio 6's Model3D never draws a value that reached it before its tab was first shown (the page load fills
    # this tab while Reconstruct is open): the mesh is cleared and sent again each time the tab is opened.
    tab.select(lambda: None, None, mesh, queue=False, show_progress="hidden", api_name=False).then(
        on_show, [model_key, keep], outputs, show_progress="hidden", api_name=False)
    return on_show, [model_key, keep], outputs
