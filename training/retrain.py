"""Retraining on evidence (`sote-risk retrain --if-degraded`): the champions whose monitoring
breached are retrained, and each new challenger is compared with its champion on the most recent
complete months before anyone may promote it.

1. **Evidence**: the champion version's latest monitoring run (an MLflow run of kind `monitor`,
   training/monitor_run.record_run) dated at or before the as-of date. A run with breached months
   retrains the problem; a run without skips it; a champion never monitored is named, not guessed at.
   Monitored region by region (a multi-region features folder, tag `region`): the latest run of
   each region on that date, and a breach in any region is a breach of the problem, named with
   its region.
2. **Retrain**: training/pipeline.train_problem on the feature table as it stood at the as-of date
   (splits.table_as_of: no index date after it, no outcome known after it), registered as
   `challenger` with a `retrain` tag naming the evidence.
3. **Compare**: the challenger and the champion score the same rows: the eligible, labelled,
   uncensored rows of the `monitoring.compare_months` latest index months whose outcomes are
   complete at the as-of date (monitoring.outcomes_complete: the months whose realised figures
   `monitor` shows). The paired AUROC difference with its customer-bootstrap interval (both models
   on each resample), each model's AUROC and O/E with intervals, recorded as tags `recent_*` on the
   challenger's version and as an MLflow run of kind `compare`. The compared months must lie in
   the challenger's test period (it learnt nothing from them); the tag `recent_held_out` says
   whether they do.
4. **Promote**: only through training/promotion.promote (`sote-risk promote`, or `retrain
   --promote`), whose gates add the recent-month rule for a retrained challenger (promotion.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pandas as pd

from base.errors import SoteRiskError
from training.evaluate import auroc, bootstrap_auroc_gain_ci, bootstrap_performance_ci, observed_expected
from training.monitoring import recent_complete_months, score_rows
from training.spec import ExperimentSpec
from training.splits import ResolvedPeriod, anchor_time, usable_rows


class NoMonitorRun(SoteRiskError):
    """A champion has no monitoring run to judge it by (run `sote-risk monitor` first)."""


@dataclass(frozen=True)
class Evidence:
    """A champion's latest monitoring run: what `retrain --if-degraded` decides by."""

    problem: str
    version: str
    run_id: str  # monitored region by region: the run of the region with the newest breach (else the first region's)
    as_of: pd.Timestamp
    breached_months: int  # by region: summed over the regions
    breaches: str  # the run's breaches, ' | '-separated ('none' when there were none); by region, each led by its
    # region's name, oldest month first
    regions: tuple[str, ...] = ()  # the regions monitored on that date (none: the home's one region)
    breached_regions: tuple[str, ...] = ()

    @property
    def breached(self) -> bool:
        return self.breached_months > 0

    @property
    def last_breach(self) -> str:
        return self.breaches.split(" | ")[-1] if self.breached else ""

    def seen(self) -> str:
        """Which monitoring the evidence is, for the terminal."""
        if not self.regions:
            return f"monitoring run of {self.as_of.date()} (version {self.version}, run {self.run_id[:8]})"
        return (f"monitoring runs of {self.as_of.date()} in {len(self.regions)} region"
                f"{'' if len(self.regions) == 1 else 's'} (version {self.version})")


def monitor_evidence(problem: str, as_of: pd.Timestamp | None = None, alias: str = "champion") -> Evidence:
    """The latest monitoring run of the version under `alias` dated at or before `as_of` (any date
    when None); the latest date wins, then the latest run of that date. NoMonitorRun when none."""
    from mlflow import MlflowClient

    from models.registry import resolve_version
    from training import tracking

    tracking.configure()
    version = str(resolve_version(problem, alias).version)  # ModelNotFoundError names the alias
    runs = MlflowClient().search_runs(
        [tracking.experiment_id(problem)],
        f"tags.kind = 'monitor' and tags.alias = '{alias}' and tags.model_version = '{version}'", max_results=5000)
    dated = [(pd.Timestamp(r.data.tags["as_of"]), r.info.start_time, r) for r in runs if r.data.tags.get("as_of")]
    if as_of is not None:
        dated = [d for d in dated if d[0] <= as_of]
    if not dated:
        when = f" dated {as_of.date()} or before" if as_of is not None else ""
        raise NoMonitorRun(f"{problem}: version {version} ({alias}) has no monitoring run{when}; run `sote-risk monitor "
                           f"--as-of DATE -p {problem}` first")
    when, _, run = max(dated, key=lambda d: (d[0], d[1]))
    tags = run.data.tags
    if not tags.get("region"):
        return Evidence(problem, version, run.info.run_id, when, int(tags.get("breached_months") or 0),
                        tags.get("breaches", "none"))
    latest: dict[str, object] = {}  # each region's latest run of that date
    for _, _, found in sorted((d for d in dated if d[0] == when and d[2].data.tags.get("region")), key=lambda d: d[1]):
        latest[found.data.tags["region"]] = found
    return region_evidence(problem, version, when, {r: (found.info.run_id, found.data.tags) for r, found in latest.items()})


