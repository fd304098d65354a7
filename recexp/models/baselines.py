"""Baselines every experiment should beat: random, popularity, neighbourhood, linear, factor.

All follow :class:`~recexp.models.base.Recommender`: keyword-only constructor arguments that
are JSON values, ``fit`` forgets earlier fits, ``score(user_idx)`` gives float32
``[batch, n_items]``, and ``save``/``load`` write plain arrays (no pickle).

Users without a signal
----------------------
Every personalised model here (ItemKNN, UserKNN, EASE, PureSVD, ALS, BPR, and the
content-based model in :mod:`recexp.models.content`) follows one rule: a user known to the
training Dataset but without training interactions, or whose score row is exactly zero (no
item of theirs has a neighbour, for example), is scored like :class:`MostPopular` — the
number of training interactions of each item. Such a row is on the popularity scale, not the
model's. Items without training interactions score 0 in the collaborative models (their
similarities, factors and EASE weights are all zero).

Reproducibility
---------------
Random, MostPopular, ItemKNN, UserKNN, EASE and content-based are pure functions of the data
and params. PureSVD (ARPACK with a seeded start vector) and ALS (``implicit``, any number of
threads; BLAS is held to one thread while it trains) were bit-reproducible here for a fixed
seed. BPR is bit-reproducible only with ``num_threads=1`` (the default): with more threads
its Hogwild SGD updates race.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy import linalg

from recexp._threads import one_blas_thread
from recexp.dataset import Dataset
from recexp.models.base import Recommender, register_model, top_k

__all__ = ["ALS", "BPR", "EASE", "ItemKNN", "MostPopular", "PureSVD", "Random", "UserKNN"]

# Dense working blocks of the neighbourhood models hold at most this many similarities
# (float64: 32 MB each; the few temporaries of a block stay within some 300 MB), whatever
# the catalogue size.
_BLOCK_ELEMENTS = 1 << 22


# ---------------------------------------------------------------------- shared pieces
def _check(name: str, value: Any, *, low: float, kind: type = float,
           inclusive: bool = True) -> None:
    """Raise ``ValueError`` naming the parameter unless ``value`` is a ``kind`` >= (>) low."""
    ok_type = isinstance(value, int | float) if kind is float else isinstance(value, kind)
    if isinstance(value, bool) or not ok_type:
        raise ValueError(f"{name} must be a{'n int' if kind is int else ' number'}, "
                         f"got {value!r}")
    if value < low or (not inclusive and value == low):
        raise ValueError(f"{name} must be {'>=' if inclusive else '>'} {low}, got {value!r}")


def _user_items(train: Dataset, binary: bool) -> sp.csr_matrix:
    """float32 CSR [n_users, n_items]: the Dataset's weights, or 1.0 per interaction."""
    return train.binary if binary else train.interactions


def _item_popularity(train: Dataset) -> np.ndarray:
    """float32 array [n_items]: number of training interactions of each item."""
    return np.bincount(train.item_idx, minlength=train.n_items).astype(np.float32)


def _fall_back_to_popularity(scores: np.ndarray, user_idx: np.ndarray, seen: sp.csr_matrix,
                             popularity: np.ndarray) -> np.ndarray:
    """Replace (in place) the rows of users without a signal by item popularity."""
    no_history = np.diff(seen.indptr)[user_idx] == 0
    no_signal = no_history | ~scores.any(axis=1)
    if no_signal.any():
        scores[no_signal] = popularity
    return scores


def _csr_to_state(name: str, matrix: sp.spmatrix) -> dict[str, np.ndarray]:
    matrix = sp.csr_matrix(matrix)
    return {f"{name}_data": matrix.data, f"{name}_indices": matrix.indices,
            f"{name}_indptr": matrix.indptr,
            f"{name}_shape": np.asarray(matrix.shape, dtype=np.int64)}


