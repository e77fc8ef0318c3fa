"""Ask a model for its first answer to every golden question (step 1 of the manual self-correction path).

    python Tools/generate_initial_answers.py --input qa.jsonl --output answers.jsonl --model MODEL [--backend B]

The input holds toolkit records (the conversation before the last assistant message is the
question) or the seed's ``{"prompt", "response"}`` pairs. Each answer is appended and flushed as
``{"id", "prompt", "answer", "golden"}``, so a stopped run continues where it was (answers already
in --output are skipped). Then run Tools/self_correction_trainer.py. See docs/self-correction.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from Tools.cli_common import EXIT_FINDINGS, EXIT_OK, ArgumentParser, UsageError, die
from Tools.schema.records import JsonlAppender, read_records


def build_parser() -> ArgumentParser:
    from Evaluator.backends import backend_labels

    parser = ArgumentParser(
        prog="generate_initial_answers.py",
        description="Generate a model's first answers to golden questions, for "
        "Tools/self_correction_trainer.py. Exit 0, 1 when some requests failed, 2 on bad input.",
    )
    parser.add_argument("--input", required=True, type=Path, help="golden records or {prompt, response} pairs (JSONL)")
    parser.add_argument(
        "--output", required=True, type=Path, help="answers JSONL (appended; existing answers are kept)"
    )
    parser.add_argument(
        "--model", required=True, help="a model directory (transformers), a .gguf (llamacpp) or a server's model name"
    )
    parser.add_argument(
        "--backend",
        choices=backend_labels(),
        help="default: transformers for a directory, llamacpp for a .gguf, else lmstudio",
    )
    parser.add_argument("--adapter", help="transformers backend: a PEFT adapter directory (e.g. a run's final_model/)")
    parser.add_argument("--base-url", help="server backends: where the server listens")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7; 0 = greedy)")
    parser.add_argument("--max-tokens", type=int, default=512, help="tokens per answer at most (default 512)")
    parser.add_argument("--max-samples", type=int, help="only the first N questions")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from Evaluator.backends import guess_backend, load_dotenv_once, make_client
    from Evaluator.clients import BackendError
    from Trainers.shared.data import chat_messages
    from Trainers.shared.self_correction.generator import answer_text, load_examples

    try:
        if args.max_samples is not None and args.max_samples < 1:
            raise UsageError("--max-samples must be at least 1")
        if args.output.resolve() == args.input.resolve():
            raise UsageError(f"{args.output} is also the input; write the answers to another file")
        examples = load_examples(args.input)[: args.max_samples]
        # answered ids are skipped; failed requests (answer null) are asked again
        done = (
            {str(r.get("id")) for _, r in read_records(args.output) if isinstance(r.get("answer"), str)}
            if args.output.is_file()
            else set()
        )
        todo = [e for e in examples if e.id not in done]
        load_dotenv_once()
        backend = args.backend or guess_backend(args.model) or "lmstudio"
        client = (
            make_client(backend, args.model, base_url=args.base_url, timeout=args.timeout, adapter=args.adapter)
            if todo
            else None
        )
    except (UsageError, BackendError) as exc:
        die(str(exc))
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    failures = 0
    with (
        JsonlAppender(args.output) as out,
        Progress(
            TextColumn("answers"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
        ) as bar,
    ):
        task = bar.add_task("answers", total=len(todo))
        for example in todo:
            record = {"id": example.id, "prompt": example.question, "golden": example.golden}
            try:
                reply = client.chat(
                    chat_messages({"conversations": example.prompt}), None, args.temperature, args.max_tokens
                )
                record["answer"] = answer_text(reply.message)
            except BackendError as exc:  # recorded, not fatal: the next run retries only these
                failures += 1
                record.update(answer=None, error=str(exc))
            out.write(record)
            bar.advance(task)
    if client is not None:
        client.close()
    print(
        f"answers: {len(todo) - failures} new, {failures} failed, {len(examples) - len(todo)} already in {args.output}"
    )
    if failures:
        print("failed requests are recorded with their 'error'; run the same command again to retry them")
    print(
        f"next: python Tools/self_correction_trainer.py --input {args.input} --initial-answers {args.output} --output training.jsonl"
    )
    return EXIT_FINDINGS if failures else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
