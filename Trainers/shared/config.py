"""Training configuration: dataclasses, model-size presets, YAML loading and flag overrides.

Precedence, lowest first: method defaults < ``--model-size`` preset < YAML file < command-line flags.
Unknown YAML keys are errors (a typo must not be silently ignored), and the effective config is
written next to every output so a run can be reproduced from it.

The NVIDIA and the MLX trainers (mlx/config.py) share one vocabulary (PEFT / TRL names: lora.r,
lora.target_modules, data.local_file, training.batch_size, ...), one loader (``read_document`` +
``apply_flags``) and one flag table (``FLAG_KEYS`` plus each method's own flags). The MLX trainer's
earlier names still load through ``ALIASES``, with a one-line deprecation note.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, fields, make_dataclass
from pathlib import Path

from Tools.cli_common import UsageError

from .methods import METHODS, get_method

REPO_ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("auto", "unsloth", "transformers", "cpu")


@dataclass(frozen=True)
class SizePreset:
    model_name: str
    sft_batch_size: int
    kto_batch_size: int  # the preference methods' batch (a KTO row with its KL pair, a DPO pair)
    gradient_accumulation: int
    vram: str  # what the docs promise on a 24 GB RTX 3090, kept beside the preset it describes
    trains: str  # the family, chat template and tool-call format a run with this preset learns
    chat_template: str | None = None  # model.chat_template for the preset's own model (None: its tokenizer's)


# 4-bit builds; the 7b entry is the seed default.
SIZE_PRESETS = {
    "3b": SizePreset(
        "unsloth/Qwen2.5-3B-Instruct-bnb-4bit",
        8,
        4,
        1,
        "8-10 GB",
        "Qwen 2.5: its own ChatML template, calls as <tool_call> blocks (hermes)",
    ),
    "7b": SizePreset(
        "unsloth/mistral-7b-v0.3-bnb-4bit",
        6,
        4,
        1,
        "9-11 GB",
        "Mistral v0.3: the toolkit's Mistral template, calls as [TOOL_CALLS] [...] (mistral)",
        "mistral",
    ),
    "13b": SizePreset(
        "unsloth/Qwen2.5-14B-Instruct-bnb-4bit",
        2,
        2,
        3,
        "14-16 GB",
        "Qwen 2.5: its own ChatML template, calls as <tool_call> blocks (hermes)",
    ),
    "20b": SizePreset(
        "unsloth/gpt-oss-20b-unsloth-bnb-4bit",
        1,
        2,
        6,
        "18-20 GB",
        "gpt-oss: the toolkit's harmony template, calls as <|channel|>commentary to=functions.NAME (harmony)",
        "harmony",
    ),
}
DEFAULT_SIZE = "7b"
SHIPPED_DATASET = "Datasets/teacher/teacher_{method}.jsonl"  # SFT and KTO; a method names its own (shipped_dataset)


@dataclass
class ModelConfig:
    size: str = DEFAULT_SIZE
    name: str | None = None  # any Hugging Face id or local directory; None: the size preset's model
    max_seq_length: int = 2048
    load_in_4bit: bool = True  # only on CUDA; the CPU backend always loads full precision
    require_cuda: bool = False
    backend: str = "auto"  # auto | unsloth | transformers | cpu (Trainers/shared/backend.py)
    # None: the size preset's choice for its own model, else the tokenizer's own; 'tokenizer', or a
    # toolkit template: chatml, mistral, or a family of Trainers/shared/chat_templates.py
    chat_template: str | None = None


@dataclass
class LoraConfig:
    r: int = 32
    alpha: int = 64
    dropout: float = 0.05
    target_modules: list = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


@dataclass
class DataConfig:
    local_file: str | None = None
    dataset_name: str | None = None  # a Hugging Face dataset id, used when no local file is given
    split: str = "train"
    drop_invalid: bool = False  # SFT: drop records the validator fails instead of refusing the file
    # False: train on the records as they are, unvalidated (the closed loop's warm-up, whose calls
    # leave out their context on purpose); not a flag, so a user's data is always validated
    validate: bool = True


# Learning-rate schedules, each after a linear warm-up, in every trainer: cosine or linear to 0, the
# peak held (constant), or wsd (warm-up, stable, decay): the peak held, then a cosine to 0 over the
# last WSD_DECAY of the steps. A model built from scratch learns to copy from its prompt sooner with
# wsd than with cosine, which lowers the rate while that skill is still forming (docs/benchmarks.md).
SCHEDULES = ("cosine", "linear", "constant", "wsd")
WSD_DECAY = 0.2


def wsd_decay_steps(steps: int) -> int:
    """The steps over which wsd decays, in a run of this many optimizer steps."""
    return max(round(WSD_DECAY * steps), 1)


@dataclass
class TrainingConfig:
    batch_size: int = 6
    gradient_accumulation: int = 1
    learning_rate: float = 2e-4
    num_epochs: float = 3
    max_steps: int = -1  # > 0 overrides num_epochs
    warmup_ratio: float = 0.03
    weight_decay: float = 0.01
    # AdamW's second-moment decay. 0.999 suits fine-tuning; a model trained from scratch learns far
    # sooner with 0.95, as language models are pretrained (the closed loop's demo: docs/benchmarks.md)
    adam_beta2: float = 0.999
    lr_scheduler: str = "cosine"  # one of SCHEDULES
    logging_steps: int = 1
    save_steps: int = 100
    save_total_limit: int = 3
    seed: int = 42
    output_dir: str | None = None  # None: <repo>/sft_output_rtx3090 or <repo>/kto_output_rtx3090
    resume: str | None = None  # "latest" or a run / checkpoint directory
    wandb: bool = False
    wandb_project: str = "claudesidian-toolkit"
    gradient_checkpointing: bool = True
    full_finetune: bool = False  # train every weight, no LoRA (small models, e.g. one built from scratch)
    dry_run: bool = False


@dataclass
class MonitorConfig:
    """Live inference during training (Trainers/shared/self_correction): every eval_steps steps the
    model answers num_eval_samples validation examples and the answers are compared with the golden ones."""

    eval_steps: int = 0  # 0: off
    num_eval_samples: int = 5
    eval_max_tokens: int = 512
    validation_file: str | None = None  # golden examples; None: hold validation_fraction of the training data out
    validation_fraction: float = 0.05


@dataclass
class SelfCorrectionConfig:
    """Mistakes found by the monitor become training data (needs monitor.eval_steps > 0)."""

    enabled: bool = False
    auto_queue: bool = False  # place each written file in the training daemon's queue
    min_examples: int = 10
    generation_interval: int = 100  # steps between two written files
    output_dir: str | None = None  # None: <repo>/data/self_correction
    queue_dir: str | None = None  # the daemon's root (inbox/, queue/); None: <repo>


class _Run:
    """The effective config of one NVIDIA run; RunConfig adds a section per method (config.kto, config.dpo)."""

    @property
    def model_name(self) -> str:
        return self.model.name or SIZE_PRESETS[self.model.size].model_name

    @property
    def chat_template(self) -> str | None:
        """model.chat_template, or the size preset's when its own model is trained."""
        if self.model.chat_template or self.model.name:
            return self.model.chat_template
        return SIZE_PRESETS[self.model.size].chat_template

    @property
    def output_root(self) -> Path:
        return Path(self.training.output_dir or REPO_ROOT / f"{self.method}_output_rtx3090")

    def to_dict(self) -> dict:
        return {
            **own_sections(self),
            "effective_model_name": self.model_name,
            "effective_chat_template": self.chat_template,
        }


