"""Monitoring a multi-region features folder (`sote-risk monitor --features MULTI`, and the
monitoring step of `run --engine spark`): each region is monitored as its own home would be.

The world: two regions of the pinned serving region (tests/serving_fixture.py: seed 5, 2,500
residents, 3 years), `quiet` as it is and `shifted` with tests/test_monitoring.py's coding change
(care need assessments recorded differently from 2024-07) and its ids offset by the layout's
stride, written as a multi-region dataset; the feature tables built by the Spark engine (the
multi-region folder) and by the pandas engine region by region (the oracle's folders); a home
whose registry holds the five pinned models as champions, elderly-hospitalisation's with a
monitoring reference stored as training stores one (from the quiet region's training period: a
model trained on one region carries one), the others without (each region then computes its own).
The outbox holds CRM feedback on cards of both regions' customers, different in each.

The oracle: a region's monitoring record from the multi-region run equals the single-region
`monitor` on that region's pandas-built folder, with an outbox holding only that region's cards.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from scaleout import layout
from tests.test_retrain import cli

AS_OF = "2024-12-01"  # the regions' last index date
STORED, COMPUTED = "elderly-hospitalisation", "children-hospitalisation"  # reference stored with the model / computed now
MONITORED = (STORED, COMPUTED)
REGIONS = ("quiet", "shifted")
STORED_SOURCE = "stored at training: the quiet region's training period (test)"
# cards with CRM verdicts: region -> (index date, verdicts of its first customers in order); one card each
CARDS = {"quiet": ("2024-06-01", ["accepted", "accepted", "overridden", None]),
         "shifted": ("2024-07-01", ["overridden", None])}


def _regions_data(root: Path) -> Path:
    """DATA/regions.json + DATA/region=quiet/ + DATA/region=shifted/ (module docstring)."""
    from synthetic.config import CodingChange, ShiftConfig, SimulatorConfig
    from synthetic.io import write_simulated
    from synthetic.simulate import simulate
    from tests.serving_fixture import CUSTOMERS, SEED, YEARS, region
    from tests.test_monitoring import SHIFT

    data = root / "data"
    shift = ShiftConfig(coding=(CodingChange(start=SHIFT, code="ASSESS/HTA", recorded_as="ENC/HC_NURSE"),
                                CodingChange(start=SHIFT, code="ASSESS/PTA")))
    shifted = simulate(SimulatorConfig(customers=CUSTOMERS, seed=SEED, years=YEARS, shifts=shift,
                                       subject_id_offset=layout.SUBJECT_ID_STRIDE))
    entries = []
    for number, (name, dataset) in enumerate((("quiet", region()), ("shifted", shifted))):
        write_simulated(dataset, data / layout.region_folder(name))
        entries.append(layout.RegionEntry(name, "eksote", SEED, number * layout.SUBJECT_ID_STRIDE,
                                          len(dataset.customers), len(dataset.events)))
    layout.write_dataset_manifest(data, layout.dataset_manifest(entries, source="synthetic", years=YEARS))
    return data


def _with_stored_reference(model, quiet_table: pd.DataFrame):  # noqa: ANN001, ANN202
    """The model carrying a monitoring reference from the quiet region's training period, as
    training/pipeline.py stores one (the pinned models predate stored references)."""
    from training.monitoring import reference_from
    from training.spec import parse_stored_spec
    from training.splits import split_table

    spec = parse_stored_spec(model.spec, "pinned")
    split = split_table(quiet_table, spec)
    model.metadata["monitoring_reference"] = reference_from(model, split.train, split.validation, spec.monitoring.bins,
                                                            STORED_SOURCE)
    return model


def _write_cards(db: Path, regions: dict[str, list[int]]) -> None:
    """CARDS for the given regions' customers (region -> its first customers' subject ids)."""
    from alerts import feedback, outbox
    from tests._alerts_helpers import record_many, scores_of

    conn = outbox.connect(db)
    try:
        for name, subjects in regions.items():
            as_of, verdicts = CARDS[name]
            record_many(conn, scores_of(*[(s, p, 0.9) for s in subjects[:len(verdicts)] for p in MONITORED], as_of=as_of),
                        today=date.fromisoformat(as_of))
            for subject, verdict in zip(subjects, verdicts):
                if verdict is not None:
                    feedback.record_feedback(conn, outbox.card_id(subject, pd.Timestamp(as_of)),
                                             {"outcome": verdict, "outcomeTimestamp": "2024-09-01T08:00:00Z"})
    finally:
        conn.close()


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory) -> SimpleNamespace:
    """The data, both features folders and a home template (module docstring)."""
    from features import io as feature_io
    from features.build import build_tables
    from scaleout.features import build_features
    from tests.serving_fixture import models, register

    root = tmp_path_factory.mktemp("monitor-regions")
    data = _regions_data(root)
    singles = {}
    for name, folder in layout.read_dataset_manifest(data).folders().items():
        loaded = feature_io.load(folder)
        singles[name] = root / "pandas" / name
        feature_io.write_tables(singles[name], build_tables(loaded.history, loaded.extract_start, loaded.extract_end),
                                source={"data": str(folder)}, code_months=loaded.code_months)
    features = root / "features"
    build_features(spark, data, features, shard_customers=800)  # several parts a region and segment
    chosen = models()
    chosen[STORED] = _with_stored_reference(chosen[STORED], pd.read_parquet(singles["quiet"] / "elderly.parquet"))
    template = root / "home-template"
    register(template, chosen)
    elderly = pd.read_parquet(singles["quiet"] / "elderly.parquet", columns=["subject_id", "prediction_time"])
    first = sorted(elderly.loc[elderly["prediction_time"] == pd.Timestamp(CARDS["quiet"][0]), "subject_id"].unique())[:4]
    subjects = {"quiet": [int(s) for s in first], "shifted": [int(s) + layout.SUBJECT_ID_STRIDE for s in first]}
    return SimpleNamespace(root=root, data=data, features=features, singles=singles, template=template, subjects=subjects)


def _home(world, name: str, cards: tuple[str, ...]) -> Path:
    home = world.root / name
    shutil.copytree(world.template, home)
    _write_cards(home / "outbox.db", {r: world.subjects[r] for r in cards})
    return home


def _monitor(home: Path, monkeypatch, *args: str) -> SimpleNamespace:
    monkeypatch.setenv("SOTE_RISK_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SOTE_RISK_OPERATOR_WEBHOOK_URL", raising=False)
    problems = [a for p in MONITORED for a in ("-p", p)]
    return cli("monitor", "--as-of", AS_OF, *problems, *args)


@pytest.fixture(scope="module")
def monitored(world):
    """The multi-region home monitored twice (the second run: a re-run of the same date), and
    each region's single-region oracle home monitored once."""
    with pytest.MonkeyPatch.context() as patch:
        home = _home(world, "home", REGIONS)
        first = _monitor(home, patch, "--features", str(world.features))
        alerts_after_first = _operator_alerts(home)
        records_after_first = {(r, p): _record(home, p, r) for r in REGIONS for p in MONITORED}
        again = _monitor(home, patch, "--features", str(world.features))
        singles = {}
        for name in REGIONS:
            single = _home(world, f"single-{name}", (name,))
            singles[name] = (single, _monitor(single, patch, "--features", str(world.singles[name])))
    return SimpleNamespace(home=home, features=world.features, first=first, again=again, singles=singles,
                           alerts_after_first=alerts_after_first, records_after_first=records_after_first)


