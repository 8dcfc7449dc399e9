"""The trainer: phase chaining, exact resume, signals, non-finite steps, DDP, data mixing, partial init.

The runs use ``configs/test`` (the ``tiny`` variant, a few generated synthetic clips of 64 px) through the real
command line, in this process where possible (faster) and in subprocesses for signals and torchrun.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from int_model import build_model, save_checkpoint
from int_model.checkpoint import CheckpointError, read_checkpoint_file
from training.data import MixBatchSampler, batch_counts, build_train_data
from training.phases import load_phase_config
from cli.train import main as train_main
from training.trainer import Trainer, initialise_from_checkpoint, weights_fingerprint

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIGS = REPO / "configs" / "test"


@pytest.fixture(autouse=True)
def _restore_torch_globals():
    """In-process runs set threads and deterministic mode; give the rest of the suite its settings back."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def train(phase: int, out: Path, root: Path, *extra: str) -> int:
    args = ["--config", str(TEST_CONFIGS / f"phase{phase}.yaml"), "--out", str(out), "--data-root", str(root),
            "--no-progress", *extra]
    return train_main(args)


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def step_records(out: Path) -> list[dict]:
    return [r for r in records(out) if "loss" in r]


# ------------------------------------------------------------------------------------------------ phases
def test_tiny_phases_chain_1_2_3(tmp_path: Path, data_root: Path) -> None:
    started = time.perf_counter()
    runs = tmp_path / "runs"
    for phase in (1, 2, 3):
        assert train(phase, runs / f"phase{phase}", data_root) == 0
    assert time.perf_counter() - started < 120
    finals = [read_checkpoint_file(runs / f"phase{p}" / "final.pt") for p in (1, 2, 3)]
    assert [f["meta"]["phase"] for f in finals] == ["test-phase1", "test-phase2", "test-phase3"]
    assert finals[0]["config"]["temporal_depth"] == 0 and finals[1]["config"]["temporal_depth"] == 1
    assert not any(k.startswith("temporal_transformer.") for k in finals[0]["state_dict"])
    # Every phase logged its steps, evaluated on the held-out clips and stored the metrics in the meta.
    for p, final in zip((1, 2, 3), finals):
        out = runs / f"phase{p}"
        steps = step_records(out)
        assert [r["step"] for r in steps] == [1, 2, 3, 4]
        for r in steps:
            assert {"step", "epoch", "loss", "lr", "samples_per_sec", "data_wait_frac", "loss_theta",
                    "loss_joints3d", "loss_temporal"} <= set(r)
            assert math.isfinite(r["loss"]) and 0 <= r["data_wait_frac"] <= 1
            assert math.isfinite(r["grad_norm"]) and r["grad_norm"] > 0  # before clipping
        val = [r for r in records(out) if r.get("split") == "val"]
        assert {r["mode"] for r in val} == ({"image"} if p == 1 else {"image", "temporal"})
        assert all(math.isfinite(r["mpjpe"]) and math.isfinite(r["pve"]) for r in val)
        metrics = final["meta"]["metrics"]
        assert metrics["step"] == 4 and math.isfinite(metrics["image"]["pa_mpjpe"])
        assert (metrics["temporal"] is None) == (p == 1)
    # Phase 2 holds everything phase 1 had, plus the temporal transformer.
    p1, p2 = (read_checkpoint_file(runs / f"phase{p}" / "final.pt")["state_dict"] for p in (1, 2))
    assert set(p1) < set(p2) and all(k.startswith("temporal_transformer.") for k in set(p2) - set(p1))
    # Phase 3 uses SGD with the temporal loss switched on.
    extra = read_checkpoint_file(runs / "phase3" / "last.pt")["extra"]
    assert "momentum_buffer" in next(iter(extra["optimizer"]["state"].values()))


def test_missing_init_checkpoint_is_a_clear_error(tmp_path: Path, data_root: Path, capsys) -> None:
    assert train(2, tmp_path / "phase2", data_root) == 2
    assert "init checkpoint not found" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ resume
