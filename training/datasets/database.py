"""The preprocessed database files of VIBE / MAED / the public INT code, and SPIN's ``.npz`` files.

**Database files** (``<name>_<split>_db.pt``, written by ``joblib.dump`` in VIBE's / MAED's
``lib/data_utils/*_utils.py``; a plain pickle works too): a dict of per-frame arrays, N rows:

==============  ===================  ========================================================================
key             shape                meaning
==============  ===================  ========================================================================
``vid_name``    (N,) str             video (and person) of each row; rows of a video are contiguous (videos)
``frame_id``    (N,) int             frame number in the video (optional)
``img_name``    (N,) str             image path as the preprocessing wrote it (resolved under ``image_root``)
``joints2D``    (N, J, 3)            2D joints in image pixels + confidence; J = 49 (SPIN), 14, 24 or 25 (insta)
``joints3D``    (N, J, 3 or 4)       3D joints in metres (+ a 0/1 label flag as 4th column), optional
``pose``        (N, 72) / (N,24,3,3) SMPL pose, camera frame (axis-angle or rotation matrices), optional
``shape``       (N, 10)              SMPL betas, optional
``bbox``        (N, 4)               (cx, cy, w, h) in pixels; absent for InstaVariety (images are crops)
``valid``...    (N,)                 per-frame flags (3DPW: camera pose aligned; MPI-INF-3DHP test: ``valid_i``)
``features``    (N, 2048)            ignored
==============  ===================  ========================================================================

**SPIN ``.npz`` files** (SPIN's ``datasets/preprocess``, and the EFT fits in that format): ``imgname`` (N,),
``center`` (N, 2), ``scale`` (N,) = box size / 200, ``part`` (N, 24, 3) in SPIN's 24-joint layout,
optional ``openpose`` (N, 25, 3), ``S`` (N, 24, 4), ``pose``, ``shape``, ``has_smpl`` (N,). Each row is an
image (its own sequence).

One generic reader, parametrised per dataset by :data:`DATASETS` (which labels the file holds and how its joints
map, see :mod:`training.datasets.joints`). 2D joints with confidence above :data:`VISIBILITY_THRESHOLD` are
labels; 3D joints are labels where the 4th column is positive, or (3 columns) where any coordinate is non-zero.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from int_model.body_model import RefusedGlobalError, allowed_global, restricted_load
from int_model.constants import NUM_BETAS, NUM_JOINTS
from int_model.files import OutsideRootError, inside_root
from int_model.geometry import rotmat_to_axis_angle

from ..augment import AugmentConfig
from ..sample import POSE_DIM
from .base import FULL_IMAGE_BOX, ClipDataset, DatasetFileError, FrameTable
from .joints import layout_for, map_joints

# 2D joints with at most this confidence are not labels (VIBE's threshold).
VISIBILITY_THRESHOLD = 0.3
# SPIN stores the box size divided by 200.
SPIN_SCALE_UNIT = 200.0
DB_FILE_PATTERN = "{name}_{split}_db.pt"
# Keys of the database files that the readers do not use (precomputed image features).
IGNORED_KEYS = frozenset({"features"})
VIBE_MAED_SCRIPTS = "created by VIBE's / MAED's preprocessing scripts (lib/data_utils/*_utils.py)"


@dataclass(frozen=True)
class DatabaseSpec:
    """How to read one dataset's database file.

    Attributes:
        name: short name (file names ``<name>_<split>_db.pt``, the ``dataset`` of its samples).
        title: the dataset's own name.
        video: rows form videos (``vid_name``); otherwise each row is an image.
        smpl_labels: the file's ``pose`` / ``shape`` are labels (MoSh, EFT or 3DPW fits); otherwise ignored.
        joints2d_layout, joints3d_layout: joint layout names, or None to infer from the joint count.
        whole_image: the images are person crops already (no ``bbox``): the crop is the whole image.
        valid_key: a per-frame 0/1 key that masks the 3D and SMPL labels (3DPW: camera pose not aligned;
            MPI-INF-3DHP test: frames the benchmark leaves out).
        source: where the dataset itself comes from (for the error when a file is missing).
    """

    name: str
    title: str
    video: bool
    smpl_labels: bool
    source: str
    joints2d_layout: str | None = None
    joints3d_layout: str | None = None
    whole_image: bool = False
    valid_key: str | None = None

    def where_to_get(self, *, npz: bool = False) -> str:
        made_by = "SPIN's datasets/preprocess scripts" if npz else VIBE_MAED_SCRIPTS
        return f"{self.title}: the file is {made_by}, from the dataset at {self.source}"


DATASETS: dict[str, DatabaseSpec] = {
    spec.name: spec
    for spec in (
        DatabaseSpec(name="h36m", title="Human3.6M", video=True, smpl_labels=True,
                     source="vision.imar.ro/human3.6m (licence required)"),
        DatabaseSpec(name="mpii3d", title="MPI-INF-3DHP", video=True, smpl_labels=False,
                     source="gvv.mpi-inf.mpg.de/3dhp-dataset", valid_key="valid_i"),
        DatabaseSpec(name="3dpw", title="3DPW", video=True, smpl_labels=True,
                     source="virtualhumans.mpi-inf.mpg.de/3DPW", valid_key="valid"),
        DatabaseSpec(name="pennaction", title="PennAction", video=True, smpl_labels=False,
                     source="dreamdragon.github.io/PennAction"),
        DatabaseSpec(name="posetrack", title="PoseTrack", video=True, smpl_labels=False, source="posetrack.net"),
        DatabaseSpec(name="insta", title="InstaVariety", video=True, smpl_labels=False, whole_image=True,
                     joints2d_layout="insta25",
                     source="Temporal HMR's tfrecords (github.com/akanazawa/human_dynamics), frames extracted by "
                            "MAED's scripts/prepare_insta.sh"),
        DatabaseSpec(name="coco", title="COCO 2014 with EFT fits", video=False, smpl_labels=True,
                     source="cocodataset.org, EFT fits from github.com/facebookresearch/eft"),
        DatabaseSpec(name="mpii", title="MPII with EFT fits", video=False, smpl_labels=True,
                     source="human-pose.mpi-inf.mpg.de, EFT fits from github.com/facebookresearch/eft"),
        DatabaseSpec(name="lspet", title="LSPET with EFT fits", video=False, smpl_labels=True,
                     source="sam.johnson.io/research/lspet.html, EFT fits from github.com/facebookresearch/eft"),
    )
}


def get_spec(name: str | DatabaseSpec) -> DatabaseSpec:
    """A :data:`DATASETS` entry by name (or the spec itself)."""
    if isinstance(name, DatabaseSpec):
        return name
    if name not in DATASETS:
        raise ValueError(f"unknown database {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


# ------------------------------------------------------------------------------------------------ file reading
def _restricted_joblib_load(path: Path) -> Any:
    """A ``joblib.dump`` file read without running code: joblib's own unpickler (its array wrappers, any
    compression) with the allow-list of :func:`int_model.body_model.allowed_global` for every global, the
    arrays of object dtype included (joblib routes their nested pickles through the same ``find_class``).

    joblib < 0.10 files (companion ``.npy`` files named inside the pickle) are refused: the names would let a
    file read any path on the server."""
    from joblib import numpy_pickle

    what = f"the database file {path.name}"

    class RestrictedJoblibUnpickler(numpy_pickle.NumpyUnpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
                return numpy_pickle.NumpyArrayWrapper
            return allowed_global(module, name, what=what)

    with path.open("rb") as raw, numpy_pickle._validate_fileobject_and_memmap(raw, str(path), None) as (handle, _):
        if isinstance(handle, str):
            raise ValueError(f"{path}: a joblib file older than joblib 0.10 (companion .npy files); re-save it "
                             "with a current joblib or as .npz")
        return RestrictedJoblibUnpickler(str(path), handle, ensure_native_byte_order=True).load()


def _load_pickle_or_joblib(path: Path, spec: DatabaseSpec) -> Any:
    """A database file: a plain pickle or a joblib dump, both through an allow-list (numpy arrays and plain
    Python values), so that a file cannot run code; nothing else is tried."""
    try:
        with path.open("rb") as handle:
            return restricted_load(handle, what=f"the database file {path.name}")
    except (pickle.UnpicklingError, EOFError, ValueError):
        # Not a plain pickle of allowed globals: joblib dumps name joblib's array wrapper, which only the joblib
        # reader below accepts (a refused global is an UnpicklingError too).
        pass
    try:
        return _restricted_joblib_load(path)
    except RefusedGlobalError as exc:
        raise DatasetFileError(f"{path.name}: {exc}; the {spec.title} database files {VIBE_MAED_SCRIPTS} hold only "
                         "arrays") from None
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise DatasetFileError(f"{path.name} is not a readable {spec.title} database file (a pickle or joblib dump of "
                         f"a dict of arrays): {exc}") from None


def load_database(path: str | os.PathLike, spec: str | DatabaseSpec) -> dict[str, np.ndarray]:
    """A database (``*_db.pt``, joblib or pickle) or SPIN ``.npz`` file as a dict of numpy arrays."""
    spec = get_spec(spec)
    path = Path(path)
    npz = path.suffix == ".npz"
    if not path.is_file():
        raise FileNotFoundError(f"{spec.title} database file {path} not found. {spec.where_to_get(npz=npz)}")
    if npz:
        with np.load(path, allow_pickle=False) as data:
            return {key: np.asarray(data[key]) for key in data.files}
    data = _load_pickle_or_joblib(path, spec)
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a dict of arrays, found {type(data).__name__}")
    return {str(key): np.asarray(value) for key, value in data.items() if key not in IGNORED_KEYS}


def spin_npz_to_database(data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """SPIN ``.npz`` keys -> database keys (``img_name``, ``bbox``, 49-joint ``joints2D`` / ``joints3D``...)."""
    for key in ("imgname", "center", "scale", "part"):
        if key not in data:
            raise ValueError(f"not a SPIN .npz file: no {key!r} (has {', '.join(sorted(data))})")
    n = len(data["imgname"])
    size = np.asarray(data["scale"], dtype=np.float64).reshape(n) * SPIN_SCALE_UNIT
    out: dict[str, np.ndarray] = {
        "img_name": np.asarray(data["imgname"]).astype(str),
        "bbox": np.concatenate([np.asarray(data["center"], dtype=np.float64).reshape(n, 2),
                                size[:, None], size[:, None]], axis=1),
    }
    joints2d = np.zeros((n, 49, 3))
    joints2d[:, 25:] = data["part"]
    if "openpose" in data:
        joints2d[:, :25] = data["openpose"]
    out["joints2D"] = joints2d
    if "S" in data:
        joints3d = np.zeros((n, 49, 4))
        joints3d[:, 25:] = data["S"]
        out["joints3D"] = joints3d
    for key in ("pose", "shape", "has_smpl"):
        if key in data:
            out[key] = np.asarray(data[key])
    return out


class ImagePathResolver:
    """Finds the image files a database names, under ``image_root``.

    Database files hold the paths the preprocessing machine used (often absolute, or relative to its data
    folder). A name is tried under ``image_root`` with 0, 1, 2... leading components removed; the first number
    of components that works is remembered for the next names. Whatever a name says, only files inside
    ``image_root`` (after resolving ``..`` and symlinks) are ever opened.
    """

    def __init__(self, image_root: str | os.PathLike) -> None:
        self.image_root = Path(image_root)
        self.strip: int | None = None

    @staticmethod
    def _parts(name: str) -> tuple[str, ...]:
        parts = Path(name).parts
        return parts[1:] if Path(name).is_absolute() else parts

    def candidates(self, name: str) -> list[Path]:
        parts = self._parts(name)
        order = list(range(len(parts)))
        if self.strip is not None and self.strip < len(parts):
            order.remove(self.strip)
            order.insert(0, self.strip)
        return [self.image_root.joinpath(*parts[k:]) for k in order]

    def __call__(self, name: str) -> str:
        parts = self._parts(name)
        for candidate in self.candidates(name):
            if not candidate.is_file():
                continue
            try:  # resolved only once found: this runs for every image a training step reads
                inside_root(candidate, self.image_root, what="image")
            except OutsideRootError:
                continue
            self.strip = len(parts) - len(candidate.relative_to(self.image_root).parts)
            return str(candidate)
        return str(self.image_root / Path(*parts))  # missing: the reader's error names this path


# -------------------------------------------------------------------------------------------------- the reader
def _labelled_3d(joints3d: np.ndarray) -> np.ndarray:
    if joints3d.shape[-1] >= 4:
        return joints3d[..., 3] > 0
    return np.any(joints3d[..., :3] != 0, axis=-1)


def _axis_angle(pose: np.ndarray) -> np.ndarray:
    """(N, 72) axis-angle or (N, 24, 3, 3) rotation matrices -> (N, 72) float32 axis-angle."""
    if pose.ndim == 4 or (pose.ndim == 2 and pose.shape[1] == NUM_JOINTS * 9):
        rotmat = torch.from_numpy(pose.reshape(-1, NUM_JOINTS, 3, 3).astype(np.float64))
        return rotmat_to_axis_angle(rotmat).reshape(-1, POSE_DIM).numpy().astype(np.float32)
    return pose.reshape(-1, POSE_DIM).astype(np.float32)


def _frame_numbers(sequence: np.ndarray) -> np.ndarray:
    """0, 1, 2... inside each run of equal sequence names."""
    n = len(sequence)
    starts = np.flatnonzero(np.concatenate(([True], sequence[1:] != sequence[:-1]))) if n else np.zeros(0, int)
    run_start = np.repeat(starts, np.diff(np.concatenate((starts, [n]))))
    return np.arange(n) - run_start


def database_to_table(db: Mapping[str, np.ndarray], spec: str | DatabaseSpec) -> FrameTable:
    """Database arrays (see the module table) -> a :class:`FrameTable` in our slots. Its image names are the
    file's, resolved when read (:class:`ImagePathResolver`)."""
    spec = get_spec(spec)
    for key in ("img_name", "joints2D"):
        if key not in db:
            raise ValueError(f"{spec.title} database has no {key!r} (keys: {', '.join(sorted(db))})")
    if not spec.whole_image and "bbox" not in db:
        raise ValueError(f"{spec.title} database has no 'bbox' (keys: {', '.join(sorted(db))})")
    n = len(db["img_name"])
    table = FrameTable.empty(n)
    table.image_paths[:] = np.asarray(db["img_name"]).astype(str)
    if spec.video:
        if "vid_name" not in db:
            raise ValueError(f"{spec.title} is a video dataset but its database has no 'vid_name'")
        table.sequence[:] = np.asarray(db["vid_name"]).astype(str)
        table.frame_index[:] = db["frame_id"] if "frame_id" in db else _frame_numbers(table.sequence)
    else:
        table.sequence[:] = np.asarray(db["img_name"]).astype(str)
        table.frame_index[:] = 0
    if not spec.whole_image:
        table.bbox[:] = np.asarray(db["bbox"], dtype=np.float32).reshape(n, 4)
    else:
        table.bbox[:] = FULL_IMAGE_BOX

    joints2d = np.asarray(db["joints2D"], dtype=np.float64)
    layout = layout_for(joints2d.shape[1], spec.joints2d_layout)
    table.joints2d[:], table.joints2d_vis[:] = map_joints(
        joints2d[..., :2], joints2d[..., 2] > VISIBILITY_THRESHOLD, layout=layout, target="smpl24"
    )

    frame_ok = np.ones(n, dtype=bool)
    if spec.valid_key is not None and spec.valid_key in db:
        frame_ok = np.asarray(db[spec.valid_key]).reshape(n) > 0
    if "joints3D" in db:
        joints3d = np.asarray(db["joints3D"], dtype=np.float64)
        layout3d = layout_for(joints3d.shape[1], spec.joints3d_layout)
        labelled = _labelled_3d(joints3d) & frame_ok[:, None]
        table.joints3d[:], table.joints3d_vis[:] = map_joints(joints3d[..., :3], labelled, layout=layout3d,
                                                              target="smpl24", openpose=False)
        table.joints3d_h36m[:], table.joints3d_h36m_vis[:] = map_joints(joints3d[..., :3], labelled,
                                                                        layout=layout3d, target="h36m17")
    if spec.smpl_labels and "pose" in db:
        has_smpl = np.asarray(db["has_smpl"]).reshape(n) > 0 if "has_smpl" in db else np.ones(n, dtype=bool)
        has_smpl &= frame_ok
        table.pose[:] = np.where(has_smpl[:, None], _axis_angle(np.asarray(db["pose"])), 0.0)
        table.has_pose[:] = has_smpl
        if "shape" in db:
            betas = np.asarray(db["shape"], dtype=np.float32).reshape(n, -1)[:, :NUM_BETAS]
            table.betas[:, : betas.shape[1]] = np.where(has_smpl[:, None], betas, 0.0)
            table.has_betas[:] = has_smpl
    return table


