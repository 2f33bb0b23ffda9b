"""Alert rules: pure functions from new scores and previous state to alert decisions and cards.

Nothing here reads or writes the outbox; alerts/cycle.py does the I/O around these.

Order of the rules for one new score (each problem with its own policy):
1. suppressed  - the customer is already in the outcome state (e.g. already in 24-hour care):
                 an alert could not change anything.
2. below_level - neither the level (threshold / min_band) nor, if enabled, a band rise since
                 the customer's previous score of this problem triggers.
3. cooldown    - the customer got a card (naming any problem) less than the problem's
                 `cooldown_days` before (between index times), and this problem's band is not
                 higher than it was at that card's index time. One cool-down per customer: a
                 customer is not carded again for the same picture, only when a band rises (a
                 problem the customer was not scored for then counts as risen).
4. alert       - a candidate.

Cards (`cards_of`): a customer with at least one `alert` at an index time gets ONE card, naming
every problem whose score is at its level (`alert` or `cooldown`), highest risk first, so the
card shows the whole picture. A customer who already has a card at that index time (a problem
scored by a later run of the same date) is not carded twice: those decisions become
`already_carded`.

What "wait" means (capacity): a municipality's coordinators take at most `capacity` cards
(customers, not problem alerts) per calendar day. The day's new cards and the cards still
waiting from earlier days compete together, the card's highest probability first (ties: the
one waiting longest, then the lower subject id, so the order is deterministic). Those over the
budget are recorded as `queued`: not sent, not counted for cool-down, and re-ranked on each
later day (the dispatcher does this every pass, so the queue drains the next day even without
new scores). A queued card leaves the queue when it is released (becomes `pending` and is
delivered), when a newer score of the same customer arrives (`superseded`: that score is judged
on its own), or after `queue_max_days` (`expired`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd

from alerts.policy import AlertPolicy
from scoring.bands import BANDS, band_for, band_rank

SCORE_COLUMNS = ("subject_id", "problem", "as_of", "probability", "municipality")
STATE_COLUMNS = ("subject_id", "problem", "last_band", "last_alert_as_of", "last_alert_band")
DECISIONS = ("alert", "suppressed", "below_level", "cooldown", "already_carded")
ON_CARD = ("alert", "cooldown")  # the decisions a card names (when at least one is an alert)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}")


def empty_state() -> pd.DataFrame:
    """Previous state with no customers (first run of a problem)."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in STATE_COLUMNS})


