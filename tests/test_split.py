"""Tests of recexp.split: Split objects, every splitter, the params registry, ML-100K files.

Most checks compare against oracles written here one Python step per user or pair (naive
per-user counts, sorting by hand for leave-last-n, set algebra for segments), on a small
synthetic Dataset with string and int ids, skewed activity, tied timestamps and side features.
"""

from __future__ import annotations

import datetime as dt
import doctest
from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recexp.split as split_module
from recexp.columns import Columns
from recexp.dataset import Dataset
from recexp.split import (
    SEGMENTS,
    ColdStartSplitter,
    ItemRatioSplitter,
    KFoldSplitter,
    LeaveLastNSplitter,
    LeaveRandomNSplitter,
    PredefinedSplitter,
    RandomSplitter,
    Split,
    Splitter,
    TemporalSplitter,
    UserKFoldSplitter,
    UserRatioSplitter,
    make_splitter,
    split_from_tables,
    splitter_kinds,
)

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------------------- helpers
def make_data(n_users: int = 80, n_items: int = 50, *, seed: int = 0,
              timestamps: bool = True) -> Dataset:
    """Skewed activity (some users with a single interaction), ties in time, features."""
    rng = np.random.default_rng(seed)
    activity = np.minimum(rng.geometric(0.08, size=n_users), n_items)
    activity[:4] = 1
    users, items = [], []
    for u, count in enumerate(activity):
        users += [f"u{u}"] * int(count)
        items += (100 + rng.choice(n_items, size=count, replace=False)).tolist()
    order = rng.permutation(len(users))
    frame = pd.DataFrame({Columns.User: np.asarray(users, dtype=object)[order],
                          Columns.Item: np.asarray(items)[order],
                          Columns.Rating: rng.integers(1, 6, len(users)).astype(np.float32)})
    if timestamps:
        # Whole days only, so many interactions share an instant.
        days = rng.integers(0, 60, len(users))
        frame[Columns.Datetime] = pd.Timestamp("2020-01-01") + pd.to_timedelta(days, "D")
    user_features = pd.DataFrame({Columns.User: [f"u{u}" for u in range(n_users)],
                                  Columns.Feature: [f"g{u % 3}" for u in range(n_users)]})
    item_features = pd.DataFrame({Columns.Item: [100 + i for i in range(n_items)],
                                  Columns.Feature: [f"c{i % 4}" for i in range(n_items)]})
    return Dataset.from_frames(frame, user_features=user_features, item_features=item_features)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return make_data()


def keys(ds: Dataset) -> np.ndarray:
    """Sorted (user, item) pair keys; parts of one split share maps, so keys compare."""
    return np.sort(ds.user_idx.astype(np.int64) * ds.n_items + ds.item_idx)


def frame_pairs(frame: pd.DataFrame) -> set:
    """(user, item) pairs of a table, in external ids."""
    return set(zip(frame[Columns.User], frame[Columns.Item], strict=True))


def pair_set(ds: Dataset) -> set:
    return set(zip(ds.user_idx.tolist(), ds.item_idx.tolist(), strict=True))


def assert_partition(split: Split, original: Dataset) -> None:
    """Parts share maps and features, are disjoint, and together are the original."""
    parts = [split.train, split.test] + ([split.valid] if split.valid is not None else [])
    for part in parts:
        assert part.users is original.users and part.items is original.items
        assert part.user_side is original.user_side and part.item_side is original.item_side
    sets = [pair_set(p) for p in parts]
    assert sum(len(s) for s in sets) == original.n_interactions
    assert set().union(*sets) == pair_set(original)
    # Rows travel whole: each pair keeps its own rating and timestamp.
    truth = dict(zip(zip(original.user_idx.tolist(), original.item_idx.tolist(), strict=True),
                     original.rating.tolist(), strict=True))
    for part in parts:
        for u, i, r in zip(part.user_idx.tolist(), part.item_idx.tolist(),
                           part.rating.tolist(), strict=True):
            assert truth[(u, i)] == r


def assert_segments(split: Split) -> None:
    """Segments against set algebra over what train (plus valid) holds."""
    fit_users = set(split.train.user_idx.tolist())
    fit_items = set(split.train.item_idx.tolist())
    if split.valid is not None:
        fit_users |= set(split.valid.user_idx.tolist())
        fit_items |= set(split.valid.item_idx.tolist())
    total = np.zeros(split.test.n_interactions, dtype=int)
    for name in SEGMENTS:
        mask = split.segments[name]
        assert mask.dtype == bool and mask.shape == (split.test.n_interactions,)
        assert not mask.flags.writeable
        total += mask
    assert (total == 1).all()
    for row, (u, i) in enumerate(zip(split.test.user_idx.tolist(),
                                     split.test.item_idx.tolist(), strict=True)):
        expected = {(True, True): "warm", (False, True): "cold_user",
                    (True, False): "cold_item", (False, False): "cold_both"}[
            (u in fit_users, i in fit_items)]
        assert split.segments[expected][row], (u, i, expected)


