"""Fixtures shared across test modules (each is built only when a test asks for it), and one
setting for every process the tests start (below)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

# LightGBM's OpenMP threads sleep while they wait instead of spinning. The shipped experiment
# specs train on two threads (training/tuning.py NUM_THREADS), in the subprocesses of `sote-risk
# train` and `sote-risk demo` (which inherit this). The tests share their cores with other
# suites (tests/_training_data.py fast_spec_dict trains on one thread for the same reason), and a
# spinning thread then holds a core its partner needs. Only how idle threads wait changes: the
# same threads do the same work, the models are identical. A value the caller set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def fixture_home_template(tmp_path_factory) -> Path:
    """A home folder with the serving region's dataset and its five models registered as
    `champion` (tests/serving_fixture.py), written once per session; copy it before changing it."""
    from tests.serving_fixture import write_fixture_home

    home = tmp_path_factory.mktemp("fixture-home")
    write_fixture_home(home)
    return home


@pytest.fixture()
def fixture_home(fixture_home_template, tmp_path) -> Path:
    """A private copy of the fixture home: its own data, registry database, model files, keys and
    outbox (the copy's registry points at the copy's files when first opened: a home can move)."""
    home = tmp_path / "home"
    shutil.copytree(fixture_home_template, home)
    return home


@dataclass(frozen=True)
class TrainedHome:
    """What `trained_home_template` made: the tables it trained on, the home `train` wrote at
    `original` (deleted since), a copy of that home (`template`) and the command's result."""

    features: Path
    dataset: Path
    original: Path
    template: Path
    train: subprocess.CompletedProcess

    def copy_as_trained_there(self, home: Path) -> Path:
        """A copy of the template at `home` whose store names `home`, as if `train` had run there
        (follow_moved_home, asserted to replace exactly the original's root): commands on it have
        no move to follow."""
        from models.registry import follow_moved_home

        shutil.copytree(self.template, home)
        old_root = (self.original / "mlartifacts").resolve().as_uri()
        assert follow_moved_home(home / "mlflow.db", (home / "mlartifacts").resolve()) == [old_root]
        return home


@pytest.fixture(scope="session")
def trained_home_template(tmp_path_factory) -> TrainedHome:
    """`sote-risk train --problem elderly-hospitalisation --trials 1` on the training fixture's
    table, once per session, as a user runs it (a subprocess; PYTHONWARNINGS=default also shows
    the deprecation warnings Python hides, more for the console to keep out), in a home at
    `original`; the home is then copied to `template` and the original deleted.

    The template is a trained home that has moved: its store still names the original until a
    command opens it. Nobody opens it in place: copy it (shutil.copytree: a moved home) or take
    `copy_as_trained_there`, and use the copy."""
    from tests.test_cli_quiet import run_cli, stamped_tables

    root = tmp_path_factory.mktemp("trained-home")
    features_dir, dataset_dir = stamped_tables(root / "data")
    original, template = root / "original", root / "template"
    train = run_cli("train", "--problem", "elderly-hospitalisation", "--data", str(features_dir), "--dataset", str(dataset_dir),
                    "--trials", "1", home=original, PYTHONWARNINGS="default")
    if original.exists():  # (a train that failed early may leave none: the tests report its result)
        shutil.copytree(original, template)
        shutil.rmtree(original)
    return TrainedHome(features_dir, dataset_dir, original, template, train)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local Spark session for every Spark test (starting one costs seconds): two cores,
    Spark's own output in a log file of the session's temporary folder. Mark such tests
    `@pytest.mark.spark` (select them with `-m spark`)."""
    from scaleout.session import SparkSettings, spark_session

    root = tmp_path_factory.mktemp("spark")
    settings = SparkSettings(master="local[2]", log_file=root / "spark.log", local_dir=root / "scratch")
    with spark_session(settings) as session:
        yield session
