"""`run --engine spark`: the population run over customer shards of many regions.

No scoring is implemented here, and no card. Each region's customers are cut into shards of
consecutive subject ids (`plan_shards`); one Spark task a shard (`mapInPandas` over the shard
list) reads its customers and their events from the region's Parquet files with the reader the
pandas `run` uses (scoring.history.load_history: History.from_arrow, from_frames' Arrow twin,
giving the same arrays), and runs `alerts.population.score_population`, the pandas run's own
scoring (scoring/path.py score_pairs -> calibrated probability -> band), with the champions
loaded once per Python worker. A customer's scores depend only on that customer's events and
the index time, so the union of the shards' rows is the pandas run's scores (tests hold them
equal). The events file is sorted by customer (the data contract), so a task decodes only the
row groups of its own customers: no event crosses the JVM or a shuffle.

A task also explains, in one SHAP batch per problem, the rows that can raise an alert under the
problem's policy whatever the outbox holds (alerts.rules.may_alert: at the level, or above the
lowest band when a band rise alerts), because the features are in the task and not on the
driver. The driver collects only scored rows (region, subject_id, problem, probability, band,
municipality, model version, gate, and the reasons of those rows as JSON), and hands each
region's rows to `alerts.population.record_population`, the pandas run's recording: one alert
cycle per region, in the manifest's order, into the home's outbox, with the same cards, the same
held alerts of forced models and the same re-run safety. A card that names a row without
reasons would be a disagreement between may_alert and the rules; it stops the run.

Champions: the driver resolves the `champion` of every served problem in the home's registry
(and records them in <home>/cache, scoring/champion_record.py); each Python worker loads those
same versions once (the record, or MLflow when the registry changed) and refuses to score when
its feature code computes another pipeline version than the driver's, or the registry now names
another champion (promoted during the run: run again). On a cluster the home folder (registry,
model files, cache) and the dataset must be on storage every executor sees.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import time as clock
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from base.errors import SoteRiskError
from scaleout.layout import MultiRegionDataset

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from pyspark.sql import SparkSession

    from alerts.policy import AlertPolicy
    from alerts.population import Links, PopulationResult, PopulationScores
    from scoring.champions import Champion

SHARD_CUSTOMERS = 10_000
SHARD_COLUMNS = ["region", "folder", "shard", "low", "high", "customers"]
SHARD_SCHEMA = "region string, folder string, shard int, low long, high long, customers long"
ROW_COLUMNS = ["region", "shard", "subject_id", "problem", "probability", "band", "municipality", "model_version", "gate",
               "reasons", "customers", "error"]
# one row per scored pair; one summary row per shard (problem null, customers = the shard's)
ROW_SCHEMA = ("region string, shard int, subject_id long, problem string, probability double, band string, "
              "municipality string, model_version string, gate string, reasons string, customers long, error string")


class ShardScoringError(SoteRiskError):
    """A shard could not be scored (its data, its champions, its code), or its rows do not add up."""


@dataclass(frozen=True)
class Shard:
    """One task: the customers low <= subject_id <= high of a region's dataset folder."""

    region: str
    folder: str  # absolute: DATA/region=<name>
    shard: int
    low: int
    high: int
    customers: int


@dataclass(frozen=True)
class ChampionPlan:
    """What every worker loads: the driver's champions by version, from the same home."""

    home: str  # absolute
    problems: tuple[str, ...]
    versions: tuple[tuple[str, str], ...]  # (problem, registry version)
    pipeline_version: str
    tracking_uri: str | None = None  # the driver's MLFLOW_TRACKING_URI (a tracking server), if any

    @classmethod
    def of(cls, champions: Mapping[str, Champion], home: Path, pipeline_version: str) -> "ChampionPlan":
        return cls(str(Path(home).absolute()), tuple(champions), tuple((p, c.version) for p, c in champions.items()),
                   pipeline_version, os.environ.get("MLFLOW_TRACKING_URI") or None)


def plan_shards(dataset: MultiRegionDataset, regions: Sequence[str] | None = None,
                shard_customers: int = SHARD_CUSTOMERS) -> list[Shard]:
    """Each chosen region's customers in shards of at most `shard_customers` consecutive subject
    ids (read from customers.parquet: one column), in the manifest's region order."""
    import pyarrow.parquet as pq

    if shard_customers < 1:
        raise ShardScoringError(f"customers a shard must be at least 1 (got {shard_customers})")
    shards = []
    for name, folder in dataset.folders(regions).items():
        path = folder / "customers.parquet"
        try:
            ids = np.unique(pq.read_table(path, columns=["subject_id"]).column(0).to_numpy())
        except Exception as error:  # noqa: BLE001 (pyarrow raises several types for a missing or bad file)
            raise ShardScoringError(f"{path}: cannot read its subject_id column ({error})") from None
        count = max(1, math.ceil(len(ids) / shard_customers))
        for number, part in enumerate(np.array_split(ids, count)):
            if len(part):
                shards.append(Shard(name, str(folder.absolute()), number, int(part[0]), int(part[-1]), len(part)))
    return shards


