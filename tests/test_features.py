"""Feature builders: known answers per builder, scikit-learn oracles, spec errors, alignment
with the Dataset id maps, and the real MovieLens tables."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import KBinsDiscretizer, MultiLabelBinarizer
from sklearn.utils import murmurhash3_32

import recexp.features
from recexp.columns import Columns
from recexp.features import (
    KINDS,
    MISSING,
    Buckets,
    Hashed,
    MultiHot,
    TfIdf,
    build_features,
    make_builder,
)


def dense(matrix: sp.spmatrix) -> np.ndarray:
    assert sp.issparse(matrix) and matrix.dtype == np.float32
    return matrix.toarray()


def test_module_example_runs():
    result = doctest.testmod(recexp.features, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------------------------------------------------ multi-hot
def test_multi_hot_single_valued_known_answer():
    table = pd.DataFrame({"occupation": ["b", "a", None, "b"]})
    builder = MultiHot("occupation")
    matrix = builder.fit_transform(table)
    assert builder.get_feature_names_out().tolist() == ["occupation=a", "occupation=b"]
    np.testing.assert_array_equal(dense(matrix), [[0, 1], [1, 0], [0, 0], [0, 1]])


def test_multi_hot_multi_valued_known_answer():
    # Repeats count once, whitespace is stripped, "" and None and a lone separator are empty.
    table = pd.DataFrame({"genres": ["Comedy|Drama", "Drama| Drama", "", None, "Action", "|"]})
    builder = MultiHot("genres", sep="|", name="genre")
    matrix = builder.fit_transform(table)
    assert builder.get_feature_names_out().tolist() == [
        "genre=Action", "genre=Comedy", "genre=Drama"]
    np.testing.assert_array_equal(dense(matrix), [
        [0, 1, 1], [0, 0, 1], [0, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0]])


def random_multi_valued(rng: np.random.Generator, n: int, vocabulary: int) -> list[str | None]:
    values = [f"v{k}" for k in range(vocabulary)]
    out: list[str | None] = []
    for _ in range(n):
        size = int(rng.integers(0, 4))
        out.append(None if size == 0 and rng.random() < 0.5
                   else "|".join(rng.choice(values, size=size)))
    return out


def test_multi_hot_matches_a_naive_multilabel_binarizer():
    rng = np.random.default_rng(3)
    column = random_multi_valued(rng, 200, 30)
    matrix = MultiHot("g", sep="|").fit_transform(pd.DataFrame({"g": column}))
    naive = MultiLabelBinarizer()
    expected = naive.fit_transform([set(v.split("|")) - {""} if v else set() for v in column])
    np.testing.assert_array_equal(dense(matrix), expected)


def test_multi_hot_missing_bucket_is_last_column():
    table = pd.DataFrame({"genres": ["A|B", "", None, "B"]})
    builder = MultiHot("genres", sep="|", missing="bucket")
    matrix = builder.fit_transform(table)
    assert builder.get_feature_names_out().tolist() == [
        "genres=A", "genres=B", f"genres={MISSING}"]
    np.testing.assert_array_equal(dense(matrix), [[1, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0]])


def test_multi_hot_min_count_counts_rows_and_rare_is_not_missing():
    # "A|A" is one row with A, so A is in 1 row and falls below min_count=2.
    table = pd.DataFrame({"tags": ["A|A", "B", "B|C", None]})
    builder = MultiHot("tags", sep="|", min_count=2, missing="bucket")
    matrix = builder.fit_transform(table)
    assert builder.get_feature_names_out().tolist() == ["tags=B", f"tags={MISSING}"]
    np.testing.assert_array_equal(dense(matrix), [[0, 0], [1, 0], [1, 0], [0, 1]])


def test_multi_hot_values_compare_as_strings_and_unseen_values_are_ignored():
    builder = MultiHot("code").fit(pd.DataFrame({"code": [3, 1, 3]}))
    assert builder.get_feature_names_out().tolist() == ["code=1", "code=3"]
    new = pd.DataFrame({"code": ["3", "7", None]}, index=[10, 20, 30])
    np.testing.assert_array_equal(dense(builder.transform(new)), [[0, 1], [0, 0], [0, 0]])


def test_refit_forgets_earlier_fit_and_fit_returns_self():
    builder = MultiHot("c")
    assert builder.fit(pd.DataFrame({"c": ["x", "y"]})) is builder
    builder.fit(pd.DataFrame({"c": ["z"]}))
    assert builder.get_feature_names_out().tolist() == ["c=z"]


def test_transform_before_fit_raises():
    with pytest.raises(NotFittedError, match="not fitted"):
        MultiHot("c").transform(pd.DataFrame({"c": ["x"]}))


def test_builders_follow_the_sklearn_contract():
    builder = TfIdf("title", max_features=3, name="t")
    assert builder.get_params()["max_features"] == 3
    copy = clone(builder)
    assert copy is not builder and copy.get_params() == builder.get_params()


# ------------------------------------------------------------------------------ buckets
def test_buckets_fixed_edges_known_answer():
    table = pd.DataFrame({"age": [17, 18, 24.9, 25, 60, None]})
    builder = Buckets("age", edges=[18, 25])
    matrix = builder.fit_transform(table)
    assert builder.get_feature_names_out().tolist() == [
        "age=(-inf,18)", "age=[18,25)", "age=[25,inf)"]
    np.testing.assert_array_equal(dense(matrix), [
        [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 0, 0]])


def test_buckets_missing_as_its_own_bucket():
    table = pd.DataFrame({"year": pd.array([1990, None, 2005], dtype="Int64")})
    builder = Buckets("year", edges=[2000.5], missing="bucket")
    matrix = builder.fit_transform(table)
    assert builder.get_feature_names_out().tolist() == [
        "year=(-inf,2000.5)", "year=[2000.5,inf)", f"year={MISSING}"]
    np.testing.assert_array_equal(dense(matrix), [[1, 0, 0], [0, 0, 1], [0, 1, 0]])


def test_buckets_quantiles_match_kbins_discretizer():
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, 10.0, size=500)
    table = pd.DataFrame({"x": values})
    builder = Buckets("x", n_bins=4)
    matrix = builder.fit_transform(table)
    oracle = KBinsDiscretizer(n_bins=4, encode="onehot-dense", strategy="quantile",
                              subsample=None).fit(values.reshape(-1, 1))
    np.testing.assert_array_equal(dense(matrix), oracle.transform(values.reshape(-1, 1)))
    np.testing.assert_array_equal(builder.edges_, oracle.bin_edges_[0][1:-1])
    names = builder.get_feature_names_out()
    assert names[0].startswith("x=(-inf,") and names[-1].endswith(",inf)")
    # Each row gets exactly one bucket; quartiles hold a quarter of the rows each.
    np.testing.assert_array_equal(matrix.sum(axis=1).A1, 1)
    np.testing.assert_array_equal(matrix.sum(axis=0).A1, 125)


def test_buckets_learned_edges_apply_to_new_rows():
    builder = Buckets("x", n_bins=2, strategy="uniform").fit(pd.DataFrame({"x": [0.0, 10.0]}))
    assert builder.get_feature_names_out().tolist() == ["x=(-inf,5)", "x=[5,inf)"]
    new = pd.DataFrame({"x": [-100.0, 4.99, 5.0, 1e6]})
    np.testing.assert_array_equal(dense(builder.transform(new)), [[1, 0], [1, 0], [0, 1], [0, 1]])


@pytest.mark.parametrize("options, message", [
    ({"edges": [25, 18]}, r"strictly increasing: edges\[0\]=25, edges\[1\]=18"),
    ({"edges": [18, 25], "n_bins": 3}, "exactly one of 'edges'"),
    ({}, "exactly one of 'edges'"),
    ({"edges": []}, "non-empty list"),
    ({"edges": [1, float("nan")]}, r"edges\[1\] must be a finite number"),
    ({"n_bins": 1}, "n_bins must be an integer >= 2"),
    ({"n_bins": 3, "strategy": "quantil"}, "did you mean 'quantile'"),
])
def test_buckets_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        Buckets("age", **options).fit(pd.DataFrame({"age": [1, 2]}))


def test_non_numeric_bucket_value_names_table_column_value_and_entity():
    users = pd.DataFrame({Columns.User: [5, 7], "age": ["31", "thirty"]})
    spec = {"user": [{"kind": "bucket", "column": "age", "edges": [30]}]}
    with pytest.raises(ValueError, match=r"users table, user feature 0 \(bucket on 'age'\): "
                                         r"column 'age' .*'thirty' at user_id 7"):
        build_features(spec, users=users)


# ------------------------------------------------------------------------------ TF-IDF
TITLES = ["Star Wars (1977)", "Star Trek: Generations (1994)", None, "Return of the Jedi (1983)",
          "The Star Maker", "Wars of the Worlds"]


@pytest.mark.parametrize("options", [
    {},
    {"max_features": 4},
    {"min_df": 2},
    {"ngram_range": (1, 2), "sublinear_tf": True},
    {"stop_words": "english", "norm": None},
])
def test_tfidf_equals_scikit_learns_own_output(options):
    ours = {k: v for k, v in options.items() if k != "norm"}
    if "norm" in options:
        ours["normalize"] = options["norm"]
    table = pd.DataFrame({"title": TITLES})
    builder = TfIdf("title", **ours)
    matrix = builder.fit_transform(table)
    oracle = TfidfVectorizer(**options)
    expected = oracle.fit_transform([t or "" for t in TITLES])
    np.testing.assert_allclose(dense(matrix), expected.toarray(), rtol=1e-6, atol=1e-7)
    assert builder.get_feature_names_out().tolist() == [
        f"title:{term}" for term in oracle.get_feature_names_out()]
    assert dense(matrix)[2].sum() == 0  # a missing title is the empty document


def test_tfidf_names_and_yaml_ngram_list():
    builder = make_builder({"kind": "tfidf", "column": "title", "ngram_range": [1, 2],
                            "name": "t"})
    builder.fit(pd.DataFrame({"title": ["star wars", "star trek"]}))
    assert builder.get_feature_names_out().tolist() == [
        "t:star", "t:star trek", "t:star wars", "t:trek", "t:wars"]


# ------------------------------------------------------------------------------ hashing
def test_hash_columns_are_murmurhash3_of_column_and_value():
    # The known answer: FeatureHasher's rule, abs(murmurhash3_32(token, seed=0)) % n_features.
    table = pd.DataFrame({"zip": ["12345", None]})
    builder = Hashed("zip", n_features=2**20, missing="bucket")
    matrix = builder.fit_transform(table)
    assert matrix.shape == (2, 2**20)
    assert abs(murmurhash3_32("zip=12345", seed=0)) % 2**20 == 127822
    assert matrix[0].indices.tolist() == [127822] and matrix[0].data.tolist() == [1.0]
    assert matrix[1].indices.tolist() == [abs(murmurhash3_32(f"zip={MISSING}", seed=0)) % 2**20]
    assert builder._names(np.array([127822])).tolist() == ["hash:127822"]


@pytest.mark.parametrize("signed", [False, True])
def test_hash_matches_a_naive_feature_hasher_over_per_row_token_lists(signed):
    rng = np.random.default_rng(4)
    column_a, column_b = random_multi_valued(rng, 300, 40), random_multi_valued(rng, 300, 5)
    table = pd.DataFrame({"a": column_a, "b": column_b})
    matrix = Hashed(["a", "b"], n_features=64, sep="|", alternate_sign=signed,
                    missing="bucket").fit_transform(table)

    def tokens(column: str, value: str | None) -> set[str]:
        present = set(value.split("|")) - {""} if value else set()
        return {f"{column}={v}" for v in present} or {f"{column}={MISSING}"}

    naive = FeatureHasher(n_features=64, input_type="string", alternate_sign=signed)
    expected = naive.transform([sorted(tokens("a", a) | tokens("b", b))
                                for a, b in zip(column_a, column_b, strict=True)])
    np.testing.assert_array_equal(dense(matrix), expected.toarray())


def test_hash_is_deterministic_across_instances_and_row_order():
    rng = np.random.default_rng(1)
    table = pd.DataFrame({"c1": rng.integers(0, 10_000, 300).astype(str),
                          "c2": rng.integers(0, 50, 300)})
    first = Hashed(["c1", "c2"], n_features=4096).fit_transform(table)
    second = Hashed(["c1", "c2"], n_features=4096).fit_transform(table)
    assert (first != second).nnz == 0
    shuffled = rng.permutation(len(table))
    again = Hashed(["c1", "c2"], n_features=4096).fit_transform(table.iloc[shuffled])
    assert (again != first[shuffled]).nnz == 0


def test_hash_same_value_in_two_columns_hashes_apart_and_collisions_add():
    table = pd.DataFrame({"a": ["x", "x|x"], "b": ["x", None]})
    wide = Hashed(["a", "b"], n_features=2**20, sep="|").fit_transform(table)
    assert wide[0].nnz == 2 and wide[1].nnz == 1  # "a=x" != "b=x"; "x|x" counts once
    # With one column every distinct token collides: the value counts them.
    narrow = Hashed(["a", "b"], n_features=1, sep="|").fit_transform(table)
    np.testing.assert_array_equal(dense(narrow), [[2], [1]])


def test_hash_signed_option_gives_minus_one_for_negative_hashes():
    table = pd.DataFrame({"zip": ["12345"]})  # murmurhash3_32("zip=12345") < 0
    matrix = Hashed("zip", n_features=16, alternate_sign=True).fit_transform(table)
    np.testing.assert_array_equal(matrix.data, [-1.0])


def test_hash_of_an_all_missing_column_is_empty():
    matrix = Hashed("c", n_features=8).fit_transform(pd.DataFrame({"c": [None, ""]}))
    assert matrix.shape == (2, 8) and matrix.nnz == 0


# ------------------------------------------------------------------------------ normalisation
NORM_CASES = [
    (MultiHot, {"column": "g", "sep": "|"}),
    (Hashed, {"column": ["g", "h"], "sep": "|", "n_features": 64}),
    (Buckets, {"column": "n", "edges": [1, 2]}),
    (TfIdf, {"column": "t"}),
]
NORM_TABLE = pd.DataFrame({"g": ["A|B|C", "A", None], "h": ["u", "v", None],
                           "n": [0.5, 3.0, None], "t": ["red fox red", "blue fox", None]})


@pytest.mark.parametrize("cls, options", NORM_CASES)
@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_normalize_gives_unit_rows_and_leaves_empty_rows(cls, options, norm):
    matrix = cls(**options, normalize=norm).fit_transform(NORM_TABLE)
    rows = dense(matrix)
    sizes = np.abs(rows).sum(axis=1) if norm == "l1" else np.sqrt((rows ** 2).sum(axis=1))
    np.testing.assert_allclose(sizes, [1, 1, 0], rtol=1e-6)


def test_multi_hot_l1_known_answer_and_none_keeps_indicators():
    l1 = MultiHot("g", sep="|", normalize="l1").fit_transform(NORM_TABLE)
    np.testing.assert_allclose(dense(l1), [[1 / 3] * 3, [1, 0, 0], [0, 0, 0]], rtol=1e-6)
    for norm in (None, "none"):
        raw = MultiHot("g", sep="|", normalize=norm).fit_transform(NORM_TABLE)
        np.testing.assert_array_equal(dense(raw), [[1, 1, 1], [1, 0, 0], [0, 0, 0]])


# ------------------------------------------------------------------------------ spec
def test_spec_from_yaml_builds_every_kind():
    spec = yaml.safe_load("""
        item:
          - {kind: multi_hot, column: genres, sep: "|", name: genre}
          - {kind: tfidf, column: title, max_features: 500, min_df: 1}
          - {kind: hash, column: [studio], n_features: 1024}
        user:
          - {kind: multi_hot, column: occupation}
          - {kind: bucket, column: age, edges: [18, 25, 35, 45, 55], missing: bucket}
    """)
    items = pd.DataFrame({Columns.Item: [1, 2], "genres": ["A|B", "B"],
                          "title": ["big fish", "big sea"], "studio": ["s1", "s2"]})
    users = pd.DataFrame({Columns.User: ["u1", "u2"], "occupation": ["x", "y"], "age": [20, None]})
    tables = build_features(spec, users=users, items=items)
    assert [KINDS[e["kind"]] for e in spec["item"]] == [MultiHot, TfIdf, Hashed]
    assert tables.user.names.tolist() == [
        "occupation=x", "occupation=y", "age=[18,25)", f"age={MISSING}"]
    assert tables.item.names[:5].tolist() == [
        "genre=A", "genre=B", "title:big", "title:fish", "title:sea"]
    assert all(n.startswith("hash:") for n in tables.item.names[5:])
    assert len(tables.item.names) == 7


def test_long_table_is_entity_major_in_spec_order_with_exact_values():
    items = pd.DataFrame({Columns.Item: [30, 10], "genres": ["B|A", None], "year": [1999, 2010]},
                         index=[7, 8])
    spec = {"item": [{"kind": "multi_hot", "column": "genres", "sep": "|", "normalize": "l1"},
                     {"kind": "bucket", "column": "year", "edges": [2000]}]}
    side = build_features(spec, items=items).item
    expected = pd.DataFrame({
        Columns.Item: [30, 30, 30, 10],
        Columns.Feature: ["genres=A", "genres=B", "year=(-inf,2000)", "year=[2000,inf)"],
        Columns.Value: np.array([0.5, 0.5, 1.0, 1.0], dtype=np.float32)})
    pd.testing.assert_frame_equal(side.long, expected, check_dtype=False)
    assert side.long[Columns.Value].dtype == np.float32
    np.testing.assert_array_equal(side.ids, [30, 10])
    np.testing.assert_array_equal(dense(side.matrix), [[0.5, 0.5, 1, 0], [0, 0, 0, 1]])
    assert side.empty == 0 and side.no_attributes is None and side.cold is None


def test_builder_instances_in_a_spec_are_cloned():
    builder = MultiHot("c")
    tables = build_features({"item": [builder]},
                            items=pd.DataFrame({Columns.Item: [1], "c": ["x"]}))
    assert tables.item.names.tolist() == ["c=x"]
    assert not hasattr(builder, "n_features_")


@pytest.mark.parametrize("spec, error, message", [
    ({"item": [{"kind": "multihot", "column": "genres"}]}, ValueError,
     r"item feature 0: unknown kind 'multihot' \(did you mean 'multi_hot'\?\)"),
    ({"item": [{"kind": "tfidf", "column": "title", "max_feature": 5}]}, ValueError,
     r"item feature 0: tfidf has no option 'max_feature' \(did you mean 'max_features'\?\)"),
    ({"user": [{"kind": "bucket", "column": "age", "edge": [1]}]}, ValueError,
     r"user feature 0: bucket has no option 'edge' \(did you mean 'edges'\?\)"),
    ({"items": []}, ValueError, r"unknown key 'items' \(did you mean 'item'\?\)"),
    ({"item": [{"column": "genres"}]}, ValueError, "has no 'kind'"),
    ({"item": [{"kind": "multi_hot"}]}, ValueError, "multi_hot needs a 'column'"),
    ({"item": ["genres"]}, TypeError, "expected a dict"),
    ({"item": {"kind": "multi_hot", "column": "genres"}}, TypeError, "must be a list"),
    ({"item": [{"kind": "multi_hot", "column": "genres", "missing": "drops"}]}, ValueError,
     r"missing='drops' is not one of 'drop', 'bucket' \(did you mean 'drop'\?\)"),
    ({"item": [{"kind": "hash", "column": "a", "n_features": 0}]}, ValueError,
     "n_features must be an integer >= 1"),
    ({"item": [{"kind": "tfidf", "column": "t", "max_features": True}]}, ValueError,
     "max_features must be an integer"),
    ({"item": [{"kind": "multi_hot", "column": "genres", "normalize": "l3"}]}, ValueError,
     r"normalize='l3' is not one of"),
    ({"item": [{"kind": "hash", "column": "a"}, {"kind": "hash", "column": "b"}]}, ValueError,
     r"item features 0 \(hash on 'a'\) and 1 \(hash on 'b'\) would both name features 'hash:'"),
])
def test_bad_specs_fail_before_reading_data(spec, error, message):
    # No tables at all: every one of these must be caught from the spec alone.
    with pytest.raises(error, match=message):
        build_features(spec)


def test_missing_column_names_table_entry_and_columns_present():
    items = pd.DataFrame({Columns.Item: [1], "title": ["x"], "genres": ["A"]})
    spec = {"item": [{"kind": "multi_hot", "column": "genre", "sep": "|"}]}
    with pytest.raises(ValueError, match=(
            r"items table, item feature 0 \(multi_hot on 'genre'\): no column 'genre' "
            r"\(did you mean 'genres'\?\); columns are \['item_id', 'title', 'genres'\]")):
        build_features(spec, items=items)


@pytest.mark.parametrize("items, message", [
    (pd.DataFrame({"movie": [1], "g": ["A"]}), r"items table needs a 'item_id' column"),
    (pd.DataFrame({Columns.Item: [1, 1], "g": ["A", "B"]}), "item_id 1 has 2 rows"),
    (pd.DataFrame({Columns.Item: [1, None], "g": ["A", "B"]}), "missing item_id at row 1"),
])
def test_bad_attribute_tables(items, message):
    with pytest.raises(ValueError, match=message):
        build_features({"item": [{"kind": "multi_hot", "column": "g"}]}, items=items)


def test_a_side_in_the_spec_needs_its_table():
    with pytest.raises(ValueError, match="user features but no users table"):
        build_features({"user": [{"kind": "multi_hot", "column": "g"}]},
                       items=pd.DataFrame({Columns.Item: [1]}))


# ------------------------------------------------------------------------------ alignment
INTERACTIONS = pd.DataFrame({Columns.User: ["a", "a", "b", "c"],
                             Columns.Item: [1, 2, 2, 3]})
ITEMS = pd.DataFrame({Columns.Item: [3, 2, 4], "genres": ["X|Y", "Y", "X"]})
USERS = pd.DataFrame({Columns.User: ["a", "b", "c", "d"], "age": [20, 40, None, 70]})
SPEC = {"item": [{"kind": "multi_hot", "column": "genres", "sep": "|"}],
        "user": [{"kind": "bucket", "column": "age", "edges": [30, 60]}]}


def feature_rows(ds, which: str) -> dict[object, set[str]]:
    """Each entity's side feature names, read back from the Dataset (identity left out)."""
    ds = ds.with_options(identity_features=False)
    matrix = ds.user_features if which == "user" else ds.item_features
    names = ds.user_feature_names if which == "user" else ds.item_feature_names
    ids = ds.user_ids if which == "user" else ds.item_ids
    return {ids[i]: set(names[matrix[i].indices]) for i in range(matrix.shape[0])}


