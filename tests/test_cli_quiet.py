"""The command line's console shows only each command's own lines and one-line errors; what the
libraries log, warn or print (MLflow, alembic, SQLAlchemy, pandas, shap, ...) goes to the home
folder's log, <home>/logs/sote-risk.log (sote_risk/logs.py), which a command that logs nothing
never creates. The commands run as users run them: `python -c "...main()"` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from _training_data import write_tables

REPO = Path(__file__).resolve().parents[1]
# what a library says, never a command: MLflow's and Python's log lines and warnings, tracebacks
NOISE = re.compile(r"(?i:mlflow|alembic|sqlalchemy)|Warning|WARNING|INFO|DEBUG|Successfully registered|Created version"
                   r"|pip version|Traceback")
LOG = Path("logs") / "sote-risk.log"


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """A user's environment: none of the test process's SOTE_RISK_* or MLflow logging choices."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SOTE_RISK_") and k not in ("MLFLOW_TRACKING_URI", "MLFLOW_CONFIGURE_LOGGING", "PYTHONWARNINGS")}
    return {**env, "SOTE_RISK_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true", **extra}


def run_cli(*args: str, home: Path, timeout: float = 600, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from sote_risk.cli import main; main()", *args], cwd=REPO,
                          env=user_env(home, **extra), capture_output=True, text=True, timeout=timeout)


def noise(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if NOISE.search(line)]


def stamped_tables(root: Path) -> tuple[Path, Path]:
    """The training fixture's feature table as `features build` writes one today: stamped with the
    code's feature-pipeline version (so `evaluate` and serving accept the model), without the
    fixture's extra `noise_feature` (the shipped spec refuses unknown columns)."""
    from features import pipeline_version

    features_dir, dataset_dir = write_tables(root)
    table = pd.read_parquet(features_dir / "elderly.parquet").drop(columns="noise_feature")
    table.assign(pipeline_version=pipeline_version()).to_parquet(features_dir / "elderly.parquet")
    return features_dir, dataset_dir


@pytest.mark.slow
def test_train_and_promote_show_their_own_lines_and_log_the_libraries(trained_home_template, tmp_path):
    """`train` (run once for the session with PYTHONWARNINGS=default, which also shows the
    deprecation warnings Python hides by default: SQLAlchemy under MLflow, shap, pandas; see
    conftest.py trained_home_template), then `promote` and `models list` on a copy of its home."""
    trained = trained_home_template
    train = trained.train
    assert train.returncode == 0, train.stderr[-3000:]
    (result,) = train.stdout.splitlines()
    assert result.startswith("elderly-hospitalisation: trained version 1 (challenger) test_auroc ")
    assert noise(train) == []
    assert "registered sote-risk-elderly-hospitalisation version 1 as challenger" in " ".join(train.stderr.split())
    log = (trained.template / LOG).read_text(encoding="utf-8")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d pid \d+ command: sote-risk train", log.splitlines()[0])
    for line in ("INFO mlflow: Successfully registered model 'sote-risk-elderly-hospitalisation'.",
                 "INFO mlflow: Created version '1' of model 'sote-risk-elderly-hospitalisation'.",
                 "INFO mlflow.store.db.utils: Creating initial MLflow database tables...",
                 "WARNING mlflow.pyfunc: Passing a Python object as `python_model`"):
        assert line in log, line
    assert re.search(r" WARNING py\.warnings: \S+\.py:\d+: \w*Warning: ", log), "no warning reached the log"

    home = trained.copy_as_trained_there(tmp_path / "home")  # promote and list have no move to follow
    promote = run_cli("promote", "--problem", "elderly-hospitalisation", "--force", home=home)
    assert promote.returncode == 0, promote.stderr[-3000:]
    assert promote.stderr == "" and noise(promote) == []
    # the fixture's outcome rate drifts, so the shipped spec's calibration gates refuse it: forced, with its reasons
    first = promote.stdout.splitlines()[0]
    assert first == "sote-risk-elderly-hospitalisation version 1 is champion" or first.startswith(
        "FORCED: sote-risk-elderly-hospitalisation version 1 is champion despite: ")
    listed = run_cli("models", "list", home=home)
    assert listed.returncode == 0 and listed.stderr == "" and noise(listed) == []


def test_a_command_that_logs_nothing_leaves_no_log_and_no_home(tmp_path):
    home = tmp_path / "home"
    for args in (("version",), ("--help",), ("models", "--help")):
        result = run_cli(*args, home=home, timeout=120)
        assert result.returncode == 0 and result.stderr == "", result.stderr
    assert not home.exists()


