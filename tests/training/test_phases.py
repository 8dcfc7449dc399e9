"""Phase configs: the shipped files carry the paper's values, and bad configs fail naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.phases import ConfigError, PhaseConfig, apply_overrides, load_phase_config, phase_config_from_dict

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ALL_CONFIGS = sorted(CONFIGS.glob("*.yaml")) + sorted(CONFIGS.glob("*/*.yaml"))


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_config_loads(path: Path) -> None:
    config = load_phase_config(path)
    assert isinstance(config, PhaseConfig)
    assert config.model.int_config().has_temporal == config.model.temporal


def test_paper_phases_hold_the_paper_values() -> None:
    p1, p2, p3 = (load_phase_config(CONFIGS / f"phase{i}.yaml") for i in (1, 2, 3))
    # Phase 1: image model, single frames, Adam 1e-4 with /10 at epochs 60 and 90 of 100.
    assert (p1.model.variant, p1.model.temporal, p1.data.clip_len, p1.init) == ("paper", False, 1, None)
    assert p1.model.int_config().temporal_depth == 0
    assert (p1.optim.name, p1.optim.lr, p1.train.epochs) == ("adam", 1e-4, 100)
    assert p1.optim.milestone_steps(100) == [60, 90] and p1.optim.gamma == 0.1
    # Phase 2: from phase 1, temporal transformer, T = 16 every 8 frames, Adam as phase 1.
    assert p2.init == "../phase1/final.pt" and p2.model.temporal
    assert (p2.data.clip_len, p2.data.clip_stride) == (16, 8)
    assert p2.model.int_config().temporal_depth == 3 and p2.model.int_config().temporal_heads == 12
    assert (p2.optim.name, p2.optim.lr, p2.optim.milestone_steps(100)) == ("adam", 1e-4, [60, 90])
    # Phase 3: from phase 2, SGD 1e-4, milestones at 50 % and 75 % of 40 epochs, w_norm 0.01, w_temp 600.
    assert p3.init == "../phase2/final.pt"
    assert (p3.optim.name, p3.optim.lr, p3.train.epochs, p3.optim.milestone_steps(40)) == ("sgd", 1e-4, 40, [20, 30])
    for phase in (p1, p2, p3):
        w = phase.loss
        assert (w.theta, w.beta, w.joints3d, w.joints2d) == (60.0, 0.06, 600.0, 300.0)
    assert (p1.loss.norm, p2.loss.norm, p3.loss.norm) == (1.0, 1.0, 0.01)
    assert (p1.loss.temporal, p2.loss.temporal, p3.loss.temporal) == (0.0, 0.0, 600.0)
    # Phase 2 mixes image datasets (single frames) with video clips.
    assert {s.name for s in p2.data.train} >= {"coco", "mpii", "lspet", "h36m", "mpii3d", "insta"}


def test_cpu_demo_phases_train_the_small_variant_on_synthetic_data() -> None:
    phases = [load_phase_config(CONFIGS / "cpu-demo" / f"phase{i}.yaml") for i in (1, 2, 3)]
    assert [p.model.variant for p in phases] == ["small"] * 3
    assert [p.model.temporal for p in phases] == [False, True, True]
    assert [p.init for p in phases] == [None, "../phase1/final.pt", "../phase2/final.pt"]
    for phase in phases:
        assert all(s.kind == "synthetic" and s.clips and s.frames for s in (*phase.data.train, *phase.data.val))
        assert phase.train.precision == "auto"
    assert phases[1].train.freeze == phases[2].train.freeze and "blocks." in phases[1].train.freeze
    assert phases[2].optim.name == "sgd" and phases[2].loss.norm == 0.01
    # The cpu-demo teaches smoothing from phase 2 on, with one weight in both phases (the paper: 0, then 600).
    assert phases[0].loss.temporal == 0 and phases[1].loss.temporal == phases[2].loss.temporal > 0


@pytest.mark.parametrize("phase", [2, 3])
def test_whole_pose_baseline_is_trained_exactly_as_the_per_joint_model(phase: int) -> None:
    ours = load_phase_config(CONFIGS / "cpu-demo" / f"phase{phase}.yaml").to_dict()
    baseline = load_phase_config(CONFIGS / "cpu-demo" / f"whole-pose-phase{phase}.yaml").to_dict()
    assert baseline["model"].pop("overrides") == {"temporal_mode": "whole_pose"}
    assert ours["model"].pop("overrides") == {}
    assert baseline.pop("init") == ours.pop("init").replace("phase2", "whole-pose-phase2")
    for key in ("name", "description"):
        baseline.pop(key), ours.pop(key)
    assert baseline == ours


def _base() -> dict:
    return yaml.safe_load((CONFIGS / "test" / "phase1.yaml").read_text())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr=-1", "optim.lr: must be > 0"),
        ("optim.lrr=1", "optim.lrr: unknown field (did you mean 'lr'?)"),
        ("train.epochs=two", "train.epochs: expected an integer, got 'two'"),
        ("data.batch_size=0", "data.batch_size: must be >= 1"),
        ("model.variant=huge", "model.variant: unknown model variant 'huge'"),
        ("model.overrides={depht: 3}", "model.overrides: unknown config fields: depht"),
        ("data.train[0].kind=video", "data.train[0].kind: must be one of synthetic, database, 3dpw"),
        ("data.train[0].weight=0", "data.train[0].weight: must be > 0"),
        ("model.temporal=true", "model.temporal: the temporal transformer needs clips"),
        ("loss.temporal=600", "loss.temporal: the temporal loss needs clips"),
        ("loss.theta=-1", "loss.theta: must be >= 0"),
        ("loss.w_theta=1", "loss.w_theta: unknown field"),
        ("optim.milestones=[0.9, 0.6]", "optim.milestones: fractions of the run, increasing"),
        ("optim.name=lbfgs", "optim.name: must be one of adam, sgd"),
        ("train.precision=fp16", "train.precision: must be one of fp32, bf16, auto"),
        ("train.deterministic=1", "train.deterministic: expected true or false"),
        ("data.train=[]", "data.train: list at least one training dataset"),
        ("data.train[0].path=x", "data.train[0].path: a synthetic dataset lives in"),
        ("trian.epochs=3", "trian: unknown field (did you mean 'train'?)"),
    ],
)
def test_bad_fields_are_named(tmp_path: Path, override: str, message: str) -> None:
    path = tmp_path / "phase.yaml"
    path.write_text(yaml.safe_dump(_base()))
    with pytest.raises(ConfigError) as caught:
        load_phase_config(path, overrides=[override])
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_missing_required_fields_and_bad_files(tmp_path: Path) -> None:
    data = _base()
    del data["train"]["epochs"]
    with pytest.raises(ConfigError, match=r"<config>: train\.epochs: required field is missing"):
        phase_config_from_dict(data)
    with pytest.raises(ConfigError, match="model: required field is missing"):
        phase_config_from_dict({k: v for k, v in _base().items() if k != "model"})
    with pytest.raises(ConfigError, match="phase config not found"):
        load_phase_config(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_phase_config(tmp_path / "empty.yaml")
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_phase_config(tmp_path / "bad.yaml")


def test_overrides_and_numbers() -> None:
    data = apply_overrides(_base(), ["train.epochs=3", "data.train[0].clips=2", "optim.lr=1e-3"])
    config = phase_config_from_dict(data)
    assert config.train.epochs == 3 and config.data.train[0].clips == 2
    assert config.optim.lr == pytest.approx(1e-3)  # "1e-3" is a YAML 1.1 string; numeric strings are accepted
    assert _base()["train"]["epochs"] == 1  # the input is not modified
    with pytest.raises(ConfigError, match=r"override 'data\.train\[5\]\.clips=2': train\[5\] does not exist"):
        apply_overrides(_base(), ["data.train[5].clips=2"])
    assert config.to_dict()["data"]["train"][0]["name"] == "test-train"
    assert phase_config_from_dict(config.to_dict()) == config  # round trip


def test_milestones_are_fractions_of_the_run() -> None:
    config = phase_config_from_dict(apply_overrides(_base(), ["optim.milestones=[0.5, 0.75]"]))
    assert config.optim.milestone_steps(40) == [20, 30]
    assert config.optim.milestone_steps(3) == [2]  # rounding never drops below step 1 or duplicates


def test_whole_pose_baseline_phases_differ_from_int_only_in_the_temporal_mode() -> None:
    for n in (2, 3):
        ours = load_phase_config(CONFIGS / "cpu-demo" / f"phase{n}.yaml").to_dict()
        theirs = load_phase_config(CONFIGS / "cpu-demo" / f"whole-pose-phase{n}.yaml").to_dict()
        assert theirs["model"]["overrides"] == {"temporal_mode": "whole_pose"}
        differ = sorted(k for k in ours if ours[k] != theirs[k])
        assert differ == (["description", "model", "name"] if n == 2 else ["description", "init", "model", "name"])
