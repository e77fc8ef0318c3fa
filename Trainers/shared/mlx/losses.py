"""Log-probabilities on MLX arrays, as the PyTorch side computes them; each method's loss is in
Trainers/shared/methods (sft_loss, kto_loss, dpo_loss)."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn


def token_logps(model, inputs: mx.array, targets: mx.array) -> mx.array:
    """log p(target_t | inputs_<=t) for every position, in float32."""
    logits = model(inputs).astype(mx.float32)
    return -nn.losses.cross_entropy(logits, targets, reduction="none")


def sequence_logps(model, inputs: mx.array, targets: mx.array, mask: mx.array) -> mx.array:
    """Summed log-probability of each sequence's completion tokens."""
    return (token_logps(model, inputs, targets) * mask).sum(axis=-1)
