"""Click prediction on Criteo-style impression logs: LightFM logistic against CTR baselines.

Every model learns from :class:`Impressions` — one row per ad shown, with its hashed
features, optional user and item keys, and a 0/1 click label — and predicts click
probabilities for new impressions:

>>> from recexp.datasets import load
>>> from recexp.models.ctr import Impressions, LightFMCTR
>>> data = load("criteo-sample")                                   # doctest: +SKIP
>>> rows = Impressions.from_criteo(data)                           # doctest: +SKIP
>>> LightFMCTR(epochs=5).fit(rows).predict_proba(rows)             # doctest: +SKIP
array([0.21, 0.35, ...], dtype=float32)

Models
------
:class:`GlobalCTR`
    The training click rate for every impression (ROC AUC 0.5 by construction).
:class:`ItemCTR`
    Each item's click rate shrunk towards the global rate by a Beta prior.
:class:`HashedLogisticCTR`
    Logistic regression (scikit-learn) on the hashed row features plus user/item key tokens
    hashed with :class:`sklearn.feature_extraction.FeatureHasher`.
:class:`LightFMCTR`
    LightFM with logistic loss: a factorisation machine whose two sides are the impression's
    context (hashed features + user key) and the item.

ROC AUC and log loss are the metrics (``sklearn.metrics`` or :mod:`recexp.metrics`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recexp._registry import Registry
from recexp.columns import Columns
from recexp.models.base import NotFittedError, _check_param_names
from recexp.models.lightfm import SCHEDULES, _csr, _import_lightfm, _writable

__all__ = [
    "ClickModel",
    "GlobalCTR",
    "HashedLogisticCTR",
    "Impressions",
    "ItemCTR",
    "LightFMCTR",
    "get_click_model",
    "register_click_model",
]

# Probabilities stay strictly inside (0, 1) so that log loss is always finite; float32 can
# represent 1 - 1e-7 as a number below 1.
_P_MIN, _P_MAX = 1e-7, 1.0 - 1e-7


# ---------------------------------------------------------------------- the input
@dataclass(frozen=True)
class Impressions:
    """Impressions to learn from or to score: row ``i`` of every field is one ad shown.

    Attributes
    ----------
    features : scipy.sparse.csr_matrix of float32, shape [n_rows, n_features]
        Hashed tokens of each impression (``CriteoData.row_features``, from
        :func:`recexp.datasets.criteo.hash_rows`); any non-negative feature matrix works.
    labels : np.int8 array of shape [n_rows], or None
        1 clicked, 0 shown but not clicked. Needed to fit, not to predict.
    users, items : array of shape [n_rows], or None
        Keys of the user (context) and of the item (ad) of each impression, str or int; a
        missing key (``None``/``NaN``/``<NA>``) is allowed. Models that use keys treat a
        missing or unseen one as "unknown".
    """

    features: sp.csr_matrix
    labels: np.ndarray | None = None
    users: np.ndarray | None = None
    items: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not sp.issparse(self.features) or self.features.ndim != 2:
            raise TypeError("Impressions.features must be a 2-d scipy sparse matrix "
                            f"[n_rows, n_features], got {type(self.features).__name__}")
        features = _csr(self.features)
        n = features.shape[0]
        if features.nnz and not np.isfinite(features.data).all():
            raise ValueError("Impressions.features has non-finite values")
        object.__setattr__(self, "features", features)
        for name in ("labels", "users", "items"):
            value = getattr(self, name)
            if value is None:
                continue
            arr = np.asarray(value.to_numpy() if isinstance(value, pd.Series) else value)
            if arr.ndim != 1 or len(arr) != n:
                raise ValueError(f"Impressions.{name} has shape {arr.shape}; features have "
                                 f"{n} rows")
            object.__setattr__(self, name, arr)
        if self.labels is not None:
            labels = self.labels
            bad = ~np.isin(labels, (0, 1))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValueError(f"Impressions.labels must be 0 or 1; row {row} has "
                                 f"{labels[row].item()!r}")
            object.__setattr__(self, "labels", labels.astype(np.int8))

    def __len__(self) -> int:
        return self.features.shape[0]

    @classmethod
    def from_criteo(cls, data: Any, rows: np.ndarray | None = None) -> Impressions:
        """The impressions of a :class:`~recexp.datasets.criteo.CriteoData`.

        Parameters
        ----------
        data : CriteoData
            Loaded with ``n_hash`` set (so ``row_features`` exists).
        rows : bool mask or int positions, optional
            Only these rows (e.g. a train/test split).
        """
        if getattr(data, "row_features", None) is None:
            raise ValueError("this CriteoData has no row_features: load it with n_hash set")
        inter = data.interactions
        out = cls(features=data.row_features,
                  labels=inter[Columns.Label].to_numpy(dtype=np.int8),
                  users=inter[Columns.User].to_numpy(), items=inter[Columns.Item].to_numpy())
        return out if rows is None else out.take(rows)

    def take(self, rows: np.ndarray) -> Impressions:
        """Some rows (bool mask or positions), in the order given."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if len(rows) != len(self):
                raise ValueError(f"mask has {len(rows)} entries for {len(self)} impressions")
            rows = np.flatnonzero(rows)

        def pick(arr: np.ndarray | None) -> np.ndarray | None:
            return None if arr is None else arr[rows]

        return Impressions(features=self.features[rows], labels=pick(self.labels),
                           users=pick(self.users), items=pick(self.items))

    def require_labels(self, who: str) -> np.ndarray:
        if self.labels is None:
            raise ValueError(f"{who}.fit needs Impressions with labels")
        if len(self) == 0:
            raise ValueError(f"{who}.fit needs at least one impression")
        return self.labels


