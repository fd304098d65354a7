"""Figures for runs and comparisons. Each function takes numbers and returns a Figure.

Nothing here computes metrics or talks to MLflow: callers pass what they measured, and log
or show the figure themselves. The Agg backend is chosen only when no display is configured,
and only when a figure is first made (never at import).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from recexp.columns import Columns

__all__ = ["activity_histogram", "calibration", "close", "learning_curves", "long_tail",
           "metric_bars", "popularity_tail", "split_by_user", "split_timeline"]

# One colour per split part, the same in every split figure.
_PART_COLOURS = {"train": "#4C72B0", "valid": "#DD8452", "test": "#C44E52"}
_OTHER_COLOURS = ["#55A868", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


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


def _split_parts(split, where: str) -> list[tuple[str, object]]:
    """The (name, Dataset) parts of a Split in train, valid, test order, each checked to
    have interactions and timestamps."""
    parts = [("train", split.train), ("valid", split.valid), ("test", split.test)]
    parts = [(name, part) for name, part in parts if part is not None]
    for name, part in parts:
        if part.n_interactions == 0:
            raise ValueError(f"{where}: split part {name!r} has no interactions")
        if part.timestamp is None:
            raise ValueError(f"{where}: split part {name!r} has no timestamps (build the "
                             f"Dataset from a table with a {Columns.Datetime!r} column)")
    return parts


def _timestamps(values, where: str) -> np.ndarray:
    """``values`` as a datetime64[ns] array, refusing missing or unparseable times."""
    if values is None:
        raise ValueError(f"{where}: no timestamps given")
    try:
        stamps = pd.to_datetime(pd.Series(np.asarray(values)), errors="raise")
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: timestamps are not times: {error}") from None
    missing = np.flatnonzero(stamps.isna().to_numpy())
    if missing.size:
        raise ValueError(f"{where}: {missing.size} timestamps are missing (first at position "
                         f"{missing[0]})")
    return stamps.to_numpy(dtype="datetime64[ns]")


def _part_colours(names) -> dict[str, str]:
    others = iter(_OTHER_COLOURS * (1 + len(names) // len(_OTHER_COLOURS)))
    return {name: _PART_COLOURS.get(name) or next(others) for name in names}


def split_timeline(split=None, *, timestamps=None, parts=None, freq: str = "W",
                   title: str | None = None):
    """How a split divides interactions over time: stacked bars of counts per period.

    One bar segment per part (train, then valid, then test) in each period. Where a part
    begins after every earlier part has ended (a temporal cut), a dashed line marks where it
    starts; random and per-user splits have no such boundary and get no line.

    Parameters
    ----------
    split : recexp.split.Split, optional
        Its ``train``, ``valid`` (if any) and ``test`` Datasets, each with timestamps.
    timestamps : array-like of datetime64 of shape [n_interactions], optional
        Instead of ``split``: when each interaction happened.
    parts : array-like of str of shape [n_interactions], optional
        With ``timestamps``: the part each interaction went to (``"train"``, ``"valid"``,
        ``"test"``, or any other labels, drawn in order of first appearance after those).
    freq : str
        A pandas period alias for the bar width: ``"D"`` (day), ``"W"`` (week), ``"M"``.
    title : str, optional
        Default: ``"Interactions per <freq>, by part"`` (with the split's name, if any).

    Raises
    ------
    ValueError
        If both or neither of ``split`` and ``timestamps`` are given, a part has no
        interactions or no timestamps, timestamps are missing, or the lengths differ.
    """
    where = "split_timeline"
    if (split is None) == (timestamps is None):
        raise ValueError(f"{where}: pass either a split or timestamps (with parts), not "
                         f"{'both' if split is not None else 'neither'}")
    if split is not None:
        if parts is not None:
            raise ValueError(f"{where}: parts go with timestamps; a split has its own parts")
        chunks = _split_parts(split, where)
        stamps = _timestamps(np.concatenate([p.timestamp for _, p in chunks]), where)
        labels = np.repeat([name for name, _ in chunks], [p.n_interactions for _, p in chunks])
        name = getattr(split, "name", "")
    else:
        stamps = _timestamps(timestamps, where)
        if parts is None:
            raise ValueError(f"{where}: timestamps need parts (one label per interaction)")
        labels = np.asarray(parts).astype(str)
        if labels.shape != stamps.shape:
            raise ValueError(f"{where}: {len(stamps)} timestamps but {len(labels)} part labels")
        if len(stamps) == 0:
            raise ValueError(f"{where}: no interactions to draw")
        name = ""
    try:
        periods = pd.Series(stamps).dt.to_period(freq)
    except ValueError as error:
        raise ValueError(f"{where}: freq {freq!r} is not a pandas period alias "
                         f"('D', 'W', 'M'): {error}") from None
    order = [p for p in _PART_COLOURS if p in set(labels)]
    order += [p for p in pd.unique(labels) if p not in _PART_COLOURS]
    counts = (pd.crosstab(periods.to_numpy(), labels)
              .reindex(index=pd.period_range(periods.min(), periods.max(), freq=periods.dt.freq),
                       columns=order, fill_value=0))
    start = counts.index.start_time
    width = counts.index.end_time - start + pd.Timedelta(1, "ns")

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.4))
    colours = _part_colours(order)
    bottom = np.zeros(len(counts))
    for part in order:
        values = counts[part].to_numpy()
        ax.bar(start, values, width=width, bottom=bottom, align="edge", color=colours[part],
               label=f"{part} ({values.sum():,})", linewidth=0)
        bottom += values
    ended, cuts = None, 0
    for part in order:
        times = stamps[labels == part]
        if ended is not None and times.min() >= ended:
            ax.axvline(times.min(), color="#333333", ls="--", lw=1)
            ax.annotate(f"{part} from {pd.Timestamp(times.min()):%Y-%m-%d}",
                        (times.min(), 1), xycoords=("data", "axes fraction"),
                        xytext=(3, -3 - 12 * cuts), textcoords="offset points", va="top",
                        fontsize="small")
            cuts += 1
        ended = times.max() if ended is None else max(ended, times.max())
    unit = {"D": "day", "W": "week", "M": "month", "Y": "year"}.get(freq, freq)
    ax.set_ylabel(f"interactions per {unit}")
    ax.set_title(title or (f"{name}: " if name else "") + f"interactions per {unit}, by part")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def split_by_user(splits, *, n_users: int = 40, ncols: int = 3, users=None):
    """Who went where: one panel per split, users (rows) against time, one dot per interaction
    coloured by the part it went to.

    Parameters
    ----------
    splits : mapping of str -> recexp.split.Split, or one Split
        The splits to compare, each with timestamps; the panel titles are the keys (or the
        split's ``name``).
    n_users : int
        How many users to show: those with the longest time between their first and last
        interaction, over all parts of all splits.
    ncols : int
        Panels per row.
    users : array-like of external user ids, optional
        Show exactly these users (top row first) instead of the longest-active ones.

    Raises
    ------
    ValueError
        If there are no splits, a part has no interactions or no timestamps, ``n_users`` or
        ``ncols`` is below 1, or none of ``users`` occurs in the splits.
    """
    where = "split_by_user"
    if not isinstance(splits, Mapping):
        splits = {getattr(splits, "name", "") or "split": splits}
    if not splits:
        raise ValueError(f"{where}: no splits to draw")
    if n_users < 1 or ncols < 1:
        raise ValueError(f"{where}: n_users and ncols must be at least 1, got {n_users} "
                         f"and {ncols}")
    frames = {}
    for label, split in splits.items():
        chunks = _split_parts(split, f"{where} ({label!r})")
        frames[label] = pd.DataFrame({
            "user": np.concatenate([p.users.to_external(p.user_idx) for _, p in chunks]),
            "time": np.concatenate([p.timestamp for _, p in chunks]),
            "part": np.repeat([n for n, _ in chunks], [p.n_interactions for _, p in chunks])})
    everything = pd.concat(frames.values(), ignore_index=True)
    if users is None:
        span = everything.groupby("user")["time"].agg(["min", "max"])
        shown = (span["max"] - span["min"]).nlargest(n_users).index
    else:
        shown = pd.Index(pd.unique(np.asarray(users)))
        if not shown.isin(everything["user"]).any():
            raise ValueError(f"{where}: none of the {len(shown)} users given occurs in the splits")
    row = pd.Series(np.arange(len(shown))[::-1], index=shown)

    plt = _pyplot()
    nrows = -(-len(frames) // ncols)
    ncols = min(ncols, len(frames))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.75 * nrows), sharex=True,
                             sharey=True, squeeze=False)
    colours = _part_colours(pd.unique(everything["part"]))
    for ax, (label, frame) in zip(axes.flat, frames.items(), strict=False):
        frame = frame[frame["user"].isin(shown)]
        for part, group in frame.groupby("part", sort=False):
            ax.scatter(group["time"], group["user"].map(row), s=5, c=colours[part], label=part,
                       alpha=0.8)
        ax.set_title(label)
        ax.tick_params(axis="x", labelrotation=30)
    for ax in axes.flat[len(frames):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"user ({len(shown)} shown)")
    axes[0, 0].set_yticks([])
    handles = {}  # every part in one legend, also when the first panel lacks one
    for ax in axes.flat:
        handles.update(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    axes[0, 0].legend(handles.values(), handles.keys(), loc="lower left", fontsize="small")
    fig.tight_layout()
    return fig


def activity_histogram(counts, *, xlabel: str = "interactions per user",
                       ylabel: str = "users", title: str = "Activity", bins: int = 30):
    """Histogram of interactions per user (or per item) on log-spaced bins.

    Parameters
    ----------
    counts : array-like of int of shape [n_users]
        Interactions per user (e.g. ``ratings.groupby("user_id").size()``); each at least 1.
    xlabel, ylabel, title : str
        Axis labels and title (the x axis is logarithmic).
    bins : int
        Number of log-spaced bins from the smallest count to the largest.

    Raises
    ------
    ValueError
        If ``counts`` is empty, or holds a count below 1 or a missing value.
    """
    where = "activity_histogram"
    values = np.asarray(counts, dtype=float).ravel()
    if values.size == 0:
        raise ValueError(f"{where}: no counts to draw")
    bad = np.flatnonzero(~(values >= 1))
    if bad.size:
        raise ValueError(f"{where}: counts must be at least 1 (log scale); position {bad[0]} "
                         f"holds {values[bad[0]]}")
    if bins < 1:
        raise ValueError(f"{where}: bins must be at least 1, got {bins}")
    low, high = values.min(), values.max()
    if high == low:
        low, high = low / 1.5, high * 1.5
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(values, bins=np.logspace(np.log10(low), np.log10(high), bins + 1))
    ax.set(xscale="log", xlabel=f"{xlabel} (log)", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def long_tail(counts, *, head_share: float = 0.2, unit: str = "ratings",
              what: str = "item"):
    """The long tail: interactions per item by popularity rank, and their cumulative share.

    Parameters
    ----------
    counts : array-like of int of shape [n_items]
        Interactions per item, in any order (e.g. ``ratings.groupby("item_id").size()``).
    head_share : float
        Fraction of the most popular items called the "head", marked on both panels
        (in (0, 1)).
    unit, what : str
        What is counted (plural) and per what (singular), for the labels.

    Raises
    ------
    ValueError
        If ``counts`` is empty, negative, missing or all zero, or ``head_share`` is
        outside (0, 1).
    """
    where = "long_tail"
    values = np.asarray(counts, dtype=float).ravel()
    if values.size == 0:
        raise ValueError(f"{where}: no counts to draw")
    bad = np.flatnonzero(~(values >= 0))
    if bad.size:
        raise ValueError(f"{where}: counts must be non-negative; position {bad[0]} holds "
                         f"{values[bad[0]]}")
    if values.sum() == 0:
        raise ValueError(f"{where}: every count is zero")
    if not 0 < head_share < 1:
        raise ValueError(f"{where}: head_share must be in (0, 1), got {head_share}")
    values = np.sort(values)[::-1]
    share = np.cumsum(values) / values.sum()
    rank = np.arange(1, len(values) + 1)
    head = max(1, int(head_share * len(values)))
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.4))
    ax1.plot(rank, values)
    ax1.set(yscale="log", xlabel=f"{what} rank by popularity", ylabel=f"{unit} (log)",
            title=f"{unit.capitalize()} per {what}")
    ax2.plot(rank / len(values), share)
    ax2.set(xlabel=f"share of {what}s (most popular first)", ylabel=f"share of {unit}",
            title="Cumulative share")
    ax1.axvline(head, color="grey", ls="--", lw=0.8)
    ax2.axvline(head / len(values), color="grey", ls="--", lw=0.8)
    ax2.annotate(f"top {head_share:.0%}: {share[head - 1]:.0%} of {unit}",
                 (head / len(values), share[head - 1]), xytext=(6, -12),
                 textcoords="offset points", fontsize="small")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
