"""Per-column contracts of every table that crosses a boundary, declared once (pandera).

Column dtypes, nullability and single-column value rules live here. Rules that need several
columns or several rows (a code's service area and value range, stays, birth and death) live in
rules.py, written with numpy because pandera's row-wise checks would be far too slow for
millions of events.

Schemas are built by functions (cached where they take no arguments) rather than at import, so
importing the package reads no files.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import pandas as pd

with warnings.catch_warnings():
    # pandera imports pyspark.pandas whenever pyspark is installed (the Spark engine, scaleout/,
    # needs it), and pyspark then warns that it does not fully support pandas >= 3. That is about
    # pandas-on-Spark, which nothing here uses; the Spark engine's own conversions are tested.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    import pandera.pandas as pa

from data_contracts.catalogue import (
    CENSOR_REASONS,
    LANGUAGES,
    SEXES,
    known_codes,
)
from data_contracts.regions import DEFAULT_REGION, REGIONS, Region

# Column order is part of the contract: readers and writers always produce these orders.
EVENT_COLUMNS: tuple[str, ...] = (
    "subject_id",
    "time",
    "code",
    "numeric_value",
    "service_area",
    "unit",
    "cost_eur",
)
CUSTOMER_COLUMNS: tuple[str, ...] = (
    "subject_id",
    "birth_year",
    "birth_month",
    "sex",
    "municipality",
    "language",
)
LABEL_COLUMNS: tuple[str, ...] = ("subject_id", "prediction_time", "boolean_value")
PREDICTION_COLUMNS: tuple[str, ...] = (
    "subject_id",
    "prediction_time",
    "problem",
    "segment",
    "predicted_boolean_probability",
)

TIME_DTYPE = "datetime64[us]"
MIN_BIRTH_YEAR = 1900


def _problem_check() -> pa.Check:
    """A problem id the vocabulary declares (<segment>-<outcome>, vocabulary/problems.yaml)."""
    from vocabulary import problem_ids

    return pa.Check.isin(problem_ids(), error=f"problem must be one of the declared problems: {', '.join(problem_ids())}")


def _segment_check() -> pa.Check:
    from vocabulary import vocabulary

    segments = tuple(vocabulary().segments)
    return pa.Check.isin(segments, error=f"segment must be one of {', '.join(segments)}")


def _subject_id() -> pa.Column:
    return pa.Column("int64", pa.Check.gt(0, error="subject_id must be > 0"), nullable=False)


@lru_cache(maxsize=1)
def events_schema() -> pa.DataFrameSchema:
    """Events: MEDS core columns plus service area, unit and cost (docs/INTERFACES.md)."""
    return pa.DataFrameSchema(
        {
            "subject_id": _subject_id(),
            "time": pa.Column(TIME_DTYPE, nullable=False),
            "code": pa.Column(
                str,
                pa.Check.isin(sorted(known_codes()), error="code must be in data_contracts/codes.csv"),
                nullable=False,
            ),
            "numeric_value": pa.Column("float64", nullable=True),
            "service_area": pa.Column(str, nullable=False),
            "unit": pa.Column(str, nullable=True),
            "cost_eur": pa.Column("float64", pa.Check.ge(0, error="cost_eur must be >= 0"), nullable=False),
        },
        strict=True,
        name="events",
    )


def customers_schema(max_birth_year: int, region: Region | None = None) -> pa.DataFrameSchema:
    """Customers: static attributes; births up to the extract year (given by the caller);
    municipalities of the dataset's region (default Eksote)."""
    municipalities = (region or REGIONS[DEFAULT_REGION]).municipalities
    where = (region or REGIONS[DEFAULT_REGION]).title
    return pa.DataFrameSchema(
        {
            "subject_id": pa.Column(
                "int64",
                [pa.Check.gt(0, error="subject_id must be > 0")],
                nullable=False,
                unique=True,
                report_duplicates="all",
            ),
            "birth_year": pa.Column(
                "int16",
                pa.Check.in_range(
                    MIN_BIRTH_YEAR, max_birth_year, error=f"birth_year must be in {MIN_BIRTH_YEAR}..{max_birth_year}"
                ),
                nullable=False,
            ),
            "birth_month": pa.Column("int8", pa.Check.in_range(1, 12, error="birth_month must be in 1..12"), nullable=False),
            "sex": pa.Column(str, pa.Check.isin(SEXES, error=f"sex must be one of {', '.join(SEXES)}"), nullable=False),
            "municipality": pa.Column(
                str,
                pa.Check.isin(municipalities, error=f"municipality must be one of the {len(municipalities)} municipalities of {where}"),
                nullable=False,
            ),
            "language": pa.Column(
                str, pa.Check.isin(LANGUAGES, error=f"language must be one of {', '.join(LANGUAGES)}"), nullable=False
            ),
        },
        strict=True,
        name="customers",
    )


