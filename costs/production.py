"""Models of service production and their cost per customer-day, from the services' START/END events.

A customer is in at most one model at a time, the first that holds in this order:
- `hospital`: a stay is open (ADMIT/UNPLANNED or ADMIT/PLANNED, until its DISCHARGE);
- `care24h`: CARE24H/START has happened (it has no end event);
- home care running (HOMECARE/START until HOMECARE/END) with a medication robot and remote visits
  (`home_care_remote_robot`), with a robot (`home_care_robot`), with remote visits
  (`home_care_remote`), or alone (`home_care`). REMOTE/START and MEDROBOT/START have no end event.
Every service ends with DEATH or MOVE/OUT (docs/INTERFACES.md: pairing). The state at an instant
is the state after every event at that instant, so a visit at the moment a service starts is in
the new model.

Per model and year: the customers who spent time in it, their customer-days inside the year, the
cost of the model's own service areas during those days (`own`) and of everything the customers
used during them (`all`), and both per customer-day. Costs are the events' `cost_eur` at their
time, except a DISCHARGE's, which covers the whole stay: it is spread evenly over the stay and
the year takes its share; a stay still open at the end of the data has no cost yet and its days
are left out. Where a service is priced per day in the catalogue but its events carry no cost
(24-hour care: CARE24H/START has no end and so no length to price), the catalogue's daily price is
added to the per-day figures and said so (`catalogue_daily_eur`); the annual totals of the other
tables stay the plain sum of the events' costs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.catalogue import load_code_catalogue
from features import History
from features.history import code_list

MODELS = ("home_care", "home_care_remote", "home_care_robot", "home_care_remote_robot", "care24h", "hospital")
OWN_AREAS = {
    "home_care": ("HOMECARE",),
    "home_care_remote": ("HOMECARE", "REMOTE"),
    "home_care_robot": ("HOMECARE", "MEDROBOT"),
    "home_care_remote_robot": ("HOMECARE", "REMOTE", "MEDROBOT"),
    "care24h": ("CARE24H",),
    "hospital": ("HOSPITAL",),
}
# a model whose own service is priced per day by a code whose events carry no cost
DAILY_PRICED = {"care24h": "CARE24H/START"}
ENDS = ("DEATH", "MOVE/OUT")
_NONE = -1
DAY_US = 86_400 * 1_000_000
COLUMNS = ("customers", "customer_days", "own_cost_eur", "all_cost_eur", "catalogue_daily_eur",
           "own_cost_per_day", "all_cost_per_day")


def _mask(code: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Rows whose code is one of `names` (a look-up table over the catalogue: one gather)."""
    table = np.zeros(len(code_list()), dtype=bool)
    table[[code_list().index(name) for name in names]] = True
    return table[code]


