"""Scoring: the one path from a customer history to explained risks (cohorts, feature block,
model input, calibrated probability, SHAP contributions, reasons), the history store and the
champion models. Knows nothing of HTTP or alerts."""