def own_sections(config) -> dict:
    """The config as a dict without the sections of the other methods."""
    return {k: v for k, v in asdict(config).items() if k not in METHODS or k == config.method}


def config_class(name: str, base: type, sections: dict[str, type]) -> tuple[type, dict[str, type]]:
    """A run config dataclass (``method`` plus one field per section, each method's own section
    after ``training``) and its section table, for the loader. NVIDIA and MLX differ only in the
    classes of some sections."""
    ordered = {}
    for key, section in sections.items():
        ordered[key] = section
        if key == "training":
            ordered.update({m.name: m.section for m in METHODS.values() if m.section})
    columns = [("method", str, field(default="sft"))]
    columns += [(key, section, field(default_factory=section)) for key, section in ordered.items()]
    return make_dataclass(name, columns, bases=(base,)), ordered


RunConfig, SECTIONS = config_class(
    "RunConfig",
    _Run,
    {
        "model": ModelConfig,
        "lora": LoraConfig,
        "data": DataConfig,
        "training": TrainingConfig,
        "monitor": MonitorConfig,
        "self_correction": SelfCorrectionConfig,
    },
)
# paths in a config file are relative to that file; given as flags, to the current folder
PATH_KEYS = {
    ("data", "local_file"),
    ("monitor", "validation_file"),
    ("training", "output_dir"),
    ("self_correction", "output_dir"),
    ("self_correction", "queue_dir"),
}

