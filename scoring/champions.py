"""The served models: one champion per problem, loaded by registry alias, never by "latest".

A Champion is a RiskModel with what serving says about it: its problem as the vocabulary declares
it, its registry version, its risk bands (from the experiment spec that travels with it) and its
promotion record (`Gate`: passed its gates, forced past them, or never checked), which travels
with every score, card, page and FHIR resource it produces. A set of champions is checked before
it is served: every model must be trained on the feature pipeline the code computes, and every
feature it reads must have words in the catalogue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.inputs import FeatureBlock, InputPlan, input_plan, model_input
from models.risk_model import RiskModel
from scoring.bands import BandThresholds
from scoring.champion_record import read_record, registry_state, write_record
from scoring.errors import BackendError
from vocabulary import GateStatus, vocabulary

log = logging.getLogger("sote_risk.scoring")


@dataclass(frozen=True)
class Gate:
    """A served model's promotion record: `passed` (sote-risk promote found its gates met),
    `forced` (promoted with --force past the failing `reasons`) or `unchecked` (made champion
    by other means: nobody checked it)."""

    status: GateStatus = "unchecked"
    reasons: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _forced_reasons(tag: str) -> tuple[str, ...]:
    """The failed gates: a JSON list (training/promotion.py), or "; "-joined text as versions
    promoted before it was a list recorded them."""
    if tag.startswith("["):
        try:
            found = json.loads(tag)
        except ValueError:
            found = None
        if isinstance(found, list):
            return tuple(str(r).strip() for r in found if str(r).strip())
    return tuple(r.strip() for r in tag.split(";") if r.strip())


def gate_of(tags: Mapping[str, str]) -> Gate:
    """The promotion record from a registry version's tags (training/promotion.py writes them)."""
    if tags.get("promotion_forced") == "true":
        return Gate("forced", _forced_reasons(tags.get("promotion_forced_reasons", "")))
    if tags.get("promoted_at"):
        return Gate("passed")
    return Gate("unchecked")


@dataclass(frozen=True, eq=False)
class Champion:
    """A problem's served model and what the responses say about it."""

    problem: str
    model: RiskModel
    version: str
    segment: str
    outcome: str
    horizon_days: int
    bands: BandThresholds
    gate: Gate = Gate()
    tags: Mapping[str, str] = field(default_factory=dict)  # the registry version's tags (model card: promotion, subgroups)
    _plans: dict = field(default_factory=dict, repr=False)  # block layout -> InputPlan

    def input(self, block: FeatureBlock) -> np.ndarray:
        """The model's input matrix for these feature rows (the plan cached per block layout)."""
        key = (block.names, tuple(block.categories.items()))
        plan: InputPlan | None = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = input_plan(self.model, block)
        return model_input(self.model, block, plan)


def model_version(model: RiskModel) -> str:
    """The registry version the model was loaded as (models/registry.py sets it), else 'unknown'."""
    value = model.metadata.get("model_version")
    return str(value) if value not in (None, "") else "unknown"


def bands_of(model: RiskModel) -> BandThresholds:
    """The problem's risk bands, from the experiment spec that travels with the model."""
    policy = (model.spec or {}).get("alert_policy") or {}
    return BandThresholds.model_validate(policy.get("bands") or {})


def champion_from_model(problem: str, model: RiskModel, version: str | None = None, gate: Gate = Gate(),
                        tags: Mapping[str, str] | None = None) -> Champion:
    """The served form of a model: its problem as the vocabulary declares it, bands from its spec,
    its promotion record (unchecked unless told)."""
    declared = vocabulary().problem(problem)
    return Champion(
        problem=problem, model=model, version=version or model_version(model), segment=declared.segment,
        outcome=declared.outcome, horizon_days=declared.horizon_days, bands=bands_of(model), gate=gate,
        tags=dict(tags or {}),
    )


def check_champions(champions: Mapping[str, Champion], pipeline_version: str) -> None:
    """Refuse a set of champions that cannot be served, naming each problem and why."""
    from features.catalogue import catalogue

    if not champions:
        raise BackendError("no champion models: train and promote at least one problem before serving")
    stale = [f"{c.problem} (model {c.version}: {c.model.pipeline_version!r})" for c in champions.values()
             if c.model.pipeline_version != pipeline_version]
    if stale:
        raise BackendError(
            f"feature-pipeline version mismatch: the code computes {pipeline_version!r} but these champions "
            f"were trained on another: {', '.join(stale)}; retrain and promote them"
        )
    described = {entry.name for entry in catalogue()}
    wordless = {c.problem: [n for n in c.model.feature_names if n not in described] for c in champions.values()}
    wordless = {p: names for p, names in wordless.items() if names}
    if wordless:
        raise BackendError("champions read features the catalogue does not describe (no words for a reason): "
                           + "; ".join(f"{p}: {', '.join(n[:5])}" for p, n in wordless.items()))


def served_problems(chosen: Sequence[str] | None) -> list[str]:
    """The problems to serve: the chosen ones (each must be declared), else every declared one."""
    declared = [p.id for p in vocabulary().problems()]
    unknown = [p for p in chosen or () if p not in declared]
    if unknown:
        raise BackendError(f"SOTE_RISK_PROBLEMS: unknown problem(s) {', '.join(unknown)}; declared: {', '.join(declared)}")
    return list(chosen) if chosen else declared


def load_champions(problems: Sequence[str], pipeline_version: str, refusal: str = "serving refuses to start",
                   cache: Path | None = None) -> dict[str, Champion]:
    """The `champion` of every problem from the model registry, checked; every problem's error in
    one message (prefixed with `refusal`: what cannot go ahead).

    With a `cache` folder (the service's: <home>/cache), champions recorded there from the
    registry as it still is load from their folders without MLflow, and champions read from the
    registry are recorded there for the next worker (scoring/champion_record.py)."""
    if cache is not None and (recorded := read_record(cache, problems, pipeline_version)) is not None:
        champions = {problem: champion_from_model(problem, model, gate=gate_of(tags), tags=tags)
                     for problem, (model, tags) in recorded.items()}
        check_champions(champions, pipeline_version)
        log.info("champions loaded from their folders as recorded in %s (the registry has not changed)", cache)
        return champions
    from models.registry import configure_tracking, load_model, local_folder, resolve_version

    state = None
    if cache is not None:
        try:
            configure_tracking()  # first: it rewrites the registry of a home that moved
        except Exception:  # noqa: BLE001 (each load below reports it, per problem, as without a cache)
            pass
        state = registry_state()  # before reading: a write meanwhile makes the record stale
    champions, folders, errors = {}, {}, []
    for problem in problems:
        try:
            model = load_model(problem, alias="champion", expected_pipeline_version=pipeline_version)
            tags = dict(resolve_version(problem, "champion").tags)
            folders[problem] = local_folder(problem, model_version(model)) if state is not None else None
        except Exception as error:  # noqa: BLE001 (MLflow raises its own types; all mean "no usable champion")
            errors.append(f"{problem}: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
            continue
        champions[problem] = champion_from_model(problem, model, gate=gate_of(tags), tags=tags)
    if errors:
        raise BackendError(f"{refusal}: " + "; ".join(errors))
    check_champions(champions, pipeline_version)
    if cache is not None:
        recorded = state is not None and all(folders.values())
        if recorded:
            write_record(cache, state, pipeline_version, {p: (c.version, folders[p], c.tags) for p, c in champions.items()})
        log.info("champions loaded from the registry%s", f" and recorded in {cache}" if recorded else "")
    return champions
