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

A fitted model is saved to a folder as ``model.json`` (format version, registry name, params,
learned numbers) and ``arrays.npz`` (learned arrays; numbers and str only, no pickle), and
read back bit for bit:

>>> folder = model.save("models/lightfm-ctr")                      # doctest: +SKIP
>>> ClickModel.load(folder).predict_proba(rows)                    # doctest: +SKIP
"""

from __future__ import annotations

import json
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recexp._registry import Registry
from recexp._threads import one_blas_thread
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


# ---------------------------------------------------------------------- saving
_FORMAT_VERSION = 1
_KIND = "click-model"
_META = "model.json"
_ARRAYS = "arrays.npz"


class _Saved(dict):
    """Saved values (from ``model.json``) or arrays (from ``arrays.npz``), with checked
    access: anything missing or malformed is a ``ValueError`` naming the file."""

    def __init__(self, items: Mapping[str, Any], source: Path) -> None:
        super().__init__(items)
        self.source = source

    def __missing__(self, key: str) -> Any:
        raise ValueError(f"{self.source}: nothing saved as {key!r}; the file is damaged or "
                         "was written by another version")

    def number(self, key: str) -> float:
        value = self[key]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"{self.source}: {key!r} is {value!r}, not a number")
        return float(value)

    def integer(self, key: str) -> int:
        value = self[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{self.source}: {key!r} is {value!r}, not an integer")
        return value

    def array(self, key: str, *, kinds: str, shape: tuple[int | None, ...]) -> np.ndarray:
        """The array ``key``: its dtype kind one of ``kinds``, its shape ``shape`` (``None``
        matches any length). Returned writable and C-contiguous."""
        value = self[key]
        if value.dtype.kind not in kinds or value.ndim != len(shape) or any(
                want is not None and got != want
                for got, want in zip(value.shape, shape, strict=True)):
            want = ", ".join("n" if n is None else str(n) for n in shape)
            raise ValueError(f"{self.source}: {key!r} has dtype {value.dtype} and shape "
                             f"{value.shape}; expected a dtype of kind {'/'.join(kinds)} "
                             f"and shape ({want})")
        return np.array(value, order="C", copy=True)


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} {value!r} is not a JSON value")


def _vocabulary_from_array(arr: np.ndarray, dtype: str) -> pd.Index:
    return pd.Index(arr.astype(object) if arr.dtype.kind == "U" else arr, dtype=dtype)


def _load_vocabulary(values: _Saved, arrays: _Saved, key: str) -> pd.Index:
    """The keys :func:`_vocabulary_state` saved as ``key``."""
    arr = arrays.array(key, kinds="biufU", shape=(None,))
    dtype = values[f"{key}_dtype"]
    # Only the tags saving writes: pandas would convert anything else silently (ints to str).
    fits = ("object", "str", "string") if arr.dtype.kind == "U" else ("object", str(arr.dtype))
    if dtype not in fits:
        raise ValueError(f"{arrays.source}: {key!r} ({arr.dtype}) cannot be read as keys of "
                         f"dtype {dtype!r} ({values.source}); expected one of {fits}")
    try:
        index = _vocabulary_from_array(arr, dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{arrays.source}: {key!r} cannot be read as keys of dtype {dtype!r} "
                         f"({err})") from None
    if not index.is_unique:
        raise ValueError(f"{arrays.source}: {key!r} has repeated keys")
    return index


def _vocabulary_state(index: pd.Index, key: str, *, what: str
                      ) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """Keys (str or int, as fitted) as a numeric or str array plus the Index's dtype name.

    The round trip is checked here, so a vocabulary that would not come back exactly (mixed
    str and int keys, say) is refused when saving rather than changed on loading.
    """
    kind = pd.api.types.infer_dtype(index, skipna=False)
    if index.dtype.kind in "biuf":
        arr = index.to_numpy()
    elif kind in ("string", "empty"):
        arr = np.array(index.to_list(), dtype=np.str_)
    elif kind == "integer":
        arr = np.array(index.to_list(), dtype=np.int64)
    elif kind == "floating":
        arr = np.array(index.to_list(), dtype=np.float64)
    else:
        raise TypeError(f"{what} keys of type {kind!r} cannot be saved: use all str or all "
                        "int keys")
    back = _vocabulary_from_array(arr, str(index.dtype))
    if back.dtype != index.dtype or not back.equals(index):
        raise TypeError(f"{what} keys do not survive saving exactly (e.g. str keys ending in "
                        "NUL characters)")
    return {f"{key}_dtype": str(index.dtype)}, {key: arr}


# ---------------------------------------------------------------------- the protocol
_CLICK_MODELS: Registry[type[ClickModel]] = Registry("click model")


def register_click_model(cls: type[ClickModel]) -> type[ClickModel]:
    """Class decorator: make a click model known by its ``name`` to configs and to
    :meth:`ClickModel.load`."""
    return _CLICK_MODELS.register(cls)


def get_click_model(name: str) -> type[ClickModel]:
    """The click model class registered as ``name``; an unknown name suggests the nearest."""
    return _CLICK_MODELS.get(name)


class ClickModel(ABC):
    """Base of the click models: scikit-learn's estimator contract, probabilities out.

    ``__init__`` only stores keyword arguments (JSON values, listed in :attr:`param_names`);
    :meth:`fit` forgets any earlier fit and returns ``self``; learned state ends in ``_``.
    Subclasses implement ``fit`` and ``_predict`` and, to be saved, ``_state`` /
    ``_set_state``; the base class provides :meth:`predict_proba`, :meth:`save` and
    :meth:`load`.
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

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The learned state to save: JSON values (numbers, strings) and numeric or str
        arrays, keyed by name."""
        raise NotImplementedError(f"{type(self).__name__} cannot be saved")

    def _set_state(self, values: _Saved, arrays: _Saved) -> None:
        """Restore what :meth:`_state` returned (on a new model made from the saved params)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be loaded")

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to folder ``path`` (created if needed; its two files are
        overwritten).

        ``model.json`` holds the format version, the registry ``name``, :meth:`get_params`
        and the learned numbers and strings; ``arrays.npz`` the learned arrays, numeric or
        str (never object arrays, so never pickle).

        Returns
        -------
        Path
            The folder, for :meth:`load`.

        Raises
        ------
        NotFittedError
            The model is not fitted (nothing is written).
        """
        self._check_fitted()
        values, arrays = self._state()
        arrays = {key: np.asarray(value) for key, value in arrays.items()}
        for key, value in arrays.items():
            if value.dtype.kind not in "biufU":
                raise TypeError(f"{type(self).__name__}: state {key!r} has dtype {value.dtype}; "
                                "only numeric and str arrays are saved")
        meta = {"format": _FORMAT_VERSION, "kind": _KIND, "model": self.name,
                "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "params": self.get_params(), "state": values, "arrays": sorted(arrays)}
        text = json.dumps(meta, indent=2, sort_keys=True, default=_json_scalar)
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / _ARRAYS, **arrays)
        (folder / _META).write_text(text)
        return folder

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by :meth:`save` (``allow_pickle=False``).

        ``ClickModel.load`` gives whichever click model the folder holds (found by its
        registry name); ``SomeModel.load`` insists on a ``SomeModel``.

        Raises
        ------
        FileNotFoundError
            The folder, its ``model.json`` or its ``arrays.npz`` is missing.
        ValueError
            A file that is not what :meth:`save` writes: unreadable, another format version,
            an unknown model name, missing or inconsistent state (the message names the file).
        TypeError
            The folder holds another class than ``cls``.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder (a click model is a folder "
                                    "written by ClickModel.save)")
        meta_path, arrays_path = folder / _META, folder / _ARRAYS
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} is missing: {folder} is not a click model "
                                    "written by ClickModel.save")
        try:
            meta = json.loads(meta_path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{meta_path}: not valid JSON ({err})") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{meta_path}: expected a JSON object, got {type(meta).__name__}")
        if meta.get("format") != _FORMAT_VERSION:
            raise ValueError(f"{meta_path}: unsupported click model format "
                             f"{meta.get('format')!r}; this recexp reads format {_FORMAT_VERSION}")
        if meta.get("kind") != _KIND:
            raise ValueError(f"{meta_path}: holds a {meta.get('kind') or 'recommender'} "
                             f"{meta.get('model')!r}, not a click model (recommenders load "
                             "with Recommender.load)")
        name = meta.get("model")
        if not isinstance(name, str):
            raise ValueError(f"{meta_path}: 'model' is {name!r}, not a click model name")
        try:
            model_cls = get_click_model(name)
        except KeyError as err:
            raise ValueError(f"{meta_path}: {err.args[0]}") from None
        if not issubclass(model_cls, cls):
            raise TypeError(f"{folder} holds a {model_cls.__name__} ({model_cls.name!r}), not "
                            f"a {cls.__name__}; load it with ClickModel.load")
        params, values = meta.get("params"), meta.get("state")
        if not isinstance(params, dict) or not isinstance(values, dict):
            raise ValueError(f"{meta_path}: 'params' and 'state' must be JSON objects")
        try:
            model = model_cls.from_params(params)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{meta_path}: {err}") from None
        if not arrays_path.is_file():
            raise FileNotFoundError(f"{arrays_path} is missing: the learned arrays of the "
                                    f"{model_cls.__name__} in {folder}")
        try:
            with np.load(arrays_path, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
            raise ValueError(f"{arrays_path}: cannot read the saved arrays ({err})") from None
        expected = meta.get("arrays", [])
        missing = sorted(set(expected) - set(arrays))
        if missing:
            raise ValueError(f"{arrays_path}: missing array(s) {', '.join(missing)}; the file "
                             "is damaged or does not belong to this model.json")
        model._set_state(_Saved(values, meta_path), _Saved(arrays, arrays_path))
        return model


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

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"ctr": self.ctr_}, {}

    def _set_state(self, values: _Saved, arrays: _Saved) -> None:
        self.ctr_ = values.number("ctr")


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

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        values, arrays = _vocabulary_state(self.items_, "items", what="ItemCTR: item")
        return ({"global_ctr": self.global_ctr_, "prior_strength": self.prior_strength_,
                 **values}, {**arrays, "item_ctr": self.item_ctr_})

    def _set_state(self, values: _Saved, arrays: _Saved) -> None:
        self.global_ctr_ = values.number("global_ctr")
        self.prior_strength_ = values.number("prior_strength")
        self.items_ = _load_vocabulary(values, arrays, "items")
        self.item_ctr_ = arrays.array("item_ctr", kinds="f", shape=(len(self.items_),))


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
        Fitted on the ``columns_`` of the design matrix only (after :meth:`load`: rebuilt
        with the saved fitted attributes ``coef_``, ``intercept_``, ``classes_``, ...).
    n_features_ : int
        Columns of the design matrix (row features + key buckets).
    n_rows_ : int
        Training impressions (``lbfgs``'s ``C`` depends on them).
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
            X = X.astype(np.float64)
        self.n_rows_ = len(rows)
        model = self._new_estimator(self.n_rows_)
        with one_blas_thread():
            self.model_ = model.fit(X, labels)
        return self

    def _new_estimator(self, n_rows: int):
        from sklearn.linear_model import LogisticRegression, SGDClassifier

        if self.solver == "lbfgs":
            # The objective is alpha-strongly convex, so the distance to the optimum is about
            # gradient / alpha: scikit-learn's fixed tol=1e-4 left predictions up to 0.08 away
            # from it at alpha=1e-5 (and wherever rounding happened to stop the solver). In
            # float32 the loss is too coarse for the line search to get that close.
            return LogisticRegression(C=1.0 / (self.alpha * n_rows), solver="lbfgs",
                                      max_iter=self.max_iter, tol=min(1e-4, self.alpha / 100))
        return SGDClassifier(loss="log_loss", alpha=self.alpha, max_iter=self.max_iter,
                             tol=1e-4, random_state=self.random_state)

    def _predict(self, rows: Impressions) -> np.ndarray:
        X = self._design(rows)
        if X.shape[1] != self.n_features_:
            raise ValueError(f"HashedLogisticCTR: features have {X.shape[1]} columns, the "
                             f"model was fitted on {self.n_features_}")
        return self.model_.predict_proba(X[:, self.columns_])[:, 1]

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        # The estimator's public fitted attributes (coef_, intercept_, classes_,
        # n_features_in_, n_iter_, ...): a rebuilt estimator with the same ones predicts
        # through the same scikit-learn code on the same numbers.
        fitted, arrays = {}, {"columns": self.columns_}
        for key, value in vars(self.model_).items():
            if not key.endswith("_") or key.startswith("_"):
                continue
            if isinstance(value, np.ndarray):
                arrays[f"estimator/{key}"] = value
            elif isinstance(value, int | float | str | np.generic):
                fitted[key] = value
            else:
                raise TypeError(f"HashedLogisticCTR: the estimator's {key} is a "
                                f"{type(value).__name__}; cannot save it")
        return ({"n_features": self.n_features_, "n_rows": self.n_rows_, "estimator": fitted},
                arrays)

    def _set_state(self, values: _Saved, arrays: _Saved) -> None:
        self.n_features_ = values.integer("n_features")
        self.n_rows_ = values.integer("n_rows")
        columns = arrays.array("columns", kinds="iu", shape=(None,))
        if len(columns) and (columns.min() < 0 or columns.max() >= self.n_features_):
            raise ValueError(f"{arrays.source}: 'columns' out of range 0..{self.n_features_ - 1}")
        self.columns_ = columns
        fitted = values["estimator"]
        if not isinstance(fitted, dict) or not all(
                key.endswith("_") and not key.startswith("_") for key in fitted):
            raise ValueError(f"{values.source}: 'estimator' must be a JSON object of fitted "
                             "attributes (names ending in '_')")
        if _Saved(fitted, values.source).integer("n_features_in_") != len(columns):
            raise ValueError(f"{values.source}: the estimator's n_features_in_ is not the "
                             f"{len(columns)} saved columns")
        arrays.array("estimator/coef_", kinds="f", shape=(1, len(columns)))
        arrays.array("estimator/intercept_", kinds="f", shape=(1,))
        arrays.array("estimator/classes_", kinds="biu", shape=(2,))
        model = self._new_estimator(self.n_rows_)
        for key, value in fitted.items():
            setattr(model, key, value)
        for key in arrays:
            if key.startswith("estimator/"):
                setattr(model, key.removeprefix("estimator/"), np.array(arrays[key]))
        self.model_ = model


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

    Notes
    -----
    :meth:`save` writes the four learned LightFM arrays and the item keys; after
    :meth:`load`, ``lightfm_`` holds those arrays with fresh optimizer accumulators (as
    :class:`~recexp.models.lightfm.LightFMRecommender` does).
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
        lfm = self._new_lightfm()
        self.epochs_trained_ = 0
        for epoch in range(1, self.epochs + 1):
            lfm.fit_partial(interactions, user_features=context, epochs=1,
                            num_threads=self.num_threads)
            self.lightfm_ = lfm
            self.epochs_trained_ = epoch
            if callback is not None and callback(epoch, self):
                break
        return self

    def _new_lightfm(self):
        LightFM = _import_lightfm()
        return LightFM(no_components=self.no_components, loss="logistic",
                       learning_schedule=self.learning_schedule,
                       learning_rate=self.learning_rate, rho=self.rho, epsilon=self.epsilon,
                       item_alpha=self.item_alpha, user_alpha=self.user_alpha,
                       random_state=self.random_state)

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

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        # The four learned LightFM arrays, as LightFMRecommender saves them; not the optimizer
        # accumulators, which predictions do not use.
        lfm = self.lightfm_
        values, arrays = _vocabulary_state(self.items_, "items", what="LightFMCTR: item")
        return ({"epochs_trained": self.epochs_trained_, **values},
                {**arrays, "user_embeddings": lfm.user_embeddings,
                 "user_biases": lfm.user_biases, "item_embeddings": lfm.item_embeddings,
                 "item_biases": lfm.item_biases})

    def _set_state(self, values: _Saved, arrays: _Saved) -> None:
        self.epochs_trained_ = values.integer("epochs_trained")
        self.items_ = _load_vocabulary(values, arrays, "items")
        d, n_items = self.no_components, len(self.items_) + 1  # + the shared "other" item
        item_embeddings = arrays.array("item_embeddings", kinds="f", shape=(n_items, d))
        item_biases = arrays.array("item_biases", kinds="f", shape=(n_items,))
        user_embeddings = arrays.array("user_embeddings", kinds="f", shape=(None, d))
        n_tokens = len(user_embeddings)
        user_biases = arrays.array("user_biases", kinds="f", shape=(n_tokens,))
        lfm = self._new_lightfm()
        # Fresh optimizer accumulators, then the learned arrays: predictions are the saved
        # model's; training on from here would restart the adagrad/adadelta statistics.
        lfm._initialize(d, n_items, n_tokens)
        lfm.item_embeddings = _writable(item_embeddings, np.float32)
        lfm.item_biases = _writable(item_biases, np.float32)
        lfm.user_embeddings = _writable(user_embeddings, np.float32)
        lfm.user_biases = _writable(user_biases, np.float32)
        self.lightfm_ = lfm
