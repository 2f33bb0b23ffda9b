"""The MLflow registry in the home folder: configuring MLflow, loading models by alias (never by
"latest") with a feature-pipeline check, and keeping a copied or moved home's models loadable.

A model trained on features from one pipeline version gives wrong answers on another, so
loading refuses a mismatch: the caller says which version its features are
(features.pipeline_version(); models/ sits below features/ and does not ask it itself).

A home that moves. MLflow's file artifact store needs absolute locations, so the home's SQLite
store records <home>/mlartifacts/<problem>/... as absolute file URIs (experiments, runs, logged
models, model versions). When the home folder is copied or moved, those still name the old
place: a copy would read (and new runs would write) the original's files, and nothing loads once
the original is gone. configure_tracking, which every entry point calls before it talks to
MLflow, therefore compares the locations in the home's own store with where the home is now and,
when the home has moved, rewrites the old home's artifact root to the current one in one
transaction (follow_moved_home). Everything then works from the new place: models by alias,
`runs:/` artifacts, new runs, `mlflow ui`. A tracking server (MLFLOW_TRACKING_URI) is left alone.
"""

from __future__ import annotations

import io
import logging
import os
import sqlite3
import sys
import threading
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from base.settings import home
from base.errors import SoteRiskError

if TYPE_CHECKING:  # the model modules import LightGBM: `models list` and `promote` do without it
    from models.risk_model import RiskModel


MODEL_PREFIX = "sote-risk-"
EXPERIMENT_PREFIX = "sote-risk/"  # experiment per problem: sote-risk/<problem>, artifacts in <root>/<problem>

log = logging.getLogger(__name__)


class ModelNotFoundError(SoteRiskError):
    """No registered model / alias for a problem."""


class PipelineVersionMismatch(SoteRiskError):
    """The model was trained on features from another feature-pipeline version."""


def model_name(problem: str) -> str:
    return f"{MODEL_PREFIX}{problem}"


class RegistryError(SoteRiskError):
    """The home folder's model registry cannot be read, or not be pointed at the home's new place."""


def artifact_root() -> Path:
    """Where the home's SQLite store keeps artifacts: <home>/mlartifacts, absolute (MLflow needs it)."""
    return home().mlflow_artifacts.resolve()


def is_home_store(uri: str) -> bool:
    """Whether `uri` is the home folder's own SQLite store (not a server, not another file)."""
    return uri == f"sqlite:///{home().mlflow_db.resolve()}"


# (table, column) of every absolute artifact location MLflow's SQL store records
LOCATIONS = (("experiments", "artifact_location"), ("runs", "artifact_uri"), ("logged_models", "artifact_location"),
             ("model_versions", "storage_location"), ("model_versions", "source"))


def follow_moved_home(db: Path, root: Path) -> list[str]:
    """Point the store `db` at artifacts under `root` when they are recorded under another root
    (the home was copied or moved); the old roots it replaced (none: nothing to do).

    The old root is read from the store itself: every problem's experiment is created at
    <root>/<problem> (training/tracking.py), so an experiment `sote-risk/<p>` at X/<p> with X
    not the current root names a root to replace. Only locations under such a root change, in
    one transaction; a second process that opens the store at the same time finds nothing left.
    """
    if not db.is_file():
        return []
    new = root.as_uri()
    with closing(sqlite3.connect(db, timeout=60)) as conn:
        try:
            columns = {(table, row[1]) for table in {t for t, _ in LOCATIONS}
                       for row in conn.execute(f"PRAGMA table_info('{table}')")}
            if ("experiments", "artifact_location") not in columns:  # a store MLflow has not set up yet
                return []
            experiments = conn.execute("SELECT name, artifact_location FROM experiments WHERE substr(name, 1, ?) = ?",
                                       (len(EXPERIMENT_PREFIX), EXPERIMENT_PREFIX)).fetchall()
        except sqlite3.Error as error:
            raise RegistryError(f"cannot read the model registry {db}: {error}") from None
        old_roots = set()
        for name, location in experiments:
            suffix = "/" + name[len(EXPERIMENT_PREFIX):]
            if location and location.startswith("file:") and location.endswith(suffix) and location[:-len(suffix)] != new:
                old_roots.add(location[:-len(suffix)])
        if not old_roots:
            return []
        try:
            with conn:  # one transaction: all locations move, or none
                for old in sorted(old_roots):
                    for table, column in LOCATIONS:
                        if (table, column) in columns:
                            conn.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                                         f"WHERE substr({column}, 1, ?) = ?", (new, len(old) + 1, len(old) + 1, old + "/"))
        except sqlite3.Error as error:
            raise RegistryError(f"the home folder's registry {db} records its models under {', '.join(sorted(old_roots))}, "
                                 f"not under {root}, and cannot be updated ({error}); make {db} writable") from None
    for old in sorted(old_roots):
        log.info("home folder moved: artifact locations in %s changed from %s to %s", db, old, new)
    return sorted(old_roots)


