"""Joint names, the SMPL kinematic tree, flip permutations and colours: the single source for all of them.

Indices follow SMPL (24 joints, global orientation first) and the 17-joint Human3.6M evaluation set.
"""

from __future__ import annotations

NUM_JOINTS = 24
NUM_BETAS = 10
NUM_H36M_JOINTS = 17

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)

# Parent of each SMPL joint in the kinematic tree (-1 for the root).
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)

# Index of each joint's mirror image (left <-> right); used by flip augmentation.
SMPL_FLIP_PERM: tuple[int, ...] = (
    0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22,
)

# Human3.6M 17-joint evaluation set, in the order the public H36M regressor uses.
H36M_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "spine", "thorax", "neck_base", "head", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)
H36M_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
H36M_FLIP_PERM: tuple[int, ...] = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)

# Pelvis for root-relative metrics is the mid-point of the hips (SMPL indices).
SMPL_LEFT_HIP, SMPL_RIGHT_HIP = 1, 2
H36M_PELVIS = 0

# Token layout in the spatial transformer: [joints(24), shape, cam, cls, patches].
TOKEN_NAMES: tuple[str, ...] = SMPL_JOINT_NAMES + ("shape", "camera")


def joint_side(name: str) -> str:
    """'left', 'right' or 'centre' for a joint name."""
    if name.startswith("left_"):
        return "left"
    if name.startswith("right_"):
        return "right"
    return "centre"


# Colours (RGB, 0-255): left limbs blue, right limbs red, centre line grey; per-track palette.
SIDE_COLOURS = {"left": (66, 135, 245), "right": (235, 64, 52), "centre": (160, 160, 160)}
TRACK_PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
    (0, 114, 178), (213, 94, 0), (204, 121, 167), (120, 120, 120),
)

# The network expects RGB crops in [0, 1] normalised with the ImageNet statistics (timm's hybrid ViT).
IMAGE_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGE_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
