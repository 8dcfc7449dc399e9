"""The Train tab's handlers (called directly, with a launcher on temporary folders) and its API endpoints."""

from __future__ import annotations

import os
import time
from pathlib import Path

import gradio as gr
import pytest

from int_model import build_model, save_checkpoint
from studio.common import ModelCache, Settings
from studio.train_tab import (
    RUN_COLUMNS,
    SOURCE_FOLDERS,
    SOURCE_SYNTHETIC,
    build_train_tab,
    describe_config,
    phase_changed,
    refresh_lists,
    resume_training,
    runs_table,
    start_training,
    stop_training,
    tick,
    training_status,
    use_checkpoint,
)
from tests.support import CHROMIUM, CHROMIUM_ARGS, NO_CHROMIUM, free_port
from training.launch.launcher import TrainLauncher

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache(tmp_path: Path) -> ModelCache:
    return ModelCache(Settings(output_root=tmp_path / "outputs", checkpoint=None, runs_root=tmp_path / "runs"))


def test_settings_name_the_data_and_runs_roots() -> None:
    settings = Settings()
    assert settings.data_root == Path(os.environ.get("INT_DATA_ROOT", "data"))
    assert settings.runs_root == Path(os.environ.get("INT_RUNS_ROOT", "runs"))


@pytest.mark.parametrize("args, message", [
    (("9",), "phase must be 1, 2 or 3, not '9'"),
    (("1", "nope"), "unknown config 'nope'"),
    (("1", "test", "the config's datasets", 64, 32, None, "-1"), "epochs must be a positive whole number"),
    (("1", "test", "the config's datasets", 64, 32, None, 1.5), "epochs must be a positive whole number, not 1.5"),
    (("1", "test", "the config's datasets", 64, 32, None, None, -2), "batch size must be a positive whole number"),
    (("1", "test", "the config's datasets", 64, 32, None, None, None, 0), "number of processes must be"),
    (("1", "test", SOURCE_FOLDERS, 64, 32, ["../../etc"]), "is outside the data root"),
    (("1", "test", SOURCE_FOLDERS, 64, 32, []), "choose at least one dataset folder"),
    (("1", "test", SOURCE_SYNTHETIC, 0, 32), "synthetic clips must be a positive whole number"),
    (("2", "test"), "phase 2 starts from a phase 1 checkpoint: choose an init checkpoint"),
    (("1", "test", "from the moon"), "unknown data source 'from the moon'"),
])
def test_bad_requests_are_one_line_messages(launcher: TrainLauncher, args: tuple, message: str) -> None:
    with pytest.raises(gr.Error) as info:
        start_training(launcher, *args)
    assert message in str(info.value) and "\n" not in str(info.value) and "Traceback" not in str(info.value)
    assert launcher.running is None


def test_idle_tab_says_there_is_nothing_yet(launcher: TrainLauncher) -> None:
    markdown, log, figure = training_status(launcher)
    assert "no training run yet" in markdown and log == ""
    assert figure.layout.annotations[-1].text == "no steps logged yet"
    with pytest.raises(gr.Error, match="nothing to stop"):
        stop_training(launcher)
    with pytest.raises(gr.Error, match="choose the run to resume"):
        resume_training(launcher, None)
    outputs = tick(launcher)
    assert outputs[3].active is False  # the timer stops when nothing runs
    assert list(runs_table(launcher).columns) == RUN_COLUMNS and runs_table(launcher).empty


def test_phase_choice_describes_the_config_and_proposes_the_previous_final(launcher: TrainLauncher) -> None:
    assert "configs/test/phase1.yaml" in describe_config(launcher, "1", "test")
    assert "starts from phase 1's final.pt" in describe_config(launcher, "2", "test")
    finished = launcher.runs_root / "earlier"
    finished.mkdir(parents=True)
    (finished / "config.yaml").write_text("name: test-phase1\n")
    (finished / "final.pt").write_bytes(b"")
    note, init = phase_changed(launcher, "2", "test")
    assert "test-phase2" in note or "phase2.yaml" in note
    assert init["value"] == f"checkpoint:{(finished / 'final.pt').resolve()}"
    _, init = phase_changed(launcher, "1", "test")
    assert init["value"] is None
    table, runs, checkpoints, folders = refresh_lists(launcher)
    assert table["run"].tolist() == ["earlier"] and runs["choices"] == ["earlier"]
    assert checkpoints["value"] == f"checkpoint:{(finished / 'final.pt').resolve()}"
    assert "synthetic/test-train" in folders["choices"]


def test_use_in_the_other_tabs_sets_the_model_key(cache: ModelCache, tmp_path: Path, body_model) -> None:
    path = save_checkpoint(tmp_path / "runs" / "a" / "final.pt", build_model("tiny", body_model=body_model),
                           meta={"phase": "test-phase1", "step": 4})
    key, confirmation = use_checkpoint(cache, f"checkpoint:{path.resolve()}")
    assert key == f"checkpoint:{path.resolve()}"
    assert "The other tabs now use" in confirmation and "final.pt" in confirmation and "step 4" in confirmation
    with pytest.raises(gr.Error, match="choose a checkpoint of a run first"):
        use_checkpoint(cache, None)
    (tmp_path / "runs" / "broken.pt").write_bytes(b"\x00garbage")
    with pytest.raises(gr.Error, match="is not a PyTorch checkpoint"):
        use_checkpoint(cache, f"checkpoint:{tmp_path / 'runs' / 'broken.pt'}")
    (tmp_path / "elsewhere.pt").write_bytes(b"\x00garbage")
    with pytest.raises(gr.Error, match="must lie in one of the checkpoint folders"):
        use_checkpoint(cache, f"checkpoint:{tmp_path / 'elsewhere.pt'}")


