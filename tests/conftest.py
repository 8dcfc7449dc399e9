"""Shared fixtures: a per-session cache folder (procedural body model), one body model for all tests, the test
phases' synthetic datasets and a training launcher over them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

TEST_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "test"


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Generated assets go to a fresh folder per test session unless INT_TEST_CACHE_DIR names one to reuse."""
    os.environ["INT_CACHE_DIR"] = os.environ.get("INT_TEST_CACHE_DIR") or str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("INT_SMPL_DIR", None)


@pytest.fixture(scope="session")
def body_model(_session_cache):
    from int_model import load_body_model

    return load_body_model(None)


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture(scope="session")
def renderer():
    """A working headless viz Renderer shared by the session, or a skip that says why none can exist here.

    CI sets INT_REQUIRE_RENDERER=1 so that a machine without headless OpenGL fails instead of skipping.
    """
    import numpy as np

    from viz.renderer import Renderer, RendererUnavailable, WeakPerspectiveCamera

    r = Renderer()
    try:
        triangle = (np.array([[0, 0, 1.0], [1, 0, 1], [0, 1, 1]]), np.array([[0, 1, 2]]))
        r.render([triangle], WeakPerspectiveCamera(1.0, 0.0, 0.0), width=4, height=4)
    except RendererUnavailable as exc:
        if os.environ.get("INT_REQUIRE_RENDERER") == "1":
            raise
        pytest.skip(f"no headless OpenGL platform works here: {exc}")
    yield r
    r.close()


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory, _session_cache) -> Path:
    """The test phases' synthetic datasets, generated once per session (the runs find them cached)."""
    from training.data import prepare_data
    from training.phases import load_phase_config

    root = tmp_path_factory.mktemp("data")
    prepare_data(load_phase_config(TEST_CONFIGS / "phase1.yaml").data, root=root, progress=False)
    return root


@pytest.fixture
def launcher(tmp_path: Path, data_root: Path):
    """A training launcher over :func:`data_root`; closed after the test, never leaving a process behind."""
    from training.launch.launcher import TrainLauncher

    launcher = TrainLauncher(tmp_path / "runs", data_root, stop_timeout=60)
    yield launcher
    launcher.close(timeout=30)
    assert launcher.running is None