SEEDED = [
    RandomSplitter(ratio=0.25, seed=1),
    UserRatioSplitter(ratio=0.3, seed=1),
    ItemRatioSplitter(ratio=0.3, seed=1),
    LeaveRandomNSplitter(n=2, seed=1),
    KFoldSplitter(k=4, seed=1),
    UserKFoldSplitter(k=3, ratio=0.5, seed=1),
    ColdStartSplitter(user_ratio=0.2, item_ratio=0.2, warm_ratio=0.3, seed=1),
]
DETERMINISTIC = [
    TemporalSplitter(ratio=0.3),
    TemporalSplitter(ratio=0.3, by="time"),
    TemporalSplitter(date="2020-02-01"),
    LeaveLastNSplitter(n=2),
]
ALL = SEEDED + DETERMINISTIC
ids = [repr(s) for s in ALL]


# ------------------------------------------------------------------ every splitter
@pytest.mark.parametrize("splitter", ALL, ids=ids)
def test_parts_partition_the_data_and_segments_are_exact(splitter, data):
    for split in splitter.splits(data):
        assert_partition(split, data)
        assert_segments(split)
        assert split.train.n_interactions > 0 and split.test.n_interactions > 0


@pytest.mark.parametrize("splitter", SEEDED, ids=[repr(s) for s in SEEDED])
def test_seed_reproduces_the_split_and_another_seed_changes_it(splitter, data):
    first, again = splitter.split(data), splitter.split(data)
    assert first.seed == splitter.seed == 1
    assert np.array_equal(keys(first.test), keys(again.test))
    assert np.array_equal(keys(first.train), keys(again.train))
    other = make_splitter({**splitter.to_params(), "seed": 2}).split(data)
    assert not np.array_equal(keys(first.test), keys(other.test))


@pytest.mark.parametrize("splitter", SEEDED, ids=[repr(s) for s in SEEDED])
def test_a_drawn_seed_is_recorded_and_reproduces_the_split(splitter, data):
    unseeded = make_splitter({**splitter.to_params(), "seed": None})
    split = unseeded.split(data)
    assert isinstance(split.seed, int) and split.seed >= 0
    replay = make_splitter({**splitter.to_params(), "seed": split.seed}).split(data)
    assert np.array_equal(keys(split.test), keys(replay.test))


@pytest.mark.parametrize("splitter", DETERMINISTIC, ids=[repr(s) for s in DETERMINISTIC])
def test_deterministic_splitters_have_no_seed_and_repeat(splitter, data):
    a, b = splitter.split(data), splitter.split(data)
    assert a.seed is None
    assert np.array_equal(keys(a.test), keys(b.test))


def test_split_does_not_depend_on_row_order_beyond_ties():
    """Same interactions in another row order: temporal cut picks the same pairs."""
    data = make_data(seed=3)
    frame = data.to_frame().sample(frac=1.0, random_state=0)
    shuffled = Dataset.from_frames(frame)
    for splitter in (TemporalSplitter(date="2020-02-01"), TemporalSplitter(ratio=0.2)):
        a = splitter.split(data).test.to_frame()
        b = splitter.split(shuffled).test.to_frame()
        assert frame_pairs(a) == frame_pairs(b)


# ---------------------------------------------------------------------- ratio splits
def test_random_split_holds_out_exactly_the_ratio(data):
    split = RandomSplitter(ratio=0.2, seed=7).split(data)
    assert split.test.n_interactions == int(np.floor(0.2 * data.n_interactions + 0.5))


def naive_per_group(ds: Dataset, by: str) -> dict[int, int]:
    idx = ds.user_idx if by == "user" else ds.item_idx
    return Counter(idx.tolist())


@pytest.mark.parametrize(("cls", "by"), [(UserRatioSplitter, "user"),
                                         (ItemRatioSplitter, "item")])
@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5, 0.9])
def test_stratified_counts_match_the_rule(cls, by, ratio, data):
    split = cls(ratio=ratio, min_interactions=3, seed=0).split(data)
    total = naive_per_group(data, by)
    test = naive_per_group(split.test, by)
    train = naive_per_group(split.train, by)
    for group, size in total.items():
        if size < 3:
            assert test.get(group, 0) == 0 and train[group] == size
        else:
            expected = min(max(int(np.floor(ratio * size + 0.5)), 1), size - 1)
            assert test[group] == expected, (group, size)
            assert train[group] == size - expected >= 1  # both sides, always


def test_user_ratio_is_close_to_the_ratio_overall(data):
    split = UserRatioSplitter(ratio=0.2, seed=0).split(data)
    eligible = sum(c for c in naive_per_group(data, "user").values() if c >= 2)
    assert split.test.n_interactions / eligible == pytest.approx(0.2, abs=0.03)


