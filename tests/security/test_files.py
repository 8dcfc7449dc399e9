"""Reading the server's files: the ``file=`` route, file inputs that name a server path instead of an upload, and
server checkpoint paths used as an oracle for what exists on the server."""

from __future__ import annotations

import shutil
import urllib.parse
from pathlib import Path

import pytest

from int_model import build_model, save_checkpoint

from .conftest import LiveApp, changed, snapshot

REPO = Path(__file__).resolve().parents[2]
SECRET = b"the server's own file"


@pytest.fixture(scope="module")
def secrets(live_app: LiveApp) -> dict[str, Path]:
    """Files that no client may read: outside every root, in the data and runs roots, and in the repository."""
    found = {
        "outside": live_app.outside / "secret.txt",
        "data root": Path(live_app.settings.data_root) / "secret.txt",
        "runs root": Path(live_app.settings.runs_root) / "run-a" / "secret.txt",
    }
    for path in found.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(SECRET)
    return {**found, "repository": REPO / "app.py", "system": Path("/etc/passwd")}


@pytest.mark.parametrize("spelling", ["plain", "through outputs/..", "through sessions/../..", "quoted"])
def test_the_file_route_serves_nothing_outside_the_outputs(live_app: LiveApp, secrets: dict[str, Path],
                                                           spelling: str) -> None:
    for what, path in secrets.items():
        if spelling == "plain":
            asked = str(path)
        elif spelling == "through outputs/..":
            asked = f"{live_app.outputs}/../{path.relative_to(live_app.base)}" if path.is_relative_to(
                live_app.base) else f"{live_app.outputs}/../../../../../../..{path}"
        elif spelling == "through sessions/../..":
            asked = f"{live_app.sessions}/../../../../../../../..{path}"
        else:
            asked = urllib.parse.quote(str(path), safe="")
        status, body = live_app.raw_get(f"/gradio_api/file={asked}")
        assert status in (403, 404), (what, asked, status)
        assert SECRET not in body and b"root:" not in body and b"import" not in body, (what, asked)


def test_a_file_input_naming_a_server_path_is_refused(live_app: LiveApp) -> None:
    """A client that sends a FileData with a server path (not an upload) must not get that file processed."""
    private = live_app.outside / "private-clip.mp4"
    shutil.copy(REPO / "studio" / "examples" / "one-walker.mp4", private)
    checkpoint = live_app.outside / "private.pt"
    save_checkpoint(checkpoint, build_model("tiny"), meta={"phase": "private"})
    before = snapshot(live_app.base)
    for api_name, data in (
        ("/reconstruct", [{"path": str(private), "meta": {"_type": "gradio.FileData"}, "orig_name": "clip.mp4"},
                          None, "hog", 64, "fp32", False, False, None]),  # None: the session's states
        ("/load_model", [{"path": str(checkpoint), "meta": {"_type": "gradio.FileData"}, "orig_name": "c.pt"}, "",
                         "tiny", False]),
        ("/image_attention", [{"path": str(private), "meta": {"_type": "gradio.FileData"}}, "longest", -1,
                              "left_knee", -1, "mean", False, None, None]),
    ):
        ok, answer = live_app.raw_call(api_name, data)  # Gradio: "not uploaded by a user" (not shown to clients)
        assert not ok, (api_name, answer)
    difference = changed(before, snapshot(live_app.base))
    assert difference == {"added": [], "removed": [], "modified": []}, difference


def _answer(call) -> str:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the app's message travels as the client's exception
        return str(exc)
    return "accepted"


def test_server_checkpoint_paths_are_no_oracle(live_app: LiveApp) -> None:
    """A path outside the checkpoint folders gets one answer, whether a file is there, a checkpoint, or nothing."""
    present = live_app.outside / "present.pt"
    save_checkpoint(present, build_model("tiny"), meta={"phase": "private"})
    junk = live_app.outside / "junk.pt"
    junk.write_bytes(b"\x00 junk")
    absent = live_app.outside / "absent.pt"
    client = live_app.client()
    endpoints = {
        "/load_model": lambda p: client.predict(None, str(p), "tiny", False, api_name="/load_model"),
        "/token_priors": lambda p: client.predict(str(p), False, api_name="/token_priors"),
        "/train_start": lambda p: client.predict("2", "test", "the config's datasets", 4, 8, [], 0, 0, 1, str(p),
                                                 False, "probe", api_name="/train_start"),
    }
    for name, call in endpoints.items():
        answers = {p.name: _answer(lambda: call(p)).replace(p.name, "NAME") for p in (present, junk, absent)}
        assert len(set(answers.values())) == 1, (name, answers)
        (answer,) = set(answers.values())
        assert "must lie in one of the checkpoint folders" in answer, (name, answer)
    assert not (Path(live_app.settings.runs_root) / "probe").exists()
