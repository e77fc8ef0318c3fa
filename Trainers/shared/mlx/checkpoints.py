"""Checkpoints of the MLX trainer, in the run's checkpoints/ folder:

    checkpoint_step_N.npz             the LoRA adapters (the only trainable tensors)
    checkpoint_step_N.optimizer.npz   the optimizer state (AdamW moments, step, learning rate)
    checkpoint_step_N.json            step, micro-batches consumed, best validation loss, LoRA shape
    best_checkpoint.npz (+ .optimizer.npz, .json)   the lowest validation loss so far

Each file is written to a temporary name and renamed; the .json goes last, so a checkpoint whose
.json exists is complete, and one cut off mid-write is ignored.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from Tools.cli_common import UsageError
from Tools.schema.records import write_json_atomic

_STEP = re.compile(r"^checkpoint_step_(\d+)\.npz$")
BEST = "best_checkpoint"


def _optimizer_path(adapters: Path) -> Path:
    return adapters.with_name(adapters.stem + ".optimizer.npz")


def _meta_path(adapters: Path) -> Path:
    return adapters.with_suffix(".json")


def _save_npz(path: Path, arrays: dict) -> None:
    import mlx.core as mx

    tmp = path.with_name(f".{path.stem}.tmp.npz")
    mx.savez(str(tmp), **arrays)
    os.replace(tmp, path)


def save_checkpoint(directory: Path, stem: str, adapters: dict, optimizer_state: dict, meta: dict) -> Path:
    """Write one checkpoint (adapters, optimizer state, then the .json that commits it)."""
    from mlx.utils import tree_flatten

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.npz"
    _save_npz(_optimizer_path(path), dict(tree_flatten(optimizer_state)))
    _save_npz(path, adapters)
    write_json_atomic(_meta_path(path), meta)
    return path


@dataclass
class Checkpoint:
    path: Path  # the adapters file
    meta: dict

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    @property
    def run_dir(self) -> Path:
        return self.path.parent.parent

    def adapters(self) -> dict:
        import mlx.core as mx

        return mx.load(str(self.path))

    def optimizer_state(self) -> dict | None:
        import mlx.core as mx
        from mlx.utils import tree_unflatten

        path = _optimizer_path(self.path)
        return tree_unflatten(list(mx.load(str(path)).items())) if path.is_file() else None


def read_checkpoint(path: Path) -> Checkpoint:
    import json

    meta_path = _meta_path(path)
    if not path.is_file() or not meta_path.is_file():
        raise UsageError(f"{path}: not a complete checkpoint (a checkpoint is NAME.npz with NAME.json beside it)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        int(meta["step"])
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{meta_path}: unreadable checkpoint metadata") from None
    return Checkpoint(path, meta)


def step_checkpoints(run_dir: Path) -> list[Path]:
    """The complete checkpoint_step_N.npz files of a run, oldest first."""
    found = [
        p
        for p in (run_dir / "checkpoints").glob("checkpoint_step_*.npz")
        if _STEP.match(p.name) and _meta_path(p).is_file()
    ]
    return sorted(found, key=lambda p: int(_STEP.match(p.name).group(1)))


def prune(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints (best_checkpoint is never touched)."""
    for path in step_checkpoints(run_dir)[:-keep]:
        _meta_path(path).unlink(missing_ok=True)  # uncommit first: a half-deleted checkpoint is never picked
        _optimizer_path(path).unlink(missing_ok=True)
        path.unlink(missing_ok=True)


def _latest_run(output_root: Path) -> Path | None:
    runs = sorted((p for p in output_root.glob("*") if p.is_dir() and step_checkpoints(p)), key=lambda p: p.name)
    return runs[-1] if runs else None


def resolve_resume(spec: str, output_root: Path) -> Checkpoint:
    """``latest``, a checkpoint file, or a run directory (its newest checkpoint). A relative path
    that does not exist from here is looked up in the newest run under the output root, so
    ``--resume checkpoints/checkpoint_step_500.npz`` (or ``best_checkpoint.npz``) means that run's file."""
    if spec == "latest":
        run = _latest_run(output_root)
        if run is None:
            raise UsageError(f"--resume latest: no run with checkpoints under {output_root}")
        return read_checkpoint(step_checkpoints(run)[-1])
    path = Path(spec)
    if not path.exists() and not path.is_absolute() and (run := _latest_run(output_root)) is not None:
        path = next((p for p in (run / spec, run / "checkpoints" / spec) if p.exists()), path)
    if path.is_dir():
        found = step_checkpoints(path)
        if not found:
            raise UsageError(f"--resume {spec}: {path} holds no checkpoints/checkpoint_step_N.npz")
        return read_checkpoint(found[-1])
    if not path.is_file():
        raise UsageError(
            f"--resume {spec}: no such checkpoint (give checkpoints/checkpoint_step_N.npz, "
            "best_checkpoint.npz, a run directory, or latest)"
        )
    return read_checkpoint(path)
