"""Generate self-play examples with the 3-prompt pipeline (see docs/generate.md).

    python SelfPlay/run_generation.py --num-examples 100                      # the offline template teacher
    python SelfPlay/run_generation.py --backend lmstudio --model qwen3-8b --num-examples 500 --concurrency 4 --kto
    python SelfPlay/run_generation.py --output out.jsonl --num-examples 500 --resume    # after a stop or a kill

Valid examples go to --output, invalid ones to <output>_invalid.jsonl, the run's summary to
<output>_summary.json; --kto also writes both interleaved into <output>_kto.jsonl.
Exit codes: 0 done, 1 every example failed, 2 bad input, 130 interrupted (files kept; --resume).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Tools.cli_common import ArgumentParser, UsageError, die  # noqa: E402

DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent / "output"


def build_parser() -> ArgumentParser:
    from SelfPlay.cli import add_backend_arguments, add_run_arguments

    parser = ArgumentParser(
        prog="run_generation.py",
        description="Self-play: one model invents a workspace, plays the "
        "user and answers as the assistant; each answer is validated and labelled.",
        epilog="Exit codes: 0 done, 1 every example failed, 2 bad input, 130 interrupted.",
    )
    parser.add_argument("--num-examples", type=int, default=100, help="examples to generate (default 100)")
    parser.add_argument(
        "--output",
        type=Path,
        help="valid examples (default SelfPlay/output/selfplay_YYYYMMDD_HHMMSS.jsonl); "
        "invalid ones go to <output>_invalid.jsonl",
    )
    parser.add_argument("--no-validate", action="store_true", help="write every answer to --output unjudged")
    parser.add_argument("--no-save-invalid", action="store_true", help="count invalid examples but do not keep them")
    parser.add_argument(
        "--kto",
        nargs="?",
        const="",
        metavar="PATH",
        help="also write valid and invalid examples strictly interleaved (default <output>_kto.jsonl)",
    )
    parser.add_argument(
        "--type", choices=("tool", "behavioral"), help="only this type (default: the configured 70/30 mix)"
    )
    parser.add_argument("--config-dir", type=Path, help="a configs/ folder like SelfPlay/configs (default)")
    add_backend_arguments(parser)
    add_run_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from SelfPlay.cli import check_run_arguments, finish, open_backend, open_executor, show_progress
    from SelfPlay.config import ConfigError, load_config
    from SelfPlay.generator import SelfPlayGenerator, invalid_path, kto_path, summary_path
    from Tools.schema.registry import load_registry

    args = build_parser().parse_args(argv)
    output = args.output or DEFAULT_OUTPUT_DIR / f"selfplay_{time.strftime('%Y%m%d_%H%M%S')}.jsonl"
    client = None
    try:
        check_run_arguments(args, output)
        if args.no_validate and args.kto is not None:
            raise UsageError("--kto needs labels: drop --no-validate")
        registry = load_registry()
        config = load_config(args.config_dir, registry)
        client = open_backend(args)
        generator = SelfPlayGenerator(
            client,
            config=config,
            registry=registry,
            seed=args.seed,
            retries=args.retries,
            execute_mcp=args.execute_mcp,
            vault_path=args.vault_path,
            generation_type=args.type,
            executor=open_executor(args),
        )
        kto = (Path(args.kto) if args.kto else kto_path(output)) if args.kto is not None else None
        summary = generator.generate_batch(
            args.num_examples,
            output,
            validate=not args.no_validate,
            save_invalid=not args.no_save_invalid,
            concurrency=args.concurrency,
            resume=args.resume,
            kto_file=kto,
            progress=show_progress(args),
        )
    except (UsageError, ConfigError) as exc:
        die(str(exc))
    except OSError as exc:
        die(f"cannot write {output}: {exc.strerror or exc}")
    finally:
        if client is not None:
            client.close()
    lines = [f"valid: {output}"]
    if not args.no_save_invalid and not args.no_validate:
        lines.append(f"invalid: {invalid_path(output)}")
    if summary.kto:
        lines.append(
            f"KTO: {kto} ({summary.kto['records']} records, {summary.kto.get('true', 0)} true / "
            f"{summary.kto.get('false', 0)} false, strictly alternating: {summary.kto.get('verified', False)})"
            if summary.kto.get("records")
            else f"KTO: not written: {summary.kto['error']}"
        )
    return finish(
        summary,
        summary_path(output),
        registry,
        {"backend": client.backend, "model": client.model, "seed": args.seed, "output": str(output)},
        lines,
    )


if __name__ == "__main__":
    sys.exit(main())
