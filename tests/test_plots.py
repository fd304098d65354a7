"""Figures in recexp.plots: the split and data figures the tutorials draw, on small splits
whose counts are known by construction."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer

from recexp import plots
from recexp.columns import Columns
from recexp.dataset import Dataset
from recexp.split import Split

START = pd.Timestamp("2024-01-01")  # a Monday: weeks are Jan 1-7, 8-14, ...


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _frame(with_time: bool = True) -> pd.DataFrame:
    """Six users, five items, one interaction per (user, item) pair, one a day for 30 days."""
    users, items = np.divmod(np.arange(30), 5)
    frame = pd.DataFrame({Columns.User: users.astype(str), Columns.Item: items.astype(str)})
    if with_time:
        frame[Columns.Datetime] = START + pd.to_timedelta(np.arange(30), unit="D")
    return frame


@pytest.fixture
def temporal() -> Split:
    """Days 0-19 train, 20-24 valid, 25-29 test: a clean cut in time twice."""
    ds = Dataset.from_frames(_frame())
    day = np.arange(30)
    return Split(ds.subset(day < 20), ds.subset(day >= 25), valid=ds.subset((day >= 20)
                                                                              & (day < 25)),
                 name="temporal")


@pytest.fixture
def interleaved() -> Split:
    """Every fifth day is test: no boundary in time."""
    ds = Dataset.from_frames(_frame())
    test = np.arange(30) % 5 == 4
    return Split(ds.subset(~test), ds.subset(test), name="interleaved")


def _bars(fig) -> dict[str, BarContainer]:
    (ax,) = fig.axes
    return {bars.get_label().split(" (")[0]: bars for bars in ax.containers
            if isinstance(bars, BarContainer)}


def _dashed(ax) -> list:
    return [line for line in ax.get_lines() if line.get_linestyle() == "--"]


def test_all_new_figures_are_public():
    assert {"split_timeline", "split_by_user", "activity_histogram", "long_tail"} \
        <= set(plots.__all__)


# ------------------------------------------------------------------------- split_timeline
def test_split_timeline_stacks_parts_per_week_and_marks_the_cuts(temporal):
    fig = plots.split_timeline(temporal, freq="W")
    bars = _bars(fig)
    assert list(bars) == ["train", "valid", "test"]
    # 30 days from a Monday: weeks of 7, 7, 7, 7 and 2 days.
    heights = {part: [p.get_height() for p in b.patches] for part, b in bars.items()}
    assert heights["train"] == [7, 7, 6, 0, 0]
    assert heights["valid"] == [0, 0, 1, 4, 0]
    assert heights["test"] == [0, 0, 0, 3, 2]
    bottoms = [p.get_y() for p in bars["test"].patches]
    assert bottoms == [7, 7, 7, 4, 0]  # stacked on train + valid
    assert [b.get_label() for b in bars.values()] == ["train (20)", "valid (5)", "test (5)"]
    (ax,) = fig.axes
    cuts = sorted(pd.Timestamp(line.get_xdata()[0]) for line in _dashed(ax))
    assert cuts == [START + pd.Timedelta(days=20), START + pd.Timedelta(days=25)]
    assert "temporal" in ax.get_title() and "week" in ax.get_title()


def test_split_timeline_draws_no_cut_when_parts_interleave(interleaved):
    fig = plots.split_timeline(interleaved, freq="D")
    bars = _bars(fig)
    assert list(bars) == ["train", "test"]
    assert len(bars["train"].patches) == 30
    assert sum(p.get_height() for p in bars["test"].patches) == 6
    assert _dashed(fig.axes[0]) == []


def test_split_timeline_from_arrays_matches_the_split(temporal):
    stamps = np.concatenate([temporal.train.timestamp, temporal.valid.timestamp,
                             temporal.test.timestamp])
    labels = ["train"] * 20 + ["valid"] * 5 + ["test"] * 5
    order = np.random.default_rng(0).permutation(30)  # order of the input does not matter
    from_arrays = _bars(plots.split_timeline(timestamps=pd.Series(stamps[order]),
                                             parts=np.asarray(labels)[order]))
    from_split = _bars(plots.split_timeline(temporal))
    assert list(from_arrays) == list(from_split)
    for part in from_split:
        assert [p.get_height() for p in from_arrays[part].patches] == \
            [p.get_height() for p in from_split[part].patches]


def test_split_timeline_refuses_bad_input(temporal):
    ds = Dataset.from_frames(_frame(with_time=False))
    rows = np.arange(30)
    untimed = Split(ds.subset(rows < 20), ds.subset(rows >= 20))
    with pytest.raises(ValueError, match="'train' has no timestamps"):
        plots.split_timeline(untimed)
    timed = Dataset.from_frames(_frame())
    empty_test = Split(timed.subset(rows < 30), timed.subset(rows > 30))
    with pytest.raises(ValueError, match="'test' has no interactions"):
        plots.split_timeline(empty_test)
    with pytest.raises(ValueError, match="neither"):
        plots.split_timeline()
    with pytest.raises(ValueError, match="both"):
        plots.split_timeline(temporal, timestamps=temporal.test.timestamp)
    with pytest.raises(ValueError, match="need parts"):
        plots.split_timeline(timestamps=temporal.test.timestamp)
    with pytest.raises(ValueError, match="5 timestamps but 4 part labels"):
        plots.split_timeline(timestamps=temporal.test.timestamp, parts=["test"] * 4)
    with pytest.raises(ValueError, match="no interactions"):
        plots.split_timeline(timestamps=np.array([], dtype="datetime64[s]"), parts=[])
    with pytest.raises(ValueError, match="1 timestamps are missing .*position 1"):
        plots.split_timeline(timestamps=[START, pd.NaT], parts=["train", "test"])
    with pytest.raises(ValueError, match="not a pandas period alias"):
        plots.split_timeline(temporal, freq="fortnight")
    assert plt.get_fignums() == []  # nothing half-drawn is left open


# -------------------------------------------------------------------------- split_by_user
def test_split_by_user_one_panel_per_split_one_row_per_user(temporal, interleaved):
    fig = plots.split_by_user({"temporal": temporal, "interleaved": interleaved}, n_users=6,
                              ncols=3)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["temporal", "interleaved"]
    first = visible[0]
    assert [c.get_label() for c in first.collections] == ["train", "valid", "test"]
    rows = np.concatenate([c.get_offsets()[:, 1] for c in first.collections])
    assert len(rows) == 30 and sorted(set(rows)) == [0, 1, 2, 3, 4, 5]
    # Every user spans 4 days: ties keep the first users, whose days all went to train.
    fewer = plots.split_by_user({"temporal": temporal, "interleaved": interleaved}, n_users=4)
    first = fewer.axes[0]
    assert [c.get_label() for c in first.collections] == ["train"]
    assert sorted(set(first.collections[0].get_offsets()[:, 1])) == [0, 1, 2, 3]
    legend = [t.get_text() for t in first.get_legend().get_texts()]
    assert legend == ["train", "test"]  # from the other panel too
    explicit = plots.split_by_user(interleaved, users=["5"])
    (ax,) = [a for a in explicit.axes if a.get_visible()]
    offsets = np.concatenate([c.get_offsets() for c in ax.collections])
    assert len(offsets) == 5 and set(offsets[:, 1]) == {0}


def test_split_by_user_refuses_bad_input(temporal):
    with pytest.raises(ValueError, match="no splits"):
        plots.split_by_user({})
    with pytest.raises(ValueError, match="at least 1"):
        plots.split_by_user(temporal, n_users=0)
    with pytest.raises(ValueError, match="none of the 1 users"):
        plots.split_by_user(temporal, users=["nobody"])
    ds = Dataset.from_frames(_frame(with_time=False))
    rows = np.arange(30)
    with pytest.raises(ValueError, match=r"\('untimed'\): split part 'train' has no timestamps"):
        plots.split_by_user({"untimed": Split(ds.subset(rows < 20), ds.subset(rows >= 20))})


# ----------------------------------------------------------- activity_histogram, long_tail
def test_activity_histogram_counts_every_user_once():
    counts = pd.Series([1, 2, 2, 5, 10, 100, 100])
    fig = plots.activity_histogram(counts, bins=6, xlabel="ratings per user")
    (ax,) = fig.axes
    assert len(ax.patches) == 6
    assert sum(p.get_height() for p in ax.patches) == len(counts)
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "ratings per user (log)"
    single = plots.activity_histogram([3, 3, 3], bins=2)
    assert sum(p.get_height() for p in single.axes[0].patches) == 3


def test_activity_histogram_refuses_bad_input():
    with pytest.raises(ValueError, match="no counts"):
        plots.activity_histogram([])
    with pytest.raises(ValueError, match="position 1 holds 0"):
        plots.activity_histogram([3, 0, 2])
    with pytest.raises(ValueError, match="position 0 holds nan"):
        plots.activity_histogram([np.nan, 2])
    with pytest.raises(ValueError, match="bins"):
        plots.activity_histogram([1, 2], bins=0)


def test_long_tail_sorts_by_popularity_and_accumulates_share():
    counts = pd.Series({"a": 1, "b": 6, "c": 3, "d": 0, "e": 10})
    fig = plots.long_tail(counts, head_share=0.4, what="movie")
    ax1, ax2 = fig.axes
    (ranked,) = [line for line in ax1.get_lines() if line.get_linestyle() == "-"]
    assert list(ranked.get_ydata()) == [10, 6, 3, 1, 0]
    (cumulative,) = [line for line in ax2.get_lines() if line.get_linestyle() == "-"]
    np.testing.assert_allclose(cumulative.get_ydata(), [0.5, 0.8, 0.95, 1.0, 1.0])
    (head,) = _dashed(ax2)
    assert head.get_xdata()[0] == pytest.approx(0.4)
    assert ax1.get_xlabel() == "movie rank by popularity"
    assert any("80%" in text.get_text() for text in ax2.texts)


def test_long_tail_refuses_bad_input():
    with pytest.raises(ValueError, match="no counts"):
        plots.long_tail([])
    with pytest.raises(ValueError, match="position 2 holds -1"):
        plots.long_tail([1, 2, -1])
    with pytest.raises(ValueError, match="every count is zero"):
        plots.long_tail([0, 0])
    with pytest.raises(ValueError, match="head_share"):
        plots.long_tail([1, 2], head_share=1.0)