def _csr_from_state(arrays: dict[str, np.ndarray], name: str) -> sp.csr_matrix:
    shape = tuple(int(x) for x in arrays[f"{name}_shape"])
    return sp.csr_matrix((arrays[f"{name}_data"], arrays[f"{name}_indices"],
                          arrays[f"{name}_indptr"]), shape=shape)


def _cosine_neighbours(vectors: sp.csr_matrix, *, neighbours: int,
                       shrink: float) -> sp.csr_matrix:
    """Shrunk cosine similarity between the rows of ``vectors``, pruned to the nearest.

    Parameters
    ----------
    vectors : float32 csr_matrix of shape [n, d]
    neighbours : int
        Similarities kept per row.
    shrink : float
        ``sim(a, b) = <a, b> / (|a| |b| + shrink)``: pulls similarities resting on few
        co-occurrences towards zero.

    Returns
    -------
    float32 csr_matrix of shape [n, n]
        Row ``i`` holds the ``neighbours`` largest similarities of row ``i`` to other rows
        (never itself), ties to the lower index; pairs with no co-occurrence (dot product 0)
        are never neighbours. Built block by block, so memory is ``O(n * neighbours)`` plus
        a bounded dense block.
    """
    vectors = sp.csr_matrix(vectors, dtype=np.float64)
    n = vectors.shape[0]
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
    transposed = vectors.T.tocsr()
    block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        idx = np.arange(start, stop)
        dots = (vectors[start:stop] @ transposed).toarray()
        dots[np.arange(len(idx)), idx] = 0.0
        linked = dots != 0
        denominator = norms[idx, None] * norms[None, :] + shrink
        sims = np.divide(dots, denominator, out=np.full_like(dots, -np.inf), where=linked)
        # Rows with no more links than `neighbours` keep them all; only the others need a
        # top-k, which would otherwise sort every unlinked (-inf) column of short rows.
        few = linked.sum(axis=1) <= neighbours
        r, c = np.nonzero(linked & few[:, None])
        rows.append(idx[r])
        cols.append(c)
        vals.append(sims[r, c])
        if not few.all():
            best, top = top_k(sims[~few], neighbours)
            keep = best >= 0
            rows.append(np.broadcast_to(idx[~few][:, None], best.shape)[keep])
            cols.append(best[keep])
            vals.append(top[keep])
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, n), dtype=np.float32)


def _dense(matrix: sp.spmatrix | np.ndarray) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


# ---------------------------------------------------------------------- non-personalised
@register_model
class Random(Recommender):
    """Uniformly random scores: the floor every model must clear.

    Parameters
    ----------
    random_state : int
        Seed. User ``u``'s scores depend only on ``(random_state, u)``, so they do not change
        with the batch a user is scored in, and refits and loaded models agree exactly.
    """

    name = "random"
    param_names = ("random_state",)

    def __init__(self, *, random_state: int = 0) -> None:
        self.random_state = random_state
        super().__init__()

    def _fit(self, train: Dataset) -> None:
        _check("random_state", self.random_state, low=0, kind=int)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        n_items = self.n_items
        out = np.empty((len(user_idx), n_items), dtype=np.float32)
        for row, user in enumerate(user_idx):
            rng = np.random.default_rng([self.random_state, int(user)])
            out[row] = rng.random(n_items, dtype=np.float32)
        return out

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        pass


@register_model
class MostPopular(Recommender):
    """The same list for everyone: items by number of training interactions.

    The score of an item is its count of training interactions (not the sum of weights).
    Ties go to the lower internal item index, that is the item that appeared first in the
    training data's id map (the rule of :func:`~recexp.models.base.top_k`).
    """

    name = "most_popular"
    param_names = ()

    def _fit(self, train: Dataset) -> None:
        self.popularity_ = _item_popularity(train)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.tile(self.popularity_, (len(user_idx), 1))

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.popularity_ = arrays["popularity"].astype(np.float32)


