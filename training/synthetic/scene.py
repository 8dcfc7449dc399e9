"""Scenes: people (the body model in motion) seen by a pinhole camera over a background, with full labels.

Frames
------
* **World**: y up, the floor is the plane y = 0, metres. A person with heading 0 faces +z; the camera is
  placed on the +z side looking toward -z, so heading 0 faces the camera.
* **Camera** (the labels' frame, SPIN / VIBE and :mod:`viz.renderer`): x right, y down, z forward.
  ``X_cam = R X_world + t`` (:class:`~training.synthetic.camera.Camera`); pixels ``u = f X / Z + cx``,
  ``v = f Y / Z + cy`` with the principal point at the image centre ``(W / 2, H / 2)`` and integer coordinates
  at pixel centres.

A person's SMPL pose in the camera frame (``theta``, 72) keeps the motion's body joints; its global
orientation is ``R @ R_y(heading) @ R_sway`` (an upright person facing the camera has about 180 degrees
about x). ``vertices = SMPL(theta, beta) + transl`` in the camera frame, exactly (``transl`` is a label).

The :func:`render_clip` API takes explicit people, camera, background and occluders; :func:`sample_scene`
draws them from a :class:`~training.synthetic.config.SyntheticConfig` and :func:`render_scene` renders that.
The cameras are in :mod:`training.synthetic.camera`, the people's colours in :mod:`training.synthetic.clothing`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from int_model.body_model import BodyModel
from int_model.constants import NUM_BETAS, NUM_H36M_JOINTS, NUM_JOINTS
from int_model.crops import INFERENCE_BBOX_SCALE
from viz.renderer import PinholeCamera, Renderer, RenderLayers, SceneMesh

from . import backgrounds as bg
from .camera import Camera, crop_camera, focal_for_fov, reference_depth
from .clothing import PART_NAMES, Clothing, MeshGroup, colour_groups, sample_clothing, vertex_parts
from .config import SyntheticConfig
from .effects import NO_EFFECTS, ImageEffects, apply_effects, sample_effects
from int_model.joint_ranges import angles_to_rotmat

from .motions import RANDOM_MOTION, Motion, periodic_motion, random_motion
from .occluders import Occluder, make_sprite, occluder_masks, random_occluder_colours

COVERED = 0.5  # coverage / alpha above which a pixel counts as covered (for visibility)


# ----------------------------------------------------------------------------------------------
# Lighting and people
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lighting:
    """The renderer's light intensity and ambient level, and an RGB tint multiplying the rendered people."""

    intensity: float = 1.2
    ambient: float = 0.25
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


@contextlib.contextmanager
def _lit(renderer: Renderer, lighting: Lighting) -> Iterator[None]:
    """Temporarily set the renderer's (public) light intensity and ambient level."""
    saved = (renderer.light_intensity, renderer.ambient)
    renderer.light_intensity, renderer.ambient = float(lighting.intensity), float(lighting.ambient)
    try:
        yield
    finally:
        renderer.light_intensity, renderer.ambient = saved


@dataclass(frozen=True)
class PersonSpec:
    """One person of a clip.

    Attributes:
        motion: the motion (:mod:`training.synthetic.motions`).
        betas: (10,) shape.
        heading_deg: facing direction about the vertical; 0 faces +z (the default camera).
        position: (x, z) on the floor of the pelvis at mid-clip (a travelling motion's path is centred on it).
        clothing: colours and hair.
    """

    motion: Motion
    betas: np.ndarray
    heading_deg: float = 0.0
    position: tuple[float, float] = (0.0, 0.0)
    clothing: Clothing = field(default_factory=lambda: Clothing(colours=np.full((len(PART_NAMES), 3), 0.7)))


