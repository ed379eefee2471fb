"""One bot per data directory: a lock a running bot holds and `taskbot backup`/`restore` respect.

`DataDirLock` takes an exclusive, non-blocking `flock` on `<data_dir>/taskbot.lock` and
writes the holder's pid into the file. The kernel drops the lock when the holder's file is
closed or its process ends, however it ends, so a crashed bot leaves no stale lock behind;
the pid is only there for the message a second taker gets.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import IO

from core.errors import StorageError

LOCK_NAME = "taskbot.lock"


class DataDirBusy(StorageError):
    """Another process (a running bot) holds the data directory."""

    def __init__(self, data_dir: Path, holder: str) -> None:
        who = f"pid {holder}" if holder else "another process"
        super().__init__(f"{data_dir} is in use by a running taskbot ({who}); stop it first")
        self.data_dir = data_dir
        self.holder = holder


class DataDirLock:
    """Exclusive hold on a data directory for as long as the lock is acquired."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock now or raise DataDirBusy naming the holder; never waits."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise DataDirBusy(self.data_dir, holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Let go; the file stays (deleting it would race a process taking it meanwhile)."""
        handle, self._file = self._file, None
        if handle is not None:
            handle.close()  # closing the descriptor drops the flock

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
