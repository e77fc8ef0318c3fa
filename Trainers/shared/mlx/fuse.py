"""The trained adapters merged into the base weights and saved as a plain Hugging Face model:
``<run>/fused_model/`` with config.json, safetensors weights, the tokenizer (its chat template the
one training used) and lineage.json. transformers loads it and llama.cpp's converter turns it into
a GGUF (Trainers/shared/gguf.py), so the export step treats it like any model directory.

Quantised bases (the mlx-community 4-bit builds) are dequantised, because GGUF export and
transformers both want full-precision weights. The folder is built beside its final place and
renamed into it, so an interrupted fuse never leaves a half-written model.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from Tools.schema.records import write_json_atomic

# Tokenizer sources that save_pretrained may not write back, but llama.cpp's converter reads
# (a SentencePiece tokenizer.model above all), and the generation defaults.
_COPIED = ("tokenizer.model", "*.tiktoken", "generation_config.json")


def save_fused(
    model, hf_tokenizer, model_config: dict, source_dir: Path, out_dir: Path, lineage: dict, effective_config: str
) -> Path:
    """Fuse model's LoRA layers in place and write out_dir (with lineage.json and the run's
    effective_config.yaml, as beside an NVIDIA final_model/); returns it."""
    from mlx_lm.utils import save_config, save_model

    from .lora import fuse_adapters

    fused = fuse_adapters(model)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for pattern in _COPIED:
        for source in Path(source_dir).glob(pattern):
            shutil.copy(source, tmp / source.name)
    save_model(tmp, model)
    config = {k: v for k, v in model_config.items() if k not in ("quantization", "quantization_config")}
    save_config(config, tmp / "config.json")
    hf_tokenizer.save_pretrained(str(tmp))
    write_json_atomic(tmp / "lineage.json", {**lineage, "fused_lora_layers": fused})
    (tmp / "effective_config.yaml").write_text(effective_config, encoding="utf-8")
    old = out_dir.with_name(f".{out_dir.name}.old")
    if out_dir.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return out_dir
