"""Where a trained adapter came from: data, schema, base model, code. Stamped into final_model/."""

from __future__ import annotations

import hashlib
import subprocess
from importlib import metadata
from pathlib import Path

from .config import REPO_ROOT, RunConfig


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def toolkit_commit() -> str | None:
    """The checked-out commit, with '-dirty' when tracked files have changed; None outside git."""
    try:

        def run(*args):
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)

        head = run("rev-parse", "HEAD")
        if head.returncode:
            return None
        dirty = run("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


TORCH_PACKAGES = ("torch", "transformers", "trl", "peft", "unsloth", "bitsandbytes")
MLX_PACKAGES = ("mlx", "mlx-lm", "transformers")


def lineage(config: RunConfig, backend_name: str, records: int, parent: str | None = None) -> dict:
    return lineage_of(
        config.method,
        config.model_name,
        config.data.local_file or f"hf:{config.data.dataset_name}",
        records,
        backend_name,
        parent,
    )


def lineage_of(
    method: str,
    base_model: str,
    dataset: str,
    records: int,
    backend: str,
    parent: str | None = None,
    packages: tuple = TORCH_PACKAGES,
) -> dict:
    """The lineage keys every trainer writes; dataset is a local file (hashed) or 'hf:NAME'."""
    from Tools.schema.registry import load_registry

    return {
        "method": method,
        "base_model": base_model,
        "parent_adapter": parent,  # KTO after SFT: the SFT adapter it started from
        "dataset": dataset,
        "dataset_sha256": file_sha256(dataset) if Path(dataset).is_file() else None,
        "dataset_records": records,
        "schema_hash": load_registry().schema_hash,
        "toolkit_commit": toolkit_commit(),
        "backend": backend,
        "versions": {p: _version(p) for p in packages},
    }