def _running(cust: np.ndarray, on: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Per row: the last of this customer's on/off rows at or before it is an `on` row."""
    index = np.where(on | off, np.arange(len(cust)), -1)
    np.maximum.accumulate(index, out=index)
    found = index >= 0
    found[found] = cust[index[found]] == cust[found]
    state = np.zeros(len(cust), dtype=bool)
    state[found] = on[index[found]]
    return state


def model_per_row(cust: np.ndarray, time: np.ndarray, code: np.ndarray) -> np.ndarray:
    """The model (index into MODELS, -1 none) each event's instant is in, after that instant's events
    (events sorted by customer and time, as features.History holds them)."""
    ends = _mask(code, ENDS)
    admit = _mask(code, ("ADMIT/UNPLANNED", "ADMIT/PLANNED"))
    stay = _running(cust, admit, _mask(code, ("DISCHARGE",)) | ends)
    care24h = _running(cust, _mask(code, ("CARE24H/START",)), ends)
    home = _running(cust, _mask(code, ("HOMECARE/START",)), _mask(code, ("HOMECARE/END",)) | ends)
    remote = _running(cust, _mask(code, ("REMOTE/START",)), ends)
    robot = _running(cust, _mask(code, ("MEDROBOT/START",)), ends)
    model = np.full(len(code), _NONE, dtype=np.int8)
    model[home] = MODELS.index("home_care")
    model[home & remote] = MODELS.index("home_care_remote")
    model[home & robot] = MODELS.index("home_care_robot")
    model[home & remote & robot] = MODELS.index("home_care_remote_robot")
    model[care24h] = MODELS.index("care24h")
    model[stay] = MODELS.index("hospital")
    # the state after every event of the instant: each row takes its instant's last row's model
    last = np.ones(len(code), dtype=bool)
    last[:-1] = (cust[1:] != cust[:-1]) | (time[1:] != time[:-1])
    last_row = np.flatnonzero(last)
    instant = np.cumsum(np.concatenate([[True], last[:-1]])) - 1
    return model[last_row[instant]]


def _overlap(start: np.ndarray, end: np.ndarray, low: int, high: int) -> np.ndarray:
    return np.clip(np.minimum(end, high) - np.maximum(start, low), 0, None)


def production_costs(history: History, cust: np.ndarray, area_of_code: np.ndarray, areas: list[str],
                     window: tuple[int, int], data_end: int) -> pd.DataFrame:
    """One row per model (MODELS order) for the year window [low, high) in microseconds (the
    module's docstring). `cust`: each event's customer position; `area_of_code`: code position ->
    index into `areas`."""
    low, high = window
    # only the customers who ever enter a model: a stay, home care or 24-hour care (the rest are in none)
    enters = np.zeros(history.n_customers, dtype=bool)
    enters[cust[_mask(history.code, ("ADMIT/UNPLANNED", "ADMIT/PLANNED", "HOMECARE/START", "CARE24H/START"))]] = True
    keep = enters[cust]
    code, time, cost, cust = history.code[keep], history.time[keep], history.cost[keep], cust[keep]
    if not len(code):
        empty = pd.DataFrame(0.0, index=pd.Index(MODELS, name="model"), columns=list(COLUMNS))
        empty["customers"] = 0
        empty[["own_cost_per_day", "all_cost_per_day"]] = np.nan
        return empty
    model = model_per_row(cust, time, code)
    n_models = len(MODELS)

    # time: from each instant's last row to the customer's next instant (or the end of the data)
    last = np.ones(len(code), dtype=bool)
    last[:-1] = (cust[1:] != cust[:-1]) | (time[1:] != time[:-1])
    rows = np.flatnonzero(last & (model != _NONE))
    following = np.flatnonzero(last)
    nxt = np.searchsorted(following, rows, side="right")
    has_next = nxt < len(following)
    nxt_row = following[np.minimum(nxt, len(following) - 1)]
    same = has_next & (cust[nxt_row] == cust[rows])
    until = np.where(same, time[nxt_row], data_end)
    spent = _overlap(time[rows], until, low, high).astype(np.float64)

    hospital = MODELS.index("hospital")
    discharge = _mask(code, ("DISCHARGE",))
    admit_rows = np.where(_mask(code, ("ADMIT/UNPLANNED", "ADMIT/PLANNED")), np.arange(len(code)), -1)
    np.maximum.accumulate(admit_rows, out=admit_rows)
    d_rows = np.flatnonzero(discharge)
    a_rows = admit_rows[d_rows]
    ok = (a_rows >= 0) & (cust[np.maximum(a_rows, 0)] == cust[d_rows])
    d_rows, a_rows = d_rows[ok], a_rows[ok]
    stay_start, stay_end = time[a_rows], time[d_rows]
    length = (stay_end - stay_start).astype(np.float64)
    stay_in_year = _overlap(stay_start, stay_end, low, high).astype(np.float64)
    instant_stay = (length == 0) & (stay_end >= low) & (stay_end < high)
    share = np.where(length > 0, stay_in_year / np.where(length > 0, length, 1.0), instant_stay.astype(np.float64))
    stay_cost = cost[d_rows] * share

    # days: hospital from the discharged stays (an open stay's cost is not known yet), others from the state
    not_hospital = model[rows] != hospital
    days_us = np.bincount(model[rows][not_hospital], weights=spent[not_hospital], minlength=n_models).astype(np.float64)
    days_us[hospital] = stay_in_year.sum()
    people = [np.unique(cust[rows][(model[rows] == m) & (spent > 0)]) for m in range(n_models)]
    people[hospital] = np.unique(cust[d_rows][stay_in_year > 0])

    # costs: each event's at its instant's model; a DISCHARGE's spread over its stay
    in_year = (time >= low) & (time < high) & (cost != 0) & ~discharge & (model != _NONE)
    area = area_of_code[code[in_year]]
    where = model[in_year]
    all_cost = np.bincount(where, weights=cost[in_year], minlength=n_models).astype(np.float64)
    all_cost[hospital] += stay_cost.sum()
    own_cost = np.zeros(n_models)
    for m, name in enumerate(MODELS):
        own = np.isin(area, [areas.index(a) for a in OWN_AREAS[name] if a in areas])
        own_cost[m] = cost[in_year][own & (where == m)].sum()
    own_cost[hospital] += stay_cost.sum()

    days = days_us / DAY_US
    daily = catalogue_daily(history)
    frame = pd.DataFrame({
        "customers": [len(p) for p in people],
        "customer_days": days,
        "own_cost_eur": own_cost,
        "all_cost_eur": all_cost,
        "catalogue_daily_eur": [daily.get(name, 0.0) for name in MODELS],
    }, index=pd.Index(MODELS, name="model"))
    safe = frame["customer_days"].where(frame["customer_days"] > 0)
    frame["own_cost_per_day"] = frame["own_cost_eur"] / safe + frame["catalogue_daily_eur"]
    frame["all_cost_per_day"] = frame["all_cost_eur"] / safe + frame["catalogue_daily_eur"]
    return frame[list(COLUMNS)]


def catalogue_daily(history: History) -> dict[str, float]:
    """The catalogue's daily price of each daily-priced service whose own events carry no cost in
    the data (if a real extract prices them, nothing is added: no cost is counted twice)."""
    catalogue = load_code_catalogue().set_index("code")
    out = {}
    for name, code_name in DAILY_PRICED.items():
        own = _mask(history.code, (code_name,))
        if history.cost[own].any():
            continue
        price = catalogue.loc[code_name, "unit_cost_eur"]
        if catalogue.loc[code_name, "cost_basis"] == "day" and price > 0:
            out[name] = float(price)
    return out
