"""The one scoring path (scoring/path.py) against a naive oracle, on the serving region (a small
simulated population on the real feature pipeline, with the five pinned LightGBM models).

The oracle is the pandas path a data scientist would write by hand: compute_cohorts says who is
eligible, compute_features gives their feature frame, model.predict_proba / model.contributions
score it. The service's numpy path (features.scoring_rows -> FeatureBlock -> model input ->
predict / pred_contrib -> reasons) must give the same cohorts, features, probabilities,
contributions and reasons, pair by pair, for pairs in every cohort, in none, in a cohort but not
eligible for its outcomes, and for one customer at several times.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from explain.reasons import explanation, plain_value
from features import compute_cohorts, compute_features, feature_names, scoring_rows
from scoring import path
from scoring.bands import band_for
from scoring.champions import champion_from_model
from tests.serving_fixture import members, models, outside_every_cohort, store

pytestmark = pytest.mark.slow

SEGMENT_OF = {problem: problem.partition("-")[0] for problem in models()}


def _in_cohort_but_not_eligible(time: pd.Timestamp) -> list[int]:
    """Customers in some segment's cohort but eligible for none of its outcomes at `time`, found
    by compute_cohorts (not by scoring)."""
    held = store()
    ids = held.ids()
    cohorts = compute_cohorts(None, None, ids, [time] * len(ids), history=held.history)
    found = np.zeros(len(ids), dtype=bool)
    for segment in set(SEGMENT_OF.values()):
        eligible = [c for c in cohorts.columns if c.startswith(f"eligible_{segment}-")]
        found |= cohorts[f"in_{segment}"].to_numpy() & ~cohorts[eligible].to_numpy().any(axis=1)
    return [int(s) for s in ids[found]]


@pytest.fixture(scope="module")
def pairs() -> tuple[np.ndarray, np.ndarray]:
    """A few dozen (customer, time) pairs, in no particular order: members of every problem at
    two times (one of them not at midnight), customers in no cohort, customers in a cohort but
    eligible for none of its outcomes, one customer at six times, and one pair given twice."""
    held = store()
    end = held.resolve_time(None)
    times = [pd.Timestamp("2023-06-15 10:30"), end]
    chosen: list[tuple[int, pd.Timestamp]] = []
    for problem in sorted(SEGMENT_OF):
        for time in times:
            chosen += [(s, time) for s in members(problem, time, limit=3)]
    for time in (pd.Timestamp("2022-09-01"), end):
        chosen += [(s, time) for s in outside_every_cohort(time, limit=3)]
    chosen += [(s, end) for s in _in_cohort_but_not_eligible(end)[:2]]
    one = members("elderly-homecare_failure", end, limit=1)[0]
    chosen += [(one, t) for t in pd.date_range("2022-03-01", end, periods=6)]
    chosen.append(chosen[0])
    order = np.random.default_rng(7).permutation(len(chosen))
    ids = np.array([chosen[i][0] for i in order], dtype=np.int64)
    when = np.array([chosen[i][1] for i in order], dtype="datetime64[us]")
    return ids, when


@pytest.fixture(scope="module")
def champions():
    return {problem: champion_from_model(problem, model) for problem, model in models().items()}


@pytest.fixture(scope="module")
def scored(pairs, champions) -> path.ScoredPairs:
    ids, times = pairs
    return path.score_pairs(store().history, ids, times, champions)


@pytest.fixture(scope="module")
def oracle(pairs):
    """compute_cohorts for every pair; per problem, the positions of its eligible pairs and
    their compute_features frame (the pandas path)."""
    ids, times = pairs
    history = store().history
    cohorts = compute_cohorts(None, None, ids, times, history=history)
    frames = {}
    for problem, segment in SEGMENT_OF.items():
        positions = np.flatnonzero(cohorts[f"eligible_{problem}"].to_numpy())
        frames[problem] = (positions, compute_features(None, None, ids[positions], times[positions], segment, history=history))
    return cohorts, frames


def test_the_pairs_cover_every_case(pairs, oracle):
    """The chosen pairs hold what the oracle tests claim: members of every problem, pairs in no
    cohort, pairs in a cohort but not eligible, and one customer at several times."""
    ids, times = pairs
    cohorts, frames = oracle
    assert 24 <= len(ids) <= 80
    assert all(len(positions) >= 3 for positions, _ in frames.values())
    inside = cohorts[[c for c in cohorts.columns if c.startswith("in_")]].to_numpy().any(axis=1)
    eligible = cohorts[[c for c in cohorts.columns if c.startswith("eligible_")]].to_numpy().any(axis=1)
    assert (~inside).sum() >= 3 and (inside & ~eligible).sum() >= 1
    counts = pd.Series(ids).value_counts()
    repeated = int(counts.index[0])
    assert len({t for s, t in zip(ids, times) if s == repeated}) >= 6


def test_probabilities_equal_predict_proba_on_compute_features(scored, oracle, champions):
    """The naive oracle: the eligible pairs are those compute_cohorts says, and their
    probabilities are exactly model.predict_proba(compute_features(...))."""
    cohorts, frames = oracle
    assert set(scored.problems) == set(champions)
    for problem, (positions, frame) in frames.items():
        rows = scored.problems[problem]
        np.testing.assert_array_equal(rows.positions, positions, err_msg=problem)
        np.testing.assert_array_equal(rows.probabilities, champions[problem].model.predict_proba(frame), err_msg=problem)
    for name in scored.cohorts:
        np.testing.assert_array_equal(scored.cohorts[name], cohorts[name].to_numpy(), err_msg=name)


@pytest.mark.parametrize("problems", [
    ["acute-hospitalisation", "children-hospitalisation", "depression-hospitalisation", "elderly-homecare_failure",
     "elderly-hospitalisation"],
    ["elderly-homecare_failure", "children-hospitalisation"],
], ids=["every problem", "two problems"])
def test_scoring_rows_equal_compute_cohorts_and_compute_features(pairs, problems):
    """features.scoring_rows (one pass over each timeline, features for members only) gives the
    cohorts of compute_cohorts for every pair, and per segment the compute_features columns of
    exactly the pairs eligible for a requested problem of it (categoricals as their codes)."""
    ids, times = pairs
    history = store().history
    found = scoring_rows(history, ids, times, problems)
    cohorts = compute_cohorts(None, None, ids, times, history=history)
    assert set(found.cohorts) == {c for c in cohorts.columns if c.startswith(("in_", "eligible_"))}
    for name, values in found.cohorts.items():
        np.testing.assert_array_equal(values, cohorts[name].to_numpy(), err_msg=name)
    segments = {SEGMENT_OF[p] for p in problems}
    assert set(found.members) == segments and set(found.features) == segments
    for segment in segments:
        wanted = [f"eligible_{p}" for p in problems if SEGMENT_OF[p] == segment]
        positions = np.flatnonzero(cohorts[wanted].to_numpy().any(axis=1))
        np.testing.assert_array_equal(found.members[segment], positions, err_msg=segment)
        frame = compute_features(None, None, ids[positions], times[positions], segment, history=history)
        columns = found.features[segment]
        assert list(columns) == feature_names(segment)
        for name, values in columns.items():
            expected = frame[name]
            if isinstance(expected.dtype, pd.CategoricalDtype):
                np.testing.assert_array_equal(np.asarray(values, dtype=np.int64), expected.cat.codes.to_numpy(dtype=np.int64),
                                              err_msg=name)
            else:
                np.testing.assert_array_equal(values, expected.to_numpy(dtype=np.float64), err_msg=name)


def test_feature_rows_and_model_input_equal_the_frame_path(scored, oracle):
    """Each problem's FeatureBlock is the compute_features frame, and the model input built from
    it is the matrix model.matrix builds from the frame."""
    _, frames = oracle
    for problem, (_, frame) in frames.items():
        rows = scored.problems[problem]
        names = list(rows.block.names)
        assert names == feature_names(SEGMENT_OF[problem])
        pd.testing.assert_frame_equal(rows.block.to_frame(), frame[names].reset_index(drop=True), check_categorical=True)
        model = rows.champion.model
        np.testing.assert_array_equal(rows.champion.input(rows.block), model.matrix(frame))
        for i in range(len(rows)):
            assert rows.values(i) == [plain_value(v) for v in frame.iloc[i][model.feature_names]]
            assert rows.band(i) == band_for(float(rows.probabilities[i]), rows.champion.bands)


def test_contributions_add_up_and_equal_the_frame_path(scored, oracle):
    """TreeSHAP rows equal model.contributions on the frame, and base value plus the features'
    contributions is the raw score (additivity); `which` picks rows of the full result."""
    _, frames = oracle
    for problem, (_, frame) in frames.items():
        rows = scored.problems[problem]
        model = rows.champion.model
        values = path.contributions(rows)
        assert values.shape == (len(rows), len(model.feature_names) + 1)
        np.testing.assert_array_equal(values, model.contributions(frame).to_numpy())
        np.testing.assert_allclose(values.sum(axis=1), model.raw_score(frame), rtol=0, atol=1e-9)
        which = np.arange(len(rows))[::-2]
        np.testing.assert_array_equal(path.contributions(rows, which), values[which])
        assert path.contributions(rows, []).shape == (0, len(model.feature_names) + 1)


def test_reasons_and_explanations_equal_the_frame_path(scored, oracle):
    """explain() is explanation() of the frame path's contributions and values; reasons(k) is
    its first k reasons, for every k."""
    _, frames = oracle
    for problem, (_, frame) in frames.items():
        rows = scored.problems[problem]
        model = rows.champion.model
        shap = path.contributions(rows)
        expected_shap = model.contributions(frame)
        raw = model.raw_score(frame)
        for i in range(len(rows)):
            long = path.explain(rows, i, shap[i])
            assert long == explanation(model.feature_names, expected_shap.iloc[i].to_numpy(), list(frame.iloc[i][model.feature_names]))
            assert long.raw_score == pytest.approx(float(raw[i]), abs=1e-9)
            for k in (0, 1, 3, 5, len(long.reasons) + 1):
                assert path.reasons(rows, i, shap[i], k) == long.reasons[:k], (problem, i, k)


def test_pairs_scored_for_nothing_say_why(pairs, scored, oracle):
    """rows_of names every problem a pair is scored for; a pair scored for none has a note that
    says whether it is in no cohort or in one without being eligible."""
    ids, _ = pairs
    cohorts, frames = oracle
    for position in range(len(ids)):
        expected = {p for p, (positions, _) in frames.items() if position in positions}
        found = scored.rows_of(position)
        assert set(found) == expected
        for problem, row in found.items():
            assert scored.problems[problem].positions[row] == position
        note = scored.note(position)
        inside = [s for s in sorted(set(SEGMENT_OF.values())) if cohorts[f"in_{s}"].iloc[position]]
        if expected:
            assert note is None
        elif inside:
            assert note.startswith(f"in the {', '.join(inside)} cohort but not eligible")
        else:
            assert note.startswith("in none of the scored cohorts")


def test_a_pair_scores_the_same_alone_in_any_batch(pairs, scored, champions):
    """Batch parity: every pair scored alone, or in a smaller batch in another order, gets the
    same probability as in the big batch."""
    ids, times = pairs
    history = store().history

    def by_pair(result: path.ScoredPairs) -> dict[tuple[str, int, np.datetime64], float]:
        return {(problem, int(result.subject_ids[p]), result.times[p]): float(probability)
                for problem, rows in result.problems.items() for p, probability in zip(rows.positions, rows.probabilities)}

    together = by_pair(scored)
    alone = {}
    for subject, time in zip(ids, times):
        alone.update(by_pair(path.score_pairs(history, [subject], [time], champions)))
    assert alone == together
    reordered = by_pair(path.score_pairs(history, ids[::-3], times[::-3], champions))
    assert reordered and all(together[key] == value for key, value in reordered.items())


def test_only_the_asked_problems_are_scored(pairs, scored, champions):
    ids, times = pairs
    chosen = {"elderly-homecare_failure": champions["elderly-homecare_failure"]}
    alone = path.score_pairs(store().history, ids, times, chosen)
    assert set(alone.problems) == {"elderly-homecare_failure"}
    full = scored.problems["elderly-homecare_failure"]
    np.testing.assert_array_equal(alone.problems["elderly-homecare_failure"].positions, full.positions)
    np.testing.assert_array_equal(alone.problems["elderly-homecare_failure"].probabilities, full.probabilities)
