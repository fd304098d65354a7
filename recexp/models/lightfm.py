"""LightFM hybrid matrix factorisation behind the :class:`~recexp.models.base.Recommender` protocol.

>>> from recexp.models.lightfm import LightFMRecommender
>>> model = LightFMRecommender(loss="warp", no_components=32, epochs=20)
>>> model.fit(train, callback=lambda epoch, m: epoch >= 5)      # doctest: +SKIP
>>> model.recommend([1, 2, 3], k=10)                              # doctest: +SKIP

Scores come from the user and item *representations* (feature embeddings summed through the
feature matrices, biases included) with one matrix product per batch of users, never from
``LightFM.predict`` over (user, item) pairs: see ``benchmarks/bench_lightfm.py`` for the speed
and for the check that both give the same top-k lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recexp.dataset import Dataset
from recexp.models.base import EpochCallback, NotFittedError, Recommender, register_model

__all__ = ["LightFMRecommender"]

LOSSES = ("warp", "bpr", "warp-kos", "logistic")
SCHEDULES = ("adagrad", "adadelta")
USE_FEATURES = ("both", "user", "item", "none")


def _import_lightfm():
    try:
        from lightfm import LightFM
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "LightFMRecommender needs the `lightfm` module: pip install rectools-lightfm "
            "(the `lightfm` 1.17 package on PyPI no longer builds)") from err
    return LightFM


def _writable(arr: np.ndarray, dtype: type) -> np.ndarray:
    # LightFM's Cython code takes non-const memoryviews: a read-only buffer (pandas 3 hands
    # those out) fails with "buffer source array is read-only", so copy when needed.
    arr = np.asarray(arr)
    if arr.dtype != dtype or not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.array(arr, dtype=dtype, order="C", copy=True)
    return arr


def _csr(matrix: sp.spmatrix) -> sp.csr_matrix:
    # LightFM wants scipy's *_matrix types (not *_array), float32 data, int32 indices.
    out = sp.csr_matrix(matrix, dtype=np.float32)
    out.data = _writable(out.data, np.float32)
    out.indices = _writable(out.indices, np.int32)
    out.indptr = _writable(out.indptr, np.int32)
    return out


def _drop_identity(features: sp.csr_matrix, cold: np.ndarray) -> sp.csr_matrix:
    """``features`` without the identity entry ``[i, i]`` of every row ``i`` with ``cold[i]``.

    Only meaningful when the identity block comes first (the Dataset's layout).
    """
    if not cold.any():
        return features
    out = features.copy()
    rows = np.repeat(np.arange(out.shape[0], dtype=np.int64), np.diff(out.indptr))
    drop = cold[rows] & (out.indices == rows)
    out.data[drop] = 0.0
    out.eliminate_zeros()
    return out


def _augmented(biases: np.ndarray, embeddings: np.ndarray, *, side: str) -> np.ndarray:
    """Representations laid out so that one product gives embeddings' dot plus both biases.

    users: ``[emb, bias, 1]``; items: ``[emb, 1, bias]``; so ``U @ I.T = e_u.e_i + b_u + b_i``.
    """
    n, d = embeddings.shape
    out = np.empty((n, d + 2), dtype=np.float32)
    out[:, :d] = embeddings
    if side == "user":
        out[:, d] = biases
        out[:, d + 1] = 1.0
    else:
        out[:, d] = 1.0
        out[:, d + 1] = biases
    return out


@register_model
class LightFMRecommender(Recommender):
    """LightFM (Kula 2015): users and items as sums of their features' embeddings.

    Parameters
    ----------
    no_components : int
        Dimension of the feature embeddings.
    loss : {"warp", "bpr", "warp-kos", "logistic"}
        ``warp`` optimises the top of the list, ``bpr`` the ROC AUC, ``warp-kos`` the k-th
        positive of each user (no sample weights), ``logistic`` treats every training
        interaction as a positive label (for labelled clicks see :mod:`recexp.models.ctr`).
    learning_schedule : {"adagrad", "adadelta"}
    learning_rate : float
        Initial learning rate (adagrad).
    rho : float
        Moving-average coefficient (adadelta), in (0, 1).
    epsilon : float
        Conditioning term (adadelta), >= 0.
    item_alpha, user_alpha : float
        L2 penalty on item / user feature embeddings, >= 0.
    max_sampled : int
        Most negatives sampled per positive (warp, warp-kos).
    k, n : int
        warp-kos: update on the k-th of up to n positives sampled per user.
    epochs : int
        Passes over the training interactions (a callback may stop earlier).
    num_threads : int
        OpenMP threads for training. **1 is bit-reproducible** (same data + seed -> the same
        model, bit for bit); more threads race on shared embeddings (Hogwild) and are not.
    random_state : int or None
        Seed of initialisation, shuffling and negative sampling; ``None`` is unseeded.
    use_features : {"both", "user", "item", "none"}
        Which of the Dataset's feature matrices to give LightFM. A side left out uses one
        identity feature per user/item (pure collaborative filtering on that side). The
        Dataset decides the layout of a side given in (identity columns first when
        ``identity_features`` is on, or when it has no side features).
    use_weights : bool
        Pass the Dataset's interaction weights as LightFM sample weights (the
        interactions themselves are binary). Not possible with ``warp-kos`` when the weights
        are not all 1.

    Attributes
    ----------
    lightfm_ : lightfm.LightFM
        The fitted LightFM model (after :meth:`load`: its learned arrays, with fresh
        optimizer accumulators).
    user_repr_ : np.float32 array of shape [n_users, no_components + 2]
        ``[embedding, bias, 1]`` of every user.
    item_repr_ : np.float32 array of shape [n_items, no_components + 2]
        ``[embedding, 1, bias]`` of every item, so ``user_repr_ @ item_repr_.T`` is the score.
    epochs_trained_ : int
        Epochs run (fewer than ``epochs`` when a callback stopped training).

    Notes
    -----
    *Cold users and items* — known to the training Dataset but without training
    interactions — are represented by their side features alone: their identity feature, if
    the layout has one, is dropped when the representations are computed, because its
    embedding is only the random initialisation (users) or was only ever pushed down as a
    sampled negative (items). Without side features a cold item's representation is zero
    (every cold item scores the user's bias: a tie, ranked by the lower index). Scores of
    warm pairs equal ``lightfm_.predict`` with the same feature matrices (to float32
    rounding).

    *Saving* writes the four learned LightFM arrays (``user_embeddings``, ``user_biases``,
    ``item_embeddings``, ``item_biases``) and the precomputed representations. Scores are
    computed from the saved representations, so a loaded model scores bit-identically
    without storing the training feature matrices (which can be far bigger) and without
    depending on the summation order of a sparse product; the LightFM arrays make
    ``lightfm_`` usable again (``predict``, new feature rows).
    """

    name = "lightfm"
    param_names = ("no_components", "loss", "learning_schedule", "learning_rate", "rho",
                   "epsilon", "item_alpha", "user_alpha", "max_sampled", "k", "n", "epochs",
                   "num_threads", "random_state", "use_features", "use_weights")

    def __init__(self, *, no_components: int = 32, loss: str = "warp",
                 learning_schedule: str = "adagrad", learning_rate: float = 0.05,
                 rho: float = 0.95, epsilon: float = 1e-6, item_alpha: float = 0.0,
                 user_alpha: float = 0.0, max_sampled: int = 10, k: int = 5, n: int = 10,
                 epochs: int = 20, num_threads: int = 1, random_state: int | None = 0,
                 use_features: str = "both", use_weights: bool = True) -> None:
        self.no_components = no_components
        self.loss = loss
        self.learning_schedule = learning_schedule
        self.learning_rate = learning_rate
        self.rho = rho
        self.epsilon = epsilon
        self.item_alpha = item_alpha
        self.user_alpha = user_alpha
        self.max_sampled = max_sampled
        self.k = k
        self.n = n
        self.epochs = epochs
        self.num_threads = num_threads
        self.random_state = random_state
        self.use_features = use_features
        self.use_weights = use_weights
        super().__init__()

    # ------------------------------------------------------------------ validation
    def check_params(self) -> None:
        """Raise ``ValueError`` naming the first bad parameter (LightFM itself asserts).

        Called by :meth:`fit` (through the base class), :meth:`training_inputs` and config
        checks.
        """
        def choice(name: str, options: tuple[str, ...]) -> None:
            value = getattr(self, name)
            if value not in options:
                raise ValueError(f"LightFMRecommender: {name}={value!r}; "
                                 f"choose one of {', '.join(map(repr, options))}")

        def number(name: str, *, low: float, strict: bool = False, integer: bool = False,
                   high: float | None = None) -> None:
            value = getattr(self, name)
            kind = (int,) if integer else (int, float)
            ok = isinstance(value, kind) and not isinstance(value, bool)
            ok = ok and np.isfinite(value) and (value > low if strict else value >= low)
            ok = ok and (high is None or value < high)
            if not ok:
                bound = f"> {low}" if strict else f">= {low}"
                if high is not None:
                    bound += f" and < {high}"
                what = "an integer" if integer else "a number"
                raise ValueError(f"LightFMRecommender: {name}={value!r}; must be {what} {bound}")

        choice("loss", LOSSES)
        choice("learning_schedule", SCHEDULES)
        choice("use_features", USE_FEATURES)
        for name in ("no_components", "max_sampled", "k", "n", "epochs", "num_threads"):
            number(name, low=1, integer=True)
        number("learning_rate", low=0.0, strict=True)
        number("rho", low=0.0, strict=True, high=1.0)
        for name in ("epsilon", "item_alpha", "user_alpha"):
            number(name, low=0.0)
        if self.random_state is not None and (not isinstance(self.random_state, int)
                                              or isinstance(self.random_state, bool)):
            raise ValueError(f"LightFMRecommender: random_state={self.random_state!r}; "
                             "must be an int seed or None (seeds stay JSON in configs)")
        if not isinstance(self.use_weights, bool):
            raise ValueError(f"LightFMRecommender: use_weights={self.use_weights!r}; "
                             "must be True or False")

    # ------------------------------------------------------------------ fitting
    def _reset(self) -> None:
        super()._reset()
        self.lightfm_ = None
        self.user_repr_: np.ndarray | None = None
        self.item_repr_: np.ndarray | None = None
        self.epochs_trained_ = 0
        self._train_inputs: dict[str, Any] | None = None

    def _new_lightfm(self):
        LightFM = _import_lightfm()
        return LightFM(no_components=self.no_components, k=self.k, n=self.n,
                       learning_schedule=self.learning_schedule, loss=self.loss,
                       learning_rate=self.learning_rate, rho=self.rho, epsilon=self.epsilon,
                       item_alpha=self.item_alpha, user_alpha=self.user_alpha,
                       max_sampled=self.max_sampled, random_state=self.random_state)

    def training_inputs(self, train: Dataset) -> dict[str, Any]:
        """The arguments this model gives ``LightFM.fit_partial`` for ``train``.

        Useful to run LightFM directly on the same data (the benchmark and tests do).

        Returns
        -------
        dict
            ``interactions`` (float32 ``coo_matrix`` [n_users, n_items] of ones),
            ``sample_weight`` (float32 ``coo_matrix`` of the same entries, or ``None`` when
            unused or all 1), ``user_features`` / ``item_features`` (float32 ``csr_matrix``
            [n_users | n_items, n_features], or ``None`` for a side left out: an identity
            matrix, which training passes explicitly so LightFM does not rebuild it).

        Raises
        ------
        ValueError
            A bad parameter, a negative weight, or warp-kos with non-unit weights.
        """
        self.check_params()
        weights = train.interactions.tocoo()
        row = _writable(weights.row, np.int32)
        col = _writable(weights.col, np.int32)
        data = _writable(weights.data, np.float32)
        if (data < 0).any():
            bad = int(np.flatnonzero(data < 0)[0])
            raise ValueError(
                f"LightFMRecommender: negative interaction weight {data[bad]} (user "
                f"{train.user_ids[row[bad]]!r}, item {train.item_ids[col[bad]]!r}); LightFM "
                "needs weights >= 0")
        shape = (train.n_users, train.n_items)
        # Interactions and weights share one (row, col) order, as LightFM requires.
        interactions = sp.coo_matrix((np.ones(len(data), np.float32), (row, col)), shape=shape)
        sample_weight = None
        if self.use_weights and not np.all(data == 1.0):
            if self.loss == "warp-kos":
                raise ValueError("LightFMRecommender: loss='warp-kos' cannot use sample "
                                 "weights and this Dataset's weights are not all 1; set "
                                 "use_weights=False")
            sample_weight = sp.coo_matrix((data, (row, col)), shape=shape)
        user_features = (_csr(train.user_features) if self.use_features in ("both", "user")
                         else None)
        item_features = (_csr(train.item_features) if self.use_features in ("both", "item")
                         else None)
        return {"interactions": interactions, "sample_weight": sample_weight,
                "user_features": user_features, "item_features": item_features}

    def _fit(self, train: Dataset, *, callback: EpochCallback | None = None) -> None:
        """Train epoch by epoch; ``callback(epoch, self)`` after each, ``True`` stops.

        Inside the callback the model scores with the current embeddings (``score``,
        ``recommend``), so validation curves, pruning and early stopping work as usual.
        """
        inputs = self.training_inputs(train)
        lfm = self._new_lightfm()
        # The base class sets these after _fit; a callback that scores needs them now.
        self.users_, self.items_, self.seen_ = train.users, train.items, train.binary
        self._cold_users = np.bincount(train.user_idx, minlength=train.n_users) == 0
        self._cold_items = np.bincount(train.item_idx, minlength=train.n_items) == 0
        self._identity_users = (inputs["user_features"] is None or train.identity_features
                                or train.user_side is None)
        self._identity_items = (inputs["item_features"] is None or train.identity_features
                                or train.item_side is None)
        self._train_inputs = inputs
        self.lightfm_ = lfm
        # fit_partial builds an identity matrix for a side given as None on every call; build
        # it once instead (the same matrix, so the same model).
        user_features, item_features = (
            _csr(sp.identity(n, dtype=np.float32, format="csr")) if f is None else f
            for f, n in ((inputs["user_features"], train.n_users),
                         (inputs["item_features"], train.n_items)))
        try:
            for epoch in range(1, self.epochs + 1):
                lfm.fit_partial(inputs["interactions"], user_features=user_features,
                                item_features=item_features,
                                sample_weight=inputs["sample_weight"], epochs=1,
                                num_threads=self.num_threads)
                self.epochs_trained_ = epoch
                self.user_repr_ = self.item_repr_ = None  # stale: rebuilt when scored
                if callback is not None and callback(epoch, self):
                    break
            self._build_representations()
        except BaseException:
            self._reset()
            raise
        finally:
            self._train_inputs = None

    @classmethod
    def from_lightfm(cls, model: Any, train: Dataset, *, use_features: str = "none",
                     num_threads: int = 1, use_weights: bool = True) -> LightFMRecommender:
        """Wrap a LightFM model trained elsewhere on ``train``'s matrices.

        Parameters
        ----------
        model : lightfm.LightFM
            Fitted on ``train`` with the feature matrices ``use_features`` selects (``None``
            for a side left out); its hyper-parameters are copied into the wrapper's params.
        train : Dataset
            Provides the id maps, the seen items and the feature matrices.
        use_features, num_threads, use_weights
            As for the constructor. ``epochs`` is set to 1 (a placeholder: the wrapper does not
            know how long ``model`` was trained) and ``epochs_trained_`` to 0.
        """
        if getattr(model, "item_embeddings", None) is None:
            raise NotFittedError("from_lightfm: the LightFM model is not fitted")
        seed = model.initial_random_state
        self = cls(no_components=int(model.no_components), loss=model.loss,
                   learning_schedule=model.learning_schedule,
                   learning_rate=float(model.learning_rate), rho=float(model.rho),
                   epsilon=float(model.epsilon), item_alpha=float(model.item_alpha),
                   user_alpha=float(model.user_alpha), max_sampled=int(model.max_sampled),
                   k=int(model.k), n=int(model.n), epochs=1, num_threads=num_threads,
                   random_state=seed if isinstance(seed, int) else None,
                   use_features=use_features, use_weights=use_weights)
        self.check_params()
        self.users_, self.items_, self.seen_ = train.users, train.items, train.binary
        self._cold_users = np.bincount(train.user_idx, minlength=train.n_users) == 0
        self._cold_items = np.bincount(train.item_idx, minlength=train.n_items) == 0
        use_user = use_features in ("both", "user")
        use_item = use_features in ("both", "item")
        self._identity_users = not use_user or train.identity_features or train.user_side is None
        self._identity_items = not use_item or train.identity_features or train.item_side is None
        self._train_inputs = {"user_features": _csr(train.user_features) if use_user else None,
                              "item_features": _csr(train.item_features) if use_item else None}
        self.lightfm_ = model
        self.epochs_trained_ = 0
        try:
            self._build_representations()
        finally:
            self._train_inputs = None
        return self

    # ------------------------------------------------------------------ representations
    def _side_repr(self, side: str) -> np.ndarray:
        lfm = self.lightfm_
        if side == "user":
            features, cold, identity = (self._train_inputs["user_features"], self._cold_users,
                                        self._identity_users)
            biases, embeddings = lfm.user_biases, lfm.user_embeddings
        else:
            features, cold, identity = (self._train_inputs["item_features"], self._cold_items,
                                        self._identity_items)
            biases, embeddings = lfm.item_biases, lfm.item_embeddings
        if features is None:
            # LightFM's implicit identity: the representation is the embedding itself.
            b, e = biases.copy(), embeddings.copy()
            b[cold] = 0.0
            e[cold] = 0.0
        else:
            if identity:
                features = _drop_identity(features, cold)
            b = np.asarray(features @ biases, dtype=np.float32)
            e = np.asarray(features @ embeddings, dtype=np.float32)
        return _augmented(b, e, side=side)

    def _build_representations(self) -> None:
        if self._train_inputs is None:
            raise NotFittedError("LightFMRecommender: representations are only rebuilt "
                                 "during fit")
        self.user_repr_ = self._side_repr("user")
        self.item_repr_ = self._side_repr("item")

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        if self.user_repr_ is None:  # inside a callback, after an epoch
            self._build_representations()
        return self.user_repr_[user_idx] @ self.item_repr_.T

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        lfm = self.lightfm_
        return {"user_embeddings": lfm.user_embeddings, "user_biases": lfm.user_biases,
                "item_embeddings": lfm.item_embeddings, "item_biases": lfm.item_biases,
                "user_repr": self.user_repr_, "item_repr": self.item_repr_,
                "epochs_trained": np.array(self.epochs_trained_, dtype=np.int64)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        lfm = self._new_lightfm()
        n_item_features, d = arrays["item_embeddings"].shape
        n_user_features = arrays["user_embeddings"].shape[0]
        # Fresh optimizer accumulators, then the learned arrays: predict() works again;
        # training on from here would restart the adagrad/adadelta statistics.
        lfm._initialize(d, n_item_features, n_user_features)
        lfm.item_embeddings = _writable(arrays["item_embeddings"], np.float32)
        lfm.item_biases = _writable(arrays["item_biases"], np.float32)
        lfm.user_embeddings = _writable(arrays["user_embeddings"], np.float32)
        lfm.user_biases = _writable(arrays["user_biases"], np.float32)
        self.lightfm_ = lfm
        self.user_repr_ = _writable(arrays["user_repr"], np.float32)
        self.item_repr_ = _writable(arrays["item_repr"], np.float32)
        self.epochs_trained_ = int(arrays["epochs_trained"])
