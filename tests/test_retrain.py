"""Retraining on evidence (`sote-risk retrain --if-degraded`, training/retrain.py), CRM feedback in
the monitor, and the operator alert list, on a real short simulation with a shift.

The home: the pinned serving region (2,500 residents, 3 years) simulated with the coding change of
tests/test_monitoring.py (care need assessments recorded differently from 2024-07), its feature
tables built by the real pipeline, the five pinned models registered as champions, and cards with
CRM feedback in its outbox. `sote-risk monitor --as-of 2024-09-01` on elderly-hospitalisation and
children-hospitalisation: the first breaches (assessments_days_since steps in 2024-08), the second
does not (its thresholds and this region's months: no breach before 2024-10). Then `sote-risk
retrain --if-degraded --as-of 2024-09-01` on both, through the real entry point.

The specs are the shipped ones with a split that fits three years of index months (train up to 14
months before the anchor, validation 10-7, test the last 3 complete months) and small bootstrap
and trial budgets: the suite's time, not the method, is what they change. The champions are the
pinned models, trained on every month of this region (their realised figures are in-sample, so a
fair challenger looks worse beside them: the gate's refusal is what this home shows; the pure
rule's other answers are tested on tags).
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import sys
from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from training.spec import Gates

BREACHED, QUIET, NEVER = "elderly-hospitalisation", "children-hospitalisation", "elderly-homecare_failure"
AS_OF = "2024-09-01"
# 2024-06-01 + 90 days = 2024-08-30 <= 2024-09-01; 2024-07-01 + 90 days = 2024-09-29 is not
RECENT = [pd.Timestamp("2024-04-01"), pd.Timestamp("2024-05-01"), pd.Timestamp("2024-06-01")]


def cli(*args: str) -> SimpleNamespace:
    """The real entry point (sote_risk.cli.main) in-process, its output captured."""
    from sote_risk.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["sote-risk", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as exit_:
                code = exit_.code or 0
    finally:
        sys.argv = saved
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def write_specs(folder):
    """The shipped specs with a split for three years and small budgets (module docstring)."""
    from training.spec import experiments_dir

    folder.mkdir()
    for path in experiments_dir().glob("*.yaml"):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        if spec["horizon_days"] <= 90:
            spec["split"] = {"train": {"start": None, "end": -14}, "validation": {"start": -10, "end": -7},
                             "test": {"start": -3, "end": 0}}
        spec["search"]["trials"] = 1
        spec["evaluation"] = {**spec.get("evaluation", {}), "bootstrap_samples": 50, "shap_sample": 50}
        spec["monitoring"] = {**spec.get("monitoring", {}), "bootstrap_samples": 50}
        (folder / path.name).write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return folder


# Cards and the CRM's verdicts: (index date, subjects, problems, verdicts by subject in order given)
CARDS = [
    ("2024-06-01", [1, 2, 3, 4, 5, 6], [BREACHED], {1: ["accepted"], 2: ["accepted"], 3: ["overridden"],
                                                   4: ["overridden", "accepted"]}),  # 4: the later verdict counts
    ("2024-07-01", [7, 8, 9], [BREACHED], {}),
    ("2024-08-01", [10], [BREACHED, QUIET], {10: ["overridden"]}),
]


def write_cards(home):
    from alerts import feedback, outbox
    from tests._alerts_helpers import record_many, scores_of

    conn = outbox.connect(home / "outbox.db")
    try:
        for as_of, subjects, problems, verdicts in CARDS:
            record_many(conn, scores_of(*[(s, p, 0.9) for s in subjects for p in problems], as_of=as_of),
                        today=date.fromisoformat(as_of))
            for subject, said in verdicts.items():
                card = outbox.card_id(subject, pd.Timestamp(as_of))
                for hour, outcome in enumerate(said):
                    feedback.record_feedback(conn, card, {"outcome": outcome,
                                                          "outcomeTimestamp": f"2024-09-0{hour + 1}T08:00:00Z"})
    finally:
        conn.close()


def shifted_home(root):
    """The shifted region's home under `root` (features of the elderly and children segments, the
    pinned models registered as champions) and its specs folder (module docstring)."""
    from features import io as feature_io
    from features.build import build_tables
    from features.history import History
    from synthetic.config import CodingChange, ShiftConfig, SimulatorConfig
    from synthetic.simulate import simulate
    from tests.serving_fixture import CUSTOMERS, SEED, YEARS, models, register
    from tests.test_monitoring import SHIFT

    home, specs = root / "home", write_specs(root / "experiments")
    shifted = simulate(SimulatorConfig(customers=CUSTOMERS, seed=SEED, years=YEARS, shifts=ShiftConfig(
        coding=(CodingChange(start=SHIFT, code="ASSESS/HTA", recorded_as="ENC/HC_NURSE"),
                CodingChange(start=SHIFT, code="ASSESS/PTA")))))
    history = History.from_frames(shifted.events, shifted.customers)
    tables = build_tables(history, pd.Timestamp(shifted.metadata["extract_start"]),
                          pd.Timestamp(shifted.metadata["extract_end"]), segments=["elderly", "children"])
    feature_io.write_tables(home / "features", tables, source={"data": "the shifted test region"})
    register(home, models())
    return home, specs


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The shifted region's home, monitored as of 2024-09-01, then retrained (module docstring)."""
    home, specs = shifted_home(tmp_path_factory.mktemp("retrain"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOTE_RISK_HOME", str(home))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("SOTE_RISK_OPERATOR_WEBHOOK_URL", raising=False)
        write_cards(home)
        monitored = cli("monitor", "--as-of", AS_OF, "-p", BREACHED, "-p", QUIET, "--experiments", str(specs))
        assert monitored.returncode == 0, monitored.stderr[-2000:]
        retrained = cli("retrain", "--if-degraded", "--as-of", AS_OF, "-p", BREACHED, "-p", QUIET,
                        "--experiments", str(specs))
        yield SimpleNamespace(path=home, specs=specs, monitored=monitored, retrained=retrained)


def _tags(problem: str, alias: str) -> tuple[str, dict[str, str]]:
    from mlflow import MlflowClient

    from models.registry import model_name
    from training import tracking

    tracking.configure()
    version = MlflowClient().get_model_version_by_alias(model_name(problem), alias)
    return str(version.version), dict(version.tags)


# --- retrain --if-degraded --------------------------------------------------------------------


def test_retrain_if_degraded_retrains_exactly_the_breached_problem(home):
    from models.registry import ModelNotFoundError, resolve_version
    from training.promotion import list_models

    result = home.retrained
    assert result.returncode == 0, result.stderr[-2000:]  # trained (its gates fail: promotion, not retraining, refuses)
    monitored = {r["problem"]: r["aliases"]["champion"]["monitor"] for r in list_models()}
    breached = {p for p, tag in monitored.items() if tag and tag["breached_months"]}
    assert breached == {BREACHED}
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{BREACHED}: BREACHED in its monitoring run of {AS_OF} (version 1, run "
                               f"{monitored[BREACHED]['run_id'][:8]}): {monitored[BREACHED]['breached_months']} month(s) "
                               "breached, last 2024-09: feature drift (assessments_days_since PSI")
    assert lines[0].endswith(f"-> retraining as of {AS_OF}")
    assert lines[1] == f"{QUIET}: skipped: no breach in its monitoring run of {AS_OF} (version 1, run " \
                       f"{monitored[QUIET]['run_id'][:8]})"
    assert lines[2].startswith(f"{BREACHED}: trained version 2 (challenger) as of {AS_OF}")
    version, tags = _tags(BREACHED, "challenger")
    assert version == "2"
    why = json.loads(tags["retrain"])
    assert why["monitor_run"] == monitored[BREACHED]["run_id"] and why["as_of"] == AS_OF and why["champion_version"] == "1"
    with pytest.raises(ModelNotFoundError):
        resolve_version(QUIET, "challenger")  # the quiet problem was not retrained
    assert str(resolve_version(BREACHED, "champion").version) == "1"  # nothing promoted without --promote


def test_the_challenger_learnt_nothing_after_the_as_of_date(home):
    from mlflow import MlflowClient

    _, tags = _tags(BREACHED, "challenger")
    run = MlflowClient().get_run(tags["run_id"])
    assert run.data.tags["as_of"] == AS_OF
    # the test period ends at the last month complete at the as-of date, and holds the compared months
    assert run.data.params["period_test"] == "test [2024-04-01, 2024-07-01)"
    assert run.data.params["period_train"] == "train [first, 2023-05-01)"


def test_the_comparison_equals_a_naive_recomputation_on_the_recent_complete_months(home):
    from features import pipeline_version
    from models.registry import load_model

    _, tags = _tags(BREACHED, "challenger")
    assert tags["recent_months"] == "2024-04,2024-05,2024-06" and tags["recent_as_of"] == AS_OF
    assert tags["recent_champion_version"] == "1" and tags["recent_held_out"] == "true"
    table = pd.read_parquet(home.path / "features" / "elderly.parquet")
    champion = load_model(BREACHED, "champion", expected_pipeline_version=pipeline_version())
    challenger = load_model(BREACHED, "challenger", expected_pipeline_version=pipeline_version())

    def naive(months):
        rows = table[table["prediction_time"].isin(months) & table["eligible_hospitalisation"]
                     & table["censor_hospitalisation"].isna() & table["label_hospitalisation"].notna()]
        y = rows["label_hospitalisation"].astype(bool).to_numpy()
        p, q = challenger.predict_proba(rows), champion.predict_proba(rows)
        return rows, y, p, q

    rows, y, p, q = naive(RECENT)
    assert int(tags["recent_rows"]) == len(rows) and int(tags["recent_events"]) == y.sum()
    assert int(tags["recent_customers"]) == rows["subject_id"].nunique()
    figures = {"recent_auroc": roc_auc_score(y, p), "recent_champion_auroc": roc_auc_score(y, q),
               "recent_auroc_gain": roc_auc_score(y, p) - roc_auc_score(y, q),
               "recent_observed_expected": y.sum() / p.sum(), "recent_champion_observed_expected": y.sum() / q.sum()}
    for key, value in figures.items():
        assert float(tags[key]) == pytest.approx(value, rel=1e-5), key
    # the paired interval: customers drawn with replacement (the seed's draws), both models scored on each draw
    spec = yaml.safe_load((home.specs / f"{BREACHED}.yaml").read_text(encoding="utf-8"))
    customers, codes = np.unique(rows["subject_id"].to_numpy(), return_inverse=True)
    rng = np.random.default_rng(spec["seed"])
    gains = []
    for _ in range(spec["evaluation"]["bootstrap_samples"]):
        weight = np.bincount(rng.integers(0, len(customers), len(customers)), minlength=len(customers))[codes]
        gains.append(roc_auc_score(y, p, sample_weight=weight) - roc_auc_score(y, q, sample_weight=weight))
    low, high = np.percentile(gains, [2.5, 97.5])
    assert float(tags["recent_auroc_gain_ci_low"]) == pytest.approx(low, rel=1e-5)
    assert float(tags["recent_auroc_gain_ci_high"]) == pytest.approx(high, rel=1e-5)
    # other months give other figures: the comparison would not hold on a wrong choice of months
    for wrong in (RECENT[1:] + [pd.Timestamp("2024-07-01")], [pd.Timestamp("2024-03-01")] + RECENT[:2]):
        rows_w, y_w, p_w, q_w = naive(wrong)
        assert len(rows_w) != int(tags["recent_rows"]) or \
            roc_auc_score(y_w, p_w) - roc_auc_score(y_w, q_w) != pytest.approx(figures["recent_auroc_gain"], rel=1e-5)


def test_promotion_applies_the_recent_month_rule_and_refuses(home):
    from training.promotion import promote

    _, tags = _tags(BREACHED, "challenger")
    decision = promote(BREACHED)
    assert not decision.promoted and not decision.forced
    margin = Gates().recent_auroc_margin
    shown_worse = float(tags["recent_auroc_gain_ci_low"]) < -margin
    assert shown_worse == any(r.startswith("recent_auroc_gain ") for r in decision.reasons)
    assert tags["recent_comparison"].startswith("failed: recent_auroc_gain") == shown_worse
    assert home.retrained.stdout.count("gates: FAIL: ") == 1
    assert "promote it with" not in home.retrained.stdout  # a challenger that failed is never offered as passing
    listed = cli("models", "list").stdout
    failed = tags["recent_comparison"] != "passed"
    assert ("recent vs v1: FAILED" in listed) == failed and ("recent vs v1: not worse" in listed) != failed
    _, champion_tags = _tags(BREACHED, "champion")
    assert "promoted_at" in champion_tags and "promotion_forced" not in champion_tags


# --- the gate's rule on its own -----------------------------------------------------------------


def _retrained(**figures) -> dict[str, str]:
    base = {"retrain": "{}", "recent_champion_version": "4", "recent_held_out": "true",
            "recent_months": "2024-04,2024-05,2024-06", "recent_auroc_gain": "0.001", "recent_auroc_gain_ci_low": "-0.015",
            "recent_auroc_gain_ci_high": "0.017", "recent_observed_expected": "1.02", "recent_observed_expected_ci_low": "0.9",
            "recent_observed_expected_ci_high": "1.15", "recent_champion_observed_expected": "1.4"}
    return {**base, **{k: str(v) for k, v in figures.items()}}


@pytest.mark.parametrize("changes, expected", [
    ({}, []),
    ({"recent_auroc_gain_ci_low": "-0.0201"}, ["recent_auroc_gain +0.0010 (95% CI -0.0201 to +0.0170) on index months "
                                              "2024-04 to 2024-06 reaches below -0.02"]),
    # outside the band but nearer 1 than the champion: better-or-equal
    ({"recent_observed_expected": "1.3", "recent_observed_expected_ci_high": "1.5"}, []),
    ({"recent_observed_expected": "1.5", "recent_observed_expected_ci_low": "1.3", "recent_observed_expected_ci_high": "1.7"},
     ["recent_observed_expected 1.50 (95% CI 1.30 to 1.70) is not within 0.80 to 1.25 and is farther from 1 than the "
      "champion's (1.40)"]),
    ({"recent_observed_expected": "0.75", "recent_observed_expected_ci_low": "0.65", "recent_observed_expected_ci_high": "0.79",
      "recent_champion_observed_expected": "1.4"}, []),  # |ln 0.75| < |ln 1.4|: on the ratio's own scale, not 1 - x
    ({"recent_observed_expected": "0.7", "recent_observed_expected_ci_low": "0.6", "recent_observed_expected_ci_high": "0.79",
      "recent_champion_observed_expected": "1.4"},
     ["recent_observed_expected 0.70 (95% CI 0.60 to 0.79) is not within 0.80 to 1.25 and is farther from 1 than the "
      "champion's (1.40)"]),  # |ln 0.7| > |ln 1.4|, though 1 - 0.7 < 1.4 - 1
    ({"recent_held_out": "false"}, ["the compared months 2024-04 to 2024-06 are not all in the challenger's test period"]),
    ({"recent_champion_version": "3"}, ["the recent-month comparison was made against version 3, but the champion is "
                                        "version 4"]),
])
def test_the_recent_month_rule(changes, expected):
    from training.promotion import recent_reasons

    assert recent_reasons(_retrained(**changes), "4", Gates()) == expected


def test_what_was_not_compared_does_not_pass():
    from training.promotion import gate_reasons, recent_reasons

    missing = {k: v for k, v in _retrained().items() if not k.startswith(("recent_auroc_gain", "recent_observed"))}
    assert recent_reasons(missing, "4", Gates()) == [
        "challenger has no recent_auroc_gain interval recorded for the recent months",
        "challenger has no recent_observed_expected interval recorded for the recent months"]
    assert recent_reasons({"retrain": "{}"}, "4", Gates()) == [
        "challenger has no recent_auroc_gain interval recorded for the recent months"]
    plain = {k: v for k, v in _retrained().items() if k != "retrain"}  # `sote-risk train`: the test-period gates only
    assert recent_reasons(plain, "4", Gates()) == []
    assert recent_reasons(_retrained(), None, Gates()) == []  # no champion to hold against
    assert "challenger has no recent_auroc_gain interval recorded for the recent months" in gate_reasons(
        {"retrain": "{}"}, {}, Gates(), "4")


def test_the_recent_month_reasons_are_said_in_both_languages():
    from tests._forbidden import problems
    from training.promotion import recent_reasons
    from vocabulary.gates import gate_reason

    recorded = (recent_reasons(_retrained(recent_auroc_gain_ci_low="-0.0312", recent_observed_expected="1.5",
                                          recent_observed_expected_ci_low="1.3", recent_observed_expected_ci_high="1.7",
                                          recent_held_out="false"), "4", Gates())
                + recent_reasons(_retrained(recent_champion_version="3"), "4", Gates())
                + recent_reasons({"retrain": "{}"}, "4", Gates()))
    assert len(recorded) == 5
    said = {lang: [gate_reason(r, lang) for r in recorded] for lang in ("en", "fi")}
    assert said["en"][1] == ("On the recent months 2024-04 to 2024-06 the AUROC difference to the model in use +0.0010 "
                             "(95% interval \u22120.0312 – +0.0170) reaches below \u22120.02: the new model may be worse")
    assert said["fi"][1] == ("Viimeisimmillä kuukausilla 4/2024–6/2024 AUROC-ero käytössä olevaan malliin +0,0010 "
                             "(95\u00a0%:n väli \u22120,0312 – +0,0170) ulottuu arvon \u22120,02 alapuolelle: uusi malli "
                             "voi olla heikompi")
    for lang, texts in said.items():
        for recorded_text, text in zip(recorded, texts):
            assert text != recorded_text and problems(text, lang) == [], text


# --- CLI refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("args, said", [
    (["--if-degraded", "--as-of", "2024-13-01"], "error: --as-of must be a date YYYY-MM-DD (got '2024-13-01')"),
    (["--if-degraded", "-p", "no-such-problem"], "error: unknown problem 'no-such-problem'; specs in "),
    (["--if-degraded", "-p", NEVER], f"error: {NEVER}: version 1 (champion) has no monitoring run; run `sote-risk "
                                     f"monitor --as-of DATE -p {NEVER}` first"),
    (["--if-degraded", "-p", BREACHED, "--as-of", "2024-08-01"],
     f"error: {BREACHED}: version 1 (champion) has no monitoring run dated 2024-08-01 or before; run `sote-risk "
     f"monitor --as-of DATE -p {BREACHED}` first"),
    (["-p"], "Option '-p' requires an argument"),
    ([], "error: retrain: give --if-degraded (the problems whose monitoring breached) or --problem P"),
])
def test_retrain_refusals_are_one_clear_line(home, args, said):
    from models.registry import resolve_version

    before = str(resolve_version(BREACHED, "challenger").version)
    result = cli("retrain", *args, "--experiments", str(home.specs)) if args != ["-p"] else cli("retrain", "-p")
    assert result.returncode != 0 and result.stdout == ""
    assert said in result.stderr
    if said.startswith("error:"):
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(said)
    assert str(resolve_version(BREACHED, "challenger").version) == before  # nothing trained


