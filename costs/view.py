"""The segment cost view: a year's costs and service use seen from customer segments and groups.

Pure: takes the region's histories (features.History, the arrays every scoring process holds) and
the data's span, returns frames. What each figure means:

- Cost is the events' `cost_eur`, counted in the year the event happened (a hospital stay's cost
  rides on its DISCHARGE): the region's total for a year is the plain sum of `cost_eur` over the
  year's events, and every customer's annual cost is the sum over their events in the year.
- Customers of the year: everyone living in the region at the end of some month of the year
  (features' `population`: born, alive, resident), and anyone with an event in the year.
- A customer-year is in a segment when the features' cohort rule (vocabulary/problems.yaml,
  features/cohorts.py) holds at the end of any month of the year (23:59:59.999999 on its last
  day, or the end of the data); it can be in several segments, so segment rows overlap and do not
  add up to the total. A segment's cost is its members' whole annual cost, in and out of the
  segment's services. `none`: customers of the year in no segment.
- Service use per service area (the catalogue's `service_area`): users (customers with an event
  of the area in the year), events and cost.
- Concentration: the share of the group's cost that its costliest 1 %, 5 % and 10 % of customers
  use (rounded up to whole customers; customers with no cost count in the base), and the curve of
  cumulative cost share against cumulative customer share, costliest first.
- Models of service production and their cost per customer-day: costs/production.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from costs.groups import CostInputError, Group, matching_codes
from costs.production import production_costs
from data_contracts.catalogue import load_code_catalogue
from features import History, cohort_columns
from features.history import code_list, to_micros
from vocabulary import vocabulary

TOP_PERCENTS = (1, 5, 10)
# records, not services: kept in the totals (they cost nothing in the catalogue), left out of service use
NOT_SERVICES = ("LIFE", "DIAGNOSIS", "MEDICATION")
CURVE_POINTS = 100
SEGMENT_COLUMNS = ("customers", "users", "events", "cost_eur", "cost_per_customer", "share_of_cost")


@dataclass(frozen=True)
class GroupCosts:
    """The costs of one customer group (a Group) in the year."""

    group: Group
    codes: tuple[str, ...]  # the catalogue codes its code patterns took
    summary: pd.Series  # SEGMENT_COLUMNS
    areas: pd.DataFrame  # per service area: users, events, cost_eur, share_of_cost
    concentration: pd.DataFrame  # per top percent: customers, cost_eur, share_of_cost
    curve: pd.DataFrame  # customer_share, cost_share
    other_diagnoses: pd.DataFrame  # per code: customers, share_of_customers (other diagnoses of its members)
    production: pd.DataFrame  # its members' models of service production (costs/production.py)


@dataclass(frozen=True)
class CostView:
    year: int
    start: pd.Timestamp  # the part of the year the data cover: [start, end)
    end: pd.Timestamp
    partial: bool  # the data cover only part of the year
    total_cost: float
    segments: pd.DataFrame  # index: all, every segment, none; SEGMENT_COLUMNS
    areas: pd.DataFrame  # index (row, service_area): users, events, cost_eur
    concentration: pd.DataFrame  # index (row, top_percent): customers, cost_eur, share_of_cost
    curve: pd.DataFrame  # the whole region's: customer_share, cost_share
    production: pd.DataFrame  # index model (costs/production.py)
    group: GroupCosts | None = None
    notes: list[str] = field(default_factory=list)


def years_of(start: pd.Timestamp, end: pd.Timestamp) -> list[int]:
    """The calendar years the data [start, end) touch."""
    last = (end - pd.Timedelta(microseconds=1)).year
    return list(range(start.year, last + 1)) if end > start else []


def default_year(start: pd.Timestamp, end: pd.Timestamp) -> int:
    """The last calendar year the data cover whole; else the last they touch."""
    whole = [y for y in years_of(start, end) if pd.Timestamp(y, 1, 1) >= start and pd.Timestamp(y + 1, 1, 1) <= end]
    return (whole or years_of(start, end) or [start.year])[-1]


def check_year(year: int | None, start: pd.Timestamp, end: pd.Timestamp) -> int:
    if year is None:
        return default_year(start, end)
    years = years_of(start, end)
    if int(year) not in years:
        span = f"{years[0]}..{years[-1]}" if years else "no year"
        raise CostInputError("year", year, f"outside the data (they cover {span}: {start:%Y-%m-%d} to {end:%Y-%m-%d})")
    return int(year)


def _micros(ts: pd.Timestamp) -> int:
    return int(to_micros([ts])[0])


def _month_ends(low: pd.Timestamp, high: pd.Timestamp) -> np.ndarray:
    """The last instant of every month in [low, high), the last one cut at high."""
    tick = pd.Timedelta(microseconds=1)
    ends = [m - tick for m in pd.date_range(low.normalize() + pd.offsets.MonthBegin(0), high, freq="MS") if low < m <= high]
    if not ends or ends[-1] < high - tick:
        ends.append(high - tick)
    return np.array([e.as_unit("us").asm8 for e in ends if e >= low], dtype="datetime64[us]")


def cost_view(history: History, start: pd.Timestamp, end: pd.Timestamp, year: int | None = None,
              group: Group | None = None) -> CostView:
    """The cost view of `year` (default: the last whole year of the data) and of `group`, if any.
    Bad input (a year outside the data) raises CostInputError naming the option."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    year = check_year(year, start, end)
    low, high = max(pd.Timestamp(year, 1, 1), start), min(pd.Timestamp(year + 1, 1, 1), end)
    codes = matching_codes(group.codes) if group is not None and group.codes else ()
    lo, hi = _micros(low), _micros(high)

    n = history.n_customers
    cust = np.repeat(np.arange(n, dtype=np.int64), np.diff(history.ptr))
    catalogue = load_code_catalogue().set_index("code")
    area_names = sorted(catalogue["service_area"].unique())
    area_of_code = np.array([area_names.index(catalogue.loc[c, "service_area"]) for c in code_list()], dtype=np.int64)
    n_areas = len(area_names)

    in_year = (history.time >= lo) & (history.time < hi)
    c_year, code_year = cust[in_year], history.code[in_year]
    cell = c_year * n_areas + area_of_code[code_year]
    cost_ca = np.bincount(cell, weights=history.cost[in_year], minlength=n * n_areas).reshape(n, n_areas)
    events_ca = np.bincount(cell, minlength=n * n_areas).reshape(n, n_areas)
    cost_c = cost_ca.sum(axis=1)
    had_event = np.bincount(c_year, minlength=n) > 0

    times = _month_ends(low, high)
    ids = np.repeat(history.subject_ids, len(times))
    cohorts = cohort_columns(history, ids, np.tile(times, n), population=True, span=(start, end))
    segments = list(vocabulary().segments)
    member = {s: cohorts[f"in_{s}"].reshape(n, len(times)).any(axis=1) for s in segments}
    of_year = cohorts["population"].reshape(n, len(times)).any(axis=1) | had_event
    member = {s: m & of_year for s, m in member.items()}
    in_any = np.zeros(n, dtype=bool)
    for m in member.values():
        in_any |= m
    rows = {"all": of_year, **member, "none": of_year & ~in_any}

    total = float(history.cost[in_year].sum())
    service = [i for i, a in enumerate(area_names) if a not in NOT_SERVICES]
    table = pd.DataFrame({name: _summary(mask, cost_c, events_ca[:, service], total) for name, mask in rows.items()}).T
    table.index.name = "row"
    table = _typed(table)
    areas = pd.concat({name: _areas(mask, cost_ca, events_ca, area_names, service) for name, mask in rows.items()},
                      names=["row", "service_area"])
    concentration = pd.concat({name: _concentration(cost_c[mask]) for name, mask in rows.items()}, names=["row", "top_percent"])
    production = production_costs(history, cust, area_of_code, area_names, (lo, hi), _micros(end))

    group_costs = None
    if group is not None:
        chosen = of_year.copy()
        if codes:
            wanted = np.isin(code_year, [code_list().index(c) for c in codes])
            chosen &= np.bincount(c_year[wanted], minlength=n) > 0
        if group.age is not None:
            age = year - history.birth_month_index // 12
            chosen &= (age >= group.age.low) & ((age <= group.age.high) if group.age.high is not None else True)
        if group.segment is not None:
            chosen &= member[group.segment]
        group_costs = GroupCosts(
            group=group, codes=codes, summary=pd.Series(_summary(chosen, cost_c, events_ca[:, service], total), dtype=object),
            areas=_areas(chosen, cost_ca, events_ca, area_names, service), concentration=_concentration(cost_c[chosen]),
            curve=_curve(cost_c[chosen]), other_diagnoses=_other_diagnoses(chosen, c_year, code_year, codes, n),
            production=_group_production(history, cust, chosen, area_of_code, area_names, (lo, hi), _micros(end)),
        )
    notes = []
    partial = low > pd.Timestamp(year, 1, 1) or high < pd.Timestamp(year + 1, 1, 1)
    if partial:
        notes.append(f"the data cover only {low:%Y-%m-%d} to {high - pd.Timedelta(microseconds=1):%Y-%m-%d} of {year}")
    return CostView(year=year, start=low, end=high, partial=partial, total_cost=total, segments=table, areas=areas,
                    concentration=concentration, curve=_curve(cost_c[of_year]), production=production, group=group_costs,
                    notes=notes)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    counts = ["customers", "users", "events"]
    return frame.astype({c: np.int64 for c in counts} | {c: np.float64 for c in frame.columns if c not in counts})


