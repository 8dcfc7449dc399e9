"""The synthetic generator's parameters: one frozen dataclass, every range documented.

Ranges are ``(low, high)`` pairs sampled uniformly per clip (per person where it says so). Motion styles
(amplitudes of each periodic motion) and joint ranges are tables of :mod:`training.synthetic.motions`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .motions import MOTION_NAMES

#: Version of the generator's output; a dataset written by another version is regenerated, not reused.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of the synthetic data generator.

    Image:
        image_size: side of the square frames, pixels.
        fps: frame rate of the clips (periods in frames are ``period_s * fps``).
        noise_std: range of the per-clip sensor noise standard deviation, grey levels (0-255).
        jpeg_quality: quality of the stored JPEG frames (``frame_format='jpeg'``).

    Motion (per person):
        motion_weights: (name, weight) pairs; a motion is drawn with probability proportional to its weight
            (``'random'`` is the smooth non-periodic motion).
        travel_prob: probability that a walk / run moves forward (otherwise it is on the spot).
        travel_range: fraction of the natural gait speed (stride / period) when it moves.
        max_travel_fraction: the path is at most this fraction of the visible width at the person's distance.
        idle_deg: standard deviation of a person's constant posture offset on every joint, degrees.

    Body (per person):
        beta_std: standard deviation of the shape coefficients; beta_clip: they are clipped to +-this.

    Camera:
        fov_deg: vertical field of view, degrees.
        fill: height of the (standing) person over the image height, single-person clips; the camera
            distance follows from it and the field of view.
        multi_fill: the same for the reference person of multi-person clips.
        multi_depth: other people stand at this multiple of the reference distance (small and large people).
        min_separation_m: smallest distance between two people's positions on the floor, metres.
        min_image_separation_m: smallest sideways distance between two people's directions from the camera,
            measured at the nearer one's distance, metres (limits how much people overlap in the image).
        heading_deg: the person's facing direction relative to the camera (0: facing it), degrees, per person.
        elevation_deg: the camera's height angle above the person's centre (looking down when > 0), degrees.
        roll_deg: camera roll, degrees.
        centre_jitter: the camera aims off the person's centre by up to this fraction of the person's height.

    Lighting:
        light_intensity: intensity of the renderer's three directional lights.
        ambient: ambient light level.
        light_tint: each RGB channel of the light is scaled by 1 + U(-tint, tint).

    Clothing (per person):
        long_sleeve_prob, sleeveless_prob: forearms (upper arms) in the shirt's colour, else skin.
        long_trousers_prob: shins in the trousers' colour, else skin (shorts).
        bald_prob, long_hair_prob: hair styles (short hair otherwise).

    Background:
        background_weights: (kind, weight) pairs of procedural kinds (:mod:`training.synthetic.backgrounds`).
        user_background_prob: probability of using one of the user's images when a folder is given.

    Camera and sensor (off by default; :data:`REALISTIC` turns them on; :mod:`training.synthetic.effects`):
        low_res_prob, low_res_scale: probability that a clip is seen at low resolution, and the shrink factor.
        motion_blur_prob, motion_blur_px: probability of motion blur, and its length in pixels.
        grey_prob: probability of a grey (luma-only) clip.
        truncation_prob: probability that the camera aims away from the (first) person so that the frame cuts
            them, ...
        truncation_offset: ... by this fraction of the view's height (mostly upwards: the legs leave the frame, the
            upper body stays in view).
        clip_boxes: person boxes (labels, training crops) are the visible part inside the frame, as a
            detector's are, rather than the whole projected body.
    Occluders:
        occluder_clip_prob: probability that a clip has occluders.
        occluders_per_clip: range of their number (inclusive).
        occluder_size: width and height, in units of the occluded person's box height.
        occluder_offset: largest offset of the occluder's (mid-time) centre from the person's box centre, box heights.
        occluder_speed: drift speed, box heights per frame.
        occluder_duration: fraction of the clip's frames during which each occluder is present.
        occluder_shape_weights, occluder_texture_weights: (name, weight) pairs.
    """

    image_size: int = 224
    fps: float = 30.0
    noise_std: tuple[float, float] = (0.0, 4.0)
    jpeg_quality: int = 92

    motion_weights: tuple[tuple[str, float], ...] = (
        ("walk", 0.2), ("run", 0.12), ("jumping_jacks", 0.12), ("squat", 0.12), ("arm_wave", 0.12), ("random", 0.32),
    )
    travel_prob: float = 0.5
    travel_range: tuple[float, float] = (0.3, 1.0)
    max_travel_fraction: float = 0.35
    idle_deg: float = 3.0

    beta_std: float = 1.0
    beta_clip: float = 2.5

    fov_deg: tuple[float, float] = (25.0, 60.0)
    fill: tuple[float, float] = (0.5, 0.85)
    multi_fill: tuple[float, float] = (0.3, 0.6)
    multi_depth: tuple[float, float] = (0.7, 2.0)
    min_separation_m: float = 0.8
    min_image_separation_m: float = 0.45
    heading_deg: tuple[float, float] = (-60.0, 60.0)
    elevation_deg: tuple[float, float] = (-10.0, 35.0)
    roll_deg: tuple[float, float] = (-10.0, 10.0)
    centre_jitter: float = 0.1

    light_intensity: tuple[float, float] = (0.5, 1.8)
    ambient: tuple[float, float] = (0.1, 0.45)
    light_tint: float = 0.12

    long_sleeve_prob: float = 0.5
    sleeveless_prob: float = 0.1
    long_trousers_prob: float = 0.7
    bald_prob: float = 0.1
    long_hair_prob: float = 0.35

    background_weights: tuple[tuple[str, float], ...] = (
        ("gradient", 1.0), ("noise", 1.0), ("stripes", 0.6), ("blobs", 1.0), ("room", 1.4),
    )
    user_background_prob: float = 0.7

    low_res_prob: float = 0.0
    low_res_scale: tuple[float, float] = (0.25, 0.6)
    motion_blur_prob: float = 0.0
    motion_blur_px: tuple[float, float] = (2.0, 8.0)
    grey_prob: float = 0.0
    truncation_prob: float = 0.0
    truncation_offset: tuple[float, float] = (0.2, 0.4)
    clip_boxes: bool = False
    occluder_clip_prob: float = 0.5
    occluders_per_clip: tuple[int, int] = (1, 2)
    occluder_size: tuple[float, float] = (0.15, 0.5)
    occluder_offset: float = 0.35
    occluder_speed: tuple[float, float] = (0.0, 0.03)
    occluder_duration: tuple[float, float] = (0.25, 0.75)
    occluder_shape_weights: tuple[tuple[str, float], ...] = (("rect", 1.0), ("ellipse", 1.0), ("blob", 1.0))
    occluder_texture_weights: tuple[tuple[str, float], ...] = (("solid", 1.0), ("noise", 1.0), ("stripes", 0.7))

    def __post_init__(self) -> None:
        unknown = [name for name, _ in self.motion_weights if name not in MOTION_NAMES]
        if unknown:
            raise ValueError(f"unknown motions {unknown}; known: {', '.join(MOTION_NAMES)}")
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {self.image_size}")
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")

    def realistic(self) -> SyntheticConfig:
        """This config with the camera and sensor effects of real footage on (:data:`REALISTIC`)."""
        return dataclasses.replace(self, **REALISTIC)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyntheticConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown synthetic config keys: {', '.join(unknown)}")

        def as_tuple(value: Any) -> Any:
            return tuple(as_tuple(v) for v in value) if isinstance(value, list) else value

        return cls(**{key: as_tuple(value) for key, value in data.items()})


#: The camera and sensor effects of real footage, for :meth:`SyntheticConfig.realistic` (the data spec's
#: ``look: realistic``): a quarter of the clips at low resolution, a third blurred, one in six grey, one in five
#: cut by the frame edge, and detector-like boxes.
REALISTIC: dict[str, Any] = {
    "low_res_prob": 0.25, "motion_blur_prob": 0.3, "grey_prob": 0.15, "truncation_prob": 0.2, "clip_boxes": True,
    "fill": (0.3, 0.85),
}
