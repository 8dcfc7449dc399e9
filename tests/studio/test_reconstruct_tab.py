"""The Reconstruct tab's handlers on the bundled example clip and on bad input, and its API endpoint."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from pipeline.results import load_results
from studio.common import ModelCache, Settings
from studio.reconstruct_tab import examples, reconstruct, show_frame, two_walkers
from tests.support import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(tmp_path_factory, renderer_available):
    return ModelCache(Settings(output_root=tmp_path_factory.mktemp("outputs"), checkpoint=None))


@pytest.fixture(scope="module")
def renderer_available(renderer):
    return True


@pytest.fixture(scope="module")
def example() -> str:
    assert len(examples()) >= 2, "studio/examples lacks its clips (python -m scripts.make_examples)"
    return two_walkers()


@pytest.fixture(scope="module")
def run(cache, example):
    return reconstruct(cache, example, "fresh:tiny", "hog", 16, "fp32", True, True, None, None, None)


def test_a_clip_gives_overlay_summary_downloads_viewer_and_curves(run):
    video, still, summary, downloads, mesh, frame, track, curves, run_dir = run
    assert not still["visible"] and video["visible"]
    assert Path(video["value"]).suffix == ".mp4" and Path(video["value"]).stat().st_size > 10_000
    assert summary.startswith("### ok: 2 track(s)") and "untrained" in summary
    names = sorted(Path(p).name for p in downloads)
    assert names == ["meshes.zip", "results.npz", "track_000.bvh", "track_001.bvh"]
    results = load_results(Path(run_dir) / "results.npz")
    assert results.num_frames == 48 and len(results.track_ids) == 2
    assert Path(mesh).suffix == ".glb" and Path(mesh).stat().st_size > 10_000
    assert frame["maximum"] == 47 and track["choices"][1:] == ["track 0", "track 1"]
    assert curves is not None and len(curves.data) > 0


def test_choosing_a_frame_and_a_track_rebuilds_the_mesh(cache, run):
    run_dir = run[-1]
    whole, _ = show_frame(cache, run_dir, "fresh:tiny", 20, "all")
    one, curves = show_frame(cache, run_dir, "fresh:tiny", 20, "track 1")
    assert Path(one).stat().st_size < Path(whole).stat().st_size  # one person instead of two
    assert {trace.name for trace in curves.data} == {"track 1"}
    with pytest.raises(gr.Error, match="reconstruct a clip first"):
        show_frame(cache, None, "fresh:tiny", 0, "all")


def test_bad_inputs_give_one_line_messages(cache, tmp_path):
    with pytest.raises(gr.Error, match="upload an image or a clip first"):
        reconstruct(cache, None, "fresh:tiny")
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video")
    with pytest.raises(gr.Error) as info:
        reconstruct(cache, str(fake), "fresh:tiny")
    assert "notes.mp4" in str(info.value) and "Traceback" not in str(info.value)
    with pytest.raises(gr.Error, match="temporal window"):
        reconstruct(cache, str(fake), "fresh:tiny", "hog", 1)


def test_nobody_in_the_picture_says_so(cache, tmp_path):
    from PIL import Image

    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(blank)
    video, still, summary, downloads, mesh, *_ = reconstruct(cache, str(blank), "fresh:tiny")
    assert video["value"] is None and mesh is None and summary.startswith("### no_person")
    assert load_results(downloads[0]).status == "no_person"


def test_reconstruct_endpoint_with_gradio_client(tmp_path, example):
    from gradio_client import Client, handle_file

    import app

    demo = app.build_demo(Settings(output_root=tmp_path / "outputs", checkpoint=None))
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        out = client.predict(handle_file(example), api_name="/reconstruct")
        video, _, summary, downloads = out[:4]
        assert summary.startswith("### ok")
        path = video if isinstance(video, str) else (video.get("video") or video.get("value") or {})
        path = path if isinstance(path, str) else path.get("path") or path.get("video")
        assert Path(path).is_file(), video
        assert any(Path(d).name == "results.npz" for d in downloads)
    finally:
        demo.close()


def test_two_sessions_reconstruct_at_the_same_time(tmp_path, example):
    """Two API clients (two sessions) are processed together, each writing into its own session folder."""
    import time

    from gradio_client import Client, handle_file
    from gradio_client.utils import Status

    import app

    demo = app.build_demo(Settings(output_root=tmp_path / "outputs", checkpoint=None))
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        jobs = [Client(url, verbose=False).submit(handle_file(example), api_name="/reconstruct") for _ in range(2)]
        together = False
        deadline = time.monotonic() + 600
        while not all(j.done() for j in jobs) and time.monotonic() < deadline:
            together |= all(j.status().code == Status.PROCESSING for j in jobs)
            time.sleep(0.1)
        outputs = [j.result() for j in jobs]
        assert together, "the second session waited for the first"
        assert all(out[2].startswith("### ok") for out in outputs)
        sessions = [d for d in (tmp_path / "outputs" / "sessions").iterdir() if list(d.glob("run-*/results.npz"))]
        assert len(sessions) == 2  # one folder per session, each with its run
    finally:
        demo.close()


def test_a_real_photo_with_the_keypoint_fit_says_so(cache):
    photo = Path(__file__).resolve().parents[1] / "data" / "real" / "messi5.jpg"
    plain = reconstruct(cache, str(photo), "fresh:tiny", "ssdlite", 16, "fp32", False, False, None, None, None)
    fitted = reconstruct(cache, str(photo), "fresh:tiny", "ssdlite", 16, "fp32", False, False, None, None, None,
                         refine=True)
    assert "detector ssdlite" in plain[2] and "BlazePose" not in plain[2]
    assert "fitted to BlazePose keypoints" in fitted[2] and fitted[1]["visible"]
    before = load_results(Path(plain[-1]) / "results.npz").joints2d
    after = load_results(Path(fitted[-1]) / "results.npz").joints2d
    assert before.shape == after.shape == (1, 24, 2) and np.abs(after - before).max() > 5.0  # pixels: it moved


def test_rendered_figures_fall_back_to_hog_and_say_so(cache):
    """The bundled one-walker clip shows a procedural mannequin: the real-people detector finds nobody in it, HOG
    runs instead."""
    (clip,) = [p for p in examples() if p.endswith("one-walker.mp4")]
    out = reconstruct(cache, clip, "fresh:tiny", "ssdlite", 16, "fp32", False, False, None, None, None)
    assert out[2].startswith("### ok: 1 track(s)")
    assert "detector hog (ssdlite found nobody" in out[2]