# ---- in the Python workers ----------------------------------------------------------------------

_LOADED: dict[ChampionPlan, dict[str, Champion]] = {}  # one worker process's champions (one plan at a time)


def worker_champions(plan: ChampionPlan) -> dict[str, Champion]:
    """The plan's champions, loaded once per Python worker process (Spark reuses its workers
    across tasks) from the home's registry through its champion record; the same versions as the
    driver's, on the same feature pipeline, or a ShardScoringError saying which differs."""
    found = _LOADED.get(plan)
    if found is not None:
        return found
    from features import pipeline_version
    from scoring.champions import load_champions

    code = pipeline_version()
    if code != plan.pipeline_version:
        raise ShardScoringError(f"this executor's feature code computes pipeline {code[:16]}, the driver's "
                                f"{plan.pipeline_version[:16]}: run one version of the code on the driver and every executor")
    os.environ["SOTE_RISK_HOME"] = plan.home  # the registry and the cache the driver read
    if plan.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = plan.tracking_uri
    champions = load_champions(plan.problems, plan.pipeline_version, "an executor cannot load the champions",
                               cache=Path(plan.home) / "cache")
    wanted = dict(plan.versions)
    changed = [f"{p} (version {wanted[p]} on the driver, {c.version} now)" for p, c in champions.items() if c.version != wanted[p]]
    if changed:
        raise ShardScoringError(f"the champions changed while the run was going: {', '.join(changed)}; run again")
    _LOADED.clear()
    _LOADED[plan] = champions
    return champions


def score_shard(shard: Shard, champions: Mapping[str, Champion], policies: Mapping[str, AlertPolicy],
                time: pd.Timestamp, top_k: int) -> pd.DataFrame:
    """One shard's rows (ROW_COLUMNS): the pandas run's scoring on the shard's customers, bands,
    and the reasons of every row may_alert flags (one SHAP batch per problem). Pure apart from
    reading the shard's files, so tests can call it without Spark."""
    from alerts.population import score_population
    from alerts.rules import may_alert
    from scoring.bands import band_for
    from scoring.history import load_history

    store = load_history(Path(shard.folder), subjects=(shard.low, shard.high))
    if store.history.n_customers != shard.customers:
        raise ShardScoringError(f"{shard.folder}: subject ids {shard.low}..{shard.high} hold {store.history.n_customers} "
                                f"customers, {shard.customers} when the run was planned (did the dataset change?)")
    scored = score_population(store, champions, time, top_k=top_k)
    scores = scored.scores.reset_index(drop=True)
    reasons = np.full(len(scores), None, dtype=object)
    bands = np.empty(len(scores), dtype=object)
    versions = np.empty(len(scores), dtype=object)
    gates = np.empty(len(scores), dtype=object)
    for problem, rows in scores.groupby("problem", sort=True).groups.items():
        champion, where = champions[str(problem)], np.asarray(rows)
        probabilities = scores["probability"].to_numpy()[where]
        bands[where] = [band_for(float(p), champion.bands) for p in probabilities]
        versions[where], gates[where] = champion.version, champion.gate.status
        flagged = where[may_alert(probabilities, policies[str(problem)])]
        if len(flagged):
            subjects = [int(s) for s in scores["subject_id"].to_numpy()[flagged]]
            explained = scored.explain(str(problem), subjects)
            reasons[flagged] = [json.dumps([r.model_dump(mode="json") for r in found], ensure_ascii=False) for found in explained]
    rows = pd.DataFrame({
        "region": shard.region, "shard": shard.shard, "subject_id": scores["subject_id"].astype("int64"),
        "problem": scores["problem"].astype(str), "probability": scores["probability"].astype("float64"), "band": bands,
        "municipality": scores["municipality"].astype(str), "model_version": versions, "gate": gates, "reasons": reasons,
        "customers": None, "error": None,
    }, columns=ROW_COLUMNS)
    summary = _summary(shard, customers=store.history.n_customers)
    return pd.concat([rows, summary], ignore_index=True) if len(rows) else summary