def database_path(db_dir: str | os.PathLike, spec: str | DatabaseSpec, split: str) -> Path:
    """``<db_dir>/<name>_<split>_db.pt``."""
    return Path(db_dir) / DB_FILE_PATTERN.format(name=get_spec(spec).name, split=split)


def read_database(path: str | os.PathLike, spec: str | DatabaseSpec) -> FrameTable:
    """Read a database or SPIN ``.npz`` file into a :class:`FrameTable` (image names as the file has them)."""
    spec = get_spec(spec)
    db = load_database(path, spec)
    if Path(path).suffix == ".npz":
        db = spin_npz_to_database(db)
    return database_to_table(db, spec)


class DatabaseDataset(ClipDataset):
    """Clips (``clip_len`` frames every ``stride``; never across a ``vid_name``) or images from a database file.

    Args:
        spec: a :data:`DATASETS` name (``"h36m"``, ``"mpii3d"``, ``"3dpw"``, ``"pennaction"``, ``"posetrack"``,
            ``"insta"``, ``"coco"``, ``"mpii"``, ``"lspet"``) or a :class:`DatabaseSpec`.
        path: the database / ``.npz`` file (default ``<db_dir>/<name>_<split>_db.pt``).
        image_root: the folder the file's image names are resolved under.
        Other arguments: see :class:`~training.datasets.base.ClipDataset`; phase 2 uses ``clip_len=16,
        stride=8``.
    """

    def __init__(
        self,
        spec: str | DatabaseSpec,
        *,
        image_root: str | os.PathLike,
        path: str | os.PathLike | None = None,
        db_dir: str | os.PathLike | None = None,
        split: str = "train",
        clip_len: int = 1,
        stride: int | None = None,
        img_size: int = 224,
        train: bool | None = None,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        cover_tail: bool = False,
    ) -> None:
        spec = get_spec(spec)
        if path is None:
            if db_dir is None:
                raise ValueError("give the database file (path=) or the folder holding it (db_dir=)")
            path = database_path(db_dir, spec, split)
        if not spec.video and clip_len != 1:
            raise ValueError(f"{spec.title} is an image dataset: clip_len must be 1, not {clip_len}")
        train = split == "train" if train is None else train
        super().__init__(
            table=read_database(path, spec), name=spec.name, clip_len=clip_len,
            stride=stride, img_size=img_size, augment=augment, train=train, seed=seed,
            missing_hint=f"{spec.title}: images come from {spec.source}; point image_root at the folder the "
                         "database's image names are relative to",
            cover_tail=cover_tail, resolve_path=ImagePathResolver(image_root),
        )
        self.spec = spec
