"""Baselines: the shared contract, naive-oracle checks, the no-signal rule, and ML-100K."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recexp.columns import Columns
from recexp.dataset import Dataset
from recexp.models.base import Recommender
from recexp.models.baselines import ALS, BPR, EASE, ItemKNN, MostPopular, PureSVD, Random, UserKNN
from recexp.testing import RecommenderContract


# ---------------------------------------------------------------------- the contract
class TestRandom(RecommenderContract):
    learns_checkerboard = False

    def make_model(self) -> Recommender:
        return Random(random_state=3)


class TestMostPopular(RecommenderContract):
    learns_checkerboard = False

    def make_model(self) -> Recommender:
        return MostPopular()


class TestItemKNN(RecommenderContract):
    def make_model(self) -> Recommender:
        return ItemKNN(neighbours=10, shrink=2.0)


class TestUserKNN(RecommenderContract):
    def make_model(self) -> Recommender:
        return UserKNN(neighbours=10, shrink=2.0)


class TestEASE(RecommenderContract):
    def make_model(self) -> Recommender:
        return EASE(l2=10.0)


class TestPureSVD(RecommenderContract):
    def make_model(self) -> Recommender:
        return PureSVD(factors=4, random_state=5)


class TestALS(RecommenderContract):
    def make_model(self) -> Recommender:
        return ALS(factors=8, iterations=10, num_threads=1, random_state=5)


class TestBPR(RecommenderContract):
    def make_model(self) -> Recommender:
        return BPR(factors=8, learning_rate=0.05, iterations=100, random_state=5)


# ---------------------------------------------------------------------- small known data
def dataset_from_dense(matrix: np.ndarray) -> Dataset:
    """A Dataset of the non-zeros of ``matrix`` (users ``u{r}``, items ``i{c}``, weights)."""
    rows, cols = np.nonzero(matrix)
    frame = pd.DataFrame({Columns.User: [f"u{r}" for r in rows],
                          Columns.Item: [f"i{c}" for c in cols],
                          Columns.Weight: matrix[rows, cols].astype(np.float32)})
    return Dataset.from_frames(frame, users=[f"u{r}" for r in range(matrix.shape[0])],
                               items=[f"i{c}" for c in range(matrix.shape[1])])


def random_weights(n_users: int = 25, n_items: int = 18, *, seed: int = 0,
                   density: float = 0.3) -> np.ndarray:
    """Integer weights 1..5 at random places; every user has at least one interaction."""
    rng = np.random.default_rng(seed)
    dense = np.where(rng.random((n_users, n_items)) < density,
                     rng.integers(1, 6, (n_users, n_items)), 0).astype(np.float32)
    empty = ~dense.any(axis=1)
    dense[empty, rng.integers(0, n_items, empty.sum())] = 1.0
    return dense


def with_no_signal_rule(scores: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The documented rule: rows of users without interactions or without signal -> counts."""
    out = scores.copy()
    no_signal = ~x.any(axis=1) | ~scores.any(axis=1)
    out[no_signal] = (x != 0).sum(axis=0)
    return out


def naive_neighbours(vectors: np.ndarray, neighbours: int, shrink: float) -> np.ndarray:
    """Pruned shrunk cosine, one pair at a time: row a keeps its nearest others, ties to
    the lower index, never pairs without co-occurrence."""
    n = len(vectors)
    norms = np.sqrt((vectors.astype(np.float64) ** 2).sum(axis=1))
    sims = np.zeros((n, n))
    for a in range(n):
        candidates = []
        for b in range(n):
            dot = float(vectors[a].astype(np.float64) @ vectors[b])
            if a != b and dot != 0:
                candidates.append((-dot / (norms[a] * norms[b] + shrink), b))
        for negative, b in sorted(candidates)[:neighbours]:
            sims[a, b] = -negative
    return sims


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize(("neighbours", "shrink"), [(3, 0.0), (5, 4.0), (100, 1.0)])
def test_item_knn_matches_a_naive_computation(binary, neighbours, shrink):
    data = dataset_from_dense(random_weights())
    x = (data.binary if binary else data.interactions).toarray()
    sims = naive_neighbours(x.T, neighbours, shrink)
    expected = with_no_signal_rule(x @ sims.T, x)
    model = ItemKNN(neighbours=neighbours, shrink=shrink, binary=binary).fit(data)
    np.testing.assert_allclose(model.score(np.arange(data.n_users)), expected, rtol=1e-5,
                               atol=1e-6)
    assert (model.similarity_.getnnz(axis=0) <= neighbours).all()


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize(("neighbours", "shrink"), [(2, 0.0), (6, 3.0), (100, 1.0)])
def test_user_knn_matches_a_naive_computation(binary, neighbours, shrink):
    data = dataset_from_dense(random_weights(seed=1))
    x = (data.binary if binary else data.interactions).toarray()
    sims = naive_neighbours(x, neighbours, shrink)
    expected = with_no_signal_rule(sims @ x, x)
    model = UserKNN(neighbours=neighbours, shrink=shrink, binary=binary).fit(data)
    np.testing.assert_allclose(model.score(np.arange(data.n_users)), expected, rtol=1e-5,
                               atol=1e-6)


