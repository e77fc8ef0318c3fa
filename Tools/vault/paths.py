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
# The plugin's own data: the memory store, chat history, caches and settings. No tool argument may
# name them: over MCP the plugin strips leading dots from every segment, and in chat Obsidian does
# not index dot-folders, so the plugin's content and file tools never reach them either.
DATA_FOLDERS = (".workspaces", ".conversations", ".nexus", ".obsidian")
# A store id becomes a file name: ASCII word characters, dots and dashes, no separator, no leading dot.
_STORE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}", re.ASCII)


class VaultPathError(ValueError):
    """A path argument that would leave the vault, or that no file system could hold."""


def normalize(raw: str) -> str:
    """The vault-relative form of a path argument ('' is the root), or VaultPathError."""
    if not isinstance(raw, str):
        raise VaultPathError(f"Path must be a string, got {type(raw).__name__}")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise VaultPathError("Path is not valid Unicode (a lone surrogate)") from None
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


def is_store_id(value) -> bool:
    """An id that may name a file of the memory store (no path, no control character, at most 128 characters)."""
    return isinstance(value, str) and _STORE_ID.fullmatch(value) is not None


def in_data_folder(rel: str) -> bool:
    # casefold and trailing dots/spaces: '.Workspaces' and '.workspaces.' are the same folder on some file systems
    return rel.split("/", 1)[0].casefold().rstrip(" .") in DATA_FOLDERS


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

    def real_rel(self, path: Path) -> str | None:
        """The vault-relative path path really leads to after every symlink, or None when that is outside."""
        real = os.path.realpath(path)  # follows every link on the way, also in a last component that does not exist
        if not self.inside(real):
            return None
        return real[len(self._prefix) :].replace(os.sep, "/") if real != str(self.root) else ""

    def resolve(self, raw: str, *, data: bool = False) -> tuple[str, Path]:
        """(normalised vault-relative path, absolute path); symlinks leading outside are refused, and so
        are the plugin's data folders unless data=True (the store's own code)."""
        rel = normalize(raw)
        target = self.root / rel if rel else self.root
        real = self.real_rel(target)
        if real is None:
            raise VaultPathError(f"Path is outside the vault (symbolic link): {raw}")
        if not data and (in_data_folder(rel) or in_data_folder(real)):
            raise VaultPathError(f"Path is in the plugin's data folder, which no tool can reach: {raw}")
        return rel, target

    def rel(self, absolute: Path) -> str:
        return absolute.relative_to(self.root).as_posix() if absolute != self.root else ""
