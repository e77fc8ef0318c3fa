"""The daemon's folders, its lock and its job files. Imports nothing heavy (``status`` stays fast).

    ROOT/inbox/                      drop *.jsonl files here (taken once their size stops changing)
    ROOT/queue/high|normal|low/      waiting jobs, served high first, oldest first within a priority
    ROOT/queue/running/              the job being trained (a killed daemon's job is requeued at start)
    ROOT/queue/done/                 trained jobs, each with NAME.job.json (run, adapter, steps)
    ROOT/queue/failed/               refused or failed jobs, each with NAME.reason.txt
    ROOT/queue/daemon.lock           {pid, host, started} of the daemon serving this queue
    ROOT/queue/state.json            the base model and the latest adapter the next job continues from
    ROOT/logs/daemon_YYYYMMDD.log    one line per event
    ROOT/daemon_runs/JOB_ID/...      each job's training run (checkpoints, logs, final_model/)

Every move is a rename inside ROOT, so a job file is always in exactly one folder; its sidecar
NAME.job.json moves right after it and only carries bookkeeping (a lost sidecar restarts the job
from scratch, it never loses the job).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from Tools.errors import UsageError
from Tools.process_lock import ProcessLock
from Tools.schema.records import write_json_atomic

PRIORITIES = ("high", "normal", "low")
META_SUFFIX = ".job.json"
REASON_SUFFIX = ".reason.txt"


def now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def meta_path(job: Path) -> Path:
    return job.with_name(job.name + META_SUFFIX)


def read_meta(job: Path) -> dict:
    try:
        value = json.loads(meta_path(job).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_meta(job: Path, meta: dict) -> None:
    write_json_atomic(meta_path(job), meta)


def pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if handle:
            ctypes.windll.kernel32.CloseHandle(handle)
        return bool(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process its parent has not reaped yet is a zombie: dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass
class Job:
    path: Path
    priority: str  # high | normal | low, "inbox" for files not taken yet

    @property
    def name(self) -> str:
        return self.path.name


class QueueLayout:
    def __init__(self, root: str | Path | None = None):
        from Trainers.shared.config import REPO_ROOT

        self.root = Path(root) if root else REPO_ROOT
        self.inbox = self.root / "inbox"
        self.queue = self.root / "queue"
        self.running = self.queue / "running"
        self.done = self.queue / "done"
        self.failed = self.queue / "failed"
        self.logs = self.root / "logs"
        self.runs = self.root / "daemon_runs"
        self.lock_file = self.queue / "daemon.lock"
        self.state_file = self.queue / "state.json"

    def priority_dir(self, priority: str) -> Path:
        if priority not in PRIORITIES:
            raise UsageError(f"unknown priority {priority!r}; expected one of {', '.join(PRIORITIES)}")
        return self.queue / priority

    def ensure(self) -> None:
        for folder in (
            self.inbox,
            self.running,
            self.done,
            self.failed,
            self.logs,
            *(self.priority_dir(p) for p in PRIORITIES),
        ):
            folder.mkdir(parents=True, exist_ok=True)

    def _all_dirs(self) -> list[Path]:
        return [self.inbox, *(self.queue / p for p in PRIORITIES), self.running, self.done, self.failed]

    def unique_name(self, name: str, folders: list[Path] | None = None) -> str:
        """name, or name_2, name_3, ... so that no two jobs in folders (default: the whole queue) share a name."""
        stem, suffix = (name[:-6], ".jsonl") if name.endswith(".jsonl") else (Path(name).stem, Path(name).suffix)
        candidate, n = name, 1
        while any((d / candidate).exists() or meta_path(d / candidate).exists() for d in folders or self._all_dirs()):
            n += 1
            candidate = f"{stem}_{n}{suffix}"
        return candidate

    def enqueue(self, source: str | Path, priority: str = "normal") -> Path:
        """Copy a file into queue/PRIORITY/ (temp file + rename: the daemon never sees half a file)."""
        source = Path(source)
        if not source.is_file():
            raise UsageError(f"{source}: no such file")
        if not source.name.endswith(".jsonl"):
            raise UsageError(f"{source}: the queue takes .jsonl files only")
        folder = self.priority_dir(priority)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / self.unique_name(source.name)
        tmp = folder / f".{target.name}.{os.getpid()}.tmp"
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        return target

    def move(self, job: Path, folder: Path, name: str | None = None) -> Path:
        """Move a job file, then its sidecar, into folder, never over another job's file."""
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / self.unique_name(name or job.name, [folder])
        sidecar = meta_path(job)
        os.replace(job, target)
        if sidecar.exists():
            os.replace(sidecar, meta_path(target))
        return target

    # -- the inbox and the queue ----------------------------------------------------------------
    def _files(self, folder: Path) -> list[Path]:
        if not folder.is_dir():
            return []
        return [
            p
            for p in folder.iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and not p.name.endswith(META_SUFFIX)
            and not p.name.endswith(REASON_SUFFIX)
        ]

    def intake(self, settle: float = 2.0) -> tuple[list[Path], list[Path], int]:
        """Move inbox files whose last change is settle seconds old into queue/normal/.
        Returns (taken, refused, still settling); refused files (not .jsonl) go to failed/."""
        taken, refused, settling = [], [], 0
        for path in sorted(self._files(self.inbox), key=lambda p: (p.stat().st_mtime, p.name)):
            if time.time() - path.stat().st_mtime < settle:
                settling += 1
                continue
            if not path.name.endswith(".jsonl"):
                reason = "not a .jsonl file: the daemon trains on JSONL datasets only"
                write_meta(path, {"finished_at": now(), "reason": reason})
                target = self.move(path, self.failed)
                self.write_reason(target, reason)
                refused.append(target)
                continue
            others = [d for d in self._all_dirs() if d != self.inbox]  # unique queue-wide
            taken.append(self.move(path, self.priority_dir("normal"), self.unique_name(path.name, others)))
        return taken, refused, settling

    def queued(self) -> list[Job]:
        """Waiting jobs in the order they will be served: priority, then interrupted jobs first
        (they resume from a checkpoint), then oldest first."""
        jobs = []
        for priority in PRIORITIES:
            files = [p for p in self._files(self.queue / priority) if p.name.endswith(".jsonl")]
            files.sort(key=lambda p: (0 if read_meta(p).get("attempts") else 1, p.stat().st_mtime, p.name))
            jobs += [Job(p, priority) for p in files]
        return jobs

    def write_reason(self, job: Path, reason: str) -> None:
        job.with_name(job.name + REASON_SUFFIX).write_text(reason.rstrip() + "\n", encoding="utf-8")

    def recover(self) -> list[Path]:
        """Jobs left in running/ by a daemon that was killed go back to their queue, ahead of the rest."""
        recovered = []
        for path in self._files(self.running):
            meta = read_meta(path)
            priority = meta.get("priority") if meta.get("priority") in PRIORITIES else "normal"
            meta.update(interrupted_at=meta.get("interrupted_at") or now(), attempts=max(1, meta.get("attempts", 0)))
            write_meta(path, meta)
            recovered.append(self.move(path, self.priority_dir(priority)))
        return recovered

    # -- state --------------------------------------------------------------------------------
    def read_state(self) -> dict:
        try:
            value = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def write_state(self, state: dict) -> None:
        write_json_atomic(self.state_file, state)


