"""The one model-input builder: feature rows -> the float64 matrix a RiskModel's booster reads.

Every way rows reach a model goes through here: the feature path's arrays (scoring), a feature
frame (training, evaluation, the MLflow pyfunc), and one posted row (/predict_row). Each is first
a `FeatureBlock` (a float64 matrix, one row per customer and one column per feature, with
categoricals as codes into their category lists and NaN as missing), then `model_input` cuts the
model's columns out of it in the model's order and maps category codes to the model's own.

The matrix holds what LightGBM was trained on: a categorical column given as numbers is read as
its integer code, which is exactly the pandas category code of training; a missing value is NaN
either way. So every entry point gives the same probability, bit for bit.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from base.errors import SoteRiskError


class FeatureMismatchError(SoteRiskError):
    """Rows given to a model lack features it was trained on, or hold values it cannot read."""


class ModelInputs(Protocol):
    """What the builder needs of a model (RiskModel has it; so has Inputs, for training)."""

    problem: str
    feature_names: list[str]
    categories: dict[str, list[str]]


@dataclass(frozen=True)
class Inputs:
    """A model's inputs before the model exists (training builds its matrices with it)."""

    problem: str
    feature_names: list[str]
    categories: dict[str, list[str]]


@dataclass(frozen=True)
class FeatureBlock:
    """Feature rows; categories[name] is set for every categorical column."""

    names: tuple[str, ...]
    values: np.ndarray  # float64, shape (rows, len(names))
    categories: Mapping[str, tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def from_columns(cls, names: Sequence[str], columns: Mapping[str, np.ndarray],
                     categories: Mapping[str, tuple[str, ...]]) -> "FeatureBlock":
        """Arrays by name (categoricals as integer codes, negative = missing) -> a block."""
        n = len(columns[names[0]]) if names else 0
        values = np.empty((n, len(names)), dtype=np.float64)
        for j, name in enumerate(names):
            column = columns[name]
            if name in categories:
                codes = np.asarray(column, dtype=np.float64)
                values[:, j] = np.where(codes < 0, np.nan, codes)
            else:
                values[:, j] = column
        return cls(tuple(names), values, dict(categories))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, names: Sequence[str] | None = None,
                   categorical: Container[str] = (), problem: str = "model") -> "FeatureBlock":
        """A feature frame -> a block of `names` (default: every column but ids and version).

        A column is categorical when it has a pandas category dtype or is named in `categorical`
        (then its values are read as strings: a wire frame from JSON); anything else must be
        numeric. Missing columns and non-numeric values are errors naming the feature.
        """
        if names is None:
            names = [str(c) for c in frame.columns if c not in ("subject_id", "prediction_time", "pipeline_version")]
        require_features(frame.columns, names, problem)
        values = np.empty((len(frame), len(names)), dtype=np.float64)
        categories: dict[str, tuple[str, ...]] = {}
        for j, name in enumerate(names):
            column = frame[name]
            if isinstance(column.dtype, pd.CategoricalDtype):
                categories[name] = tuple(str(c) for c in column.cat.categories)
                codes = column.cat.codes.to_numpy()
                values[:, j] = np.where(codes < 0, np.nan, codes)
            elif name in categorical:
                strings = column.astype("string")
                seen = tuple(sorted(set(strings.dropna().unique())))
                categories[name] = seen
                lookup = {value: float(code) for code, value in enumerate(seen)}
                values[:, j] = [np.nan if v is pd.NA else lookup[v] for v in strings.tolist()]
            else:
                values[:, j] = _numeric(column, name, problem)
        return cls(tuple(names), values, categories)

    @classmethod
    def from_row(cls, features: Mapping[str, Any], model: ModelInputs) -> "FeatureBlock":
        """One posted row (name -> float, string or None) for this model's features, categoricals
        coded in the model's own category lists (an unknown value is an error naming it)."""
        require_features(features, model.feature_names, model.problem)
        values = []
        for name in model.feature_names:
            value = features[name]
            if value is None or (isinstance(value, float) and value != value):
                values.append(np.nan)
            elif name in model.categories:
                allowed = model.categories[name]
                if str(value) not in allowed:
                    raise FeatureMismatchError(
                        f"model {model.problem}: feature {name!r} has unknown categories {[str(value)]}; allowed: {allowed}")
                values.append(float(allowed.index(str(value))))
            else:
                try:
                    values.append(float(value))  # as numpy converts a frame's column (strings like "3.5" too)
                except (TypeError, ValueError):
                    raise FeatureMismatchError(f"model {model.problem}: feature {name!r} must be numeric") from None
        categories = {name: tuple(allowed) for name, allowed in model.categories.items()}
        return cls(tuple(model.feature_names), np.array([values], dtype=np.float64), categories)

    def take(self, positions: Sequence[int] | np.ndarray) -> "FeatureBlock":
        """These rows (a copy: a cached row must not keep a whole batch's matrix alive)."""
        return FeatureBlock(self.names, self.values[np.asarray(positions, dtype=np.int64)], self.categories)

    @staticmethod
    def stack(blocks: Sequence["FeatureBlock"]) -> "FeatureBlock":
        first = blocks[0]
        if len(blocks) == 1:
            return first
        if any(b.names != first.names or b.categories != first.categories for b in blocks[1:]):
            raise ValueError("feature blocks of different layouts cannot be stacked")
        return FeatureBlock(first.names, np.vstack([b.values for b in blocks]), first.categories)

    def plain_values(self, row: int, names: Sequence[str] | None = None) -> list[Any]:
        """One row's values as explanations show them: floats, category strings, None if missing
        (for `names`, default every column)."""
        columns = range(len(self.names)) if names is None else self._columns_of(tuple(names))
        values = self.values[row].tolist()
        out: list[Any] = [None if values[j] != values[j] else values[j] for j in columns]  # NaN -> None
        for i, j in enumerate(columns):
            name = self.names[j]
            if out[i] is not None and name in self.categories:
                out[i] = self.categories[name][int(out[i])]
        return out

    def _columns_of(self, names: tuple[str, ...]) -> list[int]:
        """Column positions of these names (cached per block and names: a model reads the same ones)."""
        cache = self.__dict__.setdefault("_columns_cache", {})
        found = cache.get(names)
        if found is None:
            positions = self._positions()
            found = cache[names] = [positions[n] for n in names]
        return found

    def position(self, name: str) -> int:
        return self._positions()[name]

    def _positions(self) -> dict[str, int]:
        found = self.__dict__.get("_position_cache")
        if found is None:
            found = {n: j for j, n in enumerate(self.names)}
            object.__setattr__(self, "_position_cache", found)
        return found

    def to_frame(self) -> pd.DataFrame:
        """The block as a feature frame (categoricals as pandas categoricals)."""
        data: dict[str, Any] = {}
        for j, name in enumerate(self.names):
            if name in self.categories:
                codes = np.where(np.isnan(self.values[:, j]), -1, self.values[:, j]).astype(np.int64)
                data[name] = pd.Categorical.from_codes(codes, categories=list(self.categories[name]))
            else:
                data[name] = self.values[:, j]
        return pd.DataFrame(data)


