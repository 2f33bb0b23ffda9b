"""Start and stop a real `sote-risk serve` (BentoML) subprocess for the HTTP tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

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


def accepting(pid: int, port: int) -> bool:
    """Whether a worker holds an established connection on the service's port: it has accepted one,
    so it is past its start-up (uvicorn serves the socket only once the service is initialised)."""
    import psutil

    try:
        return any(c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
                   for c in psutil.Process(pid).net_connections(kind="tcp"))
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def probe(url: str, stop: threading.Event, every: float = 0.01) -> None:
    """GET /livez on a fresh connection every `every` s until `stop`, so a worker that starts
    accepting gets a connection soon (the kernel hands each to one of the accepting workers)."""
    while not stop.is_set():
        try:
            httpx.get(f"{url}/livez", headers={"Connection": "close"}, timeout=5)
        except httpx.HTTPError:
            pass
        stop.wait(every)


def wait_accepting(service: ServiceProcess, pids: set[int], timeout: float) -> float | None:
    """Probe the service until every one of `pids` has accepted a connection; the seconds it took
    (None: not within `timeout`)."""
    port = int(service.url.rsplit(":", 1)[1])
    stop = threading.Event()
    prober = threading.Thread(target=probe, args=(service.url, stop), daemon=True)
    prober.start()
    started, waiting = time.monotonic(), set(pids)
    try:
        while waiting and time.monotonic() - started < timeout:
            waiting = {pid for pid in waiting if not accepting(pid, port)}
            time.sleep(0.01)
    finally:
        stop.set()
        prober.join(timeout=10)
    return None if waiting else time.monotonic() - started
