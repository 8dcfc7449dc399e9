"""Joint layouts of the datasets' files and how they map into our SMPL-24 and Human3.6M-17 slots.

Every layout is a tuple of joint names (SPIN's names: ``'OP ...'`` for OpenPose BODY_25 detections, lower-case
for ground-truth annotations). A slot of ours takes the first *labelled* joint among its candidates, in the
order given below; a slot without a candidate, or whose candidates are all unlabelled, is invisible.

Only joints that mean the same point are mapped. SMPL-24 gets the 12 limb joints (hips, knees, ankles,
shoulders, elbows, wrists) from the ground-truth annotation or, failing that (2D only), from OpenPose; 3D
labels never come from OpenPose-named joints (in the 49-joint 3D arrays those are regressed from a fit).
The SMPL pelvis, spine, neck, collars, head, feet and hands sit at points no annotation marks (e.g. the SMPL
neck joint is the base of the neck, the LSP "neck" the top of the thorax) and stay invisible. H36M-17 gets
all 17 joints from SPIN's names for them (as SPIN's Human3.6M preprocessing writes them, Human3.6M's own
17-joint order being that of ``int_model.constants.H36M_JOINT_NAMES``), never from OpenPose.

=====================  =================================================  =============================
our slot               SMPL-24 candidates                                 H36M-17 candidate
=====================  =================================================  =============================
pelvis                 --                                                 hip (Pelvis MPII)
left / right hip       lhip, OP LHip / rhip, OP RHip                       lhip / rhip
left / right knee      lknee, OP LKnee / rknee, OP RKnee                   lknee / rknee
left / right ankle     lankle, OP LAnkle / rankle, OP RAnkle               lankle / rankle
left / right shoulder  lshoulder, OP LShoulder / rshoulder, OP RShoulder   lshoulder / rshoulder
left / right elbow     lelbow, OP LElbow / relbow, OP RElbow               lelbow / relbow
left / right wrist     lwrist, OP LWrist / rwrist, OP RWrist               lwrist / rwrist
spine (H36M)           --                                                 Spine (H36M)
thorax (H36M)          --                                                 neck (LSP neck = H36M thorax)
neck_base (H36M)       --                                                 Jaw (H36M)
head (H36M)            --                                                 Head (H36M)
=====================  =================================================  =============================
"""

from __future__ import annotations

import numpy as np

from int_model.constants import H36M_JOINT_NAMES, NUM_H36M_JOINTS, NUM_JOINTS, SMPL_JOINT_NAMES

OPENPOSE_PREFIX = "OP "
# OpenPose BODY_25, the first 25 joints of SPIN's 49-joint layout.
OPENPOSE_25: tuple[str, ...] = (
    "OP Nose", "OP Neck", "OP RShoulder", "OP RElbow", "OP RWrist", "OP LShoulder", "OP LElbow", "OP LWrist",
    "OP MidHip", "OP RHip", "OP RKnee", "OP RAnkle", "OP LHip", "OP LKnee", "OP LAnkle", "OP REye", "OP LEye",
    "OP REar", "OP LEar", "OP LBigToe", "OP LSmallToe", "OP LHeel", "OP RBigToe", "OP RSmallToe", "OP RHeel",
)
# SPIN's 24 "ground-truth" joints (the `part` / `S` arrays of SPIN's .npz files, joints 25-48 of the 49).
SPIN_24: tuple[str, ...] = (
    "rankle", "rknee", "rhip", "lhip", "lknee", "lankle", "rwrist", "relbow", "rshoulder", "lshoulder",
    "lelbow", "lwrist", "neck", "headtop", "hip", "thorax", "Spine (H36M)", "Jaw (H36M)", "Head (H36M)",
    "nose", "leye", "reye", "lear", "rear",
)
# The layouts the readers know, by name.
JOINT_LAYOUTS: dict[str, tuple[str, ...]] = {
    # SPIN / VIBE / MAED: 25 OpenPose + 24 ground-truth joints.
    "spin49": OPENPOSE_25 + SPIN_24,
    "spin24": SPIN_24,
    # VIBE's "common" 14 (LSP order): the first 14 of SPIN_24.
    "common14": SPIN_24[:14],
    # OpenPose COCO-18, the `poses2d` detections of the 3DPW sequence files.
    "coco18": (
        "OP Nose", "OP Neck", "OP RShoulder", "OP RElbow", "OP RWrist", "OP LShoulder", "OP LElbow", "OP LWrist",
        "OP RHip", "OP RKnee", "OP RAnkle", "OP LHip", "OP LKnee", "OP LAnkle", "OP REye", "OP LEye", "OP REar",
        "OP LEar",
    ),
    # InstaVariety as MAED's preprocessing writes it (Temporal HMR's 14 + 5 face + 6 toe points).
    "insta25": (
        "OP RHeel", "OP RKnee", "OP RHip", "OP LHip", "OP LKnee", "OP LHeel", "OP RWrist", "OP RElbow",
        "OP RShoulder", "OP LShoulder", "OP LElbow", "OP LWrist", "OP Neck", "headtop", "OP Nose", "OP LEye",
        "OP REye", "OP LEar", "OP REar", "OP LBigToe", "OP RBigToe", "OP LSmallToe", "OP RSmallToe", "OP LAnkle",
        "OP RAnkle",
    ),
}
# The layout of a joint array with this many joints, when a dataset's table does not name one.
LAYOUT_BY_COUNT: dict[int, str] = {49: "spin49", 24: "spin24", 14: "common14", 18: "coco18"}

