"""Click models: known answers, agreement with LightFM, a planted signal, the real samples,
saving and loading."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import log_loss, roc_auc_score

from recexp.models.base import NotFittedError
from recexp.models.ctr import (
    ClickModel,
    GlobalCTR,
    HashedLogisticCTR,
    Impressions,
    ItemCTR,
    LightFMCTR,
    _hashed_keys,
    _vocabulary_from_array,
    _vocabulary_state,
    get_click_model,
)

ALL_MODELS = [
    pytest.param(lambda: GlobalCTR(), id="global"),
    pytest.param(lambda: ItemCTR(), id="item"),
    pytest.param(lambda: HashedLogisticCTR(key_buckets=1 << 12), id="lr-lbfgs"),
    pytest.param(lambda: HashedLogisticCTR(solver="sgd", key_buckets=1 << 12), id="lr-sgd"),
    pytest.param(lambda: LightFMCTR(epochs=5, key_buckets=1 << 12), id="lightfm"),
]


def one_hot(columns: np.ndarray, n_features: int) -> sp.csr_matrix:
    """float32 CSR [n_rows, n_features] with a 1 at every ``columns[row, j]``."""
    n, k = columns.shape
    return sp.csr_matrix((np.ones(n * k, np.float32), columns.ravel(),
                          np.arange(0, n * k + 1, k)), shape=(n, n_features))


def planted(n: int = 30_000, *, n_users: int = 400, n_items: int = 60, seed: int = 0
            ) -> tuple[Impressions, np.ndarray]:
    """Impressions whose click logit is user bias + item bias + a user x item interaction.

    Row features: one token for the user, one for the item, three uninformative tokens.
    Returns the impressions and the true click probabilities.
    """
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 0.5, n_users), rng.normal(0, 0.5, n_items)
    p, q = rng.normal(0, 1, (n_users, 3)), rng.normal(0, 1, (n_items, 3))
    u, i = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    logit = -1.2 + a[u] + b[i] + 0.8 * np.einsum("ij,ij->i", p[u], q[i])
    truth = 1.0 / (1.0 + np.exp(-logit))
    labels = (rng.random(n) < truth).astype(np.int8)
    noise = rng.integers(0, 50, (n, 3)) + n_users + n_items + np.array([0, 50, 100])
    columns = np.column_stack([u, n_users + i, noise])
    rows = Impressions(features=one_hot(columns, n_users + n_items + 150), labels=labels,
                       users=np.array([f"u{x}" for x in u], dtype=object), items=i)
    return rows, truth


@pytest.fixture(scope="module")
def planted_split() -> tuple[Impressions, Impressions]:
    rows, _ = planted()
    return rows.take(np.arange(20_000)), rows.take(np.arange(20_000, 30_000))


# ---------------------------------------------------------------------- the input
def test_impressions_validate_what_they_hold() -> None:
    x = one_hot(np.array([[0], [1], [2]]), 3)
    with pytest.raises(ValueError, match="row 1 has 2"):
        Impressions(features=x, labels=np.array([0, 2, 1]))
    with pytest.raises(ValueError, match="items has shape"):
        Impressions(features=x, items=np.array([1, 2]))
    with pytest.raises(TypeError, match="sparse"):
        Impressions(features=np.eye(3))
    rows = Impressions(features=x, labels=[1, 0, 1], items=["a", None, "b"])
    assert rows.labels.dtype == np.int8 and len(rows) == 3
    part = rows.take(np.array([True, False, True]))
    assert list(part.items) == ["a", "b"] and part.features.shape == (2, 3)
    with pytest.raises(ValueError, match="needs Impressions with labels"):
        GlobalCTR().fit(Impressions(features=x))


# ---------------------------------------------------------------------- known answers
def test_global_ctr_is_the_jeffreys_posterior_mean() -> None:
    rows = Impressions(features=sp.csr_matrix((5, 1), dtype=np.float32),
                       labels=np.array([1, 0, 0, 1, 0]))
    p = GlobalCTR().fit(rows).predict_proba(rows)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p, (2 + 0.5) / (5 + 1))
    everyone_clicks = Impressions(features=rows.features, labels=np.ones(5, np.int8))
    assert GlobalCTR().fit(everyone_clicks).predict_proba(rows).max() < 1.0


def test_item_ctr_shrinks_each_item_towards_the_global_rate() -> None:
    items = np.array(["a"] * 4 + ["b"] * 2 + [None] * 2, dtype=object)
    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    rows = Impressions(features=sp.csr_matrix((8, 1), dtype=np.float32), labels=labels,
                       items=items)
    model = ItemCTR(prior_strength=4.0).fit(rows)
    p0 = 4 / 8
    new = Impressions(features=sp.csr_matrix((4, 1), dtype=np.float32),
                      items=np.array(["a", "b", "never seen", None], dtype=object))
    np.testing.assert_allclose(model.predict_proba(new),
                               [(3 + 4 * p0) / (4 + 4), (0 + 4 * p0) / (2 + 4), p0, p0],
                               rtol=1e-6)


def test_item_ctr_estimates_the_beta_prior_by_moments() -> None:
    rng = np.random.default_rng(0)
    true_rates = rng.beta(2.0, 6.0, 400)  # prior strength m = 2 + 6 = 8
    items = np.repeat(np.arange(400), 200)
    labels = (rng.random(len(items)) < true_rates[items]).astype(np.int8)
    rows = Impressions(features=sp.csr_matrix((len(items), 1), dtype=np.float32),
                       labels=labels, items=items)
    assert ItemCTR().fit(rows).prior_strength_ == pytest.approx(8.0, rel=0.25)
    # No spread beyond binomial noise: every item gets the global rate.
    flat = (rng.random(len(items)) < 0.3).astype(np.int8)
    same = ItemCTR().fit(Impressions(features=rows.features, labels=flat, items=items))
    assert same.prior_strength_ > 1000


def test_hashed_keys_equal_feature_hasher_over_each_rows_tokens() -> None:
    from sklearn.feature_extraction import FeatureHasher

    users = np.array(["a", None, "b", "a", 1, 1.0, np.nan, "1"], dtype=object)
    items = np.array([3, 4, 3, 5, 6, 7, 8, 9], dtype=object)
    rows = Impressions(features=sp.csr_matrix((8, 1), dtype=np.float32), users=users,
                       items=items)
    # 1 and 1.0 are equal keys but the tokens "user=1" and "user=1.0"; 4 buckets make user
    # and item tokens of one row collide, which adds up.
    for buckets in (4, 1 << 10):
        for use_users, use_items in ((True, True), (True, False), (False, True), (False, False)):
            tokens = [[f"{p}={k}" for p, k, use in (("user", u, use_users),
                                                    ("item", i, use_items))
                       if use and not pd.isna(k)] for u, i in zip(users, items, strict=True)]
            naive = FeatureHasher(n_features=buckets, input_type="string",
                                  alternate_sign=False, dtype=np.float32).transform(tokens)
            got = _hashed_keys(rows, buckets, users=use_users, items=use_items)
            assert got.dtype == np.float32 and got.shape == (8, buckets)
            np.testing.assert_array_equal(got.toarray(), naive.toarray())


def test_hashed_lr_reaches_the_optimum_of_its_objective() -> None:
    """Regression: with scikit-learn's default tol=1e-4, L-BFGS stopped with predictions up
    to 0.04 (here; 0.08 on 40k Criteo rows) from the optimum at alpha=1e-5."""
    from sklearn.linear_model import LogisticRegression

    rows, _ = planted(3000)
    alpha = 1e-5
    model = HashedLogisticCTR(alpha=alpha, key_buckets=1 << 12).fit(rows)
    # The oracle: every column of the design matrix (the model leaves the unused ones out),
    # float64, Newton-CG to a tiny gradient.
    X = model._design(rows).astype(np.float64)
    assert len(model.columns_) < X.shape[1]
    oracle = LogisticRegression(C=1 / (alpha * len(rows)), solver="newton-cg", tol=1e-10,
                                max_iter=1000).fit(X, rows.labels)
    np.testing.assert_allclose(model.predict_proba(rows), oracle.predict_proba(X)[:, 1],
                               atol=1e-3)
    assert np.abs(oracle.coef_[0, np.setdiff1d(np.arange(X.shape[1]), model.columns_)]
                  ).max() < 1e-8


def test_hashed_lr_without_any_feature_predicts_the_click_rate() -> None:
    rows = Impressions(features=sp.csr_matrix((6, 3), dtype=np.float32),
                       labels=np.array([1, 0, 0, 1, 0, 0]))
    model = HashedLogisticCTR(key_buckets=0).fit(rows)
    np.testing.assert_allclose(model.predict_proba(rows), 1 / 3, rtol=1e-5)


def test_lightfm_ctr_probabilities_equal_lightfms_own_predict() -> None:
    rows, _ = planted(2000)
    model = LightFMCTR(epochs=3, key_buckets=1 << 10).fit(rows)
    # The training rows are LightFM's users: predict() over (row, item) pairs is the oracle.
    context = model._context(rows)
    logits = model.lightfm_.predict(np.arange(len(rows), dtype=np.int32),
                                    model._item_index(rows).astype(np.int32),
                                    user_features=context)
    np.testing.assert_allclose(model.predict_proba(rows), 1 / (1 + np.exp(-logits)),
                               rtol=1e-5, atol=1e-6)


def test_lightfm_ctr_is_reproducible_and_stops_on_request() -> None:
    rows, _ = planted(3000)
    first = LightFMCTR(epochs=4, key_buckets=1 << 10).fit(rows).predict_proba(rows)
    again = LightFMCTR(epochs=4, key_buckets=1 << 10).fit(rows).predict_proba(rows)
    np.testing.assert_array_equal(first, again)
    epochs: list[int] = []

    def stop_at_two(epoch: int, model: LightFMCTR) -> bool:
        epochs.append(epoch)
        assert model.predict_proba(rows.take(np.arange(5))).shape == (5,)
        return epoch == 2

    stopped = LightFMCTR(epochs=4, key_buckets=1 << 10).fit(rows, callback=stop_at_two)
    short = LightFMCTR(epochs=2, key_buckets=1 << 10).fit(rows)
    assert epochs == [1, 2] and stopped.epochs_trained_ == 2
    np.testing.assert_array_equal(stopped.predict_proba(rows), short.predict_proba(rows))


# ---------------------------------------------------------------------- a planted signal
def test_models_find_the_planted_signal(planted_split) -> None:
    """Figures (seed 0, 20k train / 10k test): oracle 0.816; LightFM 0.75, LR 0.65,
    item CTR 0.61, global 0.50 ROC AUC."""
    train, test = planted_split
    auc, loss = {}, {}
    for name, model in (("global", GlobalCTR()), ("item", ItemCTR()),
                        ("lr", HashedLogisticCTR(key_buckets=1 << 12)),
                        ("lightfm", LightFMCTR(epochs=10, key_buckets=1 << 12))):
        p = model.fit(train).predict_proba(test)
        auc[name], loss[name] = roc_auc_score(test.labels, p), log_loss(test.labels, p)
    assert auc["global"] == 0.5
    assert auc["lr"] > auc["global"] + 0.1, auc
    assert auc["lightfm"] > auc["global"] + 0.2, auc
    assert auc["item"] > auc["global"] + 0.05, auc
    # Only LightFM can learn the user x item interaction term.
    assert auc["lightfm"] > auc["lr"] + 0.05, auc
    assert loss["lightfm"] < loss["lr"] < loss["global"], loss


# ---------------------------------------------------------------------- the protocol
@pytest.mark.parametrize("make", ALL_MODELS)
def test_click_model_protocol(make) -> None:
    model: ClickModel = make()
    rows, _ = planted(3000)
    assert get_click_model(model.name) is type(model)
    params = model.get_params()
    assert type(model).from_params(params).get_params() == params
    with pytest.raises(ValueError, match="no_such"):
        type(model).from_params({**params, "no_such": 1})
    with pytest.raises(NotFittedError):
        model.predict_proba(rows)
    assert model.fit(rows) is model
    p = model.predict_proba(rows.take(np.arange(100)))
    assert p.dtype == np.float32 and p.shape == (100,)
    assert ((p > 0) & (p < 1)).all()


def test_unknown_click_model_name_suggests_the_nearest() -> None:
    with pytest.raises(KeyError, match="lightfm-ctr"):
        get_click_model("lightfm_ctr")


@pytest.mark.parametrize(("model", "message"), [
    (LightFMCTR(no_components=0), "no_components=0"),
    (LightFMCTR(learning_schedule="sgd"), "learning_schedule='sgd'"),
    (HashedLogisticCTR(solver="newton"), "solver='newton'"),
    (HashedLogisticCTR(alpha=0.0), "alpha=0.0"),
    (ItemCTR(prior_strength=-1.0), "prior_strength=-1.0"),
    (HashedLogisticCTR(max_iter=0), "max_iter=0"),
])
def test_bad_params_raise_value_error_naming_them(model: ClickModel, message: str) -> None:
    rows, _ = planted(200)
    with pytest.raises(ValueError, match=message):
        model.check_params()
    with pytest.raises(ValueError, match=message):
        model.fit(rows)


# ---------------------------------------------------------------------- the real samples
@pytest.mark.realdata
@pytest.mark.parametrize("variant", ["tsv", "csv"])
@pytest.mark.parametrize("make", ALL_MODELS)
def test_runs_on_the_real_criteo_samples(data_dir, variant: str, make) -> None:
    from recexp.datasets import load

    data = load("criteo-sample", download=False, variant=variant, n_hash=1 << 16)
    rows = Impressions.from_criteo(data)
    assert len(rows) == 200
    train, test = rows.take(np.arange(150)), rows.take(np.arange(150, 200))
    p = make().fit(train).predict_proba(test)
    assert p.dtype == np.float32 and p.shape == (50,)
    assert ((p > 0) & (p < 1)).all()
    assert np.isfinite(log_loss(test.labels, p, labels=[0, 1]))


# ---------------------------------------------------------------------- saving and loading
def with_odd_keys(rows: Impressions, unseen: object) -> Impressions:
    """``rows`` with missing and never-seen item and user keys in its first rows."""
    items, users = rows.items.astype(object), rows.users.astype(object)
    items[0], items[1], items[2], items[3] = None, np.nan, unseen, str(items[4])
    users[0], users[4] = None, "nobody"
    return Impressions(features=rows.features, labels=rows.labels, users=users, items=items)


def criteo_rows(variant: str) -> tuple[Impressions, Impressions]:
    from recexp.datasets import load

    data = load("criteo-sample", download=False, variant=variant, n_hash=1 << 16)
    rows = Impressions.from_criteo(data)
    return rows.take(np.arange(150)), with_odd_keys(rows.take(np.arange(150, 200)), "zzz")


def synthetic_rows() -> tuple[Impressions, Impressions]:
    """int item keys (so ``str(key)`` of a seen key is an unseen one), str user keys."""
    train, _ = planted(3000)
    new, _ = planted(500, seed=1)
    return train, with_odd_keys(new, 10_000)


SOURCES = [
    pytest.param(lambda: criteo_rows("tsv"), id="criteo-tsv", marks=pytest.mark.realdata),
    pytest.param(lambda: criteo_rows("csv"), id="criteo-csv", marks=pytest.mark.realdata),
    pytest.param(synthetic_rows, id="synthetic"),
]


def assert_round_trip(model: ClickModel, folder: Path, new: Impressions) -> ClickModel:
    """Save, check the files, load with ``ClickModel.load`` and the model's own class, and
    compare probabilities bit for bit."""
    assert model.save(folder) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "model.json"]
    assert not list(folder.parent.rglob("*.pkl"))
    with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
        assert all(npz[key].dtype != object for key in npz.files)
    expected = model.predict_proba(new)
    for loader in (ClickModel, type(model)):
        loaded = loader.load(folder)
        assert type(loaded) is type(model) and loaded is not model
        assert loaded.get_params() == model.get_params()
        assert loaded.is_fitted
        got = loaded.predict_proba(new)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
    if hasattr(model, "items_"):
        assert loaded.items_.dtype == model.items_.dtype
        assert loaded.items_.equals(model.items_)
    return loaded


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("make", ALL_MODELS)
def test_saved_models_predict_bit_identically(request, source, make, tmp_path) -> None:
    if "realdata" in request.node.keywords:
        request.getfixturevalue("data_dir")  # skips without the real data
    train, new = source()
    model = make().fit(train)
    assert_round_trip(model, tmp_path / "model", new)


def test_item_ctr_round_trip_keeps_the_fallback_for_unknown_keys(tmp_path) -> None:
    train, new = synthetic_rows()
    loaded = assert_round_trip(ItemCTR().fit(train), tmp_path / "model", new)
    # missing, NaN, never seen, and "3" where 3 was seen: all at the global rate
    np.testing.assert_array_equal(loaded.predict_proba(new.take(np.arange(4))),
                                  np.float32(loaded.global_ctr_))


def test_lightfm_ctr_without_item_keys_round_trips(tmp_path) -> None:
    rows, _ = planted(1000)
    no_keys = Impressions(features=rows.features, labels=rows.labels, users=rows.users)
    model = LightFMCTR(epochs=2, key_buckets=1 << 8).fit(no_keys)
    assert len(model.items_) == 0
    loaded = assert_round_trip(model, tmp_path / "model", rows)
    # the rebuilt LightFM predicts as the trained one
    context, items = model._context(rows), np.zeros(len(rows), dtype=np.int32)
    users = np.arange(len(rows), dtype=np.int32)
    np.testing.assert_array_equal(loaded.lightfm_.predict(users, items, user_features=context),
                                  model.lightfm_.predict(users, items, user_features=context))
    assert loaded.epochs_trained_ == 2


@pytest.mark.parametrize("index", [
    pd.Index(["b", "a", "c"], dtype="str"),
    pd.Index(["b", "a", "c"], dtype=object),
    pd.Index(["", "é", "x" * 40], dtype=object),
    pd.Index([3, 1, 2], dtype=np.int64),
    pd.Index([3, 1, 2], dtype=object),
    pd.Index([2**62, -1], dtype=np.int64),
    pd.Index(np.array([7, 8], dtype=np.uint32)),
    pd.Index([0.5, 1.0]),
    pd.Index([], dtype=object),
], ids=lambda index: f"{index.dtype}-{pd.api.types.infer_dtype(index)}")
def test_vocabularies_round_trip_exactly(index: pd.Index) -> None:
    values, arrays = _vocabulary_state(index, "items", what="test: item")
    assert arrays["items"].dtype != object
    back = _vocabulary_from_array(arrays["items"], values["items_dtype"])
    assert back.dtype == index.dtype and back.equals(index)
    assert [type(v) for v in back] == [type(v) for v in index]


@pytest.mark.parametrize("keys", [["a", 1], ["a\x00", "b"]], ids=["mixed", "nul"])
def test_keys_that_would_not_round_trip_are_refused_before_writing(keys, tmp_path) -> None:
    rows = Impressions(features=sp.csr_matrix((4, 1), dtype=np.float32),
                       labels=np.array([1, 0, 1, 0]),
                       items=np.array(keys * 2, dtype=object))
    model = ItemCTR().fit(rows)
    with pytest.raises(TypeError, match="item keys"):
        model.save(tmp_path / "model")
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("make", ALL_MODELS)
def test_unfitted_models_are_not_saved(make, tmp_path) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        make().save(tmp_path / "model")
    assert not (tmp_path / "model").exists()


@pytest.fixture(scope="module")
def saved_item_ctr(tmp_path_factory) -> Path:
    train, _ = synthetic_rows()
    return ItemCTR().fit(train).save(tmp_path_factory.mktemp("saved") / "model")


def edit_json(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        meta = json.loads((folder / "model.json").read_text())
        change(meta)
        (folder / "model.json").write_text(json.dumps(meta))
    return edit


def edit_arrays(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        change(arrays)
        np.savez(folder / "arrays.npz", **arrays)
    return edit


def pickled_items(folder: Path) -> None:
    with np.load(folder / "arrays.npz") as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays["items"] = arrays["items"].astype(object)
    np.savez(folder / "arrays.npz", **arrays)


@pytest.mark.parametrize(("tamper", "error", "words"), [
    pytest.param(lambda f: (f / "model.json").unlink(), FileNotFoundError,
                 r"model\.json is missing", id="no-json"),
    pytest.param(lambda f: (f / "arrays.npz").unlink(), FileNotFoundError,
                 r"arrays\.npz is missing", id="no-npz"),
    pytest.param(lambda f: (f / "model.json").write_text("{not json"), ValueError,
                 r"model\.json: not valid JSON", id="bad-json"),
    pytest.param(edit_json(lambda m: m.update(format=2)), ValueError,
                 r"model\.json: unsupported click model format 2", id="version"),
    pytest.param(edit_json(lambda m: m.update(model="item_ctr")), ValueError,
                 r"model\.json: unknown click model 'item_ctr'; did you mean 'item-ctr'",
                 id="unknown-name"),
    pytest.param(edit_json(lambda m: m.pop("kind")), ValueError,
                 r"model\.json: holds a recommender 'item-ctr', not a click model",
                 id="recommender"),
    pytest.param(edit_json(lambda m: m["params"].update(no_such=1)), ValueError,
                 r"model\.json: .*'no_such'", id="unknown-param"),
    pytest.param(edit_json(lambda m: m["state"].pop("global_ctr")), ValueError,
                 r"model\.json: nothing saved as 'global_ctr'", id="missing-value"),
    pytest.param(edit_json(lambda m: m["state"].update(global_ctr="0.3")), ValueError,
                 r"model\.json: 'global_ctr' is '0.3', not a number", id="bad-value"),
    pytest.param(edit_json(lambda m: m["state"].update(items_dtype="str")), ValueError,
                 r"arrays\.npz: 'items' \(int64\) cannot be read as keys of dtype 'str'",
                 id="bad-dtype-tag"),
    pytest.param(lambda f: (f / "arrays.npz").write_bytes(b"not a zip"), ValueError,
                 r"arrays\.npz: cannot read the saved arrays", id="garbage-npz"),
    pytest.param(pickled_items, ValueError, r"arrays\.npz: cannot read the saved arrays",
                 id="object-array"),
    pytest.param(edit_arrays(lambda a: a.pop("item_ctr")), ValueError,
                 r"arrays\.npz: missing array\(s\) item_ctr", id="missing-array"),
    pytest.param(edit_arrays(lambda a: a.update(item_ctr=a["item_ctr"][:-1])), ValueError,
                 r"arrays\.npz: 'item_ctr' has dtype float64 and shape", id="bad-shape"),
    pytest.param(edit_arrays(lambda a: a.update(items=np.r_[a["items"][:1], a["items"][:-1]])),
                 ValueError, r"arrays\.npz: 'items' has repeated keys", id="repeated-keys"),
])
def test_damaged_folders_fail_naming_the_file(saved_item_ctr, tmp_path, tamper, error,
                                              words) -> None:
    import shutil

    folder = Path(shutil.copytree(saved_item_ctr, tmp_path / "model"))
    tamper(folder)
    with pytest.raises(error, match=words):
        ClickModel.load(folder)


def test_loading_checks_the_folder_and_the_class(saved_item_ctr, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no such folder"):
        ClickModel.load(tmp_path / "nothing")
    assert type(ItemCTR.load(saved_item_ctr)) is ItemCTR
    with pytest.raises(TypeError, match="holds a ItemCTR .*not a HashedLogisticCTR"):
        HashedLogisticCTR.load(saved_item_ctr)
    from recexp.models import Recommender

    with pytest.raises(TypeError, match="holds a click model \\('item-ctr'\\), not a recommender"):
        Recommender.load(saved_item_ctr)
