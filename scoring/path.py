"""The one scoring path: (customer, time) pairs -> cohorts -> feature block -> model input ->
calibrated probability -> SHAP contributions -> reasons.

Every entry point scores through here: /score, /score_batch, /score_history, /explain, the
clinician pages and their trends, model cards, and the population run (`sote-risk run`). Batch or
one customer, the work is the same, in numpy from end to end:

1. `score_pairs`: one pass over each customer's timeline (features.scoring_rows) gives every
   pair's cohorts and, per segment, the feature rows of the pairs eligible for a served problem;
   each problem's rows go through the one model-input builder (models/inputs.py) and one
   predict call.
2. `contributions`: exact TreeSHAP (LightGBM's pred_contrib) for the rows whose reasons someone
   reads (SHAP costs ~100 times a prediction; the population run explains only its alerts).
3. `reasons` / `explanation`: plain-language reasons from the contributions and the customer's
   own feature values (explain/reasons.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from explain.reasons import Explanation, Reason, context, explanation, top_reasons
from features import scoring_rows
from features.catalogue import feature_info
from features.history import History
from models.inputs import FeatureBlock
from scoring.bands import Band, band_for
from scoring.champions import Champion


@dataclass(frozen=True, eq=False)
class ProblemRows:
    """One problem's scored rows: the pairs eligible for it, their features and probabilities."""

    champion: Champion
    positions: np.ndarray  # into the scored pairs, ascending
    block: FeatureBlock  # the segment's feature rows of those pairs
    probabilities: np.ndarray

    def __len__(self) -> int:
        return len(self.positions)

    def band(self, row: int) -> Band:
        return band_for(float(self.probabilities[row]), self.champion.bands)

    def values(self, row: int) -> list[Any]:
        """The row's value of each of the model's features, as explanations show them."""
        return self.block.plain_values(row, self.champion.model.feature_names)


@dataclass(frozen=True, eq=False)
class ScoredPairs:
    """Every served problem's rows for some (customer, time) pairs, and why a pair has none."""

    subject_ids: np.ndarray  # int64
    times: np.ndarray  # datetime64[us]
    cohorts: Mapping[str, np.ndarray]  # in_<segment>, eligible_<problem>: one value per pair
    problems: Mapping[str, ProblemRows]

    def rows_of(self, position: int) -> dict[str, int]:
        """problem -> row in that problem's rows, for every problem the pair is scored for."""
        found = {}
        for problem, rows in self.problems.items():
            row = int(np.searchsorted(rows.positions, position))
            if row < len(rows.positions) and rows.positions[row] == position:
                found[problem] = row
        return found

    def note(self, position: int) -> str | None:
        """Why a pair is scored for none of the served problems (None when it is scored)."""
        if self.rows_of(position):
            return None
        segments = sorted({rows.champion.segment for rows in self.problems.values()})
        inside = [s for s in segments if bool(self.cohorts[f"in_{s}"][position])]
        if inside:
            return (f"in the {', '.join(inside)} cohort but not eligible for its outcomes at this time "
                    "(e.g. in hospital, or already in 24-hour care)")
        return f"in none of the scored cohorts ({', '.join(segments)}) at this time"


def score_pairs(history: History, subject_ids: Sequence[int] | np.ndarray, times: Sequence | np.ndarray,
                champions: Mapping[str, Champion], *, workers: int = 1) -> ScoredPairs:
    """Probabilities of every served problem for the pairs eligible for it (no SHAP yet)."""
    ids = np.asarray(subject_ids, dtype=np.int64).reshape(-1)
    when = np.asarray(times, dtype="datetime64[us]").reshape(-1)
    found = scoring_rows(history, ids, when, list(champions), workers=workers)
    blocks: dict[str, FeatureBlock] = {}
    problems = {}
    for problem, champion in champions.items():
        members = found.members[champion.segment]
        inside = np.flatnonzero(found.cohorts[f"eligible_{problem}"][members])
        if champion.segment not in blocks:
            columns = found.features[champion.segment]
            blocks[champion.segment] = _block(columns) if len(members) else _empty_block(tuple(columns))
        block = blocks[champion.segment]
        block = block if len(inside) == len(members) else block.take(inside)
        probabilities = champion.model.predict_proba_matrix(champion.input(block)) if len(block) else np.zeros(0)
        problems[problem] = ProblemRows(champion, members[inside], block, np.asarray(probabilities, dtype=np.float64))
    return ScoredPairs(ids, when, found.cohorts, problems)


def contributions(rows: ProblemRows, which: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """TreeSHAP rows (the model's features, then the bias) of some of the problem's rows (all by
    default), in one pred_contrib call."""
    block = rows.block if which is None else rows.block.take(which)
    if not len(block):
        return np.zeros((0, len(rows.champion.model.feature_names) + 1))
    return rows.champion.model.contributions_matrix(rows.champion.input(block))


def reasons(rows: ProblemRows, row: int, contribution_row: np.ndarray, k: int) -> list[Reason]:
    """The k family reasons with the largest effect for one row (explain/reasons.top_reasons)."""
    return top_reasons(rows.champion.model.feature_names, contribution_row, rows.values(row), k)


def background(rows: ProblemRows, row: int, contribution_row: np.ndarray) -> list[Reason]:
    """The background families of one row, shown as context beside the reasons (explain/reasons.context)."""
    return context(rows.champion.model.feature_names, contribution_row, rows.values(row))


def explain(rows: ProblemRows, row: int, contribution_row: np.ndarray) -> Explanation:
    """Every feature's contribution and every family reason for one row."""
    return explanation(rows.champion.model.feature_names, contribution_row, rows.values(row))


def _block(columns: Mapping[str, np.ndarray]) -> FeatureBlock:
    names = list(columns)
    return FeatureBlock.from_columns(names, columns, _categories_of(tuple(names)))


def _empty_block(names: tuple[str, ...]) -> FeatureBlock:
    """A segment's block of no rows (most segments, for one customer)."""
    found = _EMPTY.get(names)
    if found is None:
        found = _EMPTY[names] = FeatureBlock(names, np.zeros((0, len(names))), _categories_of(names))
    return found


_EMPTY: dict[tuple[str, ...], FeatureBlock] = {}
_CATEGORIES: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {}


def _categories_of(names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The catalogue's fixed category list of every categorical feature among names."""
    found = _CATEGORIES.get(names)
    if found is None:
        found = _CATEGORIES[names] = {
            name: tuple(info.categories or ()) for name in names if (info := feature_info(name)).kind == "categorical"
        }
    return found
