"""Attention capture, only when asked: the default forward keeps timm's fused attention.

Inside :func:`capture_attention` every timm ``Attention`` module of the given blocks runs its explicit
(softmax) path, and a forward hook on its ``attn_drop`` records the probabilities. The outputs equal the
fused path's up to floating-point rounding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from timm.layers import Attention
from torch import nn


class AttentionRecorder:
    """Probabilities recorded per block, in call order: a list of (N, heads, Q, K) tensors per block."""

    def __init__(self, num_blocks: int) -> None:
        self.per_block: list[list[torch.Tensor]] = [[] for _ in range(num_blocks)]

    def stacked(self) -> torch.Tensor | None:
        """(L, N, heads, Q, K) for the last call of each block, or None if nothing was recorded."""
        if not all(self.per_block):
            return None
        return torch.stack([calls[-1] for calls in self.per_block])


def _attention_modules(blocks: Sequence[nn.Module]) -> list[Attention]:
    found = []
    for block in blocks:
        attn = getattr(block, "attn", None)
        if not isinstance(attn, Attention):
            raise TypeError(f"block {type(block).__name__} has no timm Attention to capture")
        found.append(attn)
    return found


@contextlib.contextmanager
def capture_attention(blocks: Sequence[nn.Module], *, detach: bool = True) -> Iterator[AttentionRecorder]:
    """Record the attention probabilities of ``blocks`` while the context is open.

    Dropout on attention is skipped in eval mode, so the recorded tensors are the softmax outputs.
    """
    modules = _attention_modules(blocks)
    recorder = AttentionRecorder(len(modules))
    handles = []
    previous = [m.fused_attn for m in modules]

    def make_hook(index: int):
        def hook(_module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            recorder.per_block[index].append(output.detach() if detach else output)

        return hook

    try:
        for i, module in enumerate(modules):
            module.fused_attn = False
            handles.append(module.attn_drop.register_forward_hook(make_hook(i)))
        yield recorder
    finally:
        for handle in handles:
            handle.remove()
        for module, fused in zip(modules, previous):
            module.fused_attn = fused
