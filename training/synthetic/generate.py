"""Generating a synthetic dataset: clips rendered in worker processes, written as shards, with a manifest.

Determinism: clip ``i`` of a dataset with seed ``S`` is drawn from ``numpy.random.default_rng([S, i])`` and
nothing else (:func:`generate_clip`), so any clip can be regenerated alone, whatever the number of workers.

On disk (``out_dir``):

* ``shard_XXXXX.npz`` - the labels of ``clips_per_shard`` consecutive clips (:data:`SHARD_KEYS`), float32 unless
  stated; tracks (one person in one clip) are rows ``N``, frames ``T``.
* ``shard_XXXXX.frames.npy`` - the frames: ``'jpeg'`` format: all JPEG files of the shard concatenated (uint8,
  1-D; frame ``k = clip * T + t`` is ``bytes[frame_offsets[k]:frame_offsets[k + 1]]``); ``'raw'``: (C, T, H, W, 3)
  uint8 RGB. Memory-mappable.
* ``manifest.json`` - counts, seed, resolution, generator version, the full configuration, the body model
  identity, the shards; written last. Every file is written atomically (temporary name, then renamed), so an
  interrupted run leaves complete shards that a rerun with the same request keeps.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from int_model.body_model import BodyModel, load_body_model
from int_model.files import atomic_write
from viz.renderer import Renderer, ensure_gl_platform

from .backgrounds import list_background_images
from .config import GENERATOR_VERSION, SyntheticConfig
from .scene import RenderedClip, render_scene, sample_scene

MANIFEST_NAME = "manifest.json"
FRAME_FORMATS: tuple[str, ...] = ("jpeg", "raw")
DEFAULT_CLIPS_PER_SHARD = 16
MOTION_NAME_DTYPE = "<U16"
#: Keys of a shard's ``.npz`` and their meaning (C clips, N tracks, T frames).
SHARD_KEYS: dict[str, str] = {
    "clip_index": "(C,) int64 global clip number",
    "intrinsics": "(C, 3, 3) camera matrix (pixels; principal point at the image centre)",
    "extrinsics": "(C, 3, 4) [R | t] world (y up, floor y = 0) -> camera (x right, y down, z forward)",
    "background_kind": "(C,) str",
    "frame_offsets": "(C * T + 1,) int64 byte offsets into the frames file ('jpeg' format only)",
    "track_clip": "(N,) int64 clip of each track, an index into this shard's clips",
    "track_person": "(N,) int64 person number inside its clip",
    "motion": "(N,) str motion name",
    "period": "(N,) period in frames, NaN for non-periodic motion",
    "betas": "(N, 10)",
    "pose": "(N, T, 72) SMPL axis-angle, camera frame",
    "transl": "(N, T, 3) camera-frame vertices = SMPL(pose, betas) + transl",
    "joints3d": "(N, T, 24, 3) camera frame, metres",
    "joints3d_h36m": "(N, T, 17, 3) camera frame, metres (zeros where has_h36m is False)",
    "has_h36m": "(N,) bool",
    "joints2d": "(N, T, 24, 2) pixels",
    "in_image": "(N, T, 24) bool",
    "occluded": "(N, T, 24) bool (an occluder or another person covers the joint)",
    "bbox": "(N, T, 4) (cx, cy, w, h) pixels of the projected vertices",
    "crop_cam": "(N, T, 3) weak-perspective (s, tx, ty) of the crop at scale 1.1 around bbox (exact at the trunk's "
                "depth)",
    "visible_fraction": "(N, T) fraction of the person seen",
    "request_key": "() str, the hash of the generation request the shard belongs to",
}


@dataclass(frozen=True)
class GenerationRequest:
    """What a dataset is: everything that determines its content.

    Attributes:
        num_clips, num_frames, seed, num_people: clips of T frames with this many people each, from this seed.
        config: the generator's parameters.
        frame_format: ``'jpeg'`` or ``'raw'``.
        clips_per_shard: clips per shard file.
        backgrounds: the user's background images (sorted paths), empty for procedural backgrounds only.
        body_model: identity string of the body model.
    """

    num_clips: int
    num_frames: int
    seed: int
    num_people: int
    config: SyntheticConfig
    frame_format: str
    clips_per_shard: int
    backgrounds: tuple[str, ...]
    body_model: str

    def __post_init__(self) -> None:
        if self.num_clips < 1 or self.num_frames < 1 or self.num_people < 1 or self.clips_per_shard < 1:
            raise ValueError(f"clips, frames, people and clips per shard must be >= 1: {self}")
        if self.frame_format not in FRAME_FORMATS:
            raise ValueError(f"frame_format must be one of {FRAME_FORMATS}, got {self.frame_format!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "generator_version": GENERATOR_VERSION, "num_clips": self.num_clips, "num_frames": self.num_frames,
            "seed": self.seed, "num_people": self.num_people, "frame_format": self.frame_format,
            "clips_per_shard": self.clips_per_shard, "body_model": self.body_model,
            "backgrounds": {"count": len(self.backgrounds), "hash": _hash_files(self.backgrounds)},
            "config": self.config.to_dict(),
        }

    @property
    def key(self) -> str:
        """A hash of :meth:`to_dict` (without the clip count, so that a longer dataset keeps the shorter's shards)."""
        data = self.to_dict()
        data.pop("num_clips")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def shard_ranges(self) -> list[tuple[int, int]]:
        """[first, stop) clip numbers of each shard."""
        return [(start, min(start + self.clips_per_shard, self.num_clips))
                for start in range(0, self.num_clips, self.clips_per_shard)]


def _hash_files(paths: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{Path(path).name}:{stat.st_size}\n".encode())
    return digest.hexdigest()[:16]


def shard_name(index: int) -> str:
    return f"shard_{index:05d}"


def clip_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of clip ``index`` of a dataset with seed ``seed``."""
    return np.random.default_rng([int(seed), int(index)])


def generate_clip(
    *,
    index: int,
    seed: int,
    num_frames: int,
    num_people: int,
    config: SyntheticConfig,
    body_model: BodyModel,
    renderer: Renderer,
    background_images: Sequence[str | Path] = (),
) -> RenderedClip:
    """Render clip ``index`` of the dataset with seed ``seed`` (deterministic; independent of other clips)."""
    scene = sample_scene(clip_rng(seed, index), config=config, num_frames=num_frames, num_people=num_people,
                         body_model=body_model, background_images=background_images)
    return render_scene(scene, body_model=body_model, renderer=renderer)


def encode_frames(frames: np.ndarray, *, frame_format: str, jpeg_quality: int) -> list[bytes] | np.ndarray:
    """(T, H, W, 3) uint8 RGB -> a list of T JPEG files (``'jpeg'``) or the array itself (``'raw'``)."""
    if frame_format == "raw":
        return frames
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    out = []
    for frame in frames:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        out.append(data.tobytes())
    return out


def decode_jpeg(data: np.ndarray | bytes) -> np.ndarray:
    """JPEG bytes -> (H, W, 3) uint8 RGB."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("cannot decode a JPEG frame")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def clip_record(clip: RenderedClip, *, index: int, frame_format: str, jpeg_quality: int) -> dict[str, Any]:
    """One clip as plain arrays (what a worker sends back): frames encoded, labels stacked over its people."""
    people = clip.people
    return {
        "clip_index": index,
        "frames": encode_frames(clip.frames, frame_format=frame_format, jpeg_quality=jpeg_quality),
        "intrinsics": clip.camera.intrinsics.astype(np.float32),
        "extrinsics": clip.camera.extrinsics.astype(np.float32),
        "background_kind": clip.background_kind,
        "motion": np.array([p.motion for p in people], dtype=MOTION_NAME_DTYPE),
        "period": np.array([p.period for p in people], dtype=np.float32),
        "has_h36m": np.array([p.has_h36m for p in people], dtype=bool),
        **{key: np.stack([getattr(p, key) for p in people]) for key in (
            "betas", "pose", "transl", "joints3d", "joints3d_h36m", "joints2d", "in_image", "occluded", "bbox",
            "crop_cam", "visible_fraction")},
    }


# ----------------------------------------------------------------------------------------------
# Shards
# ----------------------------------------------------------------------------------------------
def write_shard(out_dir: Path, shard_index: int, records: Sequence[dict[str, Any]], *,
                request: GenerationRequest) -> dict:
    """Write one shard (labels ``.npz`` and frames ``.npy``) atomically; returns its manifest entry."""
    name = shard_name(shard_index)
    num_frames = request.num_frames
    arrays: dict[str, np.ndarray] = {
        "clip_index": np.array([r["clip_index"] for r in records], dtype=np.int64),
        "intrinsics": np.stack([r["intrinsics"] for r in records]),
        "extrinsics": np.stack([r["extrinsics"] for r in records]),
        "background_kind": np.array([r["background_kind"] for r in records], dtype=MOTION_NAME_DTYPE),
        "track_clip": np.concatenate([np.full(len(r["motion"]), i, dtype=np.int64) for i, r in enumerate(records)]),
        "track_person": np.concatenate([np.arange(len(r["motion"]), dtype=np.int64) for r in records]),
        "request_key": np.array(request.key),
    }
    for key in ("motion", "period", "has_h36m", "betas", "pose", "transl", "joints3d", "joints3d_h36m", "joints2d",
                "in_image", "occluded", "bbox", "crop_cam", "visible_fraction"):
        arrays[key] = np.concatenate([r[key] for r in records])
    if request.frame_format == "jpeg":
        files = [data for r in records for data in r["frames"]]
        sizes = np.array([len(data) for data in files], dtype=np.int64)
        arrays["frame_offsets"] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        frames = np.frombuffer(b"".join(files), dtype=np.uint8)
    else:
        frames = np.stack([r["frames"] for r in records])
    if frames.size == 0 or len(records) * num_frames == 0:
        raise ValueError("a shard needs frames")
    atomic_write(out_dir / f"{name}.frames.npy", lambda f: np.save(f, frames))
    atomic_write(out_dir / f"{name}.npz", lambda f: np.savez(f, **arrays))
    return {"name": name, "clips": [int(arrays["clip_index"][0]), int(arrays["clip_index"][-1]) + 1],
            "tracks": int(arrays["track_clip"].shape[0]), "frames_bytes": int(frames.nbytes)}


def _complete_shard(out_dir: Path, shard_index: int, clips: tuple[int, int], request: GenerationRequest) -> dict | None:
    """The manifest entry of an existing shard that belongs to ``request`` and holds exactly ``clips``, else None."""
    name = shard_name(shard_index)
    labels, frames = out_dir / f"{name}.npz", out_dir / f"{name}.frames.npy"
    if not (labels.is_file() and frames.is_file()):
        return None
    try:
        with np.load(labels) as data:
            if str(data["request_key"]) != request.key:
                return None
            index = data["clip_index"]
            if index.tolist() != list(range(*clips)):
                return None
            tracks = int(data["track_clip"].shape[0])
        frames_bytes = int(np.load(frames, mmap_mode="r").nbytes)
    except (OSError, ValueError, KeyError):
        return None
    return {"name": name, "clips": list(clips), "tracks": tracks, "frames_bytes": frames_bytes}


# ----------------------------------------------------------------------------------------------
# Workers
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _WorkerSettings:
    seed: int
    num_frames: int
    num_people: int
    config: SyntheticConfig
    frame_format: str
    background_images: tuple[str, ...]
    smpl_dir: str | None


class _ClipMaker:
    """Renders and encodes clips; one per process (it owns a body model and a renderer)."""

    def __init__(self, settings: _WorkerSettings, *, body_model: BodyModel | None = None) -> None:
        self.settings = settings
        self.body_model = body_model if body_model is not None else load_body_model(settings.smpl_dir)
        self.renderer = Renderer()

    def __call__(self, index: int) -> dict[str, Any]:
        s = self.settings
        clip = generate_clip(index=index, seed=s.seed, num_frames=s.num_frames, num_people=s.num_people,
                             config=s.config, body_model=self.body_model, renderer=self.renderer,
                             background_images=s.background_images)
        return clip_record(clip, index=index, frame_format=s.frame_format, jpeg_quality=s.config.jpeg_quality)

    def close(self) -> None:
        self.renderer.close()


_worker_maker: _ClipMaker | None = None


def _init_worker(settings: _WorkerSettings) -> None:
    global _worker_maker
    torch.set_num_threads(1)
    _worker_maker = _ClipMaker(settings)


def _worker_clip(index: int) -> dict[str, Any]:
    assert _worker_maker is not None, "worker not initialised"
    return _worker_maker(index)


def _records(indices: list[int], settings: _WorkerSettings, *, workers: int,
             body_model: BodyModel) -> Iterator[dict[str, Any]]:
    """Clip records in the order of ``indices``, rendered here (1 worker) or in 'spawn' worker processes."""
    if workers <= 1:
        maker = _ClipMaker(settings, body_model=body_model)
        try:
            for index in indices:
                yield maker(index)
        finally:
            maker.close()
        return
    ensure_gl_platform()  # probe the OpenGL platform once here; the workers inherit PYOPENGL_PLATFORM
    context = multiprocessing.get_context("spawn")  # rendering processes must not be forked (OpenGL contexts)
    with context.Pool(processes=workers, initializer=_init_worker, initargs=(settings,)) as pool:
        yield from pool.imap(_worker_clip, indices, chunksize=1)


# ----------------------------------------------------------------------------------------------
# Datasets
# ----------------------------------------------------------------------------------------------
def read_manifest(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a generated dataset; FileNotFoundError naming the folder when there is none."""
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: generate the dataset with "
                                f"`python -m cli.synthetic --out {out_dir} --clips N --frames T --seed S`")
    return json.loads(path.read_text())


def _matching_manifest(path: Path, request: GenerationRequest) -> dict[str, Any] | None:
    """The manifest at ``path`` if it records exactly ``request`` (the dataset is complete), else None."""
    if not path.is_file():
        return None
    existing = json.loads(path.read_text())
    # Compare through JSON: the manifest holds lists where the request holds tuples.
    same_request = existing.get("request") == json.loads(json.dumps(request.to_dict()))
    return existing if same_request and existing.get("request_key") == request.key else None


def _write_shards(out: Path, records: Iterable[dict[str, Any]], request: GenerationRequest, *, shards: list[int],
                  ranges: list[tuple[int, int]], progress: bool) -> dict[int, dict]:
    """Group the rendered clip records (in clip order) into the ``shards`` they belong to, writing each shard as
    soon as it is full; returns the shard entries by index."""
    entries: dict[int, dict] = {}
    pending: list[dict[str, Any]] = []
    shard_iter = iter(shards)
    current = next(shard_iter, None)
    total = sum(ranges[s][1] - ranges[s][0] for s in shards)
    with tqdm(total=total, desc="synthetic clips", unit="clip", disable=not progress) as bar:
        for record in records:
            pending.append(record)
            bar.update(1)
            assert current is not None
            first, stop = ranges[current]
            if len(pending) == stop - first:
                entries[current] = write_shard(out, current, pending, request=request)
                pending = []
                current = next(shard_iter, None)
    return entries


def generate_dataset(
    *,
    out_dir: str | os.PathLike,
    num_clips: int,
    num_frames: int,
    seed: int,
    num_people: int = 1,
    config: SyntheticConfig = SyntheticConfig(),
    workers: int = 1,
    backgrounds: str | os.PathLike | None = None,
    frame_format: str = "jpeg",
    clips_per_shard: int = DEFAULT_CLIPS_PER_SHARD,
    smpl_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate (or complete) a synthetic dataset in ``out_dir`` and return its manifest.

    Shards already there that belong to the same request are kept; a dataset whose manifest already matches
    the request is returned as it is.

    Args:
        out_dir: the dataset folder (created).
        num_clips, num_frames, seed, num_people: N clips of T frames with K people each, from seed S.
        config: generator parameters (image size, fps, ranges).
        workers: processes rendering in parallel ('spawn'; 1 renders in this process).
        backgrounds: a folder of the user's background images (used with ``config.user_background_prob``).
        frame_format: ``'jpeg'`` (small) or ``'raw'`` (exact pixels).
        clips_per_shard: clips per shard file.
        smpl_dir: licensed SMPL files (default: ``$INT_SMPL_DIR``, else the procedural body model).
        progress: show a tqdm progress bar.
    """
    out = Path(out_dir)
    body_model = load_body_model(smpl_dir)  # also creates the procedural model's cache before workers start
    images = tuple(str(p) for p in list_background_images(backgrounds)) if backgrounds is not None else ()
    request = GenerationRequest(num_clips=num_clips, num_frames=num_frames, seed=seed, num_people=num_people,
                                config=config, frame_format=frame_format, clips_per_shard=clips_per_shard,
                                backgrounds=images, body_model=body_model.identity)
    manifest_path = out / MANIFEST_NAME
    existing = _matching_manifest(manifest_path, request)
    if existing is not None:
        return existing

    ranges = request.shard_ranges()
    entries: dict[int, dict] = {}
    missing: list[int] = []
    for shard_index, clips in enumerate(ranges):
        entry = _complete_shard(out, shard_index, clips, request)
        if entry is None:
            missing.append(shard_index)
        else:
            entries[shard_index] = entry
    indices = [i for s in missing for i in range(*ranges[s])]
    settings = _WorkerSettings(seed=seed, num_frames=num_frames, num_people=num_people, config=config,
                               frame_format=frame_format, background_images=images,
                               smpl_dir=None if smpl_dir is None else str(smpl_dir))
    start = time.perf_counter()
    records = _records(indices, settings, workers=workers, body_model=body_model)
    entries.update(_write_shards(out, records, request, shards=missing, ranges=ranges, progress=progress))
    elapsed = time.perf_counter() - start
    shards = [entries[i] for i in range(len(ranges))]
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "request": request.to_dict(),
        "request_key": request.key,
        "counts": {"clips": num_clips, "tracks": sum(s["tracks"] for s in shards), "frames": num_clips * num_frames,
                   "frames_per_clip": num_frames, "people_per_clip": num_people},
        "image_size": config.image_size,
        "fps": config.fps,
        "seed": seed,
        "shards": shards,
        "run": {"workers": workers, "clips_rendered": len(indices), "seconds": round(elapsed, 3),
                "frames_per_second": (round(len(indices) * num_frames / elapsed, 2) if indices and elapsed > 0
                                      else None)},
    }
    atomic_write(manifest_path, lambda f: f.write(json.dumps(manifest, indent=2).encode()))
    return manifest


def ensure_dataset(*, out_dir: str | os.PathLike, **kwargs: Any) -> dict[str, Any]:
    """The dataset in ``out_dir`` if its manifest matches the request, else generated (see :func:`generate_dataset`).

    For training configs that name a synthetic dataset: the first run generates and caches it, later runs reuse it.
    """
    return generate_dataset(out_dir=out_dir, **kwargs)
