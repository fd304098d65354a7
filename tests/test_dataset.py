"""Tests of recexp.dataset: id maps, interaction and feature matrices, subsets, immutability.

Matrices are checked against two oracles: a naive dict-of-pairs construction written here, and
LightFM's own ``lightfm.data.Dataset`` fed the same rows (the matrices recexp hands to LightFM
must be the ones LightFM would have built itself).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recexp.dataset as dataset_module
from recexp.columns import Columns
from recexp.dataset import Dataset, FeatureSet, IdMap, _factorize

lightfm_data = pytest.importorskip("lightfm.data")

# Hypothesis examples build small pandas frames and, for the LightFM oracle, a LightFM Dataset:
# a few milliseconds each, so a modest example count keeps the file fast.
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------- helpers
def frame(users, items, **extra) -> pd.DataFrame:
    return pd.DataFrame({Columns.User: users, Columns.Item: items, **extra})


def naive_matrix(users, items, values) -> tuple[dict, dict, np.ndarray]:
    """Id maps by first appearance and a dense float32 matrix, one Python step per pair."""
    u_map: dict = {}
    i_map: dict = {}
    for u, i in zip(users, items, strict=True):
        u_map.setdefault(u, len(u_map))
        i_map.setdefault(i, len(i_map))
    dense = np.zeros((len(u_map), len(i_map)), np.float32)
    for u, i, v in zip(users, items, values, strict=True):
        dense[u_map[u], i_map[i]] = v
    return u_map, i_map, dense


def check_csr(matrix, shape) -> None:
    """The layout every recexp matrix promises (and LightFM needs)."""
    assert type(matrix) is sp.csr_matrix
    assert matrix.shape == shape
    assert matrix.dtype == np.float32
    assert matrix.indices.dtype == np.int32
    assert matrix.indptr.dtype == np.int32
    assert matrix.has_canonical_format
    # LightFM fails on read-only buffers ("buffer source array is read-only").
    assert matrix.data.flags.writeable and matrix.indices.flags.writeable


def lightfm_features(which, ds, table, *, identity, normalize):
    """LightFM's feature matrix for ``table``, its ids fitted in recexp's first-appearance order
    re-derived from the raw columns (interactions, then feature table)."""
    key = Columns.User if which == "user" else Columns.Item
    interactions = ds.to_frame()
    lfm = lightfm_data.Dataset(user_identity_features=identity, item_identity_features=identity)
    features = list(dict.fromkeys(table[Columns.Feature]))
    if which == "user":
        lfm.fit(users=list(interactions[Columns.User]) + list(table[key]),
                items=interactions[Columns.Item], user_features=features)
    else:
        lfm.fit(users=interactions[Columns.User],
                items=list(interactions[Columns.Item]) + list(table[key]),
                item_features=features)
    rows = [(e, {f: float(v)}) for e, f, v in zip(table[key], table[Columns.Feature],
                                                  table[Columns.Value], strict=True)]
    build = lfm.build_user_features if which == "user" else lfm.build_item_features
    matrix = build(rows, normalize=normalize)
    mapping = lfm.mapping()[1] if which == "user" else lfm.mapping()[3]
    return matrix, list(mapping)


@contextlib.contextmanager
def layout_path(presort: bool):
    """Force one of the two ways Dataset builds its CSR layout (small inputs presort)."""
    saved = dataset_module._PRESORT_MAX
    dataset_module._PRESORT_MAX = saved if presort else -1
    try:
        yield
    finally:
        dataset_module._PRESORT_MAX = saved


# ---------------------------------------------------------------------------- strategies
int_ids = st.integers(-(2**40), 2**40)
compact_ids = st.integers(-3, 40)  # dense integer ids take recexp's hash-free path
str_ids = st.text(max_size=6)


@st.composite
def interaction_tables(draw, min_size=1, max_size=40):
    """(user ids, item ids, weights, ratings) with unique pairs, ids all int or all str."""
    ids = draw(st.sampled_from([int_ids, compact_ids, str_ids]))
    user_pool = draw(st.lists(ids, min_size=1, max_size=8, unique=True))
    item_pool = draw(st.lists(ids, min_size=1, max_size=8, unique=True))
    pairs = draw(st.lists(st.tuples(st.sampled_from(user_pool), st.sampled_from(item_pool)),
                          min_size=min_size, max_size=max_size, unique=True))
    n = len(pairs)
    weights = draw(st.lists(st.floats(-1e6, 1e6, width=32), min_size=n, max_size=n))
    ratings = draw(st.lists(st.sampled_from([0.5, 1.0, 3.5, 5.0]), min_size=n, max_size=n))
    users = [u for u, _ in pairs]
    items = [i for _, i in pairs]
    return users, items, weights, ratings


@st.composite
def featured_tables(draw):
    """An interactions table on int ids and a long feature table for users or items, whose ids
    may be absent from the interactions (cold) and whose (id, feature) pairs may repeat."""
    which = draw(st.sampled_from(["user", "item"]))
    identity = draw(st.booleans())
    normalize = draw(st.booleans())
    pairs = draw(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1,
                          max_size=25, unique=True))
    inter = frame([u for u, _ in pairs], [i for _, i in pairs])
    key = Columns.User if which == "user" else Columns.Item
    known = list(dict.fromkeys(inter[key]))
    entity = st.integers(0, 9)  # 7..9 never interact: cold users/items
    rows = draw(st.lists(st.tuples(entity, st.integers(0, 5),
                                   st.floats(-4, 4, width=32)), max_size=30))
    if normalize and not identity:
        # LightFM refuses to normalise an empty row; give every known id one feature so the
        # oracle applies (the empty-row case has its own test).
        rows = [(e, 0, 1.0) for e in known] + rows
    table = pd.DataFrame({key: [r[0] for r in rows],
                          Columns.Feature: [f"f{r[1]}" for r in rows],
                          Columns.Value: np.asarray([r[2] for r in rows], np.float32)})
    return which, identity, normalize, inter, table


# ---------------------------------------------------------------------------- IdMap
@SETTINGS
@given(ids=st.one_of(st.lists(int_ids, unique=True, max_size=30),
                     st.lists(str_ids, unique=True, max_size=30)),
       data=st.data())
def test_id_map_round_trip(ids, data):
    id_map = IdMap(np.asarray(ids, dtype=object) if ids else np.asarray([], dtype=np.int64))
    assert len(id_map) == len(ids)
    query = data.draw(st.lists(st.sampled_from(ids), max_size=50)) if ids else []
    internal = id_map.to_internal(query)
    assert internal.dtype == np.int32
    assert internal.shape == (len(query),)
    assert [ids[k] for k in internal] == query
    assert list(id_map.to_external(internal)) == query
    assert list(id_map.to_internal(ids)) == list(range(len(ids)))


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(["int8", "uint8", "int32", "int64", "uint64"]))
def test_factorize_equals_pandas(data, dtype):
    info = np.iinfo(dtype)
    low = data.draw(st.integers(int(info.min), int(info.max)))
    width = data.draw(st.sampled_from([1, 5, 100, 2**20]))
    high = min(int(info.max), low + width)
    values = np.asarray(data.draw(st.lists(st.integers(low, high), max_size=60)), dtype=dtype)
    codes, uniques = _factorize(values)
    want_codes, want_uniques = pd.factorize(values)
    np.testing.assert_array_equal(codes, want_codes)
    np.testing.assert_array_equal(uniques, want_uniques)
    assert np.asarray(uniques).dtype == want_uniques.dtype


@pytest.mark.parametrize("ids", [[10, 3, 7], ["b", "a", "c"]], ids=["int", "str"])
@pytest.mark.parametrize("as_", [list, np.asarray, pd.Series, pd.Index])
def test_id_map_accepts_array_likes(ids, as_):
    id_map = IdMap(np.asarray(ids))
    query = [ids[2], ids[0], ids[2]]
    assert list(id_map.to_internal(as_(query))) == [2, 0, 2]
    assert list(id_map.to_external(np.array([2, 0, 2]))) == query


def test_id_map_unknown_ids_raise_naming_them():
    id_map = IdMap(np.array(["a", "b"]))
    with pytest.raises(KeyError, match=r"2 unknown id\(s\).*'zz'.*'yy'"):
        id_map.to_internal(["a", "zz", "yy"])
    # An int map does not silently accept strings that look like its ids.
    with pytest.raises(KeyError, match="'1'"):
        IdMap(np.array([1, 2])).to_internal(["1"])


def test_id_map_unknown_ids_ignored_give_minus_one():
    id_map = IdMap(np.array([5, 6]))
    out = id_map.to_internal([6, 99, 5], missing="ignore")
    assert out.dtype == np.int32
    assert list(out) == [1, -1, 0]


def test_id_map_rejects_unknown_missing_mode():
    with pytest.raises(ValueError, match="missing"):
        IdMap(np.array([5, 6])).to_internal([99], missing="skip")


def test_id_map_to_external_rejects_out_of_range():
    # -1 is what missing="ignore" gives: it must not wrap around to the last id.
    id_map = IdMap(np.array(["a", "b"]))
    with pytest.raises(IndexError, match="-1"):
        id_map.to_external(np.array([0, -1]))
    with pytest.raises(IndexError, match="2"):
        id_map.to_external(np.array([2]))


def test_id_map_rejects_repeated_ids():
    with pytest.raises(ValueError, match="'x'"):
        IdMap(np.array(["x", "y", "x"]))


def test_id_map_ids_are_read_only():
    id_map = IdMap(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="read-only"):
        id_map.ids[0] = 7


# ---------------------------------------------------------------------------- matrices
@SETTINGS
@given(table=interaction_tables(), presort=st.booleans())
def test_matrices_equal_naive_construction(table, presort):
    users, items, weights, ratings = table
    with layout_path(presort):
        ds = Dataset.from_frames(frame(users, items, weight=np.asarray(weights, np.float32),
                                       rating=np.asarray(ratings, np.float32)))
    u_map, i_map, dense_w = naive_matrix(users, items, weights)
    _, _, dense_r = naive_matrix(users, items, ratings)
    _, _, dense_b = naive_matrix(users, items, np.ones(len(users)))
    assert list(ds.user_ids) == list(u_map)
    assert list(ds.item_ids) == list(i_map)
    shape = (len(u_map), len(i_map))
    for got, want in ((ds.interactions, dense_w), (ds.ratings, dense_r), (ds.binary, dense_b)):
        check_csr(got, shape)
        np.testing.assert_array_equal(got.toarray(), want)
    assert ds.binary.nnz == len(users)
    assert ds.user_idx.dtype == np.int32 and ds.item_idx.dtype == np.int32
    assert list(ds.to_frame()[Columns.User]) == users
    assert list(ds.to_frame()[Columns.Item]) == items


@SETTINGS
@given(table=interaction_tables())
def test_interactions_equal_lightfm_build_interactions(table):
    users, items, weights, _ = table
    ds = Dataset.from_frames(frame(users, items, weight=np.asarray(weights, np.float32)))
    lfm = lightfm_data.Dataset()
    lfm.fit(users, items)
    ones, lfm_weights = lfm.build_interactions(zip(users, items, weights, strict=True))
    np.testing.assert_array_equal(ds.interactions.toarray(), lfm_weights.toarray())
    np.testing.assert_array_equal(ds.binary.toarray(), ones.toarray())


def test_weight_defaults_to_one_and_is_not_the_rating():
    ds = Dataset.from_frames(frame([1, 1, 2], ["a", "b", "a"], rating=[4.0, 2.0, 5.0]))
    np.testing.assert_array_equal(ds.interactions.toarray(), [[1, 1], [1, 0]])
    np.testing.assert_array_equal(ds.ratings.toarray(), [[4, 2], [5, 0]])


def test_interactions_carry_the_weights():
    # Regression: the uniqueness check once cached its all-ones matrix as "interactions",
    # so every Dataset trained on 1.0 whatever its weight column said.
    ds = Dataset.from_frames(frame([1, 2, 2], ["a", "a", "b"], weight=[3.0, 0.0, 2.5]))
    np.testing.assert_array_equal(ds.interactions.toarray(), [[3.0, 0.0], [0.0, 2.5]])
    np.testing.assert_array_equal(ds.binary.toarray(), [[1, 0], [1, 1]])


def test_no_rating_column_has_no_ratings_matrix():
    ds = Dataset.from_frames(frame([1], [2]))
    assert ds.rating is None
    with pytest.raises(ValueError, match="no rating column"):
        _ = ds.ratings


def test_known_ids_without_interactions_are_kept_in_order():
    ds = Dataset.from_frames(frame([3, 1], [10, 10]), users=[1, 9, 3, 8], items=[11, 10])
    assert list(ds.user_ids) == [3, 1, 9, 8]
    assert list(ds.item_ids) == [10, 11]
    assert ds.interactions.shape == (4, 2)
    assert ds.interactions[2:].nnz == 0
    summary = ds.describe()
    assert (summary["users"], summary["known_users"]) == (2, 4)
    assert (summary["items"], summary["known_items"]) == (1, 2)


def test_empty_interactions():
    ds = Dataset.from_frames(frame(pd.Series([], dtype="int64"), pd.Series([], dtype="int64")),
                             items=[1, 2])
    check_csr(ds.interactions, (0, 2))
    assert ds.describe()["interactions"] == 0


@pytest.mark.parametrize("ids", [([1, 2, 1], [5, 5, 5]), (["u", "v", "u"], ["i", "i", "i"])],
                         ids=["int", "str"])
@pytest.mark.parametrize("presort", [True, False])
def test_duplicate_pairs_raise_naming_a_pair(ids, presort):
    users, items = ids
    with layout_path(presort), pytest.raises(
            ValueError, match=rf"1 duplicates, e.g. user {users[0]!r}, item {items[0]!r}.*"
                              "deduplicate"):
        Dataset.from_frames(frame(users, items))


@pytest.mark.parametrize("column", [Columns.User, Columns.Item])
@pytest.mark.parametrize("dtype", ["object", "str", "float64", "Int64"])
def test_missing_ids_raise_naming_the_row(column, dtype):
    ids = ["a", None, "c"] if dtype in ("object", "str") else [1, None, 3]
    table = frame([7, 8, 9], [4, 5, 6]).set_index(pd.Index([10, 20, 30]))
    table[column] = pd.Series(ids, index=table.index, dtype=dtype)
    with pytest.raises(ValueError, match=rf"missing {column} at row 20"):
        Dataset.from_frames(table)


def test_missing_ids_in_feature_tables_and_known_ids_raise():
    items = pd.DataFrame({Columns.Item: ["a", None], Columns.Feature: ["x", "y"]},
                         index=[5, 6])
    with pytest.raises(ValueError, match="item feature table: missing item_id at row 6"):
        Dataset.from_frames(frame([1], ["a"]), item_features=items)
    with pytest.raises(ValueError, match="users: missing id at position 1"):
        Dataset.from_frames(frame([1.0], ["a"]), users=[2.0, np.nan])


def test_missing_columns_and_bad_weights_raise():
    with pytest.raises(ValueError, match="'item_id' column"):
        Dataset.from_frames(pd.DataFrame({Columns.User: [1]}))
    with pytest.raises(ValueError, match="non-finite weight at row 1"):
        Dataset.from_frames(frame([1, 2], [1, 1], weight=[1.0, np.inf]))


def test_input_frame_changes_do_not_reach_the_dataset():
    table = frame([1, 2], [3, 4], weight=[1.0, 2.0], rating=[3.0, 4.0])
    ds = Dataset.from_frames(table)
    table.loc[0, Columns.Weight] = 9.0
    table.loc[0, Columns.Rating] = 9.0
    table.loc[0, Columns.User] = 7
    assert ds.weight[0] == 1.0 and ds.rating[0] == 3.0
    assert list(ds.user_ids) == [1, 2]


def test_lightfm_trains_on_the_matrices():
    # The pandas-3 trap: read-only buffers or *_array types make LightFM fail here.
    from lightfm import LightFM

    inter = frame([0, 0, 1, 2], [0, 1, 1, 2], weight=[1.0, 2.0, 1.0, 1.0])
    items = pd.DataFrame({Columns.Item: [0, 1, 2, 3], Columns.Feature: ["a", "b", "a", "b"]})
    ds = Dataset.from_frames(inter, item_features=items, normalize_features=True)
    model = LightFM(no_components=2, random_state=0)
    model.fit(ds.binary, sample_weight=ds.interactions.tocoo(),
              item_features=ds.item_features, user_features=ds.user_features, epochs=1)
    assert model.item_embeddings.shape == (ds.item_features.shape[1], 2)


# ---------------------------------------------------------------------------- subset
def test_subset_shares_maps_and_features_and_keeps_cold_entities():
    inter = frame([1, 1, 2, 3], ["a", "b", "b", "c"], weight=[1.0, 2.0, 3.0, 4.0])
    items = pd.DataFrame({Columns.Item: ["a", "c", "d"], Columns.Feature: ["x", "y", "x"]})
    users = pd.DataFrame({Columns.User: [3, 4], Columns.Feature: ["old", "new"]})
    ds = Dataset.from_frames(inter, item_features=items, user_features=users)
    for rows in (np.array([True, False, True, False]), np.array([2, 0])):
        part = ds.subset(rows)
        assert part.users is ds.users and part.items is ds.items
        assert part.user_side is ds.user_side and part.item_side is ds.item_side
        assert part.n_interactions == 2
        assert part.interactions.shape == ds.interactions.shape == (4, 4)
        # user 3 and item "c" are cold in the part, user 4 and item "d" everywhere.
        want = np.zeros((4, 4), np.float32)
        want[0, 0], want[1, 1] = 1.0, 3.0
        np.testing.assert_array_equal(part.interactions.toarray(), want)
        np.testing.assert_array_equal(part.item_features.toarray(), ds.item_features.toarray())
        np.testing.assert_array_equal(part.user_features.toarray(), ds.user_features.toarray())
        assert part.describe()["known_users"] == 4
    assert part.weight.flags.writeable is False


def test_subset_checks_its_rows():
    ds = Dataset.from_frames(frame([1, 2], [1, 1]))
    with pytest.raises(ValueError, match="mask has 3 entries for 2"):
        ds.subset(np.array([True, False, True]))
    # Repeated positions would make a repeated pair, silently summed in the matrix.
    with pytest.raises(ValueError, match="repeat"):
        ds.subset(np.array([0, 1, 0]))
    with pytest.raises(ValueError, match="repeat"):
        ds.subset(np.array([1, -1]))


# ---------------------------------------------------------------------------- features
@SETTINGS
@given(case=featured_tables())
def test_feature_matrices_equal_lightfm(case):
    which, identity, normalize, inter, table = case
    kwargs = {f"{which}_features": table}
    ds = Dataset.from_frames(inter, identity_features=identity, normalize_features=normalize,
                             **kwargs)
    got = ds.user_features if which == "user" else ds.item_features
    names = ds.user_feature_names if which == "user" else ds.item_feature_names
    want, want_names = lightfm_features(which, ds, table, identity=identity,
                                        normalize=normalize)
    n = ds.n_users if which == "user" else ds.n_items
    check_csr(got, (n, len(want_names)))
    assert want.shape == got.shape
    # Same column order as LightFM: identity columns in id order, then features by first
    # appearance. Names are strings in recexp; LightFM keys identity columns by the id itself.
    assert list(names) == [str(k) for k in want_names]
    # Dense comparison: whether an explicit 0.0 value is stored is no part of the contract.
    got, want = got.toarray(), want.toarray()
    # Exact even when normalised: both sum |x| per row in float64 in storage order and
    # divide each float32 value by it (recexp mirrors sklearn's l1 normalize, LightFM's).
    np.testing.assert_array_equal(got, want)


def test_features_default_value_is_one_and_repeats_add_up():
    inter = frame([1], ["a"])
    items = pd.DataFrame({Columns.Item: ["a", "a", "b"], Columns.Feature: ["x", "x", "y"]})
    ds = Dataset.from_frames(inter, item_features=items, identity_features=False)
    np.testing.assert_array_equal(ds.item_features.toarray(), [[2.0, 0.0], [0.0, 1.0]])
    assert list(ds.item_feature_names) == ["x", "y"]
    assert ds.describe()["item_features"] == 2


def test_identity_features_first_then_side_features():
    inter = frame([1], ["a"])
    items = pd.DataFrame({Columns.Item: ["b"], Columns.Feature: ["x"],
                          Columns.Value: [4.0]})
    ds = Dataset.from_frames(inter, item_features=items)
    assert list(ds.item_feature_names) == ["a", "b", "x"]
    np.testing.assert_array_equal(ds.item_features.toarray(), [[1, 0, 0], [0, 1, 4]])
    normed = ds.with_options(normalize_features=True)
    np.testing.assert_allclose(normed.item_features.toarray(), [[1, 0, 0], [0, 0.2, 0.8]])
    # No side features: the identity is the only feature, whatever identity_features says.
    np.testing.assert_array_equal(ds.user_features.toarray(), [[1.0]])
    no_id = Dataset.from_frames(inter, identity_features=False)
    np.testing.assert_array_equal(no_id.user_features.toarray(), [[1.0]])


def test_normalising_leaves_featureless_rows_empty():
    # LightFM raises on such a row; recexp keeps it at zero (the entity is then scored by
    # nothing but biases), which is what a cold item with no metadata deserves.
    inter = frame([1, 1], ["a", "b"])
    items = pd.DataFrame({Columns.Item: ["a"], Columns.Feature: ["x"], Columns.Value: [-2.0]})
    ds = Dataset.from_frames(inter, item_features=items, identity_features=False,
                             normalize_features=True)
    np.testing.assert_array_equal(ds.item_features.toarray(), [[-1.0], [0.0]])
    lfm = lightfm_data.Dataset(item_identity_features=False)
    lfm.fit([1], ["a", "b"], item_features=["x"])
    with pytest.raises(ValueError, match="zero norm"):
        lfm.build_item_features([("a", {"x": -2.0})], normalize=True)


def test_normalising_uses_the_l1_norm():
    # Signed values: LightFM (sklearn's l1) divides by sum(|x|), not sum(x), which could be 0.
    inter = frame([1], ["a"])
    items = pd.DataFrame({Columns.Item: ["a", "a"], Columns.Feature: ["x", "y"],
                          Columns.Value: [1.0, -1.0]})
    ds = Dataset.from_frames(inter, item_features=items, identity_features=False,
                             normalize_features=True)
    np.testing.assert_array_equal(ds.item_features.toarray(), [[0.5, -0.5]])


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pd.DataFrame({Columns.Item: ["a"]}), r"needs columns 'item_id' and 'feature'"),
        (pd.DataFrame({"item": ["a"], Columns.Feature: ["x"]}), r"missing \['item_id'\]"),
        (pd.DataFrame({Columns.Item: ["a", "a"], Columns.Feature: ["x", None]}),
         "missing feature name at row 1"),
        (pd.DataFrame({Columns.Item: ["a", "a"], Columns.Feature: ["x", "y"],
                       Columns.Value: [1.0, np.nan]}), "non-finite value at row 1"),
    ],
    ids=["no-feature-column", "no-id-column", "missing-name", "nan-value"],
)
def test_bad_feature_tables_raise(table, message):
    with pytest.raises(ValueError, match=message):
        Dataset.from_frames(frame([1], ["a"]), item_features=table)


# ---------------------------------------------------------------------------- immutability
@pytest.fixture
def rich() -> Dataset:
    inter = frame([1, 2, 2], ["a", "a", "b"], weight=[1.0, 2.0, 3.0], rating=[5.0, 4.0, 3.0],
                  timestamp=pd.to_datetime([1, 2, 3], unit="s"))
    items = pd.DataFrame({Columns.Item: ["a", "b"], Columns.Feature: ["x", "y"]})
    users = pd.DataFrame({Columns.User: [1, 2], Columns.Feature: ["p", "q"]})
    return Dataset.from_frames(inter, item_features=items, user_features=users)


def test_arrays_are_read_only(rich):
    arrays = {"user_idx": rich.user_idx, "item_idx": rich.item_idx, "weight": rich.weight,
              "rating": rich.rating, "timestamp": rich.timestamp, "user_ids": rich.user_ids,
              "item_ids": rich.item_ids, "user_feature_names": rich.user_feature_names,
              "item_feature_names": rich.item_feature_names,
              "item_side.names": rich.item_side.names,
              "item_side.matrix.data": rich.item_side.matrix.data}
    for name, arr in arrays.items():
        assert not arr.flags.writeable, name
    with pytest.raises(ValueError, match="read-only"):
        rich.weight[0] = 5.0


@pytest.mark.parametrize("name", ["interactions", "binary", "ratings", "user_features",
                                  "item_features"])
def test_returned_matrices_are_copies(rich, name):
    first = getattr(rich, name)
    before = first.toarray()
    first.data[:] = -7.0
    first.indices[:] = 0
    again = getattr(rich, name)
    assert again is not first
    np.testing.assert_array_equal(again.toarray(), before)


def test_feature_set_is_frozen(rich):
    with pytest.raises(AttributeError):
        rich.item_side.names = np.array(["z"])
    assert isinstance(rich.item_side, FeatureSet)
    assert rich.item_side.n_features == 2


# ---------------------------------------------------------------------------- digest
def test_digest_is_stable_across_builds_and_processes():
    # Python's str hash is salted per process; the digest must not depend on it.
    code = ("import pandas as pd; from recexp.dataset import Dataset;"
            "print(Dataset.from_frames(pd.DataFrame({'user_id': ['u', 'v'],"
            "'item_id': ['x', 'x'], 'rating': [1.0, 2.0]})).digest())")
    ds = Dataset.from_frames(frame(["u", "v"], ["x", "x"], rating=[1.0, 2.0]))
    again = Dataset.from_frames(frame(["u", "v"], ["x", "x"], rating=[1.0, 2.0]))
    assert ds.digest() == again.digest()
    assert len(ds.digest()) == 16
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": "123"})
    assert other.stdout.strip() == ds.digest()


def test_digest_sees_ratings_weights_and_ids():
    base = Dataset.from_frames(frame(["u", "v"], ["x", "x"], rating=[1.0, 2.0]))
    changed = [
        frame(["u", "v"], ["x", "x"], rating=[1.0, 3.0]),
        frame(["u", "v"], ["x", "x"], rating=[1.0, 2.0], weight=[1.0, 0.5]),
        frame(["u", "w"], ["x", "x"], rating=[1.0, 2.0]),
    ]
    for table in changed:
        assert Dataset.from_frames(table).digest() != base.digest()


# ---------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_describe_movielens_100k(ml100k_dataset):
    summary = ml100k_dataset.describe()
    assert summary["interactions"] == 100_000
    assert (summary["users"], summary["known_users"]) == (943, 943)
    assert (summary["items"], summary["known_items"]) == (1682, 1682)
    assert summary["rating_histogram"] == {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174,
                                           5.0: 21201}
    assert summary["density"] == pytest.approx(100_000 / (943 * 1682))
    assert summary["first"] < summary["last"]


@pytest.mark.realdata
def test_digest_movielens_100k_stable_and_sensitive(ml100k):
    first = ml100k.to_dataset()
    assert first.digest() == ml100k.to_dataset().digest()
    ratings = ml100k.interactions.copy()
    ratings.loc[ratings.index[12_345], Columns.Rating] = (
        1.0 if ratings[Columns.Rating].iloc[12_345] != 1.0 else 2.0)
    assert Dataset.from_frames(ratings).digest() != first.digest()


@pytest.mark.realdata
def test_movielens_100k_genre_features_equal_lightfm(ml100k):
    items = ml100k.items
    genres = (items.assign(**{Columns.Feature: items["genres"].str.split("|")})
              .explode(Columns.Feature)[[Columns.Item, Columns.Feature]])
    genres = genres[genres[Columns.Feature].notna() & (genres[Columns.Feature] != "")]
    genres = genres.assign(**{Columns.Value: np.float32(1.0)})
    ds = ml100k.to_dataset(item_features=genres, normalize_features=True)
    got = ds.item_features
    want, want_names = lightfm_features("item", ds, genres, identity=True, normalize=True)
    assert got.shape == (1682, 1682 + 19)  # every item has a genre, 2 of them "unknown"
    assert list(ds.item_feature_names) == [str(k) for k in want_names]
    np.testing.assert_array_equal(got.toarray(), want.toarray())
