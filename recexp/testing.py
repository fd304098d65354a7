"""Shared test contract for recommenders, and test data whose right answer is known.

Every model's tests subclass :class:`RecommenderContract` and say how to build the model:

>>> from recexp.models.baselines import ItemKNN
>>> class TestItemKNN(RecommenderContract):          # doctest: +SKIP
...     def make_model(self):
...         return ItemKNN(neighbours=20)

The contract then checks what every :class:`~recexp.models.base.Recommender` promises:
the scikit-learn estimator rules (params round trip, ``fit`` forgets, same seed same model),
the scoring and recommending shapes and types, seen-item exclusion, unknown users, save/load
without pickle, and that the model learns the :func:`checkerboard` (even users like even
items, odd users odd items).

This module imports pytest: it is for test suites, not for library code.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from recexp.columns import Columns
from recexp.dataset import Dataset
from recexp.models.base import NotFittedError, Recommender, get_model_class

__all__ = ["RecommenderContract", "checkerboard", "checkerboard_parity"]


def checkerboard(n_users: int = 50, n_items: int | None = None, *, item_features: bool = False,
                 extra_users: int = 0, extra_items: int = 0, seed: int = 0) -> Dataset:
    """A Dataset whose right recommendations are known by construction.

    User ``"u{i}"`` has interacted with every item ``"i{j}"`` with ``j % 2 == i % 2``
    except ``"i{i}"``: even users like even items, odd users odd items, and each user's one
    withheld item of their own parity is the item every similar user liked. A model that
    learns anything from co-occurrence ranks ``"i{i}"`` first for ``"u{i}"`` once seen items
    are excluded (benfred/implicit's test of the same name).

    Ids are strings and the interactions are shuffled, so internal indices (order of first
    appearance) differ from the numbers in the ids: a model that leaks an internal index
    where an external id belongs fails the check.

    Parameters
    ----------
    n_users : int
        Number of users with interactions (at least 4).
    n_items : int, optional
        Number of items with interactions; defaults to ``n_users`` and may not be smaller
        (every user needs a withheld item).
    item_features : bool
        Also give items side features ``"even"``/``"odd"`` (by parity) and ``"any"`` (every
        item), for content-based and hybrid models.
    extra_users, extra_items : int
        Users ``"cold_u{k}"`` and items ``"cold_i{k}"`` known to the Dataset but without
        interactions (cold items get features ``"any"`` and their parity by ``k``).
    seed : int
        Seed of the shuffle of the interactions.

    Returns
    -------
    Dataset
        ``weight`` 1.0 for every interaction.
    """
    n_items = n_users if n_items is None else n_items
    if n_users < 4:
        raise ValueError(f"checkerboard needs n_users >= 4, got {n_users}")
    if n_items < n_users:
        raise ValueError(f"checkerboard needs n_items >= n_users (each user withholds item "
                         f"i{{u}}), got n_items={n_items} < n_users={n_users}")
    users, items = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij")
    liked = (users % 2 == items % 2) & (users != items)
    u, i = users[liked], items[liked]
    order = np.random.default_rng(seed).permutation(len(u))
    frame = pd.DataFrame({Columns.User: [f"u{x}" for x in u[order]],
                          Columns.Item: [f"i{x}" for x in i[order]]})
    cold_users = [f"cold_u{k}" for k in range(extra_users)]
    cold_items = [f"cold_i{k}" for k in range(extra_items)]
    features = None
    if item_features:
        ids = [f"i{j}" for j in range(n_items)] + cold_items
        parity = [j % 2 for j in range(n_items)] + [k % 2 for k in range(extra_items)]
        features = pd.DataFrame({
            Columns.Item: ids + ids,
            Columns.Feature: [("odd" if p else "even") for p in parity] + ["any"] * len(ids),
        })
    return Dataset.from_frames(frame, item_features=features, users=cold_users or None,
                               items=cold_items or None)


def checkerboard_parity(ids: np.ndarray | pd.Series) -> np.ndarray:
    """Parity (0 even, 1 odd) of checkerboard ids ``"u{i}"``/``"i{j}"``/``"cold_i{k}"``.

    Returns
    -------
    np.int64 array of shape [len(ids)]
    """
    numbers = pd.Series(np.asarray(ids, dtype=object)).str.extract(r"(\d+)$", expand=False)
    if numbers.isna().any():
        bad = np.asarray(ids, dtype=object)[numbers.isna().to_numpy()][0]
        raise ValueError(f"not a checkerboard id: {bad!r}")
    return numbers.astype(np.int64).to_numpy() % 2


class RecommenderContract:
    """Pytest mixin: the checks every recommender must pass.

    Subclass it in a ``Test*`` class and implement :meth:`make_model`. Class attributes
    switch checks that do not apply to a model:

    Attributes
    ----------
    supports_save : bool
        The model implements ``_state``/``_set_state``; save/load is checked to give
        identical scores and recommendations.
    deterministic : bool
        Two fits on the same data with the same seed give bit-identical scores (for example
        single-threaded training). When False, refits are only checked for shapes.
    learns_checkerboard : bool
        The model personalises from interactions (or item features) and must solve the
        :func:`checkerboard`. False for non-personalised models (random, most popular).
    item_features : bool
        Build the test data with item side features (content-based and hybrid models).
    n_users : int
        Size of the checkerboard used by the checks.
    """

    supports_save: ClassVar[bool] = True
    deterministic: ClassVar[bool] = True
    learns_checkerboard: ClassVar[bool] = True
    item_features: ClassVar[bool] = False
    n_users: ClassVar[int] = 30

    # ------------------------------------------------------------------ hooks
    def make_model(self) -> Recommender:
        """A new, unfitted model with a fixed seed (override this)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_model()")

    def make_dataset(self, **kwargs: Any) -> Dataset:
        """The training data of the checks: :func:`checkerboard` with ``kwargs``.

        The checks pass ``n_users``, ``n_items``, ``seed``, ``extra_users`` and
        ``extra_items``; an override must accept them and keep the checkerboard's answers
        (user ``"u{i}"``'s withheld item is ``"i{i}"``).
        """
        kwargs.setdefault("n_users", self.n_users)
        kwargs.setdefault("item_features", self.item_features)
        return checkerboard(**kwargs)

    # ------------------------------------------------------------------ fixtures
    # Class-scoped so each model is fitted once per test class; pytest wants those fixtures
    # as classmethods, and the hooks are instance methods, hence ``cls()``.
    @pytest.fixture(scope="class")
    @classmethod
    def train(cls) -> Dataset:
        return cls().make_dataset()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, train: Dataset) -> Recommender:
        return cls().make_model().fit(train)

    def _all_scores(self, model: Recommender, data: Dataset) -> np.ndarray:
        return model.score(np.arange(data.n_users, dtype=np.int32))

    # ------------------------------------------------------------------ params
    def test_is_registered_by_name(self) -> None:
        model = self.make_model()
        assert get_model_class(model.name) is type(model)

    def test_params_are_json_and_round_trip(self) -> None:
        model = self.make_model()
        signature = inspect.signature(type(model).__init__)
        arguments = [p for name, p in signature.parameters.items() if name != "self"]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in arguments), \
            "constructor arguments must be keyword-only"
        assert {p.name for p in arguments} == set(model.param_names), \
            "param_names must list exactly the constructor's arguments"
        params = model.get_params()
        assert set(params) == set(model.param_names)
        assert json.loads(json.dumps(params)) == params, "params must be JSON values"
        again = type(model).from_params(params)
        assert again.get_params() == params
        assert not again.is_fitted

    def test_unknown_param_is_an_error_naming_it(self) -> None:
        model = self.make_model()
        with pytest.raises(ValueError, match="no_such_param"):
            type(model).from_params({**model.get_params(), "no_such_param": 1})

    def test_use_before_fit_raises(self) -> None:
        model = self.make_model()
        assert not model.is_fitted
        with pytest.raises(NotFittedError):
            model.score(np.array([0], dtype=np.int32))
        with pytest.raises(NotFittedError):
            model.recommend(["u0"], k=3)

    # ------------------------------------------------------------------ fitting
    def test_fit_returns_self(self, train: Dataset) -> None:
        model = self.make_model()
        assert model.fit(train) is model
        assert model.is_fitted

    def test_same_data_same_seed_same_scores(self, train: Dataset, fitted: Recommender) -> None:
        again = self.make_model().fit(train)
        refit = self.make_model().fit(train).fit(train)
        first = self._all_scores(fitted, train)
        for other in (again, refit):
            scores = self._all_scores(other, train)
            assert scores.shape == first.shape
            if self.deterministic:
                np.testing.assert_array_equal(scores, first)

    def test_fit_forgets_an_earlier_fit(self, train: Dataset) -> None:
        other = self.make_dataset(n_users=self.n_users - 6, n_items=self.n_users + 4, seed=7)
        model = self.make_model().fit(other).fit(train)
        fresh = self.make_model().fit(train)
        np.testing.assert_array_equal(model.users_.ids, train.user_ids)
        np.testing.assert_array_equal(model.items_.ids, train.item_ids)
        scores = self._all_scores(model, train)
        assert scores.shape == (train.n_users, train.n_items)
        if self.deterministic:
            np.testing.assert_array_equal(scores, self._all_scores(fresh, train))

    # ------------------------------------------------------------------ scoring
    def test_score_is_float32_batch_by_items(self, train: Dataset, fitted: Recommender) -> None:
        users = np.array([3, 0, 5], dtype=np.int32)
        scores = fitted.score(users)
        assert scores.dtype == np.float32
        assert scores.shape == (3, train.n_items)
        assert scores.flags.c_contiguous
        assert np.isfinite(scores).all(), "scores must be finite (NaN breaks every ranking)"
        assert fitted.score(np.array([], dtype=np.int32)).shape == (0, train.n_items)

    def test_score_returns_a_fresh_array(self, fitted: Recommender) -> None:
        # top_k writes -inf into the scores it is given: a cached array would be corrupted.
        users = np.array([1, 2], dtype=np.int32)
        first = fitted.score(users)
        expected = first.copy()
        first[:] = -np.inf
        np.testing.assert_array_equal(fitted.score(users), expected)

    def test_score_does_not_depend_on_the_batch(self, train: Dataset,
                                                fitted: Recommender) -> None:
        everyone = self._all_scores(fitted, train)
        for user in (0, train.n_users - 1):
            alone = fitted.score(np.array([user], dtype=np.int32))[0]
            np.testing.assert_allclose(alone, everyone[user], rtol=1e-5, atol=1e-6)

    # ------------------------------------------------------------------ recommending
    def test_recommend_speaks_external_ids(self, train: Dataset, fitted: Recommender) -> None:
        users = ["u3", "u0", "u7"]
        recs = fitted.recommend(users, k=4)
        assert list(recs.columns) == [Columns.User, Columns.Item, Columns.Score, Columns.Rank]
        assert list(pd.unique(recs[Columns.User])) == users
        assert recs[Columns.Item].isin(set(train.item_ids)).all()
        assert recs[Columns.Score].dtype == np.float32
        for _, group in recs.groupby(Columns.User, sort=False):
            assert group[Columns.Rank].tolist() == [1, 2, 3, 4]
            assert group[Columns.Item].is_unique
            assert (np.diff(group[Columns.Score].to_numpy()) <= 0).all(), \
                "scores must not increase down a list"

    def test_recommend_batches_agree(self, train: Dataset, fitted: Recommender) -> None:
        users = list(train.user_ids)
        whole = fitted.recommend(users, k=5)
        pieces = fitted.recommend(users, k=5, batch_size=7)
        pd.testing.assert_frame_equal(whole[[Columns.User, Columns.Rank]],
                                      pieces[[Columns.User, Columns.Rank]])
        np.testing.assert_allclose(whole[Columns.Score], pieces[Columns.Score], rtol=1e-5,
                                   atol=1e-6)

    def test_unknown_users_raise_key_error_naming_them(self, fitted: Recommender) -> None:
        with pytest.raises(KeyError, match="nobody"):
            fitted.recommend(["u0", "nobody"], k=3)

    def test_exclude_seen_leaves_out_train_items(self, train: Dataset,
                                                 fitted: Recommender) -> None:
        recs = fitted.recommend(list(train.user_ids), k=train.n_items)
        seen = set(zip(train.to_frame()[Columns.User], train.to_frame()[Columns.Item],
                       strict=True))
        pairs = set(zip(recs[Columns.User], recs[Columns.Item], strict=True))
        assert not pairs & seen
        # Every unseen item is still listed: exclusion removes exactly the seen ones.
        assert len(recs) == train.n_users * train.n_items - train.n_interactions

    def test_without_exclude_seen_train_items_may_appear(self, train: Dataset,
                                                         fitted: Recommender) -> None:
        recs = fitted.recommend(["u0", "u1"], k=train.n_items, exclude_seen=False)
        assert len(recs) == 2 * train.n_items
        assert recs.groupby(Columns.User)[Columns.Item].nunique().eq(train.n_items).all()

    def test_solves_the_checkerboard(self, train: Dataset, fitted: Recommender) -> None:
        if not self.learns_checkerboard:
            pytest.skip(f"{type(fitted).__name__} does not personalise")
        users = list(train.user_ids)
        top = fitted.recommend(users, k=1).set_index(Columns.User)[Columns.Item]
        expected = pd.Series([f"i{u[1:]}" for u in users], index=users)
        wrong = top[top != expected.loc[top.index]]
        assert wrong.empty, f"top item is not the withheld one for {dict(wrong.head())}"
        # Without exclusion the whole top half of each list is of the user's own parity.
        half = train.n_items // 2 - 1
        recs = fitted.recommend(users, k=half, exclude_seen=False)
        same = (checkerboard_parity(recs[Columns.User])
                == checkerboard_parity(recs[Columns.Item]))
        assert same.all(), "items of the other parity ranked among a user's own"

    def test_users_without_interactions_get_full_lists(self) -> None:
        data = self.make_dataset(extra_users=2, extra_items=2)
        model = self.make_model().fit(data)
        scores = model.score(data.users.to_internal(["cold_u0", "cold_u1", "u0"]))
        assert np.isfinite(scores).all()
        recs = model.recommend(["cold_u0", "u1"], k=5)
        assert recs.groupby(Columns.User, sort=False).size().tolist() == [5, 5]

    # ------------------------------------------------------------------ persistence
    def test_save_load_gives_identical_results(self, train: Dataset, fitted: Recommender,
                                               tmp_path) -> None:
        if not self.supports_save:
            pytest.skip(f"{type(fitted).__name__} does not support save/load")
        fitted.save(tmp_path / "model")
        loaded = Recommender.load(tmp_path / "model")
        assert type(loaded) is type(fitted)
        assert loaded.get_params() == fitted.get_params()
        np.testing.assert_array_equal(self._all_scores(loaded, train),
                                      self._all_scores(fitted, train))
        users = list(train.user_ids)
        for exclude in (True, False):
            pd.testing.assert_frame_equal(loaded.recommend(users, k=5, exclude_seen=exclude),
                                          fitted.recommend(users, k=5, exclude_seen=exclude))
        with pytest.raises(KeyError, match="nobody"):
            loaded.recommend(["nobody"], k=3)

    def test_save_uses_no_pickle(self, fitted: Recommender, tmp_path) -> None:
        if not self.supports_save:
            pytest.skip(f"{type(fitted).__name__} does not support save/load")
        folder = fitted.save(tmp_path / "model")
        with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
            for key in npz.files:
                assert npz[key].dtype != object, key
