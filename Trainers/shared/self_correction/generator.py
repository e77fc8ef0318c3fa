"""Turn evaluated answers into training data that never teaches a wrong answer.

For every evaluated example:
- a **self-evaluation** example: the question with "Your previous answer: ... Was this correct?"
  and a truthful yes/no as the target;
for every mistake, in addition:
- a **correction** example: the question, the previous answer and its error codes -> the golden answer;
- a **KTO pair**: the previous answer as ``label: false`` and the golden answer as ``label: true``,
  interleaved with ``Tools.schema.interleave.interleave``.

The model's answer only ever appears inside a user message or as a ``label: false`` completion;
every assistant target is the golden answer or a yes/no that is true. SFT trains on every
assistant turn of a record, so the previous answer is never written as an assistant turn of an
SFT example.

``SelfCorrectionGenerator`` buffers examples and, every ``generation_interval`` steps when at
least ``min_examples`` are buffered, writes ``self_correction_step<N>_<YYYYMMDD_HHMMSS>.jsonl``
(SFT examples), ``..._kto.jsonl`` (KTO pairs) and ``....json`` (metadata), and with ``auto_queue``
places the file for the training method in the daemon's queue.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from Tools.schema.interleave import interleave
from Tools.schema.records import write_json_atomic, write_jsonl_atomic

from .compare import Comparison

SELF_EVAL_PROMPT = "Your previous answer:\n{answer}\n\nWas this correct? Answer yes or no."
CORRECTION_PROMPT = (
    "Your previous answer:\n{answer}\n\nThis was not correct. Error codes: {codes}\n\nGive the correct answer."
)
YES, NO = "Yes, my previous answer was correct.", "No, my previous answer was not correct."
MAX_ANSWER_CHARS = 4000  # a runaway generation is cut inside the prompt, never in a target
KINDS = ("self_evaluation", "correction", "kto_true", "kto_false")


@dataclass
class Example:
    """One golden example: the conversation before the golden answer, and the golden answer."""

    id: str
    prompt: list[dict]  # record messages (system / user / assistant / tool), as in the source record
    golden: dict  # the golden assistant message, as in the source record

    @property
    def system(self) -> str | None:
        first = self.prompt[0] if self.prompt else {}
        return first.get("content") if first.get("role") == "system" else None

    @property
    def question(self) -> str:
        return next((m.get("content") or "" for m in reversed(self.prompt) if m.get("role") == "user"), "")


def example_from_record(record: dict, example_id: str) -> Example | None:
    """The record's last assistant message as the golden answer; None when it has none."""
    messages = record.get("conversations") if isinstance(record, dict) else None
    if not isinstance(messages, list):
        return None
    last = max(
        (i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"), default=None
    )
    if last is None or not any(isinstance(m, dict) and m.get("role") == "user" for m in messages[:last]):
        return None
    return Example(example_id, copy.deepcopy(messages[:last]), copy.deepcopy(messages[last]))


def _clip(answer: str) -> str:
    answer = answer.strip() or "(empty)"
    return answer if len(answer) <= MAX_ANSWER_CHARS else answer[:MAX_ANSWER_CHARS] + "\n[... cut]"


def _follow_up(prompt: list[dict], text: str) -> list[dict]:
    """The prompt with text added to its last user message, or as a new user message after a tool result."""
    messages = copy.deepcopy(prompt)
    if messages and messages[-1].get("role") == "user":
        messages[-1]["content"] = f"{messages[-1].get('content') or ''}\n\n{text}"
    else:
        messages.append({"role": "user", "content": text})
    return messages


def _record(
    messages: list[dict],
    kind: str,
    example: Example,
    comparison: Comparison,
    step: int | None,
    label: bool | None = None,
) -> dict:
    record = {"conversations": messages}
    if label is not None:
        record["label"] = label
    record["metadata"] = {
        "kind": kind,
        "source_id": example.id,
        "error_codes": comparison.codes,
        "step": step,
        "generator": "self_correction",
    }
    return record


def make_examples(
    example: Example, answer: str, comparison: Comparison, step: int | None = None
) -> dict[str, list[dict]]:
    """The training records for one evaluated answer, by kind (see KINDS)."""
    shown = _clip(answer)
    verdict = {"role": "assistant", "content": YES if comparison.match else NO}
    out = {kind: [] for kind in KINDS}
    out["self_evaluation"].append(
        _record(
            _follow_up(example.prompt, SELF_EVAL_PROMPT.format(answer=shown)) + [verdict],
            "self_evaluation",
            example,
            comparison,
            step,
        )
    )
    if comparison.match:
        return out
    codes = " | ".join(comparison.codes)
    out["correction"].append(
        _record(
            _follow_up(example.prompt, CORRECTION_PROMPT.format(answer=shown, codes=codes))
            + [copy.deepcopy(example.golden)],
            "correction",
            example,
            comparison,
            step,
        )
    )
    if answer.strip():  # an empty completion cannot be a KTO example; the correction still teaches the fix
        out["kto_true"].append(
            _record(
                copy.deepcopy(example.prompt) + [copy.deepcopy(example.golden)],
                "kto_pair",
                example,
                comparison,
                step,
                True,
            )
        )
        out["kto_false"].append(
            _record(
                copy.deepcopy(example.prompt) + [{"role": "assistant", "content": answer}],
                "kto_pair",
                example,
                comparison,
                step,
                False,
            )
        )
    return out


@dataclass
class Stats:
    total_evals: int = 0
    correct_first_try: int = 0
    needed_correction: int = 0
    files_generated: int = 0
    examples_generated: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Batch:
    """What one write produced."""

    step: int
    sft_file: Path
    kto_file: Path | None
    metadata_file: Path
    counts: dict
    queued: Path | None = None


@dataclass
class SelfCorrectionGenerator:
    output_dir: Path
    method: str = (
        "sft"  # which file auto_queue places in the queue: the SFT examples, or the KTO pairs for a labelled method
    )
    min_examples: int = 10
    generation_interval: int = 100
    auto_queue: bool = False
    queue_dir: Path | None = None  # the daemon's root (holding inbox/ and queue/)
    buffer: dict = field(default_factory=lambda: {kind: [] for kind in KINDS})
    codes: Counter = field(default_factory=Counter)
    stats: Stats = field(default_factory=Stats)
    last_write_step: int = 0
    batches: list = field(default_factory=list)

    def __post_init__(self):
        self.output_dir = Path(self.output_dir)

    @property
    def buffered(self) -> int:
        return sum(len(records) for records in self.buffer.values())

    def add(self, example: Example, answer: str, comparison: Comparison, step: int | None = None) -> None:
        self.stats.total_evals += 1
        if comparison.match:
            self.stats.correct_first_try += 1
        else:
            self.stats.needed_correction += 1
            self.codes.update(comparison.codes)
        for kind, records in make_examples(example, answer, comparison, step).items():
            self.buffer[kind].extend(records)

    def maybe_write(self, step: int) -> Batch | None:
        """Write the buffer when generation_interval steps have passed since the last write and at
        least min_examples are buffered."""
        if step - self.last_write_step < self.generation_interval or self.buffered < max(1, self.min_examples):
            return None
        return self.write(step)

    def flush(self, step: int) -> Batch | None:
        """At the end of training: write what is buffered if it reaches min_examples."""
        return self.write(step) if self.buffered and self.buffered >= self.min_examples else None

    def write_files(self, sft_file: Path, kto_file: Path) -> tuple[Path, Path | None]:
        """The buffer as an SFT file and, when there are pairs, a KTO file (strict true/false order)."""
        write_jsonl_atomic(sft_file, self.buffer["self_evaluation"] + self.buffer["correction"])
        if not self.buffer["kto_true"]:
            return sft_file, None
        write_jsonl_atomic(kto_file, interleave(self.buffer["kto_true"], self.buffer["kto_false"]).records)
        return sft_file, kto_file

    def metadata(self, step: int | None, files: dict) -> dict:
        from Tools.schema.registry import load_registry

        return {
            "step": step,
            "timestamp": datetime.now().isoformat(timespec="seconds"),
            "counts": {kind: len(records) for kind, records in self.buffer.items()},
            "error_codes": dict(self.codes.most_common()),
            "stats": self.stats.to_dict(),
            "files": files,
            "schema_hash": load_registry().schema_hash,
        }

    def write(self, step: int) -> Batch:
        stem = self.output_dir / f"self_correction_step{step}_{datetime.now():%Y%m%d_%H%M%S}"
        sft_file, kto_file = self.write_files(
            stem.with_name(stem.name + ".jsonl"), stem.with_name(stem.name + "_kto.jsonl")
        )
        self.stats.files_generated += 1 + (kto_file is not None)
        self.stats.examples_generated += self.buffered
        queued = None
        from ..methods import get_method

        chosen = kto_file if get_method(self.method).labelled else sft_file  # KTO and DPO train on the pairs
        if self.auto_queue and chosen is not None:
            from Trainers.daemon.queue import QueueLayout

            queued = QueueLayout(self.queue_dir).enqueue(chosen)
        metadata = self.metadata(
            step,
            {
                "sft": sft_file.name,
                "kto": kto_file.name if kto_file else None,
                "queued": str(queued) if queued else None,
            },
        )
        metadata_file = stem.with_name(stem.name + ".json")
        write_json_atomic(metadata_file, metadata)  # written last: its presence means the batch is complete
        batch = Batch(step, sft_file, kto_file, metadata_file, metadata["counts"], queued)
        self.batches.append(batch)
        self.buffer = {kind: [] for kind in KINDS}
        self.codes = Counter()
        self.last_write_step = step
        return batch


# -- the manual path: golden Q&A + answers generated beforehand --------------------------------
def load_examples(path: str | Path) -> list[Example]:
    """Golden examples from a JSONL file of toolkit records (``conversations``; the last assistant
    message is the golden answer, label:false records are skipped) or of the seed's Q&A pairs
    (``{"prompt": ..., "response": ...}``). Records must pass the shared validator."""
    from Tools.cli_common import UsageError
    from Tools.schema.records import iter_jsonl, label_of
    from Tools.schema.registry import load_registry
    from Tools.schema.validate import record_passes, validate_record

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    registry, examples, bad = load_registry(), [], []
    for line in iter_jsonl(path):
        record = line.record
        if line.error or not isinstance(record, dict):
            bad.append((line.number, "unreadable line"))
            continue
        if (
            "conversations" not in record
            and isinstance(record.get("prompt"), str)
            and isinstance(record.get("response"), str)
        ):
            record = {
                "id": record.get("id"),
                "conversations": [
                    {"role": "user", "content": record["prompt"]},
                    {"role": "assistant", "content": record["response"]},
                ],
            }
        if label_of(record) is False:
            continue
        if not record_passes(validate_record(record, registry), label_of(record)):
            bad.append((line.number, "fails validation (a golden answer must be right)"))
            continue
        example = example_from_record(record, str(record.get("id") or f"{path.name}:{line.number}"))
        if example is None:
            bad.append((line.number, "no user message followed by an assistant answer"))
            continue
        examples.append(example)
    if bad:
        raise UsageError(
            f"{path}: {len(bad)} record(s) cannot be used (first: line {bad[0][0]}, {bad[0][1]}); "
            f"check with python Tools/validate_syngen.py {path}"
        )
    if not examples:
        raise UsageError(f"{path}: no golden example")
    return examples


def answer_text(message: dict) -> str:
    """A model's reply as the text the comparison reads: native tool calls written as <tool_call> blocks."""
    from Tools.schema.toolcalls import parse_message, render_content

    content = message.get("content") if isinstance(message.get("content"), str) else ""
    if not message.get("tool_calls"):
        return content
    parsed = parse_message(message)
    calls = render_content(parsed.calls, "hermes") if parsed.calls else ""
    return f"{content.strip()}\n{calls}".strip()


def build_from_answers(
    examples: list[Example], answers: list[dict], generator: SelfCorrectionGenerator, registry=None
) -> dict:
    """Compare each answer with its golden example and feed the generator. An answer finds its
    example by ``id``, else by ``prompt`` (the last user message, the seed's key). Returns counts:
    answered, unanswered (no answer or an answer with an error), unknown (answers matching nothing)."""
    from .compare import compare_answer

    by_id = {e.id: e for e in examples}
    by_prompt = {e.question.strip(): e for e in examples}
    seen, unknown, errors = set(), 0, set()
    for answer in answers:
        example = by_id.get(str(answer.get("id"))) if answer.get("id") is not None else None
        example = example or by_prompt.get(str(answer.get("prompt", "")).strip())
        if example is None:
            unknown += 1
            continue
        text = answer.get("answer")
        if not isinstance(text, str):
            errors.add(example.id)  # a failed request; a later line may hold the retried answer
            continue
        if example.id in seen:
            continue
        seen.add(example.id)
        comparison = compare_answer(example.golden, text, example.system, example.question, registry)
        generator.add(example, text, comparison)
    return {
        "answered": len(seen),
        "unanswered": len(examples) - len(seen),
        "answer_errors": len(errors - seen),
        "unknown": unknown,
    }
