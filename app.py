"""INT Studio: the Gradio app (UI only; the computation lives in int_model, viz and training).

    python app.py [--host 127.0.0.1] [--port 7860] [--share] [--smpl-dir DIR] [--checkpoint FILE] [--device cpu]

Tabs (each in its own module of ``studio/``): Reconstruct (an image or clip to meshes, overlay, 3D viewer, angle
curves, downloads), Model (model card, the prior decoded from the learned tokens), Token priors (learned vs
fresh or another checkpoint, renders, similarity), Image attention (per token, layer, head, rollout, captum
attribution), Temporal attention (per joint T x T matrices, frame pairs, periods, rotation curves) and Train
(launch, follow, stop, resume and chain the three training phases as ``torchrun`` subprocesses).
"""

import argparse
import logging

import gradio as gr

from int_model.loading import ModelKey
from studio.common import ModelCache, Settings
from studio.analysis import AnalysisCache
from studio.attention_tab import build_attention_tab
from studio.model_tab import build_model_tab
from studio.priors_tab import build_priors_tab
from studio.reconstruct_tab import build_reconstruct_tab
from studio.temporal_tab import build_temporal_tab
from studio.train_tab import build_train_tab
from training.launch.launcher import TrainLauncher


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    settings = settings or Settings()
    cache = ModelCache(settings)
    cache.sessions.sweep()
    windows = AnalysisCache()
    launcher = TrainLauncher(settings.runs_root, settings.data_root, checkpoint_roots=settings.checkpoint_roots)
    default_key = str(ModelKey.checkpoint(settings.checkpoint) if settings.checkpoint else ModelKey.variant("small"))

    with gr.Blocks(title="INT Studio", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# INT Studio\n3D human pose and shape with independent tokens: 24 joint-rotation tokens, a "
                    "shape token and a camera token, read out by SMPL heads; a temporal transformer follows each "
                    "joint over time.")
        model_key = gr.State(default_key)
        media, run_state = build_reconstruct_tab(cache, model_key)
        on_show, inputs, outputs = build_model_tab(cache, model_key)
        build_priors_tab(cache, model_key)
        build_attention_tab(cache, windows, model_key, media, run_state)
        build_temporal_tab(cache, windows, model_key, media, run_state)
        on_train_load, train_inputs, train_outputs = build_train_tab(cache, model_key, launcher)

        def on_unload(request: gr.Request):
            cache.sessions.forget(request)

        demo.load(on_show, inputs, outputs, api_name=False)
        demo.load(on_train_load, train_inputs, train_outputs, api_name=False)
        demo.unload(on_unload)
    return demo


demo = build_demo()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="INT Studio")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    parser.add_argument("--smpl-dir", default=Settings.smpl_dir, help="folder with SMPL_NEUTRAL.pkl (else procedural body)")
    parser.add_argument("--checkpoint", default=Settings.checkpoint, help="checkpoint to use first (default: the demo model)")
    parser.add_argument("--device", default=Settings.device, help="cpu, cuda, cuda:1, ...")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings(smpl_dir=args.smpl_dir, checkpoint=args.checkpoint, device=args.device)
    app = build_demo(settings)
    app.queue(default_concurrency_limit=2)
    app.launch(server_name=args.host, server_port=args.port, share=args.share,
               allowed_paths=[str(settings.output_root)], max_file_size=settings.max_upload)


if __name__ == "__main__":
    main()