def _summary(shard: Shard, *, customers: int | None = None, error: str | None = None) -> pd.DataFrame:
    return pd.DataFrame([{"region": shard.region, "shard": shard.shard, "subject_id": None, "problem": None,
                          "probability": None, "band": None, "municipality": None, "model_version": None, "gate": None,
                          "reasons": None, "customers": customers, "error": error}], columns=ROW_COLUMNS)


def _shard_task(plan: ChampionPlan, policies: Mapping[str, AlertPolicy], time: str, top_k: int
                ) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function Spark runs over each partition of the shard list (mapInPandas): one shard a
    partition. A refusal (data, champions, code) comes back as the shard's error row, in one line."""

    def task(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        # a task a core: LightGBM's OpenMP pool would otherwise take every core in each task
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        for batch in batches:
            for record in batch.to_dict("records"):
                shard = Shard(**{k: (int(v) if k in ("shard", "low", "high", "customers") else str(v)) for k, v in record.items()})
                try:
                    champions = worker_champions(plan)
                    yield _spark_types(score_shard(shard, champions, policies, pd.Timestamp(time), top_k))
                except SoteRiskError as error:
                    yield _spark_types(_summary(shard, error=str(error).splitlines()[0] if str(error) else type(error).__name__))

    return task


STRING_COLUMNS = ["region", "problem", "band", "municipality", "model_version", "gate", "reasons", "error"]


def _spark_types(frame: pd.DataFrame) -> pd.DataFrame:
    """ROW_SCHEMA's types for Arrow: nullable integers where a summary row has none, and strings
    as Python objects (pyspark 4.3 cannot send pandas 3's Arrow-backed `str` columns back)."""
    out = frame.astype({"shard": "int32", "subject_id": "Int64", "customers": "Int64", "probability": "float64"})
    for column in STRING_COLUMNS:
        values = out[column].astype(object)
        out[column] = values.where(values.notna(), None)
    return out


# ---- on the driver ------------------------------------------------------------------------------


def score_shards(spark: SparkSession, shards: Sequence[Shard], plan: ChampionPlan, policies: Mapping[str, AlertPolicy],
                 time: pd.Timestamp, *, top_k: int) -> pd.DataFrame:
    """Every shard scored as one Spark task; the collected rows (ROW_COLUMNS) with their summary
    rows checked: every shard answered once, without an error, with the customers planned."""
    if not shards:
        raise ShardScoringError("no shards to score (no customers in the chosen regions)")
    task = _shard_task(plan, policies, time.isoformat(), top_k)
    listing = [tuple(getattr(s, c) for c in SHARD_COLUMNS) for s in shards]
    frame = spark.createDataFrame(spark.sparkContext.parallelize(listing, len(listing)), SHARD_SCHEMA)
    try:
        rows = frame.mapInPandas(task, ROW_SCHEMA).toPandas()
    except Exception as error:  # noqa: BLE001 (Py4J and Spark raise many types; the worker's trace is in the log)
        text = str(error).strip()
        raise ShardScoringError(f"the Spark scoring job failed: {text.splitlines()[0] if text else type(error).__name__} "
                                f"(Spark's log has the trace)") from error
    summary = rows.loc[rows["problem"].isna()]
    errors = summary.loc[summary["error"].notna()]
    if len(errors):
        first = errors.iloc[0]
        raise ShardScoringError(f"region {first['region']} (shard {int(first['shard'])}): {first['error']}")
    answered = sorted(zip(summary["region"], summary["shard"].astype(int)))
    expected = sorted((s.region, s.shard) for s in shards)
    if answered != expected:
        raise ShardScoringError(f"{len(answered)} shard summaries for {len(expected)} shards: a shard was lost or scored twice")
    planned = {(s.region, s.shard): s.customers for s in shards}
    wrong = [f"{r} shard {s}" for r, s, c in zip(summary["region"], summary["shard"].astype(int), summary["customers"])
             if int(c) != planned[r, s]]
    if wrong:
        raise ShardScoringError(f"customers differ from the plan in {', '.join(wrong[:3])}")
    scored = rows.loc[rows["problem"].notna()].reset_index(drop=True)
    scored["subject_id"] = scored["subject_id"].astype("int64")
    return scored


def region_scores(rows: pd.DataFrame, customers: int, champions: Mapping[str, Champion], time: pd.Timestamp,
                  seconds: Mapping[str, float] | None = None) -> PopulationScores:
    """One region's collected rows as the recording takes them: its scores, and an explainer that
    hands back the reasons the shards computed (a card naming a row without them stops the run).
    The rows must come from these champions (version and gate)."""
    from alerts.population import PopulationScores, PopulationError
    from explain.reasons import Reason

    for problem, part in rows.groupby("problem", sort=True):
        champion = champions.get(str(problem))
        if champion is None:
            raise ShardScoringError(f"the shards scored {problem}, which the driver does not serve")
        seen = set(zip(part["model_version"], part["gate"]))
        if seen != {(champion.version, champion.gate.status)}:
            raise ShardScoringError(f"{problem}: the shards scored with {sorted(seen)}, the driver serves version "
                                    f"{champion.version} ({champion.gate.status})")
    flagged = rows.loc[rows["reasons"].notna()]
    stored = {(str(p), int(s)): text for p, s, text in zip(flagged["problem"], flagged["subject_id"], flagged["reasons"])}

    def explain(problem: str, subjects: Sequence[int]) -> list[list[Reason]]:
        found = []
        for subject in subjects:
            text = stored.get((problem, int(subject)))
            if text is None:
                raise PopulationError(f"{problem}: customer {int(subject)} is on a card but its shard did not explain it "
                                      "(alerts.rules.may_alert disagrees with the alert rules)")
            found.append([Reason.model_validate(r) for r in json.loads(text)])
        return found

    scores = rows.loc[:, ["subject_id", "problem", "probability", "municipality"]].reset_index(drop=True)
    return PopulationScores(time=time, customers=customers, champions=champions, scores=scores, explain=explain,
                            seconds=dict(seconds or {}))


@dataclass(frozen=True)
class RegionRun:
    region: str
    parameters: str | None  # the dataset's region (parameter set): whose municipalities it has
    shards: int
    result: PopulationResult


def run_regions(spark: SparkSession, dataset: MultiRegionDataset, conn: sqlite3.Connection, as_of: dt.date,
                champions: Mapping[str, Champion], *, home: Path, regions: Sequence[str] | None = None,
                links: Links | None = None, today: dt.date | None = None, run_id: str | None = None,
                top_k: int | None = None, shard_customers: int = SHARD_CUSTOMERS, allow_forced: bool = False,
                progress: Callable[[str], None] | None = None) -> list[RegionRun]:
    """The population run of every chosen region of DATA at `as_of`: scored on Spark, recorded
    per region (in the manifest's order) into `conn` by the pandas run's recording.

    Everything that can refuse is checked before Spark starts work: each region's span holds
    as_of, every problem has an alert policy, the links are valid. `champions` are the driver's
    (scoring.champions.load_champions from `home`'s registry)."""
    from alerts.population import TOP_REASONS, Links, policies_for, record_population
    from data_contracts.io import read_metadata
    from features import pipeline_version
    from scoring.champions import check_champions
    from scoring.history import index_time

    say = progress or (lambda what: None)
    top_k = TOP_REASONS if top_k is None else top_k
    folders = dataset.folders(regions)
    times, parameters = {}, {}
    for name, folder in folders.items():
        metadata = read_metadata(folder / "dataset.json")
        try:
            times[name] = index_time(pd.Timestamp(metadata["extract_start"]), pd.Timestamp(metadata["extract_end"]), as_of)
        except SoteRiskError as error:
            raise ShardScoringError(f"region {name}: {error}") from None
        parameters[name] = metadata.get("region")
    time = next(iter(times.values()))
    check_champions(champions, pipeline_version())
    policies = policies_for(champions)
    links = links or Links.from_settings()
    run_id = run_id or f"population-{time.date().isoformat()}-spark-{os.urandom(4).hex()}"

    shards = plan_shards(dataset, list(folders), shard_customers)
    say(f"scoring {len(shards):,} shards of {len(folders)} region(s) on Spark")
    started = clock.perf_counter()
    plan = ChampionPlan.of(champions, home, pipeline_version())
    rows = score_shards(spark, shards, plan, policies, time, top_k=top_k)
    seconds = clock.perf_counter() - started
    say(f"{len(rows):,} scores collected in {seconds:.0f} s")

    runs = []
    by_region = dict(tuple(rows.groupby("region", sort=False)))
    for name in folders:
        mine = [s for s in shards if s.region == name]
        part = by_region.get(name, rows.iloc[0:0])
        scored = region_scores(part, sum(s.customers for s in mine), champions, time,
                               {"shards on Spark (every region)": seconds})
        result = record_population(conn, scored, policies=policies, links=links, today=today, run_id=run_id,
                                   allow_forced=allow_forced)
        say(f"{name}: {result.scored:,} customers scored, {result.alerts:,} new cards")
        runs.append(RegionRun(name, parameters[name], len(mine), result))
    return runs


__all__ = ["ChampionPlan", "RegionRun", "Shard", "ShardScoringError", "plan_shards", "region_scores", "run_regions",
           "score_shard", "score_shards", "worker_champions"]