def test_report_counts_cold_and_unlisted_entities():
    tables = build_features(SPEC, users=USERS, items=ITEMS, interactions=INTERACTIONS)
    assert tables.item.no_attributes.tolist() == [1]  # interacted, not in the items table
    assert tables.item.cold == 1  # item 4: listed, never interacted
    assert tables.user.no_attributes.tolist() == [] and tables.user.cold == 1  # user d
    assert tables.user.empty == 1  # user c: age missing, dropped
    assert tables.summary() == {
        "user.entities": 4, "user.features": 3, "user.empty": 1, "user.no_attributes": 0,
        "user.cold": 1, "item.entities": 3, "item.features": 2, "item.empty": 0,
        "item.no_attributes": 1, "item.cold": 1}


def test_dataset_ids_line_up_with_features_and_cold_items_keep_theirs():
    tables = build_features(SPEC, users=USERS, items=ITEMS, interactions=INTERACTIONS)
    ds = tables.to_dataset(INTERACTIONS, identity_features=True)
    assert ds.n_items == 4 and ds.n_users == 4 and ds.n_interactions == 4
    assert feature_rows(ds, "item") == {
        1: set(), 2: {"genres=Y"}, 3: {"genres=X", "genres=Y"}, 4: {"genres=X"}}
    assert feature_rows(ds, "user") == {
        "a": {"age=(-inf,30)"}, "b": {"age=[30,60)"}, "c": set(), "d": {"age=[60,inf)"}}
    # Cold item 4 has no interactions but its own features.
    assert ds.binary[:, ds.items.to_internal([4])].nnz == 0


