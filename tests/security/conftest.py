"""A live app on 127.0.0.1 for the attacker's tests, with every root in one temporary folder, and the means to
see what changed on disk outside the roots."""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import free_port


class _Evil:
    """Unpickling this runs ``touch MARKER``: a file that must never appear."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_object(marker: Path) -> _Evil:
    return _Evil(marker)


@dataclass
class LiveApp:
    """The served app: its URL, its settings and the folder that holds its roots and the attacker's targets."""

    url: str
    port: int
    base: Path  # holds out/ (outputs), runs/, data/ and outside/ (what no request may touch)
    settings: object

    @property
    def outputs(self) -> Path:
        return Path(self.settings.output_root)

    @property
    def sessions(self) -> Path:
        return self.outputs / "sessions"

    @property
    def outside(self) -> Path:
        return self.base / "outside"

    def client(self, session_hash: str | None = None):
        """A gradio_client Client; ``session_hash`` replaces the random one the client picked (as an attacker's
        client may)."""
        from gradio_client import Client

        client = Client(self.url, verbose=False)
        if session_hash is not None:
            client.session_hash = session_hash
        return client

    def raw_get(self, path: str, *, read_s: float = 1.0) -> tuple[int, bytes]:
        """GET ``path`` exactly as written (no ``..`` normalisation, as ``curl --path-as-is``); the body read for
        at most ``read_s`` seconds, then the connection is closed."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=read_s)
        try:
            connection.putrequest("GET", path, skip_accept_encoding=True)
            connection.endheaders()
            response = connection.getresponse()
            try:
                body = response.read1(65536) if response.status == 200 else response.read()
            except TimeoutError:
                body = b""
            return response.status, body
        finally:
            connection.close()


    def raw_call(self, api_name: str, data: list, *, session_hash: str = "raw-client", timeout_s: float = 120.0):
        """Call a named endpoint through the queue with exactly ``data`` (no client-side uploads, unlike
        gradio_client); returns (success, output or error message)."""
        import json

        import httpx

        config = httpx.get(f"{self.url}config", timeout=30).json()
        fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name.strip("/"))
        with httpx.Client(base_url=self.url, timeout=timeout_s) as http:
            joined = http.post("gradio_api/queue/join", json={"data": data, "fn_index": fn_index,
                                                              "session_hash": session_hash, "event_data": None,
                                                              "trigger_id": None})
            if joined.status_code != 200:
                return False, joined.text
            with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session_hash}) as stream:
                for line in stream.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        output = message.get("output") or {}
                        if message.get("success"):
                            return True, output.get("data")
                        return False, str(output.get("error"))
        return False, "the stream ended without an answer"


def snapshot(*roots: Path) -> dict[Path, tuple[int, float]]:
    """Every file under ``roots`` with its size and modification time (symlinks not followed)."""
    found: dict[Path, tuple[int, float]] = {}
    for root in roots:
        if not root.exists():
            continue
        for path in [root, *root.rglob("*")]:
            if path.is_file() and not path.is_symlink():
                stat = path.stat()
                found[path] = (stat.st_size, stat.st_mtime)
    return found


def changed(before: dict[Path, tuple[int, float]], after: dict[Path, tuple[int, float]]) -> dict[str, list[Path]]:
    return {"added": sorted(set(after) - set(before)), "removed": sorted(set(before) - set(after)),
            "modified": sorted(p for p in set(before) & set(after) if before[p] != after[p])}


def wait_until(condition, *, timeout_s: float, step_s: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return condition()


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory, _session_cache) -> Iterator[LiveApp]:
    import app
    from studio.common import Settings

    base = tmp_path_factory.mktemp("attacked")
    for name in ("out", "runs", "data", "outside"):
        (base / name).mkdir()
    (base / "outside" / "canary.txt").write_text("outside the roots")
    settings = Settings(output_root=base / "out", runs_root=base / "runs", data_root=base / "data")
    demo = app.build_demo(settings)
    port = free_port()
    demo.queue(default_concurrency_limit=2).launch(server_name="127.0.0.1", server_port=port,
                                                   prevent_thread_lock=True, quiet=True,
                                                   allowed_paths=[str(settings.output_root)])
    try:
        yield LiveApp(url=f"http://127.0.0.1:{port}/", port=port, base=base, settings=settings)
    finally:
        demo.close()
