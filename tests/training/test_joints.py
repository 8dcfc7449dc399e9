import numpy as np
import pytest

from int_model.constants import H36M_JOINT_NAMES, SMPL_JOINT_NAMES
from training.datasets.joints import (
    H36M17_SOURCES,
    JOINT_LAYOUTS,
    SMPL24_SOURCES,
    candidate_table,
    layout_for,
    map_joints,
)


def test_layouts_have_their_documented_sizes_and_unique_names():
    sizes = {"spin49": 49, "spin24": 24, "common14": 14, "coco18": 18, "insta25": 25}
    for name, size in sizes.items():
        assert len(JOINT_LAYOUTS[name]) == size and len(set(JOINT_LAYOUTS[name])) == size


def test_every_source_name_exists_in_spin49_and_every_slot_exists():
    names = set(JOINT_LAYOUTS["spin49"])
    assert set(SMPL24_SOURCES) <= set(SMPL_JOINT_NAMES) and set(H36M17_SOURCES) == set(H36M_JOINT_NAMES)
    for sources in (*SMPL24_SOURCES.values(), *H36M17_SOURCES.values()):
        assert set(sources) <= names


def test_left_and_right_are_not_swapped():
    spin = JOINT_LAYOUTS["spin49"]
    table = candidate_table("spin49", "smpl24")
    for slot, name in enumerate(SMPL_JOINT_NAMES):
        for src in table[slot][table[slot] >= 0]:
            side = {"left": ("l", "OP L"), "right": ("r", "OP R")}.get(name.split("_")[0])
            assert side is not None and spin[src].startswith(side), (name, spin[src])


def test_first_labelled_candidate_wins_and_openpose_is_optional():
    spin = JOINT_LAYOUTS["spin49"]
    points = np.arange(2 * 49 * 2, dtype=np.float64).reshape(2, 49, 2)
    labelled = np.ones((2, 49), bool)
    labelled[1, spin.index("lhip")] = False
    out, vis = map_joints(points, labelled, layout="spin49", target="smpl24")
    left_hip = SMPL_JOINT_NAMES.index("left_hip")
    np.testing.assert_array_equal(out[0, left_hip], points[0, spin.index("lhip")])
    np.testing.assert_array_equal(out[1, left_hip], points[1, spin.index("OP LHip")])
    assert vis.sum(axis=1).tolist() == [12, 12]
    out, vis = map_joints(points, labelled, layout="spin49", target="smpl24", openpose=False)
    assert vis[1, left_hip] == 0 and not out[1, left_hip].any()


def test_layout_is_inferred_from_the_joint_count():
    assert layout_for(49) == "spin49" and layout_for(14) == "common14"
    with pytest.raises(ValueError, match="no known joint layout has 17 joints"):
        layout_for(17)
    with pytest.raises(ValueError, match="has 25 joints, the array has 49"):
        layout_for(49, "insta25")