def catalogue_schema() -> pa.DataFrameSchema:
    """codes.csv itself: unique codes, both descriptions, a cost basis, a sane value range."""
    return pa.DataFrameSchema(
        {
            "code": pa.Column(str, nullable=False, unique=True),
            "service_area": pa.Column(str, nullable=False),
            "description_en": pa.Column(str, nullable=False),
            "description_fi": pa.Column(str, nullable=False),
            "unit_cost_eur": pa.Column("float64", pa.Check.ge(0), nullable=False),
            "cost_basis": pa.Column(str, pa.Check.isin(["event", "day"]), nullable=False),
            "value_meaning": pa.Column(str, nullable=True),
            "value_min": pa.Column("float64", nullable=True),
            "value_max": pa.Column("float64", nullable=True),
            "cost_source": pa.Column(str, nullable=True),
        },
        checks=[
            pa.Check(
                lambda f: ~(f["value_min"] > f["value_max"]),
                error="value_min must be <= value_max",
            )
        ],
        strict=True,
        name="codes.csv",
    )


def _first_of_month(series: pd.Series) -> pd.Series:
    return series.dt.normalize().eq(series) & series.dt.day.eq(1)


def labels_schema() -> pa.DataFrameSchema:
    """MEDS label shape. boolean_value may be null only where the row is censored.

    Optional `problem` and `censor` columns carry which problem the label is for and why it is
    missing; any other column is refused, as in MEDS' own label schema.
    """
    return pa.DataFrameSchema(
        {
            "subject_id": _subject_id(),
            "prediction_time": pa.Column(
                TIME_DTYPE,
                pa.Check(_first_of_month, error="prediction_time must be the first day of a month at 00:00"),
                nullable=False,
            ),
            "boolean_value": pa.Column("boolean", nullable=True),
            "problem": pa.Column(
                str, _problem_check(), required=False
            ),
            "censor": _censor_column(),
        },
        checks=[
            pa.Check(
                lambda f: f["boolean_value"].notna() | (f["censor"].notna() if "censor" in f else False),
                error="boolean_value may be null only where censor says why",
            )
        ],
        strict=True,
        name="labels",
    )


def _censor_column() -> pa.Column:
    """Why a label is missing (optional in labels and predictions alike)."""
    return pa.Column(
        str, pa.Check.isin(CENSOR_REASONS, error=f"censor must be one of {', '.join(CENSOR_REASONS)}"),
        nullable=True,
        required=False,
    )


def predictions_schema() -> pa.DataFrameSchema:
    """Predictions: MEDS label shape plus probability, problem and segment.

    boolean_value (the outcome, when known) and censor are optional; other columns (model
    version, risk band, ...) are allowed so serving and evaluation can carry what they need.
    """
    return pa.DataFrameSchema(
        {
            "subject_id": _subject_id(),
            "prediction_time": pa.Column(TIME_DTYPE, nullable=False),
            "problem": pa.Column(
                str, _problem_check(), nullable=False
            ),
            "segment": pa.Column(
                str, _segment_check(), nullable=False
            ),
            "predicted_boolean_probability": pa.Column(
                "float64", pa.Check.in_range(0.0, 1.0, error="probability must be in 0..1"), nullable=False
            ),
            "boolean_value": pa.Column("boolean", nullable=True, required=False),
            "censor": _censor_column(),
        },
        checks=[
            pa.Check(
                lambda f: f["problem"].str.split("-").str[0].eq(f["segment"]),
                error="problem must start with its segment",
            )
        ],
        strict=False,
        name="predictions",
    )
