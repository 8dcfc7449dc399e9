"""Numeric precision of a forward pass: fp32, or bf16 autocast where the hardware computes it fast.

``auto`` resolves to bf16 on CUDA devices that support it and on CPUs with native bf16 matrix instructions
(AVX-512 BF16 or AMX), else to fp32: on a CPU without them (AVX2 only, for example) bf16 is emulated and
runs many times *slower* than fp32 (seen here: 25 s instead of 0.6 s per training step of ``small``).
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "bf16")
PRECISION_CHOICES = (*PRECISIONS, "auto")


def fast_bf16(device: torch.device | str) -> bool:
    """Whether bf16 matrix multiplication is native (fast) on ``device``."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``fp32`` / ``bf16`` as given; ``auto`` -> bf16 where :func:`fast_bf16`, else fp32."""
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {PRECISION_CHOICES}, not {precision!r}")
    if precision == "auto":
        return "bf16" if fast_bf16(device) else "fp32"
    return precision


def autocast_context(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on the device's type, or nothing for fp32 (``auto`` is resolved first)."""
    device = torch.device(device)
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
