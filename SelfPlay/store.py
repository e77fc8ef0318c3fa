"""Where self-play writes: valid records to one JSONL file, invalid ones to another, each record
appended and flushed as soon as it is judged, duplicates dropped, and everything already written
read back on --resume so that a killed run continues with no lost and no repeated example."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from pathlib import Path

from Tools.errors import UsageError
from Tools.process_lock import ProcessLock
from Tools.schema.records import JsonlAppender, iter_jsonl, messages
from Tools.schema.toolcalls import parse_message

from .labels import normalize_text

_IDS = re.compile(r"\b(?:session|ws)_\d{13}_[a-z0-9]{9}\b")


def content_hash(record: dict) -> str:
    """The record's content (conversations and label), ids included: equal hashes, equal examples."""
    body = {"conversations": record.get("conversations"), "label": record.get("label")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def exact_key(record: dict) -> str:
    """The conversation with session / workspace / call ids masked: the same example drawn twice."""
    conversation = []
    for message in messages(record):
        if isinstance(message, dict):
            message = {k: v for k, v in message.items() if k != "tool_call_id"}
            if isinstance(message.get("tool_calls"), list):
                message["tool_calls"] = [
                    {k: v for k, v in c.items() if k != "id"} if isinstance(c, dict) else c
                    for c in message["tool_calls"]
                ]
        conversation.append(message)
    text = _IDS.sub("<id>", json.dumps(conversation, sort_keys=True, ensure_ascii=False))
    return hashlib.sha1(text.encode()).hexdigest()


def near_key(record: dict) -> str:
    """The user's request and what the answer does, with case, punctuation, spacing and the context
    object's wording ignored: the same request answered the same way."""
    parts = []
    for message in messages(record):
        if not isinstance(message, dict):
            continue
        if message.get("role") == "user":
            parts.append(
                "u:" + normalize_text(message.get("content") if isinstance(message.get("content"), str) else "")
            )
        elif message.get("role") == "assistant":
            parsed = parse_message(message)
            calls = [[c.name, {k: v for k, v in (c.arguments or {}).items() if k != "context"}] for c in parsed.calls]
            parts.append("a:" + json.dumps(calls, sort_keys=True, ensure_ascii=False) + normalize_text(parsed.text))
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def _repair_tail(path: Path) -> int:
    """Cut a last line that a kill left half-written; returns the bytes removed."""
    size = path.stat().st_size
    if not size:
        return 0
    with open(path, "rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return 0
        chunk = min(size, 1 << 20)
        while True:
            handle.seek(size - chunk)
            data = handle.read(chunk)
            cut = data.rfind(b"\n")
            if cut != -1 or chunk == size:
                keep = size - chunk + cut + 1 if cut != -1 else 0
                break
            chunk = min(size, chunk * 4)
        handle.truncate(keep)
    return size - keep


class ExampleStore:
    """valid_path gets label-true (or unjudged) records, invalid_path label-false ones (dropped,
    but counted, when there is no invalid_path)."""

    def __init__(self, valid_path: str | Path, invalid_path: str | Path | None = None, *, resume: bool = False):
        self.paths = [Path(valid_path)] + ([Path(invalid_path)] if invalid_path else [])
        self.done: set[int] = set()  # example indices already written
        self.exact: set[str] = set()
        self.near: set[str] = set()
        self.counts = Counter()  # this run: valid, invalid, duplicate_exact, duplicate_near
        self.existing = Counter()  # found on resume: valid, invalid
        self.repaired: dict[str, int] = {}
        self._locks: list[ProcessLock] = []
        self._appenders: list[JsonlAppender] = []
        try:
            for path in self.paths:
                if path.is_dir():
                    raise UsageError(f"{path} is a directory; name a .jsonl file")
                self._lock(path)
                if path.exists() and path.stat().st_size and not resume:
                    raise UsageError(
                        f"{path} already exists; pass --resume to continue that run, or choose another --output"
                    )
                if resume and path.is_file():
                    self._load(path)
        except BaseException:
            self.close()
            raise
        self._appenders = [JsonlAppender(p) for p in self.paths]

    def _lock(self, path: Path) -> None:
        """One writer per file for the writer's life: a second run on the same output (--resume
        included) would read the same 'done' set and write every example twice."""
        lock = ProcessLock(path.with_name(f".{path.name}.lock"))
        if not lock.acquire():
            raise UsageError(
                f"{path} is being written by another running generator; wait for it to finish "
                "or choose another --output"
            )
        lock.write_note(f"pid {os.getpid()}\n")
        self._locks.append(lock)

    def _load(self, path: Path) -> None:
        removed = _repair_tail(path)
        if removed:
            self.repaired[str(path)] = removed
        for line in iter_jsonl(path):
            if line.error is not None or not isinstance(line.record, dict):
                reason = line.error.message if line.error else "not a JSON object"
                raise UsageError(
                    f"{path} line {line.number} is not a record ({reason}); --resume needs a clean file: "
                    "fix or remove that line"
                )
            record = line.record
            index = ((record.get("metadata") or {}).get("provenance") or {}).get("index")
            if isinstance(index, int):
                self.done.add(index)
            self._remember(record)
            self.existing["invalid" if record.get("label") is False else "valid"] += 1

    def resume_notes(self) -> list[str]:
        """What --resume found, for the summary."""
        return [
            f"{path}: removed a half-written last line ({size} bytes) left by a kill"
            for path, size in self.repaired.items()
        ]

    def _remember(self, record: dict) -> None:
        self.exact.add(exact_key(record))
        self.near.add(near_key(record))

    def add(self, record: dict) -> str:
        """Write one record unless it duplicates one already kept: 'valid', 'invalid',
        'duplicate_exact' or 'duplicate_near'."""
        exact = exact_key(record)
        if exact in self.exact:
            outcome = "duplicate_exact"
        elif near_key(record) in self.near:
            outcome = "duplicate_near"
        else:
            outcome = "invalid" if record.get("label") is False else "valid"
            if outcome == "valid" or len(self._appenders) > 1:  # no invalid file: negatives are not kept
                self._appenders[outcome == "invalid"].write(record)
                self._remember(record)
        self.counts[outcome] += 1
        return outcome

    def close(self) -> None:
        for appender in self._appenders:
            appender.close()
        for lock in self._locks:
            lock.release()
        self._locks = []

    def __enter__(self) -> "ExampleStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_labelled(*paths: str | Path) -> tuple[list[dict], list[dict]]:
    """(positives, negatives) from the files a store wrote."""
    positives, negatives = [], []
    for path in paths:
        if Path(path).is_file():
            for line in iter_jsonl(path):
                if line.error is None and isinstance(line.record, dict):
                    (negatives if line.record.get("label") is False else positives).append(line.record)
    return positives, negatives
