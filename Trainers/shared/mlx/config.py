"""The MLX trainer's configuration: dataclasses, YAML loading, flag overrides. Imports no mlx.

Precedence, lowest first: defaults < YAML file < command-line flags. Unknown sections and keys and
wrongly typed values are errors (the YAML reader and the key check are the NVIDIA trainers' own,
Trainers/shared/config.py). Relative paths in the YAML file are relative to that file; on the
command line, to the current folder.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from Tools.cli_common import UsageError

from ..config import REPO_ROOT, SelfCorrectionConfig, apply_value, read_yaml

METHODS = ("sft", "kto")
SCHEDULES = ("cosine", "linear", "constant")
DEFAULT_LEARNING_RATE = {"sft": 1e-4, "kto": 5e-6}  # KTO moves a policy that is already good: much smaller steps


@dataclass
class ModelConfig:
    name: str = "mlx-community/Mistral-7B-Instruct-v0.3-4bit"  # a Hugging Face id or a local directory
    max_seq_length: int = 2048
    chat_template: str | None = None  # None: the tokenizer's own (ChatML if it has none) | tokenizer | chatml | mistral


@dataclass
class LoraConfig:
    rank: int = 16
    alpha: float = 32.0  # scale = alpha / rank, as in PEFT
    dropout: float = 0.05
    layers: int = -1  # adapt the last N transformer blocks; -1: all of them
    # a key matches a linear layer by its name inside a block ("q_proj") or by its path ("self_attn.q_proj")
    keys: list = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


@dataclass
class TrainingConfig:
    method: str = "sft"
    per_device_batch_size: int = 2
    gradient_accumulation_steps: int = 4
    learning_rate: float | None = None  # None: 1e-4 for SFT, 5e-6 for KTO
    num_epochs: float = 3
    max_steps: int = -1  # > 0 overrides num_epochs
    warmup_steps: int = 10
    lr_schedule: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0  # 0: no clipping
    logging_steps: int = 10
    eval_interval: int = 50  # optimizer steps between evaluations (validation loss, samples, eval hooks)
    save_interval: int = 100  # optimizer steps between checkpoints
    keep_checkpoints: int = 3  # newest step checkpoints kept; best_checkpoint is kept apart
    seed: int = 42
    output_dir: str | None = None  # runs go to OUTPUT_DIR/YYYYMMDD_HHMMSS; None: <repo>/mlx_output
    fuse: bool = True  # write fused_model/ (Hugging Face format, for GGUF export) when training ends


@dataclass
class KtoConfig:
    beta: float = 0.1
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0


@dataclass
class DataConfig:
    dataset_path: str | None = None
    validation_split: float = 0.1  # fraction held out for validation (whole true/false pairs for KTO)
    validation_path: str | None = None  # a separate validation file instead of a split


@dataclass
class EvalConfig:
    samples: int = 8  # validation prompts answered greedily at each evaluation and scored (0: none)
    max_new_tokens: int = 256


@dataclass
class MlxConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    kto: KtoConfig = field(default_factory=KtoConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # mistakes at each evaluation become training data (the NVIDIA trainers' section; docs/self-correction.md)
    self_correction: SelfCorrectionConfig = field(default_factory=SelfCorrectionConfig)

    @property
    def method(self) -> str:
        return self.training.method

    @property
    def learning_rate(self) -> float:
        return self.training.learning_rate or DEFAULT_LEARNING_RATE[self.method]

    @property
    def output_root(self) -> Path:
        return Path(self.training.output_dir or REPO_ROOT / "mlx_output")

    def to_dict(self) -> dict:
        return {**asdict(self), "effective_learning_rate": self.learning_rate}


SECTIONS = {"model": ModelConfig, "lora": LoraConfig, "training": TrainingConfig, "kto": KtoConfig,
            "data": DataConfig, "eval": EvalConfig, "self_correction": SelfCorrectionConfig}
# flag -> (section, key); paths given as flags are relative to the current folder
FLAG_KEYS = {"dataset": ("data", "dataset_path"), "model": ("model", "name"), "max_steps": ("training", "max_steps"),
             "output_dir": ("training", "output_dir")}
_PATH_KEYS = {("data", "dataset_path"), ("data", "validation_path"), ("training", "output_dir")}


def _relative_to(base: Path, section: str, key: str, value):
    if not isinstance(value, str) or not value or Path(value).is_absolute():
        return value
    if (section, key) in _PATH_KEYS:
        return str((base / value).resolve())
    if (section, key) == ("model", "name") and (base / value).is_dir():
        return str((base / value).resolve())  # a local model beside the config; anything else is a Hub id
    return value


def load_mlx_config(yaml_path: str | Path | None = None, overrides: dict | None = None) -> MlxConfig:
    """defaults < YAML < overrides (flag name -> value; None means unset)."""
    config = MlxConfig()
    if yaml_path:
        document, origin = read_yaml(yaml_path), str(yaml_path)
        base = Path(yaml_path).resolve().parent
        for section, values in document.items():
            if section not in SECTIONS:
                raise UsageError(f"{origin}: unknown section '{section}' (known: {', '.join(SECTIONS)})")
            if not isinstance(values, dict):
                raise UsageError(f"{origin}: section '{section}' must be a mapping")
            for key, value in values.items():
                apply_value(config, section, key, _relative_to(base, section, key, value), origin)
    for flag, value in (overrides or {}).items():
        if value is None:
            continue
        if flag not in FLAG_KEYS:
            raise UsageError(f"unknown option --{flag.replace('_', '-')}")
        section, key = FLAG_KEYS[flag]
        if (section, key) in _PATH_KEYS or (section == "model" and Path(value).is_dir()):
            value = str(Path(value).resolve())
        apply_value(config, section, key, value, f"--{flag.replace('_', '-')}")
    check(config)
    return config


def check(config: MlxConfig) -> None:
    """Values no run could use, reported before anything heavy is loaded."""
    t, lora, data = config.training, config.lora, config.data
    if t.method not in METHODS:
        raise UsageError(f"training.method must be sft or kto, not {t.method!r}")
    for name, value in (("training.per_device_batch_size", t.per_device_batch_size),
                        ("training.gradient_accumulation_steps", t.gradient_accumulation_steps),
                        ("training.logging_steps", t.logging_steps), ("training.eval_interval", t.eval_interval),
                        ("training.save_interval", t.save_interval), ("training.keep_checkpoints", t.keep_checkpoints),
                        ("model.max_seq_length", config.model.max_seq_length), ("lora.rank", lora.rank)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{name} must be a whole number of at least 1, got {value!r}")
    if t.learning_rate is not None and (isinstance(t.learning_rate, bool) or not isinstance(t.learning_rate, (int, float))
                                        or t.learning_rate <= 0):
        raise UsageError(f"training.learning_rate must be a positive number (or null), got {t.learning_rate!r}")
    if t.max_steps <= 0 and t.num_epochs <= 0:
        raise UsageError("set training.max_steps or a positive training.num_epochs")
    if t.lr_schedule not in SCHEDULES:
        raise UsageError(f"training.lr_schedule must be one of {', '.join(SCHEDULES)}, not {t.lr_schedule!r}")
    if t.warmup_steps < 0 or t.weight_decay < 0 or t.max_grad_norm < 0:
        raise UsageError("training.warmup_steps, weight_decay and max_grad_norm cannot be negative")
    if t.method == "kto" and t.per_device_batch_size < 2:
        raise UsageError(f"KTO needs training.per_device_batch_size of at least 2 (got {t.per_device_batch_size}): the KL "
                         "term pairs completions within a batch; lower gradient_accumulation_steps to keep the effective batch")
    if config.kto.beta <= 0 or config.kto.desirable_weight < 0 or config.kto.undesirable_weight < 0:
        raise UsageError("kto.beta must be positive and the kto weights non-negative")
    if not 0 <= lora.dropout < 1 or lora.alpha <= 0:
        raise UsageError("lora.dropout must be in [0, 1) and lora.alpha positive")
    if not isinstance(lora.layers, int) or isinstance(lora.layers, bool) or lora.layers == 0 or lora.layers < -1:
        raise UsageError(f"lora.layers must be -1 (all blocks) or a positive number of blocks, got {lora.layers!r}")
    if not lora.keys or not isinstance(lora.keys, list) or not all(isinstance(k, str) and k for k in lora.keys):
        raise UsageError("lora.keys must be a list of layer names, e.g. [q_proj, v_proj]")
    if config.model.chat_template not in (None, "tokenizer", "chatml", "mistral"):
        raise UsageError("model.chat_template must be null, 'tokenizer', 'chatml' or 'mistral', "
                         f"not {config.model.chat_template!r}")
    if not 0 <= data.validation_split < 1:
        raise UsageError(f"data.validation_split must be in [0, 1), got {data.validation_split!r}")
    if not data.dataset_path:
        raise UsageError("no dataset: set data.dataset_path in the config or pass --dataset FILE")
    if config.eval.samples < 0 or config.eval.max_new_tokens < 1:
        raise UsageError("eval.samples cannot be negative and eval.max_new_tokens must be at least 1")


def dump_yaml(config: MlxConfig) -> str:
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False)
