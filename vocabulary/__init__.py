"""The problem vocabulary: segments, outcomes, bands and their words, declared once as data.

problems.yaml says what the region predicts for whom; this module loads it into typed, frozen
records (unknown keys refused, cross-references checked) and answers the questions every layer
asks: which problems exist, what a problem id means, how a problem, segment or band reads in
Finnish or English. Read once per process, on first use; nothing happens at import.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from base.errors import SoteRiskError

Language = Literal["fi", "en"]
Band = Literal["low", "moderate", "high", "very_high"]
BANDS: tuple[Band, ...] = ("low", "moderate", "high", "very_high")
GateStatus = Literal["passed", "forced", "unchecked"]
GATE_STATUSES: tuple[GateStatus, ...] = ("passed", "forced", "unchecked")
LANGUAGES: tuple[Language, ...] = ("fi", "en")
ServiceName = Literal["home_care", "home_rehabilitation", "child_welfare_open_care"]
EligibleState = Literal["not_in_hospital", "home_care_running", "not_in_24h_care"]


class VocabularyError(SoteRiskError):
    """problems.yaml is malformed, or a name is not in it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Words(_Strict):
    en: str = Field(min_length=1)
    fi: str = Field(min_length=1)

    def __call__(self, lang: Language) -> str:
        return self.fi if lang == "fi" else self.en


# --- cohort conditions (one key each; see problems.yaml) -------------------------------------


class AgeAtLeast(_Strict):
    age_at_least: int = Field(ge=0, le=130)


class AgeAtMost(_Strict):
    age_at_most: int = Field(ge=0, le=130)


class ServiceRunning(_Strict):
    service_running: ServiceName


class EventWindow(_Strict):
    codes: tuple[str, ...] = Field(min_length=1)
    days: int = Field(gt=0, le=730)


class EventWithin(_Strict):
    event_within: EventWindow


class ValueWindow(_Strict):
    code: str
    value: float
    days: int = Field(gt=0, le=730)


class ValueAtLeast(_Strict):
    value_at_least: ValueWindow


def _condition_kind(value: Any) -> str | None:
    """A condition is a mapping with one key, which names its kind."""
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value))
    if isinstance(value, BaseModel):
        return next(iter(type(value).model_fields))
    return None


Condition = Annotated[
    Union[
        Annotated[AgeAtLeast, Tag("age_at_least")],
        Annotated[AgeAtMost, Tag("age_at_most")],
        Annotated[ServiceRunning, Tag("service_running")],
        Annotated[EventWithin, Tag("event_within")],
        Annotated[ValueAtLeast, Tag("value_at_least")],
        Annotated["AllOf", Tag("all_of")],
    ],
    Discriminator(_condition_kind, custom_error_type="cohort_condition",
                  custom_error_message="a condition is one of age_at_least, age_at_most, service_running, "
                                       "event_within, value_at_least, all_of (one key each)"),
]


class AllOf(_Strict):
    """Every one of these conditions (a segment's list means any one of its conditions)."""

    all_of: tuple[Condition, ...] = Field(min_length=2)


AllOf.model_rebuild()


class Segment(_Strict):
    name: Words
    description: Words
    cohort: tuple[Condition, ...] = Field(min_length=1)
    families: tuple[str, ...] = Field(min_length=1)
    outcomes: tuple[str, ...] = Field(min_length=1)


class Outcome(_Strict):
    code: str
    horizon_days: int = Field(gt=0, le=180)  # the longest horizon in use (home-care failure); labels read the next event after t, unbounded
    eligible_when: tuple[EligibleState, ...] = ()
    label: Words  # a template with {days}
    meaning: Words  # what the score is, a template with {days}

    @model_validator(mode="after")
    def _days_in_words(self) -> "Outcome":
        for field in ("label", "meaning"):
            for lang in LANGUAGES:
                if "{days}" not in getattr(self, field)(lang):
                    raise ValueError(f"{field}.{lang} must contain {{days}} (the horizon)")
        return self


class Problem(_Strict):
    """One prediction problem: a segment's outcome."""

    id: str
    segment: str
    outcome: str
    horizon_days: int


class Vocabulary(_Strict):
    shared_families: tuple[str, ...]
    segments: dict[str, Segment]
    outcomes: dict[str, Outcome]
    bands: dict[str, Words]  # lowest first
    gates: dict[str, Words]  # a served model's promotion record: passed, forced, unchecked

    @model_validator(mode="after")
    def _references(self) -> "Vocabulary":
        for name, segment in self.segments.items():
            if "-" in name or not name.isidentifier():
                raise ValueError(f"segments.{name}: a segment name is lower-case letters, digits and _")
            unknown = [o for o in segment.outcomes if o not in self.outcomes]
            if unknown:
                raise ValueError(f"segments.{name}.outcomes: unknown outcome(s) {unknown}; declared: {list(self.outcomes)}")
        for name in self.outcomes:
            if "-" in name or not name.isidentifier():
                raise ValueError(f"outcomes.{name}: an outcome name is lower-case letters, digits and _")
        if tuple(self.bands) != BANDS:
            raise ValueError("bands: exactly low, moderate, high, very_high, in that order")
        if set(self.gates) != set(GATE_STATUSES):
            raise ValueError(f"gates: exactly {', '.join(GATE_STATUSES)}")
        return self

    # --- names ----------------------------------------------------------------------------

    def segment(self, name: str) -> Segment:
        try:
            return self.segments[name]
        except (KeyError, TypeError):
            raise VocabularyError(f"unknown segment {name!r}; known segments: {', '.join(self.segments)}") from None

    def outcome(self, name: str) -> Outcome:
        try:
            return self.outcomes[name]
        except (KeyError, TypeError):
            raise VocabularyError(f"unknown outcome {name!r}; known outcomes: {', '.join(self.outcomes)}") from None

    def families(self, segment: str) -> tuple[str, ...]:
        """The segment's feature families: the shared ones first, then its own."""
        own = self.segment(segment).families
        return self.shared_families + tuple(f for f in own if f not in self.shared_families)

    def problems(self) -> tuple[Problem, ...]:
        return tuple(
            Problem(id=f"{s}-{o}", segment=s, outcome=o, horizon_days=self.outcomes[o].horizon_days)
            for s, segment in self.segments.items() for o in segment.outcomes
        )

    def problem(self, problem_id: str) -> Problem:
        for problem in self.problems():
            if problem.id == problem_id:
                return problem
        known = ", ".join(p.id for p in self.problems())
        raise VocabularyError(f"unknown problem {problem_id!r}; problems are <segment>-<outcome>: {known}")

    # --- words ----------------------------------------------------------------------------

    def problem_label(self, problem_id: str, lang: Language) -> str:
        """"Unplanned hospitalisation within 90 days (older people and home care)"."""
        problem = self.problem(problem_id)
        outcome = self.outcomes[problem.outcome].label(lang).format(days=problem.horizon_days)
        return f"{outcome} ({self.segments[problem.segment].name(lang)})"

    def outcome_text(self, problem_id: str, lang: Language) -> str:
        """The outcome with its horizon, lower-cased to follow other words ("risk of moving ...")."""
        problem = self.problem(problem_id)
        text = self.outcomes[problem.outcome].label(lang).format(days=problem.horizon_days)
        return text[0].lower() + text[1:]

    def meaning(self, problem_id: str, lang: Language) -> str:
        """What the problem's score is (and is not), in plain words."""
        problem = self.problem(problem_id)
        return " ".join(self.outcomes[problem.outcome].meaning(lang).format(days=problem.horizon_days).split())

    def gate_label(self, status: str, lang: Language) -> str:
        try:
            return self.gates[status](lang)
        except KeyError:
            raise VocabularyError(f"unknown gate status {status!r}; statuses: {', '.join(self.gates)}") from None

    def band_label(self, band: str, lang: Language) -> str:
        try:
            return self.bands[band](lang)
        except KeyError:
            raise VocabularyError(f"unknown risk band {band!r}; bands: {', '.join(self.bands)}") from None


def parse(data: Any, source: str = "problems.yaml") -> Vocabulary:
    """A vocabulary from parsed YAML, or one error naming the file and every bad field."""
    if not isinstance(data, dict):
        raise VocabularyError(f"{source}: must be a YAML mapping")
    try:
        return Vocabulary.model_validate(data)
    except ValidationError as error:
        parts = []
        for item in error.errors():
            parts_of = [str(p) for p in item["loc"] if not str(p).startswith(("function-", "tagged-union"))]
            where = ".".join(p for i, p in enumerate(parts_of) if i == 0 or p != parts_of[i - 1])  # a tag repeats its key
            message = item["msg"].removeprefix("Value error, ")
            parts.append(f"{where}: {message}" if where else message)
        raise VocabularyError(f"{source}: " + "; ".join(dict.fromkeys(parts))) from None


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    text = resources.files("vocabulary").joinpath("problems.yaml").read_text(encoding="utf-8")
    return parse(yaml.safe_load(text))


def problem_ids() -> tuple[str, ...]:
    return tuple(p.id for p in vocabulary().problems())

