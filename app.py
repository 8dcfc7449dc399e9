"""INT Studio: the Gradio app (UI only; the computation lives in int_model and viz).

    python app.py [--host 127.0.0.1] [--port 7860] [--share] [--smpl-dir DIR] [--checkpoint FILE] [--device cpu]

Tabs so far: Model (model card, and the prior pose and shape decoded from the learned tokens as a 3D mesh).
"""

import argparse
import functools
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go

from int_model import CheckpointError, IntModel, build_model, demo_checkpoint, load_body_model, load_checkpoint
from viz import RendererUnavailable, export_mesh
from viz.priors import prior_mesh

log = logging.getLogger("int_studio.app")

FRESH_VARIANTS = ("small", "paper", "tiny")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".tar", ".ckpt")
MAX_CACHED_MODELS = 3


@dataclass(frozen=True)
class Settings:
    """What the command line (or the environment) chose for this app process."""

    smpl_dir: str | None = os.environ.get("INT_SMPL_DIR") or None
    checkpoint: str | None = os.environ.get("INT_CHECKPOINT") or (str(demo_checkpoint()) if demo_checkpoint() else None)
    device: str = os.environ.get("INT_DEVICE", "cpu")
    output_root: Path = Path(os.environ.get("INT_STUDIO_OUTPUTS", Path(tempfile.gettempdir()) / "int-studio"))


# ----------------------------------------------------------------------------------------------- plumbing
class UserError(Exception):
    """A problem with what the user asked for; its message is shown as it is."""


USER_ERRORS = (UserError, CheckpointError, FileNotFoundError, ValueError, RendererUnavailable)


def handler(fn):
    """Turn every failure into a one-line message in the UI (never a traceback); log the details."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except USER_ERRORS as exc:
            raise gr.Error(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from exc
        except Exception as exc:  # noqa: BLE001 - the UI must stay up whatever happened
            log.error("unexpected error in %s:\n%s", fn.__name__, traceback.format_exc())
            raise gr.Error(f"Something went wrong ({type(exc).__name__}: {exc}). The app is still running; "
                           "the server log has the details.") from exc

    return wrapped


class ModelCache:
    """The few most recently used models, shared by all sessions (models are read-only once loaded)."""

    def __init__(self, settings: Settings, capacity: int = MAX_CACHED_MODELS) -> None:
        self.settings = settings
        self.capacity = capacity
        self._models: OrderedDict[str, tuple[IntModel, dict]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[IntModel, dict]:
        """``key`` is ``checkpoint:<path>`` or ``fresh:<variant>``; returns (model, info)."""
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            kind, _, value = key.partition(":")
            body_model = load_body_model(self.settings.smpl_dir)
            if kind == "checkpoint":
                ckpt = load_checkpoint(value, device=self.settings.device, body_model=body_model)
                info = {"checkpoint": str(ckpt.path), "source": ckpt.source, "meta": ckpt.meta, "warnings": ckpt.warnings}
                model = ckpt.model
            else:
                model = build_model(value, body_model=body_model).to(self.settings.device).eval()
                info = {"checkpoint": None, "source": "fresh", "meta": {}, "warnings": []}
            self._models[key] = (model, info)
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
            return model, info


def session_dir(settings: Settings, request: gr.Request | None) -> Path:
    name = getattr(request, "session_hash", None) or "shared"
    path = settings.output_root / "sessions" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------------------------- views
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


# ----------------------------------------------------------------------------------------------- handlers
@handler
def show_model(cache: ModelCache, key: str, keep_orientation: bool, request: gr.Request | None = None):
    """Model card, prior mesh (glb) and prior joint angles of the model ``key``."""
    model, info = cache.get(key)
    prior = prior_mesh(model, keep_orientation=keep_orientation)
    name = f"prior-{hashlib.sha1(f'{key}|{keep_orientation}'.encode()).hexdigest()[:12]}.glb"
    glb = export_mesh(session_dir(cache.settings, request) / name, prior.vertices, prior.faces)
    return model_card(model, info), str(glb), joint_angle_figure(prior.joint_names, prior.joint_angles_deg), key


@handler
def choose_model(cache: ModelCache, upload, path_text: str | None, variant: str, keep_orientation: bool,
                 request: gr.Request | None = None):
    """An uploaded checkpoint, else a server path, else a fresh model of ``variant``."""
    if upload is not None:
        path = Path(upload if isinstance(upload, str) else upload.name)
    elif path_text and path_text.strip():
        path = Path(path_text.strip()).expanduser()
    else:
        if variant not in FRESH_VARIANTS:
            raise UserError(f"unknown variant {variant!r}; choose one of {', '.join(FRESH_VARIANTS)}")
        return show_model(cache, f"fresh:{variant}", keep_orientation, request)
    if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise UserError(f"{path.name} is not a checkpoint: expected a file ending in {', '.join(CHECKPOINT_SUFFIXES)}")
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}")
    return show_model(cache, f"checkpoint:{path.resolve()}", keep_orientation, request)


def forget_session(settings: Settings, request: gr.Request) -> None:
    """Delete a closed session's output folder."""
    shutil.rmtree(session_dir(settings, request), ignore_errors=True)


# ----------------------------------------------------------------------------------------------- layout
def build_demo(settings: Settings | None = None) -> gr.Blocks:
    settings = settings or Settings()
    cache = ModelCache(settings)
    default_key = f"checkpoint:{settings.checkpoint}" if settings.checkpoint else "fresh:small"

    with gr.Blocks(title="INT Studio", delete_cache=(3600, 24 * 3600)) as demo:
        gr.Markdown("# INT Studio\n3D human pose and shape with independent tokens: 24 joint-rotation tokens, a "
                    "shape token and a camera token, read out by SMPL heads; a temporal transformer follows each "
                    "joint over time.")
        model_key = gr.State(default_key)
        with gr.Tab("Model"):
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

        def on_unload(request: gr.Request):
            forget_session(settings, request)

        load.click(on_load_click, [upload, path_text, variant, keep], outputs, api_name="load_model")
        keep.change(on_show, [model_key, keep], outputs, api_name="model_card")
        demo.load(on_show, [model_key, keep], outputs, api_name=False)
        demo.unload(on_unload)
    return demo


demo = build_demo()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="INT Studio")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    parser.add_argument("--smpl-dir", default=Settings.smpl_dir, help="folder with SMPL_NEUTRAL.pkl (else procedural body)")
    parser.add_argument("--checkpoint", default=Settings.checkpoint, help="checkpoint to show first")
    parser.add_argument("--device", default=Settings.device, help="cpu, cuda, cuda:1, ...")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings(smpl_dir=args.smpl_dir, checkpoint=args.checkpoint, device=args.device)
    app = build_demo(settings)
    app.queue(default_concurrency_limit=2)
    app.launch(server_name=args.host, server_port=args.port, share=args.share,
               allowed_paths=[str(settings.output_root)])


if __name__ == "__main__":
    main()
