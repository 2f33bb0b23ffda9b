"""The pooled training table, built on Spark from a multi-region features folder.

Spark reads FEATURES/region=*/segment=<s>/ (only the columns the problem uses), finds the anchor
month from per-(region, index date) aggregates, and keeps each period's usable rows (eligible, not
censored, label known, as training.splits.usable_rows): every row of the validation and test
periods, and of the training period every positive and the negatives whose seeded draw
(training.pooled.keep_draw, computed in a pandas UDF: the one function the pandas oracle uses too)
falls below F, with the weight 1/F. Only those rows travel to the driver, through Arrow, and come
back as pandas with the pandas engine's dtypes (read from a part file's own schema): the
trainer (training/pooled.py) cannot tell the table from one a pandas reader would build.

Every region must share the anchor (the same extract end): one calendar of periods for all, so a
held-out region's test period is the same months as the others'. A folder whose regions disagree
is refused with each region's anchor.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import pandas as pd

from scaleout.layout import (REGION_KEY, LayoutError, read_dataset_manifest, read_features_manifest, region_folder,
                             segment_folder, segment_parts)
from training.pooled import WEIGHT, PooledTable, PooledTrainingError, check_fraction, keep_draw
from training.spec import ExperimentSpec
from training.splits import anchor_from_shares, check_period, resolve_periods, select_features

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

PERIOD = "period_number"  # a partition folder name: no leading "_" (readers skip those)
TIME_FORMAT_SPARK = "yyyy-MM-dd HH:mm:ss.SSSSSS"
TIME_FORMAT_PANDAS = "%Y-%m-%d %H:%M:%S.%f"


def needed_columns(spec: ExperimentSpec, columns: Sequence[str]) -> list[str]:
    """The table's columns a problem trains and is evaluated on, in table order: keys, its label,
    censoring, eligibility and outcome time, the pipeline version, its features (strictly
    selected, as the single-region trainer does), the baselines' inputs and the subgroup columns.
    The other segments' outcomes and unselected columns stay on disk."""
    wanted = {"subject_id", "prediction_time", "pipeline_version", spec.label_column, spec.censor_column,
              spec.eligible_column, spec.outcome_time_column, *select_features(list(columns), spec),
              *spec.baselines.logistic.features, *spec.baselines.clinical_score.columns.values(),
              *spec.subgroups.columns}
    if spec.subgroups.age_column:
        wanted.add(spec.subgroups.age_column)
    return [c for c in columns if c in wanted]


def pandas_dtypes(root: Path, segment: str, region: str, columns: Sequence[str]) -> dict[str, object]:
    """The pandas engine's dtype of each column, from the pandas metadata of one part file (an
    empty slice: categories come with the Arrow dictionary, nothing else is read)."""
    import pyarrow.parquet as pq

    parts = segment_parts(root, segment, region)
    if not parts:
        raise LayoutError(f"{root / region_folder(region) / segment_folder(segment)}: no part-*.parquet files (an unfinished build?)")
    empty = pq.ParquetFile(parts[0]).read_row_group(0, columns=list(columns)).slice(0, 0).to_pandas()
    return dict(empty.dtypes)


