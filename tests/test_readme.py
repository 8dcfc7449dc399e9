"""The README's Python code blocks, run as they stand: the library examples in-process, the API examples against
a live app (the README's URL and ``clip.mp4`` replaced by the served app and the bundled example clip)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import free_port

REPO = Path(__file__).resolve().parents[1]
README_URL = "http://127.0.0.1:7860/"
EXAMPLE = REPO / "studio" / "examples" / "one-walker.mp4"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def api_blocks() -> list[str]:
    return [b for b in python_blocks() if "gradio_client" in b]


def test_the_readme_has_the_blocks_this_test_runs() -> None:
    blocks = python_blocks()
    assert len(api_blocks()) == 1 and len(blocks) >= 2
    api = api_blocks()[0]
    for endpoint in ("/reconstruct", "/load_model", "/token_priors", "/image_attention", "/temporal_attention",
                     "/train_start", "/train_status", "/train_stop", "/train_resume"):
        assert f'api_name="{endpoint}"' in api, endpoint
    assert README_URL in api and '"clip.mp4"' in api


def test_the_library_examples_run(monkeypatch: pytest.MonkeyPatch, _session_cache) -> None:
    monkeypatch.chdir(REPO)
    for block in python_blocks():
        if block in api_blocks():
            continue
        namespace: dict = {}
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
        if "out" in namespace:
            assert tuple(namespace["out"].pose.shape) == (1, 16, 72)


@pytest.mark.slow
def test_the_api_examples_run_against_a_live_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                _session_cache) -> None:
    import app
    from studio.common import Settings

    monkeypatch.chdir(REPO)  # the README's relative paths are relative to the checkout
    settings = Settings(output_root=tmp_path / "outputs", runs_root=tmp_path / "runs", data_root=tmp_path / "data")
    demo = app.build_demo(settings)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        allowed_paths=[str(settings.output_root)])
    try:
        code = api_blocks()[0].replace(README_URL, f"http://127.0.0.1:{port}/").replace('"clip.mp4"', repr(str(EXAMPLE)))
        namespace: dict = {}
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    finally:
        demo.close()
    # What the block unpacked is what the README says it is (the names keep their last values).
    assert Path(namespace["video"]["value"]).suffix in (".mp4", ".webm") and Path(namespace["mesh"]).suffix == ".glb"
    assert {Path(p).name for p in namespace["downloads"]} >= {"results.npz", "track_000.bvh"}
    assert "int-small-synthetic.pt" in namespace["card"] and "untrained" not in namespace["card"]
    assert "learned (int-small-synthetic.pt)" in namespace["table"]
    # The temporal summary: one-walker's 24-frame gait is found in the default 64-frame window.
    assert re.search(r"Period from attention \| 2[3-5]\.\d frames", namespace["summary"]), namespace["summary"]
    run = tmp_path / "runs" / namespace["run"]
    assert (run / "last.pt").is_file() and " resumed: " in (run / "train.log").read_text()
    assert namespace["status"].startswith("### running") and namespace["run"] in namespace["status"]
