"""The shared data path (Trainers/shared/data.py) turned into MLX-ready batches. Imports no mlx.

Records are loaded, validated, rendered and masked by the same functions as the NVIDIA trainers;
this module only splits off a validation set, tokenises KTO rows the way TRL does, and cuts
batches (numpy arrays; the trainer makes them mx.arrays).
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

from ..data import IGNORE_INDEX, DataError, LoadedData, chat_messages, load_records, prepare, validate_for


def _subset(data: LoadedData, records: list, source: str) -> LoadedData:
    labels = Counter({True: "true", False: "false", None: "unlabeled"}[label_of(r)] for _, r in records)
    return LoadedData(source, records, labels)


def split_validation(data: LoadedData, method: str, fraction: float, seed: int) -> tuple[LoadedData, LoadedData | None]:
    """Hold out a seeded random fraction for validation. KTO holds out whole consecutive true/false
    pairs, so both parts keep the strict alternation its KL estimate needs."""
    if fraction <= 0:
        return data, None
    size = 2 if method == "kto" else 1
    units = [data.records[i:i + size] for i in range(0, len(data.records), size)]
    whole = [i for i, unit in enumerate(units) if len(unit) == size]  # an odd last KTO record stays in training
    held = max(1, round(len(units) * fraction))
    if held >= len(units) or held > len(whole):
        raise DataError(f"{data.source}: {len(data.records)} record(s) are too few to hold out a validation split of "
                        f"{fraction:g}; set data.validation_split: 0 or give data.validation_path")
    chosen = set(random.Random(seed).sample(whole, held))
    train = [r for i, unit in enumerate(units) if i not in chosen for r in unit]
    validation = [r for i, unit in enumerate(units) if i in chosen for r in unit]
    return _subset(data, train, data.source), _subset(data, validation, f"{data.source} (validation split)")


def load_datasets(config) -> tuple[LoadedData, LoadedData | None]:
    """Training and validation records, both through the shared validator before anything is loaded."""
    method = config.method
    data = load_records(config.data.dataset_path)
    validate_for(method, data)
    if config.data.validation_path:
        validation = load_records(config.data.validation_path)
        validate_for(method, validation)
        return data, validation
    return split_validation(data, method, config.data.validation_split, config.training.seed)


# -- SFT ---------------------------------------------------------------------------------------
def sft_rows(data: LoadedData, tokenizer, max_seq_length: int) -> tuple[list[dict], int]:
    """input_ids and labels (-100 outside assistant turns) per record, cut to max_seq_length; and how many were cut."""
    prepared = prepare("sft", data, tokenizer, max_seq_length)
    rows = [{"input_ids": r["input_ids"][:max_seq_length], "labels": r["labels"][:max_seq_length]} for r in prepared.rows]
    return rows, prepared.truncated


def sft_batch(rows: list[dict], pad_id: int) -> dict:
    """Inputs, next-token targets and the loss mask (assistant tokens only), right-padded.

    Position t predicts token t+1, so the mask is taken from the labels shifted by one: the loss
    lands exactly on the assistant tokens, never on the prompt or on padding.
    """
    width = max(len(r["input_ids"]) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int32)
    labels = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int32)
    for i, row in enumerate(rows):
        ids[i, :len(row["input_ids"])] = row["input_ids"]
        labels[i, :len(row["labels"])] = row["labels"]
    return {"inputs": ids[:, :-1], "targets": ids[:, 1:], "mask": (labels[:, 1:] != IGNORE_INDEX).astype(np.float32)}


# -- KTO ---------------------------------------------------------------------------------------
def _common_prefix(a: list, b: list) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def kto_rows(data: LoadedData, tokenizer, max_seq_length: int) -> tuple[list[dict], int]:
    """prompt_ids / completion_ids / label per record, tokenised as TRL's KTOTrainer does: EOS appended
    to a completion that lacks it, the completion starting where prompt and prompt+completion diverge.
    Records whose prompt alone fills max_seq_length are dropped (no completion token would remain),
    as TRL drops them; returns the rows and how many were dropped."""
    rows, dropped = [], 0
    eos = tokenizer.eos_token
    for row in prepare("kto", data, tokenizer, max_seq_length).rows:
        completion = row["completion"] if row["completion"].endswith(eos) else row["completion"] + eos
        prompt_ids = tokenizer(text=row["prompt"])["input_ids"]
        full = tokenizer(text=row["prompt"] + completion)["input_ids"]
        start = _common_prefix(prompt_ids, full)
        if start >= max_seq_length:
            dropped += 1
            continue
        rows.append({"prompt_ids": full[:start], "completion_ids": full[start:], "label": row["label"]})
    if not rows:
        raise DataError(f"{data.source}: every prompt fills model.max_seq_length ({max_seq_length}); raise it")
    return rows, dropped


def _padded(sequences: list[list[int]], masks: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(s) for s in sequences)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int32)
    mask = np.zeros((len(sequences), width), dtype=np.float32)
    for i, (seq, m) in enumerate(zip(sequences, masks)):
        ids[i, :len(seq)], mask[i, :len(m)] = seq, m
    return ids, mask


def kto_batch(rows: list[dict], pad_id: int, max_seq_length: int) -> dict:
    """The matched sequences and, for the KL estimate, each prompt paired with the previous row's
    completion (rotated by one within the batch, as TRL pairs them); both cut to max_seq_length."""
    completions = [r["completion_ids"] for r in rows]
    shifted = completions[-1:] + completions[:-1]
    out = {"label": np.array([r["label"] for r in rows], dtype=bool)}
    for prefix, answers in (("", completions), ("KL_", shifted)):
        seqs = [(r["prompt_ids"] + a)[:max_seq_length] for r, a in zip(rows, answers)]
        masks = [([0] * len(r["prompt_ids"]) + [1] * len(a))[:max_seq_length] for r, a in zip(rows, answers)]
        ids, mask = _padded(seqs, masks, pad_id)
        out[f"{prefix}inputs"], out[f"{prefix}targets"], out[f"{prefix}mask"] = ids[:, :-1], ids[:, 1:], mask[:, 1:]
    return out


def row_length(row: dict) -> int:
    """Tokens a row feeds the model (KTO: its matched sequence)."""
    return len(row["input_ids"]) if "input_ids" in row else len(row["prompt_ids"]) + len(row["completion_ids"])


# -- batch order -------------------------------------------------------------------------------
@dataclass
class Schedule:
    """Which rows each micro-batch holds, as a pure function of its global index, so a resumed run
    replays the data order of an uninterrupted one. SFT reshuffles each epoch (seeded); KTO keeps the
    file order, as TRL's sequential sampling does, so every batch holds both labels."""

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
        return self._epochs[epoch][start:start + self.batch_size]


def total_steps(config, schedule: Schedule) -> int:
    t = config.training
    if t.max_steps > 0:
        return t.max_steps
    return max(1, math.ceil(t.num_epochs * schedule.per_epoch / t.gradient_accumulation_steps))


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
    parsed, findings = check_assistant_message({"role": "assistant", "content": text}, registry or load_registry(), system)
    errors = sorted({f.code for f in findings if f.severity == "error"})
    return {"parsed": bool(parsed.calls), "valid": bool(parsed.calls) and not errors, "codes": errors,
            "tools": [c.name for c in parsed.calls]}