def test_knn_weights_change_the_answer():
    # Guards the `binary` switch: on weighted data the two must differ.
    data = dataset_from_dense(random_weights(seed=2))
    users = np.arange(data.n_users)
    weighted = ItemKNN(neighbours=5).fit(data).score(users)
    binary = ItemKNN(neighbours=5, binary=True).fit(data).score(users)
    assert not np.allclose(weighted, binary)


@pytest.mark.parametrize("binary", [False, True])
def test_ease_solves_its_objective_column_by_column(binary):
    # Independent oracle: with diag(B) = 0 the objective splits into one ridge regression per
    # item j, of column j on the other columns.
    data = dataset_from_dense(random_weights(n_users=40, n_items=12, seed=3, density=0.4))
    x = (data.binary if binary else data.interactions).toarray().astype(np.float64)
    l2 = 7.0
    n = x.shape[1]
    expected_b = np.zeros((n, n))
    for j in range(n):
        others = np.delete(np.arange(n), j)
        a = x[:, others]
        expected_b[others, j] = np.linalg.solve(a.T @ a + l2 * np.eye(n - 1), a.T @ x[:, j])
    model = EASE(l2=l2, binary=binary).fit(data)
    assert (np.diag(model.weights_) == 0).all()
    np.testing.assert_allclose(model.weights_, expected_b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.score(np.arange(data.n_users)),
                               with_no_signal_rule(x @ expected_b, x), rtol=1e-4, atol=1e-5)


def test_ease_refuses_too_many_items_and_says_why():
    data = dataset_from_dense(random_weights(n_items=30))
    with pytest.raises(ValueError, match=r"30 items exceed max_items=20.*GB"):
        EASE(max_items=20).fit(data)


def test_pure_svd_projects_on_the_top_singular_vectors():
    data = dataset_from_dense(random_weights(n_users=30, n_items=20, seed=4))
    x = data.interactions.toarray().astype(np.float64)
    _, _, vt = np.linalg.svd(x)
    top = vt[:5]
    model = PureSVD(factors=5).fit(data)
    np.testing.assert_allclose(model.score(np.arange(data.n_users)),
                               with_no_signal_rule(x @ top.T @ top, x), rtol=1e-3, atol=1e-4)


def test_most_popular_counts_interactions_not_weights_and_ties_go_first_seen():
    frame = pd.DataFrame({
        Columns.User: ["a", "a", "b", "b", "c", "c", "d"],
        Columns.Item: ["x", "y", "y", "z", "z", "w", "v"],
        Columns.Weight: [1.0, 1.0, 1.0, 9.0, 1.0, 50.0, 1.0],
    })
    data = Dataset.from_frames(frame, items=["cold"])
    model = MostPopular().fit(data)
    recs = model.recommend(["a", "d"], k=6, exclude_seen=False)
    # y and z have 2 interactions each (y appeared first); x, w, v one each; cold none.
    expected = ["y", "z", "x", "w", "v", "cold"]
    assert recs.groupby(Columns.User, sort=False)[Columns.Item].agg(list).tolist() == \
        [expected, expected]
    assert recs[Columns.Score].tolist()[:6] == [2, 2, 1, 1, 1, 0]


def test_random_depends_on_seed_and_user_only():
    data = dataset_from_dense(random_weights())
    users = np.arange(data.n_users, dtype=np.int32)
    first = Random(random_state=1).fit(data).score(users)
    assert ((first >= 0) & (first < 1)).all()
    assert not np.array_equal(first[0], first[1]), "users must get different lists"
    assert not np.array_equal(first, Random(random_state=2).fit(data).score(users))
    np.testing.assert_array_equal(Random(random_state=1).fit(data).score(users[::-1]),
                                  first[::-1])


# ---------------------------------------------------------------------- the no-signal rule
PERSONALISED = [
    ItemKNN(neighbours=5), UserKNN(neighbours=5), EASE(l2=5.0), PureSVD(factors=3),
    ALS(factors=4, iterations=5, num_threads=1), BPR(factors=4, iterations=20),
]


@pytest.mark.parametrize("model", PERSONALISED, ids=lambda m: type(m).__name__)
def test_users_without_interactions_get_the_popularity_order(model):
    dense = random_weights(seed=6)
    frame = dataset_from_dense(dense).to_frame()
    data = Dataset.from_frames(frame, users=["newcomer"], items=["unseen"])
    fresh = type(model).from_params(model.get_params()).fit(data)
    got = fresh.recommend(["newcomer"], k=data.n_items)[Columns.Item].tolist()
    expected = MostPopular().fit(data).recommend(["newcomer"], k=data.n_items)
    assert got == expected[Columns.Item].tolist()


@pytest.mark.parametrize("model", [ItemKNN(), UserKNN(), EASE()], ids=lambda m: type(m).__name__)
def test_users_whose_items_share_nobody_get_the_popularity_order(model):
    # "loner" has interactions, but their one item co-occurs with nothing: an all-zero row.
    frame = dataset_from_dense(random_weights(seed=11)).to_frame()
    loner = pd.DataFrame({Columns.User: ["loner"], Columns.Item: ["niche"],
                          Columns.Weight: [1.0]})
    data = Dataset.from_frames(pd.concat([frame, loner], ignore_index=True))
    fresh = type(model).from_params(model.get_params()).fit(data)
    got = fresh.recommend(["loner"], k=data.n_items)[Columns.Item].tolist()
    expected = MostPopular().fit(data).recommend(["loner"], k=data.n_items)
    assert got == expected[Columns.Item].tolist()


@pytest.mark.parametrize("model", PERSONALISED, ids=lambda m: type(m).__name__)
def test_items_without_interactions_score_zero(model):
    frame = dataset_from_dense(random_weights(seed=7)).to_frame()
    data = Dataset.from_frames(frame, items=["unseen"])
    fresh = type(model).from_params(model.get_params()).fit(data)
    column = data.items.to_internal(["unseen"])[0]
    scores = fresh.score(np.arange(data.n_users, dtype=np.int32))
    assert (scores[:, column] == 0).all()


# ---------------------------------------------------------------------- reproducibility
def test_als_is_bit_identical_across_thread_counts():
    # The class docstring promises it; this guards the promise.
    data = dataset_from_dense(random_weights(n_users=60, n_items=40, seed=8))
    users = np.arange(data.n_users, dtype=np.int32)
    one = ALS(factors=8, iterations=5, num_threads=1).fit(data).score(users)
    two = ALS(factors=8, iterations=5, num_threads=2).fit(data).score(users)
    np.testing.assert_array_equal(one, two)


def test_bpr_ignores_weights():
    dense = random_weights(seed=9)
    weighted = dataset_from_dense(dense)
    flat = dataset_from_dense((dense != 0).astype(np.float32))
    users = np.arange(weighted.n_users, dtype=np.int32)
    np.testing.assert_array_equal(BPR(factors=4, iterations=10).fit(weighted).score(users),
                                  BPR(factors=4, iterations=10).fit(flat).score(users))


def test_seeds_matter():
    data = dataset_from_dense(random_weights(seed=10))
    users = np.arange(data.n_users, dtype=np.int32)
    for make in (lambda s: ALS(factors=4, iterations=3, random_state=s),
                 lambda s: BPR(factors=4, iterations=3, random_state=s)):
        assert not np.array_equal(make(1).fit(data).score(users), make(2).fit(data).score(users))


