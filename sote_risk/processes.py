"""Child processes that the demo and the benchmarks start: each `sote-risk` subcommand in its own
process group on a loopback port, waited for by polling a URL, stopped as a group.

Why process groups: `sote-risk serve` execs BentoML, which starts an arbiter and workers; killing
the first pid alone would leave the workers holding the port. Stopping sends SIGTERM to the
group, then SIGKILL to whatever is still there after a grace period.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from base.errors import SoteRiskError


def free_port() -> int:
    """A port free on 127.0.0.1 now (another process could take it before we bind; fine on loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    url: str
    log: Path
    _handle: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tree(self) -> list[int]:
        """This process and its live descendants (BentoML's worker runs in a group of its own)."""
        return [self.process.pid, *descendants(self.process.pid)]

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the whole group (the server stops its workers), SIGKILL whatever of the group
        or the process tree remains after `grace` seconds; idempotent."""
        tree = self.tree()
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (group_alive(self.process.pid) or _running(tree[1:])):
            self.process.poll()  # reap the leader so it does not linger as a zombie
            time.sleep(0.1)
        for pid in _running(tree[1:]):
            _kill(pid, signal.SIGKILL)
        if group_alive(self.process.pid):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _stat(pid: int) -> list[str] | None:
    """state, ppid, pgrp, ... of a process from /proc (None when gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _running(pids: list[int]) -> list[int]:
    return [pid for pid in pids if (fields := _stat(pid)) is not None and fields[0] != "Z"]


def descendants(pid: int) -> list[int]:
    """Live descendants of pid, found through /proc parent links."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies of our own children excepted)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _any_running(pgid)


def _any_running(pgid: int) -> bool:
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            return True
    return False


def start_cli(name: str, args: list[str], *, url: str, log: Path, env: dict[str, str] | None = None) -> Child:
    """`sote-risk ARGS` in a new session (its own process group), output to `log`; the child gets
    the environment as the user set it and sets up its own logging."""
    from sote_risk.logs import user_environment

    log.parent.mkdir(parents=True, exist_ok=True)
    handle = open(log, "ab")
    command = [sys.executable, "-c", "from sote_risk.cli import main; main()", *args]
    process = subprocess.Popen(command, env={**user_environment(), **(env or {})}, stdout=handle, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    return Child(name, process, url, log, handle)


def wait_ready(child: Child, path: str, *, timeout: float) -> float:
    """Poll GET url+path until 200; seconds waited. The child dying or the timeout is an error
    that quotes the end of its log (the reason is usually there)."""
    import httpx

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not child.alive():
            raise SoteRiskError(f"{child.name} exited with {child.process.returncode}: {_tail(child.log)}")
        try:
            if httpx.get(child.url + path, timeout=2.0).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SoteRiskError(f"{child.name} not ready after {timeout:.0f} s: {_tail(child.log)}")


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"(no log at {log})"
    return " | ".join(line.strip() for line in text[-lines:]) or f"(empty log {log})"


def vm_rss_kib(pid: int) -> int:
    """Resident memory (VmRSS, KiB) of pid and all its descendants, summed (for soak tests): the
    service is an arbiter plus workers, and the workers hold the models and histories."""
    total = 0
    for member in (pid, *descendants(pid)):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total
