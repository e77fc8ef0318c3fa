"""What the self-play commands share: backend flags and how they become a client, the run flags
and their checks, and the summary every run ends with."""

from __future__ import annotations

import sys
from pathlib import Path

from Tools.errors import UsageError

EXIT_INTERRUPTED = 130


def add_backend_arguments(parser) -> None:
    from Evaluator.backends import backend_labels

    from SelfPlay.backend import register

    register()
    group = parser.add_argument_group("model (default: the offline template teacher)")
    group.add_argument(
        "--backend",
        choices=backend_labels(),
        help="where the model runs; default: template when neither --model nor --host is given, else "
        "llamacpp for a .gguf, transformers for a model directory, lmstudio for a server model name",
    )
    group.add_argument("--model", help="the server's model name, a .gguf file or a model directory")
    group.add_argument("--host", help="server host (default 127.0.0.1), e.g. 192.168.1.20 or http://gpu-box")
    group.add_argument("--port", type=int, help="server port (default: the backend's usual one, LM Studio 1234)")
    group.add_argument("--base-url", help="full server URL instead of --host/--port")
    group.add_argument("--api-key", help="API key for OpenAI-compatible servers that need one")
    group.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")
    group.add_argument(
        "--retries",
        type=int,
        default=3,
        help="retries of a refused, 5xx or timed-out request, with exponential backoff (default 3)",
    )


