"""`sote-risk run --engine spark` (scaleout/scoring.py): the population run of many regions on
Spark gives the pandas `run`'s scores, alerted customers and cards, region by region, into the
same outbox contract; re-running is safe; the shards' reasons cover every card.

One small multi-region dataset for the module (two Eksote regions of 1,500 residents, 3 years,
simulated by the Spark path), and a home whose registry holds the test region's five pinned
LightGBM models as champions (tests/serving_fixture.py: small real models on the code's feature
pipeline), one of them forced past its gates, so held alerts travel too. The pandas engine runs
each region's folder in turn (a multi-region dataset has no pandas run of its own).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd
import pytest

from alerts import outbox
from alerts.policy import AlertPolicy
from alerts.population import Links
from alerts.rules import decide_alerts, may_alert
from scaleout import layout

SEEDS = (61, 62)  # never the held-out 20261206 (docs/PROTOCOL.md)
RESIDENTS = 1_500
SHARD_CUSTOMERS = 400  # ~4 shards a region: scores are gathered across shard boundaries
FIRST, SECOND = dt.date(2024, 11, 1), dt.date(2024, 12, 1)  # the data span 2022-01-01 .. 2025-01-01
FORCED = "elderly-homecare_failure"  # promoted past its gates: its alerts are held unless --allow-forced
RISING = "elderly-hospitalisation"  # alerts on a band rise too: cards the shards cannot foresee by level
LINKS = Links("https://sote-risk.example.fi", b"0123456789abcdef0123456789abcdef", "en")


@pytest.fixture(scope="module")
def regions(spark, tmp_path_factory) -> Path:
    from scaleout.simulate import plan_regions, simulate_regions

    out = tmp_path_factory.mktemp("run-regions") / "data"
    simulate_regions(spark, plan_regions(len(SEEDS), customers=RESIDENTS, years=3, seed=SEEDS[0], truth=False), out)
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """The pinned models registered as champions; RISING's policy also alerts on a band rise and
    FORCED carries the tags of `promote --force`."""
    from mlflow import MlflowClient

    from models.registry import model_name
    from tests.serving_fixture import models, register

    folder = tmp_path_factory.mktemp("run-home") / "home"
    chosen = models()
    chosen[RISING].spec["alert_policy"] = {**chosen[RISING].spec["alert_policy"], "alert_on_band_rise": True}
    versions = register(folder, chosen)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOTE_RISK_HOME", str(folder))
        from models.registry import configure_tracking

        configure_tracking()
        client = MlflowClient()
        client.set_model_version_tag(model_name(FORCED), versions[FORCED], "promotion_forced", "true")
        client.set_model_version_tag(model_name(FORCED), versions[FORCED], "promotion_forced_reasons",
                                     json.dumps(["calibration slope below 0.7"]))
    return folder


@pytest.fixture()
def at_home(home, monkeypatch):
    monkeypatch.setenv("SOTE_RISK_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home


def champions():  # noqa: ANN201 (dict[str, Champion])
    from features import pipeline_version
    from base.settings import home
    from scoring.champions import load_champions, served_problems

    return load_champions(served_problems(None), pipeline_version(), cache=home().cache)


def pandas_runs(regions: Path, conn: sqlite3.Connection, as_of: dt.date) -> list:
    """Today's `run` on each region's folder in the manifest's order, into one outbox."""
    from alerts.population import run_population
    from scoring.backend import Backend
    from scoring.history import load_history

    found = champions()
    results = []
    for folder in layout.read_dataset_manifest(regions).folders().values():
        backend = Backend(found, lambda folder=folder: load_history(folder))
        results.append(run_population(backend, conn, as_of, links=LINKS, today=as_of))
    return results


def spark_runs(spark, data: Path, conn: sqlite3.Connection, as_of: dt.date, **options) -> list:
    from base.settings import home
    from scaleout.scoring import run_regions

    return run_regions(spark, layout.read_dataset_manifest(data), conn, as_of, champions(), home=home().root,
                       links=LINKS, today=as_of, shard_customers=SHARD_CUSTOMERS, **options)


