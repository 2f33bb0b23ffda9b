"""Evaluation plots written as PNG files (matplotlib Agg; the backend is chosen per figure
through the object API, so importing this module changes no global state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from explain.shap_import import load_shap
from training.evaluate import calibration_curve


def _figure(size=(5.5, 4.5)) -> Figure:
    figure = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path)
    return path


def roc_plot(y, curves: dict[str, np.ndarray], path: Path, title: str) -> Path:
    figure = _figure()
    ax = figure.add_subplot()
    for name, p in curves.items():
        fpr, tpr, _ = roc_curve(np.asarray(y, int), p)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right", fontsize="small")
    return _save(figure, path)


def pr_plot(y, curves: dict[str, np.ndarray], path: Path, title: str) -> Path:
    figure = _figure()
    ax = figure.add_subplot()
    for name, p in curves.items():
        precision, recall, _ = precision_recall_curve(np.asarray(y, int), p)
        ax.plot(recall, precision, label=name)
    ax.axhline(float(np.mean(y)), linestyle=":", color="grey", label="outcome rate")
    ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title=title)
    ax.legend(loc="upper right", fontsize="small")
    return _save(figure, path)


def calibration_plot(y, curves: dict[str, np.ndarray], path: Path, title: str, bins: int = 10) -> Path:
    figure = _figure()
    ax = figure.add_subplot()
    top = 0.0
    for name, p in curves.items():
        table = calibration_curve(y, p, bins)
        ax.plot(table["mean_predicted"], table["observed"], marker="o", label=name)
        top = max(top, table["mean_predicted"].max(), table["observed"].max())
    ax.plot([0, top], [0, top], linestyle=":", color="grey", label="perfect")
    ax.set(xlabel="mean predicted risk", ylabel="observed rate", title=title)
    ax.legend(loc="upper left", fontsize="small")
    return _save(figure, path)


def shap_summary_plot(contributions: pd.DataFrame, features: pd.DataFrame, path: Path, max_display: int = 20) -> Path:
    """shap's beeswarm of RiskModel.contributions (bias column dropped) on a sample of rows.

    Categorical features are shown by category code so shap can colour them.
    """
    import matplotlib.pyplot as plt  # shap draws on pyplot's current figure
    shap = load_shap()

    values = contributions.drop(columns=[contributions.columns[-1]])
    shown = features.loc[:, values.columns].copy()
    for name in shown.columns:
        if isinstance(shown[name].dtype, pd.CategoricalDtype):
            shown[name] = shown[name].cat.codes.replace(-1, np.nan).astype(float)
    plt.switch_backend("Agg")  # headless and non-interactive, whatever the user's default
    plt.figure()
    try:
        shap.summary_plot(values.to_numpy(), shown, max_display=max_display, show=False)
        figure = plt.gcf()
        figure.set_size_inches(7, 0.35 * min(max_display, values.shape[1]) + 1.5)
        figure.tight_layout()
        figure.savefig(path, dpi=100)
    finally:
        plt.close("all")
    return path
