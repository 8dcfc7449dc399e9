"""The training launcher: command lines, validation messages, one run at a time, real tiny runs (finish, stop,
resume, fail, chain, torchrun), metrics and the runs list.

Real runs use ``configs/test`` (the ``tiny`` variant on a few synthetic clips of 64 px generated once for the
module) in a temporary runs root and data root.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import yaml

from int_model.checkpoint import read_checkpoint_file
from training.launch.follow import LOG_FILE, _MetricsFollower, log_tail, parse_metrics, read_metrics
from training.launch.launcher import RunBusyError, TrainLauncher
from training.launch.request import SyntheticData, TrainRequest, training_command
from training.launch.runs import LAUNCH_FILE, checkpoint_choices, list_runs
from training.launch.validation import (
    LaunchError,
    config_sets,
    dataset_from_path,
    find_datasets,
    parse_phase,
    positive_int,
)
from training.phases import load_phase_config

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIGS = REPO / "configs" / "test"


@pytest.fixture
def empty_launcher(tmp_path: Path):
    """A launcher whose data root holds nothing (for validation that needs no data)."""
    return TrainLauncher(tmp_path / "runs", tmp_path / "data")


def wait_for_steps(launcher: TrainLauncher, count: int, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = launcher.status()
        assert status.state == "running", status.log[-2000:]
        if len(status.metrics.train) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"no {count} steps within {timeout} s:\n{launcher.status().log[-2000:]}")


def step_numbers(status) -> list[int]:
    return [r["step"] for r in status.metrics.train]


# ------------------------------------------------------------------------------------------------ commands
def test_one_process_runs_the_trainer_directly_with_a_list_command(empty_launcher: TrainLauncher) -> None:
    plan = empty_launcher.plan(TrainRequest(phase="1", config_set="test", epochs=2, batch_size=3, max_steps=5,
                                            name="run-a"))
    runs, data = empty_launcher.runs_root, empty_launcher.data_root
    assert plan.command == [
        sys.executable, "-m", "cli.train", "--config", str(TEST_CONFIGS / "phase1.yaml"),
        "--out", str(runs / "run-a"), "--data-root", str(data), "--device", "auto", "--no-progress",
        "--set", "train.epochs=2", "--set", "data.batch_size=3", "--max-steps", "5",
    ]
    assert all(isinstance(a, str) for a in plan.command)


def test_several_processes_run_under_torchrun(empty_launcher: TrainLauncher) -> None:
    plan = empty_launcher.plan(TrainRequest(phase=1, config_set="test", nproc=2, name="ddp"))
    assert plan.command[:8] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                                "2", "-m", "cli.train"]
    assert plan.command[8:] == list(plan.train_args)
    assert training_command(["--x"], nproc=1, python="py") == ["py", "-m", "cli.train", "--x"]


def test_config_sets_are_the_folders_of_phase_files() -> None:
    sets = config_sets(REPO / "configs")
    assert list(sets)[:1] == ["paper"] and {"cpu-demo", "test"} <= set(sets)
    assert sets["paper"] == REPO / "configs" and sets["test"] == TEST_CONFIGS


def test_synthetic_clips_replace_the_training_data_through_set(empty_launcher: TrainLauncher) -> None:
    plan = empty_launcher.plan(TrainRequest(phase=1, config_set="test", synthetic=SyntheticData(clips=6, frames=16)))
    overrides = [plan.train_args[i + 1] for i, a in enumerate(plan.train_args) if a == "--set"]
    config = load_phase_config(plan.config, overrides=overrides)  # exactly what the trainer will parse
    (train,) = config.data.train
    assert (train.kind, train.clips, train.frames, train.size, train.seed) == ("synthetic", 6, 16, 64, 1)
    assert [s.name for s in config.data.val] == ["test-val"]  # the config's synthetic val set stays
    # The paper's phase 1 evaluates on 3DPW: synthetic training data brings held-out synthetic clips along.
    paper = empty_launcher.plan(TrainRequest(phase=1, config_set="paper", synthetic=SyntheticData(clips=32, frames=16)))
    overrides = [paper.train_args[i + 1] for i, a in enumerate(paper.train_args) if a == "--set"]
    config = load_phase_config(paper.config, overrides=overrides)
    assert [s.kind for s in (*config.data.train, *config.data.val)] == ["synthetic", "synthetic"]
    assert config.data.train[0].size == 224 and config.data.val[0].clips == 4


def test_dataset_folders_under_the_data_root_become_the_training_data(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "synthetic" / "mine").mkdir(parents=True)
    (root / "synthetic" / "mine" / "manifest.json").write_text("{}")
    (root / "database").mkdir()
    (root / "database" / "h36m_train_db.pt").write_bytes(b"")
    (root / "3dpw" / "sequenceFiles" / "train").mkdir(parents=True)
    assert find_datasets(root) == ["synthetic/mine", "database/h36m_train_db.pt", "3dpw"]
    assert dataset_from_path("synthetic/mine", root) == {"kind": "synthetic", "name": "mine"}
    assert dataset_from_path(root / "3dpw", root)["kind"] == "3dpw"
    assert dataset_from_path("database/h36m_train_db.pt", root) == {
        "kind": "database", "name": "h36m", "split": "train", "path": "database/h36m_train_db.pt"}
    launcher = TrainLauncher(tmp_path / "runs", root)
    plan = launcher.plan(TrainRequest(phase=1, config_set="test", datasets=("synthetic/mine", "3dpw")))
    overrides = [plan.train_args[i + 1] for i, a in enumerate(plan.train_args) if a == "--set"]
    config = load_phase_config(plan.config, overrides=overrides)
    assert [(s.kind, s.name) for s in config.data.train] == [("synthetic", "mine"), ("3dpw", "3dpw")]


# ------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("changes, message", [
    (dict(phase=4), "phase must be 1, 2 or 3, not 4"),
    (dict(phase="phase two"), "phase must be 1, 2 or 3"),
    (dict(config_set="nope"), "unknown config 'nope'; choose one of paper, cpu-demo, test"),
    (dict(epochs=0), "epochs must be a positive whole number, not 0"),
    (dict(epochs=2.5), "epochs must be a positive whole number, not 2.5"),
    (dict(epochs="many"), "epochs must be a positive whole number"),
    (dict(batch_size=-4), "batch size must be a positive whole number, not -4"),
    (dict(nproc=0), "number of processes must be a positive whole number, not 0"),
    (dict(nproc=True), "number of processes must be a positive whole number"),
    (dict(datasets=("../elsewhere",)), "dataset '../elsewhere' is outside the data root"),
    (dict(datasets=("/etc",)), "dataset '/etc' is outside the data root"),
    (dict(datasets=("not-there",)), "dataset 'not-there' not found under the data root"),
    (dict(phase=2), "phase 2 starts from a phase 1 checkpoint: choose an init checkpoint"),
    (dict(phase=3, init="/nowhere/final.pt"), "must lie in one of the checkpoint folders"),
    (dict(init="notes.txt"), "is not a checkpoint: expected a file ending in"),
    (dict(phase=2, synthetic=SyntheticData(clips=4, frames=4)), "frames per clip must be at least 8"),
    (dict(synthetic=SyntheticData(clips=0, frames=16)), "synthetic clips must be a positive whole number"),
    (dict(synthetic=SyntheticData(clips=4, frames=16), datasets=("x",)), "either synthetic clips or dataset"),
    (dict(config_set="paper"), "paper phase 1: data.train database dataset 'coco'"),
    (dict(name="../escape"), "run name '../escape': use letters, digits"),
])
def test_bad_requests_give_one_line_messages(empty_launcher: TrainLauncher, changes: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        empty_launcher.plan(TrainRequest(**{"config_set": "test", **changes}))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_dataset_link_out_of_the_data_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(LaunchError, match="'link' is outside the data root"):
        dataset_from_path("link", root)


def test_a_config_dataset_that_is_missing_is_named(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "database").mkdir(parents=True)
    (root / "database" / "h36m_train_db.pt").write_bytes(b"")
    launcher = TrainLauncher(tmp_path / "runs", root)
    # Training on the user's Human3.6M file; the paper's phase 1 still evaluates on 3DPW, which is not there.
    with pytest.raises(LaunchError, match=r"paper phase 1: data.val 3dpw dataset '3dpw': .*3dpw not found \(put the "
                                          r"3DPW folder there"):
        launcher.plan(TrainRequest(phase=1, config_set="paper", datasets=("database/h36m_train_db.pt",)))
    # The test config's synthetic datasets carry clips and frames: the run generates them, nothing is missing.
    launcher.plan(TrainRequest(phase=1, config_set="test"))


def test_parsers_accept_what_a_form_sends() -> None:
    assert [parse_phase(v) for v in (1, "2", " phase 3 ", "Phase1")] == [1, 2, 3, 1]
    assert [positive_int(v, "n") for v in (3, 3.0, "4")] == [3, 3, 4]
    assert positive_int(None, "n", optional=True) is None and positive_int("", "n", optional=True) is None
    with pytest.raises(LaunchError):
        positive_int(None, "n")


def test_stop_without_a_run_says_so(empty_launcher: TrainLauncher) -> None:
    with pytest.raises(LaunchError, match="nothing to stop: no training run is running"):
        empty_launcher.stop()
    assert empty_launcher.status().state == "idle"


# ------------------------------------------------------------------------------------------------ metrics, runs
def test_metrics_are_parsed_and_followed_as_they_grow(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [{"step": 1, "epoch": 0, "loss": 3.0}, {"step": 2, "epoch": 0, "loss": None, "skipped": True},
             {"event": "checkpoint", "step": 2, "epoch": 0, "file": "last.pt"},
             {"split": "val", "mode": "image", "step": 2, "epoch": 1, "mpjpe": 100.0, "pa_mpjpe": 70.0},
             {"split": "val", "mode": "temporal", "step": 2, "epoch": 1, "mpjpe": 90.0, "pa_mpjpe": 60.0}]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"step": 3, "lo')  # a line being written
    follower = _MetricsFollower(path)
    metrics = follower.read()
    assert [r["step"] for r in metrics.train] == [1, 2] and len(metrics.checkpoints) == 1
    assert metrics.step == 2 and metrics.epoch == 1
    assert metrics.latest_val()["mode"] == "temporal" and metrics.latest_val()["pa_mpjpe"] == 60.0
    with open(path, "a") as f:
        f.write('ss": 2.5, "epoch": 1}\n')
    assert [r["loss"] for r in follower.read().train] == [3.0, None, 2.5]
    path.write_text(json.dumps(lines[0]) + "\n")  # a resumed run rewound the file
    assert [r["step"] for r in follower.read().train] == [1]
    # The trainer rewinds by replacing the file: a new file, even when it is longer, is read from its start.
    replacement = tmp_path / "metrics.tmp"
    replacement.write_text("".join(json.dumps({"step": s, "epoch": 0, "loss": 1.0}) + "\n" for s in (1, 2, 3, 4)))
    replacement.replace(path)
    assert [r["step"] for r in follower.read().train] == [1, 2, 3, 4]
    assert read_metrics(tmp_path).step == 4
    assert parse_metrics(["not json", "[1, 2]", ""]).train == ()


def test_log_tail_keeps_the_newest_progress_update(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("one\ntwo\nrendering  10%\rrendering  50%\rrendering 100%\nthree\n\n")
    assert log_tail(log, 3) == "two\nrendering 100%\nthree"
    assert log_tail(tmp_path / "missing.log") == ""


def test_run_folders_of_the_command_line_are_listed(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    finished, stopped, nested = runs / "mine", runs / "half", runs / "cpu-demo" / "phase2"
    for folder, name in ((finished, "test-phase1"), (stopped, "test-phase3"), (nested, "cpu-demo-phase2")):
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text(yaml.safe_dump({"name": name}))
        (folder / "last.pt").write_bytes(b"")
    (finished / "final.pt").write_bytes(b"")
    (finished / "metrics.jsonl").write_text(json.dumps({"step": 7, "epoch": 1, "loss": 1.0}) + "\n" + json.dumps(
        {"split": "val", "mode": "image", "step": 7, "epoch": 1, "pa_mpjpe": 81.25, "mpjpe": 120.0}) + "\n")
    (runs / "notes").mkdir()  # no run files: not a run
    infos = {i.name: i for i in list_runs(runs)}
    assert set(infos) == {"mine", "half", "cpu-demo/phase2"}
    assert (infos["mine"].state, infos["mine"].phase, infos["mine"].step) == ("finished", 1, 7)
    assert infos["mine"].val_summary == "image: pa_mpjpe 81.2, mpjpe 120.0 mm"
    assert (infos["half"].state, infos["half"].phase) == ("stopped", 3)
    assert infos["cpu-demo/phase2"].phase == 2
    labels = {key: label for label, key in checkpoint_choices(runs)}
    final = f"checkpoint:{(finished / 'final.pt').resolve()}"
    assert f"checkpoint:{(nested / 'last.pt').resolve()}" in labels
    assert labels[final].startswith("mine/final.pt (phase 1, finished, step 7")
    launcher = TrainLauncher(runs, tmp_path / "data")
    assert launcher.default_init(2) == str((finished / "final.pt").resolve())
    assert launcher.default_init(1) is None and launcher.default_init(3) is None
    with pytest.raises(LaunchError, match="is finished"):
        launcher.resume("mine")
    with pytest.raises(LaunchError, match="no run 'gone'"):
        launcher.status("gone")


# ------------------------------------------------------------------------------------------------ real runs
def test_a_tiny_run_finishes_one_at_a_time_and_is_listed(launcher: TrainLauncher) -> None:
    status = launcher.start(TrainRequest(phase=1, config_set="test", name="first"))
    assert status.state == "running" and status.active and launcher.running == "first"
    with pytest.raises(RunBusyError, match="a training run is already running: first; stop it first"):
        launcher.start(TrainRequest(phase=1, config_set="test", name="second"))
    status = launcher.wait(timeout=180)
    assert status.state == "finished", status.log[-2000:]
    assert "finished at step 4: final.pt written" in status.message
    assert step_numbers(status) == [1, 2, 3, 4]
    assert [r["mode"] for r in status.metrics.val] == ["image"] and status.metrics.val[0]["epoch"] == 1
    out = launcher.runs_root / "first"
    assert set(status.run.checkpoints) == {"final.pt", "last.pt"}
    assert read_checkpoint_file(out / "final.pt")["meta"]["phase"] == "test-phase1"
    launch = json.loads((out / LAUNCH_FILE).read_text())
    assert launch["outcome"]["state"] == "finished" and launch["outcome"]["exit_code"] == 0
    assert launch["command"][:3] == [sys.executable, "-m", "cli.train"]
    assert "started: " in (out / LOG_FILE).read_text()
    (info,) = launcher.runs()
    assert (info.name, info.phase, info.state, info.step) == ("first", 1, "finished", 4) and info.val_summary
    assert any(key == f"checkpoint:{(out / 'final.pt').resolve()}" for _, key in launcher.checkpoints())
    assert not (launcher.runs_root / "second").exists()
    # The next phase starts from this run's final.pt.
    following = launcher.next_request("first")
    assert (following.phase, following.config_set, following.init) == (2, "test", str((out / "final.pt").resolve()))
    assert following.name == "first-phase2"
    with pytest.raises(LaunchError, match="already exists"):
        launcher.start(TrainRequest(phase=1, config_set="test", name="first"))


def test_stop_saves_last_pt_and_resume_continues(launcher: TrainLauncher) -> None:
    launcher.start(TrainRequest(phase=1, config_set="test", name="long", epochs=100))
    wait_for_steps(launcher, 2)
    # Another app process sees the run as running (its training process writes into the folder) and leaves it be.
    assert [i.state for i in list_runs(launcher.runs_root)] == ["running"]
    other = TrainLauncher(launcher.runs_root, launcher.data_root)
    with pytest.raises(LaunchError, match="'long' is being trained by another process"):
        other.resume("long")
    status = launcher.stop()
    assert status.state == "stopped", status.log[-2000:]
    assert "last.pt saved" in status.message and "received SIGTERM" in status.log
    out = launcher.runs_root / "long"
    assert set(status.run.checkpoints) == {"last.pt"} and launcher.running is None
    stopped_at = read_checkpoint_file(out / "last.pt")["meta"]["step"]
    assert stopped_at >= 2 and step_numbers(status)[-1] == stopped_at
    assert json.loads((out / LAUNCH_FILE).read_text())["outcome"]["state"] == "stopped"
    assert [i.state for i in launcher.runs()] == ["stopped"]

    launcher.resume("long", max_steps=stopped_at + 2)
    status = launcher.wait(timeout=180)
    assert status.state == "finished", status.log[-2000:]
    assert step_numbers(status) == list(range(1, stopped_at + 3))
    assert read_checkpoint_file(out / "final.pt")["meta"]["step"] == stopped_at + 2


def test_stopping_before_the_first_checkpoint_leaves_nothing_to_resume(launcher: TrainLauncher) -> None:
    launcher.start(TrainRequest(phase=1, config_set="test", name="early"))
    status = launcher.stop()
    assert status.state == "stopped" and "nothing to resume" in status.message
    with pytest.raises(LaunchError, match="has no last.pt to resume from"):
        launcher.resume("early")


def test_a_failing_run_reports_its_exit_and_error(launcher: TrainLauncher, tmp_path: Path) -> None:
    broken = launcher.runs_root / "broken.pt"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(b"\x00 not a checkpoint")
    launcher.start(TrainRequest(phase=2, config_set="test", name="bad", init=str(broken)))
    status = launcher.wait(timeout=180)
    assert status.state == "failed" and status.run.exit_code == 2
    assert status.message.startswith("bad (phase 2): failed (a bad config or checkpoint): error:")
    assert "broken.pt" in status.message


@pytest.mark.slow
def test_a_chain_runs_phases_1_2_3_each_from_the_previous_final(launcher: TrainLauncher) -> None:
    launcher.start(TrainRequest(phase=1, config_set="test", name="chain-phase1", chain=True))
    status = launcher.wait(timeout=400)
    assert status.name == "chain-phase3" and status.state == "finished", status.log[-2000:]
    runs = {i.name: i for i in launcher.runs()}
    assert {n: runs[n].state for n in ("chain-phase1", "chain-phase2", "chain-phase3")} == dict.fromkeys(
        ("chain-phase1", "chain-phase2", "chain-phase3"), "finished")
    for previous, name in (("chain-phase1", "chain-phase2"), ("chain-phase2", "chain-phase3")):
        launch = json.loads((launcher.runs_root / name / LAUNCH_FILE).read_text())
        assert launch["init"] == str((launcher.runs_root / previous / "final.pt").resolve())
    assert read_checkpoint_file(launcher.runs_root / "chain-phase3" / "final.pt")["meta"]["phase"] == "test-phase3"


@pytest.mark.slow
def test_torchrun_ranks_stop_together_and_save_last_pt(launcher: TrainLauncher) -> None:
    launcher.env.update(OMP_NUM_THREADS="1")
    launcher.start(TrainRequest(phase=1, config_set="test", name="ddp", epochs=100, batch_size=2, nproc=2,
                                device="cpu"))
    wait_for_steps(launcher, 2, timeout=240)
    status = launcher.stop()
    assert status.state == "stopped" and "last.pt saved" in status.message, status.log[-3000:]
    saved = read_checkpoint_file(launcher.runs_root / "ddp" / "last.pt")
    assert saved["extra"]["trainer"]["world_size"] == 2
    assert os.path.isfile(launcher.runs_root / "ddp" / "last.pt") and status.run.exit_code == 0
