"""Pickles that run code when loaded, as a checkpoint (upload), an SMPL file (app and CLI) and a dataset file
(a training run started over the API). Each test checks that the code never ran."""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from pathlib import Path

import joblib
import pytest
import torch

from tests.support import free_port

from .conftest import LiveApp, evil_object

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_an_evil_checkpoint_upload_is_refused_in_our_words(live_app: LiveApp, tmp_path: Path, writer: str) -> None:
    from gradio_client import handle_file

    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    payload = {"state_dict": evil_object(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    client = live_app.client()
    with pytest.raises(Exception) as info:
        client.predict(handle_file(str(path)), "", "tiny", False, api_name="/load_model")
    message = str(info.value)
    assert "evil.pt" in message and ("could run code" in message or "is not a PyTorch checkpoint" in message)
    assert "weights_only" not in message and "will likely succeed" not in message
    assert not marker.exists()


def _evil_smpl_dir(tmp_path: Path, marker: Path) -> Path:
    folder = tmp_path / "smpl"
    folder.mkdir()
    (folder / "SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps({"v_template": evil_object(marker)}, protocol=2))
    return folder


def test_an_evil_smpl_file_is_refused_by_the_app(tmp_path: Path) -> None:
    import app
    from gradio_client import Client
    from studio.common import Settings

    marker = tmp_path / "ran"
    settings = Settings(output_root=tmp_path / "out", runs_root=tmp_path / "runs", data_root=tmp_path / "data",
                        smpl_dir=str(_evil_smpl_dir(tmp_path, marker)))
    demo = app.build_demo(settings)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with pytest.raises(Exception, match="is not the SMPL model file and was not loaded"):
            Client(f"http://127.0.0.1:{port}/", verbose=False).predict(None, "", "tiny", False,
                                                                        api_name="/load_model")
    finally:
        demo.close()
    assert not marker.exists()


def test_an_evil_smpl_file_is_refused_by_the_cli(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "cli.reconstruct", str(REPO / "studio/examples/one-walker.mp4"),
                           "--out", str(out), "--smpl-dir", str(_evil_smpl_dir(tmp_path, marker)), "--no-overlay",
                           "--quiet"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "was not loaded" in lines[0], done.stderr
    assert "Traceback" not in done.stderr and "partial results" not in done.stderr
    assert not marker.exists()


@pytest.mark.parametrize("writer", ["joblib", "pickle"])
def test_an_evil_dataset_file_fails_the_run_without_running_code(live_app: LiveApp, tmp_path: Path,
                                                                 writer: str) -> None:
    """The Train tab's dataset folders: a ``*_train_db.pt`` under the data root whose pickle calls os.system."""
    marker = tmp_path / "ran"
    path = Path(live_app.settings.data_root) / "databases" / "h36m_train_db.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"vid_name": evil_object(marker)}
    if writer == "joblib":
        joblib.dump(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    client = live_app.client()
    name = f"evil-{writer}"
    client.predict("1", "test", "dataset folders under the data root", 4, 8, ["databases/h36m_train_db.pt"], 1, 0,
                   1, None, False, name, api_name="/train_start")
    deadline = time.monotonic() + 240
    while True:
        status, log, *_ = client.predict(name, api_name="/train_status")
        if "running" not in status.splitlines()[0] or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert not marker.exists(), "the dataset file's pickle ran its code"
    assert "failed" in status and "refusing to load global" in status, status
    assert "Traceback" not in log, log[-2000:]
