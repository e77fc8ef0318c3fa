"""LoRA on an mlx-lm model: every matching linear layer of the chosen blocks, however deeply nested,
becomes an mlx-lm ``LoRALinear``; everything else is frozen. Turning the adapters off gives the
frozen base model back, which is KTO's reference model without a second copy of the weights."""

from __future__ import annotations

from contextlib import contextmanager

import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten
from mlx_lm.tuner.lora import LoRALinear

from Tools.cli_common import UsageError

ADAPTER_LEAVES = ("lora_a", "lora_b")


def _matches(name: str, key: str) -> bool:
    return name == key or name.endswith("." + key)


def apply_lora(model: nn.Module, rank: int, alpha: float, dropout: float, layers: int, keys: list[str]) -> list[str]:
    """Wrap the linear layers whose name (or dotted path) is in keys: inside the last ``layers``
    blocks (-1: all), and outside the blocks too (e.g. lm_head). Returns the adapted module paths;
    a key that matches nothing is an error."""
    blocks = getattr(model, "layers", None)
    if not blocks:
        raise UsageError(f"{type(model).__name__} exposes no transformer blocks (model.layers); LoRA cannot be applied")
    model.freeze()
    chosen = blocks if layers == -1 else blocks[-layers:]
    inside = {id(m) for block in blocks for _, m in block.named_modules()}
    scopes = [(block, block.named_modules()) for block in chosen]
    scopes.append((model, [(n, m) for n, m in model.named_modules() if id(m) not in inside]))
    candidates = [
        (scope, name, m)
        for scope, named in scopes
        for name, m in named
        if isinstance(m, (nn.Linear, nn.QuantizedLinear))
    ]
    unmatched = [k for k in keys if not any(_matches(name, k) for _, name, _ in candidates)]
    if unmatched:
        names = sorted({name for _, name, _ in candidates})
        raise UsageError(
            f"lora.target_modules {unmatched} match no linear layer of the model (its linear layers: {', '.join(names)})"
        )
    for scope, _ in scopes:
        swaps = [
            (name, LoRALinear.from_base(m, r=rank, dropout=dropout, scale=alpha / rank))
            for owner, name, m in candidates
            if owner is scope and any(_matches(name, k) for k in keys)
        ]
        if swaps:
            scope.update_modules(tree_unflatten(swaps))
    model.unfreeze(keys=list(ADAPTER_LEAVES), strict=False)
    return [name for name, module in model.named_modules() if isinstance(module, LoRALinear)]


def adapter_weights(model: nn.Module) -> dict:
    """The trainable tensors by dotted name: the LoRA matrices and nothing else."""
    return dict(tree_flatten(model.trainable_parameters()))


def trainable_count(model: nn.Module) -> int:
    return sum(v.size for v in adapter_weights(model).values())


@contextmanager
def adapters_off(model: nn.Module):
    """The base model for the duration: every LoRA branch scaled by 0 (exactly the frozen weights)."""
    layers = [m for _, m in model.named_modules() if isinstance(m, LoRALinear)]
    scales = [m.scale for m in layers]
    for m in layers:
        m.scale = 0.0
    try:
        yield model
    finally:
        for m, scale in zip(layers, scales):
            m.scale = scale


def fuse_adapters(model: nn.Module) -> int:
    """Merge every LoRA branch into its base weight (dequantising quantised layers); returns how many."""
    from mlx_lm.utils import dequantize_model

    fused = [(name, m.fuse(dequantize=True)) for name, m in model.named_modules() if isinstance(m, LoRALinear)]
    if fused:
        model.update_modules(tree_unflatten(fused))
    dequantize_model(model)
    return len(fused)
