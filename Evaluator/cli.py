"""python -m Evaluator.cli --model M --prompt-set FILE [--backend B] [--output results.json] [...]"""

from __future__ import annotations

import sys
from pathlib import Path

from Tools.cli_common import ArgumentParser, UsageError, die

from .backends import backend_labels, guess_backend, load_dotenv_once
from .clients import MAX_ANSWER_BYTES
from .execution import check_execution_flags
from .prompt_sets import BFCL_PREFIX
from .runner import RunSettings


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m Evaluator.cli", description="Evaluate a model's tool calling on a prompt set.")
    p.add_argument(
        "--backend",
        choices=backend_labels(),
        help="where the model runs; default: llamacpp for a .gguf file, transformers for a model directory, "
        "else ollama (as the earlier project)",
    )
    p.add_argument("--model", required=True, help="model name on the server, a .gguf path, or a model directory")
    p.add_argument(
        "--prompt-set",
        help="a prompt-set file, a built-in set's name (tool_prompts, ...), "
        "or BFCL's categories: bfcl:simple_python,multiple,parallel,irrelevance (docs/evaluate.md)",
    )
    p.add_argument(
        "--episodes",
        nargs="?",
        const="builtin",
        metavar="FILE",
        help="run multi-turn episodes instead (a file or a built-in name; alone: Evaluator/prompts/episodes/vault.json)",
    )
    p.add_argument(
        "--output",
        type=Path,
        help="JSON report path (default Evaluator/results/<model>_<set>_<time>.json, with a .md beside it)",
    )
    p.add_argument("--markdown", type=Path, help="also write a Markdown report here")
    p.add_argument("--html", type=Path, help="also write an HTML report with charts here (Evaluator.html_report)")
    p.add_argument("--base-url", help="server URL (default: from the environment, see docs/evaluate.md)")
    p.add_argument("--api-key", help="API key (default: OPENAI_API_KEY for openai)")
    p.add_argument("--adapter", help="PEFT adapter directory (transformers backend only)")
    p.add_argument("--schemas", help="tool schema file (default: Tools/tool_schemas.json)")
    p.add_argument("--concurrency", type=int, default=1, help="requests in flight at once (default 1)")
    p.add_argument("--repeats", type=int, default=1, help="attempts per case, for pass^k (default 1)")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--max-tokens", type=int, default=512)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    p.add_argument(
        "--max-answer-bytes",
        type=int,
        default=MAX_ANSWER_BYTES,
        help=f"a larger answer is a case failure, E_BAD_SERVER_ANSWER (default {MAX_ANSWER_BYTES})",
    )
    p.add_argument("--retries", type=int, default=2, help="retries of a refused, 5xx or timed-out request (default 2)")
    p.add_argument("--limit", type=int, help="only the first N cases (bfcl: the first N of each category)")
    p.add_argument("--tags", help="only cases with any of these comma-separated tags")
    p.add_argument(
        "--tools-in-request",
        action="store_true",
        default=False,
        help="send the tool definitions (base models, servers with native tool support)",
    )
    p.add_argument(
        "--no-tools-in-request",
        dest="tools_in_request",
        action="store_false",
        help="send none (the default: fine-tuned models call tools without them)",
    )
    p.add_argument("--execute-mcp", action="store_true", help="run each call in a fresh vault sandbox")
    p.add_argument("--vault-path", help="the vault copied into each sandbox (with --execute-mcp)")
    p.add_argument(
        "--mcp-command",
        help="with --execute-mcp: run the calls on this stdio MCP server instead, e.g. "
        '"node /path/to/connector.js" (the real plugin) or "python Tools/vault_mcp_server.py --vault DIR"',
    )
    p.add_argument("--mcp-url", help="with --execute-mcp: run the calls on this streamable-HTTP MCP server instead")
    p.add_argument("--fail-under", type=float, help="exit 1 when pass@1 is below this fraction")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true", help="load and check everything, send nothing")
    return p


