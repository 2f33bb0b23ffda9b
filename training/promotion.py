"""Promotion: move alias `champion` to the challenger only when it passes the gates.

Gates (from the challenger's spec, stored as a version tag at training): test_auroc not below
the champion's minus `auroc_tolerance`; test_auroc at least the best baseline's plus
`min_auroc_over_baseline`; test_ece <= `max_test_ece`; no subgroup flagged for AUROC or
calibration. `force` promotes anyway and says so: a line in the output and tags on the
model version (who forced is not known here; the time and the overridden reasons are).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from models.registry import ModelNotFoundError, model_name, resolve_version
from training import tracking
from training.spec import Gates


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


def gate_reasons(challenger: dict[str, str], champion: dict[str, str] | None, gates: Gates) -> list[str]:
    """Pure: why the challenger (version tags) may not replace the champion. Empty = passes."""
    reasons = []
    auroc = _metric(challenger, "test_auroc")
    ece = _metric(challenger, "test_ece")
    if auroc is None or ece is None:
        reasons.append("challenger has no test_auroc/test_ece recorded")
    if ece is not None and ece > gates.max_test_ece:
        reasons.append(f"test_ece {ece:.4f} > gate {gates.max_test_ece}")
    flags = (_metric(challenger, "subgroup_flags_auroc") or 0) + (_metric(challenger, "subgroup_flags_calibration") or 0)
    if flags:
        reasons.append(f"{int(flags)} subgroup gap(s) beyond tolerance: {challenger.get('subgroup_flagged', '?')}")
    baseline = _metric(challenger, "baseline_auroc")
    if auroc is not None and baseline is not None and auroc < baseline + gates.min_auroc_over_baseline:
        reasons.append(f"test_auroc {auroc:.4f} does not beat the baseline's {baseline:.4f}"
                       + (f" by {gates.min_auroc_over_baseline}" if gates.min_auroc_over_baseline else ""))
    champion_auroc = _metric(champion, "test_auroc") if champion else None
    if auroc is not None and champion_auroc is not None and auroc < champion_auroc - gates.auroc_tolerance:
        reasons.append(f"test_auroc {auroc:.4f} is worse than the champion's {champion_auroc:.4f}")
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
    gates = Gates.model_validate(json.loads(challenger.tags.get("gates", "{}")))
    decision.reasons = gate_reasons(challenger.tags, champion.tags if champion else None, gates)
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
            by_alias[alias] = {"version": str(version), **{k: tags.get(k) for k in ("test_auroc", "test_ece", "baseline_auroc", "oracle_auroc", "promotion_forced")}}
        rows.append({
            "problem": registered.name.removeprefix(tracking.model_name("")),
            "name": registered.name,
            "versions": len(versions),
            "latest_version": max((int(v.version) for v in versions), default=0),
            "aliases": by_alias,
        })
    return sorted(rows, key=lambda r: r["problem"])
