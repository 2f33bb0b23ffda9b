"""Features: cohorts (segments), index dates, labels, point-in-time features, feature catalogue.

Public API (import from here):
    compute_features(events, customers, subject_ids, times, segment, *, history=None, span=None)
    compute_cohorts(...), compute_labels(..., extract_end=...), feature_names(segment)
    scoring_rows(history, ids, times, problems)  cohorts of every pair and each problem's segment
                                             features for its eligible pairs, in one pass over
                                             each customer's timeline (what scoring reads)
    feature_columns(history, ids, times, segment), cohort_columns(history, ids, times)
                                             the same values as arrays (no frame)
    History.from_frames(events, customers)   the precomputed state for repeated calls
    pipeline_version(), catalogue(), segment_names()
Nothing is computed or read at import time.
"""

from features.catalogue import FeatureInfo, catalogue, feature_info
from features.history import History
from features.pipeline import (
    ScoringRows, cohort_columns, compute_cohorts, compute_features, compute_labels, feature_columns, feature_names, scoring_rows,
)
from features.spec import segment_names
from features.version import pipeline_version

__all__ = [
    "FeatureInfo",
    "History",
    "ScoringRows",
    "catalogue",
    "cohort_columns",
    "compute_cohorts",
    "compute_features",
    "compute_labels",
    "feature_columns",
    "feature_info",
    "feature_names",
    "pipeline_version",
    "scoring_rows",
    "segment_names",
]
