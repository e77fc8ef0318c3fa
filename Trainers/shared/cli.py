"""The shared command line of the training entry points (train_sft.py, train_kto.py, train_dpo.py); each
method adds its own flags (methods/*.py)."""

from __future__ import annotations

import json
import sys

from Tools.cli_common import ArgumentParser, UsageError, die

from .config import BACKENDS, SIZE_PRESETS, load_config, shipped_dataset, use_shipped_dataset
from .methods import METHODS, get_method

PRECEDENCE = "Precedence: method defaults < --model-size preset < --config YAML < flags."


def build_parser(method: str) -> ArgumentParser:
    name = f"train_{get_method(method).name}.py"
    parser = ArgumentParser(
        prog=name,
        description=f"{method.upper()} LoRA training on an RTX 3090-class GPU (CPU for tiny models). {PRECEDENCE}",
    )
    add_training_flags(parser, method)
    return parser


def add_training_flags(parser, method: str | None, omit: tuple[str, ...] = ()) -> None:
    """The training flags (FLAG_KEYS and the method's own), less those in omit; method None adds every
    method's own flags (the daemon picks the method at run time)."""

    def add(flag, **kwargs):
        if flag not in omit:
            parser.add_argument(flag, **kwargs)

    methods = list(METHODS.values()) if method is None else [get_method(method)]
    own = "".join(f"{m.name}, " for m in methods if m.section)
    add(
        "--config",
        metavar="FILE",
        help=f"YAML config (sections model, lora, data, training, {own}monitor, self_correction)",
    )
    add(
        "--model-size",
        choices=list(SIZE_PRESETS),
        help="selects the base model and its batch defaults (default 7b): "
        + "; ".join(f"{size} {preset.model_name}: {preset.trains}" for size, preset in SIZE_PRESETS.items())
        + ". Llama 3.x and others: --model-name (their own template; model.chat_template llama3 for the toolkit's)",
    )
    add(
        "--model-name",
        help="any Hugging Face id or local directory (a trained final_model/ continues from that adapter)",
    )
    add(
        "--local-file",
        metavar="JSONL",
        help="dataset file in the toolkit's record format (default: the shipped "
        f"{shipped_dataset(method or 'sft')} when no --dataset-name is given either)",
    )
    add("--dataset-name", help="Hugging Face dataset id, used when no local file is given")
    add(
        "--drop-invalid",
        action="store_true",
        default=None,
        help="drop records that fail validation instead of refusing the file (KTO: re-paired to keep the alternation)",
    )
    add(
        "--full-finetune",
        action="store_true",
        default=None,
        help="train every weight instead of LoRA adapters (for small models; final_model/ is then a full model)",
    )
    add("--batch-size", type=int, help="per-device batch size")
    add("--gradient-accumulation", type=int)
    add("--learning-rate", type=float)
    add(
        "--adam-beta2",
        type=float,
        help="AdamW's second-moment decay (default 0.999; 0.95 for a model trained from scratch)",
    )
    add("--num-epochs", type=float)
    add("--max-steps", type=int, help="stop after this many optimizer steps (overrides --num-epochs)")
    add("--save-steps", type=int, help="checkpoint every N steps")
    add("--max-seq-length", type=int)
    add("--output-dir", help=f"runs go to OUTPUT_DIR/YYYYMMDD_HHMMSS (default <repo>/{method}_output_rtx3090)")
    add(
        "--resume",
        nargs="?",
        const="latest",
        metavar="latest|PATH",
        help="continue the latest run, or a run / checkpoint directory",
    )
    add(
        "--dry-run",
        action="store_true",
        default=None,
        help="load config, tokenizer and data, validate, print the plan; train nothing",
    )
    add("--wandb", action="store_true", default=None, help="also log to Weights & Biases (TensorBoard is always on)")
    add("--wandb-project")
    add("--seed", type=int)
    add(
        "--backend",
        choices=BACKENDS,
        help="auto (default): unsloth on CUDA when installed, else transformers + PEFT (4-bit with bitsandbytes), else CPU",
    )
    add("--require-cuda", action="store_true", default=None, help="fail instead of falling back to CPU")
    helps = {}
    for m in methods:
        for flag, (_, kwargs) in m.flags.items():
            helps.setdefault(flag, (kwargs, []))[1].append(kwargs["help"])
    for flag, (kwargs, texts) in helps.items():
        add(f"--{flag.replace('_', '-')}", **{**kwargs, "help": "; ".join(texts)})
    monitor = parser.add_argument_group("live monitor and self-correction (docs/self-correction.md)")
    monitor.add_argument(
        "--eval-steps", type=int, metavar="N", help="answer validation examples every N steps (0: off)"
    )
    monitor.add_argument(
        "--num-eval-samples", type=int, metavar="N", help="validation examples per evaluation (default 5)"
    )
    monitor.add_argument(
        "--eval-max-tokens", type=int, metavar="N", help="tokens generated per answer at most (default 512)"
    )
    monitor.add_argument(
        "--validation-file",
        metavar="JSONL",
        help="golden examples (default: hold --validation-fraction of the data out)",
    )
    monitor.add_argument(
        "--validation-fraction", type=float, metavar="F", help="share of the training data held out (default 0.05)"
    )
    monitor.add_argument(
        "--self-correction", action="store_true", default=None, help="turn mistakes into training data"
    )
    monitor.add_argument(
        "--auto-queue", action="store_true", default=None, help="place each self-correction file in the daemon's queue"
    )
    monitor.add_argument(
        "--min-examples", type=int, metavar="N", help="write a file only once N examples are buffered (default 10)"
    )
    monitor.add_argument(
        "--generation-interval", type=int, metavar="N", help="steps between self-correction files (default 100)"
    )
    monitor.add_argument(
        "--self-correction-dir", metavar="DIR", help="where files go (default <repo>/data/self_correction)"
    )
    monitor.add_argument("--queue-dir", metavar="DIR", help="the daemon's root with inbox/ and queue/ (default <repo>)")


def main(method: str, argv: list[str] | None = None) -> int:
    args = vars(build_parser(method).parse_args(argv))
    config_file = args.pop("config")
    try:
        config = load_config(method, config_file, args)
        if use_shipped_dataset(config):
            print(f"dataset: none given; using the shipped {shipped_dataset(method)} (--local-file FILE for your own)")
        from .train import run_training

        result = run_training(config)
    except UsageError as exc:
        die(str(exc))
    except ModuleNotFoundError as exc:  # run with a Python that lacks the training packages
        die(
            f"{exc.name} is not installed: bash Trainers/rtx3090_sft/setup.sh (or pip install -e '.[train]'), "
            "or run with the project's .venv/bin/python"
        )
    except KeyboardInterrupt:
        die("interrupted; continue with --resume latest", 130)
    if config.training.dry_run:
        from .config import dump_yaml

        print("plan:\n" + json.dumps(result.plan, indent=2))
        print("effective config:\n" + dump_yaml(config), end="")
        print("dry run: nothing trained")
        return 0
    print(f"done: {result.global_step} steps; adapter, tokenizer, config and lineage in {result.final_dir}")
    for warning in result.health_warnings:
        print(f"health warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "sft", sys.argv[2:]))
