"""Self-play over a prompt set: answer each prompt several times, label each answer, write a
balanced, strictly interleaved KTO file (see docs/generate.md). Run as ``python -m claudesidian selfplay``
or by its seed path ``python Tools/selfplay_generator.py``.

    python Tools/selfplay_generator.py --num-examples 100                 # offline: the template teacher
    python Tools/selfplay_generator.py --model NAME --prompt-set Evaluator/prompts/tool_prompts.json \\
        --output Datasets/syngen_selfplay_20260115.jsonl --num-examples 1000 --temperature 0.7 --num-variations 3 \\
        [--execute-mcp --vault-path PATH] [--backend lmstudio --host HOST --port PORT]

Answers are appended to <output>_valid.jsonl / <output>_invalid.jsonl as they are judged (--resume
continues from them); at the end both are interleaved True/False into --output, the surplus of the
larger class into <output>.leftover.jsonl, and the run's summary goes to <output>_summary.json.
Exit codes: 0 done, 1 no KTO file (one label missing) or every request failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from Tools.cli_common import ArgumentParser, UsageError, die

DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent / "output"


def build_parser() -> ArgumentParser:
    from SelfPlay.cli import add_backend_arguments, add_run_arguments

    parser = ArgumentParser(
        prog="selfplay_generator.py",
        description="Answer every prompt of a prompt set several times around a temperature, label "
        "each answer by the validator, the prompt's expectations and (--execute-mcp) "
        "execution, and write both labels strictly interleaved for KTO.",
        epilog="Exit codes: 0 done, 1 no KTO file or every request failed, 2 bad input, 130 interrupted.",
    )
    parser.add_argument(
        "--prompt-set",
        default="teacher",
        help="a prompt-set file, a built-in set's name (tool_prompts, behavior_prompts, ...), or "
        "'teacher': fresh prompts written by the template teacher with --seed (default)",
    )
    parser.add_argument(
        "--output", type=Path, help="the KTO file (default SelfPlay/output/syngen_selfplay_YYYYMMDD_HHMMSS.jsonl)"
    )
    parser.add_argument("--num-examples", type=int, default=100, help="answers to generate (default 100)")
    parser.add_argument(
        "--temperature", type=float, default=0.7, help="centre of the sampling temperatures (default 0.7)"
    )
    parser.add_argument("--num-variations", type=int, default=3, help="answers per prompt (default 3)")
    parser.add_argument(
        "--temperature-spread",
        type=float,
        default=0.2,
        help="variations use temperatures evenly spread over T +- this (default 0.2)",
    )
    parser.add_argument("--max-tokens", type=int, default=700, help="per answer (default 700)")
    parser.add_argument(
        "--tools-in-request",
        action="store_true",
        help="send the tool definitions (base models; fine-tuned models do without)",
    )
    parser.add_argument(
        "--reference-positives",
        action="store_true",
        help="when an answer fails and its prompt carries a reference answer (teacher prompt sets do), "
        "add the reference as a positive: lets a weak model produce KTO pairs",
    )
    parser.add_argument(
        "--episodes",
        nargs="?",
        const="builtin",
        metavar="FILE",
        help="run multi-turn episodes instead (default set Evaluator/prompts/episodes/vault.json), each "
        "--num-variations times; transcripts to --output, report to <output>.episodes.json",
    )
    add_backend_arguments(parser)
    add_run_arguments(parser)
    return parser


def kto_count_line(records: int, summary) -> str:
    """The KTO file's size against --num-examples, and why they differ: answers are de-duplicated,
    and a pair needs one true and one false answer, so the larger class's surplus stays aside."""
    if records >= summary.requested:
        return f"{records} records"
    reasons = [
        f"{n} {what}"
        for n, what in (
            (summary.duplicate_exact + summary.duplicate_near, "duplicate answers dropped"),
            (summary.failed, "requests failed"),
            (abs(summary.valid - summary.invalid), "unpaired answers set aside"),
        )
        if n
    ]
    return (
        f"{records} of the {summary.requested} requested: {', '.join(reasons) or 'interrupted'}; "
        "raise --num-examples for more pairs"
    )


def main(argv: list[str] | None = None) -> int:
    from Evaluator.prompt_sets import PromptSetError
    from SelfPlay.cli import check_run_arguments, finish, open_backend, open_executor, show_progress
    from SelfPlay.config import ConfigError, load_config
    from SelfPlay.generator import summary_path
    from SelfPlay.prompt_answers import PromptSetGenerator, load_cases, prompts_needed, stream_paths
    from Tools.schema.registry import load_registry

    args = build_parser().parse_args(argv)
    output = args.output or DEFAULT_OUTPUT_DIR / f"syngen_selfplay_{time.strftime('%Y%m%d_%H%M%S')}.jsonl"
    client = None
    try:
        check_run_arguments(args, output)
        if args.num_variations < 1 or args.max_tokens < 1:
            raise UsageError("--num-variations and --max-tokens must be at least 1")
        if not 0 <= args.temperature <= 2 or args.temperature_spread < 0:
            raise UsageError("--temperature must be within 0..2 and --temperature-spread at least 0")
        registry = load_registry()
        config = load_config(registry=registry)
        client = open_backend(args)
        if args.episodes:
            from SelfPlay.episodes import selfplay_episodes

            return selfplay_episodes(client, args, output)
        name, cases = load_cases(
            args.prompt_set, client, seed=args.seed, size=prompts_needed(args.num_examples, args.num_variations)
        )
        generator = PromptSetGenerator(
            client,
            cases,
            registry,
            config,
            prompt_set=name,
            seed=args.seed,
            temperature=args.temperature,
            num_variations=args.num_variations,
            spread=args.temperature_spread,
            max_tokens=args.max_tokens,
            retries=args.retries,
            tools_in_request=args.tools_in_request,
            reference_positives=args.reference_positives,
            executor=open_executor(args),
        )
        summary = generator.run(
            args.num_examples, output, concurrency=args.concurrency, resume=args.resume, progress=show_progress(args)
        )
    except (UsageError, ConfigError, PromptSetError) as exc:
        die(str(exc))
    except OSError as exc:
        die(f"cannot write {output}: {exc.strerror or exc}")
    finally:
        if client is not None:
            client.close()
    valid, invalid = stream_paths(output)
    kto = summary.kto
    lines = [
        f"prompt set {name}: {len(cases)} prompts x {args.num_variations} variations",
        f"answers: {valid}, {invalid}",
    ]
    if kto.get("records"):
        lines.append(
            f"KTO: {output} ({kto_count_line(kto['records'], summary)}; {kto['true']} true / {kto['false']} "
            f"false, strictly alternating: {kto['verified']}; surplus kept in {kto['leftover_file'] or '-'})"
        )
    code = finish(
        summary,
        summary_path(output),
        registry,
        {
            "backend": client.backend,
            "model": client.model,
            "seed": args.seed,
            "prompt_set": name,
            "output": str(output),
        },
        lines,
    )
    if code == 0 and not kto.get("records"):
        print(f"error: no KTO file written: {kto.get('error')}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
