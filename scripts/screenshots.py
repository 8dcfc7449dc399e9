"""Take the README's screenshots of every tab: the app with the demo model, driven in Debian's Chromium.

    python -m scripts.screenshots [--out docs/screenshots] [--checkpoint C] [--only TAB ...]

Starts the app in this process on a free port, uploads the bundled ``one-walker.mp4``, runs Reconstruct, then
shows the Temporal attention, Image attention, Token priors, Model and Train tabs, and writes one full-page
PNG per tab (``<tab>.png``); ``--only model`` (for example) takes just those tabs. Before each shot it waits until
every 3D viewer on the tab has drawn its mesh, and exits non-zero, writing nothing more, when one stays blank.
Takes a few minutes on 2 cores. Look at the pictures before committing them.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from tests.support import CHROMIUM, CHROMIUM_ARGS, NO_CHROMIUM, ViewerNotDrawn, free_port, wait_viewer_drawn

LONG = 600_000  # ms: a step on a busy 2-core machine
WIDTH, HEIGHT = 1400, 1200
TABS = ("reconstruct", "temporal-attention", "image-attention", "token-priors", "model", "train")


def _wait_drawn(page, name: str, *, timeout_s: float = 120.0) -> None:
    """Wait until every visible 3D viewer (Gradio's Model3D) on the page shows its mesh; a viewer still blank
    (or without its canvas) after ``timeout_s`` raises SystemExit: a blank viewer must not end up in the README."""
    for index, viewer in enumerate(page.get_by_test_id("model3d").all()):
        if not viewer.is_visible():
            continue
        try:
            wait_viewer_drawn(viewer, timeout_s=timeout_s)
        except ViewerNotDrawn as exc:
            raise SystemExit(f"{name}: 3D viewer {index + 1}: {exc}") from exc


class _Camera:
    """Full-page shots of the app's page into ``out``, each once every 3D viewer on it has drawn."""

    def __init__(self, page, out: Path) -> None:
        self.page, self.out = page, out

    def shot(self, name: str) -> None:
        page = self.page
        # A viewport as tall as the page instead of full_page=True, which clears the WebGL viewers.
        height = page.evaluate("() => document.documentElement.scrollHeight")
        page.set_viewport_size({"width": WIDTH, "height": height})
        page.wait_for_timeout(2000)  # plots redraw at the new size
        _wait_drawn(page, name)  # software WebGL: wait until each viewer has drawn
        path = self.out / f"{name}.png"
        page.screenshot(path=str(path))
        page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
        print(path)


def _drive_tabs(page, wanted: set[str], camera: _Camera) -> None:
    """Use each wanted tab as a user would, in the order of :data:`TABS`, and shoot it."""
    from studio.reconstruct_tab import EXAMPLES_DIR

    if wanted & {"reconstruct", "temporal-attention", "image-attention"}:  # the attention tabs use the run
        page.get_by_role("tab", name="Reconstruct").click()
        page.locator("input[type=file]").first.set_input_files(str(EXAMPLES_DIR / "one-walker.mp4"))
        page.get_by_role("button", name="Reconstruct", exact=True).click()
        page.get_by_text("ok: 1 track(s)").first.wait_for(timeout=LONG)
        page.wait_for_function(
            "() => { const v = document.querySelector('video'); return v && v.duration > 0; }", timeout=60_000)
    if "reconstruct" in wanted:
        camera.shot("reconstruct")

    if "temporal-attention" in wanted:
        page.get_by_role("tab", name="Temporal attention").click()
        page.get_by_label("Joint").click()
        page.get_by_role("option", name="right_knee", exact=True).click()
        page.get_by_label("number input for Window length T").fill("96")  # the whole clip: several periods
        page.get_by_label("number input for Window length T").press("Enter")
        page.get_by_role("button", name="Show temporal attention").click()
        page.get_by_text("Period from attention").first.wait_for(timeout=LONG)
        camera.shot("temporal-attention")

    if "image-attention" in wanted:
        page.get_by_role("tab", name="Image attention").click()
        page.get_by_role("button", name="Show attention").click()
        page.get_by_text("Attribution of").first.wait_for(timeout=LONG)
        camera.shot("image-attention")

    if "token-priors" in wanted:
        page.get_by_role("tab", name="Token priors").click()
        page.get_by_role("button", name="Show priors").click()
        page.get_by_text("Joints outside their anatomical range").first.wait_for(timeout=LONG)
        camera.shot("token-priors")

    if "model" in wanted:
        page.get_by_role("tab", name="Model").click()
        page.get_by_text("Model: ").first.wait_for(timeout=LONG)
        camera.shot("model")

    if "train" in wanted and page.get_by_role("tab", name="Train").count():
        page.get_by_role("tab", name="Train").click()
        camera.shot("train")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--checkpoint", default=None, help="default: the bundled demo model")
    parser.add_argument("--only", nargs="+", choices=TABS, default=list(TABS), metavar="TAB",
                        help=f"take only these tabs ({', '.join(TABS)})")
    args = parser.parse_args(argv)
    wanted = set(args.only)
    if CHROMIUM is None:
        raise SystemExit(NO_CHROMIUM)
    from playwright.sync_api import sync_playwright

    import app
    from studio.common import Settings

    outputs = Path(tempfile.mkdtemp(prefix="int-screenshots-"))
    settings = Settings(output_root=outputs, **({"checkpoint": args.checkpoint} if args.checkpoint else {}),
                        runs_root=outputs / "runs", data_root=outputs / "data")
    demo = app.build_demo(settings)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        allowed_paths=[str(outputs)])
    args.out.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.goto(url)

            _drive_tabs(page, wanted, _Camera(page, args.out))
            browser.close()
    finally:
        demo.close()
        shutil.rmtree(outputs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
