"""Small helpers the command-line tools share: input expansion and one-line errors."""

from __future__ import annotations

import argparse
import glob
import re
import sys
from pathlib import Path
from typing import NoReturn

# re-exported: commands import them from here
from Tools.errors import EXIT_FINDINGS as EXIT_FINDINGS, EXIT_OK as EXIT_OK, EXIT_USAGE, UsageError as UsageError


def die(message: str, code: int = EXIT_USAGE) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def expand_inputs(specs: list[str], pattern: str = "*.jsonl") -> list[Path]:
    """Files, globs and directories (searched recursively for pattern), in a stable order."""
    files: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(p for p in path.rglob(pattern) if p.is_file())
            if not found:
                raise UsageError(f"{spec}: directory holds no {pattern} file")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif any(ch in spec for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
            if not matches:
                raise UsageError(f"{spec}: no file matches")
            files.extend(matches)
        elif path.exists():
            raise UsageError(f"{spec}: not a regular file")
        else:
            raise UsageError(f"{spec}: no such file")
    seen, unique = set(), []
    for path in files:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    return unique


def file_stem(label: str, fallback: str = "model") -> str:
    """A model, prompt-set or run label as a file-name stem safe on every OS: its last path part (a Hub
    id's name, a file's or folder's name), each run of characters other than A-Z a-z 0-9 . _ - as one "-"."""
    last = re.split(r"[\\/]", label.strip().rstrip("/\\"))[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", last).strip("-.") or fallback


def printable(text: str) -> str:
    """text with any lone surrogate (from a hostile "\\ud800" escape) written as a \\udXXX escape, so
    it can be printed or saved as UTF-8; inside a JSON string that escape reads back as the same text."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2) instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        die(f"{message} (see {self.prog} --help)")


def format_table(rows: list[tuple]) -> list[str]:
    """Rows as aligned plain-text lines (first row is the header); numbers right-aligned."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            str(v).ljust(w) if i == 0 or isinstance(v, str) else str(v).rjust(w)
            for i, (v, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines
