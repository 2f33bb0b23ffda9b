"""Experiment specs: one YAML file per problem in experiments/, loaded into typed models.

A spec says what to predict (segment x outcome x horizon), how to split by index date, which
feature families to use, the Optuna search space and budget, the alert policy and the gates a
model must pass before promotion. Loading refuses a bad spec with a message naming the file and
the field, so a typo never silently changes an experiment.

Periods. Each of train / validation / test is `{start, end}` over index dates, start inclusive,
end exclusive. Either all bounds are integers (months relative to the *anchor*, the month after
the last index date whose label windows are complete in the feature table; `end: 0` means "up
to the anchor") or all are ISO dates. `train.start` may be null (from the first index date).
Relative periods make one spec work on any simulated span.

Train, validation and test are all temporal, in that order: early stopping, the calibrator and
the alert threshold are fitted on a later period than the trees, and judged on a later one still,
as in production (a model trained on the past scores the future).

Gap rule (checked at load time). A row at index date t has the label window (t, t + horizon]
(features/labels.py). No index date of a later period may fall inside the label window of a row
of an earlier period, so nothing the model or its calibrator learns from has seen the later
period's outcomes. Index dates of a period are < its end, so the rule is exactly
`later.start - earlier.end >= horizon_days` for train -> validation and validation -> test
(train -> test follows). For relative specs the check uses the fewest days that N consecutive
calendar months can have (3 months can be 89 days, so a 90-day horizon needs a 4-month gap); the
resolved dates are checked again in splits.py.

Subsampling (spec-driven, for training time at region size): `train.every_months: k` keeps
every k-th index month of the train period, counted back from its last month. Consecutive
monthly rows of one customer are highly correlated, so this costs little signal; validation and
test always use every month.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from base.errors import SoteRiskError
from vocabulary import VocabularyError, vocabulary

class SpecError(SoteRiskError):
    """An experiment spec is missing, malformed or inconsistent."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Bound = Union[int, dt.date, None]


class Period(_Strict):
    start: Bound = None
    end: Bound
    every_months: int = Field(1, ge=1, le=12)  # train only: keep every k-th index month (see above)

    @model_validator(mode="after")
    def _ordered(self) -> "Period":
        if self.start is not None and type(self.start) is not type(self.end):
            raise ValueError("start and end must both be month offsets (integers) or both ISO dates")
        if self.start is not None and self.start >= self.end:
            raise ValueError(f"start ({self.start}) must be before end ({self.end})")
        return self


class Split(_Strict):
    train: Period
    validation: Period
    test: Period

    @property
    def relative(self) -> bool:
        return isinstance(self.test.end, int)

    @model_validator(mode="before")
    @classmethod
    def _no_customer_holdout(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("validation"), dict) and "customers" in data["validation"]:
            raise ValueError(
                "validation: {customers: share} (a customer hold-out of the train period) is no longer supported; "
                "give a temporal period {start, end} between train and test, a horizon-long gap on each side"
            )
        return data

    @model_validator(mode="after")
    def _same_kind(self) -> "Split":
        periods = (self.train, self.validation, self.test)
        kinds = {type(p.end) for p in periods}
        if len(kinds) != 1:
            raise ValueError("train, validation and test must all be relative (months) or all be ISO dates")
        if self.validation.start is None or self.test.start is None:
            raise ValueError("validation.start and test.start are required (only train.start may be null)")
        if self.validation.every_months != 1 or self.test.every_months != 1:
            raise ValueError("every_months subsamples the train period only; validation and test use every month")
        return self


class FloatParam(_Strict):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False


class IntParam(_Strict):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False


class CategoricalParam(_Strict):
    type: Literal["categorical"]
    choices: list[Any]


SearchParam = Annotated[Union[FloatParam, IntParam, CategoricalParam], Field(discriminator="type")]


class Search(_Strict):
    trials: int = Field(30, ge=1)
    num_boost_round: int = Field(500, ge=1)
    early_stopping_rounds: int = Field(30, ge=1)
    # the pruner sees validation AUROC every `report_every` boosting rounds
    report_every: int = Field(10, ge=1)
    params: dict[str, SearchParam]
    fixed: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _ranges(cls, params: dict[str, Any]) -> dict[str, Any]:
        for name, p in params.items():
            if isinstance(p, (FloatParam, IntParam)) and p.low > p.high:
                raise ValueError(f"{name}: low ({p.low}) is above high ({p.high})")
            if isinstance(p, (FloatParam, IntParam)) and p.log and p.low <= 0:
                raise ValueError(f"{name}: a log-scaled range needs low > 0")
        return params


