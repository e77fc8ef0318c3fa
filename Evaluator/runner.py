"""Run a prompt set against a client: bounded concurrency, retries with exponential backoff and
jitter, a per-request timeout (the client's), a progress bar; Ctrl-C keeps what has finished."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field

from Tools.schema.issues import Finding

from .clients import MAX_ANSWER_BYTES, BackendError, ChatClient
from .scoring import STAGES, CaseScore, score_case


@dataclass
class RunSettings:
    temperature: float = 0.0
    max_tokens: int = 512
    timeout: float = 60.0  # seconds for a whole request: connect, wait, and every byte of the answer
    max_answer_bytes: int = MAX_ANSWER_BYTES  # a larger answer is a case failure, not kept in memory
    retries: int = 2
    concurrency: int = 1
    repeats: int = 1
    tools_in_request: bool = False
    execute_mcp: bool = False
    vault_path: str | None = None
    backoff: float = 0.5  # seconds before the first retry; doubles each time, with jitter

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunOutcome:
    results: list[dict]  # one per (case, attempt), in prompt-set order
    interrupted: bool
    wall_s: float
    not_run: list[dict] = field(default_factory=list)  # {"id", "attempt"} of jobs an interrupt left unfinished


def request_with_retries(
    client: ChatClient,
    messages,
    tools=None,
    *,
    temperature: float = 0.0,
    max_tokens: int = 512,
    retries: int = 2,
    backoff: float = 0.5,
    stop: threading.Event | None = None,
):
    """(reply, BackendError or None, retries used): retryable failures are tried again after a
    jittered backoff, or after the server's Retry-After when it sent one. The evaluator and
    self-play both send every request through here."""
    stop = stop or threading.Event()
    for attempt in range(retries + 1):
        try:
            return client.chat(messages, tools, temperature, max_tokens), None, attempt
        except BackendError as exc:
            error = exc
        except Exception as exc:  # an embedded engine's own failure: this case fails, the run goes on
            error = BackendError(f"{client.backend} failed: {exc.__class__.__name__}: {str(exc)[:300]}")
        if not error.retryable or attempt == retries or stop.is_set():
            return None, error, attempt
        delay = backoff * (2**attempt) * (0.5 + random.random())
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        if stop.wait(delay):
            return None, BackendError(f"{error} (interrupted while waiting to retry)", code=error.code), attempt
    raise AssertionError("unreachable")


def run_case(
    client: ChatClient, case, attempt: int, registry, settings: RunSettings, tools, stop: threading.Event, execute=None
) -> dict:
    """Ask one case once and score the answer; never raises for a backend failure."""
    started = time.perf_counter()
    reply, error, retries = request_with_retries(
        client,
        case.messages(),
        tools,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        retries=settings.retries,
        backoff=settings.backoff,
        stop=stop,
    )
    latency = time.perf_counter() - started
    scored_at = time.perf_counter()
    try:
        score = score_case(
            case,
            reply.message if reply else None,
            registry,
            error and str(error),
            execute,
            error.code if error else "E_NO_RESPONSE",
        )
    except (RecursionError, ValueError, TypeError, AttributeError) as exc:  # an answer the scorer cannot read
        score = CaseScore(
            False,
            "response",
            dict.fromkeys(STAGES) | {"response": False},
            None,
            [],
            "",
            [
                Finding(
                    "E_BAD_SERVER_ANSWER", f"the answer could not be scored: {exc.__class__.__name__}: {str(exc)[:200]}"
                )
            ],
        )
    return {
        "id": case.id,
        "attempt": attempt,
        "tags": case.tags,
        "expected_tools": case.expected_tools,
        **score.to_dict(),
        "text": score.text,
        "error": error and str(error),
        "retries": retries,
        "latency_s": round(latency, 4),
        "score_ms": round((time.perf_counter() - scored_at) * 1000, 3),
        "finish_reason": reply.finish_reason if reply else None,
        "response": reply.message if reply else None,
        "raw": reply.raw if reply else None,
    }


def run_prompt_set(
    client: ChatClient, cases, registry, settings: RunSettings, *, progress: bool = True, execute=None, run=None
) -> RunOutcome:
    """Every case ``settings.repeats`` times. On Ctrl-C, stops sending, waits for nothing and
    returns what finished with ``interrupted=True`` (the caller writes the partial report).
    ``run(case, attempt, stop) -> result`` replaces run_case for cases of another kind (BFCL's)."""
    tools = registry.openai_tools() if settings.tools_in_request else None
    run = run or (lambda case, attempt, stop: run_case(client, case, attempt, registry, settings, tools, stop, execute))
    jobs = [(index, case, attempt) for attempt in range(settings.repeats) for index, case in enumerate(cases)]
    stop = threading.Event()
    results: dict[tuple[int, int], dict] = {}
    started = time.perf_counter()
    bar = progress_bar(len(jobs), f"{client.backend}:{client.model[-40:]}", "cases") if progress else None
    pool = ThreadPoolExecutor(max_workers=max(1, settings.concurrency), thread_name_prefix="eval")
    interrupted = False
    try:
        pending = {pool.submit(run, case, attempt, stop): (index, attempt) for index, case, attempt in jobs}
        while pending:
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                results[pending.pop(future)] = future.result()
                if bar:
                    bar[0].advance(bar[1])
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=True)
        if bar:
            bar[0].stop()
    ordered = [results[key] for key in sorted(results, key=lambda k: (k[0], k[1]))]
    not_run = [
        {"id": case.id, "attempt": attempt}
        for index, case, attempt in sorted(jobs, key=lambda j: (j[0], j[2]))
        if (index, attempt) not in results
    ]
    return RunOutcome(ordered, interrupted, time.perf_counter() - started, not_run)


def progress_bar(total: int, label: str, unit: str = "cases"):
    """A started rich progress bar with rate and ETA: (bar, task id); advance with bar.advance(task)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.2f} {unit}/s" if speed else f"-- {unit}/s")

    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        Rate(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        transient=False,
    )
    bar.start()
    return bar, bar.add_task(unit, total=total)
