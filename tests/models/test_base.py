"""The Recommender protocol: batched top-k, batching, recommend/save machinery, the contract.

The last section checks that :class:`recexp.testing.RecommenderContract` fails on models
that break it: a contract that passes everything would check nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recexp.columns import Columns
from recexp.dataset import Dataset
from recexp.models.base import (
    NotFittedError,
    Recommender,
    get_model_class,
    iter_batches,
    register_model,
    top_k,
)
from recexp.testing import RecommenderContract, checkerboard, checkerboard_parity


# ---------------------------------------------------------------------- iter_batches
@pytest.mark.parametrize(("n", "size"), [(10, 3), (9, 3), (1, 5), (5, 1), (0, 4)])
def test_iter_batches_covers_every_index_once_in_order(n, size):
    batches = list(iter_batches(n, size))
    assert all(b.dtype == np.int32 for b in batches)
    assert all(0 < len(b) <= size for b in batches)
    joined = np.concatenate(batches) if batches else np.array([], dtype=np.int32)
    np.testing.assert_array_equal(joined, np.arange(n))


@pytest.mark.parametrize("size", [0, -3])
def test_iter_batches_rejects_non_positive_size(size):
    with pytest.raises(ValueError, match="batch_size"):
        list(iter_batches(5, size))


# ---------------------------------------------------------------------- top_k
def naive_top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None):
    """The definition of top_k, one row at a time: sort by (-score, index), drop -inf."""
    batch, n_items = scores.shape
    width = min(k, n_items)
    items = np.full((batch, width), -1, dtype=np.int32)
    top = np.full((batch, width), -np.inf, dtype=np.float32)
    for r in range(batch):
        row = scores[r].astype(np.float64).copy()
        if exclude is not None:
            row[exclude[r]] = -np.inf
        order = sorted(range(n_items), key=lambda j, row=row: (-row[j], j))
        order = [j for j in order if row[j] != -np.inf][:width]
        items[r, : len(order)] = order
        top[r, : len(order)] = row[order]
    return items, top


@settings(max_examples=200, deadline=None)
@given(data=st.data(), batch=st.integers(1, 5), n_items=st.integers(1, 12),
       k=st.integers(1, 15))
def test_top_k_matches_naive_sort_with_ties_and_exclusion(data, batch, n_items, k):
    # Few distinct values, so ties (and ties cut by the k-th place) are the common case.
    values = data.draw(st.lists(st.sampled_from([-2.0, 0.0, 0.5, 1.0, 3.0]),
                                min_size=batch * n_items, max_size=batch * n_items))
    scores = np.asarray(values, dtype=np.float32).reshape(batch, n_items)
    mask = np.asarray(data.draw(st.lists(st.booleans(), min_size=batch * n_items,
                                         max_size=batch * n_items))).reshape(batch, n_items)
    # Exclusion rows are looked up through `rows`: put the batch at shuffled positions.
    n_users = batch + 3
    rows = np.random.default_rng(batch * 100 + n_items).permutation(n_users)[:batch]
    full = np.zeros((n_users, n_items), dtype=np.float32)
    full[rows] = mask
    expected = naive_top_k(scores, k, exclude=mask)
    items, top = top_k(scores.copy(), k, exclude=sp.csr_matrix(full),
                       rows=rows.astype(np.int32))
    np.testing.assert_array_equal(items, expected[0])
    np.testing.assert_array_equal(top, expected[1])
    assert items.dtype == np.int32 and top.dtype == np.float32


def test_top_k_breaks_ties_by_lower_index():
    scores = np.array([[1.0, 5.0, 5.0, 2.0, 5.0]], dtype=np.float32)
    items, top = top_k(scores, 2)
    assert items.tolist() == [[1, 2]]
    assert top.tolist() == [[5.0, 5.0]]


def test_top_k_caps_k_at_n_items():
    scores = np.array([[0.1, 0.3, 0.2]], dtype=np.float32)
    items, top = top_k(scores, 10)
    assert items.tolist() == [[1, 2, 0]]
    np.testing.assert_allclose(top, [[0.3, 0.2, 0.1]])


def test_top_k_pads_with_minus_one_when_too_few_items_remain():
    scores = np.array([[0.1, 0.3, 0.2, 0.4], [1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[1, 1, 0, 1], [1, 1, 1, 1]], dtype=np.float32))
    items, top = top_k(scores, 3, exclude=exclude, rows=np.array([0, 1], dtype=np.int32))
    assert items.tolist() == [[2, -1, -1], [-1, -1, -1]]
    assert top[0, 0] == np.float32(0.2)
    assert np.isneginf(top[0, 1:]).all() and np.isneginf(top[1]).all()


def test_top_k_writes_minus_inf_into_excluded_scores():
    # Documented: callers must hand over an array they do not need afterwards.
    scores = np.array([[1.0, 2.0]], dtype=np.float32)
    top_k(scores, 1, exclude=sp.csr_matrix(np.array([[0.0, 1.0]])),
          rows=np.array([0], dtype=np.int32))
    assert scores[0, 1] == -np.inf


def test_top_k_validates_its_arguments():
    scores = np.zeros((1, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="k must be positive"):
        top_k(scores, 0)
    with pytest.raises(ValueError, match="rows"):
        top_k(scores, 1, exclude=sp.csr_matrix((1, 3)))


def test_top_k_of_an_empty_batch():
    items, top = top_k(np.zeros((0, 4), dtype=np.float32), 2)
    assert items.shape == (0, 2) and top.shape == (0, 2)


# ---------------------------------------------------------------------- a tiny model
@register_model
class WeightSum(Recommender):
    """Test model: every user gets items by their summed training weight, plus ``bonus``."""

    name = "_test_weight_sum"
    param_names = ("bonus",)

    def __init__(self, *, bonus: float = 0.0) -> None:
        self.bonus = bonus
        super().__init__()

    def _fit(self, train: Dataset) -> None:
        self.totals_ = np.asarray(train.interactions.sum(axis=0), dtype=np.float32).ravel()

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.tile(self.totals_ + np.float32(self.bonus), (len(user_idx), 1))

    def _state(self) -> dict[str, np.ndarray]:
        return {"totals": self.totals_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.totals_ = arrays["totals"]


class Unsaveable(WeightSum):
    name = "_test_unsaveable"

    def _state(self) -> dict[str, np.ndarray]:
        return Recommender._state(self)


register_model(Unsaveable)


def small(user_ids=(10, 20, 30)) -> Dataset:
    """Users 10/20/30 (or the given ids); item totals c=6 > a=4 > d=2 > b=1, item e unseen."""
    u1, u2, u3 = user_ids
    frame = pd.DataFrame({
        Columns.User: [u1, u1, u2, u2, u3, u3],
        Columns.Item: ["a", "b", "a", "c", "c", "d"],
        Columns.Weight: [1.0, 1.0, 3.0, 2.0, 4.0, 2.0],
    })
    return Dataset.from_frames(frame, items=["e"])


def test_recommend_gives_external_ids_in_score_order():
    model = WeightSum().fit(small())
    recs = model.recommend([30, 10], k=10, exclude_seen=False)
    assert list(recs.columns) == [Columns.User, Columns.Item, Columns.Score, Columns.Rank]
    assert recs[Columns.User].tolist() == [30] * 5 + [10] * 5
    assert recs[Columns.Item].tolist()[:5] == ["c", "a", "d", "b", "e"]
    assert recs[Columns.Rank].tolist() == [1, 2, 3, 4, 5] * 2
    assert recs[Columns.Score].tolist()[:5] == [6.0, 4.0, 2.0, 1.0, 0.0]


def test_recommend_excludes_each_users_own_seen_items():
    model = WeightSum().fit(small())
    recs = model.recommend([10, 20, 30], k=10)
    lists = recs.groupby(Columns.User)[Columns.Item].agg(list).to_dict()
    assert lists == {10: ["c", "d", "e"], 20: ["d", "b", "e"], 30: ["a", "b", "e"]}


def test_recommend_batches_do_not_change_the_result():
    model = WeightSum().fit(small())
    whole = model.recommend([30, 10, 20], k=2)
    pd.testing.assert_frame_equal(whole, model.recommend([30, 10, 20], k=2, batch_size=1))


def test_recommend_unknown_users_raise_key_error_naming_them():
    model = WeightSum().fit(small())
    with pytest.raises(KeyError, match="99"):
        model.recommend([10, 99], k=2)


def test_recommend_no_users_gives_an_empty_table():
    recs = WeightSum().fit(small()).recommend([], k=3)
    assert len(recs) == 0
    assert list(recs.columns) == [Columns.User, Columns.Item, Columns.Score, Columns.Rank]


def test_use_before_fit_raises_not_fitted():
    model = WeightSum()
    with pytest.raises(NotFittedError, match="fit"):
        model.recommend([10], k=1)
    with pytest.raises(NotFittedError):
        model.save("never-written")


def test_score_checks_user_index_range():
    model = WeightSum().fit(small())
    with pytest.raises(IndexError, match="out of range"):
        model.score(np.array([3], dtype=np.int32))
    with pytest.raises(IndexError):
        model.score(np.array([-1], dtype=np.int32))


def test_fit_forgets_the_earlier_data():
    other = Dataset.from_frames(pd.DataFrame({Columns.User: ["x"], Columns.Item: ["z"]}))
    model = WeightSum().fit(other).fit(small())
    assert model.items_.ids.tolist() == ["a", "b", "c", "d", "e"]
    with pytest.raises(KeyError, match="x"):
        model.recommend(["x"], k=1)


def test_params_round_trip_and_unknown_params_are_named():
    model = WeightSum(bonus=0.5)
    assert model.get_params() == {"bonus": 0.5}
    assert WeightSum.from_params(model.get_params()).bonus == 0.5
    with pytest.raises(ValueError, match=r"'bonsu' \(did you mean 'bonus'\?\)"):
        WeightSum.from_params({"bonsu": 1.0})
    assert repr(model) == "WeightSum(bonus=0.5)"


def test_model_registry():
    assert get_model_class("_test_weight_sum") is WeightSum
    with pytest.raises(KeyError, match="did you mean '_test_weight_sum'"):
        get_model_class("_test_weight_sun")

    class Impostor(WeightSum):
        name = "_test_weight_sum"

    with pytest.raises(ValueError, match="registered twice"):
        register_model(Impostor)


@pytest.mark.parametrize("user_ids", [(10, 20, 30), ("ann", "bob", "cy")])
def test_save_load_round_trip(tmp_path, user_ids):
    model = WeightSum(bonus=1.5).fit(small(user_ids))
    folder = model.save(tmp_path / "m")
    meta = json.loads((folder / "model.json").read_text())
    assert meta["model"] == "_test_weight_sum" and meta["params"] == {"bonus": 1.5}
    loaded = Recommender.load(folder)
    assert isinstance(loaded, WeightSum) and loaded.bonus == 1.5
    users = list(user_ids)
    pd.testing.assert_frame_equal(loaded.recommend(users, k=3), model.recommend(users, k=3),
                                  check_dtype=False)
    # Ids come back with their kind: ints stay ints, strings stay strings.
    for column in (Columns.User, Columns.Item):
        before = model.recommend(users[:1], k=1)[column].iloc[0]
        after = loaded.recommend(users[:1], k=1)[column].iloc[0]
        assert type(after) is type(before)
    np.testing.assert_array_equal(loaded.seen_.toarray(), model.seen_.toarray())
    assert WeightSum.load(folder).bonus == 1.5


def test_load_checks_class_and_format(tmp_path):
    folder = WeightSum().fit(small()).save(tmp_path / "m")
    with pytest.raises(TypeError, match="holds a WeightSum, not a Unsaveable"):
        Unsaveable.load(folder)
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "format": 999}))
    with pytest.raises(ValueError, match="unsupported model format 999"):
        Recommender.load(folder)


def test_save_refuses_models_without_state_and_object_arrays(tmp_path):
    with pytest.raises(NotImplementedError, match="cannot be saved"):
        Unsaveable().fit(small()).save(tmp_path / "a")
    model = WeightSum().fit(small())
    model.totals_ = np.array([{"not": "numeric"}], dtype=object)
    with pytest.raises(TypeError, match="object dtype"):
        model.save(tmp_path / "b")


# ---------------------------------------------------------------------- checkerboard
def test_checkerboard_is_what_it_says():
    data = checkerboard(10, 12, extra_users=2, extra_items=3, seed=4)
    frame = data.to_frame()
    assert (checkerboard_parity(frame[Columns.User])
            == checkerboard_parity(frame[Columns.Item])).all()
    assert not (frame[Columns.User].str[1:] == frame[Columns.Item].str[1:]).any()
    # 10 users, each liking every item of their parity among 12 but their own.
    assert len(frame) == 10 * (6 - 1)
    assert data.n_users == 12 and data.n_items == 15
    assert {"cold_u0", "cold_u1", "cold_i2"} <= set(data.user_ids) | set(data.item_ids)
    # Internal order must not follow the numbers in the ids, or index leaks go unseen.
    numbered = [u for u in data.user_ids if not u.startswith("cold")]
    assert numbered != sorted(numbered, key=lambda u: int(u[1:]))


def test_checkerboard_item_features_mark_parity():
    data = checkerboard(6, item_features=True, extra_items=1)
    names = list(data.item_side.names)
    matrix = data.item_side.matrix.toarray()
    parity = checkerboard_parity(data.item_ids)
    np.testing.assert_array_equal(matrix[:, names.index("odd")], parity)
    np.testing.assert_array_equal(matrix[:, names.index("even")], 1 - parity)
    assert (matrix[:, names.index("any")] == 1).all()


def test_checkerboard_rejects_impossible_shapes():
    with pytest.raises(ValueError, match="n_items >= n_users"):
        checkerboard(10, 8)
    with pytest.raises(ValueError, match="n_users >= 4"):
        checkerboard(2)
    with pytest.raises(ValueError, match="not a checkerboard id"):
        checkerboard_parity(["u1", "nobody"])


# ---------------------------------------------------------------------- the contract fails
class Cooccurrence(Recommender):
    """A correct model for the checkerboard: item-item co-occurrence counts."""

    name = "_test_cooccurrence"
    param_names = ()

    def _fit(self, train: Dataset) -> None:
        x = train.binary
        self.x_ = x
        self.cooc_ = (x.T @ x).toarray()

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.x_[user_idx] @ self.cooc_, dtype=np.float32)


class LeaksIndices(Cooccurrence):
    """Scores by the parity of *internal* indices: right only if ids were positions."""

    name = "_test_leaks_indices"

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        n_items = self.n_items
        same = (user_idx[:, None] % 2) == (np.arange(n_items)[None, :] % 2)
        return same.astype(np.float32) + np.arange(n_items, dtype=np.float32) / n_items


class CachesScores(Cooccurrence):
    """Hands out the same array twice, which top_k then overwrites."""

    name = "_test_caches_scores"

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        key = tuple(user_idx.tolist())
        cache = self.__dict__.setdefault("cache_", {})
        if key not in cache:
            cache[key] = super()._score(user_idx)
        return cache[key]


class Remembers(Cooccurrence):
    """Adds each fit to the last instead of forgetting it."""

    name = "_test_remembers"

    def _fit(self, train: Dataset) -> None:
        previous = getattr(self, "cooc_", None)
        super()._fit(train)
        if previous is not None and previous.shape == self.cooc_.shape:
            self.cooc_ = self.cooc_ + previous
        elif previous is not None:
            self.cooc_ = self.cooc_ + previous.mean()


class NormalisesPerBatch(Cooccurrence):
    """Scores depend on which other users share the batch."""

    name = "_test_normalises_per_batch"

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        scores = super()._score(user_idx)
        return scores / max(float(scores.sum()), 1.0)


class MakesNaN(Cooccurrence):
    name = "_test_makes_nan"

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        scores = super()._score(user_idx)
        scores[:, 0] = np.nan
        return scores


class ForgetsOnLoad(Cooccurrence):
    """Saves its state but loads a different one."""

    name = "_test_forgets_on_load"

    def _state(self) -> dict[str, np.ndarray]:
        return {"cooc": self.cooc_, "x_data": self.x_.toarray()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.x_ = sp.csr_matrix(arrays["x_data"])
        self.cooc_ = np.ones_like(arrays["cooc"])


class UnregisteredParam(Cooccurrence):
    """Its constructor argument is missing from param_names."""

    name = "_test_unregistered_param"

    def __init__(self, *, alpha: float = 1.0) -> None:
        self.alpha = alpha
        super().__init__()


for _cls in (Cooccurrence, LeaksIndices, CachesScores, Remembers, NormalisesPerBatch,
             MakesNaN, ForgetsOnLoad, UnregisteredParam):
    register_model(_cls)


def contract_for(model_cls: type[Recommender], **model_kwargs) -> RecommenderContract:
    class Contract(RecommenderContract):
        def make_model(self) -> Recommender:
            return model_cls(**model_kwargs)

    return Contract()


def run_check(model_cls: type[Recommender], check: str, tmp_path, **model_kwargs) -> None:
    contract = contract_for(model_cls, **model_kwargs)
    train = contract.make_dataset()
    fitted = contract.make_model().fit(train)
    method = getattr(contract, check)
    args = {"train": train, "fitted": fitted, "tmp_path": tmp_path}
    names = method.__code__.co_varnames[1: method.__code__.co_argcount]
    method(**{name: args[name] for name in names})


def test_a_correct_model_passes_the_checks_used_below(tmp_path):
    for check in ("test_solves_the_checkerboard", "test_score_returns_a_fresh_array",
                  "test_fit_forgets_an_earlier_fit", "test_score_does_not_depend_on_the_batch",
                  "test_score_is_float32_batch_by_items", "test_params_are_json_and_round_trip"):
        run_check(Cooccurrence, check, tmp_path)


@pytest.mark.parametrize(("model_cls", "check"), [
    (LeaksIndices, "test_solves_the_checkerboard"),
    (CachesScores, "test_score_returns_a_fresh_array"),
    (Remembers, "test_fit_forgets_an_earlier_fit"),
    (NormalisesPerBatch, "test_score_does_not_depend_on_the_batch"),
    (MakesNaN, "test_score_is_float32_batch_by_items"),
    (ForgetsOnLoad, "test_save_load_gives_identical_results"),
    (UnregisteredParam, "test_params_are_json_and_round_trip"),
])
def test_the_contract_catches_a_broken_model(model_cls, check, tmp_path):
    with pytest.raises(AssertionError):
        run_check(model_cls, check, tmp_path, **({"alpha": 2.0}
                                                 if model_cls is UnregisteredParam else {}))
