"""A training request's parts checked one by one: the phase, the numbers, the config set, the datasets.

Each check raises :class:`LaunchError` with a one-line message the app shows as it is.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from int_model.files import OutsideRootError, inside_root

from ..data import DATABASE_DIR, SYNTHETIC_DIR, THREEDPW_DIR
from ..phases import PhaseConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIGS = REPO_ROOT / "configs"
PHASES = (1, 2, 3)
#: The set of phase files at the top of ``configs/`` (the paper's configuration).
PAPER_SET = "paper"
SYNTHETIC_MANIFEST = "manifest.json"
_DATABASE_FILE = re.compile(r"^(?P<name>[a-z0-9]+)_(?P<split>train|val|test)_db\.pt$")


class LaunchError(ValueError):
    """A training request that cannot be started (or a stop / resume that cannot be done); one-line message."""


def parse_phase(value: Any) -> int:
    """1, 2 or 3 from ``1``, ``"2"``, ``"phase 3"``, ``"phase2"``; LaunchError otherwise."""
    text = str(value).strip().lower().replace("phase", "").strip() if value is not None else ""
    if isinstance(value, bool) or text not in {str(p) for p in PHASES}:
        raise LaunchError(f"phase must be 1, 2 or 3, not {value!r}")
    return int(text)


def positive_int(value: Any, what: str, *, optional: bool = False) -> int | None:
    """``value`` as a positive int (whole floats and numeric strings accepted, as a UI number box sends them);
    None (or an empty string) is allowed when ``optional``."""
    if optional and (value is None or (isinstance(value, str) and not value.strip())):
        return None
    number: float | None = None
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
    if number is None or not number.is_integer() or number < 1:
        raise LaunchError(f"{what} must be a positive whole number, not {value!r}")
    return int(number)


def config_sets(configs_root: str | os.PathLike = DEFAULT_CONFIGS) -> dict[str, Path]:
    """The sets of phase files: ``paper`` (``configs/phase{1,2,3}.yaml``) and every sub-folder of ``configs/``
    with phase files (``cpu-demo``, ``test``), each mapped to its folder."""
    root = Path(configs_root)
    found = {}
    if any((root / f"phase{p}.yaml").is_file() for p in PHASES):
        found[PAPER_SET] = root
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if any((folder / f"phase{p}.yaml").is_file() for p in PHASES):
                found[folder.name] = folder
    return found


def phase_config_path(config_set: str, phase: int, configs_root: str | os.PathLike = DEFAULT_CONFIGS) -> Path:
    """``configs/<set>/phase<N>.yaml`` (``configs/phase<N>.yaml`` for ``paper``); LaunchError naming the choices."""
    sets = config_sets(configs_root)
    if config_set not in sets:
        raise LaunchError(f"unknown config {config_set!r}; choose one of {', '.join(sets) or '(none found)'}")
    path = sets[config_set] / f"phase{phase}.yaml"
    if not path.is_file():
        raise LaunchError(f"config {config_set!r} has no phase {phase} ({path.name} not found)")
    return path


def inside(path: str | os.PathLike, root: Path, what: str) -> Path:
    """``path`` (relative: to ``root``) resolved (symlinks too), and required to lie inside the data root."""
    try:
        return inside_root(path, root, what=what, root_name="the data root")
    except OutsideRootError as exc:
        raise LaunchError(str(exc)) from None


def dataset_from_path(path: str | os.PathLike, data_root: Path) -> dict[str, Any]:
    """A phase's ``data.train`` entry for a real dataset under the data root: a generated synthetic dataset
    (``synthetic/<name>/`` with its manifest), a 3DPW folder (with ``sequenceFiles/``) or a VIBE / MAED / INT
    database file (``<name>_<split>_db.pt``)."""
    from ..datasets import DATASETS

    root = data_root.resolve()
    resolved = inside(path, root, "dataset")
    shown = resolved.relative_to(root).as_posix() or "."
    if not resolved.exists():
        raise LaunchError(f"dataset {shown!r} not found under the data root {data_root}")
    if resolved.is_dir() and (resolved / SYNTHETIC_MANIFEST).is_file():
        if resolved.parent != root / SYNTHETIC_DIR:
            raise LaunchError(f"synthetic dataset {shown!r}: synthetic datasets live in "
                              f"{SYNTHETIC_DIR}/<name> under the data root")
        return {"kind": "synthetic", "name": resolved.name}
    if resolved.is_dir() and (resolved / "sequenceFiles").is_dir():
        return {"kind": "3dpw", "name": "3dpw", "split": "train", "path": shown}
    match = _DATABASE_FILE.match(resolved.name)
    if resolved.is_file() and match and match["name"] in DATASETS:
        if match["split"] != "train":
            raise LaunchError(f"dataset {shown!r} is the {match['split']} split: train on a *_train_db.pt file")
        return {"kind": "database", "name": match["name"], "split": "train", "path": shown}
    raise LaunchError(f"{shown!r} is not a dataset: expected a synthetic dataset folder (with {SYNTHETIC_MANIFEST}), "
                      "a 3DPW folder (with sequenceFiles/) or a database file (<name>_train_db.pt)")


def find_datasets(data_root: str | os.PathLike) -> list[str]:
    """The datasets found under the data root (paths relative to it), for the app's choice list."""
    root = Path(data_root)
    found: list[str] = []
    if (root / SYNTHETIC_DIR).is_dir():
        found += [f"{SYNTHETIC_DIR}/{p.name}" for p in sorted((root / SYNTHETIC_DIR).iterdir())
                  if (p / SYNTHETIC_MANIFEST).is_file()]
    if (root / DATABASE_DIR).is_dir():
        found += [f"{DATABASE_DIR}/{p.name}" for p in sorted((root / DATABASE_DIR).glob("*_train_db.pt"))]
    if (root / THREEDPW_DIR / "sequenceFiles").is_dir():
        found.append(THREEDPW_DIR)
    return found


def check_data(config: PhaseConfig, root: Path, *, source: str) -> None:
    """Every dataset the phase reads is there (or is a synthetic one the run generates), inside ``root``."""
    for where, specs in (("train", config.data.train), ("val", config.data.val)):
        for spec in specs:
            label = f"{source}: data.{where} {spec.kind} dataset {spec.name!r}"
            if spec.kind == "synthetic":
                if spec.clips is None or spec.frames is None:  # not generated by the run: must exist
                    folder = root / SYNTHETIC_DIR / spec.name
                    if not (folder / SYNTHETIC_MANIFEST).is_file():
                        raise LaunchError(f"{label}: not found at {folder} (generate synthetic clips instead)")
                continue
            default = (root / DATABASE_DIR / f"{spec.name}_{spec.split}_db.pt" if spec.kind == "database"
                       else root / THREEDPW_DIR)
            path = inside(spec.path, root, f"{label}: path") if spec.path else default
            if not path.exists():
                hint = ("the VIBE / MAED / INT database file" if spec.kind == "database" else "the 3DPW folder")
                raise LaunchError(f"{label}: {path} not found (put {hint} there, choose dataset folders, or "
                                  "generate synthetic clips)")