def test_an_unexpected_error_is_one_line_and_its_traceback_is_in_the_log(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "audit.db").write_text("not a database")
    result = run_cli("audit", "--customer", "17", home=home, timeout=120)
    log = home / LOG
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"error: DatabaseError: file is not a database (traceback in {log})\n"
    text = log.read_text(encoding="utf-8")
    assert "command: sote-risk audit\n" in text and " ERROR sote_risk: unexpected error\nTraceback (most recent call last):" in text
    assert text.rstrip().endswith("sqlite3.DatabaseError: file is not a database")


def test_a_setting_error_is_still_one_line(tmp_path):
    """Without a home to log in (a bad setting), the command still fails in one line."""
    result = run_cli("models", "list", home=tmp_path / "home", timeout=120, SOTE_RISK_WORKERS="many")
    assert result.returncode == 2 and result.stderr.startswith("error: SOTE_RISK_WORKERS='many': ")
    assert len(result.stderr.splitlines()) == 1 and not (tmp_path / "home").exists()


class Exec(BaseException):
    """In place of os.execv (the test process must not become the server)."""


@pytest.mark.parametrize("user_value", [None, "true"])
def test_serve_hands_bentoml_the_users_environment(fixture_home, monkeypatch, user_value):
    """`serve` becomes the BentoML service, which keeps its own logging: the variables the command
    line set for itself are gone (or back to the user's value) when it execs; the process is
    left as it was (no handler on the root logger)."""
    import logging

    from sote_risk import cli
    from sote_risk.logs import HomeLogHandler

    for name in [n for n in os.environ if n.startswith("SOTE_RISK_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    if user_value is None:
        monkeypatch.delenv("MLFLOW_CONFIGURE_LOGGING", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_CONFIGURE_LOGGING", user_value)
    monkeypatch.setenv("SOTE_RISK_HOME", str(fixture_home))
    seen = {}

    def fake_execv(path, argv):  # noqa: ANN001
        seen.update(argv=argv, logging=os.environ.get("MLFLOW_CONFIGURE_LOGGING"),
                    urls=os.environ.get("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"))
        raise Exec

    monkeypatch.setattr(os, "execv", fake_execv)
    monkeypatch.setattr(sys, "argv", ["sote-risk", "serve", "--port", "3999"])
    saved = dict(os.environ)
    try:
        with pytest.raises(Exec):
            cli.main()
    finally:
        after = dict(os.environ)
        os.environ.clear()
        os.environ.update(saved)
    assert seen["argv"][1:4] == ["-m", "serving.launcher", "serve"]
    assert seen["logging"] == user_value and seen["urls"] is None
    assert "MLFLOW_CONFIGURE_LOGGING" not in after if user_value is None else after["MLFLOW_CONFIGURE_LOGGING"] == user_value
    assert not [h for h in logging.getLogger().handlers if isinstance(h, HomeLogHandler)]


@pytest.mark.slow
def test_the_dispatch_loop_shows_its_own_lines(tmp_path):
    """`alerts dispatch` without --once: its log lines are its output, on stderr as before."""
    from alerts import outbox
    from _alerts_helpers import record

    home = tmp_path / "home"
    conn = outbox.connect(home / "outbox.db")
    record(conn, [1, 2])
    conn.close()
    err = tmp_path / "dispatch.err"
    with open(err, "wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-c", "from sote_risk.cli import main; main()", "alerts", "dispatch",
             "--webhook", "http://127.0.0.1:9/alerts", "--base-delay", "600", "--cap-delay", "600", "--poll-interval", "0.2", "--timeout", "2"],
            cwd=REPO, env=user_env(home), stdout=subprocess.PIPE, stderr=handle, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and err.read_text().count("attempt 1 failed") < 2 and process.poll() is None:
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    lines = err.read_text().splitlines()
    failed = [line for line in lines if " INFO alert " in line and "attempt 1 failed" in line and "retry in" in line]
    assert len(failed) == 2, lines
    assert process.returncode == 0 and json.loads(out)["retrying"] == 2, out
    said = [line for line in lines if line not in failed]  # and once, that operator alerts are not sent
    assert len(said) == 1 and said[0].endswith(" INFO SOTE_RISK_OPERATOR_WEBHOOK_URL is not set: operator alerts wait in the outbox")