def _summary(mask: np.ndarray, cost_c: np.ndarray, service_events: np.ndarray, total: float) -> dict[str, float]:
    customers = int(mask.sum())
    cost = float(cost_c[mask].sum())
    return {
        "customers": customers,
        "users": int((mask & (cost_c > 0)).sum()),
        "events": int(service_events[mask].sum()),
        "cost_eur": cost,
        "cost_per_customer": cost / customers if customers else math.nan,
        "share_of_cost": cost / total if total else math.nan,
    }


def _areas(mask: np.ndarray, cost_ca: np.ndarray, events_ca: np.ndarray, names: list[str], service: list[int]) -> pd.DataFrame:
    cost = cost_ca[mask].sum(axis=0)
    total = cost.sum()
    frame = pd.DataFrame({
        "users": (events_ca[mask] > 0).sum(axis=0),
        "events": events_ca[mask].sum(axis=0),
        "cost_eur": cost,
        "share_of_cost": cost / total if total else np.full(len(names), math.nan),
    }, index=pd.Index(names, name="service_area"))
    return frame.iloc[service]


def _concentration(costs: np.ndarray) -> pd.DataFrame:
    ranked = np.sort(costs)[::-1]
    total = ranked.sum()
    out = {}
    for percent in TOP_PERCENTS:
        k = math.ceil(len(ranked) * percent / 100)
        top = float(ranked[:k].sum())
        out[percent] = {"customers": k, "cost_eur": top, "share_of_cost": top / total if total else math.nan}
    frame = pd.DataFrame(out).T
    frame.index.name = "top_percent"
    frame["customers"] = frame["customers"].astype(np.int64)
    return frame


