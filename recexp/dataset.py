"""Dataset: interactions, id maps and features, turned into the sparse matrices models use."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recexp.columns import Columns

__all__ = ["Dataset", "FeatureSet", "IdMap"]

_PRESORT_MAX = 1 << 19
"""Interactions up to which :meth:`Dataset._csr_arrays` presorts by item (see there)."""


class IdMap:
    """Two-way map between external ids and internal indices ``0..n-1``, vectorised.

    Internal index ``i`` belongs to external id ``ids[i]``; order is order of first appearance.
    """

    __slots__ = ("_index", "ids")

    def __init__(self, ids: np.ndarray | pd.Index) -> None:
        index = pd.Index(ids)
        if not index.is_unique:
            dup = index[index.duplicated()][0]
            raise ValueError(f"id map has a repeated id: {dup!r}")
        self._index = index
        self.ids = index.to_numpy(copy=True)
        self.ids.flags.writeable = False

    def __len__(self) -> int:
        return len(self.ids)

    def to_internal(self, external: Sequence | np.ndarray | pd.Series, *,
                    missing: str = "raise") -> np.ndarray:
        """Internal indices (int32) of ``external`` ids.

        ``missing="raise"`` raises ``KeyError`` naming the first unknown ids; ``"ignore"``
        gives ``-1`` for them.
        """
        if missing not in ("raise", "ignore"):
            raise ValueError(f"missing must be 'raise' or 'ignore', got {missing!r}")
        external = pd.Index(external)
        idx = self._index.get_indexer(external).astype(np.int32, copy=False)
        if missing == "raise" and (idx < 0).any():
            unknown = external[idx < 0]
            raise KeyError(f"{len(unknown)} unknown id(s), e.g. {unknown[:5].tolist()!r}")
        return idx

    def to_external(self, internal: np.ndarray) -> np.ndarray:
        """External ids of internal indices.

        Raises ``IndexError`` for an index outside ``0..n-1``: ``-1`` (an unknown id from
        ``to_internal(..., missing="ignore")``) must not wrap around to the last id.
        """
        internal = np.asarray(internal)
        if internal.size and (internal.min() < 0 or internal.max() >= len(self.ids)):
            bad = internal[(internal < 0) | (internal >= len(self.ids))]
            raise IndexError(f"{bad.size} internal index(es) outside 0..{len(self.ids) - 1}, "
                             f"e.g. {bad[:5].tolist()!r}")
        return self.ids[internal]


@dataclass(frozen=True)
class FeatureSet:
    """Side features of users or items, without identity features.

    ``matrix``: float32 CSR of shape [n_entities, n_features]; ``names``: feature names.
    """

    matrix: sp.csr_matrix
    names: np.ndarray

    @property
    def n_features(self) -> int:
        return len(self.names)


def _as_csr(matrix: sp.spmatrix) -> sp.csr_matrix:
    # lightfm.evaluation and LightFM itself want the *_matrix types, not scipy's *_array.
    return sp.csr_matrix(matrix, dtype=np.float32)


def _check_feature_table(table: pd.DataFrame, key: str, what: str) -> None:
    missing = [c for c in (key, Columns.Feature) if c not in table.columns]
    if missing:
        raise ValueError(
            f"{what} feature table needs columns {key!r} and {Columns.Feature!r} "
            f"(and optionally {Columns.Value!r}); missing {missing}, has {list(table.columns)}"
        )


def _features_from_long(table: pd.DataFrame, rows: np.ndarray, n_entities: int,
                        what: str) -> FeatureSet:
    """``rows``: the internal index of each table row's entity (from :func:`_id_map`)."""
    codes, names = pd.factorize(table[Columns.Feature], sort=False)
    if (codes < 0).any():
        bad = table.index[codes < 0][0]
        raise ValueError(f"{what} feature table: missing feature name at row {bad}")
    values = (table[Columns.Value].to_numpy(dtype=np.float32, copy=True)
              if Columns.Value in table.columns else np.ones(len(table), np.float32))
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(f"{what} feature table: non-finite value at row {table.index[bad]}")
    matrix = sp.csr_matrix((values, (rows, codes.astype(np.int32))),
                           shape=(n_entities, len(names)), dtype=np.float32)
    matrix.sum_duplicates()
    names_arr = np.asarray(names.astype(str), dtype=object)
    # Shared by every subset and split of the Dataset: nobody may edit them in place.
    for arr in (matrix.data, matrix.indices, matrix.indptr, names_arr):
        arr.flags.writeable = False
    return FeatureSet(matrix, names_arr)


