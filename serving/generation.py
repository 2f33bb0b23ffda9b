"""One /reload for every worker: a generation counter in the home folder.

With several BentoML workers (processes), a POST /reload reaches only the worker that took the
connection. That worker bumps the counter file (`serving.generation` in the home folder); every
worker runs a `Watcher` thread that looks at the file's stat twice a second (a few microseconds)
and reloads its histories when the number moved. Requests never wait for it: a worker keeps
answering from its old store until the new one is in (Backend.reload swaps it atomically).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from base.atomic import atomic_write_text

FILE_NAME = "serving.generation"
POLL_SECONDS = 0.5

log = logging.getLogger("sote_risk.serving")


def generation_file(root: Path) -> Path:
    return root / FILE_NAME


def read_generation(path: Path) -> int:
    """The counter (0 when the file does not exist yet or is unreadable mid-write)."""
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def bump_generation(path: Path) -> int:
    """Add one to the counter, atomically (lock, temporary file, rename); returns the new value."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two workers reloading at once must not both write n+1
        value = read_generation(path) + 1
        atomic_write_text(path, f"{value}\n")
        return value


class Watcher:
    """Calls on_change(new value) in a daemon thread whenever the counter differs from the one
    this worker has seen; `bump()` is for a reload the worker does itself."""

    def __init__(self, path: Path, on_change: Callable[[int], None], poll_seconds: float = POLL_SECONDS) -> None:
        self.path, self.on_change, self.poll_seconds = path, on_change, poll_seconds
        self._lock = threading.Lock()
        self._stat = self._stat_now()
        self.current = read_generation(path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sote-generation-watcher", daemon=True)

    def start(self) -> "Watcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def bump(self) -> int:
        """A reload this worker does itself: bump the file and mark the value seen in one step,
        so this worker's own thread does not reload a second time."""
        with self._lock:
            self.current = bump_generation(self.path)
            return self.current

    def _stat_now(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def check(self) -> bool:
        """One look at the file; True if it triggered a reload."""
        stat = self._stat_now()
        if stat == self._stat:
            return False
        self._stat = stat
        value = read_generation(self.path)
        with self._lock:
            if value <= self.current:
                return False
            self.current = value
        self.on_change(value)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check()
            except Exception:  # noqa: BLE001 (a failed reload must not kill the watcher; the old store keeps serving)
                log.exception("reload after a generation change failed; still serving the previous data")
