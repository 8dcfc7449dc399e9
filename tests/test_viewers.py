"""The app's 3D viewers (Gradio's Model3D: Babylon.js on Chromium's software WebGL) draw their meshes.

A viewer that stays a flat grey (or white) box fails here: its canvas must show a mesh, that is a pixel std above
a threshold and a few per cent of its pixels away from the viewers' clear colour (``tests.support``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import app
from studio.common import Settings
from tests.support import CHROMIUM, CHROMIUM_ARGS, NO_CHROMIUM, free_port, wait_viewer_drawn

pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)]

MODEL_VIEWER = "Prior pose and shape decoded from the tokens"
RECONSTRUCT_VIEWER = "The chosen frame in 3D"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The real app (demo model) on a free port; yields its URL and its output folder."""
    root = tmp_path_factory.mktemp("viewers")
    settings = Settings(output_root=root, runs_root=root / "runs", data_root=root / "data")
    demo = app.build_demo(settings)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        allowed_paths=[str(root)])
    yield f"http://127.0.0.1:{port}/", root
    demo.close()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        page.console_lines = []
        page.on("console", lambda m: page.console_lines.append(f"{m.type}: {m.text[:200]}"))
        page.on("pageerror", lambda e: page.console_lines.append(f"page error: {str(e)[:200]}"))
        yield page
        browser.close()


def _viewer(page, label: str):
    """The Model3D element of the viewer labelled ``label`` (present once the viewer has a value)."""
    return page.get_by_test_id("block-label").filter(has_text=label).locator("xpath=..").get_by_test_id("model3d")


def _assert_drawn(page, label: str, screenshot: Path) -> None:
    viewer = _viewer(page, label)
    try:
        viewer.wait_for(timeout=120_000)
        std, fraction = wait_viewer_drawn(viewer)
    except Exception as exc:  # ViewerNotDrawn, or playwright's TimeoutError: say what the browser said
        page.screenshot(path=str(screenshot))
        console = "\n".join(page.console_lines[-30:]) or "(nothing)"
        raise AssertionError(f"{label!r}: {exc}\nscreenshot: {screenshot}\nbrowser console:\n{console}") from exc
    viewer.screenshot(path=str(screenshot))
    assert std > 4 and fraction > 0.02


def test_model_tab_viewer_draws_the_prior_mesh(served, page, tmp_path):
    url, root = served
    page.goto(url)
    # As a visitor meets it: the page's load event fills the Model tab while another tab is shown, and only then
    # is the tab opened. (The prior's glb is written just before the answer goes out.)
    deadline = time.monotonic() + 180
    while not list(root.rglob("prior-*.glb")):
        assert time.monotonic() < deadline, "the page load never produced the prior mesh"
        time.sleep(0.5)
    page.wait_for_timeout(3000)
    page.get_by_role("tab", name="Model").click()
    page.get_by_text("Model: ").first.wait_for(timeout=60_000)
    _assert_drawn(page, MODEL_VIEWER, tmp_path / "model-viewer.png")


@pytest.mark.slow
def test_reconstruct_tab_viewer_draws_the_chosen_frame(served, page, tmp_path):
    from studio.reconstruct_tab import EXAMPLES_DIR

    url, _ = served
    page.goto(url)
    page.get_by_role("tab", name="Reconstruct").click()
    page.locator("input[type=file]").first.set_input_files(str(EXAMPLES_DIR / "one-walker.mp4"), timeout=120_000)
    page.get_by_role("button", name="Reconstruct", exact=True).click()
    page.get_by_text("ok: 1 track(s)").first.wait_for(timeout=400_000)
    _assert_drawn(page, RECONSTRUCT_VIEWER, tmp_path / "reconstruct-viewer.png")