def _curve(costs: np.ndarray, points: int = CURVE_POINTS) -> pd.DataFrame:
    """Cumulative share of cost against share of customers, costliest first (0..1 in `points` steps)."""
    ranked = np.sort(costs)[::-1]
    share = np.linspace(0, 1, points + 1)
    if not len(ranked) or ranked.sum() <= 0:
        return pd.DataFrame({"customer_share": share, "cost_share": np.full(len(share), math.nan)})
    cumulative = np.concatenate([[0.0], np.cumsum(ranked)]) / ranked.sum()
    k = np.ceil(share * len(ranked)).astype(np.int64)
    return pd.DataFrame({"customer_share": share, "cost_share": cumulative[k]})


def _other_diagnoses(mask: np.ndarray, c_year: np.ndarray, code_year: np.ndarray, own: tuple[str, ...], n: int,
                     top: int = 10) -> pd.DataFrame:
    """The diagnoses (service area DIAGNOSIS) the group's members had in the year besides its own codes."""
    catalogue = load_code_catalogue().set_index("code")
    diagnoses = [i for i, c in enumerate(code_list()) if catalogue.loc[c, "service_area"] == "DIAGNOSIS" and c not in own]
    size = int(mask.sum())
    keep = np.isin(code_year, diagnoses) & mask[c_year]
    pairs = np.unique(c_year[keep] * len(code_list()) + code_year[keep])
    counts = np.bincount(pairs % len(code_list()), minlength=len(code_list()))
    order = [i for i in np.argsort(-counts, kind="stable") if counts[i] > 0][:top]
    return pd.DataFrame({
        "customers": [int(counts[i]) for i in order],
        "share_of_customers": [counts[i] / size if size else math.nan for i in order],
    }, index=pd.Index([code_list()[i] for i in order], name="code"))


def _group_production(history: History, cust: np.ndarray, chosen: np.ndarray, area_of_code: np.ndarray,
                      areas: list[str], window: tuple[int, int], data_end: int) -> pd.DataFrame:
    """The models of service production of the group's members only."""
    positions = np.flatnonzero(chosen)
    if not len(positions):
        return production_costs(history.subset(positions), np.zeros(0, np.int64), area_of_code, areas, window, data_end)
    members = history.subset(positions)
    members_cust = np.repeat(np.arange(members.n_customers, dtype=np.int64), np.diff(members.ptr))
    return production_costs(members, members_cust, area_of_code, areas, window, data_end)
