"""Readers for the real datasets' published files, each a ``torch.utils.data.Dataset`` of samples
(:mod:`training.sample`) sharing :class:`~training.datasets.base.ClipDataset`.

* :class:`ThreeDPW` — 3DPW sequence pickles (``sequenceFiles/``, ``imageFiles/``).
* :class:`DatabaseDataset` — the VIBE / MAED / INT database files (``<name>_<split>_db.pt``) and SPIN ``.npz``
  files for Human3.6M, MPI-INF-3DHP, 3DPW, PennAction, PoseTrack, InstaVariety, COCO / MPII / LSPET (EFT).
"""

from .base import ClipDataset, ClipIndex, DatasetFileError, FrameTable, split_into_clips
from .database import DATASETS, DatabaseDataset, DatabaseSpec, read_database
from .joints import JOINT_LAYOUTS, map_joints
from .threedpw import ThreeDPW, read_3dpw

__all__ = [
    "DATASETS",
    "JOINT_LAYOUTS",
    "ClipDataset",
    "ClipIndex",
    "DatabaseDataset",
    "DatabaseSpec",
    "DatasetFileError",
    "FrameTable",
    "ThreeDPW",
    "map_joints",
    "read_3dpw",
    "read_database",
    "split_into_clips",
]