# The MLX trainer's earlier names -> the shared ones (section None: the top-level key).
ALIASES = {
    ("lora", "rank"): ("lora", "r"),
    ("lora", "keys"): ("lora", "target_modules"),
    ("data", "dataset_path"): ("data", "local_file"),
    ("training", "method"): (None, "method"),
    ("training", "per_device_batch_size"): ("training", "batch_size"),
    ("training", "gradient_accumulation_steps"): ("training", "gradient_accumulation"),
    ("training", "lr_schedule"): ("training", "lr_scheduler"),
    ("training", "save_interval"): ("training", "save_steps"),
    ("training", "keep_checkpoints"): ("training", "save_total_limit"),
    ("training", "eval_interval"): ("monitor", "eval_steps"),
    ("data", "validation_split"): ("monitor", "validation_fraction"),
    ("data", "validation_path"): ("monitor", "validation_file"),
    ("eval", "samples"): ("monitor", "num_eval_samples"),
    ("eval", "max_new_tokens"): ("monitor", "eval_max_tokens"),
}

# Flag name -> (section, key), for every trainer; a method's own flags (e.g. --beta) are in its flags table.
FLAG_KEYS = {
    "model_size": ("model", "size"),
    "model_name": ("model", "name"),
    "max_seq_length": ("model", "max_seq_length"),
    "require_cuda": ("model", "require_cuda"),
    "backend": ("model", "backend"),
    "local_file": ("data", "local_file"),
    "dataset_name": ("data", "dataset_name"),
    "drop_invalid": ("data", "drop_invalid"),
    "full_finetune": ("training", "full_finetune"),
    "batch_size": ("training", "batch_size"),
    "gradient_accumulation": ("training", "gradient_accumulation"),
    "learning_rate": ("training", "learning_rate"),
    "adam_beta2": ("training", "adam_beta2"),
    "num_epochs": ("training", "num_epochs"),
    "max_steps": ("training", "max_steps"),
    "save_steps": ("training", "save_steps"),
    "output_dir": ("training", "output_dir"),
    "resume": ("training", "resume"),
    "seed": ("training", "seed"),
    "wandb": ("training", "wandb"),
    "wandb_project": ("training", "wandb_project"),
    "dry_run": ("training", "dry_run"),
    "eval_steps": ("monitor", "eval_steps"),
    "num_eval_samples": ("monitor", "num_eval_samples"),
    "eval_max_tokens": ("monitor", "eval_max_tokens"),
    "validation_file": ("monitor", "validation_file"),
    "validation_fraction": ("monitor", "validation_fraction"),
    "self_correction": ("self_correction", "enabled"),
    "auto_queue": ("self_correction", "auto_queue"),
    "min_examples": ("self_correction", "min_examples"),
    "generation_interval": ("self_correction", "generation_interval"),
    "self_correction_dir": ("self_correction", "output_dir"),
    "queue_dir": ("self_correction", "queue_dir"),
}


