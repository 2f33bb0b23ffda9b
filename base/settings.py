"""sote-risk's settings: one typed object that reads every SOTE_RISK_* environment variable.

Read at call time (never at import: BentoML's worker count is the one exception, see
serving/service.py) so tests and users can point a process elsewhere. An unknown SOTE_RISK_*
variable is refused with the list of known ones: a misspelt setting never silently does
nothing. Nothing here creates directories; callers that write create what they need.

| variable | setting | default |
|---|---|---|
| SOTE_RISK_HOME | home: the folder of data, stores and models | ./.sote-risk |
| SOTE_RISK_PROBLEMS | problems: comma list of problem ids to serve and run | every declared problem |
| SOTE_RISK_WORKERS | workers: worker processes of the service | 2 (one per core) |
| SOTE_RISK_CACHE_SIZE | cache_size: customers' scored rows (and SHAP rows) a worker caches | 512 |
| SOTE_RISK_CARD_SAMPLE | card_sample: customers a served model card's importance is computed on | 200 |
| SOTE_RISK_CRM_WEBHOOK_URL | crm_webhook_url: where alerts are delivered | none (alerts wait in the outbox) |
| SOTE_RISK_OPERATOR_WEBHOOK_URL | operator_webhook_url: where operator alerts (a monitored model breached its thresholds) are delivered | none (they wait in the outbox) |
| SOTE_RISK_CRM_MODE | crm_mode: the local CRM stand-in's start mode | ok |
| SOTE_RISK_PUBLIC_URL | public_url: the service's address as browsers and the CRM reach it (links in cards) | http://127.0.0.1:3000 |
| SOTE_RISK_LINK_DAYS | link_days: how long a signed page link in a card opens | 14 |
| SOTE_RISK_CRM_LANGUAGE | crm_language: the language of CRM cards (fi or en) | fi |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from base.errors import SoteRiskError

PREFIX = "SOTE_RISK_"
DEFAULT_HOME = ".sote-risk"


class SettingsError(SoteRiskError):
    """A SOTE_RISK_* variable that is unknown or holds a value its setting cannot take."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path = Path(DEFAULT_HOME)
    problems: tuple[str, ...] | None = None
    workers: int = Field(2, ge=1, le=64)
    cache_size: int = Field(512, ge=0, le=1_000_000)
    card_sample: int = Field(200, ge=0, le=100_000)
    crm_webhook_url: str | None = None
    operator_webhook_url: str | None = None
    crm_mode: str | None = None
    public_url: str = "http://127.0.0.1:3000"
    link_days: int = Field(14, ge=1, le=365)
    crm_language: Literal["fi", "en"] = "fi"

    @field_validator("problems", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            names = tuple(p.strip() for p in value.split(",") if p.strip())
            return names or None
        return value

    @property
    def layout(self) -> "HomeLayout":
        return HomeLayout(self.home)


def env_name(field: str) -> str:
    return PREFIX + field.upper()


def settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from the environment (or `environ`); unknown or bad values are one error
    naming the variable. An empty variable counts as unset."""
    environ = os.environ if environ is None else environ
    known = {env_name(name): name for name in Settings.model_fields}
    unknown = sorted(key for key in environ if key.startswith(PREFIX) and key not in known)
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
    values = {name: environ[key] for key, name in known.items() if environ.get(key, "").strip()}
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        item = error.errors()[0]
        name = str(item["loc"][0]) if item["loc"] else ""
        raise SettingsError(f"{env_name(name)}={values.get(name)!r}: {item['msg']}") from None


@dataclass(frozen=True)
class HomeLayout:
    """Every path inside the home folder, in one place."""

    root: Path

    @property
    def data(self) -> Path:  # the region's dataset (events, customers, truth)
        return self.root / "data"

    @property
    def interventions(self) -> Path:  # stored intervention estimates for the customer view's what-if
        return self.root / "interventions"

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
    def logs(self) -> Path:  # the command line's log (sote-risk.log), the demo's service logs, tracebacks
        return self.root / "logs"

    @property
    def link_secret(self) -> Path:  # signs page links in CRM cards (base/links.py)
        return self.root / "link_secret"

    @property
    def crm_webhook_secret(self) -> Path:  # signs webhook bodies to the CRM (alerts/webhook_signing.py)
        return self.root / "crm_webhook_secret"

    @property
    def monitoring(self) -> Path:  # the latest monitoring run per problem and alias (training/monitor_run.py): /ui/monitoring
        return self.root / "monitoring"

    @property
    def cache(self) -> Path:  # what one worker writes for the next to map (held histories, champion record); safe to delete
        return self.root / "cache"

    @property
    def mlflow_tracking_uri(self) -> str:
        """MLFLOW_TRACKING_URI wins (MLflow's own variable); otherwise SQLite in the home folder."""
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.mlflow_db.resolve()}"


def home() -> HomeLayout:
    return settings().layout


def quiet_third_parties() -> None:
    """No telemetry from the libraries we start (no network at run time except loopback)."""
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
