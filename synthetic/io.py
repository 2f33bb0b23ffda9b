"""Writing a simulated dataset folder atomically (temporary sibling folder, then one rename).

    DIR/events.parquet, DIR/customers.parquet, DIR/dataset.json
    DIR/truth/risk.parquet, DIR/truth/latent.parquet, DIR/truth/interventions.parquet

Parquet files carry no pandas metadata and no timestamps, so the same seed gives the same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from base.atomic import OutputError, atomic_directory, check_output  # noqa: F401 (re-exported for the CLI)
from synthetic.simulate import SimulatedDataset


def _table(frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.replace_schema_metadata(None)


def _write(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", write_statistics=True)


def write_simulated(dataset: SimulatedDataset, out: str | os.PathLike[str]) -> Path:
    """Write the dataset folder and its truth/ atomically; returns the folder."""
    with atomic_directory(out) as tmp:
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
