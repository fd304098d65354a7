"""LightFMRecommender: the shared contract, agreement with LightFM itself, epochs, cold start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recexp.columns import Columns
from recexp.dataset import Dataset
from recexp.models.base import NotFittedError, Recommender
from recexp.models.lightfm import LightFMRecommender
from recexp.testing import RecommenderContract

lightfm = pytest.importorskip("lightfm")


# ---------------------------------------------------------------------- the contract
class TestLightFMContract(RecommenderContract):
    """Pure collaborative filtering (identity features only)."""

    def make_model(self) -> LightFMRecommender:
        # 8 components, lr 0.05, 10 epochs solves the checkerboard for every seed 0..9 tried.
        return LightFMRecommender(no_components=8, epochs=10, use_features="none",
                                  random_state=3)


class TestLightFMHybridContract(RecommenderContract):
    """Item side features (parity) on top of the identity features."""

    item_features = True

    def make_model(self) -> LightFMRecommender:
        return LightFMRecommender(no_components=8, epochs=10, use_features="item",
                                  random_state=5)


class TestLightFMBprAdadeltaContract(RecommenderContract):
    def make_model(self) -> LightFMRecommender:
        return LightFMRecommender(no_components=8, epochs=10, loss="bpr",
                                  learning_schedule="adadelta", random_state=1)


# ---------------------------------------------------------------------- test data
def random_dataset(*, n_users: int = 60, n_items: int = 80, n_per_user: int = 8,
                   identity: bool = True, weights: bool = False, cold_users: int = 0,
                   cold_items: int = 0, seed: int = 0) -> Dataset:
    """Random interactions with random user and item side features (and cold ids)."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), n_per_user)
    items = np.concatenate([rng.choice(n_items, n_per_user, replace=False)
                            for _ in range(n_users)])
    frame = pd.DataFrame({Columns.User: users, Columns.Item: items})
    if weights:
        frame[Columns.Weight] = rng.integers(1, 6, len(frame)).astype(np.float32)
    all_users = np.arange(n_users + cold_users)
    all_items = np.arange(n_items + cold_items)

    def features(ids: np.ndarray, key: str, n_features: int) -> pd.DataFrame:
        owner = np.repeat(ids, 3)
        names = rng.integers(0, n_features, len(owner))
        table = pd.DataFrame({key: owner, Columns.Feature: [f"f{x}" for x in names],
                              Columns.Value: rng.uniform(0.5, 1.5, len(owner))})
        return table.drop_duplicates([key, Columns.Feature])

    return Dataset.from_frames(frame, user_features=features(all_users, Columns.User, 7),
                               item_features=features(all_items, Columns.Item, 11),
                               users=all_users, items=all_items, identity_features=identity)


def warm_items(data: Dataset) -> np.ndarray:
    """Internal indices of items with training interactions (cold ones drop identities)."""
    return np.flatnonzero(np.bincount(data.item_idx, minlength=data.n_items)).astype(np.int32)