# --- CRM feedback in the monitor ------------------------------------------------------------------


def _hand_count(db) -> dict[tuple[str, str], dict[str, int]]:
    """Per (problem, YYYY-MM): cards sent and their latest verdicts, straight from the outbox's rows."""
    conn = sqlite3.connect(db)
    cards = conn.execute("SELECT p.problem, a.as_of, a.alert_id, a.status FROM alert_problems p JOIN alerts a "
                         "ON a.alert_id = p.alert_id").fetchall()
    verdicts = conn.execute("SELECT alert_id, outcome, outcome_timestamp FROM feedback").fetchall()
    conn.close()
    out: dict[tuple[str, str], dict[str, int]] = {}
    for problem, as_of, alert_id, status in cards:
        cell = out.setdefault((problem, as_of[:7]), {"sent": 0, "feedback": 0, "accepted": 0, "overridden": 0})
        if status not in ("pending", "delivered", "dead"):
            continue
        cell["sent"] += 1
        mine = sorted((v for v in verdicts if v[0] == alert_id), key=lambda v: v[2])
        if mine:
            cell["feedback"] += 1
            cell[mine[-1][1]] += 1
    return out


def test_feedback_shares_equal_a_hand_count_over_the_outbox(home):
    from training.monitor_run import read_latest

    counted = _hand_count(home.path / "outbox.db")
    assert counted[(BREACHED, "2024-06")] == {"sent": 6, "feedback": 4, "accepted": 3, "overridden": 1}
    for problem in (BREACHED, QUIET):
        record = read_latest(home.path / "monitoring", problem)
        for month in record["months"]:
            cell = counted.get((problem, month["month"][:7]), {"sent": 0, "feedback": 0, "accepted": 0, "overridden": 0})
            assert (month["crm_sent"], month["crm_feedback"], month["crm_accepted"], month["crm_overridden"]) == (
                cell["sent"], cell["feedback"], cell["accepted"], cell["overridden"]), (problem, month["month"])
            if cell["feedback"]:
                assert month["crm_accepted_share"] == pytest.approx(cell["accepted"] / cell["feedback"])
                assert month["crm_overridden_share"] == pytest.approx(cell["overridden"] / cell["feedback"])
            else:  # no verdict: no share, never 0 %
                assert month["crm_accepted_share"] is None and month["crm_overridden_share"] is None


