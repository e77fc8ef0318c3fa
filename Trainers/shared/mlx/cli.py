"""The command line of Trainers/mistral_lora_mac/main.py; all work happens in trainer.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from Tools.cli_common import ArgumentParser, UsageError, die, format_table

from .config import load_mlx_config


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="main.py",
        description="LoRA SFT, KTO or DPO with MLX: Metal on Apple silicon, the CPU elsewhere (mlx[cpu]). "
        "Precedence: defaults < --config YAML < flags. See docs/train-mac.md.",
    )
    add = parser.add_argument
    add(
        "--config",
        metavar="FILE",
        help="YAML config with the top-level method and sections model, lora, data, training, "
        "kto, dpo, monitor, self_correction "
        "(default: config/config.yaml beside main.py)",
    )
    add(
        "--resume",
        metavar="CHECKPOINT|RUN|latest",
        help="continue from checkpoints/checkpoint_step_N.npz (or best_checkpoint.npz), a run directory's newest "
        "checkpoint, or the newest run's (latest): same step, same optimizer state",
    )
    add(
        "--eval-only",
        action="store_true",
        help="with --resume: validation loss and scored sample generations (parse rate, valid-call rate); no training",
    )
    add("--fuse", action="store_true", help="with --resume: merge that checkpoint into <run>/fused_model/ and stop")
    # the NVIDIA trainers' flag names; --dataset and --model are this command's earlier spellings
    add(
        "--local-file",
        "--dataset",
        dest="local_file",
        metavar="JSONL",
        help="training data (overrides data.local_file)",
    )
    add(
        "--model-name",
        "--model",
        dest="model_name",
        metavar="NAME",
        help="Hugging Face id or local model directory (overrides model.name)",
    )
    add("--max-steps", type=int, metavar="N", help="optimizer steps (overrides training.max_steps and num_epochs)")
    add("--output-dir", metavar="DIR", help="runs go to OUTPUT_DIR/YYYYMMDD_HHMMSS (overrides training.output_dir)")
    return parser


def _summary(rows: list[tuple]) -> str:
    return "\n".join(format_table([("summary", ""), *[(k, v) for k, v in rows if v is not None]]))


def _fmt(value) -> str | None:
    return None if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None, default_config: Path | None = None, eval_hooks: list | tuple = ()) -> int:
    args = build_parser().parse_args(argv)
    if args.eval_only and args.fuse:
        die("--eval-only and --fuse are separate steps; give one of them")
    if (args.eval_only or args.fuse) and not args.resume:
        die(
            f"{'--eval-only' if args.eval_only else '--fuse'} needs --resume CHECKPOINT (a checkpoint_step_N.npz, "
            "best_checkpoint.npz, a run directory or latest) to know which adapters to use"
        )
    config_file = args.config or default_config
    overrides = {
        "local_file": args.local_file,
        "model_name": args.model_name,
        "max_steps": args.max_steps,
        "output_dir": args.output_dir,
    }
    try:
        config = load_mlx_config(config_file, overrides)
        missing = [m for m in ("mlx", "mlx_lm") if importlib.util.find_spec(m) is None]
        if missing:
            raise UsageError(
                f"{' and '.join(missing)} not installed: pip install -e '.[mac]' on macOS, "
                "pip install 'mlx[cpu]' mlx-lm elsewhere"
            )
        from . import trainer

        if args.eval_only:
            metrics = trainer.evaluate_checkpoint(config, args.resume, eval_hooks)
            print(
                _summary(
                    [
                        ("checkpoint", metrics["checkpoint"]),
                        ("records evaluated", metrics["records"]),
                        ("validation loss", _fmt(metrics.get("eval_loss"))),
                        ("parse rate", _fmt(metrics.get("eval_parse_rate"))),
                        ("valid-call rate", _fmt(metrics.get("eval_valid_call_rate"))),
                        ("report", metrics["report"]),
                    ]
                )
            )
            return 0
        if args.fuse:
            print(f"fused model: {trainer.fuse_checkpoint(config, args.resume)}")
            return 0
        result = trainer.train(config, args.resume, eval_hooks)
    except UsageError as exc:
        die(str(exc))
    except KeyboardInterrupt:
        die("interrupted; continue with --resume latest", 130)
    best = result.best or {}
    print(
        _summary(
            [
                ("steps", result.global_step),
                ("trainable parameters", f"{result.trainable_parameters:,}"),
                ("last training loss", _fmt(result.train_loss)),
                ("best validation loss", _fmt(best.get("eval_loss"))),
                ("best checkpoint", f"{best['path']} (step {best['step']})" if best else None),
                ("parse rate", _fmt(result.eval.get("eval_parse_rate"))),
                ("valid-call rate", _fmt(result.eval.get("eval_valid_call_rate"))),
                ("run directory", str(result.run_dir)),
                ("fused model", _fmt(result.fused_dir)),
            ]
        )
    )
    for warning in result.health_warnings:
        print(f"health warning: {warning}")
    return 0
