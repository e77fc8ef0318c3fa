"""Vault-relative paths: the plugin's normalisation, and the checks that keep every call inside the vault.

The plugin relies on Obsidian's vault API to stay inside the vault; over a plain folder that guard
is ours. A path argument is normalised as the plugin does (backslashes become '/', one leading '/'
means the vault root, '.' and empty segments drop out) and then refused if it could leave the root.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

MAX_SEGMENT_BYTES = 255  # the common file-system limit for one name
MAX_PATH_CHARS = 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


class VaultPathError(ValueError):
    """A path argument that would leave the vault, or that no file system could hold."""


def normalize(raw: str) -> str:
    """The vault-relative form of a path argument ('' is the root), or VaultPathError."""
    if not isinstance(raw, str):
        raise VaultPathError(f"Path must be a string, got {type(raw).__name__}")
    if "\x00" in raw:
        raise VaultPathError("Path contains a NUL byte")
    if any(ord(ch) < 32 for ch in raw):
        raise VaultPathError(f"Path contains a control character: {raw!r}")
    if len(raw) > MAX_PATH_CHARS:
        raise VaultPathError(f"Path is longer than {MAX_PATH_CHARS} characters")
    path = raw.replace("\\", "/")
    if _DRIVE.match(path) or path.startswith("//"):
        raise VaultPathError(f"Path is outside the vault (absolute path): {raw}")
    if path.startswith("/"):
        path = path[1:]  # the plugin's normalizePath: one leading '/' is the vault root
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise VaultPathError(f"Path is outside the vault ('..' segment): {raw}")
        if len(part.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise VaultPathError(f"Path has a name longer than {MAX_SEGMENT_BYTES} bytes")
        parts.append(part)
    return "/".join(parts)


def is_hidden(rel: str) -> bool:
    """Obsidian does not index dot-files or anything under a dot-folder."""
    return any(part.startswith(".") for part in rel.split("/") if part)


class VaultPaths:
    """Resolves vault-relative paths to real paths under one root, refusing anything outside it."""

    def __init__(self, root: str | Path):
        self.root = Path(os.path.realpath(root))
        self._prefix = str(self.root) + os.sep

    def inside(self, real: str) -> bool:
        return real == str(self.root) or real.startswith(self._prefix)

    def resolve(self, raw: str) -> tuple[str, Path]:
        """(normalised vault-relative path, absolute path); symlinks leading outside are refused."""
        rel = normalize(raw)
        target = self.root / rel if rel else self.root
        # realpath follows every symlink on the way, also in a final component that does not exist yet
        if not self.inside(os.path.realpath(target)):
            raise VaultPathError(f"Path is outside the vault (symbolic link): {raw}")
        return rel, target

    def rel(self, absolute: Path) -> str:
        return absolute.relative_to(self.root).as_posix() if absolute != self.root else ""
