"""The code catalogue (codes.csv) and the fixed vocabularies of the contracts.

codes.csv ships inside the package and is read through importlib.resources, so it is found the
same way from a checkout, a wheel or a zip. It is read once per process (cached) and validated
against its own schema, so a broken catalogue fails loudly instead of silently passing events.
"""

from __future__ import annotations

import io
from functools import lru_cache
from importlib import resources

import pandas as pd

from data_contracts.regions import DEFAULT_REGION, REGIONS

# the model's municipalities: Eksote's (other regions' datasets: data_contracts/regions.py)
MUNICIPALITIES: tuple[str, ...] = REGIONS[DEFAULT_REGION].municipalities
SEXES: tuple[str, ...] = ("F", "M")
LANGUAGES: tuple[str, ...] = ("fi", "sv", "other")
# Why a label is missing. Death is not among them: death within the horizon before the outcome is
# a negative (a competing event; features/labels.py).
CENSOR_REASONS: tuple[str, ...] = ("moved_away", "extract_end")

DEATH_CODE = "DEATH"
DISCHARGE_CODE = "DISCHARGE"

# Paired services: opening codes -> the code that closes them. A close without an open one, or
# a second open while one is running, breaks the contract; an open one at extract end is fine.
# REMOTE/START, MEDROBOT/START and CARE24H/START have no end code (they end with death or moving).
PAIRED_SERVICES: dict[str, tuple[tuple[str, ...], str]] = {
    "hospital stay": (("ADMIT/UNPLANNED", "ADMIT/PLANNED"), DISCHARGE_CODE),
    "home care": (("HOMECARE/START",), "HOMECARE/END"),
    "home rehabilitation": (("REHAB/START",), "REHAB/END"),
    "child welfare open care": (("CHILDWELFARE/OPEN_CARE_START",), "CHILDWELFARE/OPEN_CARE_END"),
}

_CATALOGUE_DTYPES = {
    "code": "str",
    "service_area": "str",
    "description_en": "str",
    "description_fi": "str",
    "unit_cost_eur": "float64",
    "cost_basis": "str",
    "value_meaning": "str",
    "value_min": "float64",
    "value_max": "float64",
    "cost_source": "str",
}


@lru_cache(maxsize=1)
def _catalogue() -> pd.DataFrame:
    from data_contracts.schemas import catalogue_schema
    from data_contracts.validate import run_schema
    from data_contracts.errors import raise_if_any

    text = resources.files("data_contracts").joinpath("codes.csv").read_text(encoding="utf-8")
    frame = pd.read_csv(io.StringIO(text), dtype=_CATALOGUE_DTYPES, keep_default_na=False, na_values=[""])
    raise_if_any(run_schema(catalogue_schema(), frame, "codes.csv"))
    return frame


@lru_cache(maxsize=1)
def code_descriptions() -> dict[str, dict[str, str]]:
    """Each code's description as a person reads it, by language: {"en": {code: text}, "fi": {...}}
    (cached; read, do not change)."""
    table = _catalogue()
    return {"en": dict(zip(table["code"], table["description_en"])), "fi": dict(zip(table["code"], table["description_fi"]))}


def load_code_catalogue() -> pd.DataFrame:
    """The code catalogue, one row per code (validated, cached; callers get their own copy)."""
    return _catalogue().copy()


def known_codes() -> frozenset[str]:
    return frozenset(_catalogue()["code"])
