"""Temporal splits and training rows: pure functions from a feature table and a spec.

The data are split once per problem, by index date, before tuning; the Optuna objective only
ever sees the resulting frames (never re-splits).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import pandas as pd

from training.spec import ExperimentSpec, Period, SpecError

ID_COLUMNS = ("subject_id", "prediction_time")
RESERVED_PREFIXES = ("label_", "censor_", "eligible_", "outcome_time_")
# `region` marks a pooled table's rows (training/pooled.py): where a row comes from, never a feature
# (a held-out region's value would be one the model never saw)
RESERVED_COLUMNS = ("subject_id", "prediction_time", "pipeline_version", "region")
# an index month counts as label-complete when fewer than this share of its eligible rows are
# censored by the end of the extract (see anchor_time)
EXTRACT_END_SHARE = 0.5


@dataclass(frozen=True)
class ResolvedPeriod:
    name: str
    start: pd.Timestamp | None  # inclusive; None = from the first index date
    end: pd.Timestamp  # exclusive
    every_months: int = 1  # keep index months whose distance back from the last month is a multiple

    def mask(self, times: pd.Series) -> pd.Series:
        inside = times < self.end
        if self.start is not None:
            inside &= times >= self.start
        if self.every_months > 1:
            last = self.end - pd.DateOffset(months=1)
            back = (last.year * 12 + last.month) - (times.dt.year * 12 + times.dt.month)
            inside &= (back % self.every_months) == 0
        return inside

    def describe(self) -> str:
        start = self.start.date().isoformat() if self.start is not None else "first"
        every = f" every {self.every_months} months" if self.every_months > 1 else ""
        return f"{self.name} [{start}, {self.end.date().isoformat()}){every}"


_DESCRIBED = re.compile(r"(\w+) \[(first|\d{4}-\d{2}-\d{2}), (\d{4}-\d{2}-\d{2})\)(?: every (\d+) months)?")


def parse_period(text: str) -> ResolvedPeriod | None:
    """The ResolvedPeriod a `describe()` text records (a model's metadata keeps its periods so),
    or None for a text of another form."""
    found = _DESCRIBED.fullmatch(str(text).strip())
    if not found:
        return None
    name, start, end, every = found.groups()
    return ResolvedPeriod(name, None if start == "first" else pd.Timestamp(start), pd.Timestamp(end), int(every or 1))


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    periods: tuple[ResolvedPeriod, ResolvedPeriod, ResolvedPeriod]
    anchor: pd.Timestamp


def is_feature_column(name: str) -> bool:
    return name not in RESERVED_COLUMNS and not name.startswith(RESERVED_PREFIXES)


FamilyOf = Callable[[str], "str | None"]


def catalogue_family(name: str) -> str | None:
    """The feature catalogue's family of a column (None when the catalogue does not know it)."""
    return _catalogue_families().get(name)


@lru_cache(maxsize=1)
def _catalogue_families() -> dict[str, str]:
    from features.catalogue import catalogue

    return {info.name: info.family for info in catalogue()}


def unaccounted_features(columns: list[str], spec: ExperimentSpec, family_of: FamilyOf = catalogue_family) -> list[str]:
    """Feature columns that the spec neither selects (family or extra glob) nor excludes."""
    families = set(spec.feature_families)
    return [
        c for c in columns
        if is_feature_column(c)
        and family_of(c) not in families
        and not any(fnmatch.fnmatchcase(c, p) for p in (*spec.extra_features, *spec.exclude_features))
    ]


def select_features(
    columns: list[str], spec: ExperimentSpec, family_of: FamilyOf = catalogue_family, *, strict: bool = True
) -> list[str]:
    """Columns of the spec's catalogue families or extra globs, minus exclusions, in table order.

    Table order (not family order) keeps the booster's input order stable across specs.
    `family_of` is injectable (tests, or a catalogue other than features/). With `strict`, a
    feature column the spec neither selects nor excludes is an error: a new or renamed feature
    never drops out of a model silently (list it in exclude_features to leave it out on purpose).
    """
    if strict and (missing := unaccounted_features(columns, spec, family_of)):
        raise SpecError(
            f"{spec.problem}: {len(missing)} feature column(s) of the table are neither selected by "
            f"feature_families/extra_features nor listed in exclude_features: {', '.join(missing[:15])}"
        )
    candidates = [c for c in columns if is_feature_column(c)]
    families = set(spec.feature_families)
    chosen = [
        c for c in candidates
        if family_of(c) in families or any(fnmatch.fnmatchcase(c, p) for p in spec.extra_features)
    ]
    chosen = [c for c in chosen if not any(fnmatch.fnmatchcase(c, p) for p in spec.exclude_features)]
    if not chosen:
        raise SpecError(
            f"{spec.problem}: feature_families {sorted(families)} and extra_features match no column of the "
            f"feature table (candidates: {', '.join(candidates[:15])})"
        )
    return chosen


def usable_rows(frame: pd.DataFrame, spec: ExperimentSpec) -> pd.DataFrame:
    """Rows that may train or evaluate: eligible, not censored, label known."""
    eligible = frame[spec.eligible_column].fillna(False).astype(bool)
    uncensored = frame[spec.censor_column].isna()
    labelled = frame[spec.label_column].notna()
    return frame.loc[eligible & uncensored & labelled]


def anchor_time(frame: pd.DataFrame, spec: ExperimentSpec) -> pd.Timestamp:
    """The month after the last index date whose label windows are complete.

    Near the end of the extract most eligible rows are censored `extract_end` (the window runs
    past the data), whichever way the feature builder labels early events there; the last month
    where that share is below EXTRACT_END_SHARE is the last complete one.
    """
    eligible = frame.loc[frame[spec.eligible_column].fillna(False).astype(bool)]
    if eligible.empty:
        raise SpecError(f"{spec.problem}: no eligible rows in the feature table")
    at_end = eligible[spec.censor_column].eq("extract_end").fillna(False)
    return anchor_from_shares(at_end.groupby(eligible["prediction_time"]).mean(), spec)


def anchor_from_shares(share: pd.Series, spec: ExperimentSpec) -> pd.Timestamp:
    """anchor_time from the share of eligible rows censored `extract_end` per index date (an index
    of prediction times): what a distributed engine aggregates instead of handing over the rows."""
    if share.empty:
        raise SpecError(f"{spec.problem}: no eligible rows in the feature table")
    complete = share.index[share < EXTRACT_END_SHARE]
    if len(complete) == 0:
        raise SpecError(f"{spec.problem}: no index month has complete label windows")
    return pd.Timestamp(complete.max()) + pd.DateOffset(months=1)


def _bound(value, anchor: pd.Timestamp) -> pd.Timestamp | None:
    if value is None:
        return None
    if isinstance(value, int):
        return anchor + pd.DateOffset(months=value)
    return pd.Timestamp(value)


def resolve_periods(spec: ExperimentSpec, anchor: pd.Timestamp) -> tuple[ResolvedPeriod, ...]:
    periods = []
    for name in ("train", "validation", "test"):
        period: Period = getattr(spec.split, name)
        periods.append(ResolvedPeriod(name, _bound(period.start, anchor), _bound(period.end, anchor), period.every_months))
    # belt and braces: the load-time check is conservative, this one is on the actual dates
    for earlier, later in zip(periods, periods[1:]):
        if (later.start - earlier.end) < pd.Timedelta(days=spec.horizon_days):
            raise SpecError(
                f"{spec.problem}: {later.describe()} starts less than {spec.horizon_days} days after "
                f"{earlier.describe()} ends"
            )
    return tuple(periods)


def split_table(frame: pd.DataFrame, spec: ExperimentSpec) -> Split:
    """Usable rows of each period; refuses an empty period with the dates it tried."""
    if spec.split.relative:
        anchor = anchor_time(frame, spec)
    else:  # absolute dates do not need an anchor; record where the table ends
        anchor = pd.Timestamp(frame["prediction_time"].max()) + pd.DateOffset(months=1)
    periods = resolve_periods(spec, anchor)
    rows = usable_rows(frame, spec)
    span = f"{frame['prediction_time'].min().date()}..{frame['prediction_time'].max().date()}"
    parts = []
    for period in periods:
        part = rows.loc[period.mask(rows["prediction_time"])]
        check_period(part, period, spec, span, anchor)
        parts.append(part.reset_index(drop=True))
    return Split(parts[0], parts[1], parts[2], periods, anchor)


def table_as_of(frame: pd.DataFrame, spec: ExperimentSpec, as_of: pd.Timestamp) -> pd.DataFrame:
    """The feature table as it stood at `as_of`, for `spec`'s outcome: index dates at or before it,
    and a row whose label window (t, t + horizon] had not closed by then (t + horizon > as_of, the
    rule monitoring's realised figures follow: training/monitoring.outcomes_complete) censored
    `extract_end` with its label and outcome time unknown, as the feature builder marks the rows at
    the end of an extract. anchor_time then ends the periods at the last month complete at `as_of`,
    and nothing trained or evaluated on knows an outcome from after it. The caller's frame is not
    changed."""
    as_of = pd.Timestamp(as_of)
    rows = frame.loc[(frame["prediction_time"] <= as_of).to_numpy()].copy()
    open_window = (rows["prediction_time"] + pd.Timedelta(days=spec.horizon_days) > as_of).to_numpy()
    if open_window.any():
        rows.loc[open_window, spec.censor_column] = "extract_end"
        rows.loc[open_window, spec.label_column] = pd.NA
        if spec.outcome_time_column in rows.columns:
            rows.loc[open_window, spec.outcome_time_column] = pd.NaT
    return rows


def check_period(part: pd.DataFrame, period: ResolvedPeriod, spec: ExperimentSpec, span: str, anchor: pd.Timestamp) -> None:
    """Refuse a period's usable rows that a model cannot learn or be judged on (empty, one class),
    naming the period, the counts, the index dates of the table (`span`) and the anchor."""
    label = part[spec.label_column].astype(bool)
    if part.empty or label.nunique() < 2:
        hint = ("the extract is too short for this split: simulate at least the default 5 years" if part.empty
                else "too few customers or outcomes in this period for a model: use a larger region")
        raise SpecError(
            f"{spec.problem}: {period.describe()} has {len(part)} usable rows and "
            f"{int(label.sum())} outcomes; need both classes (index dates in the table: {span}, "
            f"anchor {anchor.date()}; {hint})"
        )
