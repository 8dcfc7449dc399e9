"""The Token priors tab: what the learned tokens encode before any image is seen.

The session's model's learned prior pose and shape (3D viewer and front / side renders) beside freshly
initialised tokens or a second checkpoint, the prior joint angles of all of them, their anatomical
plausibility, and the joint-token similarity matrices. Computed by ``analysis.views``, drawn by ``viz``;
this module only wires them to the UI.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import gradio as gr

from int_model.loading import ModelKey
from viz import export_mesh
from viz.figures.images import labelled_montage
from viz.figures.priors import prior_angles_figure, similarity_figure
from analysis.priors import fresh_model
from analysis.views import prior_view
from viz.priors import render_prior

from .common import CHECKPOINT_SUFFIXES, FRESH_VARIANTS, ModelCache, handler, uploaded_checkpoint

FRESH_CHOICE = "fresh tokens (same variant, untrained)"
RENDER_SIZE = 256


def _label(key: str, info: dict) -> str:
    if info.get("checkpoint"):
        return Path(info["checkpoint"]).name
    return f"untrained {ModelKey.parse(key).value}"


def _compare_key(cache: ModelCache, compare: str | None, upload: Any) -> str | None:
    """The ModelCache key of the model shown beside the session's (None: fresh tokens)."""
    if upload is not None:
        path = uploaded_checkpoint(upload)
    elif compare and compare.strip() and compare != FRESH_CHOICE:
        text = compare.strip()
        if text in FRESH_VARIANTS:
            return str(ModelKey.variant(text))
        path = cache.settings.server_checkpoint(text)
    else:
        return None
    return str(ModelKey.checkpoint(path))


def _plausibility_table(rows: dict[str, dict[str, Any]]) -> str:
    lines = ["| Prior | Joints outside their anatomical range | Largest excess | Total excess |",
             "|:--|:--|--:|--:|"]
    for label, p in rows.items():
        outside = ", ".join(p["joints_outside"]) or "none"
        lines.append(f"| {label} | {outside} | {p['max_excess_deg']:.1f}° | {p['total_excess_deg']:.1f}° |")
    return "\n".join(lines)


@handler
def token_priors(cache: ModelCache, model_key: str, compare: str | None = FRESH_CHOICE, upload: Any = None,
                 keep_orientation: bool = False, request: gr.Request | None = None):
    """Renders, two 3D priors, angle and similarity figures and a plausibility table for the session's model and
    the model it is compared with (fresh tokens by default, or another checkpoint / fresh variant)."""
    model, info = cache.get(model_key)
    other_key = _compare_key(cache, compare, upload)
    if other_key is None:
        other, other_label = fresh_model(model), "fresh tokens"
    else:
        other, other_info = cache.get(other_key)
        other_label = _label(other_key, other_info)
    label = f"learned ({_label(model_key, info)})"
    if other_label == _label(model_key, info):
        other_label = f"{other_label} (2)"
    models = {label: model, other_label: other}
    priors = prior_view(models, keep_orientation=keep_orientation)

    out = cache.sessions.folder(request)
    digest = hashlib.sha1(f"{model_key}|{other_key}|{keep_orientation}".encode()).hexdigest()[:12]
    glbs = [str(export_mesh(out / f"prior-{digest}-{i}.glb", p.vertices, p.faces))
            for i, p in enumerate(priors.meshes.values())]
    # Renders always upright (a fresh prior's root rotation is arbitrary, which hides the body pose).
    renders = [render_prior(p, size=RENDER_SIZE) for p in priors.upright.values()]
    montage = labelled_montage([[r.front, r.side] for r in renders], row_labels=list(priors.upright),
                               column_labels=["front", "side"])
    angles = prior_angles_figure({name: p.joint_angles_deg for name, p in priors.meshes.items()})
    similarity = [similarity_figure(s, title=f"Joint-token cosine similarity: {name}")
                  for name, s in priors.similarity.items()]
    for figure in (angles, *similarity):
        figure.update_layout(width=None, autosize=True)
    table = _plausibility_table(priors.plausibility)
    note = ("\n\nThe learned prior is what the model predicts before it sees an image; a trained model's should be "
            "a plausible human pose (joint angles inside the ranges used by the synthetic generator), a fresh "
            "model's need not be.")
    return montage, glbs[0], glbs[1], angles, similarity[0], similarity[1], table + note


def build_priors_tab(cache: ModelCache, model_key: gr.State) -> None:
    """The tab's layout and wiring (inside an open ``gr.Blocks``); ``model_key`` is the session's model."""
    with gr.Tab("Token priors"):
        gr.Markdown("The pose and shape decoded from the **learned tokens alone** (no image), beside freshly "
                    "initialised tokens or a second checkpoint. Choose the first model in the *Model* tab.")
        with gr.Row():
            compare = gr.Dropdown([FRESH_CHOICE, *FRESH_VARIANTS], value=FRESH_CHOICE, allow_custom_value=True,
                                  label="Compare with (fresh tokens, an untrained variant, or a checkpoint path)")
            upload = gr.File(label="…or upload a checkpoint to compare with", file_types=list(CHECKPOINT_SUFFIXES))
            keep = gr.Checkbox(value=False, label="3D viewers: keep the learned global orientation")
            show = gr.Button("Show priors", variant="primary")
        renders = gr.Image(label="Prior renders (upright): front and side", type="numpy", interactive=False)
        with gr.Row():
            first = gr.Model3D(label="Learned prior of the session's model", clear_color=(0.95, 0.95, 0.95, 1.0),
                               height=380)
            second = gr.Model3D(label="Compared prior", clear_color=(0.95, 0.95, 0.95, 1.0), height=380)
        plausibility = gr.Markdown()
        angles = gr.Plot(label="Prior joint rotation angles")
        with gr.Row():
            similarity_a = gr.Plot(label="Token similarity (session's model)")
            similarity_b = gr.Plot(label="Token similarity (compared)")

    # The uploaded file travels as state, so that the API endpoint needs no file argument.
    upload_state = gr.State(None)
    upload.change(lambda f: None if f is None else (f if isinstance(f, str) else f.name), upload, upload_state,
                  api_name=False)

    def on_show(compare: str, keep: bool, upload, key: str, request: gr.Request):
        return token_priors(cache, key, compare, upload, keep, request)

    show.click(on_show, [compare, keep, upload_state, model_key],
               [renders, first, second, angles, similarity_a, similarity_b, plausibility], api_name="token_priors")
