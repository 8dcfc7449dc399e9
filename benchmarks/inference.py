"""Inference speed of the INT network on this machine, against the machine's own matrix-multiply peak.

Prints one JSON document: per variant and precision, frames per second, FLOPs per frame (counted by
``torch.utils.flop_counter``), achieved FLOP/s and model FLOP utilisation (MFU) = achieved / the matmul
peak measured in the same run for the same precision.

    python -m benchmarks.inference [--variants paper small] [--frames 16] [--repeats 3] [--device cpu]
        [--layouts contiguous channels_last]

Each variant is timed with the backbone's activations in the default (contiguous, NCHW) layout and in
channels-last (NHWC), which oneDNN's bf16 convolutions may prefer.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from int_model import build_model, load_body_model
from int_model.precision import fast_bf16

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


def matmul_peak(device: torch.device, precision: str, sizes: tuple[int, ...] = (512, 1024, 1536, 3072),
                seconds: float = 1.0) -> float:
    """Best FLOP/s of square matmuls in ``precision`` (the best over several sizes: the fastest kernel path
    depends on the shape, e.g. bf16 at 2048 runs at half the speed of 1024 or 3072 on AVX-512 CPUs)."""
    best = 0.0
    for size in sizes:
        a = torch.randn(size, size, device=device, dtype=DTYPES[precision])
        b = torch.randn(size, size, device=device, dtype=DTYPES[precision])
        for _ in range(2):
            a @ b
        _sync(device)
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            a @ b
            _sync(device)
            best = max(best, 2 * size**3 / (time.perf_counter() - t0))
    return best


def model_flops_per_frame(model: torch.nn.Module, frames: torch.Tensor) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(frames)
    return counter.get_total_flops() / (frames.shape[0] * frames.shape[1])


def time_inference(model, frames, device, precision, repeats: int) -> float:
    """Best seconds per call over ``repeats`` calls, after one warm-up call."""
    best = float("inf")
    with torch.inference_mode(), _autocast(device, precision):
        model(frames)
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            model(frames)
            _sync(device)
            best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["paper", "small"])
    parser.add_argument("--precisions", nargs="+", default=None, choices=list(DTYPES),
                        help="default: fp32, and bf16 where the device has native bf16 (on an AVX2-only CPU bf16 "
                             "is emulated, single-threaded and ~50x slower: ask for it explicitly)")
    parser.add_argument("--frames", type=int, default=16, help="clip length T (one clip per call)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layouts", nargs="+", default=["contiguous", "channels_last"],
                        choices=["contiguous", "channels_last"], help="memory layouts of the input and the backbone")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    if args.precisions is None:
        args.precisions = ["fp32", "bf16"] if fast_bf16(device) else ["fp32"]
    body_model = load_body_model()
    peaks = {p: matmul_peak(device, p) for p in args.precisions}
    results = []
    for variant in args.variants:
        model = build_model(variant, body_model=body_model).eval().to(device)
        size = model.img_size
        frames = torch.randn(1, args.frames, 3, size, size, device=device)
        flops = model_flops_per_frame(model, frames)
        for layout, precision in itertools.product(args.layouts, args.precisions):
            memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
            model = model.to(memory_format=memory_format)
            clip = frames.reshape(-1, 3, size, size).contiguous(memory_format=memory_format).reshape(frames.shape)
            seconds = time_inference(model, clip, device, precision, args.repeats)
            fps = args.frames / seconds
            results.append({
                "variant": variant,
                "precision": precision,
                "layout": layout,
                "parameters": model.num_parameters(),
                "img_size": size,
                "frames_per_call": args.frames,
                "frames_per_second": round(fps, 2),
                "gflops_per_frame": round(flops / 1e9, 3),
                "achieved_gflops": round(fps * flops / 1e9, 1),
                "mfu": round(fps * flops / peaks[precision], 3),
            })
    print(json.dumps({
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "native_bf16": fast_bf16(device),
        "matmul_peak_gflops": {p: round(v / 1e9, 1) for p, v in peaks.items()},
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
