"""Which model to run, named once: a checkpoint file, a fresh variant, or the shipped demo model.

:class:`ModelKey` is that name. The app keeps it in Gradio state and dropdowns as text (``str(key)``, read back
with :meth:`ModelKey.parse`); everything else passes the object. :func:`load_model` turns any key into a model
in eval mode, with the one fallback the CLI, the app and the reports share: the demo model where this copy of
INT Studio ships it, else a freshly initialised ``small`` model, which says that it is untrained.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from .body_model import BodyModel, load_body_model
from .checkpoint import demo_checkpoint, load_checkpoint
from .config import VARIANTS
from .model import IntModel, build_model

#: The variant run when the demo model is asked for and this copy ships none (fresh weights, meaningless results).
UNTRAINED_VARIANT = "small"
#: Seed of a fresh model's initial weights, so that the same untrained model comes back every time.
UNTRAINED_SEED = 0

Kind = Literal["checkpoint", "variant", "demo"]
# The text form's prefixes; "fresh:" is the variant's, as the app's API has always spelt it.
_PREFIX = {"checkpoint": "checkpoint:", "variant": "fresh:"}


@dataclass(frozen=True)
class ModelKey:
    """A model to run: ``checkpoint`` (``value`` is the file's path), ``variant`` (``value`` is a variant name,
    fresh weights) or ``demo`` (the shipped demo model, no value)."""

    kind: Kind
    value: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("checkpoint", "variant", "demo"):
            raise ValueError(f"unknown model kind {self.kind!r}: expected checkpoint, variant or demo")
        if self.kind == "variant" and self.value not in VARIANTS:
            raise ValueError(f"unknown variant {self.value!r}; choose one of {', '.join(VARIANTS)}")
        if self.kind == "checkpoint" and not self.value:
            raise ValueError("a checkpoint key needs the checkpoint's path")

    @classmethod
    def checkpoint(cls, path: str | os.PathLike) -> ModelKey:
        """The checkpoint at ``path`` (resolved, so that one file is one key)."""
        return cls("checkpoint", str(Path(path).expanduser().resolve()))

    @classmethod
    def variant(cls, name: str) -> ModelKey:
        return cls("variant", name)

    @classmethod
    def demo(cls) -> ModelKey:
        return cls("demo")

    @classmethod
    def choose(cls, *, checkpoint: str | os.PathLike | None = None, variant: str | None = None) -> ModelKey:
        """What a command line asks for: ``checkpoint``, else an untrained ``variant`` when one is named, else the
        shipped demo model."""
        if checkpoint:
            return cls.checkpoint(checkpoint)
        return cls.variant(variant) if variant else cls.demo()

    @classmethod
    def parse(cls, text: str) -> ModelKey:
        """The key written by ``str(key)``: ``checkpoint:<path>``, ``fresh:<variant>`` or ``demo``."""
        text = str(text).strip()
        if text == "demo":
            return cls.demo()
        for kind, prefix in _PREFIX.items():
            if text.startswith(prefix):
                return cls(kind, text.removeprefix(prefix))  # type: ignore[arg-type]
        raise ValueError(f"not a model key: {text!r} (expected checkpoint:<path>, fresh:<variant> or demo)")

    @property
    def path(self) -> Path | None:
        return Path(self.value) if self.kind == "checkpoint" else None

    def __str__(self) -> str:
        return "demo" if self.kind == "demo" else _PREFIX[self.kind] + self.value


@dataclass
class LoadedModel:
    """A model in eval mode and what it is: ``key`` is what was loaded (a ``demo`` key resolved to the demo's
    checkpoint, or to the untrained variant where none ships)."""

    model: IntModel
    key: ModelKey
    source: str  # "int-studio" / "public-int" (a checkpoint file) or "fresh" (initial weights)
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    demo: bool = False  # the shipped demo model was asked for

    @property
    def checkpoint(self) -> Path | None:
        return self.key.path

    @property
    def untrained(self) -> bool:
        return self.key.kind == "variant"


def load_model(key: ModelKey, *, device: str | torch.device = "cpu", body_model: BodyModel | None = None,
               smpl_dir: str | None = None) -> LoadedModel:
    """The model ``key`` names, in eval mode on ``device``.

    Raises:
        CheckpointError / FileNotFoundError: the checkpoint cannot be read or does not fit.
        SmplFileError: ``smpl_dir`` holds no usable SMPL model.
    """
    if body_model is None:
        body_model = load_body_model(smpl_dir)
    asked_demo = key.kind == "demo"
    if asked_demo:
        demo = demo_checkpoint()
        key = ModelKey.checkpoint(demo) if demo is not None else ModelKey.variant(UNTRAINED_VARIANT)
    if key.kind == "checkpoint":
        ckpt = load_checkpoint(key.value, device=device, body_model=body_model)
        return LoadedModel(model=ckpt.model, key=key, source=ckpt.source, meta=ckpt.meta, warnings=ckpt.warnings,
                           demo=asked_demo)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        model = build_model(key.value, body_model=body_model)
    return LoadedModel(model=model.to(device).eval(), key=key, source="fresh", demo=asked_demo)