def _with_identity(features: FeatureSet | None, n: int, identity: bool,
                   normalize: bool) -> sp.csr_matrix:
    if features is None:
        matrix = _identity(n)
    elif identity:
        matrix = _prepend_identity(features.matrix)
    else:
        matrix = _as_csr(features.matrix)
    return _normalize_l1(matrix) if normalize else matrix


def _feature_names(features: FeatureSet | None, id_map: IdMap, identity: bool) -> np.ndarray:
    """Column names of :func:`_with_identity`'s matrix: ``str(id)`` for identity columns."""
    parts = []
    if identity or features is None:
        parts.append(np.asarray(id_map.ids.astype(str), dtype=object))
    if features is not None:
        parts.append(features.names)
    names = np.asarray(np.concatenate(parts) if len(parts) > 1 else parts[0].copy(),
                       dtype=object)
    names.flags.writeable = False
    return names


def _identity(n: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(n, np.float32), np.arange(n, dtype=np.int32),
                          np.arange(n + 1, dtype=np.int32)), shape=(n, n))


def _prepend_identity(side: sp.csr_matrix) -> sp.csr_matrix:
    """``[I | side]`` built directly: row r gets column r, then its side columns shifted by n.

    ``sp.hstack`` gives the same matrix but goes through COO and a sort.
    """
    n = side.shape[0]
    counts = np.diff(side.indptr).astype(np.int64) + 1
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    first = indptr[:-1]
    data = np.empty(indptr[-1], np.float32)
    indices = np.empty(indptr[-1], np.int32)
    rest = np.ones(indptr[-1], bool)
    rest[first] = False
    data[first] = 1.0
    indices[first] = np.arange(n, dtype=np.int32)
    data[rest] = side.data
    indices[rest] = side.indices + n
    matrix = sp.csr_matrix((data, indices, indptr.astype(np.int32)),
                           shape=(n, n + side.shape[1]))
    matrix.has_canonical_format = side.has_canonical_format
    return matrix


