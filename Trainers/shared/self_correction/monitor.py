"""The live inference monitor, free of any training framework.

A trainer calls ``LiveMonitor.evaluate(step, generate)`` every ``eval_steps`` steps, where
``generate(messages) -> str`` returns the model's text for chat messages (rendered with the
model's chat template, generation prompt on, greedy, at most eval_max_tokens). The monitor
samples ``num_eval_samples`` validation examples, compares each answer with its golden answer,
prints a compact report and hands the results to the self-correction generator, if any. The HF
callback (``callback.py``) and the MLX trainer build ``generate`` from their own model.

Validation examples come from a separate file (``monitor.validation_file``) or are held out of
the training data (``monitor.validation_fraction``); see ``hold_out``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from Tools.cli_common import UsageError
from Tools.schema.records import iter_jsonl, label_of
from Tools.schema.registry import ToolRegistry, load_registry
from Tools.schema.validate import record_passes, validate_record

from .compare import Comparison, compare_answer, summarize
from ..config import REPO_ROOT, SelfCorrectionConfig
from .generator import Example, SelfCorrectionGenerator, example_from_record


@dataclass
class EvalResult:
    example: Example
    answer: str
    comparison: Comparison
    seconds: float

    def to_dict(self) -> dict:
        return {
            "id": self.example.id,
            "match": self.comparison.match,
            "codes": self.comparison.codes,
            "expected": summarize(self.example.golden),
            "predicted": summarize(self.answer),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class EvalReport:
    step: int
    results: list[EvalResult] = field(default_factory=list)
    error: str | None = None  # generation failed (e.g. out of memory); training goes on

    @property
    def correct(self) -> int:
        return sum(r.comparison.match for r in self.results)

    def summary(self) -> dict:
        return {
            "step": self.step,
            "evaluated": len(self.results),
            "correct": self.correct,
            "error": self.error,
            "results": [r.to_dict() for r in self.results],
        }

    def format(self, width: int = 100) -> str:
        """The compact printed report: one line per example, expected vs predicted for mismatches."""
        total = len(self.results)
        head = f"live eval @ step {self.step}: {self.correct}/{total} match"
        lines = [head + (f" ({100 * self.correct // total}%)" if total else "")]
        if self.error:
            lines.append(f"  generation failed: {self.error}")
        for result in self.results:
            if result.comparison.match:
                lines.append(f"  MATCH     {result.example.id}: {summarize(result.answer, width)}")
                continue
            lines.append(f"  MISMATCH  {result.example.id}: {', '.join(result.comparison.codes)}")
            lines.append(f"      expected:  {summarize(result.example.golden, width)}")
            lines.append(f"      predicted: {summarize(result.answer, width)}")
        return "\n".join(lines)


Generate = Callable[[list[dict]], str]


class LiveMonitor:
    def __init__(
        self,
        examples: list[Example],
        num_samples: int = 5,
        generator: SelfCorrectionGenerator | None = None,
        registry: ToolRegistry | None = None,
        seed: int = 42,
        to_messages: Callable[[list[dict]], list[dict]] | None = None,
        printer: Callable[[str], None] | None = print,
    ):
        if not examples:
            raise UsageError("the live monitor has no validation examples")
        self.examples, self.num_samples, self.generator = examples, num_samples, generator
        self.registry = registry or load_registry()
        self.seed, self.printer = seed, printer
        self.to_messages = to_messages or _chat_messages
        self.reports: list[EvalReport] = []

    def sample(self, step: int) -> list[Example]:
        """A different seeded sample at every step, so evaluations cover the whole validation set."""
        count = min(self.num_samples, len(self.examples))
        return random.Random(self.seed * 1_000_003 + step).sample(self.examples, count)

    def evaluate(self, step: int, generate: Generate) -> EvalReport:
        report = EvalReport(step)
        for example in self.sample(step):
            started = time.perf_counter()
            try:
                answer = generate(self.to_messages(example.prompt))
            except Exception as exc:  # e.g. out of memory: a failed evaluation must not end the training run
                report.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                break
            comparison = compare_answer(example.golden, answer, example.system, example.question, self.registry)
            report.results.append(EvalResult(example, answer, comparison, time.perf_counter() - started))
            if self.generator is not None:
                self.generator.add(example, answer, comparison, step)
        self.reports.append(report)
        if self.printer:
            self.printer(report.format())
        if self.generator is not None:
            self._said(self.generator.maybe_write(step))
        return report

    def finish(self, step: int) -> None:
        """End of training: write what the generator holds if it reaches min_examples."""
        if self.generator is not None:
            buffered = self.generator.buffered
            if not self._said(self.generator.flush(step)) and buffered and self.printer:
                self.printer(
                    f"self-correction: {buffered} buffered example(s) below min_examples "
                    f"({self.generator.min_examples}); not written"
                )

    def _said(self, batch) -> bool:
        if batch is not None and self.printer:
            kinds = ", ".join(f"{n} {k}" for k, n in batch.counts.items() if n)
            where = f"; queued as {batch.queued}" if batch.queued else ""
            # "Self-Correction:" as the earlier project wrote it: its guide greps the logs for it
            self.printer(
                f"Self-Correction: generated {sum(batch.counts.values())} example(s) -> {batch.sft_file} ({kinds}){where}"
            )
        return batch is not None


def _chat_messages(prompt: list[dict]) -> list[dict]:
    """Record messages as chat-template messages, tool calls rendered the way training renders them."""
    from Trainers.shared.data import chat_messages

    return chat_messages({"conversations": prompt})


# -- validation data ---------------------------------------------------------------------------
def examples_from_records(records: list[tuple[int, dict]], source: str) -> list[Example]:
    """Golden examples from (line number, record) pairs: positives and unlabelled records only."""
    found = []
    for number, record in records:
        if label_of(record) is False:
            continue
        example = example_from_record(record, str(record.get("id") or f"{source}:{number}"))
        if example is not None:
            found.append(example)
    return found


def load_validation_file(path: str, registry: ToolRegistry | None = None) -> list[Example]:
    """Golden examples from a JSONL file; every golden record must pass the validator (a golden
    answer is what the model is taught, so a wrong one is refused, not used)."""
    registry = registry or load_registry()
    if not Path(path).is_file():
        raise UsageError(f"{path}: no such validation file")
    records, failing = [], []
    for line in iter_jsonl(path):
        if line.error or not isinstance(line.record, dict):
            failing.append(line.number)
            continue
        if label_of(line.record) is False:
            continue
        if not record_passes(validate_record(line.record, registry), label_of(line.record)):
            failing.append(line.number)
            continue
        records.append((line.number, line.record))
    if failing:
        raise UsageError(
            f"{path}: {len(failing)} validation record(s) are unreadable or fail validation (first: line "
            f"{failing[0]}); golden answers must be right. Check with python Tools/validate_syngen.py {path}"
        )
    examples = examples_from_records(records, Path(path).name)
    if not examples:
        raise UsageError(f"{path}: no record with a user message and an assistant answer to evaluate on")
    return examples


def hold_out(records: list[tuple[int, dict]], fraction: float, seed: int = 42, paired: bool = False):
    """Split (line, record) pairs into (train, held out), held out = round(fraction x size), at least
    one, never everything. paired (KTO): whole neighbouring pairs are held out, so strictly
    alternating labels stay alternating in what is left."""
    units = [records[i : i + 2] for i in range(0, len(records) - 1, 2)] if paired else [[r] for r in records]
    count = min(max(1, round(fraction * len(units))), len(units) - 1)
    if count < 1:
        raise UsageError(
            f"{len(records)} record(s) are too few to hold some out for the live monitor; "
            "set monitor.validation_file instead"
        )
    chosen = set(random.Random(seed).sample(range(len(units)), count))
    train = [r for i, unit in enumerate(units) if i not in chosen for r in unit]
    if paired and len(records) % 2:
        train.append(records[-1])
    held = [r for i in sorted(chosen) for r in units[i]]
    return train, held


def make_monitor(
    method: str, examples: list[Example], num_samples: int, settings: SelfCorrectionConfig, seed: int = 42
) -> LiveMonitor:
    """The live monitor, feeding a self-correction generator when settings.enabled; shared by the
    transformers callback and the MLX trainer."""
    generator = None
    if settings.enabled:
        generator = SelfCorrectionGenerator(
            Path(settings.output_dir) if settings.output_dir else REPO_ROOT / "data" / "self_correction",
            method=method,
            min_examples=settings.min_examples,
            generation_interval=settings.generation_interval,
            auto_queue=settings.auto_queue,
            queue_dir=Path(settings.queue_dir) if settings.queue_dir else REPO_ROOT,
        )
    return LiveMonitor(examples, num_samples, generator, seed=seed)