def pairs_scores(model: LightFMRecommender, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    return model.score(users)[np.arange(len(users)), items]


# ---------------------------------------------------------------------- agreement with LightFM
@pytest.mark.parametrize("use_features", ["both", "user", "item", "none"])
@pytest.mark.parametrize("identity", [True, False])
def test_scores_equal_lightfms_own_predict(use_features: str, identity: bool) -> None:
    data = random_dataset(identity=identity)
    model = LightFMRecommender(no_components=12, epochs=5, use_features=use_features).fit(data)
    rng = np.random.default_rng(1)
    users = rng.integers(0, data.n_users, 500).astype(np.int32)
    items = rng.choice(warm_items(data), 500)
    inputs = model.training_inputs(data)
    expected = model.lightfm_.predict(users, items, user_features=inputs["user_features"],
                                      item_features=inputs["item_features"])
    np.testing.assert_allclose(pairs_scores(model, users, items), expected, rtol=1e-5,
                               atol=1e-5)


def test_fit_trains_exactly_like_a_raw_lightfm_fit() -> None:
    # Epoch-by-epoch fit_partial consumes the random stream like LightFM.fit(epochs=n):
    # with one thread the learned arrays are bit-identical.
    data = random_dataset(weights=True)
    model = LightFMRecommender(no_components=10, epochs=4, loss="bpr", random_state=11).fit(data)
    inputs = model.training_inputs(data)
    raw = lightfm.LightFM(no_components=10, loss="bpr", random_state=11)
    raw.fit(inputs["interactions"], user_features=inputs["user_features"],
            item_features=inputs["item_features"], sample_weight=inputs["sample_weight"],
            epochs=4, num_threads=1)
    for name in ("user_embeddings", "user_biases", "item_embeddings", "item_biases"):
        np.testing.assert_array_equal(getattr(model.lightfm_, name), getattr(raw, name), name)


def test_from_lightfm_wraps_a_model_trained_elsewhere() -> None:
    data = random_dataset()
    raw = lightfm.LightFM(no_components=6, loss="warp", random_state=2)
    raw.fit(sp.coo_matrix(data.binary), item_features=data.item_features, epochs=3)
    model = LightFMRecommender.from_lightfm(raw, data, use_features="item")
    assert model.is_fitted and model.no_components == 6 and model.random_state == 2
    users = np.arange(data.n_users, dtype=np.int32)
    items = warm_items(data)
    uu, ii = np.repeat(users, len(items)), np.tile(items, len(users))
    expected = raw.predict(uu, ii, item_features=data.item_features).reshape(len(users), -1)
    np.testing.assert_allclose(model.score(users)[:, items], expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(NotFittedError):
        LightFMRecommender.from_lightfm(lightfm.LightFM(), data)


# ---------------------------------------------------------------------- epochs and callbacks
def test_callback_is_called_after_every_epoch_and_can_score() -> None:
    data = random_dataset()
    calls: list[tuple[int, float]] = []

    def record(epoch: int, model: Recommender) -> None:
        # Scoring inside the callback must see the current epoch's embeddings.
        calls.append((epoch, float(model.score(np.array([0], np.int32)).sum())))

    model = LightFMRecommender(no_components=8, epochs=6).fit(data, callback=record)
    assert [epoch for epoch, _ in calls] == [1, 2, 3, 4, 5, 6]
    assert len({total for _, total in calls}) == 6, "scores did not change between epochs"
    assert model.epochs_trained_ == 6
    assert calls[-1][1] == pytest.approx(float(model.score(np.array([0], np.int32)).sum()))


def test_callback_returning_true_stops_and_equals_a_shorter_run() -> None:
    data = random_dataset()
    seen: list[int] = []

    def stop_at_three(epoch: int, model: Recommender) -> bool:
        seen.append(epoch)
        return epoch == 3

    stopped = LightFMRecommender(no_components=8, epochs=10).fit(data, callback=stop_at_three)
    short = LightFMRecommender(no_components=8, epochs=3).fit(data)
    assert seen == [1, 2, 3]
    assert stopped.epochs_trained_ == 3
    everyone = np.arange(data.n_users, dtype=np.int32)
    np.testing.assert_array_equal(stopped.score(everyone), short.score(everyone))


def test_a_failing_callback_leaves_the_model_unfitted() -> None:
    def boom(epoch: int, model: Recommender) -> None:
        raise RuntimeError("callback failed")

    model = LightFMRecommender(epochs=3)
    with pytest.raises(RuntimeError, match="callback failed"):
        model.fit(random_dataset(), callback=boom)
    assert not model.is_fitted


# ---------------------------------------------------------------------- determinism, warm start
@pytest.mark.parametrize("loss", ["warp", "bpr", "warp-kos", "logistic"])
@pytest.mark.parametrize("schedule", ["adagrad", "adadelta"])
def test_every_loss_and_schedule_refits_bit_identically(loss: str, schedule: str) -> None:
    data = random_dataset()
    other = random_dataset(seed=9, n_users=40)
    params = dict(no_components=8, epochs=3, loss=loss, learning_schedule=schedule,
                  num_threads=1, random_state=4, max_sampled=5, k=2, n=4)
    first = LightFMRecommender(**params).fit(data)
    # Warm start forgetting: an earlier fit on other data leaves no trace.
    second = LightFMRecommender(**params).fit(other).fit(data)
    everyone = np.arange(data.n_users, dtype=np.int32)
    scores = first.score(everyone)
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(second.score(everyone), scores)
    different_seed = LightFMRecommender(**{**params, "random_state": 5}).fit(data)
    assert not np.array_equal(different_seed.score(everyone), scores)


def test_two_threads_train_a_usable_model() -> None:
    data = random_dataset(n_users=200, n_items=150)
    model = LightFMRecommender(no_components=8, epochs=3, num_threads=2).fit(data)
    assert np.isfinite(model.score(np.arange(10, dtype=np.int32))).all()


# ---------------------------------------------------------------------- weights
def test_sample_weights_are_used_only_when_asked() -> None:
    data = random_dataset(weights=True)
    with_w = LightFMRecommender(no_components=8, epochs=3, loss="bpr").fit(data)
    without = LightFMRecommender(no_components=8, epochs=3, loss="bpr",
                                 use_weights=False).fit(data)
    assert with_w.training_inputs(data)["sample_weight"] is not None
    assert without.training_inputs(data)["sample_weight"] is None
    everyone = np.arange(data.n_users, dtype=np.int32)
    assert not np.allclose(with_w.score(everyone), without.score(everyone))
    # Unit weights give LightFM nothing to weigh: the same model as without weights.
    unit = random_dataset(weights=False)
    a = LightFMRecommender(no_components=8, epochs=3).fit(unit)
    b = LightFMRecommender(no_components=8, epochs=3, use_weights=False).fit(unit)
    np.testing.assert_array_equal(a.score(everyone), b.score(everyone))


def test_warp_kos_with_weights_says_to_turn_them_off() -> None:
    data = random_dataset(weights=True)
    with pytest.raises(ValueError, match="use_weights=False"):
        LightFMRecommender(loss="warp-kos", epochs=1).fit(data)
    LightFMRecommender(loss="warp-kos", epochs=1, use_weights=False).fit(data)


def test_negative_weights_are_refused_naming_the_pair() -> None:
    frame = pd.DataFrame({Columns.User: ["a", "a", "b"], Columns.Item: ["x", "y", "x"],
                          Columns.Weight: [1.0, -2.0, 1.0]})
    with pytest.raises(ValueError, match=r"-2\.0.*'a'.*'y'"):
        LightFMRecommender(epochs=1).fit(Dataset.from_frames(frame))


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(("param", "value", "message"), [
    ("loss", "hinge", "loss='hinge'"),
    ("learning_schedule", "sgd", "learning_schedule"),
    ("use_features", "items", "use_features='items'"),
    ("no_components", 0, "no_components=0"),
    ("no_components", 8.5, "no_components=8.5"),
    ("epochs", 0, "epochs=0"),
    ("rho", 1.0, "rho=1.0"),
    ("learning_rate", 0.0, "learning_rate=0.0"),
    ("item_alpha", -1e-3, "item_alpha"),
    ("max_sampled", 0, "max_sampled=0"),
    ("num_threads", 0, "num_threads=0"),
    ("random_state", "7", "random_state='7'"),
    ("use_weights", 1, "use_weights=1"),
])
def test_bad_params_raise_value_error_naming_them(param: str, value: object,
                                                  message: str) -> None:
    model = LightFMRecommender(**{param: value})
    with pytest.raises(ValueError, match=message):
        model.check_params()  # what config checks call, before any data is read
    with pytest.raises(ValueError, match=message):
        model.fit(random_dataset(n_users=5, n_items=10, n_per_user=2))
    assert not model.is_fitted


# ---------------------------------------------------------------------- pandas 3 traps
def test_fits_a_dataset_built_from_read_only_arrays() -> None:
    # Regression: LightFM fails with "buffer source array is read-only" on the read-only
    # arrays pandas 3 hands out; recexp copies before calling it.
    users = np.repeat(np.arange(20), 3)
    items = (users * 7 + np.tile(np.arange(3), 20)) % 15
    weight = np.ones(len(users), np.float32)
    for arr in (users, items, weight):
        arr.flags.writeable = False
    frame = pd.DataFrame({Columns.User: users, Columns.Item: items, Columns.Weight: weight})
    data = Dataset.from_frames(frame)
    model = LightFMRecommender(no_components=4, epochs=2).fit(data)
    inputs = model.training_inputs(data)
    assert type(inputs["interactions"]) is sp.coo_matrix  # not scipy's coo_array
    assert inputs["interactions"].row.flags.writeable
    assert np.isfinite(model.score(np.arange(20, dtype=np.int32))).all()


# ---------------------------------------------------------------------- cold users and items
def test_cold_rows_are_scored_from_side_features_alone() -> None:
    data = random_dataset(cold_users=3, cold_items=4, identity=True)
    model = LightFMRecommender(no_components=8, epochs=3, use_features="both").fit(data)
    inputs = model.training_inputs(data)
    cold_u = data.users.to_internal(np.arange(60, 63))
    cold_i = data.items.to_internal(np.arange(80, 84))
    uf, itf = inputs["user_features"].tolil(), inputs["item_features"].tolil()
    for u in cold_u:
        uf[u, u] = 0.0  # the identity feature of a cold user: random initialisation only
    for i in cold_i:
        itf[i, i] = 0.0
    users = np.repeat(cold_u, len(cold_i)).astype(np.int32)
    items = np.tile(cold_i, len(cold_u)).astype(np.int32)
    expected = model.lightfm_.predict(users, items, user_features=uf.tocsr(),
                                      item_features=itf.tocsr())
    np.testing.assert_allclose(pairs_scores(model, users, items), expected, rtol=1e-5,
                               atol=1e-5)
    # Using the identity rows instead gives other scores: the drop is real.
    raw = model.lightfm_.predict(users, items, user_features=inputs["user_features"],
                                 item_features=inputs["item_features"])
    assert not np.allclose(raw, expected, atol=1e-4)


def test_without_side_features_cold_items_tie() -> None:
    data = random_dataset(cold_items=5)
    model = LightFMRecommender(no_components=8, epochs=3, use_features="none").fit(data)
    cold_i = data.items.to_internal(np.arange(80, 85))
    scores = model.score(np.arange(data.n_users, dtype=np.int32))[:, cold_i]
    assert (scores == scores[:, :1]).all()


# ---------------------------------------------------------------------- save and load
def test_save_load_keeps_representations_and_a_working_lightfm(tmp_path) -> None:
    data = random_dataset(cold_users=2, cold_items=3, weights=True)
    model = LightFMRecommender(no_components=8, epochs=3, use_features="both").fit(data)
    loaded = Recommender.load(model.save(tmp_path / "m"))
    assert isinstance(loaded, LightFMRecommender)
    everyone = np.arange(data.n_users, dtype=np.int32)
    np.testing.assert_array_equal(loaded.score(everyone), model.score(everyone))
    assert loaded.epochs_trained_ == 3
    inputs = model.training_inputs(data)
    users, items = np.zeros(10, np.int32), np.arange(10, dtype=np.int32)
    np.testing.assert_array_equal(
        loaded.lightfm_.predict(users, items, user_features=inputs["user_features"],
                                item_features=inputs["item_features"]),
        model.lightfm_.predict(users, items, user_features=inputs["user_features"],
                               item_features=inputs["item_features"]))


# ---------------------------------------------------------------------- real data
def genre_table(items: pd.DataFrame) -> pd.DataFrame:
    """Long table ``(item_id, feature, value)`` of MovieLens genres, by recexp.features."""
    from recexp.features import build_features

    spec = {"item": [{"kind": "multi_hot", "column": "genres", "sep": "|", "name": "genre"}]}
    return build_features(spec, items=items).item.long


def cold_item_auc(scores: np.ndarray, positives: list[np.ndarray]) -> float:
    """Mean over users of the ROC AUC of their held-out items among all cold items.

    ``scores``: float32 [n_users, n_cold]; ``positives[u]``: column indices of user ``u``'s
    held-out cold items. Ties count one half (rank-based, as sklearn's roc_auc_score).
    """
    from scipy.stats import rankdata

    aucs = []
    for row, pos in zip(scores, positives, strict=True):
        n_pos, n_neg = len(pos), len(row) - len(pos)
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = rankdata(row)
        aucs.append((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs))


def test_cold_item_auc_matches_sklearn() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, (6, 30)).astype(np.float32)  # many ties on purpose
    positives = [rng.choice(30, 4, replace=False) for _ in range(6)]
    expected = []
    for row, pos in zip(scores, positives, strict=True):
        labels = np.zeros(30)
        labels[pos] = 1
        expected.append(roc_auc_score(labels, row))
    assert cold_item_auc(scores, positives) == pytest.approx(np.mean(expected))


@pytest.mark.realdata
def test_hybrid_ranks_cold_items_pure_cf_cannot(ml100k) -> None:
    """Cold-item split of ML-100K: 20% of the movies lose all their training ratings.

    Mean per-user AUC of the held-out movies among all cold movies. Figures (model seed 0,
    10 epochs WARP, 32 components; split seeds 0 / 1 / 2): hybrid 0.683 / 0.654 / 0.717;
    the same hybrid scored as LightFM's own representations do, keeping the cold items'
    identity embeddings, 0.622 / 0.603 / 0.645; pure CF 0.500 (every cold item ties), or
    0.497 / 0.464 / 0.511 as LightFM scores it.
    """
    from recexp.split import ColdStartSplitter

    # Identity features stay on: warm movies keep their own embedding, cold ones are scored
    # from genres alone because the model drops a cold item's identity feature.
    data = ml100k.to_dataset(item_features=genre_table(ml100k.items), identity_features=True)
    split = ColdStartSplitter(user_ratio=0.0, item_ratio=0.2, warm_ratio=0.0,
                              seed=0).split(data)
    assert split.segments["cold_item"].all()
    train, test = split.train, split.test
    cold_idx = np.flatnonzero(np.bincount(train.item_idx, minlength=data.n_items) == 0)
    assert len(cold_idx) > 300
    column = np.full(data.n_items, -1)
    column[cold_idx] = np.arange(len(cold_idx))
    users = np.unique(test.user_idx)
    by_user = pd.Series(column[test.item_idx]).groupby(test.user_idx)
    positives = [by_user.get_group(u).to_numpy() for u in users]

    def fit(use_features: str) -> LightFMRecommender:
        return LightFMRecommender(no_components=32, epochs=10, loss="warp",
                                  use_features=use_features, random_state=0).fit(train)

    hybrid_model, pure_model = fit("item"), fit("none")
    hybrid = cold_item_auc(hybrid_model.score(users)[:, cold_idx], positives)
    pure = cold_item_auc(pure_model.score(users)[:, cold_idx], positives)
    # Not an artefact of dropping identities: LightFM's own scores of the pure CF model
    # (cold items' identity embeddings kept) are no better than chance either.
    lfm = pure_model.lightfm_
    own = cold_item_auc(lfm.user_embeddings[users] @ lfm.item_embeddings[cold_idx].T
                        + lfm.user_biases[users, None] + lfm.item_biases[None, cold_idx],
                        positives)
    print(f"cold-item AUC: hybrid {hybrid:.3f}, pure CF {pure:.3f}, pure CF as LightFM "
          f"scores it {own:.3f}")
    assert hybrid > 0.65
    assert pure == 0.5
    assert abs(own - 0.5) < 0.06
    assert hybrid - max(pure, own) > 0.1


@pytest.mark.realdata
def test_scores_equal_predict_on_movielens_with_genres(ml100k) -> None:
    data = ml100k.to_dataset(item_features=genre_table(ml100k.items))
    model = LightFMRecommender(no_components=16, epochs=2, use_features="item").fit(data)
    rng = np.random.default_rng(0)
    users = rng.integers(0, data.n_users, 2000).astype(np.int32)
    items = rng.integers(0, data.n_items, 2000).astype(np.int32)
    expected = model.lightfm_.predict(users, items, item_features=data.item_features)
    np.testing.assert_allclose(pairs_scores(model, users, items), expected, rtol=1e-5,
                               atol=1e-5)