def test_user_ratio_samples_uniformly_within_a_user():
    """Over many seeds each of a user's 10 interactions is held out ~ratio of the time."""
    frame = pd.DataFrame({Columns.User: [0] * 10 + [1] * 10,
                          Columns.Item: list(range(10)) * 2})
    data = Dataset.from_frames(frame)
    hits = Counter()
    for seed in range(400):
        test = UserRatioSplitter(ratio=0.3, seed=seed).split(data).test
        hits.update(test.item_idx[test.user_idx == 0].tolist())
    counts = np.array([hits[i] for i in range(10)])
    # 400 draws x 3 of 10: each item expects 120; 5 sigma ~ 46.
    assert np.abs(counts - 120).max() < 46, counts


# ------------------------------------------------------------------------ temporal
@pytest.mark.parametrize("splitter", [TemporalSplitter(ratio=0.2),
                                      TemporalSplitter(ratio=0.5, by="time"),
                                      TemporalSplitter(date="2020-01-20"),
                                      TemporalSplitter(date="2020-02-15T12:00:00+01:00")])
def test_temporal_train_is_all_before_test(splitter, data):
    split = splitter.split(data)
    assert split.train.timestamp.max() <= split.test.timestamp.min()
    # Ties stay together: the cut instant itself is wholly on the test side.
    assert split.train.timestamp.max() < split.test.timestamp.min()


def test_temporal_cut_by_date_is_the_date(data):
    split = TemporalSplitter(date="2020-01-20").split(data)
    cut = np.datetime64("2020-01-20T00:00:00")
    assert (split.test.timestamp >= cut).all() and (split.train.timestamp < cut).all()


def test_temporal_ratio_by_interactions_is_near_the_ratio(data):
    split = TemporalSplitter(ratio=0.3).split(data)
    share = split.test.n_interactions / data.n_interactions
    # Whole days tie: the test side may grow by at most one day's interactions.
    biggest_day = max(Counter(data.timestamp.tolist()).values()) / data.n_interactions
    assert 0.3 - 1 / data.n_interactions <= share <= 0.3 + biggest_day


def test_temporal_ratio_by_time_cuts_the_span(data):
    split = TemporalSplitter(ratio=0.25, by="time").split(data)
    first, last = data.timestamp.min(), data.timestamp.max()
    cut = first + (last - first) * 0.75
    assert (split.test.timestamp >= cut).all() and (split.train.timestamp < cut).all()


def test_temporal_date_from_yaml_date_object_round_trips():
    splitter = make_splitter({"kind": "temporal", "date": dt.date(2020, 2, 1)})
    assert splitter.date == "2020-02-01T00:00:00"
    assert make_splitter(splitter.to_params()) == splitter


@pytest.mark.parametrize("date", ["1990-01-01", "2030-01-01"])
def test_temporal_date_outside_the_data_says_so(date, data):
    with pytest.raises(ValueError, match="leaves .* empty; timestamps run from"):
        TemporalSplitter(date=date).split(data)


@pytest.mark.parametrize("splitter", [TemporalSplitter(ratio=0.2), LeaveLastNSplitter()])
def test_time_splitters_need_timestamps(splitter):
    with pytest.raises(ValueError, match="needs timestamps"):
        splitter.split(make_data(timestamps=False))


def test_time_splitters_refuse_missing_timestamps(data):
    frame = data.to_frame()
    frame.loc[3, Columns.Datetime] = pd.NaT
    with pytest.raises(ValueError, match="1 are missing"):
        LeaveLastNSplitter().split(Dataset.from_frames(frame))


# ---------------------------------------------------------------------- leave n out
def naive_last_n(ds: Dataset, n: int, min_interactions: int) -> set:
    rows = defaultdict(list)
    for row, (u, i, t) in enumerate(zip(ds.user_idx.tolist(), ds.item_idx.tolist(),
                                        ds.timestamp.astype(np.int64).tolist(), strict=True)):
        rows[u].append((t, row, i))
    held = set()
    for u, events in rows.items():
        if len(events) >= min_interactions:
            # Latest first; among equal instants the later row is the later interaction.
            for _, _, i in sorted(events, reverse=True)[:n]:
                held.add((u, i))
    return held


@pytest.mark.parametrize(("n", "min_interactions"), [(1, None), (2, None), (3, 1), (2, 5)])
def test_leave_last_n_picks_the_latest(n, min_interactions, data):
    split = LeaveLastNSplitter(n=n, min_interactions=min_interactions).split(data)
    expected = naive_last_n(data, n, n + 1 if min_interactions is None else min_interactions)
    assert pair_set(split.test) == expected


