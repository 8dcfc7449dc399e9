"""``python -m cli.evaluate --checkpoint C --data DIR``: MPJPE, PA-MPJPE, PVE and acceleration error of one
checkpoint on held-out clips, image-only and temporal, printed as one JSON document (see
:mod:`training.evaluate` for the metrics and the document's fields).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from int_model import load_checkpoint
from training.data import collate_groups
from training.evaluate import eval_dataset, evaluate_model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, type=Path, help="an INT Studio or public INT checkpoint")
    parser.add_argument("--data", required=True, type=Path, help="a synthetic dataset folder or a 3DPW folder")
    parser.add_argument("--split", default="test", help="3DPW split (default: test)")
    parser.add_argument("--clip-len", type=int, default=16, help="frames per evaluation clip (default 16)")
    parser.add_argument("--batch-size", type=int, default=4, help="clips per batch (default 4)")
    parser.add_argument("--max-clips", type=int, default=None, help="evaluate only the first N clips")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--joint-set", choices=("auto", "smpl24", "h36m17"), default="auto")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    args = parser.parse_args(argv)

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    checkpoint = load_checkpoint(args.checkpoint, device=device)
    for warning in checkpoint.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    model = checkpoint.model
    dataset = eval_dataset(args.data, clip_len=args.clip_len, img_size=model.img_size, split=args.split)
    if args.max_clips is not None and len(dataset) > args.max_clips:
        dataset = Subset(dataset, range(args.max_clips))
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=False, collate_fn=collate_groups,
                        num_workers=args.workers)
    result = evaluate_model(model, loader, device=device, precision=args.precision, joint_set=args.joint_set)
    report = {"checkpoint": str(args.checkpoint), "data": str(args.data), "phase": checkpoint.meta.get("phase"),
              "step": checkpoint.meta.get("step"), **result}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