def test_the_monitor_says_feedback_or_its_absence(home):
    lines = home.monitored.stdout.splitlines()
    first = next(i for i, row in enumerate(lines) if row.startswith(f"== {BREACHED} version 1 (champion), as of {AS_OF}"))
    last = next(i for i, row in enumerate(lines) if row.startswith(f"== {QUIET} version 1"))
    assert first < last

    def line(month: str) -> str:
        return next(row for row in lines[first:last] if row.startswith(month))

    assert "acc 3/4 75%, ovr 1/4 25%" in line("2024-06")
    assert "no feedback (3 sent)" in line("2024-07") and "%" not in line("2024-07").split("no feedback")[1][:20]
    assert "acc 0/1 0%, ovr 1/1 100%" in line("2024-08")
    assert "no cards sent" in line("2024-05")


def test_feedback_is_stored_in_the_monitoring_run_and_shown_on_the_page(home):
    from mlflow import MlflowClient

    from serving.monitor_page import monitoring_page
    from training.monitor_run import read_latest

    record = read_latest(home.path / "monitoring", BREACHED)
    history = MlflowClient().get_metric_history(record["run_id"], "monitor_crm_accepted_share")
    assert [(pd.Timestamp(m.timestamp, unit="ms").strftime("%Y-%m"), m.value) for m in history] == [
        ("2024-06", 0.75), ("2024-08", 0.0)]  # months without a verdict have no share
    sent = MlflowClient().get_metric_history(record["run_id"], "monitor_crm_sent")
    assert len(sent) == len(record["months"])  # counts for every month, zeros included
    en, fi = monitoring_page(record, "en"), monitoring_page(record, "fi")
    assert '<tr data-month="2024-06"><td>Jun 2024</td><td>6</td><td>4</td><td>3 (75%)</td><td>1 (25%)</td></tr>' in en
    assert '<tr data-month="2024-07"><td>Jul 2024</td><td>3</td><td>no feedback</td><td>no feedback</td>' in en
    assert '<tr data-month="2024-06"><td>kesä 2024</td><td>6</td><td>4</td><td>3 (75\u00a0%)</td>' in fi
    assert 'data-month="2024-05"><td>May 2024</td><td>0' not in en  # months without cards are left out
    unknown = monitoring_page({**record, "months": [{k: v for k, v in m.items() if not k.startswith("crm_")}
                                                    for m in record["months"]]}, "en")
    assert "CRM feedback is not known" in unknown and 'class="feedback"' not in unknown
    from tests._forbidden import problems
    from tests.test_costs_page import pieces

    for lang, page in (("en", en), ("fi", fi)):  # the feedback section's words, each language's way
        section = page[page.index('<h3 id="feedback">'):page.index("</section>", page.index('<h3 id="feedback">'))]
        found = [p for piece in pieces(section) for p in problems(piece, lang, allow=["CRM"])]
        assert found == [], found


