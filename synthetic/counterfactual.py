"""The counterfactual twin of a simulated dataset: the same region with one intervention's effect off.

An intervention's true effect on the people who started it is the difference between their
history as simulated and their history had the intervention done nothing. `simulate(config,
effects_off=(name,))` gives the second: the burn-in, the hazard norms and every random number are
the factual run's, so each customer's latent path, ER visit counts and admissions are the factual
ones until an effect of theirs starts (synthetic/README.md, "Intervention rules and effects").

This module is the simulator reading its own truth (DIR/truth/simulator_config.json): callers get
the twin's events, never the truth folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from base.errors import SoteRiskError
from synthetic.config import SimulatorConfig
from synthetic.simulate import SIMULATOR_VERSION, simulate

# The CLI's intervention names -> the simulator's effect names (SimulatorConfig.without_effect).
EFFECT_NAMES: dict[str, str] = {
    "remote_visits": "remote",
    "medication_robot": "medrobot",
    "home_rehabilitation": "rehab",
}


class NoTwinError(SoteRiskError):
    """The dataset has no simulator truth to rebuild its counterfactual twin from."""


def simulated_config(directory: str | os.PathLike[str]) -> SimulatorConfig:
    """The config a simulated dataset folder was made with (DIR/truth/simulator_config.json), checked
    to be reproducible by this simulator version; NoTwinError when it is not a simulated dataset."""
    root = Path(directory)
    path = root / "truth" / "simulator_config.json"
    if not path.is_file():
        raise NoTwinError(f"{root} has no simulator truth (truth/simulator_config.json): not simulated data")
    try:
        version = json.loads((root / "dataset.json").read_text(encoding="utf-8")).get("simulator_version")
    except (OSError, ValueError):
        version = None
    if version != SIMULATOR_VERSION:
        raise NoTwinError(f"{root} was simulated by simulator {version}, this is {SIMULATOR_VERSION}: its twin "
                          "would not be the same region")
    try:
        return SimulatorConfig.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise NoTwinError(f"{path}: not a config this simulator reads ({str(error).splitlines()[0]})") from None


def counterfactual_events(config: SimulatorConfig, intervention: str) -> pd.DataFrame:
    """The events of the dataset simulated with `config`, had `intervention` (remote_visits,
    medication_robot, home_rehabilitation) had no effect from the extract start on."""
    if intervention not in EFFECT_NAMES:
        raise ValueError(f"unknown intervention {intervention!r}")
    return simulate(config, effects_off=(EFFECT_NAMES[intervention],)).events
