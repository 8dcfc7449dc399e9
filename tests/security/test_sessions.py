"""Session folders under a hostile client: the session hash is the client's to choose, so it must never name a
folder. Traversal through the heartbeat (which runs the unload handler), the queue and the upload route."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import LiveApp, changed, snapshot, wait_until

#: The app names session folders itself: 32 hex digits.
SERVER_NAMED = re.compile(r"^[0-9a-f]{32}$")


def _blank_image(path: Path) -> Path:
    Image.fromarray(np.full((96, 128, 3), 180, np.uint8)).save(path)
    return path


def _session_folders(live: LiveApp) -> set[Path]:
    return {p for p in live.sessions.iterdir() if p.is_dir()} if live.sessions.is_dir() else set()


def test_a_heartbeat_with_a_traversal_hash_deletes_nothing(live_app: LiveApp) -> None:
    """``GET /gradio_api/heartbeat/..`` then hanging up runs the unload handler for the session ``..``: it must
    delete neither the sessions folder, nor another session's outputs, nor anything above them."""
    victim = live_app.client()
    victim.predict(None, "", "tiny", False, api_name="/load_model")  # writes the victim's prior mesh
    folders = _session_folders(live_app)
    assert folders
    (live_app.sessions / "canary.txt").write_text("sessions")
    (live_app.outputs / "canary.txt").write_text("outputs")
    before = snapshot(live_app.base)

    for hash_ in ("..", "../..", "../../outside", "%2e%2e", "..%2F..", "...", "."):
        status, body = live_app.raw_get(f"/gradio_api/heartbeat/{hash_}", read_s=0.5)
        assert status in (200, 404), (hash_, status)
    # The unload handlers run in the background once the heartbeats hang up; give them time to do harm.
    wait_until(lambda: False, timeout_s=3.0)
    assert changed(before, snapshot(live_app.base)) == {"added": [], "removed": [], "modified": []}

    # The control: the victim's own heartbeat ending removes the victim's folder, and only it.
    status, _ = live_app.raw_get(f"/gradio_api/heartbeat/{victim.session_hash}", read_s=0.5)
    assert status == 200
    assert wait_until(lambda: not any(p.exists() for p in folders), timeout_s=20.0), "unload never ran"
    assert (live_app.sessions / "canary.txt").is_file() and (live_app.outputs / "canary.txt").is_file()
    assert (live_app.outside / "canary.txt").is_file()


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_a_traversal_hash_in_the_queue_writes_only_into_a_server_named_folder(live_app: LiveApp, tmp_path: Path,
                                                                              kind: str) -> None:
    from gradio_client import handle_file

    target = live_app.outside / f"victim-{kind}"
    if kind == "relative":
        hash_ = os.path.relpath(target, live_app.sessions)  # ../../outside/victim-relative
    else:
        hash_ = "../" * 12 + str(target).lstrip("/")
    assert ".." in hash_
    image = _blank_image(tmp_path / "nobody.png")
    before = snapshot(live_app.base)
    client = live_app.client(session_hash=hash_)
    client.predict(None, "", "tiny", False, api_name="/load_model")
    client.predict(handle_file(str(image)), api_name="/reconstruct")  # nobody there: results.npz only

    assert not target.exists()
    added = changed(before, snapshot(live_app.base))["added"]
    assert added, "the calls wrote nothing at all: the test proves nothing"
    for path in added:
        relative = path.relative_to(live_app.sessions)  # ValueError: written outside the sessions folder
        assert SERVER_NAMED.match(relative.parts[0]), path
    assert any(p.name == "results.npz" for p in added) and any(p.suffix == ".glb" for p in added)


def test_the_upload_route_keeps_uploads_in_gradios_cache(live_app: LiveApp) -> None:
    import httpx

    before = snapshot(live_app.base)
    response = httpx.post(f"{live_app.url}gradio_api/upload", params={"upload_id": "../../../outside/up"},
                          files={"files": ("../../../../outside/uploaded.txt", b"payload")}, timeout=30)
    assert response.status_code == 200
    (stored,) = response.json()
    assert Path(stored).name == "uploaded.txt" and ".." not in Path(stored).parts
    from gradio.utils import get_upload_folder

    assert Path(stored).resolve().is_relative_to(Path(get_upload_folder()).resolve())
    assert changed(before, snapshot(live_app.base)) == {"added": [], "removed": [], "modified": []}
