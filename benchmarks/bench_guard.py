"""What a probe costs the service (issue 16, items 1 and 4): /metrics size and worker memory
after thousands of random unauthorised paths, and a huge chunked body.

    .venv/bin/python benchmarks/bench_guard.py                 # fixture home (toy models), 2 workers
    .venv/bin/python benchmarks/bench_guard.py --home PATH     # a real home: data + champions

Starts `sote-risk serve` on 127.0.0.1 (its own process group, stopped at the end), then:
1. /metrics (read with an admin key) and each worker's VmRSS, after a warm-up that sends every
   kind of probe request a few times (so labels that may exist already do);
2. --paths random unauthorised requests (no key): GET /<random>, GET /ui/customers/<random id>,
   POST /score/<random>; then /metrics and worker RSS again, with the change in per cent;
3. a --chunked-mb chunked JSON body to POST /score with a crm key, sent whole whatever the
   server says (a client that reads its answer only at the end), then the status it got, how
   long it took, worker RSS again and each worker's peak RSS (VmHWM) before and after.
Prints one JSON object. RSS is read from /proc after a one-second pause, and again --settle
seconds later (default: past the traffic timeout): BentoML's TimeoutMiddleware schedules a timer
per request that it never cancels (bentoml/_internal/server/http/traffic.py, `loop.call_later`),
and the timer holds the request's context, its tracing span included, until it fires; so right
after a burst a worker holds a few KB per request of that burst, whatever the paths were.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import socket
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sote_risk.processes import descendants  # noqa: E402
from tests.serving_server import start_service  # noqa: E402  (shared with the tests)

MB = 1024 * 1024


def worker_rss_mib(server_pid: int, field: str = "VmRSS") -> dict[int, float]:
    """VmRSS (MiB) of each BentoML worker under the server process (or VmHWM: its peak so far)."""
    found = {}
    for pid in descendants(server_pid):
        try:
            if b"_bentoml_impl.worker.service" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        kib = int(re.search(rf"^{field}:\s+(\d+)", status, re.M).group(1))
        found[pid] = round(kib / 1024, 1)
    return found


def metrics_size(client: httpx.Client, admin: str) -> dict[str, int]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    text = response.text
    return {"status": response.status_code, "bytes": len(text.encode()),
            "series": sum(1 for line in text.splitlines() if line and not line.startswith("#"))}


def probe(client: httpx.Client, n: int) -> dict[int, int]:
    """n random unauthorised requests; count of each status."""
    statuses: dict[int, int] = {}
    for i in range(n):
        kind = i % 3
        if kind == 0:
            response = client.get(f"/{secrets.token_hex(8)}")
        elif kind == 1:
            response = client.get(f"/ui/customers/{100_000 + secrets.randbelow(900_000)}")
        else:
            response = client.post(f"/score/{secrets.token_hex(4)}", json={})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    return statuses


def chunked_post(url: str, path: str, key: str, total: int, chunk: int = 256 * 1024) -> dict[str, float | int]:
    """Send a `total`-byte chunked JSON body whole, then read the answer's status."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=300)
    head = (f"POST {path} HTTP/1.1\r\nHost: {parts.hostname}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {key}\r\nTransfer-Encoding: chunked\r\n\r\n")
    data = b"[" + b" " * (chunk - 1)
    frame = f"{len(data):x}\r\n".encode() + data + b"\r\n"
    sent, start, error = 0, time.perf_counter(), None
    try:
        sock.sendall(head.encode())
        while sent < total:
            sock.sendall(frame)
            sent += len(data)
        sock.sendall(b"0\r\n\r\n")
    except OSError as caught:  # the server closed: read what it answered before
        error = type(caught).__name__
    response = b""
    try:
        while b"\r\n\r\n" not in response:
            more = sock.recv(65536)
            if not more:
                break
            response += more
    except OSError as caught:
        error = error or type(caught).__name__
    finally:
        sock.close()
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0
    return {"status": status, "sent_mb": round(sent / MB, 1), "seconds": round(time.perf_counter() - start, 2),
            "client_error": error}


def change(before: dict[int, float], after: dict[int, float]) -> dict[str, float]:
    return {str(pid): round(100 * (after.get(pid, 0.0) - mib) / mib, 2) for pid, mib in before.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="a home with data and champions (default: the fixture home)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--paths", type=int, default=3000)
    parser.add_argument("--chunked-mb", type=int, default=200)
    parser.add_argument("--settle", type=int, default=125, help="seconds to wait for BentoML's per-request timers (traffic timeout 120 s)")
    args = parser.parse_args()

    from serving.auth import create_key

    home = args.home
    if home is None:
        from tests.serving_fixture import write_fixture_home

        home = Path(tempfile.mkdtemp(prefix="bench-guard-")) / "home"
        write_fixture_home(home)
    admin = create_key(home / "keys.json", "admin")[0]
    crm = create_key(home / "keys.json", "crm")[0]
    service = start_service(home, timeout=300, workers=args.workers)
    result: dict[str, object] = {"workers": args.workers, "home": str(home)}
    try:
        with httpx.Client(base_url=service.url, timeout=300) as client:
            probe(client, 30 * args.workers)  # warm-up: every label a probe can make, in every worker
            metrics_size(client, admin)  # and /metrics' own series
            time.sleep(args.settle)
            result["metrics_before"], rss = metrics_size(client, admin), worker_rss_mib(service.process.pid)
            result["rss_mib_before"] = rss
            started = time.perf_counter()
            result["probe_statuses"] = probe(client, args.paths)
            result["probe_seconds"] = round(time.perf_counter() - started, 1)
            time.sleep(1)
            result["metrics_after"], after = metrics_size(client, admin), worker_rss_mib(service.process.pid)
            result["rss_mib_after_probe"] = after
            before_bytes = result["metrics_before"]["bytes"]  # type: ignore[index]
            result["metrics_bytes_change_pct"] = round(100 * (result["metrics_after"]["bytes"] - before_bytes) / before_bytes, 2)  # type: ignore[index]
            result["rss_change_pct_after_probe"] = change(rss, after)
            time.sleep(args.settle)
            settled = worker_rss_mib(service.process.pid)
            result[f"rss_mib_{args.settle}s_after_probe"] = settled
            result[f"rss_change_pct_{args.settle}s_after_probe"] = change(rss, settled)
            after = settled
            result["peak_rss_mib_before_chunked"] = worker_rss_mib(service.process.pid, "VmHWM")
            result["chunked"] = chunked_post(service.url, "/score", crm, args.chunked_mb * MB)
            time.sleep(1)
            result["rss_mib_after_chunked"] = worker_rss_mib(service.process.pid)
            result["rss_change_pct_after_chunked"] = change(after, result["rss_mib_after_chunked"])  # type: ignore[arg-type]
            # the peak while the body arrived (a freed large buffer leaves RSS, not the high-water mark)
            result["peak_rss_mib_after_chunked"] = worker_rss_mib(service.process.pid, "VmHWM")
            result["ready_after"] = client.get("/readyz").status_code
    finally:
        service.stop()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
