"""The code catalogue as the simulator sees it (codes.csv, read once) and organisational units."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
import importlib.util
from pathlib import Path

import numpy as np

from synthetic.config import MUNICIPALITY_NAMES

HOMECARE_TEAMS = {"Lappeenranta": 6, "Imatra": 3}  # one team elsewhere
# Psychiatric outpatient care sits in two places: the east (Imatra area) and the west.
EAST = {"Imatra", "Ruokolahti", "Rautjärvi", "Parikkala"}


# Codes the outcomes, stays, services, exits and the order of simultaneous events are read from:
# a coding change (config.CodingChange) may not touch them.
STRUCTURAL_CODES = frozenset({
    "ENC/EMERGENCY", "ADMIT/UNPLANNED", "ADMIT/PLANNED", "DISCHARGE", "HOMECARE/START", "HOMECARE/END",
    "REHAB/START", "REHAB/END", "REMOTE/START", "MEDROBOT/START", "CHILDWELFARE/OPEN_CARE_START",
    "CHILDWELFARE/OPEN_CARE_END", "CHILDWELFARE/PLACEMENT", "CARE24H/START", "DEATH", "MOVE/OUT", "MOVE/IN",
})


@dataclass(frozen=True)
class Catalogue:
    codes: tuple[str, ...]
    service_area: tuple[str, ...]
    unit_cost: np.ndarray
    per_day: np.ndarray  # cost_basis == "day"
    has_value: np.ndarray  # value_meaning given (the event carries a number)

    def index(self, code: str) -> int:
        return self.codes.index(code)


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    # Locate data_contracts without importing it (its __init__ pulls in pandera, ~1 s).
    spec = importlib.util.find_spec("data_contracts")
    folder = Path(next(iter(spec.submodule_search_locations)))
    text = (folder / "codes.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    return Catalogue(
        codes=tuple(r["code"] for r in rows),
        service_area=tuple(r["service_area"] for r in rows),
        unit_cost=np.array([float(r["unit_cost_eur"] or 0) for r in rows]),
        per_day=np.array([r["cost_basis"] == "day" for r in rows]),
        has_value=np.array([bool(r["value_meaning"]) for r in rows]),
    )


def recodable_codes() -> frozenset[str]:
    """Codes a coding change may rename or stop recording: plain events (no value, cost per event)
    that no outcome, stay, service episode, exit or event order is read from."""
    cat = catalogue()
    return frozenset(code for code, per_day, has_value in zip(cat.codes, cat.per_day, cat.has_value)
                     if not per_day and not has_value and code not in STRUCTURAL_CODES)


class C:
    """Code indices by name, resolved from the catalogue at first use."""

    _cache: dict[str, int] = {}

    @classmethod
    def of(cls, code: str) -> int:
        if code not in cls._cache:
            cls._cache[code] = catalogue().index(code)
        return cls._cache[code]


def region_units(municipalities: tuple[str, ...]) -> tuple[str, ...]:
    """units() with the simulated region's municipality names in place of Eksote's, position by
    position (the simulator's unit indices are laid out for Eksote's nine: another region's i-th
    municipality has the i-th one's teams and psychiatric unit). Same length as units()."""
    names = dict(zip(MUNICIPALITY_NAMES, municipalities))

    def rename(unit: str) -> str:
        parts = unit.split("/")
        return "/".join(names.get(part, part) if i == 1 else part for i, part in enumerate(parts))

    return tuple(rename(unit) for unit in units())


@lru_cache(maxsize=1)
def units() -> tuple[str, ...]:
    """Every organisational unit string the simulator emits (index 0 = no unit)."""
    out: list[str] = [""]
    out += ["EKKS/ER", "EKKS/WARD", "EKKS/EMS", "HOMECARE/REMOTE", "MEDROBOT/EKSOTE", "IOT/EKSOTE",
            "MENTAL/CRISIS", "MENTAL/Lappeenranta", "MENTAL/Imatra", "PHARMACY"]
    for mun in MUNICIPALITY_NAMES:
        out += [f"HC/{mun}", f"SOCIAL/{mun}", f"REHAB/{mun}", f"CHILDHEALTH/{mun}", f"SCHOOLHEALTH/{mun}",
                f"CHILDWELFARE/{mun}", f"CARE24H/{mun}"]
        out += [f"HOMECARE/{mun}/{team + 1}" for team in range(HOMECARE_TEAMS.get(mun, 1))]
    return tuple(out)


@lru_cache(maxsize=1)
def _unit_index() -> dict[str, int]:
    return {name: i for i, name in enumerate(units())}


def unit_id(name: str) -> int:
    return _unit_index()[name]


def municipal_units(prefix: str) -> np.ndarray:
    """Unit index per municipality index for a prefix like 'HC' -> 'HC/<municipality>'."""
    return np.array([unit_id(f"{prefix}/{mun}") for mun in MUNICIPALITY_NAMES], dtype="int32")


def homecare_team_units() -> tuple[np.ndarray, np.ndarray]:
    """(first team unit index per municipality, number of teams per municipality)."""
    first = np.array([unit_id(f"HOMECARE/{mun}/1") for mun in MUNICIPALITY_NAMES], dtype="int32")
    count = np.array([HOMECARE_TEAMS.get(mun, 1) for mun in MUNICIPALITY_NAMES], dtype="int32")
    return first, count


def mental_units() -> np.ndarray:
    return np.array([unit_id("MENTAL/Imatra" if mun in EAST else "MENTAL/Lappeenranta")
                     for mun in MUNICIPALITY_NAMES], dtype="int32")
