"""Model cards (markdown and HTML) with the TRIPOD+AI items that apply to a trained model.

`card_context` gathers plain data from the spec, metrics and subgroup table (pure);
`render_card` fills the jinja2 templates beside this module. Both formats come from the same
context, so they never disagree.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from training.subgroups import SMALL_SHOWN, published

TEMPLATES = Path(__file__).resolve().parent


def _fmt(value: Any, digits: int = 3, signed: bool = False) -> str:
    """A figure for the card; `signed` for gains (+0.031, -0.004); n/a when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return str(value)


def card_context(
    *,
    spec: dict[str, Any],
    metrics: dict[str, float],
    metadata: dict[str, Any],
    feature_names: list[str],
    subgroup_table: pd.DataFrame,
    periods: list[str],
    notes: list[str],
) -> dict[str, Any]:
    m = lambda key: _fmt(metrics.get(key))  # noqa: E731
    gain = lambda key: _fmt(metrics.get(key), signed=True)  # noqa: E731

    def interval(key: str, digits: int = 3) -> str:
        value, low, high = (_fmt(metrics.get(k), digits) for k in (key, f"{key}_ci_low", f"{key}_ci_high"))
        return f"{value} (95 % CI {low} to {high}, bootstrap by customer)"

    performance = [
        ("AUROC (rows)", interval("test_auroc")),
        ("AUPRC", m("test_auprc")),
        ("Brier score", m("test_brier")),
        ("Observed / expected outcomes (1 = right on average)", interval("test_observed_expected", 2)),
        ("Calibration slope (1 = predictions spread as far as the outcomes; below 1 = too extreme)",
         interval("test_calibration_slope", 2)),
        ("Expected calibration error (absolute: compare with the outcome rate)", interval("test_ece", 4)),
        ("AUROC per customer (highest risk before their first outcome)", interval("test_customer_auroc")),
        ("Best baseline AUROC", m("baseline_auroc")),
        ("Gain over the best baseline", f"{gain('gain_over_baseline')} (95 % CI {gain('gain_over_baseline_ci_low')} to "
                                        f"{gain('gain_over_baseline_ci_high')}, paired bootstrap by customer)"),
        ("Logistic baseline AUROC", m("baseline_logistic_auroc")),
        ("Clinical score AUROC", m("baseline_clinical_auroc")),
        ("Oracle AUROC (simulator's true risk)", m("oracle_auroc")),
        ("Outcome rate (test rows)", m("test_outcome_rate")),
    ]
    alerting = [
        ("Threshold (chosen on validation)", _fmt(metadata.get("threshold"), 4)),
        ("Alert rate (rows)", m("test_alert_rate")),
        ("Alerts per 1,000 customers per month", _fmt(metrics.get("test_alerts_per_1000_per_month"), 1)),
        ("PPV", m("test_ppv")),
        ("Sensitivity", m("test_sensitivity")),
        ("Customer-level PPV / sensitivity (alerts before the first outcome)",
         f"{m('test_customer_ppv')} / {m('test_customer_sensitivity')}"),
        ("Median days from a customer's first alert to their first outcome (alerts within the horizon before it)",
         _fmt(metrics.get("test_customer_lead_days"), 0)),
    ]
    groups = []
    for row in published(subgroup_table).itertuples():  # counts under 5 suppressed (training/subgroups.py)
        flags = [n for n, f in (("AUROC", row.flag_auroc), ("calibration", row.flag_calibration), ("alert rate", row.flag_alert_rate)) if f]
        groups.append({
            "attribute": row.attribute, "value": row.value, "rows": _fmt(row.rows), "events": _fmt(row.events),
            "auroc": _fmt(row.auroc), "o_e": _fmt(row.o_e, 2), "alert_rate": _fmt(row.alert_rate),
            "flags": ", ".join(flags) if flags else ("" if row.judged else "too small to judge")
                     + ("; fewer than 5 customers: not shown" if row.customers == SMALL_SHOWN else ""),
        })
    return {
        "problem": spec["problem"],
        "description": spec.get("description", ""),
        "intended_use": spec.get("intended_use", ""),
        "segment": spec["segment"],
        "outcome": spec["outcome"],
        "horizon_days": spec["horizon_days"],
        "periods": periods,
        "pipeline_version": metadata.get("pipeline_version", "n/a"),
        "data_fingerprint": metadata.get("data_fingerprint", "n/a"),
        "calibration_method": metadata.get("calibration_method", "n/a"),
        "params": metadata.get("params", {}),
        "feature_families": spec.get("feature_families", []),
        "extra_features": spec.get("extra_features", []),
        "feature_names": feature_names,
        "monotone": spec.get("monotone_increasing", []),
        "alert_policy": spec.get("alert_policy", {}),
        "gates": spec.get("gates", {}),
        "promotion_gates": promotion_gates(spec.get("gates", {})),
        "rows": {k: int(metrics.get(f"{k}_rows", 0)) for k in ("train", "validation", "test")},
        "events": {k: int(metrics.get(f"{k}_events", 0)) for k in ("train", "validation", "test")},
        "performance": performance,
        "alerting": alerting,
        "subgroups": groups,
        "notes": notes,
    }


def promotion_gates(gates: dict[str, Any]) -> list[str]:
    """The promotion gates of the spec in words (none for a spec without them)."""
    lines = []
    if "max_oe_ratio" in gates:
        ratio = float(gates["max_oe_ratio"])
        lines.append(f"the 95 % interval of observed / expected within {1 / ratio:.2f} to {ratio:.2f}")
    if "min_calibration_slope" in gates and "max_calibration_slope" in gates:
        lines.append(f"the 95 % interval of the calibration slope within {float(gates['min_calibration_slope']):.2f} "
                     f"to {float(gates['max_calibration_slope']):.2f}")
    if "min_auroc_over_baseline" in gates:
        lines.append(f"the lower end of the gain interval over the best baseline above {float(gates['min_auroc_over_baseline']):g}")
    return lines


def render_card(context: dict[str, Any]) -> tuple[str, str]:
    """(markdown, html) from the two templates."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("model_card.md.j2").render(**context), env.get_template("model_card.html.j2").render(**context)