def _missing(keys: np.ndarray) -> np.ndarray:
    return pd.isna(pd.Series(keys, dtype=object if keys.dtype == object else None)).to_numpy()


def _key_index(vocabulary: pd.Index, keys: np.ndarray | None, n: int) -> np.ndarray:
    """Position of each key in ``vocabulary``; -1 for a missing, unseen or absent key."""
    if keys is None:
        return np.full(n, -1, dtype=np.int64)
    idx = vocabulary.get_indexer(pd.Index(keys)).astype(np.int64)
    idx[_missing(keys)] = -1
    return idx


def _hashed_keys(rows: Impressions, buckets: int, *, users: bool, items: bool) -> sp.csr_matrix:
    """``user=<key>`` / ``item=<key>`` tokens hashed with scikit-learn's FeatureHasher.

    Returns a float32 CSR [n_rows, buckets]; a missing key gives no token. The same matrix as
    ``FeatureHasher`` over each row's token list, but each distinct token is hashed once.
    """
    from sklearn.feature_extraction import FeatureHasher

    hasher = FeatureHasher(n_features=buckets, input_type="string", alternate_sign=False,
                           dtype=np.float32)
    row_parts, col_parts = [], []
    for prefix, keys, use in (("user", rows.users, users), ("item", rows.items, items)):
        if not use or keys is None:
            continue
        present = np.flatnonzero(~_missing(keys))
        if not len(present):
            continue
        # Factorised as text, not as keys: 1 and 1.0 are equal keys but different tokens.
        codes, tokens = pd.factorize(np.asarray([f"{prefix}={key}" for key in keys[present]],
                                                dtype=object))
        bucket = hasher.transform([[token] for token in tokens]).indices  # one per token
        row_parts.append(present)
        col_parts.append(bucket[codes])
    if not row_parts:
        return _csr(sp.csr_matrix((len(rows), buckets), dtype=np.float32))
    r, c = np.concatenate(row_parts), np.concatenate(col_parts)
    # A user and an item token in one bucket add up, as in FeatureHasher.
    out = _csr(sp.coo_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(rows), buckets)))
    out.sum_duplicates()
    return out