# ---------------------------------------------------------------------- neighbourhood
class _NeighbourhoodModel(Recommender):
    """What ItemKNN and UserKNN share: params, validation, popularity fallback, state."""

    param_names = ("neighbours", "shrink", "binary")

    def __init__(self, *, neighbours: int = 100, shrink: float = 10.0,
                 binary: bool = False) -> None:
        self.neighbours = neighbours
        self.shrink = shrink
        self.binary = binary
        super().__init__()

    def _prepare(self, train: Dataset) -> sp.csr_matrix:
        _check("neighbours", self.neighbours, low=1, kind=int)
        _check("shrink", self.shrink, low=0.0)
        self.popularity_ = _item_popularity(train)
        self.user_items_ = _user_items(train, bool(self.binary))
        return self.user_items_

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity_, **_csr_to_state("user_items", self.user_items_),
                **_csr_to_state("similarity", self.similarity_)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.popularity_ = arrays["popularity"].astype(np.float32)
        self.user_items_ = _csr_from_state(arrays, "user_items")
        self.similarity_ = _csr_from_state(arrays, "similarity")


@register_model
class ItemKNN(_NeighbourhoodModel):
    """Item-based nearest neighbours with shrunk cosine similarity.

    ``score(u, i) = sum over j in N(i) of x[u, j] * sim(i, j)``, where ``N(i)`` are the
    ``neighbours`` items most similar to ``i`` (itself excluded) and
    ``sim(i, j) = <x_i, x_j> / (|x_i| |x_j| + shrink)`` over the item columns of the
    user-item matrix ``x``. Users without a signal are scored by popularity (module notes).

    Parameters
    ----------
    neighbours : int
        Similar items kept per item (pruning bounds memory at ``n_items * neighbours``).
    shrink : float
        Shrinkage of the cosine (>= 0).
    binary : bool
        Use 1.0 per interaction instead of the Dataset's weights, both for similarities and
        for ``x[u, j]``.

    Notes
    -----
    Similarities are built a block of items at a time with sparse products, so the dense
    working set stays at a few hundred MB however large the catalogue. Learned state:
    ``similarity_`` (float32 CSR ``[n_items, n_items]``, stored transposed: column ``i``
    holds ``N(i)``), ``user_items_`` and ``popularity_``.
    """

    name = "item_knn"

    def _fit(self, train: Dataset) -> None:
        x = self._prepare(train)
        # Row i of the pruned matrix lists N(i); scoring needs it as column i.
        self.similarity_ = sp.csr_matrix(
            _cosine_neighbours(x.T.tocsr(), neighbours=self.neighbours, shrink=self.shrink).T)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        scores = _dense(self.user_items_[user_idx] @ self.similarity_).astype(np.float32)
        return _fall_back_to_popularity(scores, user_idx, self.seen_, self.popularity_)


@register_model
class UserKNN(_NeighbourhoodModel):
    """User-based nearest neighbours with shrunk cosine similarity.

    ``score(u, i) = sum over v in N(u) of sim(u, v) * x[v, i]``, where ``N(u)`` are the
    ``neighbours`` users most similar to ``u`` (itself excluded), with the same shrunk
    cosine as :class:`ItemKNN` over user rows. Users without a signal are scored by
    popularity (module notes).

    Parameters
    ----------
    neighbours : int
        Similar users kept per user.
    shrink : float
        Shrinkage of the cosine (>= 0).
    binary : bool
        Use 1.0 per interaction instead of the Dataset's weights.

    Notes
    -----
    Learned state: ``similarity_`` (float32 CSR ``[n_users, n_users]``, row ``u`` holds
    ``N(u)``), ``user_items_`` and ``popularity_``. Built by blocks of users like ItemKNN.
    """

    name = "user_knn"

    def _fit(self, train: Dataset) -> None:
        x = self._prepare(train)
        self.similarity_ = _cosine_neighbours(x, neighbours=self.neighbours, shrink=self.shrink)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        scores = _dense(self.similarity_[user_idx] @ self.user_items_).astype(np.float32)
        return _fall_back_to_popularity(scores, user_idx, self.seen_, self.popularity_)


