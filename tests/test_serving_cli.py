"""`sote-risk serve` refuses to start, in one line, when a champion is missing or stale."""

from __future__ import annotations

import sys

import pytest

from sote_risk import cli
from tests.serving_fixture import write_fixture_home


@pytest.fixture()
def fixture_home(tmp_path, monkeypatch):
    write_fixture_home(tmp_path, n_customers=40)
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path))
    monkeypatch.setenv("SOTE_RISK_BACKEND", "tests.serving_fixture:backend_from_home")
    return tmp_path


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["sote-risk", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code, capsys.readouterr().err


def test_serve_refuses_a_stale_pipeline_in_one_line(fixture_home, monkeypatch, capsys):
    monkeypatch.setenv("SOTE_RISK_FIXTURE_PIPELINE", "toy-2")
    code, err = run_cli(monkeypatch, capsys, "serve", "--port", "1")
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: feature-pipeline version mismatch")
    assert "elderly-hospitalisation" in lines[0] and "retrain" in lines[0]


def test_serve_without_the_project_parts_says_what_is_missing(tmp_path, monkeypatch, capsys):
    """The production backend needs features/ and models/registry; until they exist (or when a
    problem has no champion) the message says so instead of a traceback."""
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path))
    monkeypatch.delenv("SOTE_RISK_BACKEND", raising=False)
    code, err = run_cli(monkeypatch, capsys, "serve", "--port", "1")
    errors = [line for line in err.strip().splitlines() if " INFO " not in line]  # MLflow's own INFO lines
    assert code != 0 and len(errors) == 1 and errors[0].startswith("error: serving ")


@pytest.mark.slow
def test_bentofile_builds(tmp_path):
    """`bentoml build` accepts bentofile.yaml and packages the service with its templates."""
    import os
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "BENTOML_HOME": str(tmp_path), "BENTOML_DO_NOT_TRACK": "true"}
    result = subprocess.run([str(Path(sys.executable).with_name("bentoml")), "build", str(repo)],
                            cwd=repo, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (src,) = list((tmp_path / "bentos" / "sote-risk").glob("*/src"))
    assert (src / "serving" / "service.py").exists() and (src / "serving" / "templates" / "customer.html.j2").exists()
    assert not (src / "tests").exists()