def test_leave_last_n_breaks_ties_by_row_order():
    frame = pd.DataFrame({Columns.User: ["a"] * 4, Columns.Item: [1, 2, 3, 4],
                          Columns.Datetime: pd.to_datetime(["2020-01-02"] * 3 + ["2020-01-01"])})
    test = LeaveLastNSplitter(n=2).split(Dataset.from_frames(frame)).test
    assert sorted(test.items.to_external(test.item_idx).tolist()) == [2, 3]


def test_leave_n_keeps_short_users_in_train(data):
    for splitter in (LeaveLastNSplitter(n=2), LeaveRandomNSplitter(n=2, seed=0)):
        split = splitter.split(data)
        test = naive_per_group(split.test, "user")
        for user, size in naive_per_group(data, "user").items():
            assert test.get(user, 0) == (2 if size >= 3 else 0)


def test_leave_n_with_low_min_interactions_makes_cold_users(data):
    split = LeaveLastNSplitter(n=1, min_interactions=1).split(data)
    singles = [u for u, c in naive_per_group(data, "user").items() if c == 1]
    assert singles and all(u not in set(split.train.user_idx.tolist()) for u in singles)
    assert split.segments["cold_user"].sum() + split.segments["cold_both"].sum() >= len(singles)


# -------------------------------------------------------------------------- k-fold
def test_kfold_tests_partition_the_interactions(data):
    folds = list(KFoldSplitter(k=5, seed=3).splits(data))
    assert [f.name for f in folds] == [f"kfold-fold{k}" for k in range(5)]
    tests = [pair_set(f.test) for f in folds]
    assert sum(len(t) for t in tests) == data.n_interactions
    assert set().union(*tests) == pair_set(data)
    sizes = [len(t) for t in tests]
    assert max(sizes) - min(sizes) <= 1


def test_kfold_without_seed_still_partitions_within_one_call(data):
    folds = list(KFoldSplitter(k=3).splits(data))
    assert len({f.seed for f in folds}) == 1
    assert set().union(*(pair_set(f.test) for f in folds)) == pair_set(data)


def test_kfold_one_fold_equals_that_fold_of_splits(data):
    splitter = UserKFoldSplitter(k=4, seed=9)
    every = list(splitter.splits(data))
    assert np.array_equal(keys(splitter.split(data, fold=2).test), keys(every[2].test))
    with pytest.raises(ValueError, match=r"fold must be an integer in \[0, 4\)"):
        splitter.split(data, fold=4)
    with pytest.raises(ValueError, match=r"fold must be an integer in \[0, 1\)"):
        RandomSplitter(seed=0).split(data, fold=1)


@pytest.mark.parametrize("kwargs", [{"ratio": 0.3}, {"n": 2},
                                    {"ratio": 0.5, "min_interactions": 6}])
def test_user_kfold_partitions_eligible_users(kwargs, data):
    splitter = UserKFoldSplitter(k=4, seed=5, **kwargs)
    minimum = splitter.min_interactions or (2 if splitter.ratio else splitter.n + 1)
    sizes = naive_per_group(data, "user")
    eligible = {u for u, c in sizes.items() if c >= minimum}
    seen: set = set()
    fold_sizes = []
    for split in splitter.splits(data):
        test_users = naive_per_group(split.test, "user")
        assert not (set(test_users) & seen)  # a user tests in one fold only
        seen |= set(test_users)
        fold_sizes.append(len(test_users))
        train_users = naive_per_group(split.train, "user")
        for user, held in test_users.items():
            size = sizes[user]
            expected = (min(max(int(np.floor(splitter.ratio * size + 0.5)), 1), size - 1)
                        if splitter.ratio else min(splitter.n, size))
            assert held == expected and train_users[user] == size - held
        for user, count in train_users.items():
            if user not in test_users:
                assert count == sizes[user]  # everyone else trains on everything
    assert seen == eligible
    assert max(fold_sizes) - min(fold_sizes) <= 1


def test_user_kfold_with_too_few_users_says_so():
    frame = pd.DataFrame({Columns.User: [1, 1, 2, 2], Columns.Item: [1, 2, 1, 2]})
    with pytest.raises(ValueError, match="only 2 user.*too few for k=3"):
        UserKFoldSplitter(k=3, seed=0).split(Dataset.from_frames(frame))


# ---------------------------------------------------------------------- cold start
def test_cold_start_holds_out_whole_users_and_items(data):
    splitter = ColdStartSplitter(user_ratio=0.2, item_ratio=0.1, warm_ratio=0.25, seed=4)
    split = splitter.split(data)
    assert_partition(split, data)
    assert_segments(split)
    for name in SEGMENTS:
        assert split.segments[name].any(), name
    train_users = set(split.train.user_idx.tolist())
    train_items = set(split.train.item_idx.tolist())
    cold_users = set(data.user_idx.tolist()) - train_users
    cold_items = set(data.item_idx.tolist()) - train_items
    # The chosen fractions, give or take entities the warm holdout happened to empty.
    active_users = len(set(data.user_idx.tolist()))
    active_items = len(set(data.item_idx.tolist()))
    assert len(cold_users) >= int(np.floor(0.2 * active_users + 0.5))
    assert len(cold_items) >= int(np.floor(0.1 * active_items + 0.5))
    # Every interaction of a cold user or item is in test.
    for u, i in pair_set(data):
        if u in cold_users or i in cold_items:
            assert (u, i) in pair_set(split.test)
    # Features of cold users and items are still there, in the shared matrices.
    cold_u = np.array(sorted(cold_users))
    assert np.array_equal(split.test.user_features[cold_u].toarray(),
                          data.user_features[cold_u].toarray())
    assert split.test.user_features[cold_u].nnz >= 2 * len(cold_u)  # identity + a feature


def test_cold_start_without_warm_holdout_has_no_warm_segment(data):
    split = ColdStartSplitter(user_ratio=0.2, item_ratio=0.0, warm_ratio=0.0,
                              seed=0).split(data)
    assert split.segments["cold_user"].all()
    assert split.describe().loc["test/cold_user", "users"] == int(
        np.floor(0.2 * len(set(data.user_idx.tolist())) + 0.5))


# ------------------------------------------------------------------- Split itself
def test_split_refuses_overlapping_parts(data):
    half = np.arange(data.n_interactions) < data.n_interactions // 2
    overlap = half.copy()
    overlap[data.n_interactions // 2] = True
    row = data.n_interactions // 2
    user, item = data.user_ids[data.user_idx[row]], data.item_ids[data.item_idx[row]]
    with pytest.raises(ValueError, match=rf"split parts overlap: 1 \(user, item\) pair\(s\) "
                                         rf"repeat, e.g. user '{user}', item {item} is in both "
                                         "'train' and 'test'"):
        Split(data.subset(overlap), data.subset(~half))
    with pytest.raises(ValueError, match=f"{data.n_interactions // 2} .* pair"):
        Split(data.subset(half), data.subset(np.ones(data.n_interactions, bool)))


def test_split_refuses_parts_of_different_datasets(data):
    other = make_data(seed=1)
    with pytest.raises(ValueError, match="does not share the id maps"):
        Split(data.subset(np.arange(5)), other.subset(np.arange(5, 10)))
    with pytest.raises(TypeError, match="must be a recexp Dataset"):
        Split(data, "test")


def test_segments_of_a_hand_made_split():
    frame = pd.DataFrame({Columns.User: ["a", "a", "b", "c", "a", "c"],
                          Columns.Item: [1, 2, 1, 2, 3, 3]})
    data = Dataset.from_frames(frame)
    split = Split(data.subset(np.array([0, 1, 2])), data.subset(np.array([3, 4, 5])))
    # test rows: (c, 2) cold user / warm item; (a, 3) warm user / cold item; (c, 3) neither
    assert split.segments["cold_user"].tolist() == [True, False, False]
    assert split.segments["cold_item"].tolist() == [False, True, False]
    assert split.segments["cold_both"].tolist() == [False, False, True]
    assert not split.segments["warm"].any()
    assert split.segment("cold_item").to_frame()[Columns.Item].tolist() == [3]
    with pytest.raises(ValueError, match=r"unknown segment 'cold'.*did you mean 'cold_"):
        split.segment("cold")


def test_with_validation_carves_train_and_keeps_test(data):
    base = UserRatioSplitter(ratio=0.2, seed=1).split(data)
    split = base.with_validation(LeaveRandomNSplitter(n=1, seed=2))
    assert split.test is base.test and split.seed == 1 and split.valid_seed == 2
    assert_partition(split, data)
    assert pair_set(split.train) | pair_set(split.valid) == pair_set(base.train)
    assert pair_set(split.full_train) == pair_set(base.train)
    for name in SEGMENTS:
        assert np.array_equal(split.segments[name], base.segments[name])
    assert_segments(split)
    # Valid segments are relative to train alone.
    inner = Split(split.train, split.valid)
    for name in SEGMENTS:
        assert np.array_equal(split.valid_segments[name], inner.segments[name])
    assert split.segment("warm", part="valid").n_interactions == split.valid_segments[
        "warm"].sum()
    with pytest.raises(ValueError, match="already has a validation set"):
        split.with_validation(RandomSplitter(seed=0))


def test_full_train_without_validation_is_train(data):
    split = RandomSplitter(seed=0).split(data)
    assert split.full_train is split.train
    with pytest.raises(ValueError, match="no validation set"):
        split.segment("warm", part="valid")


def test_describe_counts_parts_and_segments(data):
    split = ColdStartSplitter(seed=3).split(data).with_validation(
        UserRatioSplitter(ratio=0.1, seed=3))
    table = split.describe()
    assert list(table.columns) == ["interactions", "users", "items"]
    assert list(table.index[:3]) == ["train", "valid", "test"]
    for part in ("train", "valid", "test"):
        ds = getattr(split, part)
        assert table.loc[part].tolist() == [ds.n_interactions, len(set(ds.user_idx.tolist())),
                                            len(set(ds.item_idx.tolist()))]
        assert sum(table.loc[f"{part}/{s}", "interactions"] for s in SEGMENTS
                   ) == ds.n_interactions if part != "train" else True
    warm = split.segment("cold_user")
    assert table.loc["test/cold_user"].tolist() == [
        warm.n_interactions, len(set(warm.user_idx.tolist())), len(set(warm.item_idx.tolist()))]


def test_split_repr_names_its_parts(data):
    text = repr(RandomSplitter(seed=5).split(data))
    assert text.startswith("Split(name='random', seed=5, train=Dataset(")


# ------------------------------------------------------------------ registry, params
DEFAULTS = [cls() for cls in splitter_kinds().values() if cls is not TemporalSplitter]


@pytest.mark.parametrize("splitter", DEFAULTS + ALL + [
    UserKFoldSplitter(n=3, min_interactions=5, seed=0),
    PredefinedSplitter(name="ua", missing="drop"),
], ids=repr)
def test_params_round_trip(splitter):
    params = splitter.to_params()
    assert params["kind"] == splitter.kind
    assert all(v is None or type(v) in (int, float, str) for v in params.values())
    assert make_splitter(params) == splitter
    assert type(splitter).from_params(params) == splitter
    assert Splitter.from_params(params) == splitter


def test_every_kind_is_registered():
    assert set(splitter_kinds()) == {
        "random", "user_ratio", "item_ratio", "temporal", "leave_last_n", "leave_random_n",
        "kfold", "user_kfold", "predefined", "cold_start"}
    example = make_splitter({"kind": "user_ratio", "ratio": 0.2, "seed": 42})
    assert example == UserRatioSplitter(ratio=0.2, seed=42)


@pytest.mark.parametrize(("params", "message"), [
    ({"kind": "usr_ratio"}, r"unknown split kind 'usr_ratio' \(did you mean 'user_ratio'\?\)"),
    ({"kind": "zzz"}, r"unknown split kind 'zzz'; known kinds: random, user_ratio"),
    ({"kind": "user_ratio", "ration": 0.2},
     r"kind 'user_ratio' has no field 'ration' \(did you mean 'ratio'\?\)"),
    ({"kind": "kfold", "folds": 3}, r"has no field 'folds'.*its fields: k, seed"),
    ({"ratio": 0.2}, r"need a 'kind'"),
    ({"kind": "random", "ratio": 1.5}, r"random: ratio must be in \(0, 1\), got 1.5"),
    ({"kind": "random", "ratio": "0.2"}, r"ratio must be a number"),
    ({"kind": "kfold", "k": 1}, r"kfold: k must be >= 2"),
    ({"kind": "kfold", "k": 5.0}, r"kfold: k must be an integer, got 5.0"),
    ({"kind": "kfold", "seed": -1}, r"seed must be >= 0"),
    ({"kind": "kfold", "seed": True}, r"seed must be an integer"),
    ({"kind": "user_ratio", "min_interactions": 1}, r"min_interactions must be >= 2"),
    ({"kind": "temporal"}, r"exactly one of date or ratio"),
    ({"kind": "temporal", "date": "2020-01-01", "ratio": 0.1}, r"exactly one of date or ratio"),
    ({"kind": "temporal", "date": "soon"}, r"date 'soon' is not a date"),
    ({"kind": "temporal", "ratio": 0.1, "by": "tme"}, r"by must be one of.*did you mean 'time'"),
    ({"kind": "user_kfold", "n": 2, "ratio": 0.2}, r"one of ratio or n, not both"),
    ({"kind": "cold_start", "user_ratio": 0, "item_ratio": 0}, r"nothing is cold"),
    ({"kind": "cold_start", "warm_ratio": 1}, r"warm_ratio must be in \[0, 1\)"),
    ({"kind": "predefined", "missing": "skip"}, r"missing must be one of 'raise', 'drop'"),
])
def test_bad_params_name_what_was_wrong(params, message):
    with pytest.raises(ValueError, match=message):
        make_splitter(params)


def test_user_kfold_defaults_to_a_ratio_unless_n_is_given():
    assert UserKFoldSplitter().ratio == 0.2 and UserKFoldSplitter().n is None
    assert make_splitter({"kind": "user_kfold", "n": 2}).ratio is None


def test_from_params_on_a_subclass_checks_the_kind():
    assert RandomSplitter.from_params({"ratio": 0.3}) == RandomSplitter(ratio=0.3)
    with pytest.raises(ValueError, match="got kind 'kfold', expected 'random'"):
        RandomSplitter.from_params({"kind": "kfold"})


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        RandomSplitter(0.2)


def test_splitting_something_else_is_a_type_error():
    with pytest.raises(TypeError, match="splits a recexp Dataset, got DataFrame"):
        RandomSplitter(seed=0).split(pd.DataFrame())


# ------------------------------------------------------------- predefined tables
def test_split_from_tables_maps_pairs_onto_the_dataset(data):
    frame = data.to_frame()
    train, test = frame.iloc[::2], frame.iloc[1::2]
    split = split_from_tables(data, train, test, name="half")
    assert split.name == "half" and split.seed is None
    assert_partition(split, data)
    got = split.test.to_frame()
    assert frame_pairs(got) == frame_pairs(test)


def test_split_from_tables_names_a_pair_the_dataset_lacks(data):
    frame = data.to_frame()
    stranger = pd.DataFrame({Columns.User: ["nobody"], Columns.Item: [101]})
    test = pd.concat([frame.iloc[:5], stranger], ignore_index=True)
    with pytest.raises(ValueError, match=r"test table: 1 \(user, item\) pair.*row 5: "
                                         r"user 'nobody', item 101"):
        split_from_tables(data, frame.iloc[5:], test)
    # A known user and a known item that never met is not an interaction either.
    u0_items = set(frame.loc[frame[Columns.User] == "u0", Columns.Item])
    never = next(i for i in range(100, 150) if i not in u0_items)
    unmet = pd.DataFrame({Columns.User: ["u0"], Columns.Item: [never]})
    with pytest.raises(ValueError, match=f"user 'u0', item {never}"):
        split_from_tables(data, frame.iloc[5:], pd.concat([frame.iloc[:5], unmet]))
    dropped = split_from_tables(data, frame.iloc[5:], test, missing="drop")
    assert dropped.test.n_interactions == 5


def test_split_from_tables_refuses_repeated_pairs(data):
    frame = data.to_frame()
    with pytest.raises(ValueError, match="train table lists 1 .* more than once, e.g. row 1: user"):
        split_from_tables(data, frame.iloc[[0, 1, 2, 1]], frame.iloc[5:])
    with pytest.raises(ValueError, match="both 'train' and 'test'"):
        split_from_tables(data, frame.iloc[:6], frame.iloc[5:])
    with pytest.raises(ValueError, match="needs columns"):
        split_from_tables(data, frame.iloc[:5].rename(columns={Columns.User: "uid"}),
                          frame.iloc[5:])


def test_predefined_splitter_reads_source_tables(data):
    frame = data.to_frame()
    tables = {"fold1": (frame.iloc[10:], frame.iloc[:10])}
    split = PredefinedSplitter(name="fold1").split(data, source=tables)
    assert split.name == "fold1" and split.test.n_interactions == 10
    with pytest.raises(ValueError, match=r"no split named 'fold2' \(did you mean 'fold1'\?\)"
                                         r" \(the source has: fold1\)"):
        PredefinedSplitter(name="fold2").split(data, source=tables)
    with pytest.raises(ValueError, match="reads its tables from the SourceData"):
        PredefinedSplitter(name="fold1").split(data)
    assert len(list(PredefinedSplitter(name="fold1").splits(data, source=tables))) == 1


# --------------------------------------------------------- kernels against oracles
@given(st.lists(st.integers(0, 5), min_size=1, max_size=60), st.integers(0, 2**32 - 1))
@SETTINGS
def test_rank_in_groups_matches_a_naive_walk(groups, seed):
    groups = np.asarray(groups, dtype=np.int32)
    order = np.random.default_rng(seed).permutation(len(groups))
    rank, sizes = split_module._rank_in_groups(groups, 6, order)
    seen: Counter = Counter()
    for row in order:
        assert rank[row] == seen[groups[row]]
        seen[groups[row]] += 1
    assert sizes.tolist() == [seen[g] for g in range(6)]


def test_sort_rows_fallback_agrees_with_packed_sort():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 5, size=1000)
    assert np.array_equal(split_module._sort_rows(small), np.argsort(small, kind="stable"))
    huge = small.astype(np.int64) << 60  # no room for the row bits: argsort path
    assert np.array_equal(split_module._sort_rows(huge), np.argsort(small, kind="stable"))


