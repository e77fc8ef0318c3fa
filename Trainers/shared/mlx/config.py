"""The MLX trainer's configuration: dataclasses in the NVIDIA trainers' vocabulary, loaded by their
loader (Trainers/shared/config.py: sections and keys checked, earlier MLX names accepted through its
ALIASES, relative paths resolved). Imports no mlx.

Precedence, lowest first: defaults < YAML file < command-line flags. Relative paths in the YAML file
are relative to that file; on the command line, to the current folder. The method is the top-level
``method:`` key (sft, kto or dpo); the file may keep every method's section, the method's own is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from Tools.cli_common import UsageError

from .. import config as shared
from ..config import REPO_ROOT, DataConfig, LoraConfig, MonitorConfig, SelfCorrectionConfig
from ..methods import METHODS, get_method


@dataclass
class ModelConfig:
    name: str = "mlx-community/Mistral-7B-Instruct-v0.3-4bit"  # a Hugging Face id or a local directory
    max_seq_length: int = 2048
    chat_template: str | None = None  # None: the tokenizer's own (ChatML if it has none) | tokenizer | chatml | mistral


@dataclass
class MlxLoraConfig(LoraConfig):
    r: int = 16
    alpha: float = 32.0  # scale = alpha / r, as in PEFT
    layers: int = -1  # adapt the last N transformer blocks; -1: all of them
    # target_modules: a name inside a block ("q_proj") or a path ("self_attn.q_proj") matches a linear layer


@dataclass
class TrainingConfig:
    batch_size: int = 2  # per device
    gradient_accumulation: int = 4
    learning_rate: float | None = None  # None: the method's MLX default (sft 1e-4, kto and dpo 5e-6)
    num_epochs: float = 3
    max_steps: int = -1  # > 0 overrides num_epochs
    warmup_steps: int = 10
    lr_scheduler: str = "cosine"  # one of Trainers/shared/config.py SCHEDULES
    weight_decay: float = 0.0
    adam_beta2: float = 0.999  # AdamW's second-moment decay; 0.95 for a model trained from scratch
    max_grad_norm: float = 1.0  # 0: no clipping
    logging_steps: int = 10
    save_steps: int = 100  # optimizer steps between checkpoints
    save_total_limit: int = 3  # newest step checkpoints kept; best_checkpoint is kept apart
    seed: int = 42
    output_dir: str | None = None  # runs go to OUTPUT_DIR/YYYYMMDD_HHMMSS; None: <repo>/mlx_output
    fuse: bool = True  # write fused_model/ (Hugging Face format, for GGUF export) when training ends


@dataclass
class MlxMonitorConfig(MonitorConfig):
    """Evaluation: validation loss, scored sample answers and eval hooks every eval_steps steps."""

    eval_steps: int = 50
    num_eval_samples: int = 8  # validation prompts answered greedily and scored (0: none)
    eval_max_tokens: int = 256
    validation_fraction: float = 0.1  # held out (whole pairs for KTO and DPO); 0: no validation split


class _Mlx:
    @property
    def learning_rate(self) -> float:
        return self.training.learning_rate or get_method(self.method).mlx_learning_rate

    @property
    def output_root(self) -> Path:
        return Path(self.training.output_dir or REPO_ROOT / "mlx_output")

    def to_dict(self) -> dict:
        return {**shared.own_sections(self), "effective_learning_rate": self.learning_rate}


MlxConfig, SECTIONS = shared.config_class(
    "MlxConfig",
    _Mlx,
    {
        "model": ModelConfig,
        "lora": MlxLoraConfig,
        "data": DataConfig,
        "training": TrainingConfig,
        "monitor": MlxMonitorConfig,
        # mistakes at each evaluation become training data (docs/self-correction.md)
        "self_correction": SelfCorrectionConfig,
    },
)


def load_mlx_config(yaml_path: str | Path | None = None, overrides: dict | None = None) -> MlxConfig:
    """defaults < YAML < overrides (flag name -> value; None means unset), with the shared loader."""
    method, entries = shared.read_document(yaml_path, SECTIONS)
    if method is not None and method not in METHODS:
        raise UsageError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    config = MlxConfig(method=method or "sft")
    for section, key, value in entries:
        shared.apply_value(config, section, key, value, str(yaml_path))
    shared.apply_flags(config, overrides or {})
    check(config)
    return config


def check(config: MlxConfig) -> None:
    """Values no run could use, reported before anything heavy is loaded."""
    t, lora, data, monitor = config.training, config.lora, config.data, config.monitor
    for name, value in (
        ("training.batch_size", t.batch_size),
        ("training.gradient_accumulation", t.gradient_accumulation),
        ("training.logging_steps", t.logging_steps),
        ("monitor.eval_steps", monitor.eval_steps),
        ("training.save_steps", t.save_steps),
        ("training.save_total_limit", t.save_total_limit),
        ("model.max_seq_length", config.model.max_seq_length),
        ("lora.r", lora.r),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{name} must be a whole number of at least 1, got {value!r}")
    if t.learning_rate is not None and (
        isinstance(t.learning_rate, bool) or not isinstance(t.learning_rate, (int, float)) or t.learning_rate <= 0
    ):
        raise UsageError(f"training.learning_rate must be a positive number (or null), got {t.learning_rate!r}")
    if t.max_steps <= 0 and t.num_epochs <= 0:
        raise UsageError("set training.max_steps or a positive training.num_epochs")
    shared.check_schedule(t.lr_scheduler)
    if t.warmup_steps < 0 or t.weight_decay < 0 or t.max_grad_norm < 0:
        raise UsageError("training.warmup_steps, weight_decay and max_grad_norm cannot be negative")
    if not 0 < t.adam_beta2 < 1:  # a number: the shared loader refuses any other type
        raise UsageError(f"training.adam_beta2 must be between 0 and 1 (exclusive), got {t.adam_beta2!r}")
    method = get_method(config.method)
    method.check_config(config)
    if method.section:
        section, defaults = getattr(config, method.name), method.section()
        unsupported = [k for k in method.mlx_unsupported if getattr(section, k) != getattr(defaults, k)]
        if unsupported:
            raise UsageError(
                f"{', '.join(f'{method.name}.{k}' for k in unsupported)}: the NVIDIA trainers only; "
                "the MLX trainer does not implement it"
            )
    if not 0 <= lora.dropout < 1 or lora.alpha <= 0:
        raise UsageError("lora.dropout must be in [0, 1) and lora.alpha positive")
    if not isinstance(lora.layers, int) or isinstance(lora.layers, bool) or lora.layers == 0 or lora.layers < -1:
        raise UsageError(f"lora.layers must be -1 (all blocks) or a positive number of blocks, got {lora.layers!r}")
    modules = lora.target_modules
    if not modules or not isinstance(modules, list) or not all(isinstance(k, str) and k for k in modules):
        raise UsageError("lora.target_modules must be a list of layer names, e.g. [q_proj, v_proj]")
    if config.model.chat_template not in (None, "tokenizer", "chatml", "mistral"):
        raise UsageError(
            f"model.chat_template must be null, 'tokenizer', 'chatml' or 'mistral', not {config.model.chat_template!r}"
        )
    if not 0 <= monitor.validation_fraction < 1:
        raise UsageError(f"monitor.validation_fraction must be in [0, 1), got {monitor.validation_fraction!r}")
    if data.dataset_name:
        raise UsageError("data.dataset_name: the MLX trainer reads a local file; set data.local_file")
    if not data.local_file:
        raise UsageError("no dataset: set data.local_file in the config or pass --local-file FILE")
    if monitor.num_eval_samples < 0 or monitor.eval_max_tokens < 1:
        raise UsageError("monitor.num_eval_samples cannot be negative and monitor.eval_max_tokens must be at least 1")


def dump_yaml(config: MlxConfig) -> str:
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False)
