"""The service keeps the contract its OpenAPI document states (issue 16, item 11).

schemathesis (`--checks all`: statuses, media types, response schemas and headers, positive and
negative data, unsupported methods, ignored auth) runs against the real service on the fixture
home, once with each role's key and once with none, at least 50 examples an operation, with a
fixed seed so a failure can be replayed. The expectations that are ours (which statuses a
well-formed or a malformed request may get) are in schemathesis.toml, with why. Bounded in time
by a timeout per run.
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


@pytest.mark.parametrize("role", ["crm", "clinician", "admin", None])
def test_schemathesis_finds_no_failure(conformance, role, tmp_path):
    url, keys, home = conformance
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{url}/docs.json", "--checks", "all",
               "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--no-color"]
    if role is not None:
        command += ["-H", f"Authorization: Bearer {keys[role]}"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                            env={"SCHEMATHESIS_HOOKS": "", "PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)})
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    tested = int(re.search(r"Tested: (\d+)", report).group(1))
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", report).groups())
    assert tested >= 13 and generated == passed and generated >= EXAMPLES * tested, report[-3000:]
