"""Merge a LoRA adapter into its base model and save a full Hugging Face model directory.

``merged_16bit``: base weights in 16-bit (the base's own bfloat16 / float16, float16 when it was
saved in float32) plus the adapter, merged with PEFT's ``merge_and_unload``. ``merged_4bit``: that
merged model reloaded through bitsandbytes in 4-bit NF4 and saved (needs bitsandbytes and a CUDA
GPU; the GGUF is always built from the 16-bit merge). The trained tokenizer, with the chat template
the model was trained on, is saved beside the weights.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
from pathlib import Path

from Tools.cli_common import UsageError

from .source import ExportSource, looks_local

SAVE_METHODS = ("merged_16bit", "merged_4bit", "lora")
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def _safetensors_params(directory: Path) -> int:
    """Parameters in a directory's safetensors files, read from their headers only."""
    total = 0
    for file in directory.glob("*.safetensors"):
        with open(file, "rb") as handle:
            size = struct.unpack("<Q", handle.read(8))[0]
            header = json.loads(handle.read(size))
        for name, info in header.items():
            if name != "__metadata__":
                count = 1
                for dim in info["shape"]:
                    count *= dim
                total += count
    return total


def _params_from_config(config: dict) -> int:
    """An estimate for a base model known only by its config (a Hub id not yet downloaded)."""
    hidden = config.get("hidden_size", 4096)
    layers = config.get("num_hidden_layers", 32)
    inter = config.get("intermediate_size", hidden * 4)
    vocab = config.get("vocab_size", 32000)
    return layers * (4 * hidden * hidden + 3 * hidden * inter) + 2 * vocab * hidden


def parameter_count(source: ExportSource) -> int:
    """How many weights the full model has (for the disk-space estimate before any work)."""
    if source.kind == "full":
        return _safetensors_params(source.model_dir)
    base = Path(source.base_model).expanduser()
    if base.is_dir():
        return _safetensors_params(base) or _params_from_config(json.loads((base / "config.json").read_text()))
    try:
        from transformers import AutoConfig

        from ..backend import settle_hub_access

        settle_hub_access(source.base_model)  # offline: the cache or at once, not a minute of retries
        return _params_from_config(AutoConfig.from_pretrained(source.base_model).to_dict())
    except Exception:  # unknown until downloaded: assume a 7B model rather than no check at all
        return 7_000_000_000


def _torch_dtype(base_config: dict):
    import torch

    name = str(base_config.get("torch_dtype") or base_config.get("dtype") or "")
    return torch.bfloat16 if "bfloat16" in name else torch.float16


def merge_adapter(source: ExportSource, out_dir: Path) -> Path:
    """Write base + adapter merged in 16-bit to out_dir (a new directory) and return it."""
    import torch
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from ..backend import settle_hub_access

    settle_hub_access(source.base_model)  # offline and not cached: one line at once
    try:
        config = AutoConfig.from_pretrained(source.base_model).to_dict()
    except Exception as exc:
        raise UsageError(
            f"cannot load the base model {source.base_model} ({str(exc).splitlines()[0]}); pass --base-model PATH_OR_ID"
        ) from None
    if config.get("quantization_config"):
        raise UsageError(
            f"the base model {source.base_model} is stored quantized ({config['quantization_config'].get('quant_method')}); "
            "merging needs its 16-bit build: pass --base-model with the unquantized model"
        )
    dtype = _torch_dtype(config)
    # merge in float32 on CPU (half-precision matmuls are slow or missing there), store in 16-bit
    work = dtype if torch.cuda.is_available() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(
        source.base_model, dtype=work, device_map={"": 0} if torch.cuda.is_available() else None
    )
    model = PeftModel.from_pretrained(model, str(source.model_dir)).merge_and_unload()
    model = model.to(dtype)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    AutoTokenizer.from_pretrained(source.model_dir).save_pretrained(out_dir)
    _keep_sentencepiece(source, out_dir)
    return out_dir


def _keep_sentencepiece(source: ExportSource, out_dir: Path) -> None:
    """The base model's SentencePiece tokenizer.model beside the merged model (see
    keep_sentencepiece); an adapter trained before the trainers kept it finds it in its base."""
    if (out_dir / "tokenizer.model").exists():
        return
    base = Path(str(source.base_model))
    found = next((d / "tokenizer.model" for d in (source.model_dir, base) if (d / "tokenizer.model").is_file()), None)
    if found is None and not looks_local(str(source.base_model)):
        try:
            from huggingface_hub import hf_hub_download

            found = Path(hf_hub_download(str(source.base_model), "tokenizer.model"))
        except Exception:  # a BPE model (Qwen, Llama 3, gpt-oss) has none: its tokenizer.json is what llama.cpp reads
            found = None
    if found is not None:
        keep_sentencepiece(found, out_dir)


def keep_sentencepiece(model_file: str | Path | None, out_dir: Path) -> None:
    """A SentencePiece tokenizer.model beside a saved tokenizer (trained model, merged model).
    transformers saves only tokenizer.json, and without tokenizer.model llama.cpp's converter reads
    a SentencePiece vocabulary (Mistral, Llama 2, the tiny model) as BPE without its piece scores,
    so llama.cpp splits words unlike training (the tiny model's 'session' became 'se', 'ss', 'ion').
    The converter also takes the chat markers' types (control or printed) from
    tokenizer_config.json's added_tokens_decoder, which transformers no longer writes.
    model_file None or not a SentencePiece file (a BPE model's): nothing to keep."""
    from transformers import AutoTokenizer

    if not model_file or not str(model_file).endswith(".model") or not Path(model_file).is_file():
        return
    if not (out_dir / "tokenizer.model").exists():
        shutil.copyfile(model_file, out_dir / "tokenizer.model")
    config_file = out_dir / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if "added_tokens_decoder" not in config:
        added = AutoTokenizer.from_pretrained(out_dir).added_tokens_decoder
        config["added_tokens_decoder"] = {
            str(i): {
                "content": t.content,
                "special": t.special,
                "normalized": t.normalized,
                "lstrip": t.lstrip,
                "rstrip": t.rstrip,
                "single_word": t.single_word,
            }
            for i, t in added.items()
        }
        config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")


def require_4bit() -> None:
    """merged_4bit is refused before any work where it cannot run."""
    import torch

    if importlib.util.find_spec("bitsandbytes") is None or not torch.cuda.is_available():
        raise UsageError(
            "merged_4bit needs bitsandbytes and a CUDA GPU (pip install -e '.[gpu]'); "
            "use --save-method merged_16bit or lora here"
        )


def save_4bit(merged_dir: Path, out_dir: Path) -> Path:
    """The 16-bit merge reloaded in 4-bit NF4 through bitsandbytes, saved to out_dir."""
    import torch

    require_4bit()
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16,
    )
    model = AutoModelForCausalLM.from_pretrained(merged_dir, quantization_config=quant, device_map={"": 0})
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    AutoTokenizer.from_pretrained(merged_dir).save_pretrained(out_dir)
    return out_dir
