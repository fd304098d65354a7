"""Content-based model: the contract, a naive cosine oracle, cold items, and ML-100K genres."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recexp.columns import Columns
from recexp.dataset import Dataset
from recexp.models.base import Recommender
from recexp.models.baselines import MostPopular, Random
from recexp.models.content import ContentBased
from recexp.testing import RecommenderContract, checkerboard
from tests.models.test_baselines import precision_at_k, random_split


class TestContentBased(RecommenderContract):
    item_features = True

    def make_model(self) -> Recommender:
        return ContentBased()


def small(*, seed: int = 0, n_users: int = 12, n_items: int = 15, n_features: int = 6,
          **options) -> Dataset:
    """Random weighted interactions and random non-negative item features (items i2, i5
    without features, the last item without interactions, user "newcomer" without any)."""
    rng = np.random.default_rng(seed)
    users, items = np.nonzero(rng.random((n_users, n_items - 1)) < 0.35)
    frame = pd.DataFrame({Columns.User: [f"u{u}" for u in users],
                          Columns.Item: [f"i{i}" for i in items],
                          Columns.Weight: rng.integers(1, 4, len(users)).astype(np.float32)})
    values = np.where(rng.random((n_items, n_features)) < 0.4,
                      rng.random((n_items, n_features)), 0.0)
    values[[2, 5]] = 0.0
    fi, ff = np.nonzero(values)
    features = pd.DataFrame({Columns.Item: [f"i{i}" for i in fi],
                             Columns.Feature: [f"f{f}" for f in ff],
                             Columns.Value: values[fi, ff]})
    return Dataset.from_frames(frame, item_features=features,
                               users=[f"u{u}" for u in range(n_users)] + ["newcomer"],
                               items=[f"i{i}" for i in range(n_items)], **options)


def naive_content_scores(data: Dataset, *, binary: bool) -> np.ndarray:
    """Cosine of each user's weighted mean feature vector with each item's, in float64."""
    x = (data.binary if binary else data.interactions).toarray().astype(np.float64)
    f = data.item_side.matrix.toarray().astype(np.float64)
    scores = np.zeros((data.n_users, data.n_items))
    counts = (x != 0).sum(axis=0)
    for u in range(data.n_users):
        if x[u].sum() == 0:
            scores[u] = counts
            continue
        profile = (x[u] @ f) / x[u].sum()
        for i in range(data.n_items):
            norm = np.linalg.norm(profile) * np.linalg.norm(f[i])
            scores[u, i] = profile @ f[i] / norm if norm else 0.0
        if not scores[u].any():
            scores[u] = counts
    return scores


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_a_naive_cosine(binary, seed):
    data = small(seed=seed)
    model = ContentBased(binary=binary).fit(data)
    np.testing.assert_allclose(model.score(np.arange(data.n_users, dtype=np.int32)),
                               naive_content_scores(data, binary=binary), rtol=1e-5, atol=1e-6)


def test_weights_shape_the_profile():
    data = small(seed=3)
    users = np.arange(data.n_users, dtype=np.int32)
    assert not np.allclose(ContentBased().fit(data).score(users),
                           ContentBased(binary=True).fit(data).score(users))


def test_identity_features_are_not_used():
    users = np.arange(13, dtype=np.int32)
    with_identity = ContentBased().fit(small(identity_features=True)).score(users)
    without = ContentBased().fit(small(identity_features=False)).score(users)
    np.testing.assert_array_equal(with_identity, without)


def test_cold_items_are_scored_from_their_features():
    data = checkerboard(10, item_features=True, extra_items=2)
    recs = ContentBased().fit(data).recommend(["u0", "u1"], k=2)
    lists = recs.groupby(Columns.User)[Columns.Item].agg(set).to_dict()
    # cold_i0 is even, cold_i1 odd: each ties with the user's withheld item at cosine 1.
    assert lists == {"u0": {"i0", "cold_i0"}, "u1": {"i1", "cold_i1"}}


def test_users_without_history_get_the_popularity_order():
    data = small(seed=4)
    cold = ["newcomer"]
    got = ContentBased().fit(data).recommend(cold, k=5)
    expected = MostPopular().fit(data).recommend(cold, k=5)
    pd.testing.assert_frame_equal(got[[Columns.User, Columns.Item]],
                                  expected[[Columns.User, Columns.Item]])


def test_needs_item_side_features():
    data = Dataset.from_frames(pd.DataFrame({Columns.User: [1, 2], Columns.Item: [3, 4]}))
    with pytest.raises(ValueError, match="item side features"):
        ContentBased().fit(data)


def test_binary_must_be_json():
    assert ContentBased(binary=True).get_params() == {"binary": True}


# ---------------------------------------------------------------------- MovieLens 100K
def genre_table(items: pd.DataFrame) -> pd.DataFrame:
    """Long (item_id, feature) table of ML-100K genres."""
    genres = items[[Columns.Item, "genres"]].assign(genres=items["genres"].str.split("|"))
    long = genres.explode("genres").rename(columns={"genres": Columns.Feature})
    return long[long[Columns.Feature].notna() & (long[Columns.Feature] != "")]


@pytest.mark.realdata
def test_fits_ml100k_genres_and_beats_random(ml100k):
    data = ml100k.to_dataset(item_features=genre_table(ml100k.items))
    assert data.item_side.n_features == 19
    train, test = random_split(data)
    model = ContentBased().fit(train)
    recs = model.recommend([1, 943], k=10)
    assert recs[Columns.User].tolist() == [1] * 10 + [943] * 10
    assert recs[Columns.Item].isin(set(ml100k.items[Columns.Item])).all()
    precision = precision_at_k(model, train, test)
    random = precision_at_k(Random().fit(train), train, test)
    assert precision > 2 * random, f"p@10 {precision:.4f} vs random {random:.4f}"