def add_run_arguments(parser) -> None:
    group = parser.add_argument_group("run")
    group.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of every choice: the same seed and a deterministic backend give the same files (default 0)",
    )
    group.add_argument("--concurrency", type=int, default=1, help="examples in flight at once (default 1)")
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue a stopped run: examples already in the output files are kept and not made again",
    )
    group.add_argument(
        "--execute-mcp", action="store_true", help="also run each answer's calls in a fresh vault sandbox"
    )
    group.add_argument("--vault-path", help="the vault copied into each sandbox (default Datasets/vault_template)")
    group.add_argument(
        "--mcp-command",
        help="with --execute-mcp: run the calls on this stdio MCP server instead of a "
        'sandbox, e.g. "node /path/to/connector.js" (the real plugin)',
    )
    group.add_argument("--mcp-url", help="with --execute-mcp: run the calls on this streamable-HTTP MCP server instead")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def check_run_arguments(args, output: Path) -> None:
    """The flags both generators share, and the output file; also routes warnings to stderr."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    if output.is_dir() or not output.name:
        raise UsageError(f"--output {output} is a directory; name a .jsonl file")
    for flag, value, low in (
        ("--num-examples", args.num_examples, 1),
        ("--concurrency", args.concurrency, 1),
        ("--retries", args.retries, 0),
    ):
        if value < low:
            raise UsageError(f"{flag} must be at least {low}")
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    from Evaluator.execution import check_execution_flags

    check_execution_flags(args.execute_mcp, args.vault_path, args.mcp_command, args.mcp_url)
    if args.vault_path and not Path(args.vault_path).is_dir():
        raise UsageError(f"--vault-path {args.vault_path}: no such folder")
    if args.port is not None and not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a TCP port")


def resolve_backend(args) -> tuple[str, str, str | None]:
    """(backend, model, base_url) from the flags: the template teacher when nothing names a model."""
    from Evaluator.backends import get_backend, guess_backend, host_url

    backend = args.backend
    served = bool(args.host or args.port or args.base_url)
    if backend is None:
        if args.model:
            backend = guess_backend(args.model) or "lmstudio"
        else:
            backend = "lmstudio" if served else "template"
    if backend == "template":
        if served:
            raise UsageError(
                "--host, --port and --base-url are for server backends; the template teacher runs in process"
            )
        return backend, args.model or "teacher", None
    base_url = args.base_url
    if not base_url and served:
        base_url = host_url(backend, args.host or "127.0.0.1", args.port)
    server = get_backend(backend).server
    if not args.model and served and server:
        return backend, None, base_url  # open_backend asks the server which model it has loaded
    if not args.model:
        raise UsageError(
            f"--model is required with --backend {backend} "
            f"({'the name the server lists' if server else 'a local model path'})"
        )
    return backend, args.model, base_url


def open_backend(args):
    """A client that has answered once; the first line printed says which backend and model run."""
    from Evaluator.backends import connect, get_backend, load_dotenv_once

    load_dotenv_once()
    backend, model, base_url = resolve_backend(args)
    client = connect(
        backend, model or "", base_url=base_url, api_key=args.api_key, timeout=args.timeout, seed=args.seed
    )
    if model is None:
        client.model = loaded_model(client, get_backend(backend).name)
    if backend == "template":
        print(
            "backend: the offline template teacher (no --model given; pass --model NAME, with --host/--port "
            "for a server elsewhere, to generate with a real model)",
            flush=True,
        )
    else:
        where = "" if client.embedded else f" at {client.endpoint}"
        print(f"backend: {get_backend(backend).name}{where}, model {client.model}", flush=True)
    return client


def loaded_model(client, label: str) -> str:
    """--host/--port without --model: the one model the server has loaded. LM Studio's /v1/models may
    list every downloaded model (just-in-time loading); its native API says which are loaded."""
    from Evaluator.clients import BackendError

    try:
        models = client.list_models()
    except BackendError as exc:
        raise UsageError(f"{label} at {client.endpoint} did not list its models ({exc}); pass --model") from None
    if len(models) > 1 and client.backend == "lmstudio":
        models = lmstudio_loaded(client.endpoint, client.timeout) or models
    if len(models) != 1:
        found = "several models: " + ", ".join(models) if models else "no model loaded"
        raise UsageError(
            f"{label} at {client.endpoint} has {found}; pass --model NAME" + ("" if models else " or load one first")
        )
    return models[0]


def open_executor(args):
    """--execute-mcp: calls run on the MCP server --mcp-command / --mcp-url names, else in a fresh
    sandbox copy of --vault-path per answer; None without --execute-mcp."""
    if not args.execute_mcp:
        return None
    if args.mcp_command or args.mcp_url:
        from Evaluator.execution import ExecutionUnavailable, McpExecutor

        try:
            return McpExecutor(args.mcp_command, args.mcp_url)
        except ExecutionUnavailable as exc:
            raise UsageError(str(exc)) from None
    from SelfPlay.labels import SandboxExecutor

    return SandboxExecutor(args.vault_path)


def lmstudio_loaded(base_url: str, timeout: float) -> list[str]:
    """The models LM Studio has in memory, from its native REST API (0.4+: /api/v1/models with
    loaded_instances; earlier: /api/v0/models with state); [] when neither answers."""
    import requests

    root = base_url.rstrip("/").removesuffix("/v1")
    for path, read in (
        ("/api/v1/models", lambda d: [m["key"] for m in d.get("models", []) if m.get("loaded_instances")]),
        ("/api/v0/models", lambda d: [m["id"] for m in d.get("data", []) if m.get("state") == "loaded"]),
    ):
        try:
            response = requests.get(root + path, timeout=timeout)
            if response.ok:
                return read(response.json())
        except (requests.RequestException, ValueError, KeyError, TypeError, AttributeError):
            continue
    return []


def show_progress(args) -> bool:
    return not args.no_progress and sys.stderr.isatty()


def finish(summary, summary_file: Path, registry, extra: dict | None = None, lines: list[str] | None = None) -> int:
    """Print the summary, write it as JSON beside the output, and return the exit code: 130 when
    interrupted, 1 when every example failed, else 0."""
    from Tools.schema.records import write_json_atomic

    write_json_atomic(summary_file, {**summary.to_dict(), "schema_hash": registry.schema_hash, **(extra or {})})
    print("\n".join(summary.lines(registry) + (lines or []) + [f"summary: {summary_file}"]))
    if summary.interrupted:
        print("interrupted: every example written so far is kept; continue with --resume")
        return EXIT_INTERRUPTED
    if summary.requested and summary.failed == summary.requested:
        print("error: every example failed; see the generation failures above", file=sys.stderr)
        return 1
    return 0
