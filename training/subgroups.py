"""Subgroup audit: AUROC, calibration (observed / expected) and alert rate per group, with gaps
beyond the spec's tolerances flagged.

AUROC and O/E gaps are gates for promotion; alert-rate gaps are flagged for the record only,
because alert rates should differ where true risk differs (older people get more alerts).
Groups too small to judge (rows or events below the spec's minimum) are reported, never flagged.

Two rules keep the gates about the model rather than about arithmetic:
- A subgroup's AUROC is compared with the model's *within-attribute* AUROC (the pair-weighted
  mean of the AUROCs inside each group of that attribute), not with the overall AUROC. The
  overall AUROC also ranks the easy pairs across groups (a 90-year-old against a 20-year-old),
  so every age band's own AUROC is below it even for a perfect model; measured at region size,
  the overall reference flagged every age band of acute-hospitalisation.
- A gap is flagged only when it is both beyond the tolerance and beyond sampling noise. One
  flag blocks promotion, so the noise bound holds for the whole audit: two-sided, family-wise
  5 % over every judged (subgroup, check) pair (Bonferroni: z = 2.9 for 15 judged subgroups;
  `z` below means that bound). The noise is counted per customer, because rows are not independent: with monthly index
  dates one admission is the outcome of about horizon/30 consecutive rows of one customer, and
  frail customers have several. Calibration: |O - E| > z sqrt(sum over customers of
  (o_c - e_c)^2) (a cluster-robust variance; the Poisson sqrt(E) understated it about threefold
  for a 90-day horizon and flagged noise). AUROC: the gap > z times the Hanley-McNeil standard
  error computed on the group's customers with and without an outcome, not its rows.
  With a few dozen outcomes, as in a 20,000-customer demo, O/E moves by more than the 0.25
  tolerance by chance alone.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

from training.evaluate import auroc
from training.spec import Gates, Subgroups

AGE_ATTRIBUTE = "age_band"


def age_bands(age: pd.Series, edges: list[float]) -> pd.Series:
    """Labels like `<75`, `75-84`, `85+` from ascending edges."""
    edges = sorted(edges)
    labels = [f"<{edges[0]:g}"] + [f"{a:g}-{b - 1:g}" for a, b in zip(edges, edges[1:])] + [f"{edges[-1]:g}+"]
    bins = [-np.inf, *edges, np.inf]
    return pd.cut(age, bins=bins, labels=labels, right=False).astype("string")


def attributes(frame: pd.DataFrame, spec: Subgroups) -> pd.DataFrame:
    """The subgroup attributes that exist in the frame (missing ones are skipped, not invented)."""
    out = {}
    for name in spec.columns:
        if name in frame.columns:
            out[name] = frame[name].astype("string").fillna("missing").to_numpy()
    if spec.age_column and spec.age_column in frame.columns:
        out[AGE_ATTRIBUTE] = age_bands(frame[spec.age_column], spec.age_bands).fillna("missing").to_numpy()
    return pd.DataFrame(out, index=frame.index)


FAMILY_ALPHA = 0.05  # chance that a model with no real subgroup gap is flagged anyway


def noise_z(judged: int) -> float:
    """Two-sided Bonferroni bound for `judged` subgroups, each checked for AUROC and calibration."""
    from scipy.stats import norm

    return float(norm.ppf(1 - FAMILY_ALPHA / (2 * max(2 * judged, 1))))


def auroc_standard_error(a: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUROC estimate."""
    if not np.isfinite(a) or positives == 0 or negatives == 0:
        return np.nan
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (positives - 1) * (q1 - a * a) + (negatives - 1) * (q2 - a * a)) / (positives * negatives)
    return float(np.sqrt(max(var, 0.0)))


def within_auroc(values: np.ndarray, y: np.ndarray, p: np.ndarray) -> float:
    """AUROC over the (outcome, no outcome) pairs inside one group: the pair-weighted mean of the
    groups' AUROCs. The reference for a subgroup's AUROC (module doc)."""
    total, weight = 0.0, 0.0
    for value in pd.unique(values):
        m = values == value
        pos = float(y[m].sum())
        pairs = pos * (m.sum() - pos)
        if pairs:
            total += auroc(y[m], p[m]) * pairs
            weight += pairs
    return total / weight if weight else np.nan


def clustered_sd(y: np.ndarray, p: np.ndarray, customers: np.ndarray) -> float:
    """Standard deviation of O - E with rows clustered by customer: sqrt(sum_c (o_c - e_c)^2)."""
    residual = pd.Series(y - p).groupby(customers).sum().to_numpy()
    return float(np.sqrt(np.sum(residual**2)))


