"""VaultSandbox: a throw-away copy of a template vault per episode, with a report of what changed.

    with VaultSandbox() as box:                  # copies Datasets/vault_template to a temp dir
        box.execute({"name": "vaultManager_createFolder", "arguments": {...}})
        box.changes().created                    # ['Archive/2026']
        box.reset()                              # back to the template, memory bindings cleared

Each sandbox owns its folder and its executor, so sandboxes in different threads never meet.
The copies of one process live in one run folder (`vault-run-*` in the temp dir) whose lock file
the process holds for its life; a process killed with SIGKILL cannot remove its copies, so the
next process that makes a sandbox there removes every run folder whose lock is free.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import stat
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from Tools.process_lock import ProcessLock

from .executor import Outcome, VaultExecutor

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "Datasets" / "vault_template"
RUN_PREFIX = "vault-run-"
_STAGING = ".vault-staging-"  # a run folder before its lock is held (a sweeper leaves young ones alone)
_LOCK_NAME = "owner.lock"
_runs: dict[str, tuple[Path, ProcessLock]] = {}  # base folder -> (this process's run folder, its held lock)
_owner = os.getpid()  # a forked child inherits _runs but must not remove its parent's folders
_runs_lock = threading.Lock()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def sweep_stale_runs(base: str | Path) -> list[Path]:
    """Remove the run folders under base whose owner process is gone (its lock died with it)."""
    removed = []
    stale_staging = [p for p in Path(base).glob(_STAGING + "*") if time.time() - _mtime(p) > 60]
    for folder in [*Path(base).glob(RUN_PREFIX + "*"), *stale_staging]:
        if folder.name.startswith(RUN_PREFIX) and not (folder / _LOCK_NAME).is_file():
            continue  # not a run folder (a stale staging one may have died before making its lock)
        lock = ProcessLock(folder / _LOCK_NAME)
        try:
            taken = lock.acquire()
        except OSError:
            continue
        if taken:
            shutil.rmtree(folder, ignore_errors=True)
            lock.release()
            removed.append(folder)
    return removed


def _run_folder(base_dir) -> Path:
    """This process's run folder under base_dir (the temp dir by default), made on first use."""
    base = os.path.realpath(base_dir or tempfile.gettempdir())
    with _runs_lock:
        run = _runs.get(base)
        if run is not None and run[0].is_dir():
            return run[0]
        sweep_stale_runs(base)
        # locked before it gets its final name, so a sweeper never sees it unlocked
        staging = Path(tempfile.mkdtemp(prefix=_STAGING, dir=base))
        lock = ProcessLock(staging / _LOCK_NAME)
        if not lock.acquire():  # a sweeper takes only staging folders over a minute old
            raise OSError(f"cannot lock the new sandbox folder {staging}")
        folder = staging.with_name(RUN_PREFIX + staging.name[len(_STAGING) :])
        os.rename(staging, folder)
        lock.path = folder / _LOCK_NAME  # the same file, under the folder's final name
        _runs[base] = (folder, lock)
        return folder


@atexit.register
def _remove_runs() -> None:
    for folder, lock in _runs.values() if os.getpid() == _owner else ():
        shutil.rmtree(folder, ignore_errors=True)
        lock.release()


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
    """Every path under root (folders end in '/') -> a content digest ('' for folders). Links are
    recorded by target and never followed, special files by kind: a link to /dev/zero or a FIFO
    must not hang a change report."""
    state = {}
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        for name in dirs:  # os.walk lists links to folders here without entering them
            path, rel = base / name, (base / name).relative_to(root).as_posix()
            if path.is_symlink():
                state[rel] = "link:" + os.readlink(path)
            else:
                state[rel + "/"] = ""
        for name in files:
            path = base / name
            rel = path.relative_to(root).as_posix()
            try:
                mode = path.lstat().st_mode
                state[rel] = (
                    "link:" + os.readlink(path)
                    if stat.S_ISLNK(mode)
                    else hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
                    if stat.S_ISREG(mode)
                    else "special"
                )
            except OSError:  # removed while walking
                state[rel] = "?"
    return state


def _special_files(folder: str, names: list[str]) -> list[str]:
    """copytree's ignore: FIFOs, sockets and devices (copying a FIFO would block for ever)."""

    def special(name):
        try:
            mode = os.lstat(os.path.join(folder, name)).st_mode
        except OSError:
            return True
        return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode))

    return [name for name in names if special(name)]


def diff(before: dict[str, str], after: dict[str, str]) -> Changes:
    return Changes(
        created=sorted(set(after) - set(before)),
        deleted=sorted(set(before) - set(after)),
        modified=sorted(p for p in set(before) & set(after) if before[p] != after[p]),
    )


class VaultSandbox:
    def __init__(self, template: str | Path | None = None, *, base_dir: str | Path | None = None, **executor_options):
        self.template = Path(template) if template else DEFAULT_TEMPLATE
        if not self.template.is_dir():
            raise FileNotFoundError(f"template vault not found: {self.template}")
        self._options = executor_options
        self._tmp = Path(tempfile.mkdtemp(prefix="sandbox-", dir=_run_folder(base_dir)))
        self.root = self._tmp / "vault"
        self.executor: VaultExecutor | None = None
        self._baseline: dict[str, str] = {}
        self.reset()

    def reset(self) -> None:
        """Back to a fresh copy of the template, with a fresh executor (no session bindings)."""
        if self.root.exists():
            shutil.rmtree(self.root)
        shutil.copytree(self.template, self.root, symlinks=True, ignore=_special_files)
        self.executor = VaultExecutor(self.root, **self._options)
        self._baseline = snapshot(self.root)

    def add_workspace(
        self,
        workspace_id: str,
        name: str,
        root_folder: str = "/",
        description: str = "",
        folders=(),
        session_id: str | None = None,
    ) -> None:
        """Make a chat session's setting real: the workspace under the id its system prompt hands
        out (unless the vault already has it), its folders, and the session itself, so calls made
        in it run as they would in the plugin. Folders that would leave the vault are skipped."""
        from .memory import load_workspace, new_session, new_workspace, save_workspace
        from .paths import VaultPathError, is_store_id

        if not is_store_id(workspace_id):  # the store could not hold it; calls in it fail as "not found"
            return
        for folder in (root_folder, *folders):
            try:
                self.executor.paths.resolve(folder)[1].mkdir(parents=True, exist_ok=True)
            except (VaultPathError, OSError):
                continue
        ws = load_workspace(self.executor, workspace_id) or new_workspace(
            self.executor, workspace_id, name, root_folder or "/", description=description
        )
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
        """For inspection: the plugin's data folders (.workspaces, ...) are reachable here."""
        return self.executor.paths.resolve(rel, data=True)[1]

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
