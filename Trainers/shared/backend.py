"""Pick the training backend and load the model with LoRA adapters on it.

Unsloth on CUDA when it is installed, else transformers + PEFT (with bitsandbytes 4-bit on CUDA when
installed), else plain CPU. Every heavy import happens inside a function, so ``--help`` stays fast.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from Tools.cli_common import UsageError

from .config import RunConfig
from .tiny_model import CHAT_TEMPLATE


class TrainingError(UsageError):
    """A failure the user can act on (no CUDA, gated model, out of memory): one line, exit 2."""


@dataclass(frozen=True)
class Backend:
    name: str  # "unsloth", "transformers+peft", "cpu"
    device: str  # "cuda" or "cpu"
    quantized: bool
    reason: str

    def describe(self) -> str:
        return f"backend: {self.name} on {self.device}{' (4-bit)' if self.quantized else ''}: {self.reason}"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def detect_backend(
    require_cuda: bool = False, load_in_4bit: bool = True, choice: str = "auto", full_finetune: bool = False
) -> Backend:
    """auto: unsloth on CUDA when installed, else transformers + PEFT (bitsandbytes 4-bit when
    installed), else CPU. A forced choice that cannot run is an error, not a silent fallback."""
    import torch

    cuda = torch.cuda.is_available()
    if choice == "cpu" or (choice == "auto" and not cuda):
        if require_cuda:
            raise TrainingError(
                "--require-cuda was given but no CUDA device is visible (check nvidia-smi and "
                "that torch was installed with CUDA: python -c 'import torch; print(torch.version.cuda)')"
            )
        why = "forced by --backend cpu" if choice == "cpu" else "no CUDA device"
        return Backend(
            "cpu", "cpu", False, f"{why}; training in full precision on CPU (slow, for tests and tiny models)"
        )
    if not cuda:
        raise TrainingError(f"--backend {choice} needs a CUDA device, and none is visible (use --backend cpu)")
    if choice == "unsloth" and not _installed("unsloth"):
        raise TrainingError("--backend unsloth: unsloth is not installed: pip install -e '.[gpu]'")
    if choice == "unsloth" and full_finetune:
        raise TrainingError("--full-finetune runs on the transformers backend; pass --backend transformers")
    if choice == "unsloth" or (choice == "auto" and _installed("unsloth") and not full_finetune):
        return Backend(
            "unsloth", "cuda", load_in_4bit, "forced by --backend" if choice == "unsloth" else "unsloth is installed"
        )
    quantized = load_in_4bit and not full_finetune and _installed("bitsandbytes")
    why = (
        "forced by --backend"
        if choice == "transformers"
        else "full fine-tuning"
        if full_finetune
        else "unsloth is not installed"
    )
    if load_in_4bit and not full_finetune and not quantized:
        why += "; bitsandbytes missing, loading 16-bit (pip install -e '.[gpu]')"
    return Backend("transformers+peft", "cuda", quantized, why)


def split_adapter(name: str) -> tuple[str, str | None]:
    """(base model, adapter directory or None): a trained final_model/ can be given as --model-name."""
    config_file = Path(name) / "adapter_config.json"
    if config_file.is_file():
        base = json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
        if not base:
            raise UsageError(f"{config_file} names no base model")
        return base, name
    return name, None


def _explain_load_error(name: str, exc: Exception) -> TrainingError:
    text = f"{type(exc).__name__}: {exc}"
    if "gated" in text.lower() or "401" in text or "403" in text:
        return TrainingError(
            f"{name} is gated or private: accept its licence on huggingface.co and set HF_TOKEN "
            "(or run huggingface-cli login)"
        )
    if isinstance(exc, OSError):
        return TrainingError(
            f"cannot load {name}: not a local model directory and not reachable on the Hub ({str(exc).splitlines()[0]})"
        )
    return TrainingError(f"cannot load {name} ({text.splitlines()[0]})")


@functools.lru_cache(maxsize=1)
def hub_unreachable(timeout: float = 2.0) -> str | None:
    """Why the Hugging Face Hub cannot be used (HF_HUB_OFFLINE, or no connection within timeout),
    else None. Asked once per process, so an offline machine answers in seconds, not after a minute
    of retries per file."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "offline (HF_HUB_OFFLINE is set)"
    url = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    outcome: list = []

    def probe():  # in a thread: name resolution has no timeout of its own
        try:
            socket.create_connection((url.hostname, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"unreachable ({url.hostname}:{port}: {exc.strerror or type(exc).__name__})")

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"unreachable ({url.hostname}:{port}: no answer within {timeout:g} s)"


def settle_hub_access(name: str) -> None:
    """For a Hub id on a machine that cannot reach the Hub: use the local cache only (offline mode,
    no retries), or fail at once in one line when the model is not cached."""
    if Path(name).exists() or not (why := hub_unreachable()):
        return
    import huggingface_hub.constants
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a Hub id (a missing local folder): the loader's own error says so
        return
    if not cached:
        raise TrainingError(
            f"{name} is not in the local Hugging Face cache and the Hub is {why}: connect once to "
            "download it, or pass --model-name with a local model directory"
        )
    os.environ["HF_HUB_OFFLINE"] = "1"
    huggingface_hub.constants.HF_HUB_OFFLINE = True  # read at import time; the variable alone is too late


def load_tokenizer(config: RunConfig):
    """The tokenizer, with a chat template that renders tool calls (said aloud when it is replaced)."""
    settle_hub_access(split_adapter(config.model_name)[0])
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(config.model_name)
    except Exception as exc:
        raise _explain_load_error(config.model_name, exc) from None
    return use_chat_template(tokenizer, config.chat_template)


def use_chat_template(tokenizer, choice: str | None):
    """choice None: the tokenizer's own template (ChatML if it has none), 'tokenizer', or a family
    of chat_templates.py: 'chatml', 'mistral' (Mistral Instruct v3), 'qwen2.5', 'mistral-v11',
    'harmony', 'llama3'."""
    from .chat_templates import family, family_names

    if choice == "chatml" or (choice is None and not tokenizer.chat_template):
        print(
            f"chat template: toolkit ChatML with <tool_call> blocks ({'requested' if choice else 'the tokenizer has none'})"
        )
        tokenizer.chat_template = CHAT_TEMPLATE
    elif choice in family_names():
        print(f"chat template: the toolkit's {choice} template, calls as {family(choice).call_format} (requested)")
        tokenizer.chat_template = family(choice).template
    elif choice not in (None, "tokenizer"):
        raise UsageError(
            f"model.chat_template must be null, 'tokenizer' or one of {', '.join(family_names())}, not {choice!r}"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _lora_kwargs(config: RunConfig) -> dict:
    lora = config.lora
    return {
        "r": lora.r,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "target_modules": list(lora.target_modules),
    }


def load_model(config: RunConfig, backend: Backend, tokenizer):
    """The base model with LoRA adapters, placed for the backend: fresh adapters, or the trained
    adapter --model-name points at (trainable, so KTO continues from SFT and TRL copies it as reference).
    With training.full_finetune, the whole model (an adapter given by --model-name merged into it)."""
    name, adapter = split_adapter(config.model_name)
    full = config.training.full_finetune
    try:
        if backend.name == "unsloth" and adapter:
            from unsloth import FastLanguageModel

            model, _ = FastLanguageModel.from_pretrained(
                model_name=adapter,
                max_seq_length=config.model.max_seq_length,
                load_in_4bit=backend.quantized,
                dtype=None,
            )
            return model
        if backend.name == "unsloth":
            from unsloth import FastLanguageModel

            model, _ = FastLanguageModel.from_pretrained(
                model_name=name, max_seq_length=config.model.max_seq_length, load_in_4bit=backend.quantized, dtype=None
            )
            return FastLanguageModel.get_peft_model(
                model,
                **_lora_kwargs(config),
                bias="none",
                use_gradient_checkpointing="unsloth" if config.training.gradient_checkpointing else False,
                random_state=config.training.seed,
            )
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        kwargs = {}
        if backend.device == "cuda":
            kwargs["dtype"] = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            kwargs["device_map"] = {"": torch.cuda.current_device()}
            if _installed("flash_attn"):  # setup.sh --with-flash-attn
                kwargs["attn_implementation"] = "flash_attention_2"
            if backend.quantized:
                from transformers import BitsAndBytesConfig

                kwargs["quantization_config"] = BitsAndBytesConfig(
                    load_in_4bit=True,
                    bnb_4bit_quant_type="nf4",
                    bnb_4bit_use_double_quant=True,
                    bnb_4bit_compute_dtype=kwargs["dtype"],
                )
        else:
            kwargs["dtype"] = torch.float32
        model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    except TrainingError:
        raise
    except Exception as exc:
        if "out of memory" in str(exc).lower():
            raise out_of_memory(config) from None
        raise _explain_load_error(name, exc) from None
    if backend.quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.training.gradient_checkpointing
        )
    if adapter:
        from peft import PeftModel

        if full:
            return PeftModel.from_pretrained(model, adapter).merge_and_unload()
        return PeftModel.from_pretrained(model, adapter, is_trainable=True)
    if full:
        return model
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [m for m in config.lora.target_modules if m not in present]
    if missing == list(config.lora.target_modules):
        raise UsageError(f"none of the LoRA target modules {missing} exist in {name}; set lora.target_modules")
    kwargs = {**_lora_kwargs(config), "target_modules": [m for m in config.lora.target_modules if m in present]}
    lora = LoraConfig(**kwargs, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def out_of_memory(config: RunConfig) -> TrainingError:
    t = config.training
    return TrainingError(
        f"out of GPU memory with batch {t.batch_size} x {config.model.max_seq_length} tokens on "
        f"{config.model_name}: lower --batch-size (raise --gradient-accumulation to keep the effective "
        "batch), lower --max-seq-length, or pick a smaller --model-size"
    )
