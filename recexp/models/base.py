"""The Recommender protocol every model follows, and the one batched top-k they share."""

from __future__ import annotations

import difflib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recexp._registry import Registry
from recexp.columns import Columns
from recexp.dataset import Dataset, IdMap

__all__ = [
    "EpochCallback",
    "NotFittedError",
    "Recommender",
    "get_model_class",
    "iter_batches",
    "register_model",
    "top_k",
]

EpochCallback = Callable[[int, "Recommender"], bool | None]
"""Called after every epoch of an iterative model with (epoch, model), epoch 1-based.

Return ``True`` to stop training early (pruning, early stopping); ``None``/``False`` goes on.
"""

_FORMAT_VERSION = 1
_MODELS: Registry[type[Recommender]] = Registry("model")


def register_model(cls: type[Recommender]) -> type[Recommender]:
    """Class decorator: make a model known by its ``name`` to configs and :meth:`load`."""
    return _MODELS.register(cls)


def get_model_class(name: str) -> type[Recommender]:
    """The model class registered as ``name``; an unknown name suggests the nearest one."""
    import recexp.models  # noqa: F401  (importing the package registers every model)

    return _MODELS.get(name)


def _check_param_names(cls: type, params: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming every key of ``params`` not in ``cls.param_names``, each with
    the nearest valid one; shared by the ``from_params`` of recommenders and click models."""
    unknown = sorted(set(params) - set(cls.param_names))
    if not unknown:
        return
    hints = []
    for key in unknown:
        near = difflib.get_close_matches(key, cls.param_names, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    raise ValueError(f"{cls.__name__}: unknown parameter(s) {', '.join(hints)}; "
                     f"valid: {', '.join(cls.param_names) or '(none)'}")


class NotFittedError(RuntimeError):
    """The model was used before ``fit``."""


def iter_batches(n: int, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive int32 index arrays covering ``0..n-1`` in pieces of ``batch_size``."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for start in range(0, n, batch_size):
        yield np.arange(start, min(start + batch_size, n), dtype=np.int32)


def top_k(scores: np.ndarray, k: int, *, exclude: sp.csr_matrix | None = None,
          rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` items of each row of ``scores``, best first.

    Parameters
    ----------
    scores : np.float32 array of shape [batch, n_items]
        Modified in place where items are excluded (set to ``-inf``).
    k : int
        List length; capped at ``n_items``.
    exclude : csr_matrix of shape [n_users, n_items], optional
        Items to leave out per user (usually the training interactions).
    rows : np.int32 array of shape [batch], optional
        Which rows of ``exclude`` belong to the rows of ``scores``.

    Returns
    -------
    items : np.int32 array of shape [batch, k]
        Internal item indices, best first; ``-1`` where fewer than ``k`` items remain.
    top : np.float32 array of shape [batch, k]
        Their scores (``-inf`` where ``items`` is ``-1``).

    Notes
    -----
    Ties are broken by the lower item index, so the result is a pure function of the scores.
    Memory is ``O(batch * n_items)``: callers bound it with :func:`iter_batches`.
    """
    batch, n_items = scores.shape
    k = min(int(k), n_items)
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    if exclude is not None:
        if rows is None:
            raise ValueError("top_k: `rows` is needed with `exclude`")
        sub = exclude[rows]
        r = np.repeat(np.arange(batch), np.diff(sub.indptr))
        scores[r, sub.indices] = -np.inf
    if k < n_items:
        # The k-th best score of each row, then every item scoring at least that: ties at the
        # k-th score are all kept and the sort below resolves them to the lower index.
        # np.partition on the values is 2-4x faster than argpartition on negated scores.
        kth = np.partition(scores, n_items - k, axis=1)[:, n_items - k, None]
        above = scores >= kth
        counts = above.sum(axis=1)
        cand_r, cand_c = np.nonzero(above)
        if (counts == k).all():
            cand = cand_c.reshape(batch, k)
        else:
            width = counts.max()
            cand = np.full((batch, width), n_items, dtype=np.int64)
            pos = np.arange(len(cand_r)) - np.repeat(np.cumsum(counts) - counts, counts)
            cand[cand_r, pos] = cand_c
    else:
        cand = np.broadcast_to(np.arange(n_items), (batch, n_items))
    padded = np.concatenate([scores, np.full((batch, 1), -np.inf, scores.dtype)], axis=1)
    cand_scores = np.take_along_axis(padded, cand, axis=1)
    order = np.lexsort((cand, -cand_scores), axis=1)[:, :k]
    items = np.take_along_axis(cand, order, axis=1).astype(np.int32)
    top = np.take_along_axis(cand_scores, order, axis=1).astype(np.float32)
    items[~np.isfinite(top) & (top < 0)] = -1
    return items, top


class Recommender(ABC):
    """Base of every recexp model.

    Subclasses follow scikit-learn's estimator contract: ``__init__`` only stores keyword
    arguments (each a JSON value, listed in :attr:`param_names`); :meth:`fit` forgets any
    earlier fit and returns ``self``; learned state ends in ``_``.

    They implement ``_fit(train)``, ``_score(user_idx)`` and, to be saved, ``_state()`` /
    ``_set_state(arrays)``. The base class keeps the id maps and the training interactions
    (for ``exclude_seen``), and provides :meth:`recommend`, :meth:`save`, :meth:`load` and the
    flat params round trip.

    Unknown users (not in the training Dataset's id map) raise ``KeyError`` in
    :meth:`recommend`; users known but without training interactions are scored by the model
    (a feature-aware model from their features; others as documented on the model).
    """

    name: ClassVar[str] = "base"
    param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._reset()

    # ------------------------------------------------------------------ params
    def get_params(self) -> dict[str, Any]:
        """Flat dict of the constructor's keyword arguments (JSON types)."""
        return {name: getattr(self, name) for name in self.param_names}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Self:
        """A new, unfitted model from :meth:`get_params` output; unknown keys are an error."""
        _check_param_names(cls, params)
        return cls(**params)

    def check_params(self) -> None:  # noqa: B027  (a no-op default is the point)
        """Raise ``ValueError`` naming any impossible parameter value.

        Called by :meth:`fit` and by config checks (so a bad YAML value fails before any
        data is read). Models with constraints override it.
        """

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ fitting
    def _reset(self) -> None:
        self.users_: IdMap | None = None
        self.items_: IdMap | None = None
        self.seen_: sp.csr_matrix | None = None

    @property
    def is_fitted(self) -> bool:
        return self.seen_ is not None

    def fit(self, train: Dataset, **kwargs: Any) -> Self:
        """Learn from ``train`` (forgetting any earlier fit); returns ``self``."""
        self.check_params()
        self._reset()
        self._fit(train, **kwargs)
        self.users_ = train.users
        self.items_ = train.items
        self.seen_ = train.binary
        return self

    @abstractmethod
    def _fit(self, train: Dataset, **kwargs: Any) -> None: ...

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(train) first")

    # ------------------------------------------------------------------ scoring
    @property
    def n_items(self) -> int:
        self._check_fitted()
        return len(self.items_)

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores of every item for some users.

        Parameters
        ----------
        user_idx : np.int32 array of shape [batch]
            Internal user indices of the training Dataset.

        Returns
        -------
        np.float32 array of shape [batch, n_items]
            Higher is better. Columns are internal item indices.
        """
        self._check_fitted()
        user_idx = np.asarray(user_idx, dtype=np.int32)
        if user_idx.size and (user_idx.min() < 0 or user_idx.max() >= len(self.users_)):
            raise IndexError(f"user index out of range 0..{len(self.users_) - 1}")
        out = self._score(user_idx)
        return np.ascontiguousarray(out, dtype=np.float32)

    @abstractmethod
    def _score(self, user_idx: np.ndarray) -> np.ndarray: ...

    def recommend(self, users: Sequence | np.ndarray, *, k: int = 10, exclude_seen: bool = True,
                  batch_size: int = 2048) -> pd.DataFrame:
        """Top-``k`` items for each user, in external ids.

        Parameters
        ----------
        users : sequence of external user ids
        k : int
            List length.
        exclude_seen : bool
            Leave out items the user interacted with in the training data.
        batch_size : int
            Users scored at once; memory is ``batch_size * n_items * 4`` bytes.

        Returns
        -------
        DataFrame
            Columns ``user_id, item_id, score, rank`` (rank 1 = best), users in the order
            given; fewer than ``k`` rows for a user only when fewer items remain.

        Raises
        ------
        KeyError
            A user not in the training data's id map (the message names them).
        """
        self._check_fitted()
        user_idx = self.users_.to_internal(np.asarray(users))
        item_parts, score_parts, user_parts = [], [], []
        for pos in iter_batches(len(user_idx), batch_size):
            rows = user_idx[pos]
            scores = self.score(rows)
            items, top = top_k(scores, k, exclude=self.seen_ if exclude_seen else None,
                               rows=rows)
            item_parts.append(items)
            score_parts.append(top)
            user_parts.append(np.repeat(rows, items.shape[1]))
        if not item_parts:
            return pd.DataFrame({Columns.User: [], Columns.Item: [], Columns.Score: [],
                                 Columns.Rank: []})
        items = np.concatenate([p.ravel() for p in item_parts])
        top = np.concatenate([p.ravel() for p in score_parts])
        rows = np.concatenate(user_parts)
        width = item_parts[0].shape[1]
        rank = np.tile(np.arange(1, width + 1, dtype=np.int32), len(user_idx))
        keep = items >= 0
        return pd.DataFrame({
            Columns.User: self.users_.to_external(rows[keep]),
            Columns.Item: self.items_.to_external(items[keep]),
            Columns.Score: top[keep],
            Columns.Rank: rank[keep],
        })

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (numeric numpy arrays only)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be saved")

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot be loaded")

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to folder ``path``: JSON params + ``.npz`` arrays, no pickle."""
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {f"model/{k}": np.asarray(v) for k, v in self._state().items()}
        for key, ids in (("users", self.users_.ids), ("items", self.items_.ids)):
            arrays[f"ids/{key}"], kind = _ids_to_array(ids)
            arrays[f"ids/{key}_kind"] = np.array(kind)
        arrays["seen/indptr"] = self.seen_.indptr
        arrays["seen/indices"] = self.seen_.indices
        for key, value in arrays.items():
            if value.dtype == object:
                raise TypeError(f"{type(self).__name__}: state {key!r} has object dtype; "
                                "save numeric or string arrays only")
        np.savez(folder / "arrays.npz", **arrays)
        meta = {"format": _FORMAT_VERSION, "model": self.name,
                "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "params": self.get_params()}
        (folder / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Read a model written by :meth:`save` (``allow_pickle=False``)."""
        folder = Path(path)
        meta = json.loads((folder / "model.json").read_text())
        if meta.get("format") != _FORMAT_VERSION:
            raise ValueError(f"{folder}: unsupported model format {meta.get('format')!r}")
        if meta.get("kind") == "click-model":
            raise TypeError(f"{folder} holds a click model ({meta.get('model')!r}), not a "
                            "recommender; load it with recexp.models.ctr.ClickModel.load")
        model_cls = get_model_class(meta["model"])
        if cls is not Recommender and not issubclass(model_cls, cls):
            raise TypeError(f"{folder} holds a {model_cls.__name__}, not a {cls.__name__}")
        model = model_cls.from_params(meta["params"])
        with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        model.users_ = IdMap(_ids_from_array(arrays["ids/users"], arrays["ids/users_kind"]))
        model.items_ = IdMap(_ids_from_array(arrays["ids/items"], arrays["ids/items_kind"]))
        n_users, n_items = len(model.users_), len(model.items_)
        indices = arrays["seen/indices"]
        model.seen_ = sp.csr_matrix(
            (np.ones(len(indices), np.float32), indices, arrays["seen/indptr"]),
            shape=(n_users, n_items))
        model._set_state({k.removeprefix("model/"): v for k, v in arrays.items()
                          if k.startswith("model/")})
        return model


def _ids_to_array(ids: np.ndarray) -> tuple[np.ndarray, str]:
    if np.issubdtype(ids.dtype, np.integer):
        return ids.astype(np.int64), "int"
    return np.asarray([str(v) for v in ids], dtype=np.str_), "str"


def _ids_from_array(arr: np.ndarray, kind: np.ndarray) -> np.ndarray:
    if str(kind) == "int":
        return arr.astype(np.int64)
    return arr.astype(object)
