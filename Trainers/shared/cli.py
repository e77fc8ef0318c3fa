"""The shared command line of the SFT and KTO entry points; KTO adds its own flags."""
from __future__ import annotations

import json
import sys

from Tools.cli_common import ArgumentParser, UsageError, die

from .config import BACKENDS, SHIPPED_DATASET, SIZE_PRESETS, load_config, use_shipped_dataset

PRECEDENCE = "Precedence: method defaults < --model-size preset < --config YAML < flags."


def build_parser(method: str) -> ArgumentParser:
    name = {"sft": "train_sft.py", "kto": "train_kto.py"}[method]
    parser = ArgumentParser(prog=name, description=f"{method.upper()} LoRA training on an RTX 3090-class GPU (CPU for tiny models). {PRECEDENCE}")
    add_training_flags(parser, method)
    return parser


def add_training_flags(parser, method: str | None, omit: tuple[str, ...] = ()) -> None:
    """The training flags (FLAG_KEYS), less those in omit; method None adds the KTO flags too."""
    def add(flag, **kwargs):
        if flag not in omit:
            parser.add_argument(flag, **kwargs)

    add("--config", metavar="FILE", help="YAML config (sections model, lora, data, training, " + ("kto, " if method != "sft" else "")
        + "monitor, self_correction)")
    add("--model-size", choices=list(SIZE_PRESETS), help="selects the base model and its batch defaults (default 7b): " +
        "; ".join(f"{size} {preset.model_name}: {preset.trains}" for size, preset in SIZE_PRESETS.items()) +
        ". Llama 3.x and others: --model-name (their own template; model.chat_template llama3 for the toolkit's)")
    add("--model-name", help="any Hugging Face id or local directory (a trained final_model/ continues from that adapter)")
    add("--local-file", metavar="JSONL", help="dataset file in the toolkit's record format (default: the shipped "
        f"Datasets/teacher/teacher_{method or 'sft'}.jsonl when no --dataset-name is given either)")
    add("--dataset-name", help="Hugging Face dataset id, used when no local file is given")
    add("--drop-invalid", action="store_true", default=None, help="SFT: drop records that fail validation instead of refusing the file")
    add("--full-finetune", action="store_true", default=None,
        help="train every weight instead of LoRA adapters (for small models; final_model/ is then a full model)")
    add("--batch-size", type=int, help="per-device batch size")
    add("--gradient-accumulation", type=int)
    add("--learning-rate", type=float)
    add("--num-epochs", type=float)
    add("--max-steps", type=int, help="stop after this many optimizer steps (overrides --num-epochs)")
    add("--save-steps", type=int, help="checkpoint every N steps")
    add("--max-seq-length", type=int)
    add("--output-dir", help=f"runs go to OUTPUT_DIR/YYYYMMDD_HHMMSS (default <repo>/{method}_output_rtx3090)")
    add("--resume", nargs="?", const="latest", metavar="latest|PATH", help="continue the latest run, or a run / checkpoint directory")
    add("--dry-run", action="store_true", default=None, help="load config, tokenizer and data, validate, print the plan; train nothing")
    add("--wandb", action="store_true", default=None, help="also log to Weights & Biases (TensorBoard is always on)")
    add("--wandb-project")
    add("--seed", type=int)
    add("--backend", choices=BACKENDS,
        help="auto (default): unsloth on CUDA when installed, else transformers + PEFT (4-bit with bitsandbytes), else CPU")
    add("--require-cuda", action="store_true", default=None, help="fail instead of falling back to CPU")
    if method in ("kto", None):
        add("--beta", type=float, help="KTO beta: how far the policy may move from the reference (default 0.3)")
        add("--use-kto-s", action="store_true", default=None,
            help="KTO-S: the KL reference point acts with the sign of each example's utility, so a drifting "
                 "policy gets smaller updates (steadier KL from a base model); see docs/train-nvidia.md")
        add("--two-stage-lr", action="store_true", default=None,
            help="full learning rate for the first half of the steps, then 0.1x (kto.stage_split, kto.stage_two_factor)")
    monitor = parser.add_argument_group("live monitor and self-correction (docs/self-correction.md)")
    monitor.add_argument("--eval-steps", type=int, metavar="N", help="answer validation examples every N steps (0: off)")
    monitor.add_argument("--num-eval-samples", type=int, metavar="N", help="validation examples per evaluation (default 5)")
    monitor.add_argument("--eval-max-tokens", type=int, metavar="N", help="tokens generated per answer at most (default 512)")
    monitor.add_argument("--validation-file", metavar="JSONL", help="golden examples (default: hold --validation-fraction of the data out)")
    monitor.add_argument("--validation-fraction", type=float, metavar="F", help="share of the training data held out (default 0.05)")
    monitor.add_argument("--self-correction", action="store_true", default=None, help="turn mistakes into training data")
    monitor.add_argument("--auto-queue", action="store_true", default=None, help="place each self-correction file in the daemon's queue")
    monitor.add_argument("--min-examples", type=int, metavar="N", help="write a file only once N examples are buffered (default 10)")
    monitor.add_argument("--generation-interval", type=int, metavar="N", help="steps between self-correction files (default 100)")
    monitor.add_argument("--self-correction-dir", metavar="DIR", help="where files go (default <repo>/data/self_correction)")
    monitor.add_argument("--queue-dir", metavar="DIR", help="the daemon's root with inbox/ and queue/ (default <repo>)")


def main(method: str, argv: list[str] | None = None) -> int:
    args = vars(build_parser(method).parse_args(argv))
    config_file = args.pop("config")
    try:
        config = load_config(method, config_file, args)
        if use_shipped_dataset(config):
            print(f"dataset: none given; using the shipped {SHIPPED_DATASET.format(method=method)} (--local-file FILE for your own)")
        from .train import run_training

        result = run_training(config)
    except UsageError as exc:
        die(str(exc))
    except ModuleNotFoundError as exc:  # run with a Python that lacks the training packages
        die(f"{exc.name} is not installed: bash Trainers/rtx3090_sft/setup.sh (or pip install -e '.[train]'), "
            "or run with the project's .venv/bin/python")
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