@dataclass(frozen=True)
class InputPlan:
    """How to cut a model's input out of a block of one layout: column positions, and per
    categorical column a lookup from the block's codes to the model's codes."""

    columns: np.ndarray
    remaps: tuple[tuple[int, np.ndarray], ...]  # (model column, lookup: block code -> model code, or _UNKNOWN)


_UNKNOWN = -2.0  # a block category the model was not trained on (refused when met)


def input_plan(model: ModelInputs, block: FeatureBlock) -> InputPlan:
    positions = block._positions()
    require_features(positions, model.feature_names, model.problem)
    remaps = []
    for column, name in enumerate(model.feature_names):
        if name in model.categories:
            model_codes = {value: float(code) for code, value in enumerate(model.categories[name])}
            block_categories = block.categories.get(name)
            if block_categories is None:
                raise FeatureMismatchError(f"model {model.problem}: feature {name!r} must be categorical")
            remaps.append((column, np.array([model_codes.get(str(v), _UNKNOWN) for v in block_categories], dtype=np.float64)))
        elif name in block.categories:
            raise FeatureMismatchError(f"model {model.problem}: feature {name!r} must be numeric")
    return InputPlan(np.array([positions[n] for n in model.feature_names], dtype=np.int64), tuple(remaps))


def model_input(model: ModelInputs, block: FeatureBlock, plan: InputPlan | None = None) -> np.ndarray:
    """The model's float64 input matrix for the block's rows (plan: input_plan's, reusable for
    blocks of one layout). A category the model was not trained on is an error naming it."""
    plan = plan or input_plan(model, block)
    matrix = block.values[:, plan.columns]  # fancy indexing: a fresh C-ordered copy
    for column, lookup in plan.remaps:
        codes = matrix[:, column]
        known = ~np.isnan(codes)
        block_codes = codes[known].astype(np.int64)
        mapped = lookup[block_codes]
        if (mapped == _UNKNOWN).any():
            name = model.feature_names[column]
            shown = block.categories[name]
            unknown = sorted({shown[c] for c in block_codes[mapped == _UNKNOWN]})
            raise FeatureMismatchError(
                f"model {model.problem}: feature {name!r} has unknown categories {unknown[:5]}; allowed: {model.categories[name]}")
        codes[known] = mapped
        matrix[:, column] = codes
    return matrix


def require_features(present: Container[str], feature_names: Sequence[str], problem: str) -> None:
    """Refuse an input that lacks any of the model's features, naming up to 10."""
    missing = [name for name in feature_names if name not in present]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise FeatureMismatchError(f"model {problem}: input lacks {len(missing)} feature(s) it was trained on: {shown}")


def _numeric(column: pd.Series, name: str, problem: str) -> np.ndarray:
    try:
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise FeatureMismatchError(f"model {problem}: feature {name!r} must be numeric") from None
