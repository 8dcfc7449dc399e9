"""Escaping the data root: dataset paths through the API and the training CLI, symlinks included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

from .conftest import LiveApp, changed, snapshot

REPO = Path(__file__).resolve().parents[2]


def _database(path: Path) -> Path:
    """A small, valid-looking database file (so that only its place makes it wrong)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({"vid_name": np.array(["v"] * 4), "img_name": np.array(["x.jpg"] * 4),
                 "joints2D": np.zeros((4, 49, 3)), "bbox": np.ones((4, 4))}, path)
    return path


@pytest.fixture(scope="module")
def escapes(live_app: LiveApp) -> dict[str, str]:
    """Dataset paths (relative to the data root, as the Train tab takes them) that all lead outside it."""
    data = Path(live_app.settings.data_root)
    outside_db = _database(live_app.outside / "databases" / "h36m_train_db.pt")
    (data / "databases").mkdir(parents=True, exist_ok=True)
    (data / "databases" / "h36m_train_db.pt").unlink(missing_ok=True)
    (data / "databases" / "h36m_train_db.pt").symlink_to(outside_db)  # a file symlink out of the root
    (data / "linked").symlink_to(live_app.outside, target_is_directory=True)  # a folder symlink out of it
    return {
        "dot-dot": f"../outside/databases/{outside_db.name}",
        "absolute": str(outside_db),
        "file symlink": "databases/h36m_train_db.pt",
        "folder symlink": f"linked/databases/{outside_db.name}",
        "system file": "/etc/passwd",
    }


def test_the_api_refuses_dataset_paths_outside_the_data_root(live_app: LiveApp, escapes: dict[str, str]) -> None:
    client = live_app.client()
    before = snapshot(live_app.base)
    for what, path in escapes.items():
        with pytest.raises(Exception) as info:
            client.predict("1", "test", "dataset folders under the data root", 4, 8, [path], 1, 0, 1, None, False,
                           f"escape-{what.replace(' ', '-')}", api_name="/train_start")
        assert "outside the data root" in str(info.value), (what, str(info.value))
    assert not any(p.name.startswith("escape-") for p in Path(live_app.settings.runs_root).iterdir())
    assert changed(before, snapshot(live_app.base)) == {"added": [], "removed": [], "modified": []}


@pytest.mark.parametrize("what", ["dot-dot", "file symlink", "folder symlink", "system file"])
def test_the_training_cli_applies_the_same_rule(live_app: LiveApp, escapes: dict[str, str], tmp_path: Path,
                                                what: str) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "cli.train", "--config", str(REPO / "configs/test/phase1.yaml"), "--out", str(out),
         "--data-root", str(live_app.settings.data_root), "--no-progress",
         "--set", f"data.train=[{{kind: database, name: h36m, path: '{escapes[what]}'}}]"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "outside the data root" in lines[0], done.stderr[-3000:]
    assert not out.exists()