def test_identity_on_and_off_shapes_and_the_unlisted_item_warning():
    tables = build_features(SPEC, users=USERS, items=ITEMS, interactions=INTERACTIONS)
    with pytest.warns(UserWarning) as caught:
        off = tables.to_dataset(INTERACTIONS, identity_features=False)
    assert sorted(str(w.message) for w in caught) == [
        "1 items with interactions have no item features (e.g. [1]); with "
        "identity_features=False their feature rows are all zero",
        "1 users with interactions have no user features (e.g. ['c']); with "
        "identity_features=False their feature rows are all zero"]
    assert off.item_features.shape == (4, 2) and off.user_features.shape == (4, 3)
    on = tables.to_dataset(INTERACTIONS, identity_features=True)
    assert on.item_features.shape == (4, 4 + 2) and on.user_features.shape == (4, 4 + 3)
    # With identity on, the unlisted item still has its own indicator and nothing else.
    row = on.item_features[on.items.to_internal([1])[0]]
    assert row.nnz == 1 and on.item_feature_names[row.indices[0]] == "1"


def test_interactions_without_id_columns_are_rejected():
    with pytest.raises(ValueError, match="interactions need a 'user_id' column"):
        build_features(SPEC, users=USERS, items=ITEMS,
                       interactions=pd.DataFrame({Columns.Item: [1]}))