def test_interrupted_and_resumed_run_repeats_the_uninterrupted_losses(tmp_path: Path, data_root: Path) -> None:
    two_epochs = ("--set", "train.epochs=2")  # 4 steps per epoch: the runs cross an epoch end and an evaluation
    assert train(1, tmp_path / "whole", data_root, "--max-steps", "6", *two_epochs) == 0
    assert train(1, tmp_path / "parts", data_root, "--max-steps", "3", *two_epochs) == 0
    assert [r["step"] for r in step_records(tmp_path / "parts")] == [1, 2, 3]
    assert train(1, tmp_path / "parts", data_root, "--max-steps", "6", "--resume", *two_epochs) == 0

    whole, parts = step_records(tmp_path / "whole"), step_records(tmp_path / "parts")
    assert [r["step"] for r in whole] == [r["step"] for r in parts] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(whole, parts):
        for key in [k for k in a if k == "loss" or k.startswith("loss_")]:
            assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-9), (a["step"], key)
        assert a["lr"] == b["lr"]
    final_a = read_checkpoint_file(tmp_path / "whole" / "final.pt")
    final_b = read_checkpoint_file(tmp_path / "parts" / "final.pt")
    for key, value in final_a["state_dict"].items():
        torch.testing.assert_close(final_b["state_dict"][key], value, rtol=1e-6, atol=1e-7)
    val_a = [r for r in records(tmp_path / "whole") if r.get("split") == "val"]
    val_b = [r for r in records(tmp_path / "parts") if r.get("split") == "val"]
    assert val_a == val_b and len(val_a) == 1
    # Starting again in a folder that holds a run needs --resume.
    assert train(1, tmp_path / "whole", data_root) == 2


def test_resume_refuses_a_changed_run(tmp_path: Path, data_root: Path, capsys) -> None:
    assert train(1, tmp_path / "run", data_root, "--max-steps", "2") == 0
    assert train(1, tmp_path / "run", data_root, "--resume", "--set", "data.batch_size=2") == 2
    assert "batch_size: checkpoint 4 vs now 2" in capsys.readouterr().err


def _wait_for_steps(out: Path, count: int, process: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-2000:]
        if (out / "metrics.jsonl").is_file() and len(step_records(out)) >= count:
            return
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"no {count} steps within {timeout} s")


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "cli.train", "--config", str(TEST_CONFIGS / "phase1.yaml"), "--out",
               str(out), "--data-root", str(data_root), "--no-progress", "--set", "train.epochs=100",
               "--set", "train.checkpoint_every=1000"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_steps(out, 2, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-2000:]
    assert "received SIGTERM" in stderr and "resume with --resume" in stderr
    saved = read_checkpoint_file(out / "last.pt")
    stopped_at = saved["meta"]["step"]
    assert stopped_at >= 2 and saved["extra"]["trainer"]["step"] == stopped_at
    assert step_records(out)[-1]["step"] == stopped_at  # the step in flight finished, nothing after it
    assert not (out / "final.pt").exists()

    assert train(1, out, data_root, "--resume", "--max-steps", str(stopped_at + 2), "--set", "train.epochs=100",
                 "--set", "train.checkpoint_every=1000") == 0
    assert [r["step"] for r in step_records(out)] == list(range(1, stopped_at + 3))
    assert read_checkpoint_file(out / "final.pt")["meta"]["step"] == stopped_at + 2


# ------------------------------------------------------------------------------------------ non-finite
def test_nonfinite_losses_are_skipped_and_too_many_stop_the_run(tmp_path: Path, data_root: Path, caplog) -> None:
    out = tmp_path / "run"
    code = train(1, out, data_root, "--set", "debug.corrupt_steps=[2, 3, 4]", "--set", "train.max_nonfinite=3",
                 "--set", "train.checkpoint_every=1", "--set", "train.epochs=3")
    assert code == 3
    assert "3 non-finite losses in a row (steps 2..4" in caplog.text
    steps = step_records(out)
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert [r["loss"] is None for r in steps] == [False, True, True, True]
    assert [r.get("skipped", False) for r in steps] == [False, True, True, True]
    assert steps[-1]["nonfinite_total"] == 3
    assert read_checkpoint_file(out / "last.pt")["meta"]["step"] == 1  # the last good checkpoint stays
    assert not (out / "final.pt").exists()