# ---------------------------------------------------------------------- linear
@register_model
class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder (Steck, 2019): a closed-form item-item model.

    ``B = argmin |X - X B|^2 + l2 |B|^2`` subject to ``diag(B) = 0``, solved in closed form:
    with ``P = (X^T X + l2 I)^-1``, ``B[i, j] = -P[i, j] / P[j, j]`` and ``B[j, j] = 0``.
    ``score(u) = x_u B``. Users without a signal are scored by popularity (module notes).

    Parameters
    ----------
    l2 : float
        L2 regularisation ``lambda`` (> 0); a few hundred suits MovieLens-sized data.
    binary : bool
        Use 1.0 per interaction instead of the Dataset's weights.
    max_items : int
        Refuse to fit above this many items (``ValueError``), because ``B`` is dense.

    Notes
    -----
    Memory: ``B`` is a dense float32 ``[n_items, n_items]`` (4 bytes * n_items^2 kept; 1.3 GB
    for Netflix's 17,770 titles), and fitting peaks near 12 bytes * n_items^2 (a float64
    Gram matrix inverted in place, then ``B``). The default ``max_items=20_000`` keeps the
    peak under 5 GB; raise it knowingly.
    """

    name = "ease"
    param_names = ("l2", "binary", "max_items")

    def __init__(self, *, l2: float = 500.0, binary: bool = False,
                 max_items: int = 20_000) -> None:
        self.l2 = l2
        self.binary = binary
        self.max_items = max_items
        super().__init__()

    def _fit(self, train: Dataset) -> None:
        _check("l2", self.l2, low=0.0, inclusive=False)
        _check("max_items", self.max_items, low=1, kind=int)
        n = train.n_items
        if n > self.max_items:
            raise ValueError(
                f"EASE: {n:,} items exceed max_items={self.max_items:,}; its dense item-item "
                f"matrix would need about {12 * n * n / 1e9:.1f} GB to fit and "
                f"{4 * n * n / 1e9:.1f} GB to keep. Raise max_items if that memory is there, "
                "or filter the catalogue (k-core) first")
        self.popularity_ = _item_popularity(train)
        self.user_items_ = _user_items(train, bool(self.binary))
        x = self.user_items_.astype(np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices(n)] += self.l2
        # gram is symmetric, so its transpose (a Fortran-ordered view) lets LAPACK invert it
        # in place instead of copying n_items^2 doubles.
        inverse = linalg.inv(gram.T, overwrite_a=True, check_finite=False)
        inverse /= -np.diag(inverse)[None, :]
        inverse[np.diag_indices(n)] = 0.0
        self.weights_ = inverse.astype(np.float32)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        scores = np.asarray(self.user_items_[user_idx] @ self.weights_, dtype=np.float32)
        return _fall_back_to_popularity(scores, user_idx, self.seen_, self.popularity_)

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity_, "weights": self.weights_,
                **_csr_to_state("user_items", self.user_items_)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.popularity_ = arrays["popularity"].astype(np.float32)
        self.weights_ = arrays["weights"].astype(np.float32)
        self.user_items_ = _csr_from_state(arrays, "user_items")


# ---------------------------------------------------------------------- factor models
@register_model
class PureSVD(Recommender):
    """PureSVD (Cremonesi et al., 2010): truncated SVD of the user-item matrix.

    With ``X ~ U S V^T`` (``factors`` singular triplets, ``scipy.sparse.linalg.svds``),
    ``score(u) = x_u V V^T``, the projection of the user's row on the item factor space
    (equal to ``U S V^T`` for training users, and defined from the row alone). Users without
    a signal are scored by popularity (module notes).

    Parameters
    ----------
    factors : int
        Number of singular vectors, ``1 <= factors < min(n_users, n_items)``.
    binary : bool
        Use 1.0 per interaction instead of the Dataset's weights.
    random_state : int
        Seed of ARPACK's start vector (the result is reproducible for a fixed seed).
    """

    name = "pure_svd"
    param_names = ("factors", "binary", "random_state")

    def __init__(self, *, factors: int = 50, binary: bool = False,
                 random_state: int = 0) -> None:
        self.factors = factors
        self.binary = binary
        self.random_state = random_state
        super().__init__()

    def _fit(self, train: Dataset) -> None:
        from scipy.sparse.linalg import svds

        _check("factors", self.factors, low=1, kind=int)
        _check("random_state", self.random_state, low=0, kind=int)
        x = _user_items(train, bool(self.binary))
        if self.factors >= min(x.shape):
            raise ValueError(f"PureSVD: factors={self.factors} must be < min(n_users, n_items)"
                             f" = {min(x.shape)} for a user-item matrix of shape {x.shape}")
        start = np.random.default_rng(self.random_state).uniform(-1.0, 1.0, min(x.shape))
        _, _, vt = svds(x.astype(np.float64), k=self.factors, v0=start, solver="arpack")
        self.popularity_ = _item_popularity(train)
        self.user_items_ = x
        self.item_factors_ = np.ascontiguousarray(vt.T, dtype=np.float32)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        users = np.asarray(self.user_items_[user_idx] @ self.item_factors_)
        scores = (users @ self.item_factors_.T).astype(np.float32)
        return _fall_back_to_popularity(scores, user_idx, self.seen_, self.popularity_)

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity_, "item_factors": self.item_factors_,
                **_csr_to_state("user_items", self.user_items_)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.popularity_ = arrays["popularity"].astype(np.float32)
        self.item_factors_ = arrays["item_factors"].astype(np.float32)
        self.user_items_ = _csr_from_state(arrays, "user_items")


class _ImplicitModel(Recommender):
    """Factors learned by the ``implicit`` library (CPU); scores by a matrix product."""

    def _train_implicit(self, model: Any, user_items: sp.csr_matrix,
                        train: Dataset) -> None:
        model.fit(user_items, show_progress=False)
        users = np.array(model.user_factors, dtype=np.float32)
        items = np.array(model.item_factors, dtype=np.float32)
        # implicit 0.7 leaves users and items without interactions at zero; the documented
        # rule (cold items score 0) should not hang on that library detail, so enforce it.
        users[np.diff(user_items.indptr) == 0] = 0.0
        items[np.bincount(user_items.indices, minlength=train.n_items) == 0] = 0.0
        self.user_factors_ = users
        self.item_factors_ = items
        self.popularity_ = _item_popularity(train)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        scores = self.user_factors_[user_idx] @ self.item_factors_.T
        return _fall_back_to_popularity(scores, user_idx, self.seen_, self.popularity_)

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity_, "user_factors": self.user_factors_,
                "item_factors": self.item_factors_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.popularity_ = arrays["popularity"].astype(np.float32)
        self.user_factors_ = arrays["user_factors"].astype(np.float32)
        self.item_factors_ = arrays["item_factors"].astype(np.float32)


@register_model
class ALS(_ImplicitModel):
    """Implicit-feedback ALS (Hu, Koren & Volinsky, 2008) from the ``implicit`` library.

    Trained by ``implicit.cpu.als.AlternatingLeastSquares`` on the user x item CSR of
    confidences ``alpha * weight``; ``score(u) = user_factors_[u] @ item_factors_.T``.
    Users without a signal are scored by popularity; users and items without training
    interactions get zero factors (module notes).

    Parameters
    ----------
    factors : int
        Latent dimensions.
    regularization : float
        L2 regularisation of the factors (>= 0).
    alpha : float
        Confidence scaling of the interaction weights (> 0).
    iterations : int
        ALS sweeps.
    binary : bool
        Use 1.0 per interaction instead of the Dataset's weights.
    num_threads : int
        Training threads (0: every core). Results were bit-identical for any thread count
        with a fixed seed.
    random_state : int
        Seed of the initial factors.

    Notes
    -----
    Learned state: ``user_factors_`` float32 ``[n_users, factors]``, ``item_factors_``
    float32 ``[n_items, factors]``, ``popularity_``.
    """

    name = "als"
    param_names = ("factors", "regularization", "alpha", "iterations", "binary",
                   "num_threads", "random_state")

    def __init__(self, *, factors: int = 64, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, binary: bool = False, num_threads: int = 0,
                 random_state: int = 0) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.binary = binary
        self.num_threads = num_threads
        self.random_state = random_state
        super().__init__()

    def _fit(self, train: Dataset) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        _check("factors", self.factors, low=1, kind=int)
        _check("regularization", self.regularization, low=0.0)
        _check("alpha", self.alpha, low=0.0, inclusive=False)
        _check("iterations", self.iterations, low=1, kind=int)
        _check("num_threads", self.num_threads, low=0, kind=int)
        _check("random_state", self.random_state, low=0, kind=int)
        with one_blas_thread():
            model = AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                iterations=self.iterations, num_threads=self.num_threads,
                random_state=self.random_state)
            self._train_implicit(model, _user_items(train, bool(self.binary)), train)


@register_model
class BPR(_ImplicitModel):
    """Bayesian Personalized Ranking (Rendle et al., 2009) from the ``implicit`` library.

    Trained by ``implicit.cpu.bpr.BayesianPersonalizedRanking`` on the user x item CSR;
    BPR uses interactions as binary (the Dataset's weights are ignored). The item factors
    carry a bias in their last column (the user factors hold 1.0 there), so
    ``score(u) = user_factors_[u] @ item_factors_.T`` includes it. Users without a signal
    are scored by popularity; users and items without training interactions get zero
    factors (module notes).

    Parameters
    ----------
    factors : int
        Latent dimensions (plus the bias column).
    learning_rate : float
        SGD step (> 0).
    regularization : float
        L2 regularisation (>= 0).
    iterations : int
        Epochs, each of ``n_interactions`` sampled triples.
    verify_negative_samples : bool
        Skip sampled negatives the user actually interacted with.
    num_threads : int
        Training threads. 1 (the default) is bit-reproducible; more threads (0: every core)
        train faster but race (Hogwild), so results vary run to run.
    random_state : int
        Seed of the initial factors and the samplers.
    """

    name = "bpr"
    param_names = ("factors", "learning_rate", "regularization", "iterations",
                   "verify_negative_samples", "num_threads", "random_state")

    def __init__(self, *, factors: int = 64, learning_rate: float = 0.01,
                 regularization: float = 0.01, iterations: int = 100,
                 verify_negative_samples: bool = True, num_threads: int = 1,
                 random_state: int = 0) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.verify_negative_samples = verify_negative_samples
        self.num_threads = num_threads
        self.random_state = random_state
        super().__init__()

    def _fit(self, train: Dataset) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        _check("factors", self.factors, low=1, kind=int)
        _check("learning_rate", self.learning_rate, low=0.0, inclusive=False)
        _check("regularization", self.regularization, low=0.0)
        _check("iterations", self.iterations, low=1, kind=int)
        _check("num_threads", self.num_threads, low=0, kind=int)
        _check("random_state", self.random_state, low=0, kind=int)
        if train.n_interactions == 0:
            raise ValueError("BPR: the training data has no interactions to sample")
        with one_blas_thread():
            model = BayesianPersonalizedRanking(
                factors=self.factors, learning_rate=self.learning_rate,
                regularization=self.regularization, iterations=self.iterations,
                verify_negative_samples=bool(self.verify_negative_samples),
                num_threads=self.num_threads, random_state=self.random_state)
            self._train_implicit(model, train.binary, train)