def audit(groups: pd.DataFrame, y, p, threshold: float, gates: Gates, subject_ids=None) -> pd.DataFrame:
    """One row per (attribute, value): size, events, auroc (and its reference), o_e, alert_rate and flags.

    `subject_ids` (one per row) makes the noise terms count customers, not rows (module doc);
    without them every row is its own customer."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    customers = np.arange(len(y)) if subject_ids is None else np.asarray(subject_ids)
    overall_alert = float(np.mean(p >= threshold))
    rows, noise = [], []
    for attribute in groups.columns:
        values = groups[attribute].to_numpy()
        reference = within_auroc(values, y, p)
        for value in sorted(pd.unique(values)):
            m = values == value
            n, events = int(m.sum()), int(y[m].sum())
            expected = float(p[m].sum())
            alert_rate = float(np.mean(p[m] >= threshold))
            with_outcome = pd.Series(y[m]).groupby(customers[m]).max().to_numpy()
            row = {
                "attribute": attribute,
                "value": str(value),
                "rows": n,
                "customers": len(with_outcome),
                "events": events,
                "auroc": auroc(y[m], p[m]),
                "auroc_reference": reference,
                "o_e": events / expected if expected > 0 else np.nan,
                "alert_rate": alert_rate,
                "judged": n >= gates.min_subgroup_rows and events >= gates.min_subgroup_events,
            }
            ratio = alert_rate / overall_alert if overall_alert > 0 else np.nan
            r = gates.subgroup_alert_rate_ratio
            row["flag_alert_rate"] = bool(row["judged"] and overall_alert > 0 and (ratio > r or ratio < 1 / r))
            auroc_se = auroc_standard_error(row["auroc"], int(with_outcome.sum()), int(len(with_outcome) - with_outcome.sum()))
            noise.append((auroc_se, events - expected, clustered_sd(y[m], p[m], customers[m])))
            rows.append(row)
    z = noise_z(sum(row["judged"] for row in rows))
    for row, (auroc_se, excess, excess_sd) in zip(rows, noise):
        gap = row["auroc_reference"] - row["auroc"]
        row["flag_auroc"] = bool(row["judged"] and gap > gates.subgroup_auroc_tolerance and gap > z * auroc_se)
        row["flag_calibration"] = bool(row["judged"] and abs(row["o_e"] - 1) > gates.subgroup_oe_tolerance
                                       and abs(excess) > z * excess_sd)
    columns = ["attribute", "value", "rows", "customers", "events", "auroc", "auroc_reference", "o_e", "alert_rate",
               "judged", "flag_auroc", "flag_calibration", "flag_alert_rate"]
    return pd.DataFrame(rows, columns=columns)


SMALL = 5  # a subgroup count below this is not published: a cell of 1 to 4 can point at a person
SMALL_SHOWN = f"<{SMALL}"
COUNTS = ("rows", "customers", "events")
STATISTICS = ("auroc", "auroc_reference", "o_e", "alert_rate")


def shown_count(n: int) -> int | str:
    """A count as an artifact shows it: 1 to 4 as '<5' (small-cell suppression, as THL and
    Statistics Finland publish); 0 stays 0, it points at no one."""
    return SMALL_SHOWN if 0 < int(n) < SMALL else int(n)


def is_small(row) -> bool:  # noqa: ANN001 (a table row)
    """A group of fewer than SMALL customers shows no counts or statistics at all: its alert rate
    or AUROC times its rows would give the small counts back."""
    return int(row.customers) < SMALL


def published(table: pd.DataFrame) -> pd.DataFrame:
    """The audit table as every artifact shows it (subgroups.csv, model cards): counts 1 to 4 as
    '<5'; a group of fewer than 5 customers as '<5' customers and nothing else but its flags
    (never flagged: it is too small to judge). The caller's table, which the gates read, is left
    as it is."""
    out = table.copy()
    small = np.array([is_small(row) for row in table.itertuples()], dtype=bool)
    for column in COUNTS:
        shown = [None if tiny and column != "customers" else shown_count(n) for n, tiny in zip(table[column], small)]
        out[column] = pd.Series(shown, index=table.index, dtype=object)  # whole numbers stay whole beside "<5"
    for column in STATISTICS:
        out[column] = table[column].where(~small, np.nan)
    return out


def slug(text: str) -> str:
    """ASCII metric-name-safe form (Luumäki -> Luumaki, `75-84` kept)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9.\-]+", "_", ascii_text).strip("_") or "blank"


def audit_metrics(table: pd.DataFrame) -> dict[str, float]:
    """Flattened for MLflow: subgroup_<attr>_<value>_{auroc,o_e,alert_rate} and flag counts; none
    for a group of fewer than 5 customers (published)."""
    metrics: dict[str, float] = {}
    for row in table.itertuples():
        if is_small(row):
            continue
        base = f"subgroup_{slug(row.attribute)}_{slug(row.value)}"
        metrics[f"{base}_auroc"] = float(row.auroc)
        metrics[f"{base}_o_e"] = float(row.o_e)
        metrics[f"{base}_alert_rate"] = float(row.alert_rate)
    metrics["subgroup_flags_auroc"] = float(table["flag_auroc"].sum()) if len(table) else 0.0
    metrics["subgroup_flags_calibration"] = float(table["flag_calibration"].sum()) if len(table) else 0.0
    metrics["subgroup_flags_alert_rate"] = float(table["flag_alert_rate"].sum()) if len(table) else 0.0
    return metrics