# ------------------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_movielens_100k_genres_and_occupations(ml100k):
    spec = {"item": [{"kind": "multi_hot", "column": "genres", "sep": "|", "name": "genre"}],
            "user": [{"kind": "multi_hot", "column": "occupation"}]}
    tables = build_features(spec, users=ml100k.users, items=ml100k.items,
                            interactions=ml100k.interactions)
    assert tables.item.n_features == 19
    assert set(tables.item.names) >= {"genre=Comedy", "genre=Film-Noir", "genre=unknown"}
    assert tables.item.matrix.shape == (1682, 19)
    assert tables.item.matrix.getnnz(axis=1).min() >= 1  # every movie has a genre
    assert tables.item.empty == 0
    assert tables.user.n_features == 21
    np.testing.assert_array_equal(tables.user.matrix.getnnz(axis=1), 1)
    assert len(tables.item.no_attributes) == 0 and tables.item.cold == 0
    # Toy Story is Animation|Children's|Comedy.
    toy = tables.item.long[tables.item.long[Columns.Item] == 1][Columns.Feature].tolist()
    assert toy == ["genre=Animation", "genre=Children's", "genre=Comedy"]


@pytest.mark.realdata
def test_movielens_100k_dataset_shapes_with_identity_on_and_off(ml100k):
    spec = {"item": [{"kind": "multi_hot", "column": "genres", "sep": "|", "name": "genre"}],
            "user": [{"kind": "multi_hot", "column": "occupation"},
                     {"kind": "bucket", "column": "age", "edges": [18, 25, 35, 45, 55]}]}
    tables = build_features(spec, users=ml100k.users, items=ml100k.items)
    ds = tables.to_dataset(ml100k.interactions, identity_features=True)
    # Ages run 7..73, so all 6 age buckets occur.
    assert ds.user_features.shape == (943, 943 + 21 + 6)
    assert ds.item_features.shape == (1682, 1682 + 19)
    off = tables.to_dataset(ml100k.interactions, identity_features=False)
    assert off.user_features.shape == (943, 27) and off.item_features.shape == (1682, 19)
    np.testing.assert_array_equal(off.user_features.getnnz(axis=1), 2)  # occupation + age
    # User 1 is a 24-year-old technician.
    assert feature_rows(off, "user")[1] == {"occupation=technician", "age=[18,25)"}
    normalized = tables.to_dataset(ml100k.interactions, normalize_features=True)
    np.testing.assert_allclose(normalized.item_features.sum(axis=1).A1, 1, rtol=1e-6)