class QueueLock:
    """One daemon per queue: an OS lock on queue/daemon.lock, held for the daemon's life (the kernel
    drops it when the daemon dies, however it dies). The file notes the holder's pid, for status;
    a note found when taking the lock was left by a daemon that was killed: ``stale``."""

    def __init__(self, layout: QueueLayout):
        self.path = layout.lock_file
        self.root = layout.root
        self.stale: dict | None = None
        self._lock = ProcessLock(self.path)

    def owner(self) -> dict | None:
        try:
            value = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def acquire(self) -> "QueueLock":
        if not self._lock.acquire():
            owner = self.owner() or {}
            pid = owner.get("pid", "?")
            raise UsageError(
                f"another daemon (pid {pid}, since {owner.get('started', '?')}) serves the queue "
                f"in {self.root}; stop it first (kill {pid}) or use another --root"
            )
        if self._lock.previous_note.strip():
            try:
                previous = json.loads(self._lock.previous_note)
            except ValueError:
                previous = None
            self.stale = previous if isinstance(previous, dict) else {}
        self._lock.write_note(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": now()}))
        return self

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> "QueueLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# -- status -----------------------------------------------------------------------------------
def status(layout: QueueLayout) -> dict:
    """Queued, running and finished jobs, the daemon's pid and the adapter the next job continues from."""
    owner = QueueLock(layout).owner()
    alive = bool(owner) and owner.get("host") == socket.gethostname() and pid_alive(owner.get("pid"))
    daemon = {
        "state": "running" if alive else "stale lock" if owner else "not running",
        "pid": owner.get("pid") if owner else None,
        "since": owner.get("started") if owner else None,
    }

    def entry(path: Path, **extra) -> dict:
        meta = read_meta(path)
        return {
            "file": path.name,
            "size": path.stat().st_size,
            "modified": datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="seconds"),
            **extra,
            **{
                k: meta[k]
                for k in (
                    "attempts",
                    "started_at",
                    "finished_at",
                    "global_step",
                    "final_model",
                    "run_dir",
                    "interrupted_at",
                )
                if k in meta
            },
        }

    queued = [entry(p, priority="inbox") for p in sorted(layout._files(layout.inbox))]
    queued += [entry(job.path, priority=job.priority) for job in layout.queued()]
    running = [
        entry(p, state="training" if alive else "interrupted (requeued at next start)")
        for p in layout._files(layout.running)
    ]
    finished = []
    for folder, result in ((layout.done, "done"), (layout.failed, "failed")):
        for path in layout._files(folder):
            item = entry(path, result=result)
            reason = path.with_name(path.name + REASON_SUFFIX)
            if reason.exists():
                item["reason"] = reason.read_text(encoding="utf-8").strip().splitlines()[0]
            finished.append(item)
    finished.sort(key=lambda item: item.get("finished_at") or item["modified"])
    state = layout.read_state()
    return {
        "root": str(layout.root),
        "daemon": daemon,
        "base_model": state.get("base_model"),
        "latest_adapter": state.get("latest_adapter"),
        "queued": queued,
        "running": running,
        "finished": finished,
    }
