"""Promotion: move alias `champion` to the challenger only when it passes the gates.

Gates (from the challenger's spec, stored as a version tag at training; training/spec.py Gates):
the 95 % customer-bootstrap intervals of observed/expected and of the calibration slope on test
lie inside the spec's bands; the lower end of the paired interval of the gain in test AUROC over
the best baseline is above `min_auroc_over_baseline`; test_auroc not below the champion's minus
`auroc_tolerance`; no subgroup flagged for AUROC or calibration. A challenger retrained on evidence
(`sote-risk retrain`, tag `retrain`) must also hold against the champion on the same rows of the
most recent complete months (training/retrain.py, tags `recent_*`): compared with the version that
is champion now, on months all inside the challenger's test period; the lower end of the paired
95 % interval of (challenger - champion) AUROC at least -`recent_auroc_margin`; and its O/E interval
inside [1 / max_oe_ratio, max_oe_ratio], or its O/E no farther from 1 (on the log scale) than the
champion's. A challenger recalibrated on recent months (`retrain --recalibrate`: the champion's
trees with a new calibrator, tag `recalibrated_from`) is tested on the compared months, so its test
AUROC is held against the champion's on those same rows (`recent_champion_auroc`), not on the
champion's own earlier test period. A figure the challenger does not carry (a version trained
before it was recorded, or a slope that cannot be estimated because every prediction is the same)
fails its gate: what is not shown is not passed. `force` promotes
anyway and says so: a line in the output and tags on the model version (who forced is not known
here; the time and the overridden reasons are).

The reasons are recorded in English with their numbers; vocabulary/gates.py says them in Finnish
and English to the people who read them, so their formats are fixed together with that module.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from models.registry import ModelNotFoundError, model_name, resolve_version
from training import tracking
from training.spec import Gates, stored_gates


@dataclass
class Decision:
    problem: str
    challenger: str | None
    champion_before: str | None
    promoted: bool
    forced: bool = False
    reasons: list[str] = field(default_factory=list)  # why it fails the gates (empty = passes)
    notes: list[str] = field(default_factory=list)

    def message(self) -> str:
        name = model_name(self.problem)
        if self.promoted and self.forced:
            return f"FORCED: {name} version {self.challenger} is champion despite: {'; '.join(self.reasons)}"
        if self.promoted:
            before = f" (was version {self.champion_before})" if self.champion_before else ""
            return f"{name} version {self.challenger} is champion{before}"
        return f"refused: {name} version {self.challenger} stays challenger: {'; '.join(self.reasons)}"


def _metric(tags: dict[str, str], key: str) -> float | None:
    return float(tags[key]) if key in tags else None


def _band(tags: dict[str, str], name: str, low: float, high: float) -> list[str]:
    """Why the interval of `name` does not lie within [low, high] (empty when it does)."""
    value, ci_low, ci_high = (_metric(tags, k) for k in (name, f"{name}_ci_low", f"{name}_ci_high"))
    if value is None or ci_low is None or ci_high is None:
        return [f"challenger has no {name} interval recorded"]
    if ci_low < low or ci_high > high:
        # two decimals: ratios and slopes are read to the hundredth (and "1,250" would read as a thousand)
        return [f"{name} {value:.2f} (95% CI {ci_low:.2f} to {ci_high:.2f}) is not within {low:.2f} to {high:.2f}"]
    return []


def _gain(tags: dict[str, str], floor: float) -> list[str]:
    """Why the gain over the best baseline is not shown beyond chance (empty when it is)."""
    gain, ci_low, ci_high = (_metric(tags, k) for k in ("gain_over_baseline", "gain_over_baseline_ci_low", "gain_over_baseline_ci_high"))
    if gain is None or ci_low is None or ci_high is None:
        return ["challenger has no gain_over_baseline interval recorded"]
    if not ci_low > floor:
        return [f"gain_over_baseline {gain:+.4f} (95% CI {ci_low:+.4f} to {ci_high:+.4f}) is not above {floor:g}"]
    return []


def recent_reasons(challenger: dict[str, str], champion_version: str | None, gates: Gates) -> list[str]:
    """Pure: why a challenger retrained on evidence (its `retrain` tag) does not hold against the
    champion on the recent complete months (its `recent_*` tags, training/retrain.py). Empty for a
    challenger that was not retrained, or when there is no champion to hold against."""
    import math

    if "retrain" not in challenger or champion_version is None:
        return []
    compared = challenger.get("recent_champion_version")
    if compared is None:
        return ["challenger has no recent_auroc_gain interval recorded for the recent months"]
    if compared != str(champion_version):
        return [f"the recent-month comparison was made against version {compared}, but the champion is version "
                f"{champion_version}"]
    reasons = []
    months = challenger.get("recent_months", "").split(",")
    if challenger.get("recent_held_out") != "true":
        reasons.append(f"the compared months {months[0]} to {months[-1]} are not all in the challenger's test period")
    gain, low, high = (_metric(challenger, k) for k in ("recent_auroc_gain", "recent_auroc_gain_ci_low",
                                                        "recent_auroc_gain_ci_high"))
    if gain is None or low is None or high is None:
        reasons.append("challenger has no recent_auroc_gain interval recorded for the recent months")
    elif low < -gates.recent_auroc_margin:
        reasons.append(f"recent_auroc_gain {gain:+.4f} (95% CI {low:+.4f} to {high:+.4f}) on index months {months[0]} "
                       f"to {months[-1]} reaches below -{gates.recent_auroc_margin:g}")
    oe, low, high = (_metric(challenger, k) for k in ("recent_observed_expected", "recent_observed_expected_ci_low",
                                                      "recent_observed_expected_ci_high"))
    theirs = _metric(challenger, "recent_champion_observed_expected")
    band = (1 / gates.max_oe_ratio, gates.max_oe_ratio)
    if oe is None or low is None or high is None or oe <= 0:
        reasons.append("challenger has no recent_observed_expected interval recorded for the recent months")
    elif not (band[0] <= low and high <= band[1]) and not (
            theirs is not None and theirs > 0 and abs(math.log(oe)) <= abs(math.log(theirs))):
        champion = f"{theirs:.2f}" if theirs is not None else "not recorded"
        reasons.append(f"recent_observed_expected {oe:.2f} (95% CI {low:.2f} to {high:.2f}) is not within {band[0]:.2f} "
                       f"to {band[1]:.2f} and is farther from 1 than the champion's ({champion})")
    return reasons


def gate_reasons(challenger: dict[str, str], champion: dict[str, str] | None, gates: Gates,
                 champion_version: str | None = None) -> list[str]:
    """Pure: why the challenger (version tags) may not replace the champion (its tags and version).
    Empty = passes."""
    reasons = []
    auroc = _metric(challenger, "test_auroc")
    if auroc is None:
        reasons.append("challenger has no test_auroc recorded")
    reasons += _band(challenger, "test_observed_expected", 1 / gates.max_oe_ratio, gates.max_oe_ratio)
    reasons += _band(challenger, "test_calibration_slope", gates.min_calibration_slope, gates.max_calibration_slope)
    flags = (_metric(challenger, "subgroup_flags_auroc") or 0) + (_metric(challenger, "subgroup_flags_calibration") or 0)
    if flags:
        reasons.append(f"{int(flags)} subgroup gap(s) beyond tolerance: {challenger.get('subgroup_flagged', '?')}")
    reasons += _gain(challenger, gates.min_auroc_over_baseline)
    champion_auroc = _metric(champion, "test_auroc") if champion else None
    if "retrain" in challenger and champion_version is not None and challenger.get("recalibrated_from") == str(champion_version):
        # the champion's own trees with a new calibrator, tested on the compared months: held
        # against the champion's AUROC on those same rows, not on its own earlier test period
        # (which would judge the months' difficulty, not the model)
        champion_auroc = _metric(challenger, "recent_champion_auroc")
    if auroc is not None and champion_auroc is not None and auroc < champion_auroc - gates.auroc_tolerance:
        reasons.append(f"test_auroc {auroc:.4f} is worse than the champion's {champion_auroc:.4f}")
    reasons += recent_reasons(challenger, champion_version, gates)
    return reasons


def promote(problem: str, force: bool = False, tracking_uri: str | None = None) -> Decision:
    from mlflow import MlflowClient

    tracking.configure(tracking_uri)
    client = MlflowClient()
    name = model_name(problem)
    challenger = resolve_version(problem, "challenger")
    try:
        champion = resolve_version(problem, "champion")
    except ModelNotFoundError:
        champion = None
    decision = Decision(problem, str(challenger.version), str(champion.version) if champion else None, promoted=False)
    if champion is not None and champion.version == challenger.version:
        decision.reasons.append("it is already the champion")
        return decision
    gates = stored_gates(json.loads(challenger.tags.get("gates", "{}")))  # a version may predate a retired gate
    decision.reasons = gate_reasons(challenger.tags, champion.tags if champion else None, gates,
                                    str(champion.version) if champion else None)
    if champion is not None and champion.tags.get("data_fingerprint") != challenger.tags.get("data_fingerprint"):
        decision.notes.append("champion and challenger were evaluated on different data; compare with `sote-risk evaluate`")
    if decision.reasons and not force:
        return decision
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    client.set_registered_model_alias(name, "champion", challenger.version)
    client.set_model_version_tag(name, challenger.version, "promoted_at", now)
    if decision.reasons:  # forced past failing gates: leave a trace on the version
        decision.forced = True
        client.set_model_version_tag(name, challenger.version, "promotion_forced", "true")
        # a JSON list: a reason may hold "; " itself (the flagged subgroups); MLflow caps a tag at 5,000
        client.set_model_version_tag(name, challenger.version, "promotion_forced_reasons",
                                     json.dumps([r[:4800 // len(decision.reasons)] for r in decision.reasons], ensure_ascii=False))
    decision.promoted = True
    return decision


def _monitor_tag(text: str | None) -> dict | None:
    """The version's `monitor` tag (training/monitor_run.record_run: as_of, run_id, breached_months,
    last_breach), or None if it was never monitored or the tag is unreadable."""
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def list_models(tracking_uri: str | None = None) -> list[dict]:
    """One entry per registered sote-risk model: versions, aliases and the alias versions' metrics."""
    from mlflow import MlflowClient

    tracking.configure(tracking_uri)
    client = MlflowClient()
    rows = []
    for registered in client.search_registered_models(filter_string=f"name LIKE '{tracking.model_name('')}%'"):
        versions = client.search_model_versions(f"name='{registered.name}'")
        aliases = dict(registered.aliases or {})
        by_alias = {}
        for alias, version in sorted(aliases.items()):
            tags = client.get_model_version(registered.name, version).tags
            by_alias[alias] = {"version": str(version), **{k: tags.get(k) for k in ("test_auroc", "test_ece", "baseline_auroc", "oracle_auroc", "promotion_forced",
                                                                                    "recent_comparison", "recent_champion_version")},
                               "monitor": _monitor_tag(tags.get("monitor"))}
        rows.append({
            "problem": registered.name.removeprefix(tracking.model_name("")),
            "name": registered.name,
            "versions": len(versions),
            "latest_version": max((int(v.version) for v in versions), default=0),
            "aliases": by_alias,
        })
    return sorted(rows, key=lambda r: r["problem"])