class _PrintsAsRecords(io.TextIOBase):
    """MLflow's eprint() lines ("Successfully registered model ...", "Created version ...") as INFO
    records of the `mlflow` logger: they then go wherever the application sends MLflow's logging
    (the home's log under the command line; stderr with MLflow's own handler otherwise)."""

    def __init__(self) -> None:
        super().__init__()
        self._pending = ""
        self._inside = threading.local()

    def write(self, text: str) -> int:
        if getattr(self._inside, "active", False):  # a handler that writes back here: do not loop
            sys.stderr.write(text)
            return len(text)
        self._inside.active = True
        try:
            self._pending += text
            while "\n" in self._pending:
                line, self._pending = self._pending.split("\n", 1)
                if line.strip():
                    logging.getLogger("mlflow").info(line)
        finally:
            self._inside.active = False
        return len(text)


def _route_mlflow_prints() -> None:
    from mlflow.utils import logging_utils

    if not isinstance(logging_utils.MLFLOW_LOGGING_STREAM, _PrintsAsRecords):
        # eprint() looks the stream up at each call; MLflow's own handler keeps the original one
        logging_utils.MLFLOW_LOGGING_STREAM = _PrintsAsRecords()


def configure_tracking(tracking_uri: str | None = None) -> str:
    """Point MLflow (tracking and registry) at the home folder's SQLite unless told otherwise,
    following the home when it has moved (follow_moved_home); MLflow's prints become log records.

    Called by every entry point that talks to MLflow, never at import. MLFLOW_TRACKING_URI wins
    over the home folder (see base.settings).
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    _route_mlflow_prints()
    uri = tracking_uri or home().mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if is_home_store(uri):
        follow_moved_home(home().mlflow_db, artifact_root())
    # mlflow.set_*_uri also exports MLFLOW_*_URI to the environment; undo that, or the next call
    # would mistake our own choice for the user's and ignore a changed SOTE_RISK_HOME
    saved = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return uri


def check_pipeline_version(model: RiskModel, expected: str) -> None:
    if str(expected) != str(model.pipeline_version):
        raise PipelineVersionMismatch(
            f"model {model.problem} was trained on feature pipeline {model.pipeline_version!r} but the "
            f"features are {expected!r}; retrain (sote-risk train --problem {model.problem}) or rebuild the features"
        )


def resolve_version(problem: str, alias: str):
    """The ModelVersion behind `alias`, or a clear error."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    name = model_name(problem)
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        raise ModelNotFoundError(
            f"no version of {name} has alias {alias!r} (train with `sote-risk train --problem {problem}`, "
            f"promote with `sote-risk promote --problem {problem}`)"
        ) from None


def load_model(
    problem: str,
    alias: str = "champion",
    *,
    expected_pipeline_version: str,
    tracking_uri: str | None = None,
) -> RiskModel:
    """The RiskModel registered as `sote-risk-<problem>@<alias>`, checked against the pipeline."""
    import mlflow

    configure_tracking(tracking_uri)
    version = resolve_version(problem, alias)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model_name(problem)}@{alias}")
    model: RiskModel = pyfunc.unwrap_python_model().risk_model
    model.metadata = {**model.metadata, "model_version": str(version.version), "alias": alias}
    check_pipeline_version(model, expected_pipeline_version)
    return model


def local_folder(problem: str, version: str) -> Path | None:
    """Where the registered version's RiskModel folder (models/files.py) lies on this machine, in
    the home's file artifact store; None when its artifacts are elsewhere (a tracking server's
    store) or not where its MLmodel says. Read from MLflow's own records (the version's download
    URI, the pyfunc flavour's artifact path), never guessed from the store's layout."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    from mlflow import MlflowClient
    from mlflow.models import Model

    from models.files import ARTIFACT_KEY, FILES

    try:
        parsed = urlparse(MlflowClient().get_model_version_download_uri(model_name(problem), version))
        if parsed.scheme != "file":
            return None
        root = Path(url2pathname(parsed.path))
        folder = root / Model.load(str(root / "MLmodel")).flavors["python_function"]["artifacts"][ARTIFACT_KEY]["path"]
    except Exception:  # noqa: BLE001 (MLflow raises several types; without a folder the caller loads through MLflow)
        return None
    return folder if all((folder / name).is_file() for name in FILES) else None