def decide_alerts(scores: pd.DataFrame, state: pd.DataFrame, policy: AlertPolicy) -> pd.DataFrame:
    """One decision per new score of a single problem (does not apply the capacity budget).

    scores: subject_id, problem, as_of (timestamp), probability, municipality and optionally
        in_outcome_state (bool; missing means False).
    state: per (subject_id, problem), as it was before each score: last_band (of the previous
        score of this problem), last_alert_as_of (the customer's last card sent or being sent,
        whichever problems it named) and last_alert_band (this problem's band at that card's
        index time; None when it was not scored then, which counts as a rise); customers
        without history may be absent.
    Returns a new frame: the score columns plus band, previous_band, band_rose, trigger
    ("level" | "band_rise" | None) and decision (one of DECISIONS). The input is not modified.
    """
    _require(scores, SCORE_COLUMNS, "scores")
    _require(state, STATE_COLUMNS, "state")
    if scores["problem"].nunique() > 1:
        raise ValueError("scores: decide_alerts takes one problem at a time (one policy per problem)")
    out = scores.copy()
    out["as_of"] = pd.to_datetime(out["as_of"])
    if "in_outcome_state" not in out.columns:
        out["in_outcome_state"] = False
    out["in_outcome_state"] = out["in_outcome_state"].fillna(False).astype(bool)

    prior = state.loc[:, list(STATE_COLUMNS)].drop_duplicates(["subject_id", "problem"], keep="last")
    out = out.merge(prior, on=["subject_id", "problem"], how="left", validate="many_to_one")

    out["band"] = [band_for(float(p), policy.bands) for p in out["probability"]]
    rank = out["band"].map(BANDS.index)
    prev_rank = out["last_band"].map(lambda b: band_rank(b) if isinstance(b, str) else np.nan)
    alert_rank = out["last_alert_band"].map(lambda b: band_rank(b) if isinstance(b, str) else np.nan)
    out["previous_band"] = out["last_band"]
    out["band_rose"] = (rank > prev_rank).fillna(False).astype(bool)

    meets = pd.Series(True, index=out.index)
    if policy.threshold is not None:
        meets &= out["probability"] >= policy.threshold
    if policy.min_band is not None:
        meets &= rank >= BANDS.index(policy.min_band)
    if policy.threshold is None and policy.min_band is None:
        meets[:] = False  # only band rises trigger under this policy
    rise = out["band_rose"] & policy.alert_on_band_rise
    out["trigger"] = np.where(meets, "level", np.where(rise, "band_rise", None))

    last_alert = pd.to_datetime(out["last_alert_as_of"])
    days_since = (out["as_of"] - last_alert).dt.days
    in_cooldown = (days_since < policy.cooldown_days).fillna(False).astype(bool)
    # not scored at the last card's index time: nothing to compare with, so a new risk (a rise)
    higher_than_alerted = (alert_rank.isna() | (rank > alert_rank)).astype(bool)

    decision = np.select(
        [out["in_outcome_state"], out["trigger"].isna(), in_cooldown & ~higher_than_alerted],
        ["suppressed", "below_level", "cooldown"],
        default="alert",
    )
    out["decision"] = decision
    return out.drop(columns=["last_band", "last_alert_band"])


def may_alert(probabilities: np.ndarray | pd.Series, policy: AlertPolicy) -> np.ndarray:
    """Which scores can trigger under `policy` whatever the outbox holds (the customer's earlier
    scores and cards): those at the level (threshold and min_band, as decide_alerts reads them)
    and, with alert_on_band_rise, every score above the lowest band (a rise from below). A card
    names only triggered scores, so an engine that explains scores before the alert cycle has
    read the outbox (the Spark engine: scaleout/scoring.py) explains these and no others."""
    p = np.asarray(probabilities, dtype=np.float64)
    bands = policy.bands
    rank = (p >= bands.moderate).astype(np.int64) + (p >= bands.high) + (p >= bands.very_high)  # band_for's
    if policy.threshold is None and policy.min_band is None:
        meets = np.zeros(len(p), dtype=bool)
    else:
        meets = np.ones(len(p), dtype=bool)
        if policy.threshold is not None:
            meets &= p >= policy.threshold
        if policy.min_band is not None:
            meets &= rank >= BANDS.index(policy.min_band)
    return meets | (policy.alert_on_band_rise & (rank > 0))


def allocate_capacity(
    candidates: pd.DataFrame,
    capacity: int | None,
    used_today: Mapping[str, int],
) -> pd.DataFrame:
    """Which cards go out today under the per-municipality daily budget.

    candidates: subject_id, as_of, probability, municipality (new cards and waiting ones
        together; probability is a card's highest). used_today: cards already released today per
        municipality.
    Returns a new frame with `released` (bool) and `rank` (1 = first in its municipality).
    """
    _require(candidates, ("subject_id", "as_of", "probability", "municipality"), "candidates")
    out = candidates.copy()
    if capacity is not None and out["municipality"].isna().any():
        raise ValueError("candidates: municipality is required when a capacity budget is set")
    ordered = out.sort_values(
        ["probability", "as_of", "subject_id"], ascending=[False, True, True], kind="stable"
    )
    rank = ordered.groupby("municipality", dropna=False, sort=False).cumcount() + 1
    out["rank"] = rank.reindex(out.index).astype("int64")
    if capacity is None:
        out["released"] = True
        return out
    left = out["municipality"].map(lambda m: max(capacity - int(used_today.get(m, 0)), 0))
    out["released"] = out["rank"] <= left
    return out


