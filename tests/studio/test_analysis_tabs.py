"""The Token priors, Image attention and Temporal attention tabs: handlers on the bundled example clip (an
untrained tiny model: the layout is what is tested, not what it learned), bad input, and their API endpoints."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from studio.analysis import AnalysisCache
from studio.attention_tab import image_attention
from studio.common import ModelCache, Settings
from studio.priors_tab import token_priors
from studio.reconstruct_tab import two_walkers
from studio.temporal_tab import temporal_attention
from tests.support import free_port

pytestmark = pytest.mark.slow
MODEL = "fresh:tiny"


@pytest.fixture(scope="module")
def cache(tmp_path_factory, renderer):
    return ModelCache(Settings(output_root=tmp_path_factory.mktemp("outputs"), checkpoint=None))


@pytest.fixture(scope="module")
def windows():
    return AnalysisCache()


@pytest.fixture(scope="module")
def example() -> str:
    return two_walkers()


@pytest.fixture(scope="module")
def attention(cache, windows, example):
    return image_attention(cache, windows, example, None, MODEL, "longest", 20, "left_knee", -1, "mean", True)


def test_token_priors_show_both_priors_their_angles_and_similarities(cache, tmp_path):
    renders, first, second, angles, sim_a, sim_b, table = token_priors(cache, MODEL)
    assert renders.ndim == 3 and renders.shape[0] > 400 and renders.std() > 10  # two rows of renders, not blank
    assert Path(first).stat().st_size > 10_000 and Path(second).stat().st_size > 10_000 and first != second
    assert {t.name for t in angles.data} == {"learned (untrained tiny)", "fresh tokens"}
    assert np.asarray(sim_a.data[0].z).shape == (24, 24) and np.allclose(np.diag(sim_a.data[0].z), 1.0)
    assert "| learned (untrained tiny) |" in table and "| fresh tokens |" in table
    # Another variant beside it; a bad checkpoint is a message.
    _, _, _, angles, *_ = token_priors(cache, MODEL, "small")
    assert {t.name for t in angles.data} == {"learned (untrained tiny)", "untrained small"}
    bad = tmp_path / "weights.txt"
    bad.write_text("x")
    with pytest.raises(gr.Error, match="not a checkpoint"):
        token_priors(cache, MODEL, str(bad))
    with pytest.raises(gr.Error, match="must lie in one of the checkpoint folders|no checkpoint"):
        token_priors(cache, MODEL, str(tmp_path / "missing.pt"))


def test_image_attention_maps_grid_and_attribution(attention):
    crop, frame_fig, grid_fig, attribution_fig, summary, track, run_dir = attention
    assert crop.dtype == np.uint8 and crop.std() > 5
    assert "Track" in summary and "frame 20" in summary and "Attribution of **left_knee rotation angle" in summary
    assert len(grid_fig.layout.annotations) >= 26  # one title per token
    assert attribution_fig is not None and len(attribution_fig.data) >= 3
    assert track["value"].startswith("track ") and Path(run_dir, "results.npz").is_file()


def test_image_attention_reuses_the_run_and_checks_its_choices(cache, windows, example, attention):
    run_dir = attention[-1]
    for token, head in (("shape", "rollout"), ("camera", "0")):
        out = image_attention(cache, windows, example, run_dir, MODEL, "track 1", -1, token, 0, head, False)
        assert out[-1] == run_dir and out[3] is None  # same run; no attribution asked for
    for kwargs, message in ((dict(token="elbow"), "unknown token"), (dict(layer=99), "layer 99 does not exist"),
                            (dict(head="7"), "head 7 does not exist"), (dict(track="track 9"), "no track 9")):
        args = dict(track="longest", frame=-1, token="left_knee", layer=-1, head="mean", attribution=False) | kwargs
        with pytest.raises(gr.Error, match=message):
            image_attention(cache, windows, example, run_dir, MODEL, *args.values())
    with pytest.raises(gr.Error, match="reconstruct a clip"):
        image_attention(cache, windows, None, None, MODEL)


def test_temporal_attention_matrices_pairs_periods_and_curves(cache, windows, example, attention):
    run_dir = attention[-1]
    out = temporal_attention(cache, windows, example, run_dir, MODEL, "longest", 0, 32, "right_knee", "mean", "mean")
    matrix, hover, grid, pairs, periods, curves, summary, track, same_run = out
    z = np.asarray(matrix.data[0].z)
    assert z.shape == (32, 32) and np.allclose(z.sum(axis=1), 1.0, atol=1e-3)  # rows of attention
    assert sum(t.type == "heatmap" for t in grid.data) == 24
    assert 'iframe src="/gradio_api/file=' in hover
    page = Path(hover.split("file=")[1].split('"')[0])
    assert page.is_file() and "plotly_hover" in page.read_text()
    assert len(pairs.data) > 0 and len(periods.data) >= 2
    assert {t.legendgroup for t in curves.data if t.legendgroup} >= {"image-only", "temporal"}
    assert "Period from attention" in summary and same_run == run_dir
    with pytest.raises(gr.Error, match="window must be 2"):
        temporal_attention(cache, windows, example, run_dir, MODEL, "longest", 0, 1)
    with pytest.raises(gr.Error, match="outside track"):
        temporal_attention(cache, windows, example, run_dir, MODEL, "longest", 500, 16)
    with pytest.raises(gr.Error, match="block 5 does not exist"):
        temporal_attention(cache, windows, example, run_dir, MODEL, "longest", 0, 16, "left_knee", "5")


def test_an_image_model_has_no_temporal_attention(cache, windows, example, body_model, tmp_path):
    from int_model import build_model
    from int_model.checkpoint import save_checkpoint

    path = tmp_path / "image-model.pt"
    save_checkpoint(path, build_model("tiny", temporal_depth=0, body_model=body_model), meta={"phase": 1})
    with pytest.raises(gr.Error, match="no temporal transformer"):
        temporal_attention(cache, windows, example, None, f"checkpoint:{path}")


def test_analysis_endpoints_with_gradio_client(tmp_path, example):
    from gradio_client import Client, handle_file

    import app

    demo = app.build_demo(Settings(output_root=tmp_path / "outputs", checkpoint=None))
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        allowed_paths=[str(tmp_path / "outputs")])
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        priors = client.predict(api_name="/token_priors")
        assert "fresh tokens" in priors[-1]
        image = client.predict(handle_file(example), api_name="/image_attention")
        assert "Attribution of" in image[4]
        temporal = client.predict(handle_file(example), api_name="/temporal_attention")
        assert "Period from attention" in temporal[6] and "iframe" in temporal[1]
    finally:
        demo.close()


def test_the_whole_pose_baseline_shows_one_map_for_every_joint(cache, windows, example, body_model, tmp_path):
    from int_model import build_model
    from int_model.checkpoint import save_checkpoint

    path = tmp_path / "whole-pose.pt"
    save_checkpoint(path, build_model("tiny", temporal_mode="whole_pose", body_model=body_model), meta={"phase": 2})
    out = temporal_attention(cache, windows, example, None, f"checkpoint:{path}", "longest", 0, 16, "left_knee")
    grid = [np.asarray(t.z) for t in out[2].data if t.type == "heatmap"]
    assert len(grid) == 24 and all(np.allclose(g, grid[0]) for g in grid)  # one sequence, shown for each joint
