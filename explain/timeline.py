"""A customer's history over a span, lane by lane: what the coordinator's view draws (serving/pages.py,
explain/timeline_svg.py).

Pure functions over the feature path's arrays (features.History): one customer's events are read
once, each event goes to exactly one lane by its code (`LANES` covers every code of the catalogue:
tests check it), and each lane's marks carry how many of the lane's events inside the span they
stand for (`Mark.events`), so the sum over a lane's marks is the plain count of its events in the
span. The span is [start, end], both ends included (an event at `end` counts, as features at
`end` read it).

Mark kinds: `tick` one event; `period` a service or stay running from one event to another (its
START/ADMIT and END/DISCHARGE inside the span are its events; a period that began before the span
or runs on past it is clipped and carries the events it has inside); `month` a calendar month's
count of a frequent event (home care visits, remote video visits, robot doses), with its summed
values; `value` a scored measure (PHQ-9); `group` the items of one assessment recorded at one
instant (interRAI); `supply` a medicine dispensed, drawn for the days it was supplied.

`running(...)` lists the services and interventions running at `end` and since when, from the
whole history before it (not only the span).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd

from features import History
from features.history import code_list

Language = Literal["fi", "en"]
MarkKind = Literal["tick", "period", "month", "value", "group", "supply"]
US_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True)
class Lane:
    key: str
    en: str
    fi: str
    prefixes: tuple[str, ...]  # codes equal to one of these, or starting with it when it ends with "/"


# Every code of data_contracts/codes.csv is in exactly one lane (the first whose prefix matches).
LANES: tuple[Lane, ...] = (
    Lane("contacts", "Visits and assessments", "Käynnit ja arvioinnit",
         ("ENC/HC_DOCTOR", "ENC/HC_NURSE", "ENC/CHILD_HEALTH", "ENC/SCHOOL_HEALTH", "ENC/MISSED_APPOINTMENT", "ASSESS/")),
    Lane("remote_contacts", "Remote contacts", "Etäasiointi", ("ENC/HC_REMOTE",)),
    Lane("mental", "Mental health contacts", "Mielenterveyskäynnit", ("ENC/PSYCHIATRY", "ENC/CRISIS")),
    Lane("emergency", "Emergency visits", "Päivystyskäynnit", ("ENC/EMERGENCY", "ENC/PARAMEDIC")),
    Lane("hospital", "Hospital stays", "Sairaalajaksot", ("ADMIT/", "DISCHARGE")),
    Lane("homecare", "Home care visits / month", "Kotihoitokäynnit / kk", ("HOMECARE/",)),
    Lane("remote", "Remote video visits / month", "Etäkäynnit / kk", ("REMOTE/",)),
    Lane("medrobot", "Medication robot", "Lääkerobotti", ("MEDROBOT/",)),
    Lane("iot", "Sensor alarms", "Anturihälytykset", ("IOT/",)),
    Lane("rehab", "Home rehabilitation", "Kotikuntoutus", ("REHAB/",)),
    Lane("care24h", "24-hour care", "Ympärivuorokautinen hoito", ("CARE24H/",)),
    Lane("informal_care", "Informal care support", "Omaishoidon tuki", ("SOCIAL/",)),
    Lane("interrai", "interRAI assessments", "interRAI-arvioinnit", ("RAI/",)),
    Lane("phq9", "PHQ-9 (depression, 0–27)", "PHQ-9 (masennus, 0–27)", ("PHQ9",)),
    Lane("medication", "Medicines dispensed", "Toimitetut lääkkeet", ("MED/",)),
    Lane("diagnoses", "Diagnoses", "Diagnoosit", ("ICD10/", "ICPC2/")),
    Lane("child_welfare", "Child welfare", "Lastensuojelu", ("CHILDWELFARE/",)),
    Lane("life", "Moves and death", "Muutot ja kuolema", ("DEATH", "MOVE/")),
)
LANE_KEYS = tuple(lane.key for lane in LANES)

# (start code, end codes) of the periods each lane draws; DEATH and MOVE/OUT end every one of them.
PERIODS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hospital": (("ADMIT/UNPLANNED", "ADMIT/PLANNED"), ("DISCHARGE",)),
    "homecare": (("HOMECARE/START",), ("HOMECARE/END",)),
    "remote": (("REMOTE/START",), ()),
    "medrobot": (("MEDROBOT/START",), ()),
    "rehab": (("REHAB/START",), ("REHAB/END",)),
    "care24h": (("CARE24H/START",), ()),
    "child_welfare": (("CHILDWELFARE/OPEN_CARE_START",), ("CHILDWELFARE/OPEN_CARE_END",)),
}
ENDS_ALL = ("DEATH", "MOVE/OUT")
MONTHLY = {"HOMECARE/VISIT", "REMOTE/VIDEO_VISIT", "MEDROBOT/DISPENSE"}  # counted per month, not drawn one by one
VALUES = {"PHQ9"}

# Words of the running-services list (the lane words name the lanes).
RUNNING_WORDS = {
    "en": {"ADMIT/UNPLANNED": "In hospital (unplanned stay)", "ADMIT/PLANNED": "In hospital (planned stay)",
           "HOMECARE/START": "Regular home care", "REMOTE/START": "Remote home care visits",
           "MEDROBOT/START": "Medication robot", "REHAB/START": "Home rehabilitation",
           "CARE24H/START": "Service housing around the clock (24-hour)", "CHILDWELFARE/OPEN_CARE_START": "Child welfare open care",
           "SOCIAL/INFORMAL_CARE_FEE": "Informal care support"},
    "fi": {"ADMIT/UNPLANNED": "Sairaalassa (päivystyksellinen jakso)", "ADMIT/PLANNED": "Sairaalassa (suunniteltu jakso)",
           "HOMECARE/START": "Säännöllinen kotihoito", "REMOTE/START": "Kotihoidon etäkäynnit",
           "MEDROBOT/START": "Lääkerobotti", "REHAB/START": "Kotikuntoutus",
           "CARE24H/START": "Ympärivuorokautinen palveluasuminen", "CHILDWELFARE/OPEN_CARE_START": "Lastensuojelun avohuolto",
           "SOCIAL/INFORMAL_CARE_FEE": "Omaishoidon tuki"},
}
INFORMAL_CARE_GAP_DAYS = 45  # a monthly fee paid within this many days: the support is running


@lru_cache(maxsize=1)
def lane_of_code() -> np.ndarray:
    """Per catalogue code position: the index of its lane in LANES (-1: none, never for the catalogue)."""
    out = np.full(len(code_list()), -1, dtype=np.int16)
    for position, code in enumerate(code_list()):
        for k, lane in enumerate(LANES):
            if any(code == p or (p.endswith("/") and code.startswith(p)) for p in lane.prefixes):
                out[position] = k
                break
    return out


def lane_codes(key: str) -> list[str]:
    """The catalogue codes drawn on a lane."""
    index = LANE_KEYS.index(key)
    return [code for position, code in enumerate(code_list()) if lane_of_code()[position] == index]


@dataclass(frozen=True)
class Mark:
    lane: str
    kind: MarkKind
    start: pd.Timestamp
    end: pd.Timestamp | None  # periods, months and supplies; None for an instant
    events: int  # the lane's events inside the span this mark stands for
    codes: tuple[str, ...]  # the codes of those events (a period: its start code first)
    value: float | None = None  # month: the values' sum (minutes, doses); value: the score; supply: days
    items: tuple[tuple[str, float], ...] = ()  # group: (code, value) of each item
    open_start: bool = False  # period: began before the span
    open_end: bool = False  # period: still running at the span's end


@dataclass(frozen=True)
class Running:
    """A service or intervention running at the view's date."""

    code: str  # its start code (or SOCIAL/INFORMAL_CARE_FEE, MED/...)
    since: pd.Timestamp
    since_data_start: bool  # it was running when the data begin: "since at least"
    until: pd.Timestamp | None = None  # a medicine's supply: until when


