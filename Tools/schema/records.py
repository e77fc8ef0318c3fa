"""Dataset records: a streaming JSONL reader that never aborts a file, and crash-safe writers.

A record is ``{"conversations": [{role, content, tool_calls?, tool_call_id?}, ...], "label"?: bool,
"behavior"?: str, "pattern"?: str, "metadata"?: {...}}`` with roles system / user / assistant / tool.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from .fastjson import NotRepresentable, TooDeep, loads
from .issues import Finding

ROLES = ("system", "user", "assistant", "tool")
MAX_LINE_BYTES = 16 * 1024 * 1024  # longer lines are reported and skipped, so memory stays bounded
_BOM = b"\xef\xbb\xbf"


class Line(NamedTuple):
    """One non-blank line of a JSONL file: the record, or the finding that stopped it from loading."""

    number: int
    record: object
    error: Finding | None


def iter_jsonl(path: str | Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """Yield every non-blank line with its 1-based number; bad lines become findings, reading goes on.

    Tolerates CRLF endings, a UTF-8 byte-order mark and blank lines. Raises OSError only when the
    file itself cannot be opened.
    """
    with open(path, "rb") as handle:
        number = 0
        while True:
            raw = handle.readline(max_line_bytes + 1)
            if not raw:
                return
            number += 1
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                size = len(raw)
                while raw and not raw.endswith(b"\n"):  # skip the rest of the line in bounded chunks
                    raw = handle.readline(max_line_bytes)
                    size += len(raw)
                yield Line(
                    number,
                    None,
                    Finding("E_LINE_TOO_LONG", f"line is {size:,} bytes, over the {max_line_bytes:,}-byte limit"),
                )
                continue
            if number == 1 and raw.startswith(_BOM):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                yield Line(number, loads(raw), None)
            except UnicodeDecodeError as exc:
                yield Line(number, None, Finding("E_ENCODING", f"invalid UTF-8 at byte {exc.start}"))
            except NotRepresentable as exc:
                yield Line(number, None, Finding("E_ENCODING", str(exc)))
            except TooDeep as exc:
                yield Line(number, None, Finding("E_NESTING_TOO_DEEP", str(exc)))
            except ValueError as exc:
                yield Line(number, None, Finding("E_INVALID_JSON", f"invalid JSON: {exc}"))


def read_records(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Only the lines that hold a JSON object, with their line numbers."""
    for line in iter_jsonl(path):
        if line.error is None and isinstance(line.record, dict):
            yield line.number, line.record


def dumps_record(record: dict) -> str:
    """One record as a JSON line; ValueError for one nested too deeply to encode (orjson reads 1,024
    levels, json.dumps stops near 1,000), so writers report it instead of crashing."""
    try:
        return json.dumps(record, ensure_ascii=False)
    except RecursionError:
        raise ValueError("a record is nested too deeply to be written as JSON (about 1,000 levels)") from None


def _temp_beside(path: Path) -> tuple[int, str]:
    """A temporary file next to path, with path's permissions (or rw-r--r--) rather than mkstemp's rw-------."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
    except OSError:
        pass
    return fd, tmp


def write_jsonl_atomic(path: str | Path, records: Iterable[dict]) -> int:
    """Write all records to a temporary file beside path, then rename it over path: all or nothing."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            for record in records:
                handle.write(dumps_record(record) + "\n")
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


def write_jsonl_files_atomic(files: dict[str | Path, list[dict] | None]) -> dict[Path, int]:
    """Several JSONL files that belong together (an output and its side file): every one is written
    to a temporary file first, then all are renamed into place one after the other; None removes
    that path, so no file from an earlier run stays beside the new ones. Returns records per file."""
    temps, counts = {}, {}
    try:
        for path, records in files.items():
            if records is not None:
                path = Path(path)
                fd, temps[path] = _temp_beside(path)
                with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                    handle.writelines(dumps_record(r) + "\n" for r in records)
                    handle.flush()
                    os.fsync(handle.fileno())
                counts[path] = len(records)
    except BaseException:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
        raise
    for path, records in files.items():
        if records is None:
            Path(path).unlink(missing_ok=True)
    for path, tmp in temps.items():
        os.replace(tmp, path)
    return counts


def write_text_atomic(path: str | Path, text: str) -> None:
    """A whole text file, written to a temporary file and renamed into place."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, value) -> None:
    """A whole JSON document, written to a temporary file and renamed into place."""
    write_text_atomic(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


class JsonlAppender:
    """Append records one by one, flushed as they go, so a crash loses at most the current record."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a", encoding="utf-8", newline="\n")

    def write(self, record: dict) -> None:
        self._handle.write(dumps_record(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def messages(record: dict) -> list:
    conversations = record.get("conversations") if isinstance(record, dict) else None
    return conversations if isinstance(conversations, list) else []


def first_message(record: dict, role: str) -> dict | None:
    return next((m for m in messages(record) if isinstance(m, dict) and m.get("role") == role), None)


def label_of(record: dict) -> bool | None:
    """True, False, or None when the record has no boolean label."""
    label = record.get("label") if isinstance(record, dict) else None
    return label if isinstance(label, bool) else None
