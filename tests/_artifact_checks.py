"""What a logged model's input examples may hold (issue 16): made-up rows, never a customer's.

`logged_examples` reads MLflow's `input_example.json` and `serving_input_example.json` of a
registered model; `assert_no_customer_in` checks their rows against every real feature row and
their text against every real customer id."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd


def logged_examples(model_uri: str, into: Path) -> tuple[pd.DataFrame, str]:
    """The model's input example as a frame, and both example files' text."""
    import mlflow

    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(into)))
    example = json.loads((folder / "input_example.json").read_text())
    serving = json.loads((folder / "serving_input_example.json").read_text())
    assert serving["dataframe_split"]["data"] == example["data"]
    frame = pd.DataFrame(example["data"], columns=example["columns"])
    return frame, (folder / "input_example.json").read_text() + (folder / "serving_input_example.json").read_text()


def _key(values) -> tuple:  # noqa: ANN001
    return tuple(None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values)


def assert_no_customer_in(example: pd.DataFrame, text: str, real_rows: pd.DataFrame, customer_ids) -> None:  # noqa: ANN001
    """No example row equals a real feature row (on the example's columns), and no number in the
    example files is a real customer id."""
    real = {_key(row) for row in real_rows[list(example.columns)].astype(object).itertuples(index=False)}
    for row in example.astype(object).itertuples(index=False):
        assert _key(row) not in real, "an input example row is a real customer's feature row"
    numbers = {float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)}
    assert not numbers & {float(s) for s in customer_ids}, "a real customer id in the input example"
