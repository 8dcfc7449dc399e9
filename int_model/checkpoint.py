"""Checkpoints: our own format, and the public INT code's checkpoints.

Own format (one ``torch.save`` dict, read with ``weights_only=True``)::

    {"format": "int-studio", "version": 1, "config": IntConfig.to_dict(), "state_dict": {...},
     "meta": {"body_model": ..., "phase": ..., "metrics": {...}, "created": ...}, "extra": {...}}

``extra`` holds training state (optimiser, scheduler, RNG, data position) when the trainer saves one.
Public INT checkpoints (a dict with ``state_dict``, maybe a ``module.`` prefix) load into the ``paper``
variant through one pure remapping function, :func:`remap_public_int_state_dict`.
"""

from __future__ import annotations

import datetime as _dt
import os
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .body_model import BodyModel
from .config import IntConfig, get_config
from .files import OutsideRootError, atomic_write, inside_root
from .model import IntModel, build_model

FORMAT = "int-studio"
VERSION = 1

#: The shipped demo model: the ``small`` variant trained by the project's cpu-demo phases on synthetic people
#: (``make train-demo``, then ``python -m cli.release``). The default of the app, the CLI and the reports.
DEMO_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "int-small-synthetic.pt"


#: File names a checkpoint may have (ours ``.pt``; the public code's ``.pth`` / ``.pth.tar``; others ``.ckpt``).
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".tar", ".ckpt")


def demo_checkpoint() -> Path | None:
    """The shipped demo checkpoint, or None where this copy of INT Studio has none."""
    return DEMO_CHECKPOINT if DEMO_CHECKPOINT.is_file() else None


def server_checkpoint(text: str | os.PathLike, roots: Sequence[str | os.PathLike]) -> Path:
    """A checkpoint path that a client typed, as the file it names inside one of ``roots``.

    A relative path is looked up under each root in turn (then under the working folder); whatever it names
    must resolve (``..`` and symlinks followed) inside a root. A path outside every root gets the same
    answer whether or not a file is there, so that clients cannot probe the server's files through it.
    Raises :class:`CheckpointError` with a one-line message.
    """
    raw = str(text).strip()
    path = Path(raw).expanduser()
    shown = ", ".join(str(Path(r)) for r in roots) or "(none)"
    if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise CheckpointError(f"{path.name or raw!r} is not a checkpoint: expected a file ending in "
                              f"{', '.join(CHECKPOINT_SUFFIXES)}")
    candidates = [path] if path.is_absolute() else [*(Path(r) / path for r in roots), Path.cwd() / path]
    inside = []
    for candidate in candidates:
        for root in roots:
            try:
                inside.append(inside_root(candidate, root, what="checkpoint"))
                break
            except OutsideRootError:
                continue
    if not inside:
        raise CheckpointError(f"checkpoint paths on the server must lie in one of the checkpoint folders ({shown}); "
                              "upload the file instead")
    for resolved in inside:
        if resolved.is_file():
            return resolved
    raise CheckpointError(f"no checkpoint {raw!r} in the checkpoint folders ({shown})")

# Renames from the public INT code's parameter names to ours (prefix -> prefix), applied in order.
PUBLIC_INT_RENAMES: tuple[tuple[str, str], ...] = (
    ("joint3d_tokens", "tokens.joints"),
    ("shape_token", "tokens.shape"),
    ("cam_token", "tokens.cam"),
    ("joint3d_head.", "heads.pose."),
    ("shape_head.", "heads.shape."),
    ("cam_head.", "heads.cam."),
    ("temporal_pos_embedding", "temporal_transformer.pos_embed"),
    ("temporal_transformer.", "temporal_transformer.blocks."),
)
# Public keys that have no counterpart here: the SMPL buffers (our body model is attached separately),
# the MAE-style mask token of an unused training option, and the ImageNet classifier leftovers.
PUBLIC_INT_DROPPED = (re.compile(r"^smpl\."), re.compile(r"^mask_token$"), re.compile(r"^(head|pre_logits)\."))

# numpy objects that public training scripts leave in their checkpoints (metrics as numpy scalars).
_NUMPY_SAFE_GLOBALS = [np.dtype, np.ndarray, np.float64, np.float32, np.int64, np.int32, np.bool_]
try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
    from numpy._core.multiarray import scalar as _np_scalar
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct
    from numpy.core.multiarray import scalar as _np_scalar
_NUMPY_SAFE_GLOBALS += [_np_reconstruct, _np_scalar, type(np.dtype(np.float64)), type(np.dtype(np.float32)),
                        type(np.dtype(np.int64))]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message says exactly why."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (in eval mode), where it came from, and what it carries."""

    model: IntModel
    path: Path
    source: str  # "int-studio" or "public-int"
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def config(self) -> IntConfig:
        return self.model.config


