"""python -m Evaluator: pick a backend, a model the server lists and a prompt set, then run.
With flags it is python -m Evaluator.cli (``--help`` prints both)."""

from __future__ import annotations

import sys

from Tools.cli_common import UsageError, die


def _choose(title: str, options: list[str], default: int = 0) -> str:
    print(f"\n{title}")
    for i, option in enumerate(options, 1):
        print(f"  {i}. {option}")
    answer = input(f"number [{default + 1}]: ").strip()
    if not answer:
        return options[default]
    if not answer.isdigit() or not 1 <= int(answer) <= len(options):
        raise UsageError(f"{answer!r} is not one of 1-{len(options)}")
    return options[int(answer) - 1]


HELP = """usage: python -m Evaluator [FLAGS]

Without flags: an interactive picker (backend, a model the server lists, a prompt set), then the
evaluation; results go to Evaluator/results/. With flags: the same as python -m Evaluator.cli,
whose flags follow.
"""


def register_backends() -> None:
    """The entry point composes the toolkit: backends from packages above the evaluator join its table."""
    from SelfPlay.backend import register

    register()


def main(argv: list[str] | None = None) -> int:
    register_backends()
    if argv:
        from . import cli

        if argv[0] in ("-h", "--help"):
            print(HELP)
        return cli.main(argv)
    return pick_and_run()


def cli_main(argv: list[str] | None = None) -> int:
    """python -m Evaluator.cli: the flags, every backend registered."""
    from . import cli

    register_backends()
    return cli.main(argv)


def pick_and_run() -> int:
    from .backends import backend_labels, load_dotenv_once, make_client
    from .clients import BackendError
    from .evaluation import EvalRequest, evaluate
    from .lmstudio_cli import result_paths
    from .prompt_sets import builtin_sets

    load_dotenv_once()
    try:
        backend = _choose("Backend:", backend_labels(server=True))
        client = make_client(backend, "", timeout=10)
        try:
            models = client.list_models()
        except BackendError as exc:
            raise UsageError(f"{backend} is not answering at {client.endpoint}: {exc}") from None
        if not models:
            raise UsageError(f"{backend} at {client.endpoint} serves no model; load one first")
        model = _choose("Model:", models)
        prompt_set = _choose("Prompt set:", builtin_sets(), builtin_sets().index("tool_prompts"))
        output, markdown = result_paths(model, prompt_set)
        result = evaluate(
            EvalRequest(
                backend=backend,
                model=model,
                prompt_set=prompt_set,
                output=output,
                markdown=markdown,
                progress=sys.stderr.isatty(),
            )
        )
    except (UsageError, EOFError) as exc:
        die(str(exc) or "no answer given")
    print("\n".join(result.lines))
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
