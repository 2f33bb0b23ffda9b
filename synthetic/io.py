"""Writing a simulated dataset folder atomically (temporary sibling folder, then one rename).

    DIR/events.parquet, DIR/customers.parquet, DIR/dataset.json
    DIR/truth/risk.parquet, DIR/truth/latent.parquet, DIR/truth/interventions.parquet

Parquet files carry no pandas metadata and no timestamps, so the same seed gives the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sote_risk.errors import SoteRiskError
from synthetic.simulate import SimulatedDataset


class OutputError(SoteRiskError):
    """The output folder cannot be used."""


def check_output(out: str | os.PathLike[str]) -> Path:
    """Refuse an output folder that exists and is not empty, or whose parent is not writable."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()):
        raise OutputError(f"{path}: already exists and is not empty (choose a new folder)")
    parent = path.resolve().parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot write there ({probe} is not writable)")
    return path


@contextmanager
def atomic_folder(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling folder; it becomes `out` only if the block completes."""
    path = check_output(out)
    try:
        path.resolve().parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.resolve().parent))
        tmp.chmod(0o755)
    except OSError as error:
        raise OutputError(f"{path}: cannot write there ({error.strerror})") from None
    try:
        yield tmp
        if path.is_dir():
            path.rmdir()  # empty (checked above); a rename onto a folder needs it gone
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _table(frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.replace_schema_metadata(None)


def _write(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", write_statistics=True)


def write_simulated(dataset: SimulatedDataset, out: str | os.PathLike[str]) -> Path:
    """Write the dataset folder and its truth/ atomically; returns the folder."""
    with atomic_folder(out) as tmp:
        _write(dataset.events_table.replace_schema_metadata(None), tmp / "events.parquet")
        _write(_table(dataset.customers), tmp / "customers.parquet")
        (tmp / "dataset.json").write_text(json.dumps(dataset.metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        truth = tmp / "truth"
        truth.mkdir()
        _write(_table(dataset.risk), truth / "risk.parquet")
        _write(_table(dataset.latent), truth / "latent.parquet")
        _write(_table(dataset.interventions), truth / "interventions.parquet")
        (truth / "simulator_config.json").write_text(dataset.config.model_dump_json(indent=2) + "\n", encoding="utf-8")
        (truth / "README.txt").write_text(
            "Simulator ground truth. Only synthetic/ and oracle metrics read this folder; models never do.\n"
            "See synthetic/README.md for how true_probability is computed.\n", encoding="utf-8")
    return Path(out)