def test_feedback_by_month_from_the_library(home):
    from alerts import feedback, outbox

    conn = outbox.connect(home.path / "outbox.db")
    try:
        rows = feedback.monthly_feedback(conn)
    finally:
        conn.close()
    counted = _hand_count(home.path / "outbox.db")
    assert {(r.problem, r.month): {"sent": r.sent, "feedback": r.with_feedback, "accepted": r.accepted,
                                   "overridden": r.overridden} for r in rows} == counted
    assert counted[(QUIET, "2024-08")] == {"sent": 1, "feedback": 1, "accepted": 0, "overridden": 1}  # one card, two problems


# --- operator alerts listed ------------------------------------------------------------------------


def test_operator_alerts_are_listed_with_their_delivery_state(home, monkeypatch):
    from _alerts_helpers import HookReceiver
    from alerts import outbox
    from training.monitor_run import read_latest

    record = read_latest(home.path / "monitoring", BREACHED)
    [raised] = [line for line in home.monitored.stdout.splitlines() if line.startswith("  operator alert ")]
    alert_id = raised.split()[2]
    listed = cli("alerts", "operator")
    assert listed.returncode == 0
    [line] = listed.stdout.splitlines()
    assert line.startswith(f"{alert_id}  pending   {BREACHED} version 1 (champion) as_of={AS_OF}  "
                           f"{len(record['breaches'])} month(s) breached, latest {record['breaches'][-1]}")
    assert "attempts=0" in line
    conn = outbox.connect(home.path / "outbox.db")
    try:
        claimed = outbox.claim_next(conn, owner="t", now=1e12, lease_seconds=10, table="operator_alerts")
        outbox.mark_failed(conn, claimed.alert_id, owner="t", error="HTTP 400", next_attempt_at=None, table="operator_alerts")
    finally:
        conn.close()
    dead = cli("alerts", "operator", "--status", "dead")
    assert dead.stdout.startswith(f"{alert_id}  dead") and "last_error=HTTP 400" in dead.stdout
    assert cli("alerts", "operator", "--status", "delivered").stdout == "no operator alerts with status delivered\n"
    shown = json.loads(cli("alerts", "operator", "--json").stdout)
    assert [(a["alert_id"], a["status"], a["payload"]["problem"]) for a in shown] == [(alert_id, "dead", BREACHED)]
    bad = cli("alerts", "operator", "--status", "sent")
    assert bad.returncode != 0 and bad.stderr.strip() == ("error: unknown operator alert status 'sent'; expected one of "
                                                         "pending, delivered, dead")
    # the dead one sent again (`alerts retry --operator`) and delivered by `alerts dispatch --once`, as monitoring raised it
    retried = cli("alerts", "retry", "--operator", alert_id)
    assert retried.returncode == 0 and retried.stdout == f"operator alert {alert_id}: dead -> pending\n"
    with HookReceiver() as operators:
        monkeypatch.setenv("SOTE_RISK_OPERATOR_WEBHOOK_URL", operators.url)
        once = cli("alerts", "dispatch", "--once")
    assert once.returncode == 0 and json.loads(once.stdout)["operator"] == {"delivered": 1, "retrying": 0, "dead": 0}
    [sent] = operators.requests
    assert sent["headers"]["idempotency-key"] == alert_id and json.loads(sent["body"]) == shown[0]["payload"]
    assert cli("alerts", "operator", "--status", "delivered").stdout.startswith(f"{alert_id}  delivered")


