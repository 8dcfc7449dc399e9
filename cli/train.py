"""Train one phase from its config file.

    python -m cli.train --config configs/cpu-demo/phase1.yaml --out runs/cpu-demo/phase1
    python -m cli.train --config configs/cpu-demo/phase2.yaml --out runs/cpu-demo/phase2   # inits from ../phase1
    torchrun --nproc_per_node 2 -m cli.train --config ... --out ...                      # DDP

Options: ``--resume`` continues the run in ``--out`` from its ``last.pt`` (a fresh start when there is none);
``--max-steps N`` stops after global step N; ``--init CKPT`` replaces the config's ``init``; ``--data-root``
replaces ``data.root``; ``--set key=value`` overrides any config field (dotted, e.g. ``train.epochs=2``).

Exit status: 0 when the phase ends, reaches ``--max-steps`` or stops on SIGINT / SIGTERM (with ``last.pt``
saved); 2 for a bad config, checkpoint or dataset file (one line); 3 when too many non-finite losses in a row stopped it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from tqdm.contrib.logging import logging_redirect_tqdm

from int_model import CheckpointError, build_model

from training.data import build_train_data, build_val_loader, prepare_data
from training.datasets import DatasetFileError
from training.launch.validation import LaunchError, check_data
from training.phases import ConfigError, PhaseConfig, load_phase_config
from training.trainer import (
    LAST,
    DistContext,
    NonFiniteLossError,
    Trainer,
    init_distributed,
    initialise_from_checkpoint,
    seed_everything,
)

log = logging.getLogger("training")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cli.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, type=Path, help="the phase's YAML file")
    parser.add_argument("--out", required=True, type=Path, help="output folder (checkpoints, metrics.jsonl)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt when it exists")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this global step")
    parser.add_argument("--init", type=Path, default=None, help="initialise from this checkpoint (not the config's)")
    parser.add_argument("--data-root", type=Path, default=None, help="replaces the config's data.root")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set train.epochs=2 (repeatable)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def configure_torch(config: PhaseConfig, ctx: DistContext) -> None:
    """Threads per process, deterministic algorithms when the phase asks for them."""
    threads = config.train.num_threads or max(1, (os.cpu_count() or 1) // ctx.local_world_size)
    if ctx.device.type == "cpu":
        torch.set_num_threads(threads)
    if config.train.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)


def init_path(args: argparse.Namespace, config: PhaseConfig) -> Path | None:
    """The checkpoint to initialise from: ``--init``, else the config's ``init`` (relative: to ``--out``)."""
    if args.init is not None:
        return args.init
    if config.init is None:
        return None
    path = Path(config.init)
    # Lexically: "runs/x/phase2/../phase1" must not need runs/x/phase2 to exist yet.
    return path if path.is_absolute() else Path(os.path.normpath(args.out / path))


def run(args: argparse.Namespace, ctx: DistContext) -> str:
    config = load_phase_config(args.config, overrides=args.overrides)
    configure_torch(config, ctx)
    last = args.out / LAST
    resume = args.resume and last.is_file()
    if last.is_file() and not args.resume:
        raise ConfigError(f"{args.out} already holds a run ({LAST}); pass --resume or choose another --out")
    if args.resume and not resume:
        log.info("no %s in %s: starting the run from the beginning", LAST, args.out)
    start = init_path(args, config)
    if start is not None and not resume and not start.is_file():
        raise CheckpointError(f"init checkpoint not found: {start} (run the previous phase first, or pass "
                              "--init CKPT)")
    root = args.data_root or Path(config.data.root)
    # The app's rule for every dataset path: inside the data root (symlinks resolved), present or generated.
    check_data(config, root, source=str(args.config))
    if ctx.local_rank == 0:
        prepare_data(config.data, root=root)  # generates missing synthetic datasets (cached for later runs)
    ctx.barrier()

    seed = config.train.seed
    seed_everything(seed)
    model = build_model(config.model.int_config())
    if start is not None and not resume:
        report = initialise_from_checkpoint(model, start)
        fresh = f"; fresh: {len(report.fresh)} temporal-transformer tensors" if report.fresh else ""
        log.info("initialised from %s (%d tensors%s)", start, report.loaded, fresh)
    seed_everything(seed + ctx.rank)

    img_size = model.img_size
    channels_last = config.train.channels_last
    data = build_train_data(config.data, root=root, img_size=img_size, seed=seed, rank=ctx.rank,
                            world_size=ctx.world_size, channels_last=channels_last,
                            pin_memory=ctx.device.type == "cuda")
    val_loader = (build_val_loader(config.data, root=root, img_size=img_size, seed=seed, channels_last=channels_last)
                  if ctx.is_main and config.train.eval_every else None)
    if ctx.is_main:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        mix = ", ".join(f"{n} x{c} ({s} clips)" for n, c, s in zip(data.names, data.counts, data.sizes))
        log.info("phase %s: %s model, %.1f M parameters, %s, %s on %s x %d; %d steps/epoch x %d epochs; batch: %s",
                 config.name, config.model.variant, model.num_parameters() / 1e6,
                 "temporal" if model.temporal_transformer is not None else "image only",
                 config.train.precision, ctx.device.type, ctx.world_size, data.steps_per_epoch,
                 config.train.epochs, mix)

    trainer = Trainer(config=config, model=model, data=data, val_loader=val_loader, out_dir=args.out, ctx=ctx,
                      max_steps=args.max_steps, progress=not args.no_progress)
    if resume:
        trainer.restore(last)
    reason = trainer.fit()
    if ctx.is_main:
        log.info("%s: stopped (%s) at step %d, epoch %d; checkpoints in %s", config.name, reason,
                 trainer.state.step, trainer.state.epoch, args.out)
    return reason


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s [rank {rank}] %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    log.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    try:
        ctx = init_distributed(args.device)
        with logging_redirect_tqdm():
            run(args, ctx)
        return 0
    except (ConfigError, CheckpointError, FileNotFoundError, LaunchError, DatasetFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NonFiniteLossError:
        return 3
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