def test_start_follow_and_stop_a_tiny_run(launcher: TrainLauncher) -> None:
    markdown, log, figure, table, runs, name = start_training(launcher, "1", "test", epochs=100, run_name="ui")
    assert name == "ui"
    assert "running" in markdown and runs["value"] == "ui" and table["run"].tolist() == ["ui"]
    with pytest.raises(gr.Error, match="a training run is already running: ui; stop it first"):
        start_training(launcher, "1", "test", run_name="other")
    deadline = time.monotonic() + 180
    while len(launcher.status().metrics.train) < 2:
        assert time.monotonic() < deadline and launcher.running, launcher.status().log[-2000:]
        time.sleep(0.3)
    outputs = tick(launcher)
    assert "running" in outputs[0] and "step" in outputs[0] and outputs[3] is not None
    assert [trace.name for trace in outputs[2].data][:1] == ["loss"] and len(outputs[2].data[0].x) >= 2
    markdown, log, figure, table, runs, name = stop_training(launcher)
    assert "stopped" in markdown and "last.pt saved" in markdown and "received SIGTERM" in log
    assert table["state"].tolist() == ["stopped"] and "last.pt" in table["checkpoints"].tolist()[0]
    markdown, *_ = training_status(launcher, "ui")
    assert "stopped" in markdown


def test_endpoints_have_defaults_after_the_phase(launcher: TrainLauncher, cache: ModelCache) -> None:
    with gr.Blocks() as demo:
        build_train_tab(cache, gr.State("fresh:tiny"), launcher)
    endpoints = demo.get_api_info()["named_endpoints"]
    assert {"/train_start", "/train_status", "/train_stop"} <= set(endpoints)
    start = endpoints["/train_start"]["parameters"]
    assert start[0]["parameter_name"] == "phase"
    assert all(p["parameter_has_default"] for p in start)
    assert all(p["parameter_has_default"] for p in endpoints["/train_status"]["parameters"])
    assert endpoints["/train_stop"]["parameters"] == []


@pytest.mark.slow
def test_train_endpoints_with_gradio_client(launcher: TrainLauncher, cache: ModelCache) -> None:
    from gradio_client import Client

    with gr.Blocks() as demo:
        build_train_tab(cache, gr.State("fresh:tiny"), launcher)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        out = client.predict("1", config_set="test", epochs=100, api_name="/train_start")
        assert "running" in out[0], out[0]
        name = launcher.running
        deadline = time.monotonic() + 180
        while len(launcher.status().metrics.train) < 1:
            assert time.monotonic() < deadline and launcher.running, launcher.status().log[-2000:]
            time.sleep(0.3)
        markdown, log, _ = client.predict(api_name="/train_status")
        assert name in markdown and "running" in markdown and "phase test-phase1" in log
        markdown, log, *_ = client.predict(api_name="/train_stop")
        assert "stopped" in markdown, markdown
        with pytest.raises(Exception, match="nothing to stop"):
            client.predict(api_name="/train_stop")
    finally:
        demo.close()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_train_tab_in_chromium(launcher: TrainLauncher, cache: ModelCache, tmp_path: Path) -> None:
    """Start a run from the page, watch the timer bring its log and curves, stop it, use its checkpoint."""
    from playwright.sync_api import sync_playwright

    with gr.Blocks() as demo:
        model_key = gr.State("fresh:tiny")
        with gr.Tab("Other"):
            shown = gr.Markdown("no key yet")
            show = gr.Button("Show the model key")
            show.click(lambda key: f"key: {key}", model_key, shown)
        build_train_tab(cache, model_key, launcher)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1300, "height": 1400})
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("tab", name="Train").click()
            page.get_by_role("combobox", name="Config").click()
            page.get_by_role("option", name="test").click()
            page.get_by_text("configs/test/phase1.yaml").first.wait_for(timeout=30_000)
            page.get_by_label("Epochs (0: the config's)").fill("100")
            page.get_by_role("button", name="Start").click()
            # Nothing but the timer brings the trainer's log lines and the loss curve to the page.
            log = page.get_by_label("Log (train.log)")
            deadline = time.monotonic() + 180
            while "phase test-phase1: tiny model" not in log.input_value():
                assert time.monotonic() < deadline, log.input_value()[-2000:]
                page.wait_for_timeout(500)
            page.locator(".js-plotly-plot .scatterlayer .trace").first.wait_for(timeout=60_000)
            screenshots = Path(os.environ.get("INT_TEST_SCREENSHOTS", tmp_path))
            page.screenshot(path=str(screenshots / "train-tab-running.png"), full_page=True)
            page.get_by_role("button", name="Stop").click()
            page.get_by_text("last.pt saved").first.wait_for(timeout=90_000)
            assert launcher.running is None
            page.get_by_role("button", name="Refresh").click()
            checkpoint = page.get_by_role("combobox", name="Checkpoint", exact=True)
            while "last.pt" not in checkpoint.input_value():  # the run's checkpoint is offered
                assert time.monotonic() < deadline + 120, checkpoint.input_value()
                page.wait_for_timeout(500)
            page.get_by_role("button", name="Use in the other tabs").click()
            page.get_by_text("The other tabs now use").first.wait_for(timeout=60_000)
            page.get_by_role("tab", name="Other").click()
            page.get_by_role("button", name="Show the model key").click()
            page.get_by_text(f"key: checkpoint:{launcher.runs_root}").first.wait_for(timeout=30_000)
            browser.close()
    finally:
        demo.close()