# --- the table as it stood ---------------------------------------------------------------------------


def test_the_table_as_of_a_date_knows_no_later_index_date_or_outcome():
    from training.spec import load_spec
    from training.splits import anchor_time, table_as_of

    spec = load_spec(BREACHED)  # 90 days
    months = pd.date_range("2023-01-01", "2024-12-01", freq="MS")
    frame = pd.DataFrame({
        "subject_id": np.arange(len(months)), "prediction_time": months,
        "eligible_hospitalisation": True, "label_hospitalisation": pd.array([True, False] * 12, dtype="boolean"),
        "censor_hospitalisation": pd.array([None] * 22 + ["extract_end"] * 2, dtype="string"),
        "outcome_time_hospitalisation": months + pd.Timedelta(days=10)})
    kept = frame.copy()
    as_of = pd.Timestamp("2024-09-01")
    table = table_as_of(frame, spec, as_of)
    pd.testing.assert_frame_equal(frame, kept)  # the caller's frame is not changed
    assert table["prediction_time"].max() == as_of
    open_ = table["prediction_time"] > pd.Timestamp("2024-06-01")  # 2024-07-01 + 90 days is after the date
    assert (table.loc[open_, "censor_hospitalisation"] == "extract_end").all()
    assert table.loc[open_, "label_hospitalisation"].isna().all()
    assert table.loc[open_, "outcome_time_hospitalisation"].isna().all()
    pd.testing.assert_frame_equal(table.loc[~open_], frame.loc[frame["prediction_time"] <= pd.Timestamp("2024-06-01")])
    assert anchor_time(table, spec) == pd.Timestamp("2024-07-01")


