"""Turn a model's first answers into self-correction training data (step 2 of the manual path).

    python Tools/self_correction_trainer.py --input qa.jsonl --initial-answers answers.jsonl --output training.jsonl
    python Tools/self_correction_trainer.py --test-error-codes

Writes OUTPUT (SFT: a self-evaluation per question, a correction per mistake), OUTPUT_kto.jsonl
(a false/true pair per mistake, interleaved) and OUTPUT_metadata.json (counts and statistics).
No wrong answer is ever a training target. Train with the daemon: cp OUTPUT inbox/.
"""

from __future__ import annotations

import sys
from pathlib import Path

from Tools.cli_common import EXIT_OK, ArgumentParser, UsageError, die, format_table
from Tools.schema.records import iter_jsonl, write_json_atomic

# The seed's demonstration cases for --test-error-codes: (name, answer, golden answer)
DEMO_CASES = (
    (
        "too short",
        "The answer is 42.",
        "The answer is 42 because it represents the ultimate answer to life, "
        "the universe, and everything in the Hitchhiker's Guide to the Galaxy.",
    ),
    ("wrong number", "The calculation gives us 156.", "The calculation gives us 142."),
    ("missing structure", "We need apples oranges and bananas.", "We need:\n1. Apples\n2. Oranges\n3. Bananas"),
    ("off topic", "Python is a great programming language with dynamic typing.", "The capital of France is Paris."),
)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="self_correction_trainer.py",
        description="Compare initial answers with golden answers and write self-evaluation, "
        "correction and KTO training data. Exit 0, 2 on bad input.",
    )
    parser.add_argument("--input", type=Path, help="golden records or {prompt, response} pairs (JSONL)")
    parser.add_argument(
        "--initial-answers",
        type=Path,
        help="answers from Tools/generate_initial_answers.py ({id?, prompt, answer} per line)",
    )
    parser.add_argument(
        "--output", type=Path, help="the SFT file to write; OUTPUT_kto.jsonl and OUTPUT_metadata.json beside it"
    )
    parser.add_argument(
        "--test-error-codes", action="store_true", help="print the text error codes and a few sample cases"
    )
    return parser


def _test_error_codes() -> int:
    from Trainers.shared.self_correction.compare import TEXT_CODES, text_codes

    print("\n".join(format_table([("code", "produced when")] + [(c.code, c.rule) for c in TEXT_CODES])))
    print("\nTool-call answers get the codes of Tools/schema/issues.py (docs/validate.md).\n")
    for name, answer, golden in DEMO_CASES:
        print(
            f"{name}:\n  answer: {answer}\n  golden: {golden[:70]}\n  codes:  {' | '.join(text_codes(answer, golden)) or '(none)'}"
        )
    return EXIT_OK


def _answers(path: Path) -> list[dict]:
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    answers, bad = [], []
    for line in iter_jsonl(path):
        if line.error or not isinstance(line.record, dict) or ("answer" not in line.record):
            bad.append(line.number)
        else:
            answers.append(line.record)
    if bad:
        raise UsageError(
            f"{path}: {len(bad)} line(s) are not answer records with an 'answer' field (first: line {bad[0]})"
        )
    return answers


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.test_error_codes:
        return _test_error_codes()
    from Trainers.shared.self_correction.generator import SelfCorrectionGenerator, build_from_answers, load_examples

    try:
        missing = [
            flag
            for flag, value in (
                ("--input", args.input),
                ("--initial-answers", args.initial_answers),
                ("--output", args.output),
            )
            if value is None
        ]
        if missing:
            raise UsageError(f"{', '.join(missing)} required (or --test-error-codes)")
        if not args.output.name.endswith(".jsonl"):
            raise UsageError(f"--output must be a .jsonl file, not {args.output}")
        if args.output.resolve() in (args.input.resolve(), args.initial_answers.resolve()):
            raise UsageError(f"{args.output} is also an input; write to another file")
        examples = load_examples(args.input)
        answers = _answers(args.initial_answers)
        generator = SelfCorrectionGenerator(args.output.parent)
        counts = build_from_answers(examples, answers, generator)
        if not counts["answered"]:
            raise UsageError(
                f"no answer in {args.initial_answers} belongs to a question of {args.input} "
                "(answers are matched by 'id', else by 'prompt')"
            )
    except UsageError as exc:
        die(str(exc))
    stem = args.output.name[: -len(".jsonl")]
    sft_file, kto_file = generator.write_files(args.output, args.output.with_name(f"{stem}_kto.jsonl"))
    generator.stats.files_generated = 1 + (kto_file is not None)
    generator.stats.examples_generated = generator.buffered
    metadata = generator.metadata(None, {"sft": sft_file.name, "kto": kto_file.name if kto_file else None})
    metadata.update(source_file=str(args.input), initial_answers=str(args.initial_answers), answers=counts)
    metadata_file = args.output.with_name(f"{stem}_metadata.json")
    write_json_atomic(metadata_file, metadata)
    stats, kinds = generator.stats, metadata["counts"]
    rows = [
        ("", "count"),
        ("questions", len(examples)),
        ("answered", counts["answered"]),
        ("correct first try", stats.correct_first_try),
        ("needed correction", stats.needed_correction),
        ("self-evaluation examples", kinds["self_evaluation"]),
        ("correction examples", kinds["correction"]),
        ("KTO records", kinds["kto_true"] + kinds["kto_false"]),
    ]
    print("\n".join(format_table(rows)))
    if counts["unanswered"] or counts["unknown"]:
        print(
            f"note: {counts['unanswered']} question(s) without an answer ({counts['answer_errors']} failed requests); "
            f"{counts['unknown']} answer(s) matched no question"
        )
    top = ", ".join(f"{code} x{n}" for code, n in list(metadata["error_codes"].items())[:5])
    if top:
        print(f"most frequent codes: {top}")
    print(f"wrote {sft_file}" + (f", {kto_file}" if kto_file else "") + f" and {metadata_file}")
    print(f"train it: cp {sft_file} inbox/  (python -m Trainers.daemon ...), or use it as --local-file")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
