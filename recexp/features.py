"""Feature builders for users and items: multi-hot categoricals, numeric buckets, text TF-IDF
and feature hashing, run from a declarative spec by :func:`build_features`.

A builder turns one attribute column of a users or items table (several columns, for hashing)
into a float32 CSR block whose columns have readable names:

============  ==================  ================================================
kind          class               feature names
============  ==================  ================================================
``multi_hot`` :class:`MultiHot`   ``genre=Comedy`` (``<name>=<value>``)
``bucket``    :class:`Buckets`    ``age=[25,35)``, ``age=(-inf,18)``, ``age=[55,inf)``
``tfidf``     :class:`TfIdf`      ``title:star`` (``<name>:<term>``)
``hash``      :class:`Hashed`     ``hash:123`` (``<name>:<column index>``)
============  ==================  ================================================

``<name>`` is the builder's ``name`` option, the column name by default (``"hash"`` for
hashing). A missing value is ``<name>=<missing>`` when ``missing="bucket"``.

Builders follow scikit-learn's estimator contract (``__init__`` only stores keyword options,
``fit`` learns state ending in ``_`` and returns ``self``, ``clone`` works). A spec is plain data,
as it comes from YAML::

    item:
      - {kind: multi_hot, column: genres, sep: "|", name: genre}
      - {kind: tfidf, column: title, max_features: 500}
    user:
      - {kind: multi_hot, column: occupation}
      - {kind: bucket, column: age, edges: [18, 25, 35, 45, 55]}

>>> import pandas as pd
>>> items = pd.DataFrame({"item_id": [10, 20, 30],
...                       "genres": ["Comedy|Drama", "Drama", None],
...                       "year": [1994, 2001, 1999]})
>>> spec = {"item": [{"kind": "multi_hot", "column": "genres", "sep": "|", "name": "genre"},
...                  {"kind": "bucket", "column": "year", "edges": [2000]}]}
>>> tables = build_features(spec, items=items)
>>> tables.item.long
   item_id           feature  value
0       10      genre=Comedy    1.0
1       10       genre=Drama    1.0
2       10  year=(-inf,2000)    1.0
3       20       genre=Drama    1.0
4       20   year=[2000,inf)    1.0
5       30  year=(-inf,2000)    1.0
>>> tables.item.names.tolist()
['genre=Comedy', 'genre=Drama', 'year=(-inf,2000)', 'year=[2000,inf)']
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import KBinsDiscretizer
from sklearn.preprocessing import normalize as _sk_normalize

from recexp.columns import Columns
from recexp.dataset import Dataset

__all__ = [
    "KINDS",
    "MISSING",
    "Buckets",
    "FeatureBuilder",
    "FeatureTables",
    "Hashed",
    "MultiHot",
    "SideFeatures",
    "TfIdf",
    "build_features",
    "make_builder",
]

MISSING = "<missing>"
"""The value name of the missing-value feature (``age=<missing>``) with ``missing="bucket"``."""

_NORMS = (None, "none", "l1", "l2")
_MISSING_MODES = ("drop", "bucket")
_SIDES = {"user": Columns.User, "item": Columns.Item}


# ---------------------------------------------------------------------------- validation
def _nearest(value: object, options: Sequence[str]) -> str:
    near = difflib.get_close_matches(str(value), [str(o) for o in options], n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _choice(value: object, options: Sequence, what: str) -> None:
    if value not in options:
        shown = ", ".join(repr(o) for o in options)
        raise ValueError(f"{what}={value!r} is not one of {shown}"
                         f"{_nearest(value, [o for o in options if o is not None])}")


def _integer(value: object, what: str, *, low: int, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    # bool is an int subclass, but `max_features: true` in YAML is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{what} must be an integer >= {low}"
                         f"{' or None' if none_ok else ''}, got {value!r}")


def _text(value: object, what: str, *, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string"
                         f"{' or None' if none_ok else ''}, got {value!r}")


def _column(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table.columns:
        raise ValueError(f"no column {column!r}{_nearest(column, list(map(str, table.columns)))}"
                         f"; columns are {list(table.columns)}")
    # Positions, not labels: blocks from different builders must line up row by row.
    return table[column].reset_index(drop=True)


def _where(table: pd.DataFrame, position: int) -> str:
    label = table.index[position : position + 1].tolist()[0]
    return f"{table.index.name} {label!r}" if table.index.name else f"row {label!r}"


def _tokens(series: pd.Series, *, sep: str | None, strip: bool) -> tuple[np.ndarray, np.ndarray]:
    """(row position, value) pairs of a one- or multi-valued column, missing values left out.

    rows: int64 array [n_tokens]; values: object array of str [n_tokens]. Values compare as
    strings, so ``3`` in an int column and ``"3"`` in a str column are the same category.
    """
    # Arrow's kernels split and trim in C++; pandas' str.split calls Python per row (4x slower
    # on a million rows).
    values = pa.array(series.astype("str"), from_pandas=True)  # missing stays null
    if sep is not None:
        lists = pc.split_pattern(values, pattern=sep)
        rows = pc.list_parent_indices(lists).to_numpy().astype(np.int64)
        values = pc.list_flatten(lists)
    else:
        rows = np.arange(len(values), dtype=np.int64)
    if strip:
        values = pc.utf8_trim_whitespace(values)
    keep = pc.fill_null(pc.not_equal(values, ""), False)
    return rows[keep.to_numpy(zero_copy_only=False)], \
        values.filter(keep).to_numpy(zero_copy_only=False).astype(object)


def _csr(values: np.ndarray, rows: np.ndarray, cols: np.ndarray,
         shape: tuple[int, int]) -> sp.csr_matrix:
    matrix = sp.csr_matrix((values.astype(np.float32, copy=False), (rows, cols)), shape=shape,
                           dtype=np.float32)
    matrix.sum_duplicates()
    return matrix


# ---------------------------------------------------------------------------- builders
class FeatureBuilder(BaseEstimator):
    """Base of the feature builders: ``fit(table)``, ``transform(table)``, feature names.

    Subclasses set :attr:`kind` (the spec name) and implement ``_fit`` and ``_transform``; the
    base class checks options, finds columns and applies the row normalisation.
    """

    kind: ClassVar[str] = ""
    """Name of this builder in a spec (``{"kind": ...}``)."""
    _joiner: ClassVar[str] = "="
    _default_name: ClassVar[str | None] = None
    _normalize_after: ClassVar[bool] = True

    @property
    def prefix(self) -> str:
        """The part of every feature name before ``=`` or ``:``."""
        if self.name is not None:
            return self.name
        return self._default_name if self._default_name is not None else self.column

    @property
    def columns(self) -> list[str]:
        """The attribute columns this builder reads."""
        return [self.column]

    def _check_params(self) -> None:
        """Raise ValueError on a bad option; called by ``fit`` and by :func:`make_builder`."""
        _text(self.column, "column")
        _text(self.name, "name", none_ok=True)
        _choice(self.normalize, _NORMS, "normalize")

    def fit(self, table: pd.DataFrame) -> FeatureBuilder:
        """Learn categories, bin edges or vocabulary from ``table`` (one row per entity).

        Forgets any earlier fit; returns ``self``.
        """
        self._check_params()
        for column in self.columns:
            _column(table, column)
        self._fit(table)
        return self

    def transform(self, table: pd.DataFrame) -> sp.csr_matrix:
        """Features of each row of ``table``.

        Returns
        -------
        float32 csr_matrix of shape [len(table), n_features_]
            Row ``i`` belongs to ``table.iloc[i]``; column ``j`` is
            ``get_feature_names_out()[j]``. Values the fit never saw give no feature.
        """
        if not hasattr(self, "n_features_"):
            raise NotFittedError(f"this {type(self).__name__} on {self.columns} is not fitted; "
                                 "call fit(table) first")
        for column in self.columns:
            _column(table, column)
        matrix = self._transform(table)
        if self.normalize not in (None, "none") and self._normalize_after:
            matrix = _sk_normalize(matrix, norm=self.normalize, axis=1, copy=False)
        return sp.csr_matrix(matrix, dtype=np.float32)

    def fit_transform(self, table: pd.DataFrame) -> sp.csr_matrix:
        """``fit(table).transform(table)``."""
        return self.fit(table).transform(table)

    def get_feature_names_out(self) -> np.ndarray:
        """Feature names: object array of str, shape [n_features_]."""
        if not hasattr(self, "n_features_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted")
        return self._names(np.arange(self.n_features_))

    def _names(self, cols: np.ndarray) -> np.ndarray:
        return self.feature_names_[cols]

    def _fit(self, table: pd.DataFrame) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform(self, table: pd.DataFrame) -> sp.csr_matrix:  # pragma: no cover - abstract
        raise NotImplementedError


class MultiHot(FeatureBuilder):
    """One indicator feature per category of a single- or multi-valued column.

    Parameters
    ----------
    column : str
        The attribute column, e.g. ``"occupation"`` or ``"genres"``.
    sep : str, optional
        Separator of a multi-valued column (``"|"`` for ``"Action|Comedy"``); None for a
        single value per row. A value repeated within one row counts once.
    name : str, optional
        Prefix of the feature names (``name="genre"`` gives ``genre=Comedy``); the column name
        by default.
    min_count : int
        Keep categories present in at least this many rows; rarer ones give no feature.
    missing : {"drop", "bucket"}
        A row without any value (missing, empty, or only separators) gets no feature
        (``"drop"``) or the feature ``<name>=<missing>`` (``"bucket"``, always the last column).
        A row whose values are all rarer than ``min_count`` is not missing: it gets no feature.
    strip : bool
        Strip surrounding whitespace from each value.
    normalize : {None, "none", "l1", "l2"}
        Scale each row of this builder's block to unit norm (``"l1"``: a row with 3 genres
        gets 1/3 each).

    Attributes
    ----------
    categories_ : object array of str, shape [n_categories]
        The kept categories, sorted.
    feature_names_ : object array of str, shape [n_features_]
    n_features_ : int
    """

    kind = "multi_hot"

    def __init__(self, column: str, *, sep: str | None = None, name: str | None = None,
                 min_count: int = 1, missing: str = "drop", strip: bool = True,
                 normalize: str | None = None) -> None:
        self.column = column
        self.sep = sep
        self.name = name
        self.min_count = min_count
        self.missing = missing
        self.strip = strip
        self.normalize = normalize

    def _check_params(self) -> None:
        super()._check_params()
        _text(self.sep, "sep", none_ok=True)
        _integer(self.min_count, "min_count", low=1)
        _choice(self.missing, _MISSING_MODES, "missing")

    def _fit(self, table: pd.DataFrame) -> None:
        rows, values = _tokens(_column(table, self.column), sep=self.sep, strip=self.strip)
        codes, uniques = pd.factorize(values)
        n_unique = len(uniques)
        # Count rows, not occurrences: "A|A" is one row with A.
        pairs = pd.unique(rows * max(n_unique, 1) + codes)  # hashing beats np.unique's sort
        counts = np.bincount(pairs % max(n_unique, 1), minlength=n_unique)
        self.categories_ = np.sort(np.asarray(uniques, dtype=object)[counts >= self.min_count])
        names = self.prefix + "=" + self.categories_
        if self.missing == "bucket":
            names = np.append(names, f"{self.prefix}={MISSING}").astype(object)
        self.feature_names_ = np.asarray(names, dtype=object)
        self.n_features_ = len(self.feature_names_)

    def _transform(self, table: pd.DataFrame) -> sp.csr_matrix:
        n = len(table)
        all_rows, values = _tokens(_column(table, self.column), sep=self.sep, strip=self.strip)
        cols = pd.Index(self.categories_, dtype=object).get_indexer(values)
        keep = cols >= 0
        rows, cols = all_rows[keep], cols[keep]
        if self.missing == "bucket":
            has_value = np.zeros(n, dtype=bool)
            has_value[all_rows] = True
            empty = np.flatnonzero(~has_value)
            rows = np.concatenate([rows, empty])
            cols = np.concatenate([cols, np.full(len(empty), self.n_features_ - 1)])
        matrix = _csr(np.ones(len(rows), np.float32), rows, cols, (n, self.n_features_))
        matrix.data[:] = 1.0  # indicators: a repeated value stays 1
        return matrix


def _number(x: float) -> str:
    # Shortest text that reads back as the same float: 18 -> "18", 26.5 -> "26.5".
    return str(int(x)) if float(x).is_integer() else np.format_float_positional(x, trim="-")


class Buckets(FeatureBuilder):
    """One indicator feature per interval of a numeric column (age, year, price).

    Give either ``edges`` (fixed cut points) or ``n_bins`` (cut points learned by
    scikit-learn's :class:`~sklearn.preprocessing.KBinsDiscretizer`). Buckets are closed on
    the left: edges ``[18, 25]`` make ``(-inf,18)``, ``[18,25)`` and ``[25,inf)``, so every
    number falls in exactly one bucket, also at transform time.

    Parameters
    ----------
    column : str
    edges : list of float, optional
        Strictly increasing cut points.
    n_bins : int, optional
        Number of bins to learn (>= 2); fewer when ties make some empty (scikit-learn warns).
    strategy : {"quantile", "uniform", "kmeans"}
        How ``n_bins`` are learned (KBinsDiscretizer's ``strategy``; quantiles use all rows).
    missing : {"drop", "bucket"}
        A missing value gives no feature (``"drop"``) or the feature ``<name>=<missing>``
        (``"bucket"``, always the last column). Non-numeric text and infinities are errors.
    name : str, optional
        Prefix of the feature names; the column name by default.
    normalize : {None, "none", "l1", "l2"}
        Row normalisation of this block (a no-op for one indicator per row; kept for
        uniformity).

    Attributes
    ----------
    edges_ : float64 array of shape [n_features_ - 1] (without the missing bucket)
        The cut points used.
    feature_names_ : object array of str, shape [n_features_]
    n_features_ : int
    """

    kind = "bucket"

    def __init__(self, column: str, *, edges: Sequence[float] | None = None,
                 n_bins: int | None = None, strategy: str = "quantile", missing: str = "drop",
                 name: str | None = None, normalize: str | None = None) -> None:
        self.column = column
        self.edges = edges
        self.n_bins = n_bins
        self.strategy = strategy
        self.missing = missing
        self.name = name
        self.normalize = normalize

    def _check_params(self) -> None:
        super()._check_params()
        _choice(self.missing, _MISSING_MODES, "missing")
        _choice(self.strategy, ("quantile", "uniform", "kmeans"), "strategy")
        if (self.edges is None) == (self.n_bins is None):
            raise ValueError("give exactly one of 'edges' (fixed cut points) and 'n_bins' "
                             f"(learned); got edges={self.edges!r}, n_bins={self.n_bins!r}")
        if self.n_bins is not None:
            _integer(self.n_bins, "n_bins", low=2)
            return
        edges = self.edges
        if (isinstance(edges, str | bytes) or not isinstance(edges, Sequence | np.ndarray)
                or len(edges) == 0):
            raise ValueError(f"edges must be a non-empty list of numbers, got {edges!r}")
        for k, e in enumerate(edges):
            if isinstance(e, bool) or not isinstance(e, int | float | np.number) \
                    or not np.isfinite(e):
                raise ValueError(f"edges[{k}] must be a finite number, got {e!r}")
        diffs = np.diff(np.asarray(edges, dtype=np.float64))
        if (diffs <= 0).any():
            k = int(np.flatnonzero(diffs <= 0)[0])
            raise ValueError(f"edges must be strictly increasing: edges[{k}]={edges[k]!r}, "
                             f"edges[{k + 1}]={edges[k + 1]!r}")

    def _values(self, table: pd.DataFrame) -> np.ndarray:
        """float64 [len(table)], NaN where missing; raises naming a non-numeric value."""
        raw = _column(table, self.column)
        numbers = pd.to_numeric(raw, errors="coerce")
        bad = (numbers.isna() & raw.notna()).to_numpy(dtype=bool, copy=True)
        values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        bad |= np.isinf(values)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise ValueError(f"column {self.column!r} has a value that is not a finite number: "
                             f"{raw.iloc[pos]!r} at {_where(table, pos)} "
                             f"({int(bad.sum())} such values)")
        return values

    def _fit(self, table: pd.DataFrame) -> None:
        if self.edges is not None:
            edges = np.asarray(self.edges, dtype=np.float64)
        else:
            values = self._values(table)
            present = values[~np.isnan(values)]
            if len(present) == 0:
                raise ValueError(f"column {self.column!r} has no values to learn "
                                 f"{self.n_bins} bins from")
            binner = KBinsDiscretizer(n_bins=self.n_bins, encode="ordinal",
                                      strategy=self.strategy, subsample=None)
            binner.fit(present.reshape(-1, 1))
            # KBinsDiscretizer clips values beyond its outer edges into the end bins, i.e. it
            # buckets by the inner edges alone: the same rule as fixed edges.
            edges = binner.bin_edges_[0][1:-1].astype(np.float64)
        self.edges_ = edges
        text = [_number(e) for e in edges]
        lows, highs = ["-inf", *text], [*text, "inf"]
        names = [f"{self.prefix}={'(' if k == 0 else '['}{lo},{hi})"
                 for k, (lo, hi) in enumerate(zip(lows, highs, strict=True))]
        if self.missing == "bucket":
            names.append(f"{self.prefix}={MISSING}")
        self.feature_names_ = np.asarray(names, dtype=object)
        self.n_features_ = len(names)

    def _transform(self, table: pd.DataFrame) -> sp.csr_matrix:
        values = self._values(table)
        n = len(values)
        missing = np.isnan(values)
        cols = np.searchsorted(self.edges_, values, side="right")
        if self.missing == "bucket":
            cols[missing] = self.n_features_ - 1
            rows = np.arange(n)
        else:
            rows = np.flatnonzero(~missing)
            cols = cols[rows]
        return _csr(np.ones(len(rows), np.float32), rows, cols, (n, self.n_features_))


class TfIdf(FeatureBuilder):
    """TF-IDF of a text column (titles, descriptions, joined tags) by scikit-learn's
    :class:`~sklearn.feature_extraction.text.TfidfVectorizer`.

    The options below go to TfidfVectorizer unchanged (see its documentation); ``normalize``
    is its ``norm`` (so the default ``"l2"`` gives exactly TfidfVectorizer's default output,
    in float32). A missing text is the empty document: a row with no features.

    Parameters
    ----------
    column : str
    max_features : int, optional
        Keep the most frequent terms only.
    min_df, max_df : int or float
        Drop terms in fewer / more documents than this (a count, or a fraction when float).
    ngram_range : (int, int)
        A list ``[1, 2]`` from YAML is fine.
    stop_words : {"english"} or list of str, optional
    sublinear_tf, lowercase, binary : bool
    token_pattern : str
    name : str, optional
        Prefix of the feature names (``title:star``); the column name by default.
    normalize : {"l2", "l1", None, "none"}

    Attributes
    ----------
    vectorizer_ : TfidfVectorizer
        The fitted vectorizer.
    feature_names_ : object array of str, shape [n_features_]
    n_features_ : int
    """

    kind = "tfidf"
    _joiner = ":"
    _normalize_after = False  # the vectorizer's own `norm` does it

    def __init__(self, column: str, *, max_features: int | None = None,
                 min_df: int | float = 1, max_df: int | float = 1.0,
                 ngram_range: Sequence[int] = (1, 1), stop_words: str | list | None = None,
                 sublinear_tf: bool = False, lowercase: bool = True,
                 token_pattern: str = r"(?u)\b\w\w+\b", binary: bool = False,
                 name: str | None = None, normalize: str | None = "l2") -> None:
        self.column = column
        self.max_features = max_features
        self.min_df = min_df
        self.max_df = max_df
        self.ngram_range = ngram_range
        self.stop_words = stop_words
        self.sublinear_tf = sublinear_tf
        self.lowercase = lowercase
        self.token_pattern = token_pattern
        self.binary = binary
        self.name = name
        self.normalize = normalize

    def _check_params(self) -> None:
        super()._check_params()
        _integer(self.max_features, "max_features", low=1, none_ok=True)
        # The rest is checked by TfidfVectorizer itself, which names the parameter.

    def _documents(self, table: pd.DataFrame) -> np.ndarray:
        return _column(table, self.column).astype("str").fillna("").to_numpy(dtype=object)

    def new_vectorizer(self) -> TfidfVectorizer:
        """An unfitted scikit-learn vectorizer with this builder's options (also used by
        the serving layer to rebuild a fitted one from its vocabulary and idf)."""
        return TfidfVectorizer(
            max_features=self.max_features, min_df=self.min_df, max_df=self.max_df,
            ngram_range=tuple(self.ngram_range), stop_words=self.stop_words,
            sublinear_tf=self.sublinear_tf, lowercase=self.lowercase,
            token_pattern=self.token_pattern, binary=self.binary,
            norm=None if self.normalize == "none" else self.normalize, dtype=np.float32)

    def _fit(self, table: pd.DataFrame) -> None:
        vectorizer = self.new_vectorizer()
        vectorizer.fit(self._documents(table))
        self.vectorizer_ = vectorizer
        self.feature_names_ = np.asarray(self.prefix + ":" + vectorizer.get_feature_names_out()
                                         .astype(object), dtype=object)
        self.n_features_ = len(self.feature_names_)

    def _transform(self, table: pd.DataFrame) -> sp.csr_matrix:
        return self.vectorizer_.transform(self._documents(table))


class Hashed(FeatureBuilder):
    """High-cardinality categoricals (ids, zip codes, Criteo's C1..C26) hashed into
    ``n_features`` columns by scikit-learn's :class:`~sklearn.feature_extraction.FeatureHasher`.

    Each value is hashed as the string ``"<column>=<value>"``, so equal values in different
    columns land in different places. Hashing is stateless and deterministic (MurmurHash3,
    seed 0): the same value gives the same column in every process and on unseen rows.
    Different values that collide add up (FeatureHasher's rule); a value repeated within one
    row counts once.

    Parameters
    ----------
    column : str or list of str
        One column, or several hashed into one shared space.
    n_features : int
        Number of hash columns (FeatureHasher's default 2**20). :class:`~recexp.dataset.Dataset`
        keeps only the columns some row uses.
    sep : str, optional
        Separator of multi-valued columns.
    missing : {"drop", "bucket"}
        A row without a value in a column gets nothing from it (``"drop"``) or the hashed
        value ``"<column>=<missing>"`` (``"bucket"``).
    strip : bool
        Strip whitespace around values.
    alternate_sign : bool
        FeatureHasher's signed hashing. Off by default, unlike FeatureHasher: recommenders
        read the values as indicator weights, and a row-sum normalisation (LightFM's) can
        divide by a sum that signs cancelled to zero.
    name : str, optional
        Prefix of the feature names, ``"hash"`` by default: ``hash:123``.
    normalize : {None, "none", "l1", "l2"}

    Attributes
    ----------
    hasher_ : FeatureHasher
    n_features_ : int
    """

    kind = "hash"
    _joiner = ":"
    _default_name = "hash"

    def __init__(self, column: str | Sequence[str], *, n_features: int = 2**20,
                 sep: str | None = None, missing: str = "drop", strip: bool = True,
                 alternate_sign: bool = False, name: str | None = None,
                 normalize: str | None = None) -> None:
        self.column = column
        self.n_features = n_features
        self.sep = sep
        self.missing = missing
        self.strip = strip
        self.alternate_sign = alternate_sign
        self.name = name
        self.normalize = normalize

    @property
    def columns(self) -> list[str]:
        return [self.column] if isinstance(self.column, str) else list(self.column)

    def _check_params(self) -> None:
        if isinstance(self.column, str):
            _text(self.column, "column")
        elif not isinstance(self.column, Sequence) or not self.column:
            raise ValueError(f"column must be a column name or a non-empty list of them, "
                             f"got {self.column!r}")
        else:
            for k, c in enumerate(self.column):
                _text(c, f"column[{k}]")
        _text(self.name, "name", none_ok=True)
        _choice(self.normalize, _NORMS, "normalize")
        _integer(self.n_features, "n_features", low=1)
        _text(self.sep, "sep", none_ok=True)
        _choice(self.missing, _MISSING_MODES, "missing")
        if not isinstance(self.alternate_sign, bool | np.bool_):
            raise ValueError(f"alternate_sign must be true or false, got {self.alternate_sign!r}")

    def _fit(self, table: pd.DataFrame) -> None:
        self.hasher_ = FeatureHasher(n_features=self.n_features, input_type="string",
                                     alternate_sign=self.alternate_sign, dtype=np.float32)
        self.n_features_ = self.n_features

    def _names(self, cols: np.ndarray) -> np.ndarray:
        # Built on demand: 2**20 stored names would cost tens of MB for columns never used.
        return np.asarray(self.prefix + ":" + np.asarray(cols).astype(str).astype(object),
                          dtype=object)

    def _transform(self, table: pd.DataFrame) -> sp.csr_matrix:
        n = len(table)
        all_rows, all_codes, vocabulary = [], [], []
        n_tokens = 0
        for column in self.columns:
            rows, values = _tokens(_column(table, column), sep=self.sep, strip=self.strip)
            # Hash each distinct value once, not once per row: ids repeat a lot.
            codes, uniques = pd.factorize(values)
            tokens = f"{column}=" + np.asarray(uniques, dtype=object)
            if self.missing == "bucket":
                has_value = np.zeros(n, dtype=bool)
                has_value[rows] = True
                empty = np.flatnonzero(~has_value)
                rows = np.concatenate([rows, empty])
                codes = np.concatenate([codes, np.full(len(empty), len(tokens))])
                tokens = np.append(tokens, f"{column}={MISSING}").astype(object)
            all_rows.append(rows)
            all_codes.append(codes + n_tokens)
            vocabulary.append(tokens)
            n_tokens += len(tokens)
        if n_tokens == 0:
            return sp.csr_matrix((n, self.n_features_), dtype=np.float32)
        rows, codes = np.concatenate(all_rows), np.concatenate(all_codes)
        owner = _csr(np.ones(len(rows), np.float32), rows, codes, (n, n_tokens))
        owner.data[:] = 1.0  # a value repeated within a row counts once
        # One distinct token per hasher "sample" (no per-row Python lists); the product then
        # sums each row's tokens: [n, n_tokens] @ [n_tokens, n_features].
        hashed = self.hasher_.transform(np.concatenate(vocabulary).reshape(-1, 1))
        return sp.csr_matrix(owner @ hashed, dtype=np.float32)


KINDS: dict[str, type[FeatureBuilder]] = {
    cls.kind: cls for cls in (MultiHot, Buckets, TfIdf, Hashed)
}
"""Spec ``kind`` -> builder class."""


def _options(cls: type[FeatureBuilder]) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def make_builder(entry: Mapping | FeatureBuilder, *, where: str = "feature spec") -> FeatureBuilder:
    """A builder from one spec entry, e.g. ``{"kind": "tfidf", "column": "title"}``.

    A builder instance is cloned (unfitted copy). Unknown kinds and options raise ValueError
    naming them and the nearest valid name; ``where`` says which entry in messages.
    """
    if isinstance(entry, FeatureBuilder):
        builder = clone(entry)
    elif isinstance(entry, Mapping):
        if "kind" not in entry:
            raise ValueError(f"{where}: {dict(entry)!r} has no 'kind'; "
                             f"use one of {', '.join(KINDS)}")
        kind = entry["kind"]
        if kind not in KINDS:
            raise ValueError(f"{where}: unknown kind {kind!r}{_nearest(kind, list(KINDS))}; "
                             f"kinds are {', '.join(KINDS)}")
        cls = KINDS[kind]
        valid = _options(cls)
        for key in entry:
            if key != "kind" and key not in valid:
                raise ValueError(f"{where}: {kind} has no option {key!r}"
                                 f"{_nearest(key, valid)}; options are {', '.join(valid)}")
        if "column" not in entry:
            raise ValueError(f"{where}: {kind} needs a 'column'")
        builder = cls(**{k: v for k, v in entry.items() if k != "kind"})
    else:
        raise TypeError(f"{where}: expected a dict like {{'kind': 'multi_hot', 'column': ...}} "
                        f"or a FeatureBuilder, got {type(entry).__name__}: {entry!r}")
    try:
        builder._check_params()
    except ValueError as err:
        raise ValueError(f"{where} ({builder.kind} on {builder.column!r}): {err}") from err
    return builder


def _parse_spec(spec: Mapping) -> dict[str, list[FeatureBuilder]]:
    if not isinstance(spec, Mapping):
        raise TypeError(f"a feature spec is a dict {{'user': [...], 'item': [...]}}, "
                        f"got {type(spec).__name__}")
    for key in spec:
        if key not in _SIDES:
            raise ValueError(f"feature spec has an unknown key {key!r}"
                             f"{_nearest(key, list(_SIDES))}; keys are {', '.join(_SIDES)}")
    parsed: dict[str, list[FeatureBuilder]] = {}
    for side in _SIDES:
        entries = spec.get(side) or []
        if isinstance(entries, Mapping | str) or not isinstance(entries, Sequence):
            raise TypeError(f"feature spec {side!r} must be a list of builder specs, "
                            f"got {type(entries).__name__}")
        builders = [make_builder(e, where=f"{side} feature {k}") for k, e in enumerate(entries)]
        seen: dict[str, int] = {}
        for k, b in enumerate(builders):
            stem = b.prefix + b._joiner
            if stem in seen:
                j = seen[stem]
                raise ValueError(
                    f"{side} features {j} ({builders[j].kind} on {builders[j].column!r}) and {k} "
                    f"({b.kind} on {b.column!r}) would both name features {stem!r}...; "
                    "give one of them another 'name'")
            seen[stem] = k
        parsed[side] = builders
    return parsed


# ---------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class SideFeatures:
    """The features of one side (users or items), built from its attribute table.

    Attributes
    ----------
    long : DataFrame
        ``(user_id | item_id, feature, value)``, one row per non-zero, entities in attribute
        table order and each entity's features in spec order: what
        :meth:`Dataset.from_frames <recexp.dataset.Dataset.from_frames>` takes.
    names : object array of str, shape [n_features]
        Every feature some entity has, in spec order (builders, then each builder's order).
    ids : array of shape [n_entities]
        The attribute table's ids, in its order.
    matrix : float32 csr_matrix of shape [n_entities, n_features]
        The same features as a matrix: row ``i`` is ``ids[i]``, column ``j`` is ``names[j]``.
    empty : int
        Entities of the table with no feature at all (every attribute missing or dropped).
    no_attributes : array or None
        Ids with interactions but no row in the attribute table (None when
        :func:`build_features` got no interactions). A Dataset gives them no side features:
        only their identity feature, or an all-zero row with ``identity_features=False``.
    cold : int or None
        Ids of the attribute table without interactions: cold entities that keep their
        features (None without interactions).
    """

    long: pd.DataFrame
    names: np.ndarray
    ids: np.ndarray
    matrix: sp.csr_matrix
    empty: int
    no_attributes: np.ndarray | None = None
    cold: int | None = None

    @property
    def n_features(self) -> int:
        return len(self.names)


@dataclass(frozen=True, eq=False)
class FeatureTables:
    """What :func:`build_features` returns: the user and item features, and a report."""

    user: SideFeatures | None
    item: SideFeatures | None

    def summary(self) -> dict[str, int]:
        """Counts as one flat dict of ints (``item.features``, ``item.no_attributes``, ...),
        ready for ``mlflow.log_params``."""
        out: dict[str, int] = {}
        for side, part in (("user", self.user), ("item", self.item)):
            if part is None:
                continue
            out[f"{side}.entities"] = len(part.ids)
            out[f"{side}.features"] = part.n_features
            out[f"{side}.empty"] = part.empty
            if part.no_attributes is not None:
                out[f"{side}.no_attributes"] = len(part.no_attributes)
                out[f"{side}.cold"] = int(part.cold)
        return out

    def to_dataset(self, interactions: pd.DataFrame, *, identity_features: bool = True,
                   normalize_features: bool = False) -> Dataset:
        """A :class:`~recexp.dataset.Dataset` of ``interactions`` with these features.

        Every id of the attribute tables is known to the Dataset (cold ones too). Ids with
        interactions but no attributes get no side features; with ``identity_features=False``
        their feature rows are all zero, and a ``UserWarning`` says how many.

        The Dataset numbers feature columns in order of first appearance in the long tables,
        not in the order of :attr:`SideFeatures.names`: find a column by its name
        (``Dataset.item_feature_names``).
        """
        ds = Dataset.from_frames(
            interactions,
            user_features=None if self.user is None else self.user.long,
            item_features=None if self.item is None else self.item.long,
            users=None if self.user is None else self.user.ids,
            items=None if self.item is None else self.item.ids,
            identity_features=identity_features, normalize_features=normalize_features)
        if not identity_features:
            for side, part, side_set, id_map, idx in (
                    ("user", self.user, ds.user_side, ds.users, ds.user_idx),
                    ("item", self.item, ds.item_side, ds.items, ds.item_idx)):
                if part is None:
                    continue
                active = np.unique(idx)
                bare = active[side_set.matrix.getnnz(axis=1)[active] == 0]
                if len(bare):
                    warnings.warn(
                        f"{len(bare)} {side}s with interactions have no {side} features "
                        f"(e.g. {id_map.to_external(bare[:3]).tolist()}); with "
                        "identity_features=False their feature rows are all zero",
                        UserWarning, stacklevel=2)
        return ds


# ---------------------------------------------------------------------------- entry point
def _build_side(side: str, table: pd.DataFrame, builders: list[FeatureBuilder],
                interacted: np.ndarray | None) -> SideFeatures:
    key = _SIDES[side]
    label = f"{side}s table"
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{label} must be a DataFrame, got {type(table).__name__}")
    if key not in table.columns:
        raise ValueError(f"{label} needs a {key!r} column"
                         f"{_nearest(key, list(map(str, table.columns)))}; "
                         f"columns are {list(table.columns)}")
    ids = table[key]
    if ids.isna().any():
        pos = int(np.flatnonzero(ids.isna().to_numpy())[0])
        row = table.index[pos : pos + 1].tolist()[0]
        raise ValueError(f"{label}: missing {key} at row {row!r}")
    if not ids.is_unique:
        dup = ids[ids.duplicated()].tolist()[0]  # a Python scalar reads better than np.int64
        raise ValueError(f"{label}: {key} {dup!r} has {int((ids == dup).sum())} rows; one row "
                         "per id (join multi-valued attributes with a separator first)")
    # Errors from builders then name the entity ("at item_id 42"), not a position.
    keyed = table.set_index(key, drop=False)
    blocks, names = [], []
    for k, builder in enumerate(builders):
        where = f"{label}, {side} feature {k} ({builder.kind} on {builder.column!r})"
        try:
            block = builder.fit_transform(keyed)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
        # Only columns some entity uses: hashing leaves most of its 2**20 columns empty.
        used = np.flatnonzero(block.getnnz(axis=0))
        blocks.append(block[:, used])
        names.append(builder._names(used))
    n = len(table)
    matrix = (sp.hstack(blocks, format="csr", dtype=np.float32) if blocks
              else sp.csr_matrix((n, 0), dtype=np.float32))
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    # The long table lists each entity's features in spec order; a hashed block's product
    # need not come out sorted.
    matrix.sort_indices()
    all_names = (np.concatenate(names).astype(object) if names else np.empty(0, dtype=object))
    coo = matrix.tocoo()  # row-major, as CSR stores it
    id_values = ids.to_numpy(copy=True)
    long = pd.DataFrame({key: id_values[coo.row],
                         Columns.Feature: pd.Series(all_names[coo.col], dtype="str"),
                         Columns.Value: coo.data.astype(np.float32)})
    no_attributes = cold = None
    if interacted is not None:
        listed = pd.Index(id_values)
        seen = pd.Index(pd.unique(interacted))
        no_attributes = seen[listed.get_indexer(seen) < 0].to_numpy()
        cold = int((seen.get_indexer(listed) < 0).sum())
    return SideFeatures(long=long, names=all_names, ids=id_values, matrix=matrix,
                        empty=int((matrix.getnnz(axis=1) == 0).sum()),
                        no_attributes=no_attributes, cold=cold)


def build_features(spec: Mapping, *, users: pd.DataFrame | None = None,
                   items: pd.DataFrame | None = None,
                   interactions: pd.DataFrame | None = None) -> FeatureTables:
    """Build user and item features from attribute tables and a declarative spec.

    Parameters
    ----------
    spec : mapping
        ``{"user": [entry, ...], "item": [entry, ...]}`` (either key may be left out). An
        entry is a dict ``{"kind": ..., "column": ..., <options>}`` with a kind of
        :data:`KINDS` and that builder's keyword options, or a builder instance. Every entry
        is checked before any data is read: an unknown kind or option is a ValueError naming
        it and the nearest valid name. Two builders may not share a name prefix.
    users, items : DataFrame, optional
        Attribute tables, one row per entity: ``user_id`` / ``item_id`` and the attribute
        columns. Needed for the sides the spec uses; ignored for sides it does not.
    interactions : DataFrame, optional
        ``user_id, item_id`` table; when given, the report counts interacted ids without
        attributes and listed ids without interactions.

    Returns
    -------
    FeatureTables
        ``.user`` and ``.item`` (:class:`SideFeatures`: long table, names, matrix, counts),
        ``.summary()`` and ``.to_dataset(interactions, ...)``.

    Raises
    ------
    ValueError
        A bad spec; a missing column (naming the table, the spec entry and the columns
        present); a repeated or missing id; a value a builder cannot read (naming the column,
        the value and the entity).
    """
    builders = _parse_spec(spec)
    tables = {"user": users, "item": items}
    if interactions is not None:
        for col in Columns.Interactions:
            if col not in interactions.columns:
                raise ValueError(f"interactions need a {col!r} column; "
                                 f"have {list(interactions.columns)}")
    out: dict[str, SideFeatures | None] = {}
    for side, key in _SIDES.items():
        if not builders[side]:
            out[side] = None
            continue
        if tables[side] is None:
            raise ValueError(f"the spec has {side} features but no {side}s table was given "
                             f"(build_features(spec, {side}s=...))")
        interacted = None if interactions is None else interactions[key].to_numpy()
        out[side] = _build_side(side, tables[side], builders[side], interacted)
    return FeatureTables(user=out["user"], item=out["item"])
