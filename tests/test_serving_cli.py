"""`sote-risk serve` checks the home folder's champions before it starts BentoML, and refuses in
one line when a champion is missing or stale or a setting is unknown."""

from __future__ import annotations

import os
import sys

import pytest

from sote_risk import cli
from tests.serving_fixture import models, register

ELDERLY = "elderly-hospitalisation"


class Exec(BaseException):
    """Raised in place of os.execv: the test process must not become the server. A BaseException,
    as a real exec never returns: the entry point's one-line handling of errors must let it pass."""


@pytest.fixture()
def home(fixture_home, monkeypatch):
    """The fixture home (its dataset and five champions), as the process's SOTE_RISK_HOME."""
    for name in [n for n in os.environ if n.startswith("SOTE_RISK_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("SOTE_RISK_HOME", str(fixture_home))
    return fixture_home


@pytest.fixture()
def execs(monkeypatch):
    """The argv of every os.execv (none happens), and the environment restored afterwards: serve
    sets SOTE_RISK_WORKERS and OMP_NUM_THREADS for the server it was about to become."""
    calls: list[list[str]] = []

    def fake_execv(path, argv):  # noqa: ANN001
        calls.append(list(argv))
        raise Exec

    monkeypatch.setattr(os, "execv", fake_execv)
    saved = dict(os.environ)
    yield calls
    os.environ.clear()
    os.environ.update(saved)


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["sote-risk", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code, capsys.readouterr().err


def errors_of(err: str) -> list[str]:
    """stderr without MLflow's own INFO/WARNING lines (it logs while loading models)."""
    return [line for line in err.strip().splitlines() if " INFO " not in line and " WARNING " not in line]


def test_serve_checks_the_champions_then_hands_over_to_bentoml(home, monkeypatch, capsys, execs):
    monkeypatch.setattr(sys, "argv", ["sote-risk", "serve", "--port", "3999", "--workers", "3"])
    with pytest.raises(Exec):
        cli.main()
    (argv,) = execs
    assert argv[1:5] == ["-m", "serving.launcher", "serve", "serving.service:RiskService"] and argv[argv.index("--port") + 1] == "3999"
    assert os.environ["SOTE_RISK_WORKERS"] == "3"  # what the workers read at import
    (line,) = [line for line in errors_of(capsys.readouterr().err) if line.startswith("serving ")]
    assert all(f"{problem} v1" in line for problem in models()) and "http://127.0.0.1:3999" in line


def test_serve_refuses_a_stale_pipeline_in_one_line(home, monkeypatch, capsys, execs):
    stale = models([ELDERLY])
    stale[ELDERLY].pipeline_version = "stale-pipeline"
    assert register(home, stale, "champion") == {ELDERLY: "2"}
    capsys.readouterr()  # MLflow's registration messages
    code, err = run_cli(monkeypatch, capsys, "serve", "--port", "1")
    assert code != 0 and execs == []
    (line,) = errors_of(err)
    assert line.startswith("error: serving refuses to start: ") and "feature pipeline 'stale-pipeline'" in line
    assert ELDERLY in line and "retrain" in line
    assert "acute-hospitalisation" not in line  # only the stale champion is named


def test_serve_without_champions_says_what_is_missing(tmp_path, monkeypatch, capsys, execs):
    """An empty home: no problem has a champion; one line says so (no traceback)."""
    for name in [n for n in os.environ if n.startswith("SOTE_RISK_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path))
    code, err = run_cli(monkeypatch, capsys, "serve", "--port", "1")
    assert code != 0 and execs == []
    (line,) = errors_of(err)
    assert line.startswith("error: serving refuses to start: ") and "alias 'champion'" in line
    assert all(problem in line for problem in models())


def test_serve_refuses_an_unknown_setting(home, monkeypatch, capsys, execs):
    """There is no SOTE_RISK_BACKEND hook any more: the variable is refused, not ignored."""
    monkeypatch.setenv("SOTE_RISK_BACKEND", "tests.serving_fixture:backend_from_home")
    code, err = run_cli(monkeypatch, capsys, "serve", "--port", "1")
    assert code != 0 and execs == []
    (line,) = errors_of(err)
    assert line.startswith("error: unknown setting(s) SOTE_RISK_BACKEND") and "SOTE_RISK_HOME" in line


@pytest.mark.slow
def test_bentofile_builds(tmp_path):
    """`bentoml build` accepts bentofile.yaml and packages the service with its templates."""
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
