"""Start and stop a real `sote-risk serve` (BentoML) subprocess for the HTTP tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
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


def service_env(home: Path, **extra: str) -> dict[str, str]:
    """The service's environment: the fixture home (its data and registry), nothing inherited of
    another home's settings."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SOTE_RISK_") and k != "MLFLOW_TRACKING_URI"}
    env = {**inherited, "SOTE_RISK_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true", "BENTOML_HOME": str(home / "bentoml"),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.update(extra)
    return env


def start_service(home: Path, timeout: float = 90.0, workers: int = 1, **extra_env: str) -> ServiceProcess:
    """`sote-risk serve` on 127.0.0.1 and a free port, in its own process group; waits for /readyz.
    One worker unless asked (tests read the server's state; the benchmark asks for 2)."""
    port = free_port()
    log = home / f"serve-{port}.log"
    command = [sys.executable, "-c", "from sote_risk.cli import main; main()",
               "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    handle = open(log, "wb")
    process = subprocess.Popen(command, cwd=REPO, env=service_env(home, **extra_env), stdout=handle,
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