def _clip(p: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(p, dtype=np.float64), _P_MIN, _P_MAX).astype(np.float32)


# ---------------------------------------------------------------------- the protocol
_CLICK_MODELS: Registry[type[ClickModel]] = Registry("click model")


def register_click_model(cls: type[ClickModel]) -> type[ClickModel]:
    """Class decorator: make a click model known by its ``name`` to configs."""
    return _CLICK_MODELS.register(cls)


def get_click_model(name: str) -> type[ClickModel]:
    """The click model class registered as ``name``; an unknown name suggests the nearest."""
    return _CLICK_MODELS.get(name)


class ClickModel(ABC):
    """Base of the click models: scikit-learn's estimator contract, probabilities out.

    ``__init__`` only stores keyword arguments (JSON values, listed in :attr:`param_names`);
    :meth:`fit` forgets any earlier fit and returns ``self``; learned state ends in ``_``.
    """

    name: ClassVar[str] = "click-base"
    param_names: ClassVar[tuple[str, ...]] = ()

    def get_params(self) -> dict[str, Any]:
        """Flat dict of the constructor's keyword arguments."""
        return {name: getattr(self, name) for name in self.param_names}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Self:
        """A new, unfitted model from :meth:`get_params` output; unknown keys are an error."""
        _check_param_names(cls, params)
        return cls(**params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def check_params(self) -> None:  # noqa: B027 (a no-op unless a model has constraints)
        """Raise ``ValueError`` naming any impossible parameter value (called by ``fit``
        and usable by config checks, as :meth:`Recommender.check_params`)."""

    @property
    @abstractmethod
    def is_fitted(self) -> bool: ...

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(rows) first")

    @abstractmethod
    def fit(self, rows: Impressions) -> Self:
        """Learn from labelled impressions (forgetting any earlier fit); returns ``self``."""

    def predict_proba(self, rows: Impressions) -> np.ndarray:
        """Click probability of every impression.

        Returns
        -------
        np.float32 array of shape [n_rows]
            Strictly inside (0, 1) (clipped to ``[1e-7, 1 - 1e-7]``), so log loss is finite.
        """
        self._check_fitted()
        return _clip(self._predict(rows))

    @abstractmethod
    def _predict(self, rows: Impressions) -> np.ndarray: ...


# ---------------------------------------------------------------------- baselines
@register_click_model
class GlobalCTR(ClickModel):
    """The same probability for every impression: the training click rate.

    Estimated as ``(clicks + 0.5) / (impressions + 1)`` (the Jeffreys prior's posterior
    mean), so it is never exactly 0 or 1.
    """

    name = "global-ctr"

    def __init__(self) -> None:
        self.ctr_: float | None = None

    @property
    def is_fitted(self) -> bool:
        return self.ctr_ is not None

    def fit(self, rows: Impressions) -> Self:
        self.check_params()
        labels = rows.require_labels(type(self).__name__)
        self.ctr_ = float((labels.sum() + 0.5) / (len(labels) + 1.0))
        return self

    def _predict(self, rows: Impressions) -> np.ndarray:
        return np.full(len(rows), self.ctr_, dtype=np.float64)


@register_click_model
class ItemCTR(ClickModel):
    """Each item's click rate, shrunk towards the global rate by a Beta prior.

    With ``p0`` the global rate and ``m`` the prior strength, the prior is
    ``Beta(m * p0, m * (1 - p0))``: ``m`` pseudo-impressions at the global rate. An item with
    ``c`` clicks in ``n`` impressions gets the posterior mean ``(c + m * p0) / (n + m)``;
    an item never seen in training (or a missing key) gets ``p0``.

    Parameters
    ----------
    prior_strength : float or None
        ``m`` (> 0). ``None`` estimates it from the data by the method of moments (empirical
        Bayes): the spread of the items' rates beyond binomial noise is the prior's variance
        ``p0 (1 - p0) / (m + 1)``; with no spread beyond noise, ``m`` is 1e6 (every item at
        ``p0``).

    Attributes
    ----------
    global_ctr_ : float
    prior_strength_ : float
        The ``m`` used.
    items_ : pandas.Index
        Item keys seen in training.
    item_ctr_ : np.float64 array of shape [n_items]
        Posterior mean of each of ``items_``.
    """

    name = "item-ctr"
    param_names = ("prior_strength",)

    def __init__(self, *, prior_strength: float | None = None) -> None:
        self.prior_strength = prior_strength
        self.item_ctr_: np.ndarray | None = None

    @property
    def is_fitted(self) -> bool:
        return self.item_ctr_ is not None

    def check_params(self) -> None:
        m = self.prior_strength
        if m is not None and not (isinstance(m, int | float) and not isinstance(m, bool)
                                  and np.isfinite(m) and m > 0):
            raise ValueError(f"ItemCTR: prior_strength={m!r}; must be > 0 or None (estimate)")

    def fit(self, rows: Impressions) -> Self:
        self.check_params()
        labels = rows.require_labels(type(self).__name__)
        m = self.prior_strength
        if rows.items is None:
            raise ValueError("ItemCTR.fit needs Impressions with item keys")
        self.item_ctr_ = None
        p0 = float(labels.mean())
        known = ~_missing(rows.items)
        codes, items = pd.factorize(pd.Series(rows.items[known]), sort=False)
        shown = np.bincount(codes, minlength=len(items)).astype(np.float64)
        clicks = np.bincount(codes, weights=labels[known], minlength=len(items))
        if m is None:
            m = self._moments(clicks, shown, p0)
        self.global_ctr_ = p0
        self.prior_strength_ = float(m)
        self.items_ = pd.Index(items)
        self.item_ctr_ = (clicks + m * p0) / (shown + m)
        return self

    @staticmethod
    def _moments(clicks: np.ndarray, shown: np.ndarray, p0: float) -> float:
        if len(shown) < 2 or p0 <= 0.0 or p0 >= 1.0:
            return 1e6
        total = shown.sum()
        rates = clicks / shown
        observed = float(np.sum(shown * (rates - p0) ** 2) / total)
        noise = p0 * (1.0 - p0) * len(shown) / total  # impression-weighted binomial variance
        spread = observed - noise
        if spread <= 0.0:
            return 1e6
        return float(np.clip(p0 * (1.0 - p0) / spread - 1.0, 1.0, 1e6))

    def _predict(self, rows: Impressions) -> np.ndarray:
        idx = _key_index(self.items_, rows.items, len(rows))
        out = np.full(len(rows), self.global_ctr_, dtype=np.float64)
        out[idx >= 0] = self.item_ctr_[idx[idx >= 0]]
        return out


@register_click_model
class HashedLogisticCTR(ClickModel):
    """Logistic regression on the hashed row features plus hashed user and item keys.

    The design matrix is ``[features | FeatureHasher("user=<key>", "item=<key>")]``: the
    impression's hashed tokens and, with ``key_buckets > 0``, one token per key hashed by
    scikit-learn's :class:`~sklearn.feature_extraction.FeatureHasher` (MurmurHash3, no sign
    flipping).

    Parameters
    ----------
    alpha : float
        L2 penalty per impression (> 0); ``lbfgs`` uses ``C = 1 / (alpha * n_rows)``, the same
        objective.
    solver : {"lbfgs", "sgd"}
        :class:`~sklearn.linear_model.LogisticRegression` (the optimum, to a gradient below
        ``min(1e-4, alpha / 100)``) or :class:`~sklearn.linear_model.SGDClassifier` with log
        loss (for very many rows).
    key_buckets : int
        Hash buckets of the key tokens; 0 leaves the keys out.
    max_iter : int
        Iterations (lbfgs; a ``ConvergenceWarning`` when too few) or epochs (sgd).
    random_state : int
        Seed of the SGD shuffle.

    Attributes
    ----------
    model_ : LogisticRegression or SGDClassifier
        Fitted on the ``columns_`` of the design matrix only.
    n_features_ : int
        Columns of the design matrix (row features + key buckets).
    columns_ : int array of shape [n_used]
        The design matrix's columns with a non-zero in training, sorted; every other column
        has weight 0 in this model (exactly: see :meth:`fit`).
    """

    name = "hashed-lr"
    param_names = ("alpha", "solver", "key_buckets", "max_iter", "random_state")

    def __init__(self, *, alpha: float = 1e-5, solver: str = "lbfgs", key_buckets: int = 1 << 18,
                 max_iter: int = 1000, random_state: int = 0) -> None:
        self.alpha = alpha
        self.solver = solver
        self.key_buckets = key_buckets
        self.max_iter = max_iter
        self.random_state = random_state
        self.model_ = None

    @property
    def is_fitted(self) -> bool:
        return self.model_ is not None

    def _design(self, rows: Impressions) -> sp.csr_matrix:
        if self.key_buckets == 0:
            return rows.features
        keys = _hashed_keys(rows, self.key_buckets, users=True, items=True)
        return sp.csr_matrix(sp.hstack([rows.features, keys], format="csr"))

    def check_params(self) -> None:
        if self.solver not in ("lbfgs", "sgd"):
            raise ValueError(f"HashedLogisticCTR: solver={self.solver!r}; use 'lbfgs' or 'sgd'")
        if not (isinstance(self.alpha, int | float) and self.alpha > 0):
            raise ValueError(f"HashedLogisticCTR: alpha={self.alpha!r}; must be > 0")
        for name in ("key_buckets", "max_iter"):
            value = getattr(self, name)
            low = 0 if name == "key_buckets" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"HashedLogisticCTR: {name}={value!r}; must be an int >= {low}")

    def fit(self, rows: Impressions) -> Self:
        from sklearn.linear_model import LogisticRegression, SGDClassifier

        self.check_params()
        labels = rows.require_labels(type(self).__name__)
        self.model_ = None
        if len(np.unique(labels)) < 2:
            raise ValueError("HashedLogisticCTR.fit needs both clicks and non-clicks")
        X = self._design(rows)
        self.n_features_ = X.shape[1]
        # A column that is zero in every training row has weight 0 at the optimum (its
        # gradient is the L2 term alone) and keeps the starting weight 0 in both solvers, so
        # leaving it out gives the same model. Of ~1.3M hashed columns a few percent are used,
        # and L-BFGS's work per iteration is proportional to the columns it carries.
        # (scikit-learn wants one column at least: a zero one keeps the intercept-only model.)
        self.columns_ = np.unique(X.indices) if X.nnz else np.arange(min(1, X.shape[1]))
        X = X[:, self.columns_]
        if self.solver == "lbfgs":
            # The objective is alpha-strongly convex, so the distance to the optimum is about
            # gradient / alpha: scikit-learn's fixed tol=1e-4 left predictions up to 0.08 away
            # from it at alpha=1e-5 (and wherever rounding happened to stop the solver). In
            # float32 the loss is too coarse for the line search to get that close.
            model = LogisticRegression(C=1.0 / (self.alpha * len(rows)), solver="lbfgs",
                                       max_iter=self.max_iter, tol=min(1e-4, self.alpha / 100))
            X = X.astype(np.float64)
        else:
            model = SGDClassifier(loss="log_loss", alpha=self.alpha, max_iter=self.max_iter,
                                  tol=1e-4, random_state=self.random_state)
        with _blas_single_thread():
            self.model_ = model.fit(X, labels)
        return self

    def _predict(self, rows: Impressions) -> np.ndarray:
        X = self._design(rows)
        if X.shape[1] != self.n_features_:
            raise ValueError(f"HashedLogisticCTR: features have {X.shape[1]} columns, the "
                             f"model was fitted on {self.n_features_}")
        return self.model_.predict_proba(X[:, self.columns_])[:, 1]


