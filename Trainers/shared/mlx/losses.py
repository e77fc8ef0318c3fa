"""SFT and KTO losses on MLX arrays, with the same definitions as the PyTorch side.

KTO follows TRL 1.16's ``KTOTrainer._compute_loss`` (loss_type "kto", eqn 7 of the KTO paper):
the KL estimate z is the batch mean of policy minus reference log-probs of the mismatched
(prompt, other completion) pairs, detached and clamped at 0; desirable completions cost
``1 - sigmoid(beta * (r - z))``, undesirable ones ``1 - sigmoid(beta * (z - r))`` with r the
policy/reference log-ratio, weighted and averaged over the batch. The logged metrics are TRL's:
rewards/chosen, rewards/rejected, rewards/margins, kl, logps/chosen, logps/rejected.
"""
from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn


def token_logps(model, inputs: mx.array, targets: mx.array) -> mx.array:
    """log p(target_t | inputs_<=t) for every position, in float32."""
    logits = model(inputs).astype(mx.float32)
    return -nn.losses.cross_entropy(logits, targets, reduction="none")


def sft_loss(model, inputs: mx.array, targets: mx.array, mask: mx.array) -> tuple[mx.array, mx.array]:
    """Mean negative log-likelihood over the masked (assistant) target tokens, and their count."""
    ntoks = mask.sum()
    return -(token_logps(model, inputs, targets) * mask).sum() / mx.maximum(ntoks, 1), ntoks


def sequence_logps(model, inputs: mx.array, targets: mx.array, mask: mx.array) -> mx.array:
    """Summed log-probability of each sequence's completion tokens."""
    return (token_logps(model, inputs, targets) * mask).sum(axis=-1)


def kto_loss(policy: mx.array, policy_kl: mx.array, reference: mx.array, reference_kl: mx.array, label: mx.array,
             beta: float, desirable_weight: float = 1.0, undesirable_weight: float = 1.0) -> tuple[mx.array, dict]:
    """The batch KTO loss and its metric sums (per label; divide by the counts to log means)."""
    kl = mx.maximum(mx.stop_gradient(policy_kl - reference_kl).mean(), 0.0)
    logratios = policy - reference
    chosen_losses = desirable_weight * (1 - mx.sigmoid(beta * (logratios - kl)))
    rejected_losses = undesirable_weight * (1 - mx.sigmoid(beta * (kl - logratios)))
    loss = mx.where(label, chosen_losses, rejected_losses).mean()
    rewards = beta * mx.stop_gradient(logratios)
    logps = mx.stop_gradient(policy)
    zero = mx.zeros_like(rewards)
    sums = {"kl": kl, "chosen": label.sum(), "rejected": (~label).sum(),
            "rewards/chosen": mx.where(label, rewards, zero).sum(), "rewards/rejected": mx.where(label, zero, rewards).sum(),
            "logps/chosen": mx.where(label, logps, zero).sum(), "logps/rejected": mx.where(label, zero, logps).sum()}
    return loss, sums


def kto_metrics(sums: dict) -> dict:
    """TRL's per-batch KTO metrics from kto_loss's sums (a label absent from the batch logs nothing)."""
    out = {"kl": float(sums["kl"])}
    counts = {side: int(sums[side]) for side in ("chosen", "rejected")}
    for side, count in counts.items():
        if count:
            out[f"rewards/{side}"] = float(sums[f"rewards/{side}"]) / count
            out[f"logps/{side}"] = float(sums[f"logps/{side}"]) / count
    if counts["chosen"] and counts["rejected"]:
        out["rewards/margins"] = out["rewards/chosen"] - out["rewards/rejected"]
    return out
