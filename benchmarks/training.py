"""Training speed on this machine: synthetic generation, and the real training loop per variant and precision.

Prints one JSON document:

* ``synthetic_generation``: frames per second of the synthetic generator (rendering + labels + JPEG shards).
* ``training``: per variant (``tiny``, ``small``), precision (fp32, bf16) and clip length, the trainer's own
  per-step records (``metrics.jsonl``) after warm-up: samples (clips) per second, frames per second, and the
  fraction of step time spent waiting for data (DataLoader workers, persistent, prefetching; target < 10 %).

    python -m benchmarks.training [--variants tiny small] [--precisions fp32 bf16] [--steps 10] [--workers 2]

Run it as a module from the repository root: as a script (``python benchmarks/training.py``) its own folder
comes first on ``sys.path`` and this file would shadow the ``training`` package.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from int_model import build_model
from training.data import build_train_data, prepare_data
from training.phases import phase_config_from_dict
from training.synthetic import read_manifest
from training.trainer import Trainer, seed_everything

DATASET = "bench"


def phase(*, variant: str, precision: str, clip_len: int, batch_size: int, steps: int, workers: int,
          channels_last: bool, clips: int, frames: int, size: int) -> dict:
    return {
        "name": f"bench-{variant}-{precision}-T{clip_len}",
        "model": {"variant": variant, "temporal": clip_len > 1},
        "data": {
            "clip_len": clip_len, "clip_stride": 1 if clip_len == 1 else clip_len // 2, "batch_size": batch_size,
            "steps_per_epoch": steps, "num_workers": workers, "prefetch_factor": 4,
            "train": [{"kind": "synthetic", "name": DATASET, "clips": clips, "frames": frames, "size": size}],
        },
        "train": {"epochs": 1, "precision": precision, "channels_last": channels_last, "eval_every": 0,
                  "checkpoint_every": 10**9, "tensorboard": False},
    }


def measure(config_dict: dict, *, root: Path, warmup: int) -> dict:
    config = phase_config_from_dict(config_dict)
    seed_everything(0)
    model = build_model(config.model.int_config())
    data = build_train_data(config.data, root=root, img_size=model.img_size, seed=0,
                            channels_last=config.train.channels_last)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config=config, model=model, data=data, val_loader=None, out_dir=Path(out), progress=False)
        started = time.perf_counter()
        trainer.fit()
        wall = time.perf_counter() - started
        lines = (Path(out) / "metrics.jsonl").read_text().splitlines()
    steps = [r for r in map(json.loads, lines) if "loss" in r][warmup:]
    step_time = statistics.median(r["step_time"] for r in steps)
    return {
        "variant": config.model.variant, "precision": config.train.precision,
        "channels_last": config.train.channels_last, "clip_len": config.data.clip_len,
        "batch_size": config.data.batch_size, "steps_measured": len(steps),
        "samples_per_sec": round(config.data.batch_size / step_time, 2),
        "frames_per_sec": round(config.data.batch_size * config.data.clip_len / step_time, 2),
        "data_wait_frac": round(sum(r["step_time"] * r["data_wait_frac"] for r in steps)
                                / sum(r["step_time"] for r in steps), 4),
        "step_time_s": round(step_time, 4),
        "wall_s_with_warmup": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["tiny", "small"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--clip-lens", nargs="+", type=int, default=[1],
                        help="1: image-model steps (phase 1); e.g. 16: video-model steps (phases 2-3)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="clips per step (default: 32 at T=1, 4 at T>1)")
    parser.add_argument("--steps", type=int, default=10, help="measured steps per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="steps left out at the start")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--layouts", nargs="+", default=["contiguous", "channels_last"],
                        choices=["contiguous", "channels_last"], help="memory layouts of the backbone to compare")
    parser.add_argument("--clips", type=int, default=12, help="synthetic clips to generate")
    parser.add_argument("--frames", type=int, default=16, help="frames per synthetic clip")
    parser.add_argument("--size", type=int, default=160, help="synthetic frame size, pixels")
    parser.add_argument("--data-root", type=Path, default=None, help="reuse generated data here (default: temporary)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(os.cpu_count() or 1)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root or Path(tmp)
        common = dict(steps=args.warmup + args.steps, workers=args.workers, clips=args.clips, frames=args.frames,
                      size=args.size)
        first = phase(variant="tiny", precision="fp32", clip_len=1, batch_size=1, channels_last=False, **common)
        started = time.perf_counter()
        prepare_data(phase_config_from_dict(first).data, root=root, progress=False)
        manifest = read_manifest(root / "synthetic" / DATASET)
        generation = {
            "frames": manifest["counts"]["frames"], "size": manifest["image_size"], "workers": manifest["run"]["workers"],
            "frames_per_sec": manifest["run"]["frames_per_second"],
            "wall_s_with_startup": round(time.perf_counter() - started, 1),
        }
        results = []
        for clip_len in args.clip_lens:
            for variant in args.variants:
                for precision in args.precisions:
                    for layout in args.layouts:
                        batch = args.batch_size or (32 if clip_len == 1 else 4)
                        config = phase(variant=variant, precision=precision, clip_len=clip_len, batch_size=batch,
                                       channels_last=layout == "channels_last", **common)
                        results.append(measure(config, root=root, warmup=args.warmup))
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "synthetic_generation": generation,
        "training": results,
        "target_data_wait_frac": 0.10,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