def test_recent_complete_months_are_the_monitors_complete_months():
    from training.monitoring import outcomes_complete, recent_complete_months

    months = pd.date_range("2024-01-01", "2024-09-01", freq="MS")
    assert recent_complete_months(months, 90, AS_OF, 3) == RECENT
    assert outcomes_complete("2024-06-01", 90, AS_OF) and not outcomes_complete("2024-07-01", 90, AS_OF)
    assert recent_complete_months(months, 90, "2024-03-01", 3) == []  # 2024-01-01 + 90 days is after it
    earlier = pd.date_range("2023-08-01", "2024-02-01", freq="MS")
    assert recent_complete_months(earlier, 90, "2024-03-01", 3) == list(pd.date_range("2023-10-01", "2023-12-01", freq="MS"))


# --- last: a forced promotion (changes the champion) ---------------------------------------------------


def test_a_forced_promotion_records_the_recent_month_failure_and_the_new_champion_needs_its_own_monitoring(home):
    """Runs last in this module: it makes the challenger champion."""
    from training.promotion import list_models, promote

    _, tags = _tags(BREACHED, "challenger")
    decision = promote(BREACHED, force=True)
    assert decision.promoted and decision.forced
    _, champion_tags = _tags(BREACHED, "champion")
    recorded = json.loads(champion_tags["promotion_forced_reasons"])
    assert recorded == decision.reasons and any(r.startswith("recent_auroc_gain ") for r in recorded) == (
        float(tags["recent_auroc_gain_ci_low"]) < -Gates().recent_auroc_margin)
    assert next(r for r in list_models() if r["problem"] == BREACHED)["aliases"]["champion"]["promotion_forced"] == "true"
    again = cli("retrain", "--if-degraded", "-p", BREACHED, "--experiments", str(home.specs))
    assert again.returncode != 0 and again.stderr.strip() == (
        f"error: {BREACHED}: version 2 (champion) has no monitoring run; run `sote-risk monitor --as-of DATE -p "
        f"{BREACHED}` first")  # the old champion's breach is no evidence about the new one
