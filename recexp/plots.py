"""Figures for runs and comparisons. Each function takes numbers and returns a Figure.

Nothing here computes metrics or talks to MLflow: callers pass what they measured, and log
or show the figure themselves. The Agg backend is chosen only when no display is configured,
and only when a figure is first made (never at import).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["calibration", "close", "learning_curves", "metric_bars", "popularity_tail"]


def _pyplot():
    import os

    import matplotlib

    if not os.environ.get("DISPLAY") and "ipykernel" not in matplotlib.get_backend().lower() \
            and "inline" not in matplotlib.get_backend().lower():
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def close(fig) -> None:
    """Free a figure once it is logged or saved (pyplot keeps every open figure)."""
    _pyplot().close(fig)


def learning_curves(curves: Mapping[str, pd.DataFrame], *, metrics: Sequence[str] | None = None,
                    title: str = "Validation metrics per epoch"):
    """One panel per metric, one line per run.

    Parameters
    ----------
    curves : mapping of label -> DataFrame
        Each frame has an ``epoch`` column (1-based) and one column per metric.
    metrics : sequence of str, optional
        Which columns to draw (default: every non-epoch column of the first frame).
    """
    plt = _pyplot()
    if not curves:
        raise ValueError("learning_curves: no curves to draw")
    first = next(iter(curves.values()))
    metrics = list(metrics or [c for c in first.columns if c != "epoch"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for label, frame in curves.items():
            if metric in frame:
                ax.plot(frame["epoch"], frame[metric], marker="o", markersize=2.5, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def metric_bars(table: pd.DataFrame, *, metric: str, title: str | None = None):
    """Horizontal bars of one metric per model, with interval whiskers.

    Parameters
    ----------
    table : DataFrame
        Columns ``model``, ``mean`` and optionally ``low``/``high`` (interval bounds).
    """
    plt = _pyplot()
    table = table.sort_values("mean")
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(table) + 1.4))
    y = np.arange(len(table))
    xerr = None
    if {"low", "high"} <= set(table.columns):
        xerr = np.vstack([table["mean"] - table["low"], table["high"] - table["mean"]])
        xerr = np.clip(np.nan_to_num(xerr), 0, None)
    ax.barh(y, table["mean"], xerr=xerr, color="#4C72B0", ecolor="#333333", capsize=3)
    ax.set_yticks(y, table["model"])
    ax.set_xlabel(metric)
    right = table["high"].fillna(table["mean"]) if "high" in table else table["mean"]
    pad = 0.01 * float(np.nanmax(right.to_numpy())) if len(table) else 0.0
    for yi, value, end in zip(y, table["mean"], right, strict=True):
        ax.text(max(value, end) + pad, yi, f"{value:.4f}", va="center", fontsize="small")
    ax.set_xlim(0, float(np.nanmax(right.to_numpy())) * 1.18 if len(table) else 1)
    ax.set_title(title or f"{metric} (whiskers: 95% interval)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def popularity_tail(item_popularity: np.ndarray, recommended: Mapping[str, np.ndarray], *,
                    head_share: float = 0.2):
    """The catalogue's long tail, and where each model's recommendations fall on it.

    Parameters
    ----------
    item_popularity : np.ndarray of shape [n_items]
        Training interactions per item.
    recommended : mapping of label -> np.int array
        Internal item indices of all recommended items (every user's list, concatenated).
    head_share : float
        Fraction of the most popular items called the "head".
    """
    plt = _pyplot()
    order = np.argsort(-item_popularity, kind="stable")
    rank_of = np.empty_like(order)
    rank_of[order] = np.arange(len(order))
    n_items = len(order)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    ax1.plot(np.arange(1, n_items + 1), item_popularity[order], color="#333333", lw=1)
    ax1.axvline(head_share * n_items, color="grey", ls="--", lw=0.8)
    ax1.set_xlabel("item rank by training popularity")
    ax1.set_ylabel("training interactions")
    ax1.set_title("Catalogue long tail")
    ax1.set_yscale("log")
    bins = np.linspace(0, n_items, 21)
    for label, items in recommended.items():
        ranks = rank_of[np.asarray(items)[np.asarray(items) >= 0]]
        hist, _ = np.histogram(ranks, bins=bins)
        share = hist / max(hist.sum(), 1)
        ax2.step(bins[1:] / n_items, share, where="pre", label=label)
    ax2.set_xlabel("popularity percentile of recommended item (0 = most popular)")
    ax2.set_ylabel("share of recommendations")
    ax2.set_title("Where recommendations fall")
    ax2.legend(fontsize="small")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def calibration(tables: Mapping[str, pd.DataFrame], *, title: str = "Calibration"):
    """Reliability diagram: observed click rate against mean prediction, per bucket.

    Parameters
    ----------
    tables : mapping of label -> DataFrame
        The output of :func:`recexp.metrics.calibration` per model (``rows``,
        ``mean_prediction``, ``observed_ctr``). A perfectly calibrated model lies on the
        diagonal; the right panel shows how many impressions each bucket holds.
    """
    plt = _pyplot()
    if not tables:
        raise ValueError("calibration: no tables to draw")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    top = max(float(max(t["mean_prediction"].max(), t["observed_ctr"].max()))
              for t in tables.values())
    top = min(1.0, top * 1.1) if top > 0 else 1.0
    ax1.plot([0, top], [0, top], color="grey", ls="--", lw=0.8, label="perfect")
    for label, t in tables.items():
        ax1.plot(t["mean_prediction"], t["observed_ctr"], marker="o", markersize=4,
                 label=label)
        ax2.plot(t["mean_prediction"], t["rows"], marker="o", markersize=4, label=label)
    ax1.set_xlabel("mean predicted click probability (bucket)")
    ax1.set_ylabel("observed click rate")
    ax1.set_xlim(0, top)
    ax1.set_ylim(0, top)
    ax1.legend(fontsize="small")
    ax2.set_xlabel("mean predicted click probability (bucket)")
    ax2.set_ylabel("impressions in bucket")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
