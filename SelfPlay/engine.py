"""Run self-play jobs: bounded concurrency, results written in job order (so a seeded run writes
the same file whatever the concurrency), a progress bar, failures counted and logged instead of
stopping the run, and Ctrl-C that keeps every record already written."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

from .store import ExampleStore

log = logging.getLogger("selfplay")


class GenerationError(Exception):
    """One example could not be made (the backend failed after its retries, an unusable answer to
    prompt 1 or 2). It is counted and logged; the run goes on."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class Outcome:
    """What one job produced: records (judged, with label and metadata), or the failure."""

    index: int
    records: list[dict] = field(default_factory=list)
    failure: GenerationError | None = None


@dataclass
class RunSummary:
    requested: int = 0
    resumed: int = 0  # examples found already written (--resume)
    completed: int = 0
    valid: int = 0
    invalid: int = 0
    duplicate_exact: int = 0
    duplicate_near: int = 0
    failed: int = 0
    interrupted: bool = False
    wall_s: float = 0.0
    failures: Counter = field(default_factory=Counter)  # reason -> count
    codes: Counter = field(default_factory=Counter)  # error code -> invalid records carrying it
    tools: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))  # tool -> [valid, invalid]
    kto: dict | None = None  # the KTO file written after the run, when asked for
    notes: list = field(default_factory=list)  # e.g. what --resume repaired

    @property
    def written(self) -> int:
        return self.valid + self.invalid

    @property
    def valid_rate(self) -> float | None:
        return self.valid / self.written if self.written else None

    def add(self, record: dict, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome in ("valid", "invalid"):
            meta = record.get("metadata") or {}
            for tool in meta.get("tools") or ["(none)"]:
                self.tools[tool][outcome == "invalid"] += 1
            if outcome == "invalid":
                self.codes.update(meta.get("codes") or [])

    def to_dict(self) -> dict:
        return {
            "requested": self.requested,
            "resumed": self.resumed,
            "completed": self.completed,
            "written": self.written,
            "valid": self.valid,
            "invalid": self.invalid,
            "valid_rate": self.valid_rate,
            "duplicates": {"exact": self.duplicate_exact, "near": self.duplicate_near},
            "failed": self.failed,
            "failures": dict(self.failures.most_common()),
            "codes": dict(self.codes.most_common()),
            "tools": {k: {"valid": v[0], "invalid": v[1]} for k, v in sorted(self.tools.items())},
            "wall_s": round(self.wall_s, 3),
            "examples_per_s": round(self.completed / self.wall_s, 2) if self.wall_s else None,
            "interrupted": self.interrupted,
            "kto": self.kto,
            "notes": self.notes,
        }

    def lines(self, registry=None) -> list[str]:
        from Tools.cli_common import format_table

        rate = f"{self.valid_rate * 100:.1f}%" if self.valid_rate is not None else "-"
        speed = f"{self.completed / self.wall_s:.1f}/s" if self.wall_s else "-"
        out = [
            f"{self.completed} examples in {self.wall_s:.1f} s ({speed}): {self.valid} valid, {self.invalid} invalid "
            f"(valid rate {rate}), {self.duplicate_exact + self.duplicate_near} duplicates dropped "
            f"({self.duplicate_exact} exact, {self.duplicate_near} near), {self.failed} failed"
            + (f"; {self.resumed} already written before --resume" if self.resumed else "")
        ] + self.notes
        if self.codes:
            out += ["", *format_table([("failure code", "invalid examples"), *self.codes.most_common()])]
        if self.failures:
            out += ["", *format_table([("generation failure", "examples"), *self.failures.most_common()])]
        if registry is not None:
            visible = [t.name for t in registry.visible()]
            missing = [t for t in visible if not self.tools.get(t, [0, 0])[0]]
            out.append(
                f"tools with a valid example: {len(visible) - len(missing)} of {len(visible)}"
                + (f" (none yet: {', '.join(missing[:8])}{', ...' if len(missing) > 8 else ''})" if missing else "")
            )
        return out


def run_jobs(
    jobs: list[int],
    produce: Callable[[int, threading.Event], Outcome],
    store: ExampleStore,
    *,
    concurrency: int = 1,
    progress: bool = False,
    label: str = "selfplay",
) -> RunSummary:
    """Run produce(index, stop) for every job, concurrency at a time, and write each job's records
    in job order. Returns the summary; on Ctrl-C stops early with summary.interrupted set."""
    summary = RunSummary(requested=len(jobs))
    stop = threading.Event()
    results: dict[int, Outcome] = {}
    started = time.perf_counter()
    bar = None
    if progress:
        from Evaluator.runner import progress_bar

        bar = progress_bar(len(jobs), label, "examples")
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="selfplay")
    queue = iter(jobs)
    pending: dict = {}
    next_commit = 0
    window = max(1, concurrency) * 2

    def commit() -> None:
        nonlocal next_commit
        while next_commit < len(jobs) and jobs[next_commit] in results:
            outcome = results.pop(jobs[next_commit])
            next_commit += 1
            summary.completed += 1
            if outcome.failure is not None:
                summary.failed += 1
                summary.failures[outcome.failure.reason] += 1
                log.warning("example %d failed: %s", outcome.index, outcome.failure)
            for record in outcome.records:
                summary.add(record, store.add(record))
            if bar:
                bar[0].advance(bar[1])

    try:
        while True:
            while len(pending) < window and not stop.is_set():
                index = next(queue, None)
                if index is None:
                    break
                pending[pool.submit(produce, index, stop)] = index
            if not pending:
                break
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                try:
                    results[index] = future.result()
                except GenerationError as exc:
                    results[index] = Outcome(index, failure=exc)
                except Exception as exc:  # a bug in one example must not end the run; say what it was
                    results[index] = Outcome(
                        index, failure=GenerationError("internal error", f"{type(exc).__name__}: {exc}")
                    )
            commit()
    except KeyboardInterrupt:
        summary.interrupted = True
        stop.set()
        commit()
    finally:
        pool.shutdown(wait=not summary.interrupted, cancel_futures=True)
        if bar:
            bar[0].stop()
        summary.wall_s = time.perf_counter() - started
    return summary


def run_into_store(
    valid,
    invalid,
    num_examples: int,
    produce: Callable[[int, threading.Event], Outcome],
    client,
    executor=None,
    *,
    resume: bool = False,
    concurrency: int = 1,
    progress: bool = False,
) -> RunSummary:
    """Jobs 0..num_examples-1 (those not in the output files yet when resuming) run and written in
    order to valid / invalid; the sandbox executor, if any, closed afterwards."""
    with ExampleStore(valid, invalid, resume=resume) as store:
        jobs = [i for i in range(num_examples) if i not in store.done]
        summary = run_jobs(
            jobs,
            produce,
            store,
            concurrency=concurrency,
            progress=progress,
            label=f"selfplay {client.backend}:{client.model[-30:]}",
        )
        summary.resumed, summary.notes = len(store.done), store.resume_notes()
    if executor:
        executor.close()
    return summary