# ---------------------------------------------------------------------- bad params
@pytest.mark.parametrize(("model", "name"), [
    (Random(random_state=-1), "random_state"),
    (ItemKNN(neighbours=0), "neighbours"),
    (ItemKNN(neighbours=2.5), "neighbours"),
    (UserKNN(shrink=-1.0), "shrink"),
    (EASE(l2=0.0), "l2"),
    (PureSVD(factors=0), "factors"),
    (PureSVD(factors=18), "factors"),
    (ALS(alpha=0.0), "alpha"),
    (ALS(iterations=True), "iterations"),
    (BPR(learning_rate=-0.1), "learning_rate"),
    (BPR(num_threads=-1), "num_threads"),
], ids=lambda v: v if isinstance(v, str) else type(v).__name__)
def test_bad_params_are_named_at_fit(model, name):
    data = dataset_from_dense(random_weights())
    with pytest.raises(ValueError, match=name):
        model.fit(data)


# ---------------------------------------------------------------------- MovieLens 100K
def random_split(data: Dataset, *, test_fraction: float = 0.2,
                 seed: int = 0) -> tuple[Dataset, Dataset]:
    """Interactions split at random: (train, test) sharing the id maps."""
    in_test = np.random.default_rng(seed).random(data.n_interactions) < test_fraction
    return data.subset(~in_test), data.subset(in_test)


def precision_at_k(model: Recommender, train: Dataset, test: Dataset, *, k: int = 10) -> float:
    """Mean over test users of |top-k (train items excluded) & test items| / k."""
    users = train.users.to_external(np.unique(test.user_idx))
    recs = model.recommend(users, k=k)
    truth = test.to_frame()[[Columns.User, Columns.Item]].assign(hit=1)
    hits = recs.merge(truth, on=[Columns.User, Columns.Item], how="left")["hit"].fillna(0)
    return float(hits.sum()) / (k * len(users))


@pytest.fixture(scope="module")
def ml100k_split(ml100k_dataset):
    return random_split(ml100k_dataset)


@pytest.fixture(scope="module")
def random_precision(ml100k_split):
    train, test = ml100k_split
    return precision_at_k(Random().fit(train), train, test)


def test_precision_at_k_counts_hits():
    frame = pd.DataFrame({Columns.User: ["a", "b", "b", "c", "c", "c", "a", "a", "b"],
                          Columns.Item: ["p", "p", "q", "p", "q", "r", "q", "s", "s"]})
    data = Dataset.from_frames(frame)
    in_test = np.arange(9) >= 6
    train, test = data.subset(~in_test), data.subset(in_test)
    # Popularity p > q > r > s. a (saw p) gets q, r: one hit; b (saw p, q) gets r, s: one
    # hit; c has no test items and does not count.
    assert precision_at_k(MostPopular().fit(train), train, test, k=2) == 0.5


@pytest.mark.realdata
def test_random_on_ml100k(ml100k_split, random_precision):
    train, _ = ml100k_split
    recs = Random().fit(train).recommend(train.user_ids[:5], k=10)
    assert len(recs) == 50 and recs[Columns.Item].isin(set(train.item_ids)).all()
    # About the density of test items among unseen ones (20k / 1.5M).
    assert 0.005 < random_precision < 0.03


@pytest.mark.realdata
@pytest.mark.parametrize("model", [MostPopular(), ItemKNN(), UserKNN(), EASE(), PureSVD(),
                                   ALS(), BPR()], ids=lambda m: type(m).__name__)
def test_fits_ml100k_and_beats_random(model, ml100k_split, random_precision):
    train, test = ml100k_split
    model = type(model).from_params(model.get_params()).fit(train)
    users = [1, 943, 500]
    recs = model.recommend(users, k=10)
    assert recs[Columns.User].tolist() == [u for u in users for _ in range(10)]
    assert recs[Columns.Item].isin(set(train.item_ids)).all()
    assert np.issubdtype(recs[Columns.Item].dtype, np.integer), "MovieLens ids are ints"
    precision = precision_at_k(model, train, test)
    assert precision > 2 * random_precision, f"p@10 {precision:.4f} vs random " \
                                              f"{random_precision:.4f}"