def stale_queue(queued: pd.DataFrame, scores: pd.DataFrame, queue_max_days: int, today: date) -> pd.DataFrame:
    """Waiting cards that leave the queue unsent: superseded by a newer score of the same customer
    (in any problem), or expired after `queue_max_days`.

    queued: alert_id, subject_id, as_of, queued_on (date). scores: the new scores.
    Returns queued rows with a `reason` column ("superseded" | "expired").
    """
    _require(queued, ("alert_id", "subject_id", "as_of", "queued_on"), "queued")
    if queued.empty:
        return queued.assign(reason=pd.Series(dtype="object"))
    if scores.empty:
        newest = pd.DataFrame({"subject_id": pd.Series(dtype="int64"), "newest_as_of": pd.Series(dtype="datetime64[ns]")})
    else:
        newest = scores.assign(as_of=pd.to_datetime(scores["as_of"])).groupby("subject_id")["as_of"].max()
        newest = newest.rename("newest_as_of").reset_index()
    q = queued.assign(as_of=pd.to_datetime(queued["as_of"])).merge(newest, on="subject_id", how="left")
    superseded = (q["newest_as_of"] > q["as_of"]).fillna(False).astype(bool)
    age = q["queued_on"].map(lambda d: (today - d).days)
    expired = age > queue_max_days
    q["reason"] = np.where(superseded, "superseded", np.where(expired, "expired", None))
    return q.loc[q["reason"].notna(), [*queued.columns, "reason"]].reset_index(drop=True)


def cards_of(decisions: pd.DataFrame, carded: set[tuple[int, str]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One card per customer and index time from every problem's decisions.

    decisions: decide_alerts' rows of any number of problems (with as_of_key). carded: the
    (subject_id, as_of_key) that already have a card. Returns (decisions, with `already_carded`
    where a card exists and `card` naming the card row each decision is on, or -1; cards: one
    row per new card, subject_id, as_of, as_of_key, municipality, probability (its highest),
    n_problems, in no particular order). A card's own rows are decisions[decisions.card == i],
    which `card_rows` orders by risk.
    """
    _require(decisions, ("subject_id", "as_of", "as_of_key", "problem", "probability", "municipality", "decision"),
             "decisions")
    out = decisions.copy()
    key = list(zip(out["subject_id"].astype("int64"), out["as_of_key"]))
    if carded:
        done = pd.Series([k in carded for k in key], index=out.index)
        out.loc[done & (out["decision"] == "alert"), "decision"] = "already_carded"
    alerting = {k for k, d in zip(key, out["decision"]) if d == "alert"}
    on = pd.Series([k in alerting for k in key], index=out.index) & out["decision"].isin(ON_CARD)
    named = out.loc[on]
    cards = (named.groupby(["subject_id", "as_of_key"], sort=True)
             .agg(as_of=("as_of", "first"), municipality=("municipality", "first"), probability=("probability", "max"),
                  n_problems=("problem", "size"))
             .reset_index())
    number = {(int(s), a): i for i, (s, a) in enumerate(zip(cards["subject_id"], cards["as_of_key"]))}
    out["card"] = [number.get(k, -1) if o else -1 for k, o in zip(key, on)]
    return out, cards


def card_rows(decisions: pd.DataFrame, card: int) -> pd.DataFrame:
    """The decisions one card names, highest risk first (ties: problem id)."""
    rows = decisions.loc[decisions["card"] == card]
    return rows.sort_values(["probability", "problem"], ascending=[False, True], kind="stable")


def combined_budget(policies: Mapping[str, AlertPolicy]) -> tuple[int | None, int]:
    """(capacity, queue_max_days) of cards from the problems' policies: one team takes every card
    of its municipality, so the tightest stated capacity and the shortest wait apply to all."""
    capacities = [p.capacity_per_municipality_per_day for p in policies.values() if p.capacity_per_municipality_per_day]
    return (min(capacities) if capacities else None, min((p.queue_max_days for p in policies.values()), default=7))
