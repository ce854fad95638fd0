"""An exclusive, per-session lock so two ``nimble up`` runs never drive one session.

``fcntl.flock`` on ``NIMBLE_HOME/locks/<session>.lock``: the kernel releases it when the
holder exits — even on SIGKILL — so a crashed run never leaves a stale lock behind. The
holder writes its pid and command into the file so the refusal can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from nimble_oke.errors import StateError


class SessionLock:
    def __init__(self, home: Path, session: str, *, command: str = "nimble") -> None:
        self.path = home / "locks" / f"{session}.lock"
        self.session = session
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 256, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StateError(
                f"session '{self.session}' is in use by {holder}; wait for it to finish "
                "or stop it (one command at a time per session)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            f"pid {os.getpid()} ({self.command}, since {time.strftime('%H:%M:%S')})".encode(),
            0,
        )
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SessionLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