def test_a_single_nonfinite_step_is_skipped_and_the_run_goes_on(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "run"
    assert train(1, out, data_root, "--set", "debug.corrupt_steps=[2]") == 0
    steps = step_records(out)
    assert [r["loss"] is None for r in steps] == [False, True, False, False]
    assert read_checkpoint_file(out / "last.pt")["extra"]["trainer"]["nonfinite_total"] == 1


def test_a_skipped_step_leaves_weights_and_optimiser_untouched(data_root: Path, tmp_path: Path) -> None:
    config = load_phase_config(TEST_CONFIGS / "phase1.yaml")
    torch.manual_seed(0)
    model = build_model(config.model.int_config())
    data = build_train_data(config.data, root=data_root, img_size=model.img_size, seed=0)
    trainer = Trainer(config=config, model=model, data=data, val_loader=None, out_dir=tmp_path, progress=False)
    groups = next(iter(data.loader))
    before = weights_fingerprint(model)
    bad = [{**g, "frames": torch.full_like(g["frames"], math.nan)} for g in groups]
    loss, _, ok = trainer._optimisation_step(bad)
    assert not ok and math.isnan(loss)
    assert weights_fingerprint(model) == before and not trainer.optimizer.state
    assert all(p.grad is None for p in model.parameters())
    loss, _, ok = trainer._optimisation_step(groups)
    assert ok and math.isfinite(loss) and weights_fingerprint(model) != before


# ------------------------------------------------------------------------------------------------- DDP
@pytest.mark.slow
def test_two_process_gloo_ddp_keeps_replicas_identical(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "cli.train", "--config", str(TEST_CONFIGS / "phase1.yaml"), "--out", str(out),
               "--data-root", str(data_root), "--no-progress", "--device", "cpu", "--set", "data.batch_size=2",
               "--set", "train.checkpoint_every=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoints = [r for r in records(out) if r.get("event") == "checkpoint"]
    assert len(checkpoints) >= 3
    for record in checkpoints:  # every rank hashed its own weights: the replicas agree bit for bit
        assert len(record["replica_fingerprints"]) == 2
        assert len(set(record["replica_fingerprints"])) == 1
    # The replicas trained: their weights changed from step to step.
    assert len({r["replica_fingerprints"][0] for r in checkpoints}) >= 3
    steps = step_records(out)
    assert [r["step"] for r in steps] == [1, 2, 3, 4]  # 16 clips / (2 per rank x 2 ranks)
    assert read_checkpoint_file(out / "last.pt")["extra"]["trainer"]["world_size"] == 2


# ---------------------------------------------------------------------------------------------- mixing
def test_batch_counts_follow_the_weights() -> None:
    assert batch_counts([0.35, 0.15, 0.1, 0.1, 0.3], 120) == [42, 18, 12, 12, 36]
    assert batch_counts([2, 2, 1, 1, 1, 4, 2, 1], 14) == [2, 2, 1, 1, 1, 4, 2, 1]
    assert sum(batch_counts([1, 1, 1], 8)) == 8
    with pytest.raises(ValueError, match="tiny gets no clip in a batch of 4"):
        batch_counts([1.0, 0.01], 4, names=["big", "tiny"])


def test_mix_sampler_is_deterministic_resumable_and_sharded() -> None:
    def sampler(**kw) -> MixBatchSampler:
        return MixBatchSampler(sizes=[10, 3], counts=[3, 1], steps_per_epoch=5, seed=7, **kw)

    one = sampler()
    one.set_epoch(2)
    epoch = list(one)
    assert len(epoch) == 5 and all(len(b) == 4 for b in epoch)
    assert all([k for k, _, _ in b] == [0, 0, 0, 1] for b in epoch)  # fixed composition of every batch
    assert all(e == 2 for b in epoch for _, _, e in b)
    # Dataset 0's first 10 clips of the epoch are a permutation (each clip once before any repeats).
    assert sorted([c for b in epoch for k, c, _ in b if k == 0][:10]) == list(range(10))
    again = sampler()
    again.set_epoch(2)
    assert list(again) == epoch
    again.set_epoch(3)
    assert list(again) != epoch
    # Resuming at batch 3 gives the rest of the same epoch.
    resumed = sampler()
    resumed.set_epoch(2, start_step=3)
    assert list(resumed) == epoch[3:] and len(resumed) == 2
    # Two ranks: disjoint halves of twice as many clips per step.
    ranks = [sampler(rank=r, world_size=2) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(2)
    for step in range(2):
        keys0, keys1 = ranks[0].batch(step), ranks[1].batch(step)
        assert sorted(keys0 + keys1) == sorted(epoch[2 * step] + epoch[2 * step + 1])


# ------------------------------------------------------------------------------------------ partial init
def _phase_models(body_model):
    torch.manual_seed(1)
    image = build_model("tiny", temporal_depth=0, body_model=body_model)
    torch.manual_seed(2)
    video = build_model("tiny", body_model=body_model)
    return image, video


def test_phase2_loads_phase1_strictly_and_keeps_a_fresh_temporal_transformer(tmp_path: Path, body_model) -> None:
    image, video = _phase_models(body_model)
    fresh = {k: v.clone() for k, v in video.state_dict().items() if k.startswith("temporal_transformer.")}
    save_checkpoint(tmp_path / "phase1.pt", image, meta={"phase": "test-phase1"})
    report = initialise_from_checkpoint(video, tmp_path / "phase1.pt")
    assert set(report.fresh) == set(fresh) and len(fresh) > 0
    assert report.loaded == len(image.state_dict())
    state = video.state_dict()
    for key, value in image.state_dict().items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)
    for key, value in fresh.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)
    # Phase 3 from phase 2: everything loads, nothing is fresh.
    torch.manual_seed(3)
    phase3 = build_model("tiny", body_model=body_model)
    save_checkpoint(tmp_path / "phase2.pt", video)
    assert initialise_from_checkpoint(phase3, tmp_path / "phase2.pt").fresh == ()
    assert weights_fingerprint(phase3) == weights_fingerprint(video)


def test_init_refuses_checkpoints_that_do_not_fit(tmp_path: Path, body_model) -> None:
    image, video = _phase_models(body_model)
    other = build_model("tiny", depth=3, temporal_depth=0, body_model=body_model)
    save_checkpoint(tmp_path / "deeper.pt", other)
    with pytest.raises(CheckpointError, match="depth: checkpoint 3 vs phase 2"):
        initialise_from_checkpoint(video, tmp_path / "deeper.pt")
    # A video checkpoint into an image model: the temporal tensors are unexpected.
    save_checkpoint(tmp_path / "video.pt", video)
    with pytest.raises(CheckpointError, match="unexpected: temporal_transformer"):
        initialise_from_checkpoint(image, tmp_path / "video.pt")
    # A public-format checkpoint lacking a spatial tensor: missing, not silently fresh.
    state = {k: v for k, v in image.state_dict().items() if k != "heads.pose.weight"}
    state["joint3d_tokens"] = state.pop("tokens.joints")
    torch.save({"state_dict": state}, tmp_path / "public.pt")
    with pytest.raises(CheckpointError, match=r"missing: heads\.pose\.weight"):
        initialise_from_checkpoint(video, tmp_path / "public.pt")


# ------------------------------------------------------------------------------------- schedule and freezing
def test_step_schedule_warms_up_then_drops_at_the_milestones() -> None:
    from training.trainer import StepSchedule

    schedule = StepSchedule(milestones=[6, 9], gamma=0.1, warmup_steps=4)
    factors = [schedule(step) for step in range(11)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert factors[4:6] == [1.0, 1.0]
    assert factors[6:9] == pytest.approx([0.1] * 3) and factors[9:] == pytest.approx([0.01] * 2)
    assert StepSchedule(milestones=[2], gamma=0.5)(0) == 1.0


def test_frozen_encoder_stays_fixed_while_the_rest_trains(tmp_path: Path, data_root: Path) -> None:
    runs = tmp_path / "runs"
    assert train(1, runs / "phase1", data_root) == 0
    frozen = ["patch_embed.", "cls_token", "pos_embed", "tokens.", "blocks.", "norm."]
    assert train(2, runs / "phase2", data_root, "--set", f"train.freeze={json.dumps(frozen)}",
                 "--set", "optim.warmup_steps=2") == 0
    before = read_checkpoint_file(runs / "phase1" / "final.pt")["state_dict"]
    after = read_checkpoint_file(runs / "phase2" / "final.pt")["state_dict"]
    for key, value in before.items():
        if key.startswith(tuple(frozen)):
            assert torch.equal(after[key], value), key
    assert not torch.equal(after["heads.pose.weight"], before["heads.pose.weight"])
    # The warm-up is part of the scheduler's saved state (and loads weights-only, as resume does).
    scheduler = read_checkpoint_file(runs / "phase2" / "last.pt")["extra"]["scheduler"]
    assert scheduler["lr_lambdas"][0]["warmup_steps"] == 2


def test_a_freeze_prefix_that_names_nothing_is_an_error(tmp_path: Path, data_root: Path, capsys) -> None:
    assert train(1, tmp_path / "run", data_root, "--set", 'train.freeze=["backbone."]') == 2
    assert "'backbone.' names no parameter" in capsys.readouterr().err
