"""VaultSandbox: a throw-away copy of a template vault per episode, with a report of what changed.

    with VaultSandbox() as box:                  # copies Datasets/vault_template to a temp dir
        box.execute({"name": "vaultManager_createFolder", "arguments": {...}})
        box.changes().created                    # ['Archive/2026']
        box.reset()                              # back to the template, memory bindings cleared

Each sandbox owns its folder and its executor, so sandboxes in different threads never meet.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .executor import Outcome, VaultExecutor

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "Datasets" / "vault_template"


@dataclass
class Changes:
    created: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.created or self.modified or self.deleted)

    def to_dict(self) -> dict:
        return {"created": self.created, "modified": self.modified, "deleted": self.deleted}


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root (folders end in '/') -> a content digest ('' for folders)."""
    state = {}
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        for name in dirs:
            state[(base / name).relative_to(root).as_posix() + "/"] = ""
        for name in files:
            path = base / name
            rel = path.relative_to(root).as_posix()
            try:
                state[rel] = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
            except OSError:  # a dangling symlink has no content
                state[rel] = "?"
    return state


def diff(before: dict[str, str], after: dict[str, str]) -> Changes:
    return Changes(created=sorted(set(after) - set(before)), deleted=sorted(set(before) - set(after)),
                   modified=sorted(p for p in set(before) & set(after) if before[p] != after[p]))


class VaultSandbox:
    def __init__(self, template: str | Path | None = None, *, base_dir: str | Path | None = None, **executor_options):
        self.template = Path(template) if template else DEFAULT_TEMPLATE
        if not self.template.is_dir():
            raise FileNotFoundError(f"template vault not found: {self.template}")
        self._options = executor_options
        self._tmp = Path(tempfile.mkdtemp(prefix="vault-sandbox-", dir=base_dir))
        self.root = self._tmp / "vault"
        self.executor: VaultExecutor | None = None
        self._baseline: dict[str, str] = {}
        self.reset()

    def reset(self) -> None:
        """Back to a fresh copy of the template, with a fresh executor (no session bindings)."""
        if self.root.exists():
            shutil.rmtree(self.root)
        shutil.copytree(self.template, self.root, symlinks=True)
        self.executor = VaultExecutor(self.root, **self._options)
        self._baseline = snapshot(self.root)

    def add_workspace(self, workspace_id: str, name: str, root_folder: str = "/", description: str = "",
                      folders=(), session_id: str | None = None) -> None:
        """Make a chat session's setting real: the workspace under the id its system prompt hands
        out (unless the vault already has it), its folders, and the session itself, so calls made
        in it run as they would in the plugin. Folders that would leave the vault are skipped."""
        from .memory import load_workspace, new_session, new_workspace, save_workspace
        from .paths import VaultPathError

        for folder in (root_folder, *folders):
            try:
                self.path(folder).mkdir(parents=True, exist_ok=True)
            except (VaultPathError, OSError):
                continue
        ws = load_workspace(self.executor, workspace_id) or new_workspace(
            self.executor, workspace_id, name, root_folder or "/", description=description)
        if session_id and session_id not in ws.get("sessions", {}):
            new_session(self.executor, ws, session_id, "Chat session")
        save_workspace(self.executor, ws)

    def execute(self, call) -> dict:
        return self.executor.execute(call)

    def execute_detailed(self, call) -> Outcome:
        return self.executor.execute_detailed(call)

    def changes(self) -> Changes:
        """What differs from the template copy made at the last reset."""
        return diff(self._baseline, snapshot(self.root))

    def path(self, rel: str) -> Path:
        return self.executor.paths.resolve(rel)[1]

    def exists(self, rel: str) -> bool:
        return self.path(rel).exists()

    def read(self, rel: str) -> str:
        return self.path(rel).read_text(encoding="utf-8")

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "VaultSandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