def region_evidence(problem: str, version: str, as_of: pd.Timestamp, runs: dict[str, tuple[str, dict]]) -> Evidence:
    """The evidence of one date's monitoring runs region by region (region -> (run id, its tags)):
    every region's breaches, led by its name and ordered by month, the run of the newest breach."""
    found = []  # (month, region, breach, run id)
    for region, (run_id, tags) in runs.items():
        if int(tags.get("breached_months") or 0):
            found.extend((text[:7], region, text, run_id) for text in tags.get("breaches", "").split(" | ") if text)
    found.sort()
    first_run = runs[min(runs)][0] if runs else ""
    return Evidence(problem, version, found[-1][3] if found else first_run, as_of,
                    sum(int(tags.get("breached_months") or 0) for _, tags in runs.values()),
                    " | ".join(f"{region}: {text}" for _, region, text, _ in found) or "none",
                    regions=tuple(sorted(runs)), breached_regions=tuple(sorted({region for _, region, _, _ in found})))


# ---------------------------------------------------------------------------------------------
# The comparison on the recent complete months (pure)


@dataclass
class Comparison:
    problem: str
    as_of: pd.Timestamp
    months: list[pd.Timestamp]
    champion_version: str
    rows: int = 0
    customers: int = 0
    events: int = 0
    held_out: bool = False  # every compared month inside the challenger's test period
    figures: dict[str, float] = field(default_factory=dict)  # recent_* (challenger), recent_champion_*, recent_auroc_gain*

    def tags(self) -> dict[str, str]:
        """The version tags the promotion gates read (a figure that could not be computed is left
        out: the gate that needs it then refuses)."""
        out = {"recent_as_of": str(self.as_of.date()), "recent_months": ",".join(f"{m:%Y-%m}" for m in self.months),
               "recent_champion_version": self.champion_version, "recent_rows": str(self.rows),
               "recent_customers": str(self.customers), "recent_events": str(self.events),
               "recent_held_out": "true" if self.held_out else "false"}
        out.update({k: f"{v:.6g}" for k, v in self.figures.items() if not math.isnan(v)})
        return out

    def line(self) -> str:
        """The comparison in one line for the terminal."""
        f, nan = self.figures, float("nan")

        def ci(key: str, digits: int, signed: bool = False) -> str:
            form = f"{{:{'+' if signed else ''}.{digits}f}}"
            return (f"{form.format(f.get(key, nan))} [{form.format(f.get(key + '_ci_low', nan))}, "
                    f"{form.format(f.get(key + '_ci_high', nan))}]")

        span = f"{self.months[0]:%Y-%m}..{self.months[-1]:%Y-%m}" if self.months else "no months"
        return (f"recent complete months {span} ({self.rows:,} rows, {self.customers:,} customers, {self.events:,} "
                f"outcomes{'' if self.held_out else '; NOT all in the challenger test period'}): AUROC challenger "
                f"{ci('recent_auroc', 3)} champion {ci('recent_champion_auroc', 3)} difference "
                f"{ci('recent_auroc_gain', 3, True)}; O/E challenger {ci('recent_observed_expected', 2)} champion "
                f"{ci('recent_champion_observed_expected', 2)}")


def compare_rows(frame: pd.DataFrame, spec: ExperimentSpec, months: list[pd.Timestamp]) -> pd.DataFrame:
    """The rows both models are judged on: eligible, uncensored, labelled rows of `months`."""
    rows = usable_rows(frame, spec)
    return rows.loc[rows["prediction_time"].isin(months).to_numpy()]


def compared_months(frame: pd.DataFrame, spec: ExperimentSpec, as_of: pd.Timestamp, count: int) -> list[pd.Timestamp]:
    """The `count` latest eligible index months of `frame` whose outcomes are complete at `as_of`
    and in the data (before splits.anchor_time): the months a challenger is compared on."""
    eligible = frame.loc[frame[spec.eligible_column].fillna(False).astype(bool).to_numpy(), "prediction_time"]
    # complete at the as-of date and in the data (a date past the extract's end leaves its last
    # months' windows running past the data: censored, not complete)
    in_data = anchor_time(frame, spec)
    return recent_complete_months([m for m in eligible.unique() if m < in_data], spec.horizon_days, as_of, count)


def compare_recent(challenger, champion, spec: ExperimentSpec, frame: pd.DataFrame, as_of: pd.Timestamp,  # noqa: ANN001
                   count: int, samples: int, seed: int, test_period: ResolvedPeriod | None = None) -> Comparison:
    """Challenger and champion (RiskModels) on the same rows of the `count` latest index months of
    `frame` whose outcomes are complete at `as_of` (the table as it stood then) and in the data
    (before splits.anchor_time). `test_period`: the
    challenger's; the comparison is held out when every month lies inside it."""
    months = compared_months(frame, spec, as_of, count)
    out = Comparison(spec.problem, pd.Timestamp(as_of), months, str(champion.metadata.get("model_version", "")))
    out.held_out = bool(months) and test_period is not None and all(
        (test_period.start is None or m >= test_period.start) and m < test_period.end for m in months)
    rows = compare_rows(frame, spec, months)
    out.rows, out.customers = len(rows), int(rows["subject_id"].nunique())
    y = rows[spec.label_column].astype(bool).to_numpy()
    out.events = int(y.sum())
    if out.events == 0 or out.events == len(y):
        return out  # no AUROC, no interval: the gates refuse what is not shown
    ids = rows["subject_id"].to_numpy()
    p, q = score_rows(challenger, rows), score_rows(champion, rows)
    for prefix, scores in (("recent_", p), ("recent_champion_", q)):
        out.figures[f"{prefix}auroc"] = auroc(y, scores)
        out.figures[f"{prefix}observed_expected"] = observed_expected(y, scores)
        intervals = bootstrap_performance_ci(ids, y, scores, samples, seed)
        for name in ("auroc", "observed_expected"):
            out.figures[f"{prefix}{name}_ci_low"], out.figures[f"{prefix}{name}_ci_high"] = intervals[name]
    out.figures["recent_auroc_gain"] = out.figures["recent_auroc"] - out.figures["recent_champion_auroc"]
    out.figures["recent_auroc_gain_ci_low"], out.figures["recent_auroc_gain_ci_high"] = bootstrap_auroc_gain_ci(
        ids, y.astype(float), p, q, samples, seed)
    return out


# ---------------------------------------------------------------------------------------------
# One problem retrained (MLflow, the registry)


@dataclass
class Retrained:
    problem: str
    version: str  # the challenger's
    as_of: pd.Timestamp
    comparison: Comparison | None
    reasons: list[str]  # why the challenger may not replace the champion now (all gates; empty = passes)
    metrics: dict[str, float]
    # a champion recalibrated on recent months (training/recalibrate_recent.py): the months, rows,
    # outcomes, method and threshold; empty for a retrained challenger
    recalibration: dict[str, object] = field(default_factory=dict)


def retrain_tag(as_of: pd.Timestamp, champion_version: str, evidence: Evidence | None, **more: object) -> str:
    """The `retrain` tag of a challenger made on evidence (JSON: the as-of date, the champion, the
    monitoring run that called for it, and `more`); the promotion gates read the recent-month rule
    for a version that has it."""
    why = ({"monitor_run": evidence.run_id, "monitor_as_of": str(evidence.as_of.date()),
            "breached_months": evidence.breached_months, "last_breach": evidence.last_breach[:1000],
            **({"breached_regions": ",".join(evidence.breached_regions)} if evidence.regions else {})}
           if evidence is not None else {"monitor_run": "", "reason": "retrained without --if-degraded"})
    return json.dumps({"as_of": str(as_of.date()), "champion_version": champion_version, **why, **more},
                      ensure_ascii=False)[:4900]


def retrain_problem(spec: ExperimentSpec, features_dir, as_of: pd.Timestamp, *, evidence: Evidence | None,  # noqa: ANN001
                    dataset_dir=None, progress=lambda _: None) -> Retrained:  # noqa: ANN001
    """Train `spec`'s problem on the table as of `as_of` (a challenger), compare it with the
    champion on the recent complete months and record the comparison on the challenger's version.
    `evidence`: the monitoring run that called for it (None: retrained without evidence)."""
    from features import pipeline_version
    from models.registry import ModelNotFoundError, load_model
    from training.data import read_feature_table
    from training.monitor_run import monitor_columns
    from training.pipeline import train_problem
    from training.splits import table_as_of

    try:
        champion = load_model(spec.problem, "champion", expected_pipeline_version=pipeline_version())
    except ModelNotFoundError:
        champion = None
    tag = retrain_tag(as_of, str(champion.metadata["model_version"]) if champion is not None else "", evidence)
    result = train_problem(spec, features_dir, dataset_dir=dataset_dir, as_of=as_of, extra_tags={"retrain": tag},
                           progress=progress)
    comparison = None
    if champion is not None:
        progress(f"{spec.problem}: comparing version {result.model_version} with the champion (version "
                 f"{champion.metadata['model_version']}) on the recent complete months")
        columns = list(dict.fromkeys([*monitor_columns(result.model, spec), *monitor_columns(champion, spec)]))
        frame = table_as_of(read_feature_table(features_dir, spec, columns), spec, as_of)
        comparison = record_comparison(spec, result.model, result.model_version, champion, frame, as_of, tag,
                                       test_period=result.periods[-1])
    return Retrained(spec.problem, result.model_version, as_of, comparison, gates_now(spec.problem, result.model_version),
                     result.metrics)


def record_comparison(spec: ExperimentSpec, challenger, version: str, champion, frame: pd.DataFrame,  # noqa: ANN001
                      as_of: pd.Timestamp, retrain_tag: str, *, test_period: ResolvedPeriod | None) -> Comparison:
    """compare_recent of the registered challenger `version` with the champion on `frame` (the
    table as of `as_of`), recorded as the `recent_*` tags of the version (with `recent_comparison`:
    passed, or failed and why) and as an MLflow run of kind `compare`."""
    import mlflow
    from mlflow import MlflowClient

    from models.registry import model_name
    from training import tracking
    from training.promotion import recent_reasons

    comparison = compare_recent(challenger, champion, spec, frame, as_of, spec.monitoring.compare_months,
                                spec.evaluation.bootstrap_samples, spec.seed, test_period=test_period)
    verdict = recent_reasons({"retrain": retrain_tag, **comparison.tags()}, comparison.champion_version, spec.gates)
    tags = {**comparison.tags(), "recent_comparison": "passed" if not verdict else "failed: " + "; ".join(verdict)}
    client, name = MlflowClient(), model_name(spec.problem)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value[:4900])
    with mlflow.start_run(experiment_id=tracking.experiment_id(spec.problem),
                          run_name=f"compare-{spec.problem}-{as_of:%Y-%m}"):
        mlflow.set_tags({"problem": spec.problem, "kind": "compare", "challenger_version": version,
                         **{k: v[:4900] for k, v in tags.items()}})
        mlflow.log_metrics(tracking.clean_metrics({**comparison.figures, "recent_rows": comparison.rows,
                                                   "recent_events": comparison.events}))
    return comparison


def gates_now(problem: str, version: str) -> list[str]:
    """Why registered `version` may not replace the version that is champion now (all gates, as
    `sote-risk promote` reads them from the registry; empty = passes)."""
    from mlflow import MlflowClient

    from models.registry import ModelNotFoundError, model_name, resolve_version
    from training.promotion import gate_reasons
    from training.spec import stored_gates

    challenger = MlflowClient().get_model_version(model_name(problem), version)
    try:
        current = resolve_version(problem, "champion")
    except ModelNotFoundError:
        current = None
    return gate_reasons(challenger.tags, current.tags if current is not None else None,
                        stored_gates(json.loads(challenger.tags.get("gates", "{}"))),
                        str(current.version) if current is not None else None)


def breach_summary(evidence: Evidence) -> str:
    """`N month(s) breached, last <month: what>` of a monitoring run, for the terminal (by region:
    `in <regions> (k of n regions)`, the last led by its region)."""
    if not evidence.breached:
        return "no breach"
    where = (f" in {', '.join(evidence.breached_regions)} ({len(evidence.breached_regions)} of {len(evidence.regions)} "
             f"regions)" if evidence.regions else "")
    return f"{evidence.breached_months} month(s) breached{where}, last {evidence.last_breach}"


def months_text(months: list[pd.Timestamp]) -> str:
    return ", ".join(f"{m:%Y-%m}" for m in months) if months else "none"

