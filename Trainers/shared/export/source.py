"""What is being exported: a training run, its adapter, or a full (fused) model directory.

Accepted inputs:
- an NVIDIA run directory (``sft_output_rtx3090/<stamp>/``, ``kto_output_rtx3090/<stamp>/``) or its
  ``final_model/``: a PEFT LoRA adapter with tokenizer, ``effective_config.yaml`` and ``lineage.json``;
- an MLX run's ``fused_model/`` (or the run directory holding it): a full Hugging Face model;
- any directory with ``config.json`` and weights and no ``adapter_config.json``: a full model;
- ``latest``: the newest finished run under a trainer's output folder.

An adapter names its base model in ``adapter_config.json``; a KTO adapter trained from an SFT
adapter continues that adapter, so its base is the original base model and the SFT adapter is
recorded as ``parent_adapter`` in its lineage (read for the model card).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from Tools.cli_common import UsageError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
MODEL_DIRS = ("final_model", "fused_model")


@dataclass
class ExportSource:
    model_dir: Path  # the adapter directory, or the full model directory
    kind: str  # "adapter" or "full"
    base_model: str | None = None  # adapters: a local directory or a Hugging Face id
    run_dir: Path | None = None
    lineage: dict = field(default_factory=dict)
    parent_lineage: dict | None = None  # KTO after SFT: the SFT adapter's lineage
    base_note: str | None = None  # said aloud when the base was swapped for its 16-bit build

    @property
    def name(self) -> str:
        """A default export name: <method>-<run stamp>, or the folder name."""
        method = self.lineage.get("method")
        stamp = self.run_dir.name if self.run_dir else self.model_dir.name
        return f"{method}-{stamp}" if method else stamp

    @property
    def tokenizer_dir(self) -> Path:
        return self.model_dir


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def _has_weights(path: Path) -> bool:
    return any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*.bin"))


def looks_local(name: str) -> bool:
    """A base model given as a path (absolute, relative, or a directory that exists), not a Hub id."""
    return Path(name).is_absolute() or name.startswith((".", "~")) or Path(name).exists() or not HUB_ID.match(name)


def latest_run(runs_root: Path) -> Path:
    runs = sorted(
        (p for p in runs_root.glob("*") if p.is_dir() and any((p / d).is_dir() for d in MODEL_DIRS)),
        key=lambda p: p.name,
    )
    if not runs:
        raise UsageError(f"latest: no finished run (with final_model/ or fused_model/) under {runs_root}")
    return runs[-1]


def resolve_source(path: str | Path, base_model: str | None = None, runs_root: Path | None = None) -> ExportSource:
    """The export source at path; UsageError naming what is missing. base_model overrides the
    adapter's recorded base (e.g. the 16-bit build of a 4-bit base, or a moved directory)."""
    if str(path) == "latest":
        if runs_root is None:
            raise UsageError("'latest' needs a trainer's output folder; pass the run directory instead")
        path = latest_run(runs_root)
    root = Path(path).expanduser()
    if not root.exists():
        raise UsageError(f"{root}: no such run or model directory")
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory (pass a run directory, its final_model/ or a fused_model/)")
    model_dir, run_dir = root, None
    if not (root / "adapter_config.json").is_file() and not (root / "config.json").is_file():
        found = [root / d for d in MODEL_DIRS if (root / d).is_dir()]
        if not found:
            raise UsageError(f"{root}: holds no final_model/ or fused_model/ and no model (is training finished?)")
        model_dir, run_dir = found[0], root
    elif model_dir.name in MODEL_DIRS:
        run_dir = model_dir.parent
    lineage = _read_json(model_dir / "lineage.json") if (model_dir / "lineage.json").is_file() else {}
    if (model_dir / "adapter_config.json").is_file():
        recorded = _read_json(model_dir / "adapter_config.json").get("base_model_name_or_path")
        base = base_model or recorded or lineage.get("base_model")
        if not base:
            raise UsageError(f"{model_dir}/adapter_config.json names no base model; pass --base-model")
        note = None
        if not base_model and base.endswith("-bnb-4bit") and not looks_local(base):
            # a LoRA trained on a 4-bit build merges into the 16-bit weights of the same model
            base, note = (
                base.removesuffix("-bnb-4bit"),
                f"merging into {base.removesuffix('-bnb-4bit')}, the 16-bit build of {base}",
            )
        if looks_local(base) and not (Path(base).expanduser() / "config.json").is_file():
            raise UsageError(
                f"the adapter's base model {base} is missing (moved or deleted?); pass --base-model PATH_OR_ID"
            )
        parent = None
        parent_dir = lineage.get("parent_adapter")
        if parent_dir and (Path(parent_dir) / "lineage.json").is_file():
            parent = _read_json(Path(parent_dir) / "lineage.json")
        return ExportSource(model_dir, "adapter", base, run_dir, lineage, parent, note)
    if (model_dir / "config.json").is_file() and _has_weights(model_dir):
        return ExportSource(model_dir, "full", lineage.get("base_model"), run_dir, lineage)
    raise UsageError(f"{model_dir}: has config.json but no weights (*.safetensors); is the model complete?")