@dataclass(frozen=True)
class PersonLabels:
    """Labels of one person over T frames (camera frame, metres, pixels).

    Attributes:
        motion: motion name; period: period in frames (NaN for non-periodic motion).
        betas: (10,).
        pose: (T, 72) SMPL axis-angle, global orientation first, camera frame.
        transl: (T, 3) so that SMPL(pose, betas) vertices + transl are the camera-frame vertices.
        joints3d: (T, 24, 3) SMPL joints; joints3d_h36m: (T, 17, 3) Human3.6M joints (zeros without a regressor,
            ``has_h36m`` False).
        joints2d: (T, 24, 2) pixels.
        in_image: (T, 24) bool, the joint projects inside the image.
        occluded: (T, 24) bool, an occluder or another person covers the joint's pixel.
        bbox: (T, 4) (cx, cy, w, h) pixels, the box of the projected vertices (may extend past the image).
        crop_cam: (T, 3) weak-perspective camera (s, tx, ty) of the crop at ``INFERENCE_BBOX_SCALE`` around ``bbox``:
            ``s * (J_smpl[:2] + (tx, ty))`` ~ the crop coordinates of the joints, where ``J_smpl = joints3d - transl``
            (the SMPL joints without translation); exact at the trunk's depth (:func:`crop_camera`).
        visible_fraction: (T,) fraction of the person that is seen (inside the image, not covered).
    """

    motion: str
    period: float
    betas: np.ndarray
    pose: np.ndarray
    transl: np.ndarray
    joints3d: np.ndarray
    joints3d_h36m: np.ndarray
    has_h36m: bool
    joints2d: np.ndarray
    in_image: np.ndarray
    occluded: np.ndarray
    bbox: np.ndarray
    crop_cam: np.ndarray
    visible_fraction: np.ndarray

    @property
    def visible(self) -> np.ndarray:
        """(T, 24) bool: inside the image and not covered."""
        return self.in_image & ~self.occluded


@dataclass(frozen=True)
class RenderedClip:
    """A rendered clip: frames (T, H, W, 3) uint8 RGB, labels per person, the camera and what was drawn."""

    frames: np.ndarray
    people: tuple[PersonLabels, ...]
    camera: Camera
    fps: float
    background_kind: str
    occluders: tuple[Occluder, ...]
    occluder_coverage: np.ndarray  # (T, H, W) float32


# ----------------------------------------------------------------------------------------------
# Posing and rendering
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Posed:
    vertices: np.ndarray  # (T, V, 3) camera frame
    pose: np.ndarray
    transl: np.ndarray
    joints3d: np.ndarray
    joints3d_h36m: np.ndarray | None


BODY_MODEL_THREADS = 1  # the same in every process, so that the float32 sums (and so the labels) are identical


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Run torch with ``count`` intra-op threads, then restore the previous number."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _rotvec(rotmat: np.ndarray) -> np.ndarray:
    return Rotation.from_matrix(rotmat.reshape(-1, 3, 3)).as_rotvec().reshape(*rotmat.shape[:-2], 3)


def _rot_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def pose_person(person: PersonSpec, *, camera: Camera, times: np.ndarray, body_model: BodyModel) -> _Posed:
    """Pose one person over ``times`` (T,) seconds: on the floor, at its position, seen by ``camera``."""
    num_frames = times.shape[0]
    rotmat = angles_to_rotmat(person.motion.angles(times))  # (T, 24, 3, 3) body frame
    heading = _rot_y(math.radians(person.heading_deg))
    world = rotmat.copy()
    world[:, 0] = heading @ rotmat[:, 0]
    betas = torch.as_tensor(np.tile(np.asarray(person.betas, np.float32), (num_frames, 1)))
    with torch.no_grad(), _torch_threads(BODY_MODEL_THREADS):
        out = body_model(torch.as_tensor(world, dtype=torch.float32), betas)
    vertices = out.vertices.numpy().astype(np.float64)
    joints = out.joints.numpy().astype(np.float64)
    h36m = None if out.joints_h36m is None else out.joints_h36m.numpy().astype(np.float64)
    rest_pelvis = joints[:, 0]  # the root rotates about it, so it is the same in every frame

    offset = person.motion.root_offset(times) @ heading.T  # heading frame -> world
    offset[:, [0, 2]] -= offset[:, [0, 2]].mean(axis=0)  # the path is centred on the person's position
    transl_world = np.zeros((num_frames, 3))
    transl_world[:, 0] = person.position[0] + offset[:, 0] - rest_pelvis[:, 0]
    transl_world[:, 2] = person.position[1] + offset[:, 2] - rest_pelvis[:, 2]
    transl_world[:, 1] = -vertices[..., 1].min(axis=1) + offset[:, 1]  # lowest point on the floor, plus hops

    rotation, translation = camera.rotation, camera.translation
    cam_rotmat = world.copy()
    cam_rotmat[:, 0] = rotation @ world[:, 0]
    return _Posed(
        vertices=camera.to_camera(vertices + transl_world[:, None]),
        pose=_rotvec(cam_rotmat).reshape(num_frames, NUM_JOINTS * 3),
        transl=(rest_pelvis + transl_world) @ rotation.T + translation - rest_pelvis,
        joints3d=camera.to_camera(joints + transl_world[:, None]),
        joints3d_h36m=None if h36m is None else camera.to_camera(h36m + transl_world[:, None]),
    )