_LIMBS = ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")
_OPENPOSE_LIMB = {"hip": "Hip", "knee": "Knee", "ankle": "Ankle", "shoulder": "Shoulder", "elbow": "Elbow",
                  "wrist": "Wrist"}


def _smpl24_sources() -> dict[str, tuple[str, ...]]:
    sources: dict[str, tuple[str, ...]] = {}
    for side, letter in (("left", "l"), ("right", "r")):
        for limb in _LIMBS:
            sources[f"{side}_{limb}"] = (f"{letter}{limb}", f"OP {letter.upper()}{_OPENPOSE_LIMB[limb]}")
    return sources


# Our slot name -> candidate source names, in order of preference (see the module table).
SMPL24_SOURCES: dict[str, tuple[str, ...]] = _smpl24_sources()
H36M17_SOURCES: dict[str, tuple[str, ...]] = {
    "pelvis": ("hip",),
    "right_hip": ("rhip",), "right_knee": ("rknee",), "right_ankle": ("rankle",),
    "left_hip": ("lhip",), "left_knee": ("lknee",), "left_ankle": ("lankle",),
    "spine": ("Spine (H36M)",), "thorax": ("neck",), "neck_base": ("Jaw (H36M)",), "head": ("Head (H36M)",),
    "left_shoulder": ("lshoulder",), "left_elbow": ("lelbow",), "left_wrist": ("lwrist",),
    "right_shoulder": ("rshoulder",), "right_elbow": ("relbow",), "right_wrist": ("rwrist",),
}
TARGETS: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]] = {
    "smpl24": (SMPL_JOINT_NAMES, SMPL24_SOURCES),
    "h36m17": (H36M_JOINT_NAMES, H36M17_SOURCES),
}
TARGET_SIZES = {"smpl24": NUM_JOINTS, "h36m17": NUM_H36M_JOINTS}


def layout_for(num_joints: int, layout: str | None = None) -> str:
    """The layout name to read an array of ``num_joints`` joints with (``layout`` if given, checked)."""
    if layout is None:
        if num_joints not in LAYOUT_BY_COUNT:
            raise ValueError(
                f"no known joint layout has {num_joints} joints; name one of {', '.join(JOINT_LAYOUTS)}"
            )
        layout = LAYOUT_BY_COUNT[num_joints]
    if layout not in JOINT_LAYOUTS:
        raise ValueError(f"unknown joint layout {layout!r}; known: {', '.join(JOINT_LAYOUTS)}")
    if len(JOINT_LAYOUTS[layout]) != num_joints:
        raise ValueError(f"layout {layout} has {len(JOINT_LAYOUTS[layout])} joints, the array has {num_joints}")
    return layout


def candidate_table(layout: str, target: str, *, openpose: bool = True) -> np.ndarray:
    """(slots, K) source indices into ``layout`` for each slot of ``target`` in preference order, -1 padded.
    ``openpose=False`` leaves out the OpenPose joints (``'OP ...'``)."""
    names = JOINT_LAYOUTS[layout]
    slot_names, sources = TARGETS[target]

    def usable(name: str) -> bool:
        return name in names and (openpose or not name.startswith(OPENPOSE_PREFIX))

    rows = [[names.index(s) for s in sources.get(slot, ()) if usable(s)] for slot in slot_names]
    width = max(1, max(len(r) for r in rows))
    return np.array([r + [-1] * (width - len(r)) for r in rows], dtype=np.int64)


def map_joints(
    points: np.ndarray, labelled: np.ndarray, *, layout: str, target: str, openpose: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Move joints from a dataset layout into our slots.

    Args:
        points: (N, J, D) joint coordinates in ``layout``.
        labelled: (N, J) bool, where a source joint is a label.
        layout: a :data:`JOINT_LAYOUTS` name; target: ``"smpl24"`` or ``"h36m17"``.
        openpose: whether OpenPose joints may fill a slot (the readers use them for 2D, never for 3D).
    Returns:
        (N, S, D) float32 coordinates (zeros where unlabelled) and (N, S) float32 0/1 visibility.
    """
    table = candidate_table(layout, target, openpose=openpose)
    n, d = points.shape[0], points.shape[-1]
    out = np.zeros((n, table.shape[0], d), dtype=np.float32)
    vis = np.zeros((n, table.shape[0]), dtype=np.float32)
    for k in range(table.shape[1] - 1, -1, -1):  # later candidates first, so that earlier ones overwrite them
        slots = np.flatnonzero(table[:, k] >= 0)
        if slots.size == 0:
            continue
        src = table[slots, k]
        ok = labelled[:, src]
        out[:, slots] = np.where(ok[..., None], points[:, src], out[:, slots])
        vis[:, slots] = np.maximum(vis[:, slots], ok)
    return out, vis
