"""One evaluation from start to report: the library behind every evaluator command."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from Tools.errors import EXIT_FINDINGS, EXIT_OK, UsageError

from .backends import connect
from .prompt_sets import PromptSetError, load_prompt_set, unknown_tools
from .runner import RunSettings, run_prompt_set

EXIT_INTERRUPTED = 130


@dataclass
class EvalRequest:
    backend: str
    model: str
    prompt_set: str
    output: Path
    markdown: Path | None = None
    base_url: str | None = None
    api_key: str | None = None
    adapter: str | None = None
    schema: str | None = None
    tags: list[str] = field(default_factory=list)
    limit: int | None = None
    settings: RunSettings = field(default_factory=RunSettings)
    fail_under: float | None = None
    progress: bool = True
    mcp_command: str | None = None  # with execute_mcp: run calls on this stdio MCP server ...
    mcp_url: str | None = None  # ... or this streamable-HTTP one, instead of a vault sandbox


@dataclass
class EvalResult:
    report: dict | None
    exit_code: int
    lines: list[str]  # the short summary the command prints


def load_inputs(request: EvalRequest):
    """The prompt set (filtered) and the registry, or a UsageError naming what is wrong."""
    from Tools.schema.registry import load_registry

    try:
        prompt_set = load_prompt_set(request.prompt_set).select(request.tags or None, request.limit)
    except PromptSetError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"{request.prompt_set}: {exc.strerror}") from None
    if not prompt_set.cases:
        raise UsageError(f"{request.prompt_set}: no case carries any of the tags {', '.join(request.tags)}")
    try:
        registry = load_registry(request.schema)
    except (OSError, ValueError) as exc:
        raise UsageError(f"tool schemas: {exc}") from None
    return prompt_set, registry


def open_client(request: EvalRequest):
    """A client that has answered once (servers: the model list), or a UsageError."""
    return connect(
        request.backend,
        request.model,
        base_url=request.base_url,
        api_key=request.api_key,
        timeout=request.settings.timeout,
        adapter=request.adapter,
        max_answer_bytes=request.settings.max_answer_bytes,
    )


def _stale_warnings(prompt_set, registry) -> list[str]:
    return [
        f"warning: {case} expects tools the schema file does not define: {', '.join(names)}"
        for case, names in unknown_tools(prompt_set, registry).items()
    ]


def dry_run(request: EvalRequest) -> EvalResult:
    """Load and check everything, send nothing."""
    prompt_set, registry = load_inputs(request)
    lines = [
        f"prompt set {prompt_set.name}: {len(prompt_set.cases)} cases x {request.settings.repeats} repeats, "
        f"sha256 {prompt_set.sha256[:12]}",
        f"tool schemas: {len(registry)} tools, hash {registry.short_hash}",
        f"backend {request.backend}, model {request.model}, tools in request: {request.settings.tools_in_request}",
    ]
    lines += _stale_warnings(prompt_set, registry)
    if request.settings.execute_mcp:
        from .execution import ExecutionUnavailable, make_executor

        try:
            executor = make_executor(
                request.settings.vault_path, prompt_set.cases, mcp_command=request.mcp_command, mcp_url=request.mcp_url
            )
        except ExecutionUnavailable as exc:
            raise UsageError(str(exc)) from None
        getattr(executor, "close", lambda: None)()
    return EvalResult(None, EXIT_OK, lines + ["dry run: nothing sent"])


def evaluate(request: EvalRequest) -> EvalResult:
    """Run the prompt set and write the JSON (and Markdown) report, partial on Ctrl-C."""
    from .reporting import build_report, render_markdown, sigint_ignored, write_reports

    prompt_set, registry = load_inputs(request)
    stale = _stale_warnings(prompt_set, registry)
    execute = None
    if request.settings.execute_mcp:
        from .execution import ExecutionUnavailable, make_executor

        try:
            execute = make_executor(
                request.settings.vault_path, prompt_set.cases, mcp_command=request.mcp_command, mcp_url=request.mcp_url
            )
        except ExecutionUnavailable as exc:
            raise UsageError(str(exc)) from None
    try:
        client = open_client(request)
        started = time.time()
        try:
            outcome = run_prompt_set(
                client, prompt_set.cases, registry, request.settings, progress=request.progress, execute=execute
            )
        finally:
            client.close()
    finally:
        getattr(execute, "close", lambda: None)()  # an MCP server's connection
    with sigint_ignored():  # a second Ctrl-C must not cost the report
        report = build_report(
            client=client,
            prompt_set=prompt_set,
            registry=registry,
            settings=request.settings,
            outcome=outcome,
            started_at=started,
        )
        write_reports(report, request.output, request.markdown, render_markdown)
    s = report["summary"]
    k = request.settings.repeats
    lines = [
        f"{s['cases']} cases, {s['attempts']} attempts: pass@1 {_pct(s['pass_at_1'])}, pass^{k} "
        f"{_pct(s[f'pass_hat_{k}'])}, {s['requests_failed']} failed requests, {outcome.wall_s:.1f} s",
        *(f"  {code}: {v['count']}" for code, v in list(s["failure_codes"].items())[:5]),
        f"report: {request.output}" + (f" and {request.markdown}" if request.markdown else ""),
        *stale,
    ]
    if outcome.interrupted:
        return EvalResult(report, EXIT_INTERRUPTED, ["interrupted: partial report written"] + lines)
    if s["attempts"] and s["requests_failed"] == s["attempts"]:
        return EvalResult(report, EXIT_FINDINGS, lines + ["error: every request failed; see the report's errors"])
    if request.fail_under is not None and (s["pass_at_1"] or 0) < request.fail_under:
        return EvalResult(report, EXIT_FINDINGS, lines + [f"pass@1 is below --fail-under {request.fail_under}"])
    return EvalResult(report, EXIT_OK, lines)


def _pct(rate) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"