@pytest.mark.realdata
def test_movielens_latest_small_cold_items_and_tags(data_dir):
    from recexp.datasets import load

    data = load("movielens-latest-small", download=False)
    spec = {"item": [{"kind": "multi_hot", "column": "genres", "sep": "|", "name": "genre",
                      "missing": "bucket"},
                     {"kind": "multi_hot", "column": "tags", "sep": "|", "name": "tag",
                      "min_count": 5},
                     {"kind": "tfidf", "column": "title", "max_features": 300, "min_df": 2}]}
    tables = build_features(spec, items=data.items, interactions=data.interactions)
    rated = data.interactions[Columns.Item].unique()
    assert tables.item.cold == int((~data.items[Columns.Item].isin(rated)).sum()) > 0
    assert len(tables.item.no_attributes) == 0
    # "(no genres listed)" became "": those movies carry the missing bucket.
    no_genre = int((data.items["genres"] == "").sum())
    long = tables.item.long
    assert (long[Columns.Feature] == f"genre={MISSING}").sum() == no_genre > 0
    assert sum(n.startswith("title:") for n in tables.item.names) == 300
    tag_counts = long[long[Columns.Feature].str.startswith("tag=")][Columns.Feature].value_counts()
    assert tag_counts.min() >= 5
    ds = tables.to_dataset(data.interactions)
    assert ds.n_items == len(data.items)
