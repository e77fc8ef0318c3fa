"""The shared data path (Trainers/shared/data.py) turned into MLX-ready batches. Imports no mlx.

Records are loaded, validated, rendered and masked by the same functions as the NVIDIA trainers,
and each method builds its own rows and batches (Trainers/shared/methods); this module splits off a
validation set, holds the tokenising and padding helpers the methods share, and orders batches
(numpy arrays; the trainer makes them mx.arrays).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from Tools.schema.records import label_of
from Tools.schema.registry import load_registry
from Tools.schema.validate import check_assistant_message

from ..data import DataError, LoadedData, chat_messages, load_records, validate_for
from ..methods import get_method


def _subset(data: LoadedData, records: list, source: str) -> LoadedData:
    labels = Counter({True: "true", False: "false", None: "unlabeled"}[label_of(r)] for _, r in records)
    return LoadedData(source, records, labels)


def split_validation(data: LoadedData, method: str, fraction: float, seed: int) -> tuple[LoadedData, LoadedData | None]:
    """Hold out a seeded random fraction for validation. KTO and DPO hold out whole consecutive pairs,
    so both parts keep KTO's strict alternation and DPO's chosen/rejected pairs."""
    if fraction <= 0:
        return data, None
    size = get_method(method).unit
    units = [data.records[i : i + size] for i in range(0, len(data.records), size)]
    whole = [i for i, unit in enumerate(units) if len(unit) == size]  # an odd last KTO record stays in training
    held = max(1, round(len(units) * fraction))
    if held >= len(units) or held > len(whole):
        raise DataError(
            f"{data.source}: {len(data.records)} record(s) are too few to hold out a validation split of "
            f"{fraction:g}; set monitor.validation_fraction: 0 or give monitor.validation_file"
        )
    chosen = set(random.Random(seed).sample(whole, held))
    train = [r for i, unit in enumerate(units) if i not in chosen for r in unit]
    validation = [r for i, unit in enumerate(units) if i in chosen for r in unit]
    return _subset(data, train, data.source), _subset(data, validation, f"{data.source} (validation split)")


def load_datasets(config) -> tuple[LoadedData, LoadedData | None]:
    """Training and validation records, both through the shared validator before anything is loaded."""
    method, drop = config.method, config.data.drop_invalid
    data = load_records(config.data.local_file)
    validate_for(method, data, drop_invalid=drop)
    if config.monitor.validation_file:
        validation = load_records(config.monitor.validation_file)
        validate_for(method, validation, drop_invalid=drop)
        return data, validation
    return split_validation(data, method, config.monitor.validation_fraction, config.training.seed)


# -- shared by the methods' rows and batches ---------------------------------------------------
def _common_prefix(a: list, b: list) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def split_completion(tokenizer, prompt: str, completions: list[str]) -> tuple[list[int], list[list[int]]]:
    """Prompt and completion token ids as TRL's KTO and DPO trainers tokenise them: EOS appended to a
    completion that lacks it, each completion starting where the tokenised prompt and
    prompt+completion diverge (the earliest divergence over all completions)."""
    eos = tokenizer.eos_token
    prompt_ids = tokenizer(text=prompt)["input_ids"]
    fulls = [tokenizer(text=prompt + (c if c.endswith(eos) else c + eos))["input_ids"] for c in completions]
    start = min(_common_prefix(prompt_ids, full) for full in fulls)
    return fulls[0][:start], [full[start:] for full in fulls]


def completion_arrays(prompts: list[list[int]], completions: list[list[int]], pad_id: int, max_seq_length: int) -> dict:
    """inputs, next-token targets and the completion-only loss mask of prompt+completion sequences,
    cut to max_seq_length and right-padded."""
    seqs = [(p + c)[:max_seq_length] for p, c in zip(prompts, completions)]
    masks = [([0] * len(p) + [1] * len(c))[:max_seq_length] for p, c in zip(prompts, completions)]
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int32)
    mask = np.zeros((len(seqs), width), dtype=np.float32)
    for i, (seq, m) in enumerate(zip(seqs, masks)):
        ids[i, : len(seq)], mask[i, : len(m)] = seq, m
    return {"inputs": ids[:, :-1], "targets": ids[:, 1:], "mask": mask[:, 1:]}


# -- batch order -------------------------------------------------------------------------------
@dataclass
class Schedule:
    """Which rows each micro-batch holds, as a pure function of its global index, so a resumed run
    replays the data order of an uninterrupted one. SFT and DPO reshuffle each epoch (seeded); KTO keeps
    the file order, as TRL's sequential sampling does, so every batch holds both labels."""

    rows: int
    batch_size: int
    shuffle: bool
    seed: int
    min_batch: int = 1  # KTO: a trailing batch of one row would pair a completion with itself
    _epochs: dict = field(default_factory=dict, repr=False)

    @property
    def per_epoch(self) -> int:
        full, rest = divmod(self.rows, self.batch_size)
        return full + (1 if rest >= self.min_batch and rest else 0)

    def indices(self, micro_batch: int) -> list[int]:
        epoch, position = divmod(micro_batch, self.per_epoch)
        if epoch not in self._epochs:
            order = np.arange(self.rows)
            if self.shuffle:
                order = np.random.default_rng(self.seed + epoch).permutation(self.rows)
            self._epochs = {epoch: order.tolist()}  # one epoch kept: memory stays flat over long runs
        start = position * self.batch_size
        return self._epochs[epoch][start : start + self.batch_size]


def total_steps(config, schedule: Schedule) -> int:
    t = config.training
    if t.max_steps > 0:
        return t.max_steps
    return max(1, math.ceil(t.num_epochs * schedule.per_epoch / t.gradient_accumulation))


def chunks(count: int, size: int, min_batch: int = 1) -> list[list[int]]:
    """Evaluation batches in file order (KTO pairs its KL completions inside each)."""
    out = [list(range(i, min(i + size, count))) for i in range(0, count, size)]
    return [c for c in out if len(c) >= min_batch]


# -- generation samples ------------------------------------------------------------------------
@dataclass
class Sample:
    line: int
    messages: list  # the conversation up to (not including) the last assistant turn
    system: str | None


def generation_samples(data: LoadedData, count: int) -> list[Sample]:
    """Prompts whose reference answer calls tools (positives only), for parse / valid-call rates."""
    samples = []
    for number, record in data.records:
        if len(samples) >= count:
            break
        if label_of(record) is False:
            continue
        messages = chat_messages(record)
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        if last is None or not messages[last].get("tool_calls"):
            continue
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        samples.append(Sample(number, messages[:last], system))
    return samples


def score_answer(text: str, system: str | None, registry=None) -> dict:
    """Judge one generated answer with the shared parser and validator: did a tool call parse,
    and does every call pass (known tool, arguments, context, ids from the system prompt)?"""
    parsed, findings = check_assistant_message(
        {"role": "assistant", "content": text}, registry or load_registry(), system
    )
    errors = sorted({f.code for f in findings if f.severity == "error"})
    return {
        "parsed": bool(parsed.calls),
        "valid": bool(parsed.calls) and not errors,
        "codes": errors,
        "tools": [c.name for c in parsed.calls],
    }