def conform(frame: pd.DataFrame, dtypes: dict[str, object]) -> pd.DataFrame:
    """Cast Spark's pandas (object strings, datetime64[ns], float for nullable ints) to the pandas
    engine's dtypes."""
    out = {}
    for name, dtype in dtypes.items():
        column = frame[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            column = column.dt.tz_convert(None)
        out[name] = column if column.dtype == dtype else column.astype(dtype)
    return pd.DataFrame(out, index=frame.index)


def build_pooled_table(spark: "SparkSession", root: str | os.PathLike[str], spec: ExperimentSpec, *,
                       negatives_fraction: float, seed: int | None = None,
                       regions: Sequence[str] | None = None, scratch: str | os.PathLike[str] | None = None) -> PooledTable:
    """The PooledTable of `spec` over the folder's regions (or the chosen ones). `seed` of the
    negatives' draw: the spec's seed unless given. `scratch`: where the kept rows pass through
    Parquet (default: the system's temporary folder; on a cluster, storage the driver can read)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType

    fraction = check_fraction(negatives_fraction)
    seed = spec.seed if seed is None else int(seed)
    root = Path(root)
    manifest = read_features_manifest(root)
    if spec.segment not in manifest["segments"]:
        raise LayoutError(f"{root}: no segment {spec.segment!r} (segments: {', '.join(manifest['segments'])})")
    known = list(manifest["regions"])
    chosen = list(regions) if regions else known
    unknown = [r for r in chosen if r not in known]
    if unknown:
        raise LayoutError(f"{root}: no region(s) {', '.join(unknown)} (regions: {', '.join(known)})")
    paths = [root / region_folder(r) / segment_folder(spec.segment) for r in chosen]
    for path, region in zip(paths, chosen):
        if not segment_parts(root, spec.segment, region):
            raise LayoutError(f"{path}: no part-*.parquet files (an unfinished build?)")

    frame = spark.read.option("basePath", str(root)).parquet(*[str(p) for p in paths])
    table_columns = [c for c in frame.columns if c not in (REGION_KEY, "segment")]
    missing = [c for c in ("subject_id", "prediction_time", "pipeline_version", spec.label_column, spec.censor_column,
                           spec.eligible_column) if c not in table_columns]
    if missing:
        raise LayoutError(f"{root}: segment {spec.segment} lacks column(s) {', '.join(missing)} needed by {spec.problem}")
    columns = needed_columns(spec, table_columns)
    frame = frame.select(REGION_KEY, *columns)

    eligible = F.coalesce(F.col(spec.eligible_column), F.lit(False))
    at_end = F.when(eligible & (F.col(spec.censor_column) == "extract_end"), 1).otherwise(0)
    moments = (frame.groupBy(REGION_KEY, "prediction_time")
               .agg(F.sum(eligible.cast("long")).alias("eligible"), F.sum(at_end).alias("at_end"))
               .toPandas())
    versions = [row[0] for row in frame.select("pipeline_version").distinct().limit(3).collect()]
    if len(versions) != 1:
        raise LayoutError(f"{root}: segment {spec.segment} holds {len(versions)} pipeline versions ({', '.join(map(str, versions))}); "
                          f"rebuild the features")
    moments["prediction_time"] = pd.to_datetime(moments["prediction_time"]).astype("datetime64[us]")
    anchor, span = _anchor(moments, spec, chosen)
    periods = resolve_periods(spec, anchor)

    def keys(period) -> list[str]:  # noqa: ANN001 (ResolvedPeriod)
        times = pd.Series(sorted(moments["prediction_time"].unique()))
        return list(times[period.mask(times)].dt.strftime(TIME_FORMAT_PANDAS))

    usable = eligible & F.col(spec.censor_column).isNull() & F.col(spec.label_column).isNotNull()
    stamp = F.date_format(F.col("prediction_time"), TIME_FORMAT_SPARK)

    def draws(subject_id: pd.Series, prediction_time: pd.Series) -> pd.Series:
        return pd.Series(keep_draw(subject_id.to_numpy(), prediction_time, seed))

    draw = F.pandas_udf(draws, DoubleType())
    label = F.col(spec.label_column)
    train_usable = frame.where(usable & stamp.isin(keys(periods[0])))
    before = train_usable.groupBy(REGION_KEY).count().toPandas()
    train = (train_usable
             .where(label | (draw(F.col("subject_id"), F.col("prediction_time")) < F.lit(fraction)))
             .withColumn(WEIGHT, F.when(label, F.lit(1.0)).otherwise(F.lit(1.0 / fraction)))
             .withColumn(PERIOD, F.lit(0)))
    others = [frame.where(usable & stamp.isin(keys(p))).withColumn(WEIGHT, F.lit(1.0)).withColumn(PERIOD, F.lit(i))
              for i, p in ((1, periods[1]), (2, periods[2]))]
    rows = train.unionByName(others[0]).unionByName(others[1])

    dtypes = pandas_dtypes(root, spec.segment, chosen[0], columns)
    parts = []
    # Through Parquet, not toPandas(): the kept rows (GBs at four regions) stream from the
    # executors to disk and are read period by period, never gathered in the driver's JVM heap
    with tempfile.TemporaryDirectory(prefix="sote-pooled-", dir=scratch) as tmp:
        rows.write.partitionBy(PERIOD).parquet(f"{tmp}/rows")
        for number, period in enumerate(periods):
            folder = Path(tmp) / "rows" / f"{PERIOD}={number}"
            part = pd.read_parquet(folder) if folder.is_dir() else pd.DataFrame(columns=[REGION_KEY, *columns, WEIGHT])
            region = pd.Categorical(part[REGION_KEY].astype(str), categories=known)
            part = conform(part, dtypes).assign(**{REGION_KEY: region, WEIGHT: part[WEIGHT].to_numpy(dtype=float)})
            part = part.sort_values([REGION_KEY, "subject_id", "prediction_time"], kind="stable").reset_index(drop=True)
            check_period(part, period, spec, span, anchor)
            parts.append(part)
    weight = parts[0].pop(WEIGHT).to_numpy()
    for part in parts[1:]:
        part.pop(WEIGHT)
    return PooledTable(parts[0], parts[1], parts[2], weight, periods, anchor, tuple(chosen), fraction, seed,
                       str(versions[0]), span, dict(zip(before[REGION_KEY].astype(str), before["count"].astype(int))))


def _anchor(moments: pd.DataFrame, spec: ExperimentSpec, regions: Sequence[str]) -> tuple[pd.Timestamp, str]:
    """The pooled anchor (as split_table finds it on the concatenated table) and the span of index
    dates; refuses regions whose own anchors differ from it."""
    span = f"{moments['prediction_time'].min().date()}..{moments['prediction_time'].max().date()}"
    if not spec.split.relative:
        return pd.Timestamp(moments["prediction_time"].max()) + pd.DateOffset(months=1), span

    def anchor_of(part: pd.DataFrame) -> pd.Timestamp:
        sums = part.groupby("prediction_time")[["eligible", "at_end"]].sum()
        sums = sums.loc[sums["eligible"] > 0]
        return anchor_from_shares(sums["at_end"] / sums["eligible"], spec)

    pooled = anchor_of(moments)
    own = {r: anchor_of(moments.loc[moments[REGION_KEY] == r]) for r in regions}
    differ = {r: a for r, a in own.items() if a != pooled}
    if differ:
        listed = ", ".join(f"{r} {a.date()}" for r, a in own.items())
        raise PooledTrainingError(f"{spec.problem}: the regions' extracts end in different months (anchors: {listed}); "
                                  f"pooled training needs one calendar of periods for all regions")
    return pooled, span


def read_pooled_truth(dataset: str | os.PathLike[str] | None, spec: ExperimentSpec, regions: Sequence[str]) -> pd.DataFrame | None:
    """The simulator's truth of every region of a multi-region dataset (subject ids are unique
    across regions, so the regions' rows simply stack), or None when there is none."""
    from training.data import read_truth

    if dataset is None or not (Path(dataset) / "regions.json").is_file():
        return None
    folders = read_dataset_manifest(dataset).folders([r for r in regions])
    parts = [read_truth(folder, spec) for folder in folders.values()]
    parts = [p for p in parts if p is not None]
    return pd.concat(parts, ignore_index=True) if parts else None

