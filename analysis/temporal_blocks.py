"""How much the temporal transformer changes the joint tokens: the relative size of each block's residual update,
and how much the tokens' frame-to-frame acceleration shrinks between the image model and the temporal output.

A temporal block that barely moves the tokens (updates of a few per cent of their norm) cannot smooth them; one
that moves them a lot but leaves their second difference as large re-maps each frame rather than smoothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from int_model import IntModel


@dataclass(frozen=True)
class BlockChanges:
    """Means over the tokens of one or more clips.

    Attributes:
        per_block: ``|block(x) - x| / |x|`` of each temporal block (its input includes the position embedding).
        whole: ``|temporal(x) - x| / |x|`` from the image tokens to the temporal output.
        accel_in, accel_out: ``|x[t+1] - 2 x[t] + x[t-1]| / |x|`` of the image tokens and of the temporal
            output: the tokens' own jitter, before and after.
    """

    per_block: tuple[float, ...]
    whole: float
    accel_in: float
    accel_out: float

    @property
    def accel_reduction(self) -> float:
        """Share of the tokens' acceleration the temporal transformer removes (0: none, 1: all)."""
        return 1.0 - self.accel_out / self.accel_in if self.accel_in > 0 else 0.0


def _relative(change: torch.Tensor, reference: torch.Tensor) -> float:
    return float((change.norm(dim=-1) / reference.norm(dim=-1).clamp_min(1e-12)).mean())


def _accel(x: torch.Tensor) -> float:
    """Relative second difference over the time axis (dim 1) of (N, T, D) sequences."""
    second = x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]
    return float(second.norm(dim=-1).mean() / x.norm(dim=-1).mean().clamp_min(1e-12))


@torch.no_grad()
def temporal_block_changes(model: IntModel, joint_tokens: torch.Tensor) -> BlockChanges:
    """The changes made by ``model``'s temporal transformer to joint tokens (B, T, J, D) of clips (T >= 3),
    read with forward hooks on its blocks (the per-joint model's sequences are the joints' own; the whole-pose
    baseline's are its projected poses)."""
    if model.temporal_transformer is None:
        raise ValueError("the model has no temporal transformer")
    if joint_tokens.shape[1] < 3:
        raise ValueError(f"need clips of at least 3 frames, got {joint_tokens.shape[1]}")
    per_block: list[float] = []

    def record(_module, inputs, output) -> None:
        per_block.append(_relative(output - inputs[0], inputs[0]))

    hooks = [block.register_forward_hook(record) for block in model.temporal_transformer.blocks]
    try:
        out = model.temporal(joint_tokens)
    finally:
        for hook in hooks:
            hook.remove()
    flat_in = joint_tokens.permute(0, 2, 1, 3).flatten(0, 1).float()  # (B * J, T, D)
    flat_out = out.permute(0, 2, 1, 3).flatten(0, 1).float()
    return BlockChanges(per_block=tuple(per_block), whole=_relative(flat_out - flat_in, flat_in),
                        accel_in=_accel(flat_in), accel_out=_accel(flat_out))


def mean_changes(changes: list[BlockChanges]) -> BlockChanges:
    """The mean of several clips' :class:`BlockChanges`."""
    n = len(changes)
    if n == 0:
        raise ValueError("no clips")
    depth = len(changes[0].per_block)
    return BlockChanges(per_block=tuple(sum(c.per_block[k] for c in changes) / n for k in range(depth)),
                        whole=sum(c.whole for c in changes) / n, accel_in=sum(c.accel_in for c in changes) / n,
                        accel_out=sum(c.accel_out for c in changes) / n)