@dataclass(frozen=True)
class Timeline:
    subject_id: int
    start: pd.Timestamp
    end: pd.Timestamp
    months: tuple[pd.Timestamp, ...]  # first day of each calendar month the span touches
    lanes: dict[str, list[Mark]] = field(default_factory=dict)  # only lanes with something to draw, in LANES order
    running: list[Running] = field(default_factory=list)

    def events_in(self, lane: str) -> int:
        return sum(m.events for m in self.lanes.get(lane, []))


def _ts(micros: int) -> pd.Timestamp:
    return pd.Timestamp(int(micros), unit="us")


def _micros(ts: pd.Timestamp) -> int:
    return int(pd.Timestamp(ts).value // 1000)


def month_starts(start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    first = pd.Timestamp(start).normalize().replace(day=1)
    out = []
    while first <= end:
        out.append(first)
        first = first + pd.DateOffset(months=1)
    return out


def customer_timeline(history: History, subject_id: int, start: pd.Timestamp, end: pd.Timestamp,
                      data_start: pd.Timestamp | None = None) -> Timeline:
    """The customer's marks over [start, end] and what runs at `end` (data_start: where the data
    begin, to say "since at least" of a service already running then)."""
    index = int(history.customer_index(np.array([subject_id]))[0])
    rows = slice(int(history.ptr[index]), int(history.ptr[index + 1]))
    times, codes, values = history.time[rows], history.code[rows].astype(np.int64), history.value[rows]
    names = code_list()
    lo, hi = _micros(start), _micros(end)
    upto = int(np.searchsorted(times, hi, side="right"))  # events at or before `end`
    first_in = int(np.searchsorted(times, lo, side="left"))
    lanes_of = lane_of_code()[codes]
    months = month_starts(start, end)
    found: dict[str, list[Mark]] = {}

    def add(mark: Mark) -> None:
        found.setdefault(mark.lane, []).append(mark)

    periods = _periods(times[:upto], codes[:upto], names)
    for lane_key, spans in periods.items():
        for code, begin, finish, made in spans:
            if finish is not None and finish < lo or begin > hi:
                continue
            inside = [c for t, c in made if lo <= t <= hi]
            add(Mark(lane_key, "period", _ts(max(begin, lo)), _ts(min(finish, hi)) if finish is not None else _ts(hi),
                     len(inside), (code, *[c for c in inside if c != code]), open_start=begin < lo,
                     open_end=finish is None or finish > hi))
    period_codes = {c for starts, ends in PERIODS.values() for c in (*starts, *ends)}

    # frequent events per calendar month
    edges = np.array([_micros(max(m, start)) for m in months] + [hi + 1], dtype=np.int64)
    window = slice(first_in, upto)
    for code in sorted(MONTHLY):
        position = names.index(code)
        chosen = np.flatnonzero(codes[window] == position) + first_in
        if not len(chosen):
            continue
        bins = np.searchsorted(edges, times[chosen], side="right") - 1
        lane_key = LANE_KEYS[lane_of_code()[position]]
        for b in np.unique(bins):
            inside = chosen[bins == b]
            total = float(np.nansum(values[inside]))
            add(Mark(lane_key, "month", months[b], months[b] + pd.DateOffset(months=1), len(inside), (code,), value=total))

    # everything else in the span, one by one (assessment items grouped per instant)
    groups: dict[int, list[tuple[str, float]]] = {}
    for row in range(first_in, upto):
        code = names[codes[row]]
        if code in MONTHLY or code in period_codes:
            continue
        lane_key = LANE_KEYS[lanes_of[row]]
        when = _ts(times[row])
        value = None if np.isnan(values[row]) else float(values[row])
        if lane_key == "interrai":
            groups.setdefault(int(times[row]), []).append((code, value if value is not None else float("nan")))
        elif code in VALUES:
            add(Mark(lane_key, "value", when, None, 1, (code,), value=value))
        elif lane_key == "medication":
            days = value or 1.0
            add(Mark(lane_key, "supply", when, when + pd.Timedelta(days=days), 1, (code,), value=days))
        else:
            add(Mark(lane_key, "tick", when, None, 1, (code,), value=value))
    for micros, items in sorted(groups.items()):
        add(Mark("interrai", "group", _ts(micros), None, len(items), tuple(c for c, _ in items), items=tuple(items)))
    ordered = {key: sorted(found[key], key=lambda m: (m.start, m.kind)) for key in LANE_KEYS if key in found}
    first_data = _micros(data_start) if data_start is not None else (int(times[0]) if len(times) else lo)
    return Timeline(int(subject_id), pd.Timestamp(start), pd.Timestamp(end), tuple(months), ordered,
                    running_at(periods, times[:upto], codes[:upto], values[:upto], names, hi, first_data))


def _periods(times: np.ndarray, codes: np.ndarray, names: Sequence[str]) -> dict[str, list[tuple[str, int, int | None, list[tuple[int, str]]]]]:
    """Per lane: every period of the history up to the view's end as (start code, begin micros,
    end micros or None while running, (micros, code) of the lane's events that make it: its start,
    a repeated start while it runs, its end; never DEATH or MOVE/OUT, which are the life lane's)."""
    out: dict[str, list[tuple[str, int, int | None, list[tuple[int, str]]]]] = {}
    position = {code: i for i, code in enumerate(names)}
    ends_all = {position[c] for c in ENDS_ALL}
    for lane_key, (start_codes, end_codes) in PERIODS.items():
        starts, ends = {position[c] for c in start_codes}, {position[c] for c in end_codes}
        open_at: int | None = None
        opened_by = start_codes[0]
        made: list[tuple[int, str]] = []
        for t, c in zip(times.tolist(), codes.tolist()):
            if c in starts:
                if open_at is None:
                    open_at, opened_by = t, names[c]
                made.append((t, names[c]))
            elif open_at is not None and (c in ends or c in ends_all):
                out.setdefault(lane_key, []).append((opened_by, open_at, t, made + ([(t, names[c])] if c in ends else [])))
                open_at, made = None, []
            elif c in ends:  # an end with nothing open: still the lane's event
                out.setdefault(lane_key, []).append((names[c], t, t, [(t, names[c])]))
        if open_at is not None:
            out.setdefault(lane_key, []).append((opened_by, open_at, None, made))
    return out


def running_at(periods: dict[str, list[tuple[str, int, int | None, list[tuple[int, str]]]]], times: np.ndarray, codes: np.ndarray,
               values: np.ndarray, names: Sequence[str], at: int, data_start: int) -> list[Running]:
    """Services running at `at` (periods open then), the informal care support paid lately, and the
    medicines whose last supply lasts past `at`."""
    out = []
    for spans in periods.values():
        for code, begin, finish, _ in spans:
            if begin <= at and (finish is None or finish > at):
                out.append(Running(code, _ts(begin), begin <= data_start))
    position = {code: i for i, code in enumerate(names)}
    fee = np.flatnonzero(codes == position["SOCIAL/INFORMAL_CARE_FEE"])
    if len(fee) and at - int(times[fee[-1]]) <= INFORMAL_CARE_GAP_DAYS * US_PER_DAY:
        gaps = np.diff(times[fee]) > INFORMAL_CARE_GAP_DAYS * US_PER_DAY
        first = int(fee[np.flatnonzero(gaps)[-1] + 1]) if gaps.any() else int(fee[0])
        out.append(Running("SOCIAL/INFORMAL_CARE_FEE", _ts(times[first]), int(times[first]) <= data_start))
    for code in [c for c in names if c.startswith("MED/")]:
        given = np.flatnonzero(codes == position[code])
        if not len(given):
            continue
        last = int(given[-1])
        until = int(times[last]) + int((values[last] if not np.isnan(values[last]) else 1.0) * US_PER_DAY)
        if until > at:
            out.append(Running(code, _ts(times[last]), False, until=_ts(until)))
    return sorted(out, key=lambda r: (r.since, r.code))
