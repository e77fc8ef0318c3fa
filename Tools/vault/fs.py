"""File helpers the agent modules share: whole-file writes by temp file + rename, file facts, and the
one walk every listing and search uses."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from .paths import is_hidden


def read_text(path: Path) -> str:
    # newline="" keeps \r\n as written, so an edit changes only what it was asked to change
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        return handle.read()


def write_text(path: Path, text: str) -> None:
    """Replace path's content all at once, so a crash never leaves half a note."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:50]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_info(rel: str, st: os.stat_result) -> dict:
    return {
        "name": rel.rsplit("/", 1)[-1],
        "path": rel,
        "size": st.st_size,
        "created": int(getattr(st, "st_birthtime", st.st_ctime) * 1000),
        "modified": int(st.st_mtime * 1000),
    }


def remove(path: Path) -> None:
    """Delete a file, a symlink or a whole folder (never following a symlink out of the vault)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def walk(ex, start: str = "", max_depth: int | None = None):
    """(rel, is_dir, stat) for every visible entry under start (vault-relative), depth 1 = children.

    A symlink counts as what it points to when that is a visible note or folder inside the vault;
    one that leads outside, into a dot-folder or nowhere is skipped, and a linked folder is listed
    but not entered (no loops, no duplicates). Only folders and regular files are yielded: a FIFO
    or a device would block or never end a read."""
    stack = [(ex.root / start if start else ex.root, start, 1)]
    while stack:
        folder, prefix, level = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = f"{prefix}/{entry.name}" if prefix else entry.name
            try:
                link = entry.is_symlink()
                if link:
                    real = ex.paths.real_rel(entry.path)
                    if real is None or is_hidden(real):
                        continue
                st = entry.stat(follow_symlinks=link)  # a dangling link raises here
            except OSError:
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if not is_dir and not stat.S_ISREG(st.st_mode):
                continue
            yield rel, is_dir, st
            if is_dir and not link and (max_depth is None or level < max_depth):
                stack.append((entry.path, rel, level + 1))
