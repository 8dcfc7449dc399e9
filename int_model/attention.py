"""Attention capture, only when asked: the default forward keeps timm's fused attention.

Inside :func:`capture_attention` every timm ``Attention`` module of the given blocks runs its explicit
(softmax) path, and a forward hook on its ``attn_drop`` records the probabilities. The outputs equal the
fused path's up to floating-point rounding.
"""

from __future__ import annotations

import contextlib
import threading
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


# Models are shared by the app's sessions: captures may overlap in several threads on the same modules. Each module
# stays on the explicit path while any capture holds it, and a hook records only its own thread's calls.
_CAPTURE_LOCK = threading.Lock()
_CAPTURES: dict[int, tuple[int, bool]] = {}  # id(module) -> (open captures, fused_attn before the first)


def _hold_explicit(module: Attention) -> None:
    with _CAPTURE_LOCK:
        count, fused = _CAPTURES.get(id(module), (0, module.fused_attn))
        _CAPTURES[id(module)] = (count + 1, fused)
        module.fused_attn = False


def _release_explicit(module: Attention) -> None:
    with _CAPTURE_LOCK:
        count, fused = _CAPTURES.pop(id(module))
        if count > 1:
            _CAPTURES[id(module)] = (count - 1, fused)
        else:
            module.fused_attn = fused


@contextlib.contextmanager
def capture_attention(blocks: Sequence[nn.Module], *, detach: bool = True) -> Iterator[AttentionRecorder]:
    """Record the attention probabilities of ``blocks`` while the context is open, for calls made by this
    thread (other threads may run the same model at the same time, with or without a capture of their own).

    Dropout on attention is skipped in eval mode, so the recorded tensors are the softmax outputs.
    """
    modules = _attention_modules(blocks)
    recorder = AttentionRecorder(len(modules))
    handles = []
    held = []
    owner = threading.get_ident()

    def make_hook(index: int):
        def hook(_module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if threading.get_ident() == owner:
                recorder.per_block[index].append(output.detach() if detach else output)

        return hook

    try:
        for i, module in enumerate(modules):
            _hold_explicit(module)
            held.append(module)
            handles.append(module.attn_drop.register_forward_hook(make_hook(i)))
        yield recorder
    finally:
        for handle in handles:
            handle.remove()
        for module in held:
            _release_explicit(module)
