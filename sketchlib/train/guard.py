"""What keeps a run folder sane: one trainer at a time, no stale temporary files, a clean stop on signals.

* :class:`RunLock`: an exclusive ``fcntl.flock`` on ``<out>/.lock`` (holding the trainer's pid).
  The kernel drops the lock when the process dies, even by ``kill -9``, so a stale lock file of a
  dead process never blocks a new run; a second live trainer on the same folder stops with
  :class:`RunLocked`.
* :func:`remove_stale_temp_files`: :func:`sketchlib.data.fileio.atomic_path` writes
  ``.<name>.<random>.tmp<suffix>`` beside ``<name>``; a kill during a save leaves one behind. Only
  those of the run's own files are removed, and only while the lock is held.
* :class:`StopSignals`: SIGINT / SIGTERM set a flag that the loop reads after each update (it then
  saves a checkpoint and returns); a second signal interrupts at once.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

LOCK = ".lock"


class RunLocked(RuntimeError):
    """Another live trainer holds the run folder."""


class RunLock:
    """``with RunLock(out_dir):`` holds ``out_dir/.lock`` exclusively (no-op where fcntl is missing)."""

    def __init__(self, out_dir):
        self.path = Path(out_dir) / LOCK
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLocked(f"{self.path.parent} is in use by another trainer (pid {holder}); wait for it to "
                            f"finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:  # the file stays (unlinking it would race with a trainer about to lock it)
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def remove_stale_temp_files(out_dir, names) -> list[Path]:
    """Delete ``.<name>.*.tmp<suffix>`` (atomic_path's temporary names) of each of ``names`` in ``out_dir``."""
    removed = []
    for name in names:
        for p in Path(out_dir).glob(f".{name}.*.tmp{Path(name).suffix}"):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


class StopSignals:
    """``with StopSignals() as stop:`` ... ``stop.signum`` is SIGINT / SIGTERM once one arrived, else None.

    Installed only in the main thread (elsewhere Python cannot handle signals); the previous
    handlers come back on exit. A second signal raises KeyboardInterrupt at once.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._old: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()

    @property
    def name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum is not None else None