class AlertPolicy(_Strict):
    """Threshold chosen on validation. With both limits the stricter (higher) threshold wins."""

    max_alerts_per_1000_per_month: float | None = Field(None, gt=0, le=1000)
    target_ppv: float | None = Field(None, gt=0, lt=1)

    @model_validator(mode="after")
    def _one_given(self) -> "AlertPolicy":
        if self.max_alerts_per_1000_per_month is None and self.target_ppv is None:
            raise ValueError("give max_alerts_per_1000_per_month and/or target_ppv")
        return self


# Gate fields that specs stored inside older model versions may hold and that no longer gate
# anything. Read through `stored_gates` / `parse_stored_spec` only: a spec file naming one is refused.
RETIRED_GATES = ("max_test_ece",)


class Gates(_Strict):
    """What a challenger must show on its test period to replace the champion (training/promotion.py).

    The calibration and baseline gates read 95 % customer-bootstrap intervals, not points: the
    whole interval must lie inside the band (above the floor), so a figure the test sample's luck
    could have produced does not pass, and a rare outcome's few events widen its interval instead
    of hiding its errors. Calibration is judged as a ratio and a slope, which mean the same at any
    prevalence (the absolute ECE it replaced passed a constant 5 % at a 0.36 % outcome rate).
    Bands are chosen on reasoning and validation data (benchmarks/calibration_gates.py), never
    on test-period figures.
    """

    # observed / expected outcomes: the interval must lie within [1 / max_oe_ratio, max_oe_ratio]
    max_oe_ratio: float = Field(1.25, gt=1)
    # calibration slope (1 = predictions spread as far as the outcomes): the interval must lie within
    min_calibration_slope: float = Field(0.7, gt=0, lt=1)
    max_calibration_slope: float = Field(1.4, gt=1)
    # challenger may be at most this much below the champion's test_auroc
    auroc_tolerance: float = Field(0.0, ge=0)
    # a challenger retrained on evidence (`sote-risk retrain`) is compared with the champion on the
    # same rows of the most recent complete months (training/retrain.py): the lower end of the
    # paired 95 % interval of (challenger - champion) AUROC there must be at least -recent_auroc_margin
    # (not shown worse by more than this: non-inferiority, since a retrain for drift or calibration
    # need not gain discrimination)
    recent_auroc_margin: float = Field(0.02, ge=0, le=0.2)
    # the lower end of the paired interval of (test_auroc - the best baseline's) must be above this:
    # a model not shown to beat logistic regression or the clinical score on the same rows is not
    # worth serving
    min_auroc_over_baseline: float = Field(0.0, ge=-0.1, le=0.5)
    subgroup_auroc_tolerance: float = Field(0.10, gt=0)
    subgroup_oe_tolerance: float = Field(0.25, gt=0)  # |observed/expected - 1|
    subgroup_alert_rate_ratio: float = Field(3.0, gt=1)  # flagged, not gated (risk differs by group)
    min_subgroup_rows: int = Field(200, ge=1)
    min_subgroup_events: int = Field(20, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _retired(cls, data: Any) -> Any:
        if isinstance(data, dict) and (retired := [k for k in RETIRED_GATES if k in data]):
            raise ValueError(f"{', '.join(retired)} is retired: calibration is gated by the intervals of observed/expected "
                             "(max_oe_ratio) and of the calibration slope (min_calibration_slope, max_calibration_slope)")
        return data


def stored_gates(data: dict[str, Any]) -> Gates:
    """The gates of a model version trained before a gate was retired (its registry tag or spec):
    the retired fields are dropped, the others read strictly; new gates take their defaults."""
    return Gates.model_validate({k: v for k, v in data.items() if k not in RETIRED_GATES})


class Subgroups(_Strict):
    columns: list[str] = Field(default_factory=lambda: ["sex", "municipality", "language"])
    age_column: str | None = "age_years"
    age_bands: list[float] = Field(default_factory=lambda: [18, 65, 75, 85])


class LogisticBaselineSpec(_Strict):
    features: list[str] = Field(min_length=1)


class ClinicalScoreSpec(_Strict):
    kind: Literal["lace_like", "maple_like"]
    # score inputs: role -> feature column (roles are the score's, see models/baselines.py)
    columns: dict[str, str]


class Baselines(_Strict):
    logistic: LogisticBaselineSpec
    clinical_score: ClinicalScoreSpec


class Evaluation(_Strict):
    bootstrap_samples: int = Field(200, ge=10)
    calibration_bins: int = Field(10, ge=2)
    shap_sample: int = Field(1000, ge=10)


class Monitoring(_Strict):
    """When a monthly monitoring run (training/monitoring.py, `sote-risk monitor`) calls a month
    breached. Operational, not part of training: read from the spec file in experiments/ at the
    time of the run, left out of the spec's digest.

    Drift is the population stability index (PSI) of a month's rows against the model's training
    reference (bins of the training period; 0.1 is commonly read as a moderate and 0.2 as a major
    shift). Calibration is judged only in months whose outcomes are complete and that have at least
    `min_events` outcomes, and only when the whole 95 % customer-bootstrap interval lies outside the
    band (the mirror of the promotion gates; a small month's luck raises no alarm)."""

    max_score_psi: float = Field(0.2, gt=0)
    max_feature_psi: float = Field(0.2, gt=0)
    step_feature_psi: float = Field(0.1, gt=0, description="a top feature beyond max_feature_psi breaches only when it "
                                    "is also beyond this against its own previous step_months months (a step, not a "
                                    "slow build-up over years, which is listed as a notice)")
    step_months: int = Field(12, ge=1, le=36)
    top_features: int = Field(10, ge=1, description="the model's most important features (gain) whose drift breaches")
    bins: int = Field(10, ge=2, le=50, description="quantile bins of the reference (plus one for missing values)")
    oe_band: tuple[float, float] = (0.8, 1.25)
    oe_sustained_months: int = Field(3, ge=0, le=12, description="also a breach: this many complete months in a row "
                                     "whose O/E interval lies wholly on the same side of 1 (a calibration that is "
                                     "going, before it has gone outside the band); 0 turns it off")
    code_step_ratio: float = Field(2.0, gt=1, description="a code's monthly count is a step when below the lowest of "
                                   "its previous step_months months divided by this, or above their highest times "
                                   "this (training/code_steps.py); a step in a code a top feature reads breaches")
    code_step_min_events: int = Field(50, ge=1, description="codes recorded fewer times a month than this (the previous "
                                      "months' mean for a fall, the month's count for a rise) are not judged")
    code_step_p_value: float = Field(1e-4, gt=0, lt=1, description="and the count is improbable as Poisson chance "
                                     "around the previous months' mean")
    oe_after_code_step: bool = Field(True, description="after a step in a code a top feature reads, a complete month "
                                     "in the step_months from the step on breaches when its O/E interval lies wholly on "
                                     "one side of 1 (the cause is known: no run of months needed)")
    slope_band: tuple[float, float] = (0.6, 1.6)
    min_events: int = Field(20, ge=1)
    bootstrap_samples: int = Field(200, ge=10)
    compare_months: int = Field(3, ge=1, le=12, description="`sote-risk retrain`: the most recent index months whose "
                                "outcomes are complete on which a retrained challenger is compared with the champion")
    recalibration_months: int = Field(3, ge=1, le=12, description="`sote-risk retrain --recalibrate`: the latest "
                                      "complete index months whose label windows close before the first compared "
                                      "month, on which the champion's calibrator is refitted (its trees unchanged)")

    @model_validator(mode="after")
    def _ordered_bands(self) -> "Monitoring":
        for name in ("oe_band", "slope_band"):
            low, high = getattr(self, name)
            if not 0 < low < 1 < high:
                raise ValueError(f"{name} must be (low, high) with 0 < low < 1 < high, got {(low, high)}")
        return self


class ExperimentSpec(_Strict):
    problem: str
    description: str = ""
    intended_use: str = ""
    intended_use_fi: str = ""  # the same in Finnish: the served model card shows it
    segment: str  # a segment of vocabulary/problems.yaml
    outcome: str  # one of that segment's outcomes
    horizon_days: int = Field(gt=0, le=730)  # must be the outcome's horizon in the vocabulary (it defines the labels)
    seed: int = 20240101
    split: Split
    # feature-catalogue families (features.catalogue(): FeatureInfo.family) the model may use,
    # plus extra column globs (fnmatch) and exclusions; see splits.select_features
    feature_families: list[str] = Field(min_length=1)
    extra_features: list[str] = Field(default_factory=list)
    exclude_features: list[str] = Field(default_factory=list)
    # globs of features whose risk must not fall when they rise (LightGBM monotone constraints)
    monotone_increasing: list[str] = Field(default_factory=list)
    search: Search
    alert_policy: AlertPolicy
    gates: Gates = Field(default_factory=Gates)
    subgroups: Subgroups = Field(default_factory=Subgroups)
    baselines: Baselines
    evaluation: Evaluation = Field(default_factory=Evaluation)
    monitoring: Monitoring = Field(default_factory=Monitoring)

    @model_validator(mode="after")
    def _consistent(self) -> "ExperimentSpec":
        expected = f"{self.segment}-{self.outcome}"
        if self.problem != expected:
            raise ValueError(f"problem must be '<segment>-<outcome>' = {expected!r}, got {self.problem!r}")
        try:
            declared = vocabulary().problem(self.problem)
        except VocabularyError as error:
            raise ValueError(str(error)) from None
        if self.horizon_days != declared.horizon_days:
            raise ValueError(
                f"horizon_days is {self.horizon_days} but the labels of {self.outcome} are made over "
                f"{declared.horizon_days} days (vocabulary/problems.yaml); the spec must say {declared.horizon_days}"
            )
        check_gaps(self.split, self.horizon_days)
        return self

    @property
    def label_column(self) -> str:
        return f"label_{self.outcome}"

    @property
    def censor_column(self) -> str:
        return f"censor_{self.outcome}"

    @property
    def eligible_column(self) -> str:
        return f"eligible_{self.outcome}"

    @property
    def outcome_time_column(self) -> str:
        return f"outcome_time_{self.outcome}"

    def with_trials(self, trials: int | None) -> "ExperimentSpec":
        if trials is None:
            return self
        return self.model_copy(update={"search": self.search.model_copy(update={"trials": trials})})

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def digest(self) -> str:
        """Stable content hash (hashlib, not hash()) naming studies and runs; the monitoring
        thresholds are operational and left out (changing them retrains nothing)."""
        data = {k: v for k, v in self.as_dict().items() if k != "monitoring"}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@lru_cache(maxsize=64)
def min_days_in_months(months: int) -> int:
    """The fewest days that `months` consecutive calendar months can span (leap cycle checked)."""
    if months <= 0:
        return 0
    best = None
    for year in range(2000, 2004):
        for month in range(1, 13):
            start = dt.date(year, month, 1)
            y, m = divmod(month - 1 + months, 12)
            days = (dt.date(year + y, m + 1, 1) - start).days
            best = days if best is None else min(best, days)
    return best


def gap_days(earlier_end: Bound, later_start: Bound) -> int:
    if isinstance(earlier_end, int):
        return min_days_in_months(later_start - earlier_end)
    return (later_start - earlier_end).days


def check_gaps(split: Split, horizon_days: int) -> None:
    """Each later period starts at least `horizon_days` after the earlier one ends (module doc)."""
    pairs = ((("train", split.train), ("validation", split.validation)),
             (("validation", split.validation), ("test", split.test)))
    for (a_name, a), (b_name, b) in pairs:
        if b.start < a.end:
            raise ValueError(f"split: {b_name} starts ({b.start}) before {a_name} ends ({a.end}); periods overlap")
        gap = gap_days(a.end, b.start)
        if gap < horizon_days:
            raise ValueError(
                f"split: gap between {a_name}.end ({a.end}) and {b_name}.start ({b.start}) can be {gap} days, "
                f"less than the horizon ({horizon_days} days); {b_name} would overlap {a_name}'s label windows"
            )


def experiments_dir() -> Path:
    """experiments/ at the repository root (specs are data, not a Python package)."""
    return Path(__file__).resolve().parents[1] / "experiments"


def _format_errors(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in item["loc"])
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def parse_spec(data: Any, source: str = "<spec>") -> ExperimentSpec:
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a spec must be a YAML mapping, got {type(data).__name__}")
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(f"{source}: {_format_errors(error)}") from None


def parse_stored_spec(data: Any, source: str) -> ExperimentSpec:
    """A spec stored inside a registered model (its own record of how it was trained): as
    parse_spec, after dropping the gate fields retired since (RETIRED_GATES)."""
    if isinstance(data, dict) and isinstance(data.get("gates"), dict):
        data = {**data, "gates": {k: v for k, v in data["gates"].items() if k not in RETIRED_GATES}}
    return parse_spec(data, source)


def load_spec_file(path: Path) -> ExperimentSpec:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML ({error})".replace("\n", " ")) from None
    spec = parse_spec(data, str(path))
    if Path(path).stem != spec.problem:
        raise SpecError(f"{path}: file name must match problem {spec.problem!r} ({spec.problem}.yaml)")
    return spec


def list_problems(directory: Path | None = None) -> list[str]:
    directory = directory or experiments_dir()
    return sorted(p.stem for p in Path(directory).glob("*.yaml"))


def load_spec(problem: str, directory: Path | None = None) -> ExperimentSpec:
    directory = directory or experiments_dir()
    path = Path(directory) / f"{problem}.yaml"
    if not path.exists():
        known = ", ".join(list_problems(directory)) or "none"
        raise SpecError(f"unknown problem {problem!r}; specs in {directory}: {known}")
    return load_spec_file(path)
