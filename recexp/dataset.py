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
        idx = self._index.get_indexer(pd.Index(external)).astype(np.int32, copy=False)
        if missing == "raise" and (idx < 0).any():
            unknown = pd.Index(external)[idx < 0]
            raise KeyError(f"{len(unknown)} unknown id(s), e.g. {list(unknown[:5])!r}")
        return idx

    def to_external(self, internal: np.ndarray) -> np.ndarray:
        """External ids of internal indices."""
        return self.ids[np.asarray(internal)]


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


def _features_from_long(table: pd.DataFrame, key: str, id_map: IdMap, what: str) -> FeatureSet:
    missing = [c for c in (key, Columns.Feature) if c not in table.columns]
    if missing:
        raise ValueError(
            f"{what} feature table needs columns {key!r} and {Columns.Feature!r} "
            f"(and optionally {Columns.Value!r}); missing {missing}, has {list(table.columns)}"
        )
    rows = id_map.to_internal(table[key].to_numpy())
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
                           shape=(len(id_map), len(names)), dtype=np.float32)
    matrix.sum_duplicates()
    names_arr = np.asarray(names.astype(str), dtype=object)
    return FeatureSet(matrix, names_arr)


def _with_identity(features: FeatureSet | None, id_map: IdMap, identity: bool,
                   normalize: bool) -> tuple[sp.csr_matrix, np.ndarray]:
    n = len(id_map)
    parts, names = [], []
    if identity or features is None:
        parts.append(sp.identity(n, dtype=np.float32, format="csr"))
        names.append(np.asarray(id_map.ids.astype(str), dtype=object))
    if features is not None:
        parts.append(features.matrix)
        names.append(features.names)
    matrix = _as_csr(sp.hstack(parts, format="csr")) if len(parts) > 1 else _as_csr(parts[0])
    if normalize:
        sums = np.asarray(matrix.sum(axis=1)).ravel()
        sums[sums == 0] = 1.0
        matrix = _as_csr(sp.diags(1.0 / sums).astype(np.float32) @ matrix)
    return matrix, np.concatenate(names)


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
            Scale each feature row to sum to 1 (LightFM's ``normalize=True``).

        Id order is order of first appearance: interactions, then feature tables, then
        ``users``/``items``. The construction is vectorised (no Python object per row).
        """
        for col in Columns.Interactions:
            if col not in interactions.columns:
                raise ValueError(f"interactions need a {col!r} column; "
                                 f"have {list(interactions.columns)}")
        n = len(interactions)
        u_raw = interactions[Columns.User].to_numpy()
        i_raw = interactions[Columns.Item].to_numpy()
        for name, raw in ((Columns.User, u_raw), (Columns.Item, i_raw)):
            if pd.isna(raw).any():
                row = int(np.flatnonzero(pd.isna(raw))[0])
                raise ValueError(f"interactions: missing {name} at row {interactions.index[row]}"
                                 " (drop them with recexp.preprocess.drop_missing)")
        user_map, u_idx = _id_map(u_raw, user_features, Columns.User, users)
        item_map, i_idx = _id_map(i_raw, item_features, Columns.Item, items)

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
            timestamp = pd.to_datetime(interactions[Columns.Datetime]).to_numpy(
                dtype="datetime64[s]").copy()
        user_side = (None if user_features is None else
                     _features_from_long(user_features, Columns.User, user_map, "user"))
        item_side = (None if item_features is None else
                     _features_from_long(item_features, Columns.Item, item_map, "item"))
        ds = cls(users=user_map, items=item_map, user_idx=u_idx, item_idx=i_idx, weight=weight,
                 rating=rating, timestamp=timestamp, user_side=user_side, item_side=item_side,
                 identity_features=identity_features, normalize_features=normalize_features)
        ds._check_unique_pairs()
        return ds

    def _check_unique_pairs(self) -> None:
        matrix = self._matrix(np.ones(self.n_interactions, np.float32))
        if matrix.nnz != self.n_interactions:
            key = self.user_idx.astype(np.int64) * self.n_items + self.item_idx
            _, first, counts = np.unique(key, return_index=True, return_counts=True)
            row = int(first[counts > 1][0])
            raise ValueError(
                f"interactions repeat (user, item) pairs: {self.n_interactions - matrix.nnz} "
                f"duplicates, e.g. user {self.users.ids[self.user_idx[row]]!r}, item "
                f"{self.items.ids[self.item_idx[row]]!r}; deduplicate first with "
                "recexp.preprocess.deduplicate(..., keep='first'|'last'|'max'|'sum')"
            )
        self._cache["interactions"] = matrix

    def subset(self, rows: np.ndarray) -> Dataset:
        """A Dataset of some interactions (bool mask or positions) with the same maps/features."""
        rows = np.asarray(rows)
        if rows.dtype == bool and len(rows) != self.n_interactions:
            raise ValueError(f"mask has {len(rows)} entries for {self.n_interactions} "
                             "interactions")

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
    def _matrix(self, values: np.ndarray) -> sp.csr_matrix:
        coo = sp.coo_matrix((values, (self.user_idx, self.item_idx)),
                            shape=(self.n_users, self.n_items), dtype=np.float32)
        csr = sp.csr_matrix(coo)
        csr.indices = csr.indices.astype(np.int32, copy=False)
        csr.indptr = csr.indptr.astype(np.int32, copy=False)
        return csr

    def _cached(self, key: str, build) -> sp.csr_matrix:
        if key not in self._cache:
            self._cache[key] = build()
        # A fresh matrix over copied arrays: callers (LightFM among them) may write to it.
        return self._cache[key].copy()

    @property
    def interactions(self) -> sp.csr_matrix:
        """Training weights: float32 CSR of shape [n_users, n_items]."""
        return self._cached("interactions", lambda: self._matrix(self.weight))

    @property
    def binary(self) -> sp.csr_matrix:
        """1.0 where an interaction exists: float32 CSR of shape [n_users, n_items]."""
        return self._cached("binary", lambda: self._matrix(
            np.ones(self.n_interactions, np.float32)))

    @property
    def ratings(self) -> sp.csr_matrix:
        """Explicit ratings: float32 CSR of shape [n_users, n_items] (needs a rating column)."""
        if self.rating is None:
            raise ValueError("this Dataset has no rating column")
        return self._cached("ratings", lambda: self._matrix(self.rating))

    def _features(self, which: str) -> tuple[sp.csr_matrix, np.ndarray]:
        key = f"{which}_features"
        if key not in self._cache:
            side, id_map = ((self.user_side, self.users) if which == "user"
                            else (self.item_side, self.items))
            self._cache[key] = _with_identity(side, id_map, self.identity_features,
                                              self.normalize_features)
        matrix, names = self._cache[key]
        return matrix.copy(), names

    @property
    def user_features(self) -> sp.csr_matrix:
        """float32 CSR of shape [n_users, n_user_features]; identity columns first if on."""
        return self._features("user")[0]

    @property
    def item_features(self) -> sp.csr_matrix:
        """float32 CSR of shape [n_items, n_item_features]; identity columns first if on."""
        return self._features("item")[0]

    @property
    def user_feature_names(self) -> np.ndarray:
        return self._features("user")[1]

    @property
    def item_feature_names(self) -> np.ndarray:
        return self._features("item")[1]

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


def _id_map(raw: np.ndarray, features: pd.DataFrame | None, key: str,
            extra: Sequence | np.ndarray | None) -> tuple[IdMap, np.ndarray]:
    """The id map, in order of first appearance, and the internal index of each ``raw`` id."""
    parts = [pd.Series(raw)]
    if features is not None and key in features.columns:
        parts.append(features[key].reset_index(drop=True))
    if extra is not None:
        parts.append(pd.Series(np.asarray(extra)))
    values = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    codes, uniques = pd.factorize(values, sort=False)
    return IdMap(uniques), codes[: len(raw)].astype(np.int32)
