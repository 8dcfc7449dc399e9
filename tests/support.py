"""Helpers shared by the tests that serve the app and drive it in a browser (and by ``scripts.screenshots``)."""

from __future__ import annotations

import io
import shutil
import socket
import time

#: Debian's Chromium (``make test`` installs it), or None where it is missing.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Flags for a headless Chromium on a machine with no network and no GPU: without the background-networking
#: ones it keeps trying to reach Google's hosts. WebGL (the 3D viewers) comes from ANGLE on SwiftShader, the CPU
#: Vulkan that ships with Chromium; since Chromium 139 that software WebGL must be asked for
#: (--enable-unsafe-swiftshader). chrome://gpu reports "gl=egl-angle,angle=swiftshader" with these flags (the
#: old --use-gl=swiftshader was mapped onto the same ANGLE backend). Babylon.js (Gradio's Model3D) tries WebGPU
#: first: the console's "WebGPU creation/initialization" error is expected, it falls back to WebGL2 and draws.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
NO_CHROMIUM = "Debian's chromium is not installed (make test installs it)"

#: The grey (0.95) that the app's 3D viewers clear to, as an 8-bit value.
VIEWER_BACKGROUND = 242
#: What counts as drawn: the pixel std and the fraction of pixels away from the background (the demo model's prior
#: body covers about 8 % of its viewer, with a std of about 15; a cleared or undrawn canvas is flat: std 0).
MIN_VIEWER_STD = 4.0
MIN_VIEWER_FRACTION = 0.02


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ViewerNotDrawn(AssertionError):
    """A 3D viewer stayed blank (or never got its canvas) until the timeout."""


def viewer_pixels(png: bytes, *, background: int = VIEWER_BACKGROUND, skip_top: int = 44) -> tuple[float, float]:
    """(pixel std, fraction of pixels more than 16 grey levels from ``background``) of a 3D viewer's screenshot.

    The top ``skip_top`` pixels are left out: the viewer's label and buttons float over that strip of the canvas.
    """
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)[skip_top:]
    if pixels.size == 0:
        return 0.0, 0.0
    return float(pixels.std()), float((np.abs(pixels - background) > 16).mean())


def wait_viewer_drawn(viewer, *, timeout_s: float = 120.0, min_std: float = MIN_VIEWER_STD,
                      min_fraction: float = MIN_VIEWER_FRACTION) -> tuple[float, float]:
    """Poll a Gradio Model3D (a playwright locator of its ``[data-testid=model3d]`` element, or of a canvas) until
    its canvas shows a mesh: not a flat picture and enough pixels away from the clear colour. Returns (std,
    fraction); raises :class:`ViewerNotDrawn` after ``timeout_s`` (software WebGL on a busy machine is slow, a
    blank viewer must not pass)."""
    canvas = viewer if viewer.evaluate("e => e.tagName") == "CANVAS" else viewer.locator("canvas").first
    deadline = time.monotonic() + timeout_s
    stats = None
    while True:
        if canvas.count() and canvas.is_visible():
            stats = viewer_pixels(canvas.screenshot(timeout=30_000))
            if stats[0] > min_std and stats[1] > min_fraction:
                return stats
        if time.monotonic() > deadline:
            what = ("no canvas in the viewer" if stats is None else
                    f"pixel std {stats[0]:.1f} (needs > {min_std}), {100 * stats[1]:.1f} % of the pixels away from "
                    f"the background (needs > {100 * min_fraction:.0f} %)")
            raise ViewerNotDrawn(f"the 3D viewer stayed blank for {timeout_s:.0f} s: {what}")
        time.sleep(1.0)