def method_defaults(method: str, size: str) -> RunConfig:
    """The seed documents' defaults for a method, with the size preset applied."""
    method = get_method(method).name
    if size not in SIZE_PRESETS:
        raise UsageError(f"unknown model size {size!r}; expected one of {', '.join(SIZE_PRESETS)}")
    config = RunConfig(method=method, model=ModelConfig(size=size))
    config.training = get_method(method).training_defaults(config.training, SIZE_PRESETS[size])
    return config


def read_yaml(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such config file")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, dict):
        raise UsageError(f"{path}: the config must be a mapping of sections")
    return document


def apply_value(config: RunConfig, section: str, key: str, value, origin: str) -> None:
    target = getattr(config, section)
    known = {f.name: f for f in fields(target)}
    if key not in known:
        raise UsageError(f"{origin}: unknown key '{section}.{key}' (known: {', '.join(known)})")
    default = getattr(target, key)
    if value is not None and default is not None and not isinstance(default, (list, str)):
        kind = type(default)
        if kind is bool and not isinstance(value, bool):
            raise UsageError(f"{origin}: '{section}.{key}' must be true or false, not {value!r}")
        if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise UsageError(f"{origin}: '{section}.{key}' must be a number, not {value!r}")
        value = kind(value) if kind is float else value
    setattr(target, key, value)


def read_document(yaml_path: str | Path | None, sections: dict) -> tuple[str | None, list[tuple]]:
    """A YAML config as (its top-level method or None, [(section, key, value)]): sections checked,
    earlier MLX names mapped through ALIASES (one note on stderr), relative paths resolved
    against the file's folder (model.name only when such a folder exists; else it is a Hub id)."""
    if not yaml_path:
        return None, []
    document, origin = read_yaml(yaml_path), str(yaml_path)
    base = Path(yaml_path).resolve().parent
    method, entries, renamed = document.pop("method", None), [], []
    for section, values in document.items():
        if section not in sections and not any(section == old for old, _ in ALIASES):
            raise UsageError(f"{origin}: unknown section '{section}' (known: {', '.join(sections)})")
        if not isinstance(values, dict):
            raise UsageError(f"{origin}: section '{section}' must be a mapping")
        for key, value in values.items():
            if (section, key) in ALIASES:
                renamed.append((f"{section}.{key}", ".".join(k for k in ALIASES[section, key] if k)))
                section_now, key = ALIASES[section, key]
                if section_now is None:
                    method = value
                    continue
            else:
                section_now = section
            if section_now not in sections:
                raise UsageError(f"{origin}: unknown key '{section}.{key}'")
            entries.append((section_now, key, _resolved(base, section_now, key, value)))
    if renamed:
        print(
            f"note: {origin} uses earlier key names, still accepted: "
            + ", ".join(f"{old} -> {new}" for old, new in renamed),
            file=sys.stderr,
        )
    return method, entries


def _resolved(base: Path, section: str, key: str, value):
    if not isinstance(value, str) or not value or Path(value).expanduser().is_absolute():
        return value
    if (section, key) in PATH_KEYS or ((section, key) == ("model", "name") and (base / value).is_dir()):
        return str((base / value).resolve())
    return value


def flag_key(method: str, flag: str) -> tuple[str, str]:
    """(section, key) of a flag for a method: the shared table, else the method's own flags."""
    if flag in FLAG_KEYS:
        return FLAG_KEYS[flag]
    own = get_method(method).flags
    if flag in own:
        return method, own[flag][0]
    owners = [name for name, m in METHODS.items() if flag in m.flags]
    dashed = f"--{flag.replace('_', '-')}"
    if owners:
        raise UsageError(f"{dashed} applies to --method {' or '.join(owners)} only")
    raise UsageError(f"unknown option {dashed}")


def apply_flags(config, overrides: dict) -> None:
    """Flag values (flag name -> value; None = unset) over the config; paths are made absolute."""
    for flag, value in overrides.items():
        if value is None:
            continue
        section, key = flag_key(config.method, flag)
        if isinstance(value, str) and (
            (section, key) in PATH_KEYS or ((section, key) == ("model", "name") and Path(value).is_dir())
        ):
            value = str(Path(value).expanduser().resolve())
        apply_value(config, section, key, value, f"--{flag.replace('_', '-')}")


def check_method_sections(config, entries: list[tuple], origin) -> None:
    """A method's section only applies to that method's training."""
    for section, _, _ in entries:
        if section in METHODS and section != config.method:
            raise UsageError(f"{origin}: a '{section}' section only applies to {section.upper()} training")


def load_config(method: str, yaml_path: str | Path | None = None, overrides: dict | None = None) -> RunConfig:
    """Build the effective config: defaults < size preset < YAML < overrides (flag name -> value, None = unset)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    named, entries = read_document(yaml_path, SECTIONS)
    if named is not None and named != method:
        raise UsageError(f"{yaml_path}: method {named!r}, but this is the {method} trainer")
    size = overrides.get("model_size") or next((v for s, k, v in entries if (s, k) == ("model", "size")), DEFAULT_SIZE)
    config = method_defaults(method, size)
    check_method_sections(config, entries, yaml_path)
    for section, key, value in entries:
        apply_value(config, section, key, value, str(yaml_path))
    apply_flags(config, overrides)
    check(config)
    return config


def use_shipped_dataset(config: RunConfig) -> bool:
    """With neither a local file nor a Hub dataset, train on the set the repository ships for the
    method (Datasets/teacher/teacher_sft.jsonl or teacher_kto.jsonl, KTO-ready; DPO: the sample
    pairs), as the seed's default dataset did. Returns whether it did, so the command line can say so."""
    if config.data.local_file or config.data.dataset_name:
        return False
    config.data.local_file = str(REPO_ROOT / shipped_dataset(config.method))
    return True


def shipped_dataset(method: str) -> str:
    """The repository's dataset a method trains on when none is given, relative to the repository root."""
    m = get_method(method)
    return m.shipped_dataset.format(name=m.name)


def check_schedule(name: str) -> None:
    if name not in SCHEDULES:
        raise UsageError(f"training.lr_scheduler must be one of {', '.join(SCHEDULES)}, not {name!r}")


def check(config: RunConfig) -> None:
    """Values no trainer could use, reported before anything heavy is loaded."""
    t = config.training
    if config.model.size not in SIZE_PRESETS:
        raise UsageError(f"unknown model size {config.model.size!r}; expected one of {', '.join(SIZE_PRESETS)}")
    for name in ("batch_size", "gradient_accumulation", "max_seq_length"):
        value = getattr(t, name, None) if name != "max_seq_length" else config.model.max_seq_length
        if value < 1:
            raise UsageError(f"{name.replace('_', '-')} must be at least 1, got {value}")
    if config.model.backend not in BACKENDS:
        raise UsageError(f"unknown backend {config.model.backend!r}; expected one of {', '.join(BACKENDS)}")
    if t.learning_rate <= 0 or t.num_epochs <= 0:
        raise UsageError("learning-rate and num-epochs must be positive")
    if not 0 < t.adam_beta2 < 1:
        raise UsageError(f"adam-beta2 must be between 0 and 1 (exclusive), got {t.adam_beta2}")
    check_schedule(t.lr_scheduler)
    m, s = config.monitor, config.self_correction
    if m.eval_steps < 0 or m.num_eval_samples < 1 or m.eval_max_tokens < 1:
        raise UsageError("eval-steps must be 0 (off) or more, num-eval-samples and eval-max-tokens at least 1")
    if not 0 < m.validation_fraction < 1:
        raise UsageError(f"monitor.validation_fraction must be in (0, 1), got {m.validation_fraction}")
    if s.enabled and m.eval_steps < 1:
        raise UsageError("self-correction needs the live monitor: set --eval-steps N (monitor.eval_steps) above 0")
    if s.min_examples < 0 or s.generation_interval < 1:
        raise UsageError("self_correction.min_examples must be 0 or more and generation_interval at least 1")
    get_method(config.method).check_config(config)


def dump_yaml(config: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False)
