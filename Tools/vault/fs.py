"""File helpers the agent modules share: whole-file writes by temp file + rename, and file facts."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


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
    return {"name": rel.rsplit("/", 1)[-1], "path": rel, "size": st.st_size,
            "created": int(getattr(st, "st_birthtime", st.st_ctime) * 1000), "modified": int(st.st_mtime * 1000)}


def remove(path: Path) -> None:
    """Delete a file, a symlink or a whole folder (never following a symlink out of the vault)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