def request_from_args(args):
    from .evaluation import EvalRequest

    for flag, value, low in (
        ("--concurrency", args.concurrency, 1),
        ("--repeats", args.repeats, 1),
        ("--max-tokens", args.max_tokens, 1),
        ("--retries", args.retries, 0),
        ("--limit", args.limit or 1, 1),
        ("--max-answer-bytes", args.max_answer_bytes, 1024),
    ):
        if value < low:
            raise UsageError(f"{flag} must be at least {low}")
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    check_execution_flags(args.execute_mcp, args.vault_path, args.mcp_command, args.mcp_url)
    backend = args.backend or guess_backend(args.model)
    if backend is None:
        backend = "ollama"
        print(
            f"backend: ollama (the default for a model name, as the earlier project; --backend "
            f"{'|'.join(b for b in backend_labels() if b != 'ollama')} to choose)",
            flush=True,
        )
    if args.adapter and backend != "transformers":
        raise UsageError(
            f"--adapter applies to the transformers backend only; a {backend} server serves the model "
            "it loaded (merge the adapter, or export it: python -m Trainers.shared.export gguf RUN_DIR)"
        )
    if args.output is None:
        from .lmstudio_cli import result_paths

        args.output, default_markdown = result_paths(
            args.model, args.prompt_set or f"episodes-{Path(args.episodes).stem}"
        )
        args.markdown = args.markdown or default_markdown
    if args.output.is_dir():
        raise UsageError(f"--output {args.output} is a directory; name a .json file")
    settings = RunSettings(
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        timeout=args.timeout,
        retries=args.retries,
        concurrency=args.concurrency,
        repeats=args.repeats,
        tools_in_request=args.tools_in_request,
        execute_mcp=args.execute_mcp,
        vault_path=args.vault_path,
        max_answer_bytes=args.max_answer_bytes,
    )
    return EvalRequest(
        backend=backend,
        model=args.model,
        prompt_set=args.prompt_set,
        output=args.output,
        markdown=args.markdown,
        base_url=args.base_url,
        api_key=args.api_key,
        adapter=args.adapter,
        schema=args.schemas,
        tags=[t.strip() for t in (args.tags or "").split(",") if t.strip()],
        limit=args.limit,
        settings=settings,
        fail_under=args.fail_under,
        progress=not args.no_progress and sys.stderr.isatty(),
        mcp_command=args.mcp_command,
        mcp_url=args.mcp_url,
    )


def main(argv: list[str] | None = None) -> int:
    from . import evaluation

    args = build_parser().parse_args(argv)
    load_dotenv_once()
    try:
        if bool(args.prompt_set) == bool(args.episodes):
            raise UsageError("name one of --prompt-set or --episodes")
        request = request_from_args(args)
        if args.episodes:
            from .episodes import evaluate_request

            result = evaluate_request(request, args.episodes, args.dry_run)
        elif request.prompt_set.startswith(BFCL_PREFIX):
            from . import bfcl

            result = bfcl.dry_run(request) if args.dry_run else bfcl.evaluate(request)
        else:
            result = evaluation.dry_run(request) if args.dry_run else evaluation.evaluate(request)
        if args.html and result.report is not None:
            from .html_report import write_html

            run = [(args.output.stem, result.report)]
            write_html(args.html, *([] if args.episodes else [run]), episodes=run if args.episodes else ())
            result.lines.append(f"HTML report: {args.html}")
    except UsageError as exc:
        die(str(exc))
    except KeyboardInterrupt:  # before the first request: nothing to report
        print("interrupted before any case ran; no report written", file=sys.stderr)
        return evaluation.EXIT_INTERRUPTED
    print("\n".join(result.lines))
    return result.exit_code


if __name__ == "__main__":
    from Evaluator.__main__ import cli_main  # the entry point registers the backends of the packages above

    sys.exit(cli_main())