def _normalize_l1(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Rows divided by their L1 norm; all-zero rows stay zero.

    Computed as sklearn's ``normalize(norm="l1")``, which LightFM's ``Dataset`` uses: the norm
    summed in float64 in storage order, each float32 value divided by it, so the results agree
    bit for bit. ``|x|`` matters for signed features, whose plain sum can be 0 or negative.
    """
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    norms = np.bincount(rows, weights=np.abs(matrix.data), minlength=matrix.shape[0])
    norms[norms == 0] = 1.0
    data = (matrix.data / norms[rows]).astype(np.float32)
    out = sp.csr_matrix((data, matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape)
    out.has_canonical_format = matrix.has_canonical_format
    return out


class Dataset:
    """Interactions with their id maps and optional user and item features. Immutable.

    Build one with :meth:`from_frames`. Internal indices never leave a Dataset: every method
    that takes or returns users or items speaks external ids, except the matrices, whose rows
    and columns are internal indices (``user_ids[i]`` is the external id of row ``i``).

    A Dataset made by :meth:`subset` (as splits do) shares the id maps and features of its
    parent, so train and test matrices line up and cold users and items keep their features.

    Attributes
    ----------
    users, items : IdMap
        External id <-> internal index maps.
    user_idx, item_idx : np.int32 arrays of shape [n_interactions]
        The interactions in input order, as internal indices.
    weight : np.float32 array of shape [n_interactions]
        Training weight of each interaction (1.0 when the table had no weight column).
    rating : np.float32 array of shape [n_interactions], or None
    timestamp : datetime64[s] array of shape [n_interactions], or None
    identity_features, normalize_features : bool
        How :attr:`user_features` and :attr:`item_features` are laid out (see there).
    """

    def __init__(self, *, users: IdMap, items: IdMap, user_idx: np.ndarray,
                 item_idx: np.ndarray, weight: np.ndarray, rating: np.ndarray | None,
                 timestamp: np.ndarray | None, user_side: FeatureSet | None,
                 item_side: FeatureSet | None, identity_features: bool = True,
                 normalize_features: bool = False) -> None:
        self.users = users
        self.items = items
        self.user_idx = user_idx
        self.item_idx = item_idx
        self.weight = weight
        self.rating = rating
        self.timestamp = timestamp
        self.user_side = user_side
        self.item_side = item_side
        self.identity_features = identity_features
        self.normalize_features = normalize_features
        for arr in (user_idx, item_idx, weight, rating, timestamp):
            if arr is not None:
                arr.flags.writeable = False
        self._cache: dict[str, object] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls,
        interactions: pd.DataFrame,
        *,
        user_features: pd.DataFrame | None = None,
        item_features: pd.DataFrame | None = None,
        users: Sequence | np.ndarray | None = None,
        items: Sequence | np.ndarray | None = None,
        identity_features: bool = True,
        normalize_features: bool = False,
    ) -> Dataset:
        """Build a Dataset from an interactions table and optional long feature tables.

        Parameters
        ----------
        interactions : DataFrame
            Columns ``user_id``, ``item_id``; optional ``weight``, ``rating``, ``timestamp``
            (see :class:`~recexp.columns.Columns`). Each (user, item) pair at most once:
            deduplicate first with :func:`recexp.preprocess.deduplicate`.
        user_features, item_features : DataFrame, optional
            Long tables ``(user_id | item_id, feature[, value])``, one row per non-zero; value
            defaults to 1.0. Ids that appear only here become users/items without
            interactions (cold), with their features.
        users, items : sequence, optional
            Further ids to know even without interactions or features.
        identity_features : bool
            Prepend one indicator feature per user/item to the feature matrices (as LightFM's
            own ``Dataset`` does); without side features the identity is always used.
        normalize_features : bool
            Divide each feature row by its L1 norm, so its absolute values sum to 1, as
            LightFM's ``normalize=True`` does. A row with no features stays zero; LightFM
            raises on one.

        Id order is order of first appearance: interactions, then feature tables, then
        ``users``/``items``. The construction is vectorised (no Python object per row).
        """
        for col in Columns.Interactions:
            if col not in interactions.columns:
                raise ValueError(f"interactions need a {col!r} column; "
                                 f"have {list(interactions.columns)}")
        for table, key, what in ((user_features, Columns.User, "user"),
                                 (item_features, Columns.Item, "item")):
            if table is not None:
                _check_feature_table(table, key, what)
        n = len(interactions)
        for name in Columns.Interactions:
            # numpy integer columns cannot hold a missing value (pandas' nullable Int64 can);
            # asking pandas costs a full scan.
            dtype = interactions[name].dtype
            plain_int = isinstance(dtype, np.dtype) and dtype.kind in "iub"
            if not plain_int and interactions[name].hasnans:
                row = int(np.flatnonzero(interactions[name].isna().to_numpy())[0])
                raise ValueError(f"interactions: missing {name} at row {interactions.index[row]}"
                                 " (drop them with recexp.preprocess.drop_missing)")
        user_map, u_idx, u_rows = _id_map(interactions[Columns.User], user_features,
                                          Columns.User, users, "user")
        item_map, i_idx, i_rows = _id_map(interactions[Columns.Item], item_features,
                                          Columns.Item, items, "item")

        def column(name: str, dtype: str) -> np.ndarray | None:
            if name not in interactions.columns:
                return None
            return interactions[name].to_numpy(dtype=dtype, copy=True)

        weight = column(Columns.Weight, "float32")
        if weight is None:
            weight = np.ones(n, dtype=np.float32)
        elif not np.isfinite(weight).all():
            row = int(np.flatnonzero(~np.isfinite(weight))[0])
            raise ValueError(f"interactions: non-finite weight at row {interactions.index[row]}")
        rating = column(Columns.Rating, "float32")
        timestamp = None
        if Columns.Datetime in interactions.columns:
            stamps = interactions[Columns.Datetime]
            if not (isinstance(stamps.dtype, np.dtype) and stamps.dtype.kind == "M"):
                stamps = pd.to_datetime(stamps)
            timestamp = stamps.to_numpy(dtype="datetime64[s]", copy=True)
        user_side = (None if user_features is None else
                     _features_from_long(user_features, u_rows, len(user_map), "user"))
        item_side = (None if item_features is None else
                     _features_from_long(item_features, i_rows, len(item_map), "item"))
        ds = cls(users=user_map, items=item_map, user_idx=u_idx, item_idx=i_idx, weight=weight,
                 rating=rating, timestamp=timestamp, user_side=user_side, item_side=item_side,
                 identity_features=identity_features, normalize_features=normalize_features)
        ds._layout()  # builds the weight matrix once and refuses repeated pairs
        return ds

    def _layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR arrays ``(indptr, indices, data)`` of the weight matrix, built once.

        :attr:`interactions` copies them and :attr:`binary` shares their structure.
        Raises ``ValueError`` naming a repeated (user, item) pair.
        """
        if "layout" not in self._cache:
            self._cache["layout"] = self._csr_arrays(self.weight)
        return self._cache["layout"]

    def _csr_arrays(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Read-only int32 ``indptr``, int32 ``indices`` (sorted within rows) and float32
        ``data`` of the [n_users, n_items] matrix of one value per interaction."""
        n = self.n_interactions
        users, items = self.user_idx, self.item_idx
        if n <= _PRESORT_MAX:
            # Bucket by item first (CSR -> CSC of a one-entry-per-row matrix is a stable
            # counting sort): bucketing by user below then leaves every row's items in order,
            # and scipy skips its per-row sort. Twice as fast while the arrays sit in cache;
            # beyond, the extra random-access pass costs more than it saves.
            steps = np.arange(n + 1, dtype=np.int32)
            by_item = sp.csr_matrix((steps[:-1], items, steps), shape=(n, self.n_items)).tocsc()
            order = by_item.data.astype(np.intp)
            users, values = users[order], values[order]
            items = np.repeat(np.arange(self.n_items, dtype=np.int32), np.diff(by_item.indptr))
        # The values ride along in the sort; a repeated pair is summed into one entry, so
        # nnz < n exposes it without a pass of its own.
        csr = sp.coo_matrix((values, (users, items)), shape=(self.n_users, self.n_items),
                            dtype=np.float32).tocsr()
        if csr.nnz != n:
            self._raise_repeated_pairs(n - csr.nnz)
        arrays = (csr.indptr.astype(np.int32, copy=False),
                  csr.indices.astype(np.int32, copy=False), csr.data)
        for arr in arrays:
            arr.flags.writeable = False
        return arrays

    def _raise_repeated_pairs(self, n_repeats: int) -> None:
        key = self.user_idx.astype(np.int64) * self.n_items + self.item_idx
        _, first, counts = np.unique(key, return_index=True, return_counts=True)
        row = int(first[counts > 1][0])
        user = self.users.ids[self.user_idx[row]]
        item = self.items.ids[self.item_idx[row]]
        # numpy scalars repr as np.int64(7); the user wrote 7.
        user, item = (x.item() if isinstance(x, np.generic) else x for x in (user, item))
        raise ValueError(
            f"interactions repeat (user, item) pairs: {n_repeats} duplicates, e.g. user "
            f"{user!r}, item {item!r}; deduplicate first with "
            "recexp.preprocess.deduplicate(..., keep='first'|'last'|'max'|'sum')"
        )

    def subset(self, rows: np.ndarray) -> Dataset:
        """A Dataset of some interactions with the same id maps and features.

        Parameters
        ----------
        rows : bool array of shape [n_interactions], or int array of positions
            Which interactions to keep. Positions may not repeat: a repeated interaction
            would be a repeated (user, item) pair.
        """
        rows = np.asarray(rows)
        n = self.n_interactions
        if rows.dtype == bool:
            if len(rows) != n:
                raise ValueError(f"mask has {len(rows)} entries for {n} interactions")
        elif rows.size:
            # Out-of-range positions raise IndexError in the take below; count the rest.
            wrapped = np.where(rows < 0, rows + n, rows)
            counts = np.bincount(wrapped[(wrapped >= 0) & (wrapped < n)], minlength=n)
            if (counts > 1).any():
                pos = int(np.flatnonzero(counts > 1)[0])
                raise ValueError(f"subset positions repeat: interaction {pos} is taken "
                                 f"{int(counts[pos])} times")

        def take(arr: np.ndarray | None) -> np.ndarray | None:
            return None if arr is None else arr[rows]

        return Dataset(users=self.users, items=self.items, user_idx=take(self.user_idx),
                       item_idx=take(self.item_idx), weight=take(self.weight),
                       rating=take(self.rating), timestamp=take(self.timestamp),
                       user_side=self.user_side, item_side=self.item_side,
                       identity_features=self.identity_features,
                       normalize_features=self.normalize_features)

    def with_options(self, *, identity_features: bool | None = None,
                     normalize_features: bool | None = None) -> Dataset:
        """The same data with another feature layout (shares all arrays)."""
        return Dataset(
            users=self.users, items=self.items, user_idx=self.user_idx, item_idx=self.item_idx,
            weight=self.weight, rating=self.rating, timestamp=self.timestamp,
            user_side=self.user_side, item_side=self.item_side,
            identity_features=(self.identity_features if identity_features is None
                               else identity_features),
            normalize_features=(self.normalize_features if normalize_features is None
                                else normalize_features))

    # ------------------------------------------------------------------ sizes
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self.user_idx)

    @property
    def user_ids(self) -> np.ndarray:
        """External user ids; position = internal index (read-only)."""
        return self.users.ids

    @property
    def item_ids(self) -> np.ndarray:
        """External item ids; position = internal index (read-only)."""
        return self.items.ids

    # ------------------------------------------------------------------ matrices
    def _matrix(self, indptr: np.ndarray, indices: np.ndarray,
                data: np.ndarray) -> sp.csr_matrix:
        # New arrays on every call: callers, LightFM among them, may write to the matrix
        # without touching the Dataset.
        matrix = sp.csr_matrix((data, indices.copy(), indptr.copy()),
                               shape=(self.n_users, self.n_items))
        matrix.has_canonical_format = True
        return matrix

    @property
    def interactions(self) -> sp.csr_matrix:
        """Training weights: float32 CSR of shape [n_users, n_items]."""
        indptr, indices, data = self._layout()
        return self._matrix(indptr, indices, data.copy())

    @property
    def binary(self) -> sp.csr_matrix:
        """1.0 where an interaction exists: float32 CSR of shape [n_users, n_items]."""
        indptr, indices, _ = self._layout()
        return self._matrix(indptr, indices, np.ones(len(indices), np.float32))

    @property
    def ratings(self) -> sp.csr_matrix:
        """Explicit ratings: float32 CSR of shape [n_users, n_items] (needs a rating column)."""
        if self.rating is None:
            raise ValueError("this Dataset has no rating column")
        if "ratings" not in self._cache:
            self._cache["ratings"] = self._csr_arrays(self.rating)
        indptr, indices, data = self._cache["ratings"]
        return self._matrix(indptr, indices, data.copy())

    def _side(self, which: str) -> tuple[FeatureSet | None, IdMap]:
        return ((self.user_side, self.users) if which == "user"
                else (self.item_side, self.items))

    def _features(self, which: str) -> sp.csr_matrix:
        key = f"{which}_features"
        if key not in self._cache:
            side, id_map = self._side(which)
            self._cache[key] = _with_identity(side, len(id_map), self.identity_features,
                                              self.normalize_features)
        # A copy: the caller may write to it (LightFM among them) without touching the Dataset.
        return self._cache[key].copy()

    def _names(self, which: str) -> np.ndarray:
        key = f"{which}_feature_names"
        if key not in self._cache:
            side, id_map = self._side(which)
            self._cache[key] = _feature_names(side, id_map, self.identity_features)
        return self._cache[key]

    @property
    def user_features(self) -> sp.csr_matrix:
        """float32 CSR of shape [n_users, n_user_features]; identity columns first if on."""
        return self._features("user")

    @property
    def item_features(self) -> sp.csr_matrix:
        """float32 CSR of shape [n_items, n_item_features]; identity columns first if on."""
        return self._features("item")

    @property
    def user_feature_names(self) -> np.ndarray:
        """Names of :attr:`user_features`' columns (read-only object array of str)."""
        return self._names("user")

    @property
    def item_feature_names(self) -> np.ndarray:
        """Names of :attr:`item_features`' columns (read-only object array of str)."""
        return self._names("item")

    # ------------------------------------------------------------------ back to tables
    def to_frame(self) -> pd.DataFrame:
        """The interactions as a table in external ids (Columns names)."""
        data = {Columns.User: self.users.to_external(self.user_idx),
                Columns.Item: self.items.to_external(self.item_idx),
                Columns.Weight: self.weight}
        if self.rating is not None:
            data[Columns.Rating] = self.rating
        if self.timestamp is not None:
            data[Columns.Datetime] = self.timestamp
        return pd.DataFrame(data)

    def describe(self) -> dict[str, object]:
        """Size, density, rating histogram and time span, as plain Python values."""
        active_users = int(np.unique(self.user_idx).size)
        active_items = int(np.unique(self.item_idx).size)
        out: dict[str, object] = {
            "interactions": self.n_interactions,
            "users": active_users,
            "items": active_items,
            "known_users": self.n_users,
            "known_items": self.n_items,
            "density": (self.n_interactions / (active_users * active_items)
                        if active_users and active_items else 0.0),
        }
        if self.rating is not None:
            values, counts = np.unique(self.rating, return_counts=True)
            out["rating_histogram"] = {float(v): int(c) for v, c in zip(values, counts,
                                                                        strict=True)}
        if self.timestamp is not None and len(self.timestamp):
            out["first"] = str(self.timestamp.min())
            out["last"] = str(self.timestamp.max())
        if self.user_side is not None:
            out["user_features"] = self.user_side.n_features
        if self.item_side is not None:
            out["item_features"] = self.item_side.n_features
        return out

    def digest(self) -> str:
        """SHA-256 (first 16 hex digits) of the interactions and id maps; for run tracking."""
        h = hashlib.sha256()
        for arr in (self.user_idx, self.item_idx, self.weight, self.rating, self.timestamp):
            if arr is not None:
                h.update(np.ascontiguousarray(arr).view(np.uint8).tobytes())
        for ids in (self.user_ids, self.item_ids):
            h.update(pd.util.hash_array(np.asarray(ids)).tobytes())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        return (f"Dataset(users={self.n_users:,}, items={self.n_items:,}, "
                f"interactions={self.n_interactions:,})")


def _id_map(column: pd.Series, features: pd.DataFrame | None, key: str,
            extra: Sequence | np.ndarray | None,
            what: str) -> tuple[IdMap, np.ndarray, np.ndarray | None]:
    """The id map in order of first appearance (interactions, then the feature table, then
    ``extra``), the int32 internal index of each interaction's id, and that of each feature
    table row (None without a feature table)."""
    codes, uniques = _factorize(column)
    index = pd.Index(uniques)
    feature_rows = None
    parts = [("feature table", features[key] if features is not None else None),
             ("known ids", None if extra is None else pd.Series(np.asarray(extra)))]
    for label, part in parts:
        if part is None:
            continue
        # Each small side table is looked up in the uniques so far: the long interaction
        # column is never copied into a concatenation.
        part_codes, part_uniques = _factorize(part)
        if (part_codes < 0).any():
            pos = int(np.flatnonzero(part_codes < 0)[0])
            where = (f"{what} feature table: missing {key} at row {part.index[pos]}"
                     if label == "feature table" else f"{what}s: missing id at position {pos}")
            raise ValueError(where)
        part_uniques = pd.Index(part_uniques)
        found = index.get_indexer(part_uniques).astype(np.int32, copy=False)
        new = found < 0
        if new.any():
            found[new] = len(index) + np.arange(int(new.sum()), dtype=np.int32)
            index = index.append(part_uniques[new])
        if label == "feature table":
            feature_rows = found[part_codes]
    return IdMap(index), codes.astype(np.int32, copy=False), feature_rows


def _factorize(values: pd.Series | np.ndarray) -> tuple[np.ndarray, object]:
    """``pd.factorize(values)``: codes (-1 for missing) and uniques by first appearance.

    Integer ids in a compact range (how MovieLens, Netflix and most logs number users and
    items) take a hash-free path: a table over the range holds each value's first position,
    which is several times faster than pandas' hash table on millions of ids.
    """
    dtype = getattr(values, "dtype", None)
    arr = np.asarray(values) if isinstance(dtype, np.dtype) and dtype.kind in "iu" else None
    if arr is not None and arr.size:
        n = arr.size
        low = arr.min()
        span = int(arr.max()) - int(low) + 1
        # Bounded table memory: at most ~2 int32 words per id plus a little.
        if span <= 2 * n + (1 << 16) and n < 2**31:
            offset = (arr - low).astype(np.intp, copy=False)
            first = np.full(span, n, dtype=np.int32)
            np.minimum.at(first, offset, np.arange(n, dtype=np.int32))
            firsts = np.sort(first[first < n])
            lookup = np.empty(span, dtype=np.int32)
            lookup[offset[firsts]] = np.arange(firsts.size, dtype=np.int32)
            return lookup[offset], arr[firsts]
    return pd.factorize(values, sort=False)