@pytest.fixture()
def at_home(monitored, monkeypatch) -> Path:
    """The multi-region home as SOTE_RISK_HOME (its registry, outbox and records)."""
    monkeypatch.setenv("SOTE_RISK_HOME", str(monitored.home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return monitored.home


def _record(home: Path, problem: str, region: str = "") -> dict | None:
    from training.monitor_run import read_latest

    return read_latest(home / "monitoring", problem, region=region)


def _operator_alerts(home: Path) -> list[dict]:
    from alerts import outbox

    conn = outbox.connect(home / "outbox.db")
    try:
        return outbox.list_operator_alerts(conn, with_payload=True)
    finally:
        conn.close()


def _comparable(record: dict) -> dict:
    """A monitoring record without what names its run or its home (run id, region, the outbox's path)."""
    out = {k: v for k, v in record.items() if k not in ("run_id", "region")}
    out["notes"] = [n for n in record["notes"] if "outbox" not in n]
    return out


# ---- the oracle --------------------------------------------------------------------------------


@pytest.mark.spark
@pytest.mark.slow
def test_each_regions_figures_equal_the_single_region_monitor_on_its_pandas_features(monitored):
    assert monitored.first.returncode == 0, monitored.first.stderr[-2000:]
    for region in REGIONS:
        single_home, single = monitored.singles[region]
        assert single.returncode == 0, single.stderr[-2000:]
        for problem in MONITORED:
            mine, oracle = _record(monitored.home, problem, region), _record(single_home, problem)
            assert mine["region"] == region and "region" not in oracle
            assert len(mine["months"]) >= 12 and any(m["complete"] for m in mine["months"])
            assert _comparable(mine) == _comparable(oracle), (region, problem)
    # the CRM feedback is each region's own: its cards only, as the oracle's outbox holds
    for region, (as_of, verdicts) in CARDS.items():
        month = next(m for m in _record(monitored.home, STORED, region)["months"] if m["month"].startswith(as_of[:7]))
        given = [v for v in verdicts if v]
        assert (month["crm_sent"], month["crm_feedback"], month["crm_accepted"]) == (
            len(verdicts), len(given), given.count("accepted")), region
    # the stored reference serves every region; the computed one is each region's own (cached apart)
    assert {_record(monitored.home, STORED, r)["reference"] for r in REGIONS} == {STORED_SOURCE}
    assert all(_record(monitored.home, COMPUTED, r)["reference"].startswith("computed now") for r in REGIONS)
    assert len(list((monitored.home / "cache" / "monitoring").glob("reference-*.json"))) == len(REGIONS)


# ---- breaches and alerts -----------------------------------------------------------------------


@pytest.mark.spark
@pytest.mark.slow
def test_the_shifted_region_breaches_and_the_quiet_one_does_not(monitored, at_home):
    quiet, shifted = (_record(monitored.home, STORED, r) for r in REGIONS)
    assert quiet["breaches"] == []
    drifted = [m["month"][:7] for m in shifted["months"] if "assessments_days_since" in (m.get("drift_features") or "")]
    assert drifted and drifted[0] == "2024-08"  # the first index month that sees a month of the change
    assert all(b.split(":")[0] >= "2024-08" for b in shifted["breaches"])
    # the region's own code counts (its shards' parts, summed) show the step in recording at once
    stepped = [m["month"][:7] for m in shifted["months"] if "code" in (m.get("breach_kinds") or "").split(",")]
    assert stepped == ["2024-08"] and "ASSESS/HTA 0 times in 2024-07" in shifted["months"][
        [m["month"][:7] for m in shifted["months"]].index("2024-08")]["breaches"]
    assert not any(m.get("code_steps") for m in quiet["months"])
    out = monitored.first.stdout.splitlines()
    assert f"quiet: {STORED}: no breach" in out
    assert f"shifted: {STORED}: {len(shifted['breaches'])} month(s) breached" in out
    assert any(line.startswith(f"== shifted: {STORED} version ") for line in out)
    # one operator alert per breached (region, problem), naming its region and its page
    breached = {(r, p) for r in REGIONS for p in MONITORED if _record(monitored.home, p, r)["breaches"]}
    assert ("shifted", STORED) in breached and ("quiet", STORED) not in breached
    alerts = monitored.alerts_after_first
    assert {(a["payload"]["region"], a["problem"]) for a in alerts} == breached and len(alerts) == len(breached)
    mine = next(a for a in alerts if (a["payload"]["region"], a["problem"]) == ("shifted", STORED))
    assert mine["payload"]["latest_breach"] == shifted["breaches"][-1]
    assert mine["payload"]["page"].endswith("&region=shifted")
    listed = cli("alerts", "operator").stdout
    assert f"pending   {STORED} in shifted version 1 (champion)" in listed


@pytest.mark.spark
@pytest.mark.slow
def test_rerunning_raises_nothing_new_and_records_the_same_figures(monitored):
    assert monitored.again.returncode == 0, monitored.again.stderr[-2000:]
    assert _operator_alerts(monitored.home) == monitored.alerts_after_first
    lines = [line for line in monitored.again.stdout.splitlines() if line.startswith("  operator alert ")]
    assert lines and all(line.endswith("already raised (nothing new)") for line in lines)
    for key, before in monitored.records_after_first.items():
        after = _record(monitored.home, key[1], key[0])
        assert after["run_id"] != before["run_id"] and _comparable(after) == _comparable(before), key


@pytest.mark.spark
@pytest.mark.slow
def test_mlflow_runs_records_and_models_list_name_the_region(monitored, at_home):
    from mlflow import MlflowClient

    from training import tracking
    from training.monitor_run import read_region_latest

    tracking.configure()
    runs = MlflowClient().search_runs([tracking.experiment_id(STORED)], "tags.kind = 'monitor'")
    assert sorted(r.data.tags.get("region") for r in runs) == sorted(REGIONS * 2)  # two runs a region
    for run in runs:
        record = _record(monitored.home, STORED, run.data.tags["region"])
        assert run.data.tags["breached_months"] == str(len(record["breaches"]))
    # the layout: one record a region, never the single-region file
    assert list(read_region_latest(monitored.home / "monitoring", STORED)) == list(REGIONS)
    assert _record(monitored.home, STORED) is None
    # the version's tag and `models list`: a breach in any region is the problem's, named
    from training.promotion import list_models

    tag = next(r for r in list_models() if r["problem"] == STORED)["aliases"]["champion"]["monitor"]
    shifted = _record(monitored.home, STORED, "shifted")
    assert tag["regions"] == {"quiet": [0, ""], "shifted": [len(shifted["breaches"]), shifted["breaches"][-1][:7]]}
    assert tag["breached_months"] == len(shifted["breaches"]) and tag["last_breach"] == f"shifted: {shifted['breaches'][-1]}"
    from sote_risk.commands.training import monitored_regions_text

    said = monitored_regions_text(tag)
    assert said == (f"{AS_OF} BREACH {len(shifted['breaches'])} mo in shifted (1 of 2 regions), last shifted "
                    f"{shifted['breaches'][-1][:7]}")
    letters = lambda text: "".join(ch for ch in text if ch.isalnum())  # noqa: E731 (the table folds its cells)
    assert letters(said) in letters(cli("models", "list").stdout)


@pytest.mark.spark
@pytest.mark.slow
def test_retrain_if_degraded_counts_a_breach_in_any_region(monitored, at_home):
    from training.retrain import breach_summary, monitor_evidence

    shifted = _record(monitored.home, STORED, "shifted")
    evidence = monitor_evidence(STORED, pd.Timestamp(AS_OF))
    assert evidence.breached and evidence.regions == REGIONS and evidence.breached_regions == ("shifted",)
    assert evidence.breached_months == len(shifted["breaches"]) and evidence.run_id == shifted["run_id"]
    assert evidence.last_breach == f"shifted: {shifted['breaches'][-1]}"
    assert "in shifted (1 of 2 regions)" in breach_summary(evidence)
    # the command says the evidence, then refuses to train on a multi-region folder, in one line
    result = cli("retrain", "--if-degraded", "--as-of", AS_OF, "-p", STORED, "--data", str(monitored.features))
    assert result.stdout.startswith(f"{STORED}: BREACHED in its monitoring runs of {AS_OF} in 2 regions (version 1): ")
    assert "-> to retrain as of" in result.stdout
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "is a multi-region features folder" in result.stderr


@pytest.mark.spark
@pytest.mark.slow
def test_the_page_shows_the_region_with_the_newest_breach_and_links_the_others(monitored):
    from serving.monitor_page import monitoring_page, shown_record
    from training.monitor_run import read_region_latest

    regions = read_region_latest(monitored.home / "monitoring", STORED)
    shown = shown_record(None, regions)
    assert shown["region"] == "shifted"
    for lang, said in (("en", "Region shifted."), ("fi", "Alue shifted.")):
        page = monitoring_page(shown, lang, "champion", regions)
        assert f'<p class="lead">{said} ' in page and 'data-month="2024-08"' in page
        assert f'href="{STORED}?lang={lang}&amp;region=quiet" data-region="quiet"' in page
        assert '<strong data-region="shifted">' in page
    quiet = monitoring_page(regions["quiet"], "en", "champion", regions)
    assert "No threshold breached" in quiet and 'data-region="shifted">shifted</a> <span class="region-breached">' in quiet


# ---- `run --engine spark` monitors the regions it scored ----------------------------------------


@pytest.mark.spark
@pytest.mark.slow
def test_the_spark_run_monitors_every_region_it_scored(world, monitored, tmp_path):
    """`sote-risk run --engine spark` as a user runs it (its own JVM, local[1]): the monitoring
    step's table on stderr with each region named, its summary by region in the run's JSON, the
    same figures as `monitor` on the folder (the CRM feedback aside: this outbox has the run's cards)."""
    from tests.test_cli_quiet import run_cli

    home = tmp_path / "home"
    shutil.copytree(world.template, home)
    done = run_cli("run", "--engine", "spark", "--data", str(world.data), "--features", str(world.features), "--as-of",
                   AS_OF, "--master", "local[1]", "--shard-customers", "1000", home=home)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    step = summary["monitor"]
    assert list(step["regions"]) == list(REGIONS) and step["as_of"] == AS_OF
    for region in REGIONS:
        assert set(step["regions"][region]) | set(step["failed"].get(region, {})) == set(summary["regions"][region]["problems"])
        record = _record(home, STORED, region)
        assert step["regions"][region][STORED]["breached_months"] == len(record["breaches"])
        months, oracle = (pd.DataFrame(r["months"]).drop(columns=[c for c in r["months"][0] if c.startswith("crm_")])
                          for r in (record, _record(monitored.home, STORED, region)))
        pd.testing.assert_frame_equal(months, oracle)
    assert step["regions"]["shifted"][STORED]["breached_months"] > 0 == step["regions"]["quiet"][STORED]["breached_months"]
    assert step["regions"]["shifted"][STORED]["operator_alert"] in {a["alert_id"] for a in _operator_alerts(home)}
    assert "== summary" in done.stderr and f"shifted: {STORED}: " in done.stderr and f"quiet: {STORED}: no breach" in done.stderr
    assert "monitoring is not run" not in done.stderr


# ---- without Spark: the parts -------------------------------------------------------------------


def _report(problem: str = STORED, region: str = "", breaches: tuple[str, ...] = (), as_of: str = AS_OF):  # noqa: ANN202
    """A MonitorReport of months 2024-06..2024-12 whose months `breaches` ('YYYY-MM') breached."""
    from training.monitoring import MonitorReport
    from training.spec import Monitoring

    months = pd.date_range("2024-06-01", "2024-12-01", freq="MS")
    said = [f"feature drift ({m:%Y-%m})" if f"{m:%Y-%m}" in breaches else "" for m in months]
    return MonitorReport(problem, "3", pd.Timestamp(as_of), "test", pd.DataFrame({"month": months, "breaches": said}),
                         pd.DataFrame(), [], Monitoring(), region=region)


def test_the_version_tag_sums_the_regions_of_a_date_and_names_the_newest_breach():
    from training.monitor_run import version_tag

    single = version_tag(_report(breaches=("2024-08",)), "r0")
    assert single == {"as_of": AS_OF, "run_id": "r0", "breached_months": 1, "last_breach": "2024-08: feature drift (2024-08)"}
    a = version_tag(_report(region="a", breaches=("2024-08", "2024-09")), "r1", json.dumps(single))  # the single one replaced
    assert a["regions"] == {"a": [2, "2024-09"]} and a["breached_months"] == 2
    ab = version_tag(_report(region="b"), "r2", json.dumps(a))
    assert ab["regions"] == {"a": [2, "2024-09"], "b": [0, ""]} and ab["breached_months"] == 2
    assert ab["last_breach"] == "a: 2024-09: feature drift (2024-09)" and ab["run_id"] == "r2"
    newer = version_tag(_report(region="b", breaches=("2024-11",)), "r3", json.dumps(ab))  # b again: its entry replaced
    assert newer["regions"] == {"a": [2, "2024-09"], "b": [1, "2024-11"]} and newer["breached_months"] == 3
    assert newer["last_breach"] == "b: 2024-11: feature drift (2024-11)"
    calmer = version_tag(_report(region="b"), "r4", json.dumps(newer))  # a's words went with the tag before: its month
    assert calmer["last_breach"] == "a: 2024-09" and calmer["breached_months"] == 2 and calmer["last_breach_region"] == "a"
    later = version_tag(_report(region="b", as_of="2025-01-01"), "r5", json.dumps(newer))  # another date starts again
    assert later["regions"] == {"b": [0, ""]} and later["breached_months"] == 0 and later["last_breach"] == ""


def test_retrain_evidence_of_regions_is_any_regions_breach_named():
    from training.retrain import breach_summary, region_evidence

    runs = {"b": ("run-b", {"breached_months": "2", "breaches": "2024-08: x | 2024-11: y"}),
            "a": ("run-a", {"breached_months": "1", "breaches": "2024-09: z"}),
            "c": ("run-c", {"breached_months": "0", "breaches": "none"})}
    evidence = region_evidence("p", "3", pd.Timestamp(AS_OF), runs)
    assert evidence.breached and evidence.breached_months == 3 and evidence.run_id == "run-b"
    assert evidence.breaches == "b: 2024-08: x | a: 2024-09: z | b: 2024-11: y" and evidence.last_breach == "b: 2024-11: y"
    assert evidence.regions == ("a", "b", "c") and evidence.breached_regions == ("a", "b")
    assert breach_summary(evidence) == "3 month(s) breached in a, b (2 of 3 regions), last b: 2024-11: y"
    quiet = region_evidence("p", "3", pd.Timestamp(AS_OF), {"c": runs["c"]})
    assert not quiet.breached and quiet.run_id == "run-c" and breach_summary(quiet) == "no breach"
    assert "in 1 region (version 3)" in quiet.seen()


def test_the_page_without_a_region_shows_the_newest_result():
    from serving.monitor_page import shown_record

    def record(region: str, as_of: str, breached: tuple[str, ...] = ()) -> dict:
        return {"region": region, "as_of": as_of, "months": [{"month": f"{m}-01", "breaches": "x"} for m in breached]
                + [{"month": "2024-12-01", "breaches": ""}]}

    single = {k: v for k, v in record("", "2024-11-01").items() if k != "region"}
    regions = {"a": record("a", AS_OF, ("2024-08",)), "b": record("b", AS_OF, ("2024-10",)), "c": record("c", AS_OF)}
    assert shown_record(single, {}) is single
    assert shown_record(single, regions)["region"] == "b"  # the newest breach of a newer run
    assert shown_record({**single, "as_of": "2025-01-01"}, regions) is not None and \
        "region" not in shown_record({**single, "as_of": "2025-01-01"}, regions)
    assert shown_record(None, {"c": regions["c"], "d": record("d", AS_OF)})["region"] == "c"  # none breached: the first
    assert shown_record(None, {"z": record("z", AS_OF, ("2024-10",)), "b": regions["b"]})["region"] == "b"  # ties: by name


def test_a_breach_in_two_regions_raises_two_operator_alerts_and_the_same_none_again(tmp_path):
    from alerts import outbox
    from alerts.operator import raise_breach_alert

    conn = outbox.connect(tmp_path / "outbox.db")
    try:
        ids = {}
        for region in ("", "a", "b"):
            ids[region], new = raise_breach_alert(conn, _report(region=region, breaches=("2024-09",)), "champion", "run")
            assert new
            assert raise_breach_alert(conn, _report(region=region, breaches=("2024-09",)), "champion", "again") == (
                ids[region], False)
        assert len(set(ids.values())) == 3
        payloads = {a["alert_id"]: a["payload"] for a in outbox.list_operator_alerts(conn, with_payload=True)}
        assert payloads[ids["a"]]["region"] == "a" and payloads[ids["a"]]["page"].endswith("&region=a")
        assert "region" not in payloads[ids[""]] and "region=" not in payloads[ids[""]]["page"]
    finally:
        conn.close()
    # the home's one region keeps the id it always had (an outbox from before regions raises nothing new)
    assert ids[""] == outbox.operator_alert_id("monitor_breach", STORED, AS_OF, "champion", "3", "2024-09")


def test_a_regions_feedback_counts_only_its_customers_cards(tmp_path):
    from alerts import feedback, outbox

    north, south = [101, 102, 103], [layout.SUBJECT_ID_STRIDE + 101, layout.SUBJECT_ID_STRIDE + 104]
    db = tmp_path / "outbox.db"
    from tests._alerts_helpers import record_many, scores_of

    conn = outbox.connect(db)
    try:
        record_many(conn, scores_of(*[(s, STORED, 0.9) for s in north + south], as_of="2024-06-01"), today=date(2024, 6, 1))
        for subject, verdict in ((101, "accepted"), (103, "overridden"), (south[0], "accepted")):
            feedback.record_feedback(conn, outbox.card_id(subject, pd.Timestamp("2024-06-01")),
                                     {"outcome": verdict, "outcomeTimestamp": "2024-07-01T08:00:00Z"})
        every = feedback.monthly_feedback(conn, [STORED])
        mine = {name: feedback.monthly_feedback(conn, [STORED], subjects=set(ids)) for name, ids in
                (("north", north), ("south", south))}
    finally:
        conn.close()
    counts = lambda rows: [(r.month, r.sent, r.with_feedback, r.accepted, r.overridden) for r in rows]  # noqa: E731
    assert counts(every) == [("2024-06", 5, 3, 2, 1)]
    assert counts(mine["north"]) == [("2024-06", 3, 2, 1, 1)] and counts(mine["south"]) == [("2024-06", 2, 1, 1, 0)]


@pytest.fixture()
def empty_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("SOTE_RISK_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SOTE_RISK_OPERATOR_WEBHOOK_URL", raising=False)
    return home


def _tiny_folders(root: Path) -> tuple[Path, Path, Path]:
    """(a multi-region features folder's manifest, a single-region folder, a folder of neither)."""
    multi = root / "multi"
    multi.mkdir()
    manifest = layout.features_manifest(pipeline_version="x", source={}, segments={"elderly": {
        "north": {"rows": 1, "customers": 1, "parts": 1}, "south": {"rows": 1, "customers": 1, "parts": 1}}})
    (multi / layout.FEATURES_MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    single = root / "single"
    single.mkdir()
    (single / "elderly.parquet").write_bytes(b"")  # refused before it is read
    other = root / "other"
    other.mkdir()
    (other / "notes.txt").write_text("not features", encoding="utf-8")
    return multi, single, other


@pytest.mark.parametrize("args, said", [
    (["monitor", "--as-of", AS_OF, "--features", "{missing}"], "error: features directory {missing} does not exist"),
    (["monitor", "--as-of", AS_OF, "--features", "{other}"], "error: {other}: not a features folder (no <segment>.parquet"),
    (["monitor", "--as-of", AS_OF, "--features", "{single}", "--regions", "north"],
     "error: --regions needs a multi-region features folder"),
    (["monitor", "--as-of", AS_OF, "--features", "{multi}", "--regions", "north,nowhere"],
     "error: {multi}: no region(s) nowhere (regions: north, south)"),
    (["monitor", "--as-of", AS_OF, "--features", "{multi}", "--regions", " , "], "error: --regions names no region"),
    (["monitor", "--as-of", "2024-13-01", "--features", "{multi}"], "error: --as-of must be a date YYYY-MM-DD"),
    (["run", "--as-of", AS_OF, "--features", "{multi}"], "error: --data, --regions and --features are for --engine spark"),
    (["run", "--engine", "spark", "--as-of", AS_OF, "--features", "{multi}", "--no-monitor"],
     "error: --features is the folder the monitoring step reads"),
    (["run", "--engine", "spark", "--as-of", AS_OF, "--features", "{single}"],
     "error: {single}: not a multi-region features folder (no features.json)"),
    (["run", "--engine", "spark", "--as-of", AS_OF, "--features", "{multi}", "--regions", "nowhere"],
     "error: {multi}: no region(s) nowhere (regions: north, south)"),
])
def test_bad_options_and_folders_are_one_clear_line_before_any_work(empty_home, tmp_path, args, said):
    multi, single, other = _tiny_folders(tmp_path)
    names = {"multi": multi, "single": single, "other": other, "missing": tmp_path / "missing"}
    result = cli(*[a.format(**names) for a in args])
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.startswith(said.format(**names)), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (empty_home / "monitoring").exists() and not (empty_home / "mlflow.db").exists()  # nothing was done
