"""A record of the champions last resolved in the home's registry, so that a worker starting later
(the replacement of a killed worker, the second of two, a reload with nothing promoted) loads them
from their folders without importing MLflow: MLflow, SQLAlchemy and alembic, the pyfunc copy
and its requirement checks are seconds of a worker's start, to be told what nobody changed.

The registry stays the truth. The record names the state of the registry it was read from: the
SQLite file's identity and its change counter (the 4 bytes at offset 24 of the header, which
SQLite increments at every committed write in rollback-journal mode, MLflow's), and counts only
while that state is the same. A promotion, a new version, a changed tag, a moved home: any write
to the registry, and the next load asks MLflow again and writes a new record. A tracking server
(MLFLOW_TRACKING_URI) or a store in WAL mode (whose writes need not move the counter) is never
recorded. The models load from the very files the registry's versions hold (models/files.py,
what the pyfunc wrapper copies and reads), each checked unchanged since it was recorded.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from base.atomic import atomic_write_text
from base.private import PRIVATE_UMASK
from models.files import FILES, load_risk_model
from models.risk_model import RiskModel

FORMAT = 1
FILE_NAME = "champions.json"
SQLITE_MAGIC = b"SQLite format 3\x00"

log = logging.getLogger("sote_risk.scoring")


def record_file(cache: Path) -> Path:
    return Path(cache) / FILE_NAME


def registry_state() -> dict[str, Any] | None:
    """The home's SQLite registry as it is now (None: not the home's store, or one whose writes
    this cannot see: WAL mode, unreadable)."""
    from base.settings import home
    from models.registry import is_home_store

    layout = home()
    if not is_home_store(layout.mlflow_tracking_uri):
        return None
    db = layout.mlflow_db.resolve()
    try:
        with open(db, "rb") as handle:
            header, info = handle.read(100), os.fstat(handle.fileno())
        wal = db.with_name(db.name + "-wal")
        if wal.exists() and wal.stat().st_size:
            return None
    except OSError:
        return None
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC) or 2 in (header[18], header[19]):  # 2: WAL
        return None
    return {"path": str(db), "device": info.st_dev, "inode": info.st_ino, "size": info.st_size,
            "mtime_ns": info.st_mtime_ns, "changes": int.from_bytes(header[24:28], "big")}


def _files(folder: Path) -> list[list[Any]]:
    return [[name, (info := (folder / name).stat()).st_size, info.st_mtime_ns, info.st_ino] for name in FILES]


def write_record(cache: Path, state: Mapping[str, Any], pipeline_version: str,
                 champions: Mapping[str, tuple[str, Path, Mapping[str, str]]]) -> None:
    """Record `champions` (problem -> registry version, its local folder, its tags) as read from
    the registry in `state` (taken before it was read). Best effort: without a record the next
    worker asks MLflow, as every worker did before."""
    path = record_file(cache)
    try:
        record = {"format": FORMAT, "registry": dict(state), "pipeline_version": pipeline_version,
                  "champions": {problem: {"version": version, "folder": str(folder), "files": _files(folder), "tags": dict(tags)}
                                for problem, (version, folder, tags) in champions.items()}}
        path.parent.mkdir(mode=0o777 & ~PRIVATE_UMASK, parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(record, indent=1), mode=0o666 & ~PRIVATE_UMASK)
    except OSError as error:
        log.warning("champion record not written to %s (%s): each worker asks the registry", path, error)


def read_record(cache: Path, problems: Sequence[str], pipeline_version: str) -> dict[str, tuple[RiskModel, dict[str, str]]] | None:
    """The recorded champions of `problems` (problem -> model stamped with its version, tags) if
    the record was read from the registry as it is now, for these problems and this pipeline,
    and their files are unchanged; else None (the caller asks the registry)."""
    path = record_file(cache)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("champion record %s unreadable (%s): asking the registry", path, error)
        return None
    state = registry_state()
    recorded = record.get("champions") if isinstance(record, dict) else None
    if (state is None or record.get("format") != FORMAT or record.get("registry") != state
            or record.get("pipeline_version") != pipeline_version or not isinstance(recorded, dict)
            or sorted(recorded) != sorted(problems)):
        return None
    loaded = {}
    try:
        for problem in problems:
            entry, folder = recorded[problem], Path(recorded[problem]["folder"])
            if _files(folder) != entry["files"]:
                return None
            model = load_risk_model(folder)
            if model.problem != problem or model.pipeline_version != pipeline_version:
                return None
            # as models.registry.load_model stamps a model it loads by alias
            model.metadata = {**model.metadata, "model_version": str(entry["version"]), "alias": "champion"}
            loaded[problem] = (model, {str(k): str(v) for k, v in entry["tags"].items()})
    except Exception as error:  # noqa: BLE001 (a bad record or folder, whatever it raises, is a miss: the registry is asked)
        log.warning("champion record %s not usable (%s): asking the registry", path, error)
        return None
    return loaded
