"""The home folder is its user's alone (issue 16): whatever the user's umask, everything the
project's own commands write there (dataset, features, MLflow store, outbox, keys, link secret,
audit log, logs) is neither group- nor other-readable, and a home made readable before is
narrowed at its root. Real `sote-risk` processes started with umask 022 on a small region."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.serving_server import REPO, service_env

pytestmark = pytest.mark.slow


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    """`sote-risk ARGS` as a user with the common umask 022 runs it."""
    command = [sys.executable, "-c", "from sote_risk.cli import main; main()", *args]
    result = subprocess.run(command, cwd=REPO, env=service_env(home), capture_output=True, text=True, timeout=600,
                            preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, (args, result.stderr[-2000:])
    return result


def shared(home: Path) -> list[str]:
    """Every path under the home (itself included) that its group or others may read, write or enter."""
    paths = [home, *home.rglob("*")]
    return [f"{oct(stat.S_IMODE(p.lstat().st_mode))} {p}" for p in paths if stat.S_IMODE(p.lstat().st_mode) & 0o077]


def test_a_home_made_by_the_commands_is_private(tmp_path):
    home = tmp_path / "home"
    cli(home, "simulate", "--customers", "300", "--years", "2", "--no-truth", "--out", str(home / "data"))
    cli(home, "features", "build", "--data", str(home / "data"), "--out", str(home / "features"))
    cli(home, "models", "list")  # the MLflow store
    cli(home, "alerts", "list")  # the outbox
    cli(home, "keys", "create", "--role", "crm")
    subject = int(pd.read_parquet(home / "data" / "customers.parquet")["subject_id"].iloc[0])
    cli(home, "link", "--customer", str(subject))  # the link secret and the audit log
    made = {p.name for p in home.iterdir()}
    assert {"data", "features", "mlflow.db", "outbox.db", "keys.json", "link_secret", "audit.db", "logs"} <= made, made
    assert (home / "logs" / "sote-risk.log").exists()
    assert shared(home) == []


def test_a_home_readable_before_is_narrowed_at_its_root(tmp_path):
    home = tmp_path / "old-home"
    (home / "data").mkdir(parents=True)
    home.chmod(0o755)
    cli(home, "version")
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
