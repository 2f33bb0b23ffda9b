"""Where sote-risk keeps its data and stores: one home folder.

Resolved at call time (never at import) so tests and users can point it elsewhere with
SOTE_RISK_HOME. Nothing here creates directories; callers that write create what they need.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "SOTE_RISK_HOME"
DEFAULT_HOME = ".sote-risk"


@dataclass(frozen=True)
class HomeLayout:
    """Every path inside the home folder, in one place."""

    root: Path

    @property
    def data(self) -> Path:  # the region's dataset (events, customers, truth)
        return self.root / "data"

    @property
    def features(self) -> Path:  # feature tables per segment
        return self.root / "features"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def optuna_db(self) -> Path:
        return self.root / "optuna.db"

    @property
    def outbox_db(self) -> Path:
        return self.root / "outbox.db"

    @property
    def audit_db(self) -> Path:
        return self.root / "audit.db"

    @property
    def keys_file(self) -> Path:
        return self.root / "keys.json"

    @property
    def pages(self) -> Path:  # clinician pages written by the demo
        return self.root / "pages"

    @property
    def mlflow_tracking_uri(self) -> str:
        """MLFLOW_TRACKING_URI wins; otherwise SQLite in the home folder."""
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.mlflow_db.resolve()}"


def home() -> HomeLayout:
    return HomeLayout(Path(os.environ.get(HOME_ENV) or DEFAULT_HOME))


def quiet_third_parties() -> None:
    """No telemetry from the libraries we start (no network at run time except loopback)."""
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
