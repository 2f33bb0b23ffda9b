"""Smoke test of the whole demo, as a user runs it: `sote-risk demo` in a fresh home folder.

Small region and one Optuna trial per problem (what is tested is the wiring, not the models);
checks what the demo promises: it exits 0, every alert in the outbox marked delivered reached the
CRM stand-in, clinician pages exist with a band and reasons, no process it started is still
running, and its console holds only its own lines (the libraries' go to <home>/logs/sote-risk.log).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sote_risk.processes import group_alive

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

REPO = Path(__file__).resolve().parent.parent
# a library's line on the console: a log record, a warning, a bare MLflow print, a traceback
LIBRARY = re.compile(r" (INFO|WARNING|ERROR|DEBUG) |Warning: |Successfully registered model|Created version '|Traceback"
                     r"|alembic|sqlalchemy")


def test_demo_end_to_end(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "SOTE_RISK_HOME": str(home), "BENTOML_HOME": str(tmp_path / "bentoml")}
    env.pop("SOTE_RISK_CRM_WEBHOOK_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", "from sote_risk.cli import main; main()", "demo", "--customers", "1500", "--trials", "1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=360,
        preexec_fn=lambda: os.umask(0o022),  # as a user with the common umask runs it
    )
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    summary = json.loads((home / "demo-summary.json").read_text())

    # alerts: what the outbox says was delivered is exactly what the CRM holds, each once
    with sqlite3.connect(home / "outbox.db") as outbox:
        delivered = outbox.execute("SELECT COUNT(*) FROM alerts WHERE status='delivered'").fetchone()[0]
        pending = outbox.execute("SELECT COUNT(*) FROM alerts WHERE status='pending'").fetchone()[0]
        scores = outbox.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    with sqlite3.connect(home / "crm_receiver.db") as crm:
        received = crm.execute("SELECT COUNT(*), COALESCE(MAX(deliveries), 0) FROM received").fetchone()
    assert delivered > 0 and pending == 0
    assert received == (delivered, 1)
    assert summary["delivered"] == summary["received"] == delivered
    assert scores >= summary["scored"] > 0

    # honest about the models: every problem is either served or left out with a reason, and
    # each one promoted past failing gates is named with the gates it failed
    from training.spec import list_problems

    assert set(summary["models"]) | set(summary["left_out"]) == set(list_problems())
    assert not set(summary["models"]) & set(summary["left_out"])
    said = " ".join(result.stdout.split())  # rich wraps long lines
    for problem, reasons in summary["forced"].items():
        assert "forced past its gates" in summary["models"][problem] and reasons
        assert f"{problem}: v" in said and "FORCED to champion for the demo" in said
    for problem, reason in summary["left_out"].items():
        assert problem in reason and f"left out: {problem}" in said

    # clinician pages of the top customers in Finnish and English, with a band and reasons, and the
    # model cards they link to; every link between them names a saved file (the folder opens offline)
    saved = sorted((home / "pages").glob("customer-*.html"))
    spans = [p for p in saved if re.search(r"-\d+m\.html$", p.name)]  # each page's other spans, saved so their links open
    pages = [p for p in saved if p not in spans]
    assert pages and spans and [str(p) for p in pages] == sorted(summary["pages"])
    assert {p.name.replace("-en.html", "-fi.html") for p in pages} == {p.name for p in pages if p.name.endswith("-fi.html")}
    for page in pages:
        html = page.read_text()
        assert 'data-band="' in html and ("Tärkeimmät syyt" if page.name.endswith("-fi.html") else "Main reasons") in html
    cards = sorted((home / "pages").glob("model-card-*.html"))
    assert cards and [str(p) for p in cards] == sorted(summary["model_cards"])
    for page in saved + cards:
        text = page.read_text()
        for href in re.findall(r'<a [^>]*href="([^"]*)"', text):
            if href.startswith("#"):  # a place on the same page (the customer view's risk table): it must exist there
                assert f'id="{href[1:]}"' in text, (page.name, href)
            else:
                assert (home / "pages" / href).is_file(), (page.name, href)

    # nothing the demo started is left: neither the pids nor anything in their process groups
    assert len(summary["pids"]["service"]) >= 2  # BentoML's arbiter and its worker (a group of its own)
    for name, pids in summary["pids"].items():
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"{name} (pid {pid}) still running"
            assert not group_alive(pid), f"a process of the {name}'s groups is still running"
    assert json.loads((home / "keys.json").read_text())["keys"] == []  # the demo's keys are revoked
    assert "where to look" in result.stdout and "mlflow ui --backend-store-uri sqlite:///" in result.stdout

    # the console shows the demo's own stages; what MLflow and the other libraries say is in the log
    assert [line for line in (result.stdout + result.stderr).splitlines() if LIBRARY.search(line)] == []
    log = (home / "logs" / "sote-risk.log").read_text(encoding="utf-8")
    # the home is the user's alone (issue 16): data, features, MLflow, outbox, audit, pages, logs
    assert {"mlartifacts", "pages", "features", "audit.db"} <= {p.name for p in home.iterdir()}
    shared = [f"{oct(stat.S_IMODE(p.lstat().st_mode))} {p}" for p in [home, *home.rglob("*")]
              if stat.S_IMODE(p.lstat().st_mode) & 0o077]
    assert shared == [], shared[:10]
    assert "command: sote-risk demo\n" in log and "INFO mlflow: Successfully registered model 'sote-risk-" in log


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