def scores_of(conn: sqlite3.Connection) -> pd.DataFrame:
    rows = pd.read_sql("SELECT subject_id, problem, as_of, probability, band, model_version, pipeline_version, municipality "
                       "FROM scores", conn)
    return rows.sort_values(["as_of", "subject_id", "problem"]).reset_index(drop=True)


def unsigned(url: str) -> str:
    """A page link without its expiry and signature (they follow the clock of the run)."""
    parts = urlsplit(url)
    query = "&".join(q for q in parts.query.split("&") if not q.startswith(("exp=", "sig=")))
    return urlunsplit(parts._replace(query=query))


def cards_of(conn: sqlite3.Connection) -> dict[tuple[int, str], dict]:
    """Every card by (customer, index date): its status, problems and payload (links unsigned)."""
    cards = {}
    for alert in outbox.list_alerts(conn, limit=1_000_000):
        full = outbox.get_alert(conn, alert["alert_id"])
        payload = full["payload"]
        payload["links"] = [{**link, "url": unsigned(link["url"])} for link in payload.get("links", [])]
        cards[alert["subject_id"], alert["as_of"]] = {"status": alert["status"], "problems": alert["problems"],
                                                      "payload": payload}
    return cards


@pytest.mark.spark
@pytest.mark.slow
def test_spark_run_records_the_pandas_runs_scores_and_cards_region_by_region(spark, regions, at_home, tmp_path):
    by_pandas, by_spark = outbox.connect(tmp_path / "pandas.db"), outbox.connect(tmp_path / "spark.db")
    for as_of in (FIRST, SECOND):  # the second date: cool-downs, and band rises against the first
        expected = pandas_runs(regions, by_pandas, as_of)
        runs = spark_runs(spark, regions, by_spark, as_of)
        assert [r.region for r in runs] == list(layout.read_dataset_manifest(regions).names)
        assert all(r.shards >= 3 for r in runs), "the test needs several shards a region"
        for mine, theirs in zip(runs, expected, strict=True):  # per region: the same result, stage times aside
            assert mine.result.customers == theirs.customers and mine.result.scored == theirs.scored
            assert (mine.result.cards_sent, mine.result.cards_queued) == (theirs.cards_sent, theirs.cards_queued)
            assert mine.result.problems == theirs.problems

    pandas_scores, spark_scores = scores_of(by_pandas), scores_of(by_spark)
    assert len(spark_scores) > RESIDENTS  # both dates, both regions, several cohorts
    assert set(spark_scores["subject_id"] // layout.SUBJECT_ID_STRIDE) == {0, 1}  # both regions' customers
    pd.testing.assert_frame_equal(spark_scores.drop(columns="probability"), pandas_scores.drop(columns="probability"))
    np.testing.assert_allclose(spark_scores["probability"], pandas_scores["probability"], rtol=0, atol=1e-12)

    spark_cards, pandas_cards = cards_of(by_spark), cards_of(by_pandas)
    assert spark_cards.keys() == pandas_cards.keys() and len(spark_cards) > 10
    for key, card in spark_cards.items():
        assert card == pandas_cards[key], key
    named = [p for card in spark_cards.values() for p in card["problems"]]
    assert RISING in named and FORCED not in named  # the forced model's alerts are held, as today...
    assert (spark_scores["problem"] == FORCED).sum() > 0  # ...and its scores recorded
    risks = [risk for card in spark_cards.values() for risk in card["payload"]["extension"]["risks"]]
    assert {risk["gate"]["status"] for risk in risks} == {"passed"}
    rises = pd.read_sql("SELECT COUNT(*) AS n FROM alert_problems WHERE trigger='band_rise'", by_spark)["n"].iloc[0]
    assert rises > 0, "the second date must put a score on a card by its band rise alone (may_alert's other half)"

    # re-running a date is safe, as today: every score found recorded, nothing written, no card twice
    before = (len(scores_of(by_spark)), len(cards_of(by_spark)))
    again = spark_runs(spark, regions, by_spark, SECOND)
    assert all(r.result.alerts == 0 and all(p.scores_written == 0 for p in r.result.problems) for r in again)
    assert all(sum(p.already_recorded for p in r.result.problems) > 0 for r in again)
    assert (len(scores_of(by_spark)), len(cards_of(by_spark))) == before


@pytest.mark.spark
def test_one_region_chosen_by_name_and_refusals_before_any_work(spark, regions, at_home, tmp_path):
    from scaleout.scoring import ShardScoringError

    conn = outbox.connect(tmp_path / "one.db")
    name = layout.read_dataset_manifest(regions).names[1]
    (run,) = spark_runs(spark, regions, conn, SECOND, regions=[name], allow_forced=True)
    assert run.region == name and run.result.scored > 0
    assert set(scores_of(conn)["subject_id"] // layout.SUBJECT_ID_STRIDE) == {1}
    # with --allow-forced the forced model's alerts go out, its gate on each card it is named on
    forced = [risk for card in cards_of(conn).values() for risk in card["payload"]["extension"]["risks"]
              if risk["problem"] == FORCED]
    assert forced and {r["gate"]["status"] for r in forced} == {"forced"}
    assert {tuple(r["gate"]["reasons"]) for r in forced} == {("calibration slope below 0.7",)}
    assert next(p for p in run.result.problems if p.problem == FORCED).gate == "forced"

    with pytest.raises(layout.LayoutError, match="no region 'nowhere'"):
        spark_runs(spark, regions, conn, SECOND, regions=["nowhere"])
    with pytest.raises(ShardScoringError, match=r"region eksote-\d+: as_of 2030-01-01 is outside the data"):
        spark_runs(spark, regions, conn, dt.date(2030, 1, 1))


def test_may_alert_holds_every_score_the_rules_can_trigger():
    """Whatever the outbox holds (previous band, last card), decide_alerts triggers only scores
    may_alert flags: the shards explain those, and a card names nothing else. Without Spark."""
    rng = np.random.default_rng(7)
    probabilities = np.concatenate([rng.uniform(0, 1, 400), [0.1, 0.25, 0.5, 0.0999999, 0.3]])
    policies = [AlertPolicy(threshold=0.3), AlertPolicy(min_band="high"), AlertPolicy(threshold=0.2, min_band="very_high"),
                AlertPolicy(alert_on_band_rise=True), AlertPolicy(threshold=0.6, alert_on_band_rise=True)]
    n = len(probabilities)
    scores = pd.DataFrame({"subject_id": np.arange(n), "problem": "p", "as_of": pd.Timestamp("2024-12-01"),
                           "probability": probabilities, "municipality": "Imatra"})
    for policy in policies:
        flagged = may_alert(probabilities, policy)
        for previous in ("low", "moderate", "high", None):
            state = pd.DataFrame({"subject_id": np.arange(n), "problem": "p", "last_band": previous,
                                  "last_alert_as_of": pd.Timestamp("2024-11-01"), "last_alert_band": previous})
            triggered = decide_alerts(scores, state, policy)["trigger"].notna().to_numpy()
            assert not (triggered & ~flagged).any(), (policy, previous)
        level = decide_alerts(scores, pd.DataFrame(columns=list(state.columns)), policy)["trigger"].notna().to_numpy()
        if not policy.alert_on_band_rise:  # then may_alert is exactly the level
            assert (level == flagged).all()


def test_shards_cover_each_region_once_in_consecutive_id_ranges(tmp_path):
    """plan_shards: every customer in exactly one shard of its region, shards no larger than
    asked. Without Spark (a manifest over two tiny written regions)."""
    from scaleout.scoring import plan_shards

    root = tmp_path / "data"
    entries = []
    for i, count in enumerate((5, 1_003)):
        folder = root / layout.region_folder(f"r{i}")
        folder.mkdir(parents=True)
        ids = np.arange(count, dtype=np.int64) * 3 + i * layout.SUBJECT_ID_STRIDE
        pd.DataFrame({"subject_id": ids[::-1]}).to_parquet(folder / "customers.parquet")
        (folder / "dataset.json").write_text("{}")
        entries.append(layout.RegionEntry(f"r{i}", "eksote", i, i * layout.SUBJECT_ID_STRIDE, count, 0))
    layout.write_dataset_manifest(root, layout.dataset_manifest(entries))
    dataset = layout.read_dataset_manifest(root)
    shards = plan_shards(dataset, shard_customers=100)
    assert [s.region for s in shards] == ["r0"] + ["r1"] * 11
    assert max(s.customers for s in shards) <= 100 and sum(s.customers for s in shards) == 1_008
    for region, count in (("r0", 5), ("r1", 1_003)):
        mine = [s for s in shards if s.region == region]
        assert all(a.high < b.low for a, b in zip(mine, mine[1:]))
        ids = np.concatenate([np.arange(s.low, s.high + 1) for s in mine])
        assert len(np.intersect1d(ids, pd.read_parquet(dataset.folder(region) / "customers.parquet")["subject_id"])) == count
    assert [s.region for s in plan_shards(dataset, ["r1"], shard_customers=2_000)] == ["r1"]


@pytest.mark.spark
@pytest.mark.slow
def test_the_command_runs_every_region_into_the_homes_outbox_and_says_what_it_skips(regions, home, tmp_path):
    """`sote-risk run --engine spark` as a user runs it (its own JVM, local[1]): one JSON summary
    with a part per region, the scores and cards in the outbox named by --db, no monitoring with
    --no-monitor (tests/test_monitor_regions.py runs the monitoring step); the refusals are one
    line each and start no Spark."""
    from tests.test_cli_quiet import run_cli

    db = tmp_path / "outbox.db"
    done = run_cli("run", "--engine", "spark", "--data", str(regions), "--as-of", SECOND.isoformat(), "--master", "local[1]",
                   "--shard-customers", str(SHARD_CUSTOMERS), "--db", str(db), "--no-monitor", home=home)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    names = list(layout.read_dataset_manifest(regions).names)
    assert summary["engine"] == "spark" and list(summary["regions"]) == names
    assert "monitor" not in summary and "== summary" not in done.stderr
    conn = outbox.connect(db)
    scores = scores_of(conn)
    assert len(scores) == sum(p["new_scores"] for r in summary["regions"].values() for p in r["problems"].values()) > 0
    assert set(scores["subject_id"] // layout.SUBJECT_ID_STRIDE) == {0, 1}
    assert len(cards_of(conn)) == summary["cards"]["sent"] + summary["cards"]["queued"] > 0
    assert summary["regions"][names[0]]["problems"][FORCED]["held"] > 0

    single = run_cli("run", "--engine", "spark", "--data", str(dict(layout.read_dataset_manifest(regions).folders())[names[0]]),
                     "--as-of", SECOND.isoformat(), "--db", str(db), home=home)
    assert single.returncode != 0 and "for one region's folder use --engine pandas" in single.stderr
    assert len(single.stderr.strip().splitlines()) == 1, single.stderr
    unknown = run_cli("run", "--engine", "spark", "--data", str(regions), "--regions", "nowhere", "--as-of", SECOND.isoformat(),
                      home=home)
    assert unknown.returncode != 0 and "no region 'nowhere'" in unknown.stderr
    pandas_with_data = run_cli("run", "--data", str(regions), "--as-of", SECOND.isoformat(), home=home)
    assert pandas_with_data.returncode != 0 and "--data, --regions and --features are for --engine spark" in pandas_with_data.stderr