def _composite_people(background: np.ndarray, layers: Sequence[RenderLayers], tint: np.ndarray) -> np.ndarray:
    """People over a float (H, W, 3) background in [0, 1], nearest surface last at every pixel."""
    image = background.copy()
    if len(layers) == 1:
        a = layers[0].coverage[..., None]
        return image * (1 - a) + layers[0].colour * tint
    depth = np.stack([np.where(l.coverage > 0, l.depth, np.inf) for l in layers])  # (P, H, W)
    colour = np.stack([l.colour * tint for l in layers])
    coverage = np.stack([l.coverage for l in layers])
    order = np.argsort(-depth, axis=0, kind="stable")  # farthest first
    for k in range(len(layers)):
        index = order[k][None]
        a = np.take_along_axis(coverage, index, axis=0)[0][..., None]
        c = np.take_along_axis(colour, index[..., None], axis=0)[0]
        image = image * (1 - a) + c
    return image


def render_clip(
    *,
    people: Sequence[PersonSpec],
    camera: Camera,
    background: np.ndarray,
    num_frames: int,
    fps: float,
    body_model: BodyModel,
    renderer: Renderer,
    occluders: Sequence[Occluder] = (),
    lighting: Lighting = Lighting(),
    noise_std: float = 0.0,
    noise_seed: int = 0,
    background_kind: str = "given",
    effects: ImageEffects = NO_EFFECTS,
    clip_boxes: bool = False,
) -> RenderedClip:
    """Render people in motion over a background, with occluders, and label every person in every frame.

    Args:
        people: the people (their motions, shapes, headings, floor positions, clothing).
        camera: the pinhole camera; its ``width`` / ``height`` are the frame size.
        background: (H, W, 3) uint8 RGB, the same for every frame.
        num_frames, fps: frames ``t / fps`` for ``t = 0 .. T-1``.
        body_model: the body model (its ``joints_h36m`` fill ``joints3d_h36m`` where available).
        renderer: a :class:`viz.renderer.Renderer` (one per process).
        occluders: drawn over everything; anchored ones are resolved against their person's mid-clip box.
        lighting: light levels and tint.
        noise_std: Gaussian sensor noise in grey levels, drawn from ``noise_seed``.
        background_kind: recorded in the result.
        effects: low resolution, motion blur, grey (:mod:`training.synthetic.effects`), before the noise.
        clip_boxes: person boxes are the part inside the frame (as a detector's), not the whole projection.

    Returns:
        :class:`RenderedClip` with frames (T, H, W, 3) uint8 and one :class:`PersonLabels` per person.
    """
    height, width = camera.height, camera.width
    if background.shape != (height, width, 3) or background.dtype != np.uint8:
        raise ValueError(f"background must be ({height}, {width}, 3) uint8, got {background.shape} {background.dtype}")
    if not people:
        raise ValueError("a clip needs at least one person")
    times = np.arange(num_frames, dtype=np.float64) / fps
    posed = [pose_person(p, camera=camera, times=times, body_model=body_model) for p in people]
    if any(float(p.vertices[..., 2].min()) <= 0 for p in posed):
        raise ValueError("a person is (partly) behind the camera")
    groups = [_clothing_groups(p, body_model) for p in people]

    pixels = [camera.project(p.vertices) for p in posed]  # (T, V, 2) each
    boxes = [_boxes(px, frame=(width, height) if clip_boxes else None) for px in pixels]
    resolved = [o.resolve(boxes[o.anchor][num_frames // 2]) if o.anchor is not None else o for o in occluders]
    occ_colour, occ_cover = occluder_masks(resolved, [make_sprite(o) for o in resolved], num_frames=num_frames,
                                           height=height, width=width)
    frames, coverage = _render_frames(posed, groups, camera=camera, renderer=renderer, background=background,
                                      lighting=lighting, occ_colour=occ_colour, occ_cover=occ_cover, effects=effects,
                                      noise_std=noise_std, noise_seed=noise_seed)
    labels = tuple(_person_labels(index, person, p, camera=camera, fps=fps, box=boxes[index], pixels=pixels[index],
                                  coverage=coverage)
                   for index, (person, p) in enumerate(zip(people, posed, strict=True)))
    return RenderedClip(frames=frames, people=labels, camera=camera, fps=float(fps), background_kind=background_kind,
                        occluders=tuple(resolved), occluder_coverage=occ_cover)


def _clothing_groups(person: PersonSpec, body_model: BodyModel) -> list[MeshGroup]:
    """The person's mesh cut into one sub-mesh per clothing colour (the renderer draws one colour per mesh)."""
    parts = vertex_parts(body_model, hair=person.clothing.hair)
    return colour_groups(body_model.faces, person.clothing.colours[parts])


@dataclass(frozen=True)
class _Coverage:
    """What covers each pixel of a clip, for the visibility labels.

    Attributes:
        people: (P, T, H, W) float32 coverage of every person.
        depth: (P, T, H, W) float32 depth of every person's nearest surface.
        occluders: (T, H, W) float32 coverage of the occluders.
    """

    people: np.ndarray
    depth: np.ndarray
    occluders: np.ndarray


def _render_frames(posed: Sequence[_Posed], groups: Sequence[Sequence[MeshGroup]], *, camera: Camera,
                   renderer: Renderer, background: np.ndarray, lighting: Lighting, occ_colour: np.ndarray,
                   occ_cover: np.ndarray, effects: ImageEffects, noise_std: float,
                   noise_seed: int) -> tuple[np.ndarray, _Coverage]:
    """Render and composite every frame: the people (nearest in front) over the background, the occluders over
    them, then the image effects and the noise. Returns the (T, H, W, 3) uint8 frames and what covers each pixel."""
    num_frames, height, width = occ_cover.shape
    tint = np.asarray(lighting.tint, dtype=np.float32)
    base = background.astype(np.float32) / 255.0
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    people_cov = np.zeros((len(posed), num_frames, height, width), np.float32)
    people_depth = np.zeros((len(posed), num_frames, height, width), np.float32)
    noise_rng = np.random.default_rng(noise_seed)
    pinhole = PinholeCamera(focal_length=camera.focal_length, principal_point=camera.principal_point)
    with _lit(renderer, lighting):
        for t in range(num_frames):
            layers = []
            for index, (p, person_groups) in enumerate(zip(posed, groups, strict=True)):
                meshes = [SceneMesh(p.vertices[t, g.vertex_ids], g.faces, g.colour) for g in person_groups]
                layer = renderer.render(meshes, pinhole, width=width, height=height)
                people_cov[index, t], people_depth[index, t] = layer.coverage, layer.depth
                layers.append(layer)
            image = _composite_people(base, layers, tint)
            frames[t] = _finish_frame(image, occ_colour=occ_colour[t], occ_cover=occ_cover[t], effects=effects,
                                      noise_std=noise_std, noise_rng=noise_rng)
    return frames, _Coverage(people=people_cov, depth=people_depth, occluders=occ_cover)


def _finish_frame(image: np.ndarray, *, occ_colour: np.ndarray, occ_cover: np.ndarray, effects: ImageEffects,
                  noise_std: float, noise_rng: np.random.Generator) -> np.ndarray:
    """A composited (H, W, 3) float frame in [0, 1] -> uint8: the occluders drawn over it, the image effects, and
    Gaussian sensor noise of ``noise_std`` grey levels."""
    a = occ_cover[..., None]
    image = image * (1 - a) + occ_colour
    image = apply_effects(image, effects) * 255.0
    if noise_std > 0:
        image = image + noise_rng.normal(0.0, noise_std, size=image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _person_labels(index: int, person: PersonSpec, posed: _Posed, *, camera: Camera, fps: float, box: np.ndarray,
                   pixels: np.ndarray, coverage: _Coverage) -> PersonLabels:
    """The labels of person ``index`` of a rendered clip, from its pose, its (T, 4) box and its (T, V, 2)
    projected vertices."""
    num_frames = posed.joints3d.shape[0]
    joints2d = camera.project(posed.joints3d)
    in_image, occluded = _joint_visibility(index, joints2d, posed.joints3d[..., 2], coverage)
    crop_cam = crop_camera(transl=posed.transl, depth=reference_depth(posed.joints3d),
                           focal_length=camera.focal_length, principal_point=camera.principal_point,
                           crop_centre=box[:, :2], crop_side=INFERENCE_BBOX_SCALE * box[:, 2:].max(axis=1))
    h36m = posed.joints3d_h36m
    return PersonLabels(
        motion=person.motion.name,
        period=person.motion.period_frames(fps),
        betas=np.asarray(person.betas, np.float32).copy(),
        pose=posed.pose.astype(np.float32),
        transl=posed.transl.astype(np.float32),
        joints3d=posed.joints3d.astype(np.float32),
        joints3d_h36m=(np.zeros((num_frames, NUM_H36M_JOINTS, 3), np.float32) if h36m is None
                       else h36m.astype(np.float32)),
        has_h36m=h36m is not None,
        joints2d=joints2d.astype(np.float32),
        in_image=in_image,
        occluded=occluded,
        bbox=box.astype(np.float32),
        crop_cam=crop_cam.astype(np.float32),
        visible_fraction=_visible_fraction(index, pixels, coverage),
    )


def _boxes(pixels: np.ndarray, *, frame: tuple[int, int] | None = None) -> np.ndarray:
    """(T, V, 2) projected vertices -> (T, 4) boxes (cx, cy, w, h); with ``frame`` (W, H), the part inside it
    (a person wholly outside gets a 1-pixel box at the nearest edge)."""
    low, high = pixels.min(axis=1), pixels.max(axis=1)
    if frame is not None:
        limit = np.asarray(frame, dtype=low.dtype)
        low, high = np.clip(low, 0, limit - 1), np.clip(high, 0, limit)
        high = np.maximum(high, low + 1)
    return np.concatenate([(low + high) / 2.0, high - low], axis=1)


def _pixel_index(points: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(..., 2) pixels -> rows, cols (clamped into the image) and whether the point lies inside it."""
    cols, rows = np.rint(points[..., 0]).astype(np.int64), np.rint(points[..., 1]).astype(np.int64)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    return np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1), inside


def _joint_visibility(index: int, joints2d: np.ndarray, joint_depth: np.ndarray,
                      coverage: _Coverage) -> tuple[np.ndarray, np.ndarray]:
    """(T, 24) inside-the-image and covered (by an occluder or by another person in front) masks."""
    num_frames, height, width = coverage.occluders.shape
    rows, cols, inside = _pixel_index(joints2d, height, width)
    frame = np.arange(num_frames)[:, None]
    covered = coverage.occluders[frame, rows, cols] >= COVERED
    own_cov, own_depth = coverage.people[index][frame, rows, cols], coverage.depth[index][frame, rows, cols]
    reference = np.where(own_cov > COVERED, own_depth, joint_depth)
    for other in range(coverage.people.shape[0]):
        if other == index:
            continue
        other_cov, other_depth = coverage.people[other][frame, rows, cols], coverage.depth[other][frame, rows, cols]
        in_front = (other_cov > COVERED) & (other_depth < reference)
        covered |= in_front
    return inside, covered & inside


def _visible_fraction(index: int, pixels: np.ndarray, coverage: _Coverage) -> np.ndarray:
    """(T,) fraction of the person's silhouette not covered, times the fraction of its vertices in the image."""
    num_frames, height, width = coverage.occluders.shape
    _, _, inside = _pixel_index(pixels, height, width)
    people_cov, people_depth = coverage.people, coverage.depth
    own = people_cov[index] > COVERED
    seen = own & (coverage.occluders < COVERED)
    for other in range(people_cov.shape[0]):
        if other != index:
            seen &= ~((people_cov[other] > COVERED) & (people_depth[other] < people_depth[index]))
    area = own.reshape(num_frames, -1).sum(axis=1)
    fraction = np.where(area > 0, seen.reshape(num_frames, -1).sum(axis=1) / np.maximum(area, 1), 0.0)
    return (fraction * inside.mean(axis=1)).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Random scenes
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SceneSpec:
    """Everything :func:`render_clip` needs for one clip, drawn by :func:`sample_scene`."""

    people: tuple[PersonSpec, ...]
    camera: Camera
    background: np.ndarray
    background_kind: str
    occluders: tuple[Occluder, ...]
    lighting: Lighting
    num_frames: int
    fps: float
    noise_std: float
    noise_seed: int
    effects: ImageEffects = NO_EFFECTS
    clip_boxes: bool = False


def standing_height(body_model: BodyModel, betas: np.ndarray) -> float:
    """Height (m) of the rest pose of a shape: top of the head to the soles."""
    rotmat = torch.eye(3).expand(1, NUM_JOINTS, 3, 3)
    with torch.no_grad(), _torch_threads(BODY_MODEL_THREADS):
        vertices = body_model(rotmat, torch.as_tensor(np.asarray(betas, np.float32)[None])).vertices[0]
    return float(vertices[:, 1].max() - vertices[:, 1].min())


def _choose(rng: np.random.Generator, weights: Sequence[tuple[str, float]]) -> str:
    names, values = zip(*weights, strict=True)
    return bg.choose(rng, names, values)


def sample_motion(rng: np.random.Generator, config: SyntheticConfig, *, duration_s: float) -> Motion:
    """A motion drawn from ``config.motion_weights`` (walks / runs travel with ``config.travel_prob``)."""
    name = _choose(rng, config.motion_weights)
    travels, travel = rng.uniform() < config.travel_prob, rng.uniform(*config.travel_range)
    motion_seed = int(rng.integers(2**63))
    motion_rng = np.random.default_rng(motion_seed)
    if name == RANDOM_MOTION:
        return random_motion(rng=motion_rng, duration_s=duration_s, idle_deg=config.idle_deg)
    return periodic_motion(name, rng=motion_rng, travel=travel if travels and name in ("walk", "run") else 0.0,
                           idle_deg=config.idle_deg)


def limit_travel(motion: Motion, *, times: np.ndarray, max_distance: float) -> Motion:
    """The motion with its horizontal root travel scaled down so that the path over ``times`` is at most
    ``max_distance`` metres long (unchanged if it already is)."""
    offset = motion.root_offset(times)
    length = float(np.linalg.norm(offset[-1, [0, 2]] - offset[0, [0, 2]])) if len(times) > 1 else 0.0
    if length <= max_distance or length == 0.0:
        return motion
    factor = max_distance / length
    original = motion.offset_fn

    def scaled(t: np.ndarray) -> np.ndarray:
        out = original(t)
        out[:, [0, 2]] *= factor
        return out

    return replace(motion, offset_fn=scaled)


SIDE_FRACTION = 0.8  # other people stand inside this fraction of the half-width of the view at their depth ...
SIDE_MARGIN_M = 0.3  # ... less this margin (metres), so that they are (mostly) inside the frame


def _place_people(rng: np.random.Generator, config: SyntheticConfig, *, count: int, distance: float,
                  elevation: float, half_fov_x: float) -> list[tuple[float, float]]:
    """Floor positions (x, z): the first at the origin, the others at random depths and sides, apart on the floor
    and apart in the image (their directions from the camera differ by ``config.min_image_separation_m`` at the
    nearer one's distance). Gives up on the separations after many tries (tiny fields of view)."""
    horizontal = distance * math.cos(elevation)  # the camera stands at z = horizontal
    positions = [(0.0, 0.0)]
    for attempt in range(10_000):
        if len(positions) == count:
            break
        depth = horizontal * rng.uniform(*config.multi_depth)
        lateral = max(0.0, SIDE_FRACTION * depth * math.tan(half_fov_x) - SIDE_MARGIN_M)
        x, z = rng.uniform(-lateral, lateral), horizontal - depth
        apart = all(
            math.hypot(x - px, z - pz) >= config.min_separation_m
            and abs(x / depth - px / (horizontal - pz)) >= config.min_image_separation_m / min(depth, horizontal - pz)
            for px, pz in positions
        )
        if apart or attempt > 1_000:
            positions.append((x, z))
    return positions


def _sample_occluders(rng: np.random.Generator, config: SyntheticConfig, *, num_people: int,
                      num_frames: int) -> tuple[Occluder, ...]:
    if rng.uniform() >= config.occluder_clip_prob:
        return ()
    lo, hi = config.occluders_per_clip
    occluders = []
    for _ in range(int(rng.integers(lo, hi + 1))):
        duration = max(1, int(round(rng.uniform(*config.occluder_duration) * num_frames)))
        start = int(rng.integers(0, num_frames - duration + 1))
        speed, direction = rng.uniform(*config.occluder_speed), rng.uniform(0.0, 2.0 * math.pi)
        velocity = (speed * math.cos(direction), speed * math.sin(direction))
        middle = rng.uniform(-config.occluder_offset, config.occluder_offset, size=2)
        half_way = duration / 2.0
        occluders.append(Occluder(
            shape=_choose(rng, config.occluder_shape_weights),
            centre=(float(middle[0] - velocity[0] * half_way), float(middle[1] - velocity[1] * half_way)),
            size=(float(rng.uniform(*config.occluder_size)), float(rng.uniform(*config.occluder_size))),
            velocity=velocity,
            angle_deg=float(rng.uniform(0.0, 180.0)),
            start=start,
            stop=start + duration,
            texture=_choose(rng, config.occluder_texture_weights),
            colours=random_occluder_colours(rng),
            texture_seed=int(rng.integers(2**31)),
            anchor=int(rng.integers(num_people)),
        ))
    return tuple(occluders)


def sample_scene(
    rng: np.random.Generator,
    *,
    config: SyntheticConfig,
    num_frames: int,
    num_people: int,
    body_model: BodyModel,
    background_images: Sequence[str | Path] = (),
) -> SceneSpec:
    """Draw a random scene: people (motion, shape, heading, clothing, floor position), a camera framing the first
    person (field of view, distance from the fill fraction, elevation, roll, aim jitter), lighting, a background
    (procedural, or one of ``background_images``) and occluders."""
    if num_people < 1:
        raise ValueError(f"num_people must be >= 1, got {num_people}")
    size = config.image_size
    # The camera and sensor effects draw from their own stream (spawning does not advance ``rng``), so that with
    # them off a clip is exactly what it was before they existed.
    effects_rng = rng.spawn(1)[0]
    effects = sample_effects(effects_rng, config)
    duration = (num_frames - 1) / config.fps
    times = np.arange(num_frames) / config.fps
    fov = math.radians(rng.uniform(*config.fov_deg))
    focal = focal_for_fov(math.degrees(fov), size)
    elevation, roll = rng.uniform(*config.elevation_deg), rng.uniform(*config.roll_deg)
    fill = rng.uniform(*(config.fill if num_people == 1 else config.multi_fill))

    people = []
    heights = []
    for _ in range(num_people):
        betas = np.clip(rng.normal(0.0, config.beta_std, size=NUM_BETAS), -config.beta_clip, config.beta_clip)
        motion = sample_motion(rng, config, duration_s=duration)
        heading = rng.uniform(*config.heading_deg)
        clothing = sample_clothing(rng, config)
        people.append(PersonSpec(motion=motion, betas=betas.astype(np.float32), heading_deg=float(heading),
                                 clothing=clothing))
        heights.append(standing_height(body_model, betas))

    distance = heights[0] / (2.0 * fill * math.tan(fov / 2.0))
    positions = _place_people(rng, config, count=num_people, distance=distance, elevation=math.radians(elevation),
                              half_fov_x=fov / 2.0)
    visible_width = 2.0 * math.tan(fov / 2.0)  # metres per metre of depth
    placed = []
    for person, position in zip(people, positions, strict=True):
        person_distance = distance - position[1]  # the first person (z = 0) is ``distance`` away
        motion = limit_travel(person.motion, times=times,
                              max_distance=config.max_travel_fraction * visible_width * person_distance)
        placed.append(replace(person, motion=motion, position=(float(position[0]), float(position[1]))))

    jitter = rng.uniform(-config.centre_jitter, config.centre_jitter, size=2) * heights[0]
    target = np.array([jitter[0], heights[0] / 2.0 + jitter[1], 0.0])
    if effects_rng.uniform() < config.truncation_prob:  # aim higher or to one side: the frame cuts the person
        offset = effects_rng.uniform(*config.truncation_offset) * heights[0] / fill  # of the view's height
        direction = effects_rng.uniform(-0.6, 0.6) + math.pi / 2  # mostly up (world y): the legs leave the frame
        target += np.array([math.cos(direction) * offset, math.sin(direction) * offset, 0.0])
    camera = Camera.look_at(target=target, distance=distance, elevation_deg=elevation, roll_deg=roll,
                            focal_length=focal, width=size, height=size)

    use_user = bool(background_images) and rng.uniform() < config.user_background_prob
    background_rng = np.random.default_rng(int(rng.integers(2**63)))
    if use_user:
        path = background_images[int(rng.integers(len(background_images)))]
        kind = "user"
        background = bg.user_image(path, background_rng, size, size)
    else:
        kind = _choose(rng, config.background_weights)
        background = bg.procedural_background(kind, background_rng, size, size, intrinsics=camera.intrinsics,
                                              rotation=camera.rotation, camera_height=float(camera.centre[1]))
    background = bg.finish_background(background, background_rng)

    occluders = _sample_occluders(rng, config, num_people=num_people, num_frames=num_frames)
    tint = 1.0 + rng.uniform(-config.light_tint, config.light_tint, size=3)
    lighting = Lighting(intensity=float(rng.uniform(*config.light_intensity)),
                        ambient=float(rng.uniform(*config.ambient)),
                        tint=(float(tint[0]), float(tint[1]), float(tint[2])))
    return SceneSpec(people=tuple(placed), camera=camera, background=background, background_kind=kind,
                     occluders=occluders, lighting=lighting, num_frames=num_frames, fps=config.fps,
                     noise_std=float(rng.uniform(*config.noise_std)), noise_seed=int(rng.integers(2**63)),
                     effects=effects, clip_boxes=config.clip_boxes)


def render_scene(scene: SceneSpec, *, body_model: BodyModel, renderer: Renderer) -> RenderedClip:
    """Render a :class:`SceneSpec` with :func:`render_clip`."""
    return render_clip(people=scene.people, camera=scene.camera, background=scene.background,
                       num_frames=scene.num_frames, fps=scene.fps, body_model=body_model, renderer=renderer,
                       occluders=scene.occluders, lighting=scene.lighting, noise_std=scene.noise_std,
                       noise_seed=scene.noise_seed, background_kind=scene.background_kind, effects=scene.effects,
                       clip_boxes=scene.clip_boxes)


__all__ = [
    "Lighting",
    "PersonLabels",
    "PersonSpec",
    "RenderedClip",
    "SceneSpec",
    "limit_travel",
    "pose_person",
    "render_clip",
    "render_scene",
    "sample_motion",
    "sample_scene",
    "standing_height",
]
