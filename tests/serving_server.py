"""Start and stop a real `sote-risk serve` (BentoML) subprocess for the HTTP tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServiceProcess:
    url: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        """Stop the server's whole process group (BentoML spawns an arbiter and workers)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def service_env(home: Path, repo: Path = REPO, **extra: str) -> dict[str, str]:
    """The service's environment: the fixture home (its data and registry), nothing inherited of
    another home's settings; the code of `repo` (this tree unless a benchmark compares another)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SOTE_RISK_") and k != "MLFLOW_TRACKING_URI"}
    env = {**inherited, "SOTE_RISK_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true", "BENTOML_HOME": str(home / "bentoml"),
           "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.update(extra)
    return env


def start_service(home: Path, timeout: float = 90.0, workers: int = 1, repo: Path = REPO, **extra_env: str) -> ServiceProcess:
    """`sote-risk serve` on 127.0.0.1 and a free port, in its own process group; waits for /readyz.
    One worker unless asked (tests read the server's state; the benchmark asks for 2). `repo`: the
    tree whose code runs (benchmarks compare another branch's checkout)."""
    port = free_port()
    log = home / f"serve-{port}.log"
    command = [sys.executable, "-c", "from sote_risk.cli import main; main()",
               "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    handle = open(log, "wb")
    process = subprocess.Popen(command, cwd=repo, env=service_env(home, repo, **extra_env), stdout=handle,
                               stderr=subprocess.STDOUT, start_new_session=True)
    service = ServiceProcess(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{service.url}/readyz", timeout=1.0).status_code == 200:
                return service
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    service.stop()
    raise RuntimeError(f"service not ready after {timeout} s:\n{log.read_text()[-3000:]}")


# --- which worker process is up (the service's log reaches its file in blocks: no clock) -------

WORKER_MODULE = b"_bentoml_impl.worker.service"


def worker_pids(server_pid: int) -> set[int]:
    """The BentoML worker processes under the server process."""
    from sote_risk.processes import descendants

    found = set()
    for pid in descendants(server_pid):
        try:
            if WORKER_MODULE in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
        except OSError:
            continue
    return found


def accepting(pid: int) -> bool:
    """Whether a worker serves the listening socket: the socket's fd (`--fd N` on its command
    line) is registered with its event loop's epoll (Linux: /proc/<pid>/fdinfo). uvicorn does that
    once the service is initialised, so from then on the worker takes connections. Read from
    outside, without a request (a prober's own connections would slow what it measures)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        fd = argv[argv.index(b"--fd") + 1].decode()
        for entry in Path(f"/proc/{pid}/fd").iterdir():
            if os.readlink(entry) == "anon_inode:[eventpoll]":
                info = Path(f"/proc/{pid}/fdinfo/{entry.name}").read_text()
                if any(line.split()[:2] == ["tfd:", fd] for line in info.splitlines()):
                    return True
    except (OSError, ValueError, IndexError):
        return False
    return False


def wait_accepting(pids: set[int], timeout: float) -> float | None:
    """Seconds until every one of `pids` serves the socket (None: not within `timeout`)."""
    started, waiting = time.monotonic(), set(pids)
    while waiting and time.monotonic() - started < timeout:
        waiting = {pid for pid in waiting if not accepting(pid)}
        if waiting:
            time.sleep(0.01)
    return None if waiting else time.monotonic() - started


@contextmanager
def served_copy(template: Path, home: Path, prepare: Callable[[Path], None] | None = None,
                roles: tuple[str, ...] = ("crm", "clinician", "admin")) -> Iterator[tuple[httpx.Client, dict[str, str], Path]]:
    """A copy of a fixture home at `home` (made ready by `prepare`), a key per role, and the service
    on it: (client, keys by role, home); the service stops on exit."""
    import shutil

    from serving.auth import create_key

    shutil.copytree(template, home)
    if prepare is not None:
        prepare(home)
    keys = {role: create_key(home / "keys.json", role)[0] for role in roles}
    service = start_service(home)
    client = httpx.Client(base_url=service.url, timeout=120)
    try:
        yield client, keys, home
    finally:
        client.close()
        service.stop()