# ---------------------------------------------------------------- property tests
@st.composite
def datasets(draw):
    n_users = draw(st.integers(2, 12))
    n_items = draw(st.integers(2, 12))
    cells = draw(st.sets(st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)),
                         min_size=2, max_size=60))
    cells = sorted(cells)
    days = draw(st.lists(st.integers(0, 5), min_size=len(cells), max_size=len(cells)))
    frame = pd.DataFrame({Columns.User: [c[0] for c in cells],
                          Columns.Item: [c[1] for c in cells],
                          Columns.Rating: np.ones(len(cells), np.float32),
                          Columns.Datetime: pd.Timestamp("2021-01-01")
                          + pd.to_timedelta(days, "D")})
    return Dataset.from_frames(frame.sample(frac=1.0, random_state=draw(st.integers(0, 99))))


splitters = st.one_of(
    st.builds(RandomSplitter, ratio=st.floats(0.05, 0.95), seed=st.integers(0, 99)),
    st.builds(UserRatioSplitter, ratio=st.floats(0.05, 0.95), seed=st.integers(0, 99)),
    st.builds(ItemRatioSplitter, ratio=st.floats(0.05, 0.95), seed=st.integers(0, 99)),
    st.builds(TemporalSplitter, ratio=st.floats(0.05, 0.95),
              by=st.sampled_from(["interactions", "time"])),
    st.builds(LeaveLastNSplitter, n=st.integers(1, 3)),
    st.builds(LeaveRandomNSplitter, n=st.integers(1, 3), seed=st.integers(0, 99)),
    st.builds(KFoldSplitter, k=st.integers(2, 4), seed=st.integers(0, 99)),
    st.builds(UserKFoldSplitter, k=st.integers(2, 3), seed=st.integers(0, 99)),
    st.builds(ColdStartSplitter, user_ratio=st.floats(0.0, 0.5), item_ratio=st.floats(0.1, 0.5),
              warm_ratio=st.floats(0.0, 0.5), seed=st.integers(0, 99)),
)