def _blas_single_thread():
    # L-BFGS makes a few level-1 BLAS calls per iteration on vectors of all the weights; with
    # threaded BLAS (numpy's and scipy's wheels each bring an OpenBLAS pool) the threads'
    # hand-offs cost more than the arithmetic: 10x slower on 2 cores.
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "blas")


# ---------------------------------------------------------------------- LightFM
@register_click_model
class LightFMCTR(ClickModel):
    """LightFM with logistic loss over hashed features: a two-sided factorisation machine.

    LightFM scores a (user, item) pair as ``sigmoid(b_u + b_i + <e_u, e_i>)`` where each side
    is the sum of its features' biases and embeddings. Here

    - the **"user" of a pair is the impression itself**, described by its hashed row
      features plus (``key_buckets > 0``) its hashed user key: one LightFM user per
      training row, so nothing is learned per row, only per feature;
    - the **item is the impression's item key** (identity features): one LightFM item per
      item key seen in training, plus one "other" item shared by impressions whose item key
      is missing in training, and used at prediction for missing or unseen keys.

    So the model has a linear term per token and per item (the biases) and a learned
    interaction between every token and every item (the embeddings), which hashed logistic
    regression has not. Without item keys every impression has the one "other" item and the
    model is close to logistic regression. Labels enter as +1 (click) / -1 (no click).

    Parameters
    ----------
    no_components : int
    learning_schedule : {"adagrad", "adadelta"}
    learning_rate, rho, epsilon : float
    item_alpha, user_alpha : float
        L2 penalties of the item embeddings and of the token embeddings, per update.
    epochs : int
    num_threads : int
        1 is bit-reproducible; more threads are not (see
        :class:`~recexp.models.lightfm.LightFMRecommender`).
    random_state : int
    key_buckets : int
        Hash buckets for user-key tokens on the context side; 0 leaves user keys out.
    """

    name = "lightfm-ctr"
    param_names = ("no_components", "learning_schedule", "learning_rate", "rho", "epsilon",
                   "item_alpha", "user_alpha", "epochs", "num_threads", "random_state",
                   "key_buckets")

    def __init__(self, *, no_components: int = 16, learning_schedule: str = "adagrad",
                 learning_rate: float = 0.05, rho: float = 0.95, epsilon: float = 1e-6,
                 item_alpha: float = 1e-6, user_alpha: float = 1e-6, epochs: int = 10,
                 num_threads: int = 1, random_state: int = 0,
                 key_buckets: int = 1 << 18) -> None:
        self.no_components = no_components
        self.learning_schedule = learning_schedule
        self.learning_rate = learning_rate
        self.rho = rho
        self.epsilon = epsilon
        self.item_alpha = item_alpha
        self.user_alpha = user_alpha
        self.epochs = epochs
        self.num_threads = num_threads
        self.random_state = random_state
        self.key_buckets = key_buckets
        self.lightfm_ = None

    @property
    def is_fitted(self) -> bool:
        return self.lightfm_ is not None

    def check_params(self) -> None:
        for name in ("no_components", "epochs", "num_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"LightFMCTR: {name}={value!r}; must be an integer >= 1")
        if self.learning_schedule not in SCHEDULES:
            raise ValueError(f"LightFMCTR: learning_schedule={self.learning_schedule!r}; use "
                             f"one of {SCHEDULES}")
        if not (0.0 < self.rho < 1.0) or self.learning_rate <= 0 or self.epsilon < 0:
            raise ValueError("LightFMCTR: need learning_rate > 0, 0 < rho < 1, epsilon >= 0; "
                             f"got {self.learning_rate!r}, {self.rho!r}, {self.epsilon!r}")
        if self.item_alpha < 0 or self.user_alpha < 0:
            raise ValueError("LightFMCTR: item_alpha and user_alpha must be >= 0")
        if not isinstance(self.key_buckets, int) or self.key_buckets < 0:
            raise ValueError(f"LightFMCTR: key_buckets={self.key_buckets!r}; must be an "
                             "int >= 0")
        if not isinstance(self.random_state, int) or isinstance(self.random_state, bool):
            raise ValueError(f"LightFMCTR: random_state={self.random_state!r}; must be an int")

    def _context(self, rows: Impressions) -> sp.csr_matrix:
        if self.key_buckets == 0:
            return rows.features
        keys = _hashed_keys(rows, self.key_buckets, users=True, items=False)
        return _csr(sp.hstack([rows.features, keys], format="csr"))

    def _item_index(self, rows: Impressions) -> np.ndarray:
        idx = _key_index(self.items_, rows.items, len(rows))
        idx[idx < 0] = len(self.items_)  # the shared "other" item
        return idx

    def fit(self, rows: Impressions, *,
            callback: Callable[[int, LightFMCTR], bool | None] | None = None) -> Self:
        """Train epoch by epoch; ``callback(epoch, self)`` after each, ``True`` stops.

        Inside the callback :meth:`predict_proba` uses the current embeddings.
        """
        self.check_params()
        labels = rows.require_labels(type(self).__name__)
        self.lightfm_ = None
        LightFM = _import_lightfm()
        known = (~_missing(rows.items) if rows.items is not None
                 else np.zeros(len(rows), dtype=bool))
        _, vocabulary = pd.factorize(pd.Series(rows.items[known]) if known.any()
                                     else pd.Series([], dtype=object), sort=False)
        self.items_ = pd.Index(vocabulary)
        item_idx = self._item_index(rows)
        n = len(rows)
        # One LightFM user per impression; its only interaction is with its item.
        interactions = sp.coo_matrix(
            (np.where(labels == 1, 1.0, -1.0).astype(np.float32),
             (np.arange(n, dtype=np.int32), item_idx.astype(np.int32))),
            shape=(n, len(self.items_) + 1))
        interactions.row = _writable(interactions.row, np.int32)
        interactions.col = _writable(interactions.col, np.int32)
        context = self._context(rows)
        lfm = LightFM(no_components=self.no_components, loss="logistic",
                      learning_schedule=self.learning_schedule,
                      learning_rate=self.learning_rate, rho=self.rho, epsilon=self.epsilon,
                      item_alpha=self.item_alpha, user_alpha=self.user_alpha,
                      random_state=self.random_state)
        self.epochs_trained_ = 0
        for epoch in range(1, self.epochs + 1):
            lfm.fit_partial(interactions, user_features=context, epochs=1,
                            num_threads=self.num_threads)
            self.lightfm_ = lfm
            self.epochs_trained_ = epoch
            if callback is not None and callback(epoch, self):
                break
        return self

    def _predict(self, rows: Impressions) -> np.ndarray:
        lfm = self.lightfm_
        context = self._context(rows)
        if context.shape[1] != lfm.user_embeddings.shape[0]:
            raise ValueError(f"LightFMCTR: features have {context.shape[1]} columns (with key "
                             f"buckets), the model was fitted on {lfm.user_embeddings.shape[0]}")
        user_emb = np.asarray(context @ lfm.user_embeddings, dtype=np.float64)
        user_bias = np.asarray(context @ lfm.user_biases, dtype=np.float64)
        item = self._item_index(rows)
        logit = (user_bias + lfm.item_biases[item]
                 + np.einsum("ij,ij->i", user_emb, lfm.item_embeddings[item]))
        return 1.0 / (1.0 + np.exp(-logit))
