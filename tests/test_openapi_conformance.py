"""The service keeps the contract its OpenAPI document states (issue 16, item 11).

schemathesis (`--checks all`: statuses, media types, response schemas and headers, positive and
negative data, unsupported methods, ignored auth) runs against the real service on the fixture
home, once with each role's key and once with none, at least 50 examples an operation, with a
fixed seed so a failure can be replayed. The expectations that are ours (which statuses a
well-formed or a malformed request may get) are in schemathesis.toml, with why. Bounded in time
by a timeout per run; the four runs go side by side.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from serving.auth import create_key
from tests.serving_server import start_service

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = 50
SEED = 20261206
RUN_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def conformance(fixture_home_template, tmp_path_factory):
    home = tmp_path_factory.mktemp("conformance") / "home"
    shutil.copytree(fixture_home_template, home)
    keys = {role: create_key(home / "keys.json", role)[0] for role in ("crm", "clinician", "admin")}
    service = start_service(home)
    try:
        yield service.url, keys, home
    finally:
        service.stop()


def test_the_document_is_ours_and_complete(conformance):
    url, _, _ = conformance
    spec = httpx.get(f"{url}/docs.json", timeout=30).json()
    assert spec["info"]["version"] not in ("None", "") and spec["info"]["title"] == "sote-risk"
    assert spec["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            declared = set(operation["responses"])
            assert {"200", "400", "405", "500"} <= declared, (method, path, declared)
            if path not in ("/healthz", "/livez", "/readyz"):
                assert {"401", "403"} <= declared, (method, path, declared)
            if "requestBody" in operation and operation["requestBody"]["content"]["application/json"]["schema"].get("required"):
                assert operation["requestBody"]["required"] is True, path


ROLES = ("crm", "clinician", "admin", None)


def failures(report: str) -> str:
    """The report's failures section (what failed, with the curl to replay it), not its summary."""
    start = report.find("FAILURES")
    return report[start:start + 8000] if start >= 0 else report[-6000:]


@pytest.fixture(scope="module")
def reports(conformance, tmp_path_factory) -> dict[str | None, tuple[int, str]]:
    """The four schemathesis runs, side by side (the client's generation and the service's work
    share the two cores better than one run after another): role -> (exit code, report)."""
    url, keys, _ = conformance
    home = tmp_path_factory.mktemp("schemathesis-home")
    running = {}
    for role in ROLES:
        command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{url}/docs.json", "--checks", "all",
                   "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--no-color"]
        if role is not None:
            command += ["-H", f"Authorization: Bearer {keys[role]}"]
        running[role] = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                         env={"PATH": str(Path(sys.executable).parent), "HOME": str(home)})
    done = {}
    try:
        for role, process in running.items():
            output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
            done[role] = (process.returncode, output)
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
    return done


@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_finds_no_failure(reports, role):
    code, report = reports[role]
    assert code == 0, failures(report)
    tested = int(re.search(r"Tested: (\d+)", report).group(1))
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", report).groups())
    assert tested >= 13 and generated == passed and generated >= EXAMPLES * tested, report[-3000:]
