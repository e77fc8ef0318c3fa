"""An operating-system lock on a file, held by one process until it releases it or dies.

The kernel drops the lock of a process that ends in any way (SIGKILL and power loss included), so
there is no stale-lock takeover to get wrong: whoever holds the lock is alive, and two contenders
can never both win. The lock file may carry a short note from its holder (who, since when).
"""

from __future__ import annotations

import os
from pathlib import Path


def _try_lock(fd: int) -> bool:
    if os.name == "nt":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class ProcessLock:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fd: int | None = None
        self.previous_note = ""  # what the file held when we took it: a dead holder's note, or ""

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(fd):
                os.close(fd)
                return False
            try:  # the holder may have released (and removed) the file between our open and our lock
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                self.previous_note = self._read()
                return True
            os.close(fd)

    def _read(self) -> str:
        os.lseek(self._fd, 0, os.SEEK_SET)
        return os.read(self._fd, 1 << 16).decode("utf-8", "replace")

    def write_note(self, text: str) -> None:
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, text.encode("utf-8"))

    def release(self) -> None:
        """Remove the file while still holding the lock (a waiting contender then sees a new file), then unlock."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:  # Windows: an open file cannot be removed; the next holder finds an empty note
            os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "ProcessLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
