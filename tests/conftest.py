"""Shared fixtures: a per-session cache folder (procedural body model) and one body model for all tests."""

from __future__ import annotations

import os

import pytest
import torch


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