def save_checkpoint(
    path: str | os.PathLike,
    model: IntModel,
    *,
    meta: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (weights + config + metadata) atomically; returns the path.

    ``meta`` may carry e.g. ``phase``, ``metrics``, ``step``; the body model identity and a timestamp are added.
    """
    path = Path(path)
    meta = dict(meta or {})
    body = model.body_model
    recorded: dict[str, Any] = {"body_model": body.identity, "body_model_fingerprint": list(body.fingerprint)}
    if meta.get("body_model", body.identity) != body.identity and "body_model_fingerprint" not in meta:
        del recorded["body_model_fingerprint"]  # meta names another body model, whose fingerprint is unknown
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": {
            **recorded,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **meta,
        },
        "extra": extra or {},
    }
    atomic_write(path, lambda handle: torch.save(payload, handle))
    return path


def read_checkpoint_file(path: str | os.PathLike) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with clear errors; numpy scalars are allowed, nothing else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(_NUMPY_SAFE_GLOBALS):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own message suggests weights_only=False: the one thing never to do with a file of unknown origin.
        if "unsupported global" in str(exc).lower():
            raise CheckpointError(
                f"{path.name} holds Python objects besides tensors and plain values, which could run code when "
                "loaded, so INT Studio refuses it. Use a checkpoint written by INT Studio (save_checkpoint) or a "
                "plain state_dict saved with torch.save") from exc
        raise CheckpointError(f"{path.name} is not a PyTorch checkpoint (damaged, or a plain pickle or another kind "
                              "of file): choose a .pt file written by INT Studio or the public INT code") from exc
    except Exception as exc:  # noqa: BLE001 - a corrupt file can fail in many ways inside torch.load
        raise CheckpointError(f"{path.name} is not a PyTorch checkpoint (damaged or of another kind): choose "
                              "a .pt file written by INT Studio or the public INT code") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path.name} holds a {type(data).__name__}, not a checkpoint dict")
    return data


def is_public_int_state_dict(state: dict[str, Any]) -> bool:
    return any(k.removeprefix("module.") == "joint3d_tokens" for k in state)


def remap_public_int_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Public INT parameter names -> ours (pure). Strips ``module.``, drops keys listed in PUBLIC_INT_DROPPED."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if any(p.search(key) for p in PUBLIC_INT_DROPPED):
            continue
        for old, new in PUBLIC_INT_RENAMES:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def public_int_config(state: dict[str, torch.Tensor], **overrides: Any) -> IntConfig:
    """The ``paper`` config adjusted to what a remapped public state dict holds: numbers of spatial and temporal
    blocks, and the temporal embedding length (16 or 64 in the public checkpoints). Head counts cannot be read
    from weights; the paper's 12 is assumed unless overridden."""

    def count(prefix: str) -> int:
        found = {int(m.group(1)) for k in state if (m := re.match(rf"{re.escape(prefix)}(\d+)\.", k))}
        return max(found) + 1 if found else 0

    inferred: dict[str, Any] = {"depth": count("blocks."), "temporal_depth": count("temporal_transformer.blocks.")}
    if "temporal_transformer.pos_embed" in state:
        inferred["temporal_len"] = int(state["temporal_transformer.pos_embed"].shape[1])
    return get_config("paper", **{**inferred, **overrides})


def _check_fit(model: IntModel, state: dict[str, torch.Tensor], source: str) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if not (missing or unexpected or shapes):
        return

    def listing(title: str, items: list[str]) -> str:
        shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
        return f"{title}: {shown}"

    problems = (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes))
    details = "; ".join(listing(title, items) for title, items in problems if items)
    raise CheckpointError(f"the {source} checkpoint does not fit the {model.config.variant} model: {details}")


def load_checkpoint(
    path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    body_model: BodyModel | None = None,
    smpl_dir: str | None = None,
    **overrides: Any,
) -> Checkpoint:
    """Load an INT Studio checkpoint or a public INT checkpoint into a model in eval mode.

    ``overrides`` replace config fields (for public checkpoints e.g. ``temporal_heads=1`` when the
    checkpoint was trained with the public code's default of one temporal head). Raises
    :class:`CheckpointError` naming the mismatched keys and shapes when the weights do not fit.
    """
    path = Path(path)
    data = read_checkpoint_file(path)
    if data.get("format") == FORMAT:
        if data.get("version", 0) > VERSION:
            raise CheckpointError(f"{path.name} was written by a newer INT Studio (format version {data['version']})")
        config = IntConfig.from_dict({**data["config"], **overrides})
        state, source, meta, extra = data["state_dict"], FORMAT, dict(data.get("meta", {})), dict(data.get("extra", {}))
    else:
        raw = data.get("state_dict", data.get("model", data))
        if not isinstance(raw, dict) or not is_public_int_state_dict(raw):
            raise CheckpointError(
                f"{path.name} is neither an INT Studio checkpoint nor a public INT checkpoint "
                "(no 'joint3d_tokens' among its keys)"
            )
        state = remap_public_int_state_dict(raw)
        config = public_int_config(state, **overrides)
        source = "public-int"
        meta = {k: v for k, v in data.items() if k not in ("state_dict", "model", "optimizer") and _is_plain(v)}
        extra = {}
    model = build_model(config, body_model=body_model, smpl_dir=smpl_dir)
    _check_fit(model, state, source)
    model.load_state_dict(state, strict=True)
    warnings = []
    trained_with = meta.get("body_model")
    if not model.body_model.matches(trained_with, meta.get("body_model_fingerprint")):
        warnings.append(
            f"checkpoint trained with body model {trained_with}, running with {model.body_model.identity}: "
            "the pose is comparable, the shape space may not be"
        )
    return Checkpoint(model=model.to(device).eval(), path=path, source=source, meta=meta, extra=extra,
                      warnings=warnings)


def _is_plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or (isinstance(value, np.generic) and value.size == 1)
