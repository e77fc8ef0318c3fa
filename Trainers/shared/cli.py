"""The shared command line of the SFT and KTO entry points; KTO adds its own flags."""
from __future__ import annotations

import json
import sys

from Tools.cli_common import ArgumentParser, UsageError, die

from .config import BACKENDS, SIZE_PRESETS, load_config

PRECEDENCE = "Precedence: method defaults < --model-size preset < --config YAML < flags."


def build_parser(method: str) -> ArgumentParser:
    name = {"sft": "train_sft.py", "kto": "train_kto.py"}[method]
    parser = ArgumentParser(prog=name, description=f"{method.upper()} LoRA training on an RTX 3090-class GPU (CPU for tiny models). {PRECEDENCE}")
    add = parser.add_argument
    add("--config", metavar="FILE", help="YAML config (sections model, lora, data, training" + (", kto)" if method == "kto" else ")"))
    add("--model-size", choices=list(SIZE_PRESETS), help="selects the base model and its batch defaults (default 7b)")
    add("--model-name", help="any Hugging Face id or local directory (a trained final_model/ continues from that adapter)")
    add("--local-file", metavar="JSONL", help="dataset file in the toolkit's record format")
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
    if method == "kto":
        add("--beta", type=float, help="KTO beta: how far the policy may move from the reference (default 0.3)")
        add("--use-kto-s", action="store_true", default=None,
            help="KTO-S: the KL reference point acts with the sign of each example's utility, so a drifting "
                 "policy gets smaller updates (steadier KL from a base model); see docs/train-nvidia.md")
        add("--two-stage-lr", action="store_true", default=None,
            help="full learning rate for the first half of the steps, then 0.1x (kto.stage_split, kto.stage_two_factor)")
    return parser


def main(method: str, argv: list[str] | None = None) -> int:
    args = vars(build_parser(method).parse_args(argv))
    config_file = args.pop("config")
    try:
        config = load_config(method, config_file, args)
        from .train import run_training

        result = run_training(config)
    except UsageError as exc:
        die(str(exc))
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
