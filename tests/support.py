"""Helpers shared by the tests that serve the app and drive it in a browser (and by ``scripts.screenshots``)."""

from __future__ import annotations

import shutil
import socket

#: Debian's Chromium (``make test`` installs it), or None where it is missing.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Flags for a headless Chromium on a machine with no network and no GPU: without the background-networking
#: ones it keeps trying to reach Google's hosts; swiftshader gives the 3D viewers a software WebGL.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--use-gl=swiftshader", "--enable-unsafe-swiftshader"]
NO_CHROMIUM = "Debian's chromium is not installed (make test installs it)"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