@given(datasets(), splitters)
@SETTINGS
def test_any_split_partitions_and_segments_hold(data, splitter):
    try:
        results = list(splitter.splits(data))
    except ValueError as err:
        # Tiny data may leave a side empty or too few users for k folds: said, not hidden.
        assert "empty" in str(err) or "too few" in str(err) or "cannot fill" in str(err)
        return
    for split in results:
        assert_partition(split, data)
        assert_segments(split)
        if isinstance(splitter, TemporalSplitter):
            assert split.train.timestamp.max() < split.test.timestamp.min()
    if isinstance(splitter, KFoldSplitter):
        assert sum(s.test.n_interactions for s in results) == data.n_interactions


# ---------------------------------------------------------------------- doctests
def test_module_examples_run():
    result = doctest.testmod(split_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------- real data
@pytest.mark.realdata
@pytest.mark.parametrize(("name", "n_train", "n_test"), [
    ("u1", 80_000, 20_000), ("u5", 80_000, 20_000), ("ua", 90_570, 9_430),
    ("ub", 90_570, 9_430)])
def test_ml100k_predefined_split_sizes(name, n_train, n_test, ml100k, ml100k_dataset):
    split = PredefinedSplitter(name=name).split(ml100k_dataset, source=ml100k)
    assert (split.train.n_interactions, split.test.n_interactions) == (n_train, n_test)
    assert split.train.users is ml100k_dataset.users
    train_table, test_table = ml100k.splits[name]
    got = split.test.to_frame()
    assert frame_pairs(got) == frame_pairs(test_table)
    # The file's ratings are the Dataset's ratings for the same pairs.
    merged = got.merge(test_table, on=list(Columns.Interactions), suffixes=("", "_file"))
    assert (merged[Columns.Rating] == merged[f"{Columns.Rating}_file"]).all()
    assert_segments(split)


@pytest.mark.realdata
def test_ml100k_u1_to_u5_tests_partition_the_ratings(ml100k, ml100k_dataset):
    tests = [pair_set(PredefinedSplitter(name=f"u{k}").split(ml100k_dataset,
                                                              source=ml100k).test)
             for k in range(1, 6)]
    assert sum(map(len, tests)) == 100_000
    assert set().union(*tests) == pair_set(ml100k_dataset)


@pytest.mark.realdata
def test_ml100k_every_user_is_on_both_sides_of_a_user_ratio_split(ml100k_dataset):
    split = UserRatioSplitter(ratio=0.2, seed=42).split(ml100k_dataset)
    assert_partition(split, ml100k_dataset)
    # Every ML-100K user has at least 20 ratings, so every one of them is eligible.
    assert set(split.train.user_idx.tolist()) == set(split.test.user_idx.tolist()) == set(
        range(ml100k_dataset.n_users))
    assert split.test.n_interactions / 100_000 == pytest.approx(0.2, abs=0.005)
    assert not split.segments["cold_user"].any()


@pytest.mark.realdata
def test_ml100k_cold_start_and_temporal(ml100k_dataset):
    cold = ColdStartSplitter(user_ratio=0.1, item_ratio=0.1, seed=0).split(ml100k_dataset)
    assert_partition(cold, ml100k_dataset)
    table = cold.describe()
    assert table.loc["test/cold_user", "users"] >= 94  # round(0.1 * 943)
    assert all(table.loc[f"test/{s}", "interactions"] > 0 for s in SEGMENTS)
    temporal = TemporalSplitter(ratio=0.2).split(ml100k_dataset)
    assert temporal.train.timestamp.max() < temporal.test.timestamp.min()
    assert temporal.test.n_interactions == pytest.approx(20_000, abs=50)
