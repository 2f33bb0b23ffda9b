"""A home folder that moves: after a copy (or a move) and the original's deletion, every model
loads and serves from the new place, the commands work on it, and what they write lands in it
(models/registry.py follow_moved_home).

The homes are copies of the session's fixture homes (tests/conftest.py): the load and serve tests
start from the one with the region's data and its five champions, the commands test from the one
`sote-risk train` made; each test moves its own copy."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from tests.serving_fixture import _example_rows, members, models, register

ELDERLY = "elderly-hospitalisation"


def cells(db: Path) -> dict[tuple[str, str], list]:
    """Every column of every table of a store, (table, column) -> its values in rowid order."""
    with closing(sqlite3.connect(db)) as conn:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out = {}
        for table in tables:
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info('{table}')")]
            rows = conn.execute(f"SELECT * FROM '{table}' ORDER BY rowid").fetchall() if columns else []
            for i, column in enumerate(columns):
                out[(table, column)] = [row[i] for row in rows]
    return out


def mentions(db: Path, text: str) -> list[tuple[str, str, str]]:
    """Every cell of the store whose text contains `text` (a naive search, no knowledge of MLflow)."""
    return [(t, c, v) for (t, c), values in cells(db).items() for v in values if isinstance(v, str) and text in v]


def path_of(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def set_home(monkeypatch, home: Path) -> None:
    monkeypatch.setenv("SOTE_RISK_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


def built_then_moved(template: Path, base: Path, monkeypatch) -> tuple[Path, Path]:
    """A home in use at `original` (a copy of the fixture home `template`: the region's data, the
    five models registered; opened there as every command opens it, so its store names the
    original and no longer the template), copied to a new path with a space in it, the original
    deleted; (original, moved)."""
    from models.registry import configure_tracking

    original, moved = base / "original", base / "new place" / "home"
    shutil.copytree(template, original)
    set_home(monkeypatch, original)
    configure_tracking()
    db = original / "mlflow.db"
    assert mentions(db, str(original.resolve() / "mlartifacts"))  # the store names the original
    assert mentions(db, str(template.resolve())) == []  # and only the original
    moved.parent.mkdir(parents=True)
    shutil.copytree(original, moved)
    shutil.rmtree(original)
    set_home(monkeypatch, moved)
    return original, moved


def test_follow_moved_home_changes_the_old_roots_locations_and_nothing_else(fixture_home_template, tmp_path):
    from models.registry import LOCATIONS, follow_moved_home

    home = tmp_path / "copy"
    shutil.copytree(fixture_home_template, home)
    db, old, new = home / "mlflow.db", (fixture_home_template / "mlartifacts").resolve().as_uri(), (home / "mlartifacts").resolve().as_uri()
    before = cells(db)
    assert follow_moved_home(db, (home / "mlartifacts").resolve()) == [old]
    after = cells(db)
    assert after.keys() == before.keys()
    changed = 0
    for key, values in before.items():
        if key in LOCATIONS:
            expected = [new + v[len(old):] if isinstance(v, str) and v.startswith(old + "/") else v for v in values]
            changed += sum(a != b for a, b in zip(expected, values))
        else:
            expected = values
        assert after[key] == expected, key
    assert changed == 4 * len(models())  # per model: its experiment, run, logged model and version
    assert follow_moved_home(db, (home / "mlartifacts").resolve()) == [] and cells(db) == after  # once is enough


def test_models_load_from_a_moved_home(fixture_home_template, tmp_path, monkeypatch):
    from features import pipeline_version
    from models.registry import load_model

    original, moved = built_then_moved(fixture_home_template, tmp_path, monkeypatch)
    for problem, expected in models().items():
        loaded = load_model(problem, expected_pipeline_version=pipeline_version())
        rows = _example_rows(expected)
        np.testing.assert_array_equal(loaded.predict_proba(rows), expected.predict_proba(rows))
        assert loaded.metadata["model_version"] == "1"
    db = moved / "mlflow.db"
    assert mentions(db, str(original)) == []
    root = (moved / "mlartifacts").resolve().as_uri()
    versions = cells(db)[("model_versions", "storage_location")]
    assert len(versions) == len(models()) and all(v.startswith(root + "/") and path_of(v).is_dir() for v in versions)
    assert not original.exists()  # nothing was written at the old place


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_moved_home_serves_and_runs_its_own_champions(fixture_home_template, tmp_path, monkeypatch):
    """`sote-risk serve` on the copy serves the copy's champions, including one registered there
    after the move (its files land in the copy); `sote-risk run` scores with them."""
    import json

    import httpx

    from serving.auth import create_key
    from tests.serving_server import start_service
    from tests.test_cli_quiet import noise, run_cli

    original, moved = built_then_moved(fixture_home_template, tmp_path, monkeypatch)
    fitted = models()
    newer = models([ELDERLY])
    newer[ELDERLY].metadata["threshold"] = 0.5
    assert register(moved, newer, "champion") == {ELDERLY: "2"}
    with closing(sqlite3.connect(moved / "mlflow.db")) as conn:
        (location,) = conn.execute("SELECT storage_location FROM model_versions WHERE name = ? AND version = 2",
                                   (f"sote-risk-{ELDERLY}",)).fetchone()
    assert location.startswith((moved / "mlartifacts").resolve().as_uri() + "/") and (path_of(location) / "MLmodel").is_file()
    key = create_key(moved / "keys.json", "crm")[0]
    service = start_service(moved)
    try:
        with httpx.Client(base_url=service.url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
            for problem, model in fitted.items():
                ids = members(problem, limit=5)
                response = client.post("/score_batch", json={"customer_ids": ids, "top_k": 0})
                assert response.status_code == 200, response.text[:500]
                expected = model.predict_proba(_example_rows(model))
                for item, probability in zip(response.json()["results"], expected):
                    (risk,) = [r for r in item["risks"] if r["problem"] == problem]
                    assert risk["probability"] == float(probability)
                    assert risk["model_version"] == ("2" if problem == ELDERLY else "1")
    finally:
        service.stop()
    assert not original.exists()

    run = run_cli("run", "--as-of", "2024-12-01", home=moved, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)
    assert sorted(summary["problems"]) == sorted(fitted) and all(p["scored"] > 0 for p in summary["problems"].values())
    assert noise(run) == [] and not original.exists()


@pytest.mark.slow
def test_commands_on_a_moved_trained_home(trained_home_template, tmp_path):
    """train (once for the session, conftest.py trained_home_template), then copy the home and
    delete the original: `models list`, `promote` and `evaluate` work on the copy, and evaluate's
    new run keeps its files in the copy."""
    from tests.test_cli_quiet import noise, run_cli

    trained = trained_home_template
    features_dir, dataset_dir, original, train = trained.features, trained.dataset, trained.original, trained.train
    assert train.returncode == 0, train.stderr[-3000:]
    moved = tmp_path / "moved" / "home"
    shutil.copytree(trained.template, moved)
    assert not original.exists() and mentions(moved / "mlflow.db", str(original.resolve() / "mlartifacts"))  # a moved home

    listed = run_cli("models", "list", home=moved)
    assert listed.returncode == 0 and "challenger" in listed.stdout and noise(listed) == []
    promoted = run_cli("promote", "--problem", ELDERLY, "--force", home=moved)
    assert promoted.returncode == 0 and "version 1 is champion" in promoted.stdout and noise(promoted) == [], promoted.stderr
    evaluated = run_cli("evaluate", "--problem", ELDERLY, "--data", str(features_dir), "--dataset", str(dataset_dir), home=moved)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    auroc = dict(line.split("\t") for line in evaluated.stdout.splitlines() if "\t" in line)["test_auroc"]
    assert f"test_auroc {float(auroc):.3f}" in train.stdout  # the same model on the same test rows
    assert noise(evaluated) == []

    db = moved / "mlflow.db"
    assert mentions(db, str(original)) == []
    runs = cells(db)[("runs", "artifact_uri")]
    root = (moved / "mlartifacts").resolve().as_uri()
    assert runs and all(uri.startswith(root + "/") for uri in runs)
    plots = [path_of(uri) / "plots" for uri in runs if (path_of(uri) / "plots").is_dir()]
    assert len(plots) == 2  # the training run's and the evaluate run's, both in the copy
    assert not original.exists()
