"""Synthetic training data: the body model in procedural motion, rendered with full labels.

* :mod:`~training.synthetic.motions` - periodic motions with a known period (walk, run, jumping jacks, squat,
  arm wave) and smooth non-periodic motion, inside one table of joint ranges.
* :mod:`~training.synthetic.scene` - people, lighting, rendering and labels
  (:func:`~training.synthetic.scene.render_clip`), with :mod:`~training.synthetic.camera` (the pinhole and crop
  cameras) and :mod:`~training.synthetic.clothing` (skin, hair and clothes colours);
  :mod:`~training.synthetic.backgrounds` and :mod:`~training.synthetic.occluders` draw what is around them.
* :mod:`~training.synthetic.generate` - deterministic clips written as shards in parallel workers;
  ``python -m cli.synthetic --out DIR --clips N --frames T --seed S``.
* :mod:`~training.synthetic.dataset` - :class:`SyntheticDataset`, the shards as samples of :mod:`training.sample`.
* :mod:`~training.synthetic.preview` - contact sheets.

Parameters live in one frozen dataclass, :class:`~training.synthetic.config.SyntheticConfig`.
"""

from .camera import Camera
from .config import GENERATOR_VERSION, SyntheticConfig
from .dataset import SyntheticDataset, dataset_summary
from .generate import ensure_dataset, generate_clip, generate_dataset, read_manifest
from .motions import MOTION_NAMES, PERIODIC_MOTIONS, Motion, periodic_motion, random_motion
from .scene import PersonLabels, PersonSpec, RenderedClip, render_clip, sample_scene

__all__ = [
    "GENERATOR_VERSION",
    "MOTION_NAMES",
    "PERIODIC_MOTIONS",
    "Camera",
    "Motion",
    "PersonLabels",
    "PersonSpec",
    "RenderedClip",
    "SyntheticConfig",
    "SyntheticDataset",
    "dataset_summary",
    "ensure_dataset",
    "generate_clip",
    "generate_dataset",
    "periodic_motion",
    "random_motion",
    "read_manifest",
    "render_clip",
    "sample_scene",
]
