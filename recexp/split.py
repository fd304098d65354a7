"""Train/test splits for recommender evaluation, and the splitters that make them.

A splitter is a small frozen config: one field per option (a docstring under each), integer
seeds, and flat params that round-trip through YAML (:meth:`Splitter.to_params`,
:func:`make_splitter`). ``splitter.split(dataset)`` returns a :class:`Split` whose parts are
:meth:`~recexp.dataset.Dataset.subset` s of that one Dataset: they share its id maps and
features, so train and test matrices line up and cold users and items keep their features.

Every split carries **segments**: boolean masks over the test interactions saying whether
the model saw the interaction's user and item while fitting (see :class:`Split`). They are
computed from the parts, never asserted, so they are true for any splitter, and the
cold-start splitter makes all four of them non-empty on purpose.

==================  ==========================================================================
kind                splitter
==================  ==========================================================================
``random``          :class:`RandomSplitter`: a random fraction of all interactions
``user_ratio``      :class:`UserRatioSplitter`: a random fraction of each user's interactions
``item_ratio``      :class:`ItemRatioSplitter`: a random fraction of each item's interactions
``temporal``        :class:`TemporalSplitter`: one global cut in time (a date or a fraction)
``leave_last_n``    :class:`LeaveLastNSplitter`: each user's n latest interactions
``leave_random_n``  :class:`LeaveRandomNSplitter`: n random interactions of each user
``kfold``           :class:`KFoldSplitter`: k folds of interactions
``user_kfold``      :class:`UserKFoldSplitter`: k folds of users, part of each held out
``predefined``      :class:`PredefinedSplitter`: a split shipped with the data (ML-100K u1..ub)
``cold_start``      :class:`ColdStartSplitter`: whole users and items held out, plus warm test
==================  ==========================================================================

>>> import pandas as pd
>>> from recexp.dataset import Dataset
>>> frame = pd.DataFrame({"user_id": [u for u in range(10) for _ in range(5)],
...                       "item_id": [(u + k) % 7 for u in range(10) for k in range(5)]})
>>> data = Dataset.from_frames(frame)
>>> split = UserRatioSplitter(ratio=0.2, seed=42).split(data)
>>> split.train.n_interactions, split.test.n_interactions
(40, 10)
>>> make_splitter({"kind": "user_ratio", "ratio": 0.2, "seed": 42}) == UserRatioSplitter(
...     ratio=0.2, seed=42)
True
"""

from __future__ import annotations

import datetime as _dt
import difflib
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import KW_ONLY, InitVar, dataclass, field, fields, replace
from functools import cached_property
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import pandas as pd

from recexp.columns import Columns
from recexp.dataset import Dataset

__all__ = [
    "SEGMENTS",
    "ColdStartSplitter",
    "ItemRatioSplitter",
    "KFoldSplitter",
    "LeaveLastNSplitter",
    "LeaveRandomNSplitter",
    "PredefinedSplitter",
    "RandomSplitter",
    "Split",
    "Splitter",
    "TemporalSplitter",
    "UserKFoldSplitter",
    "UserRatioSplitter",
    "make_splitter",
    "split_from_tables",
    "splitter_kinds",
]

SEGMENTS = ("warm", "cold_user", "cold_item", "cold_both")
"""Segment names, in order: user and item both seen in fitting / only the item seen / only the
user seen / neither seen."""


# ---------------------------------------------------------------------------------- Split
@dataclass(frozen=True, eq=False)
class Split:
    """Train, test and optional validation interactions of one Dataset.

    Build one with a splitter, with :func:`split_from_tables`, or directly from
    :meth:`Dataset.subset <recexp.dataset.Dataset.subset>` s of one Dataset. Every part must
    share the same id maps (that is what ``subset`` gives), and no (user, item) pair may be in
    two parts.

    Attributes
    ----------
    train, test : Dataset
        What a model is fitted on, and what it is evaluated on.
    valid : Dataset or None
        Carved out of the training data for tuning (:meth:`with_validation`): tune by fitting
        on ``train`` and scoring on ``valid``, then refit on :attr:`full_train` and test once.
    name : str
        A label for the run (``"user_ratio"``, ``"kfold-fold2"``, ``"u1"``, ...).
    seed : int or None
        The seed that made the test split (the one actually used, also when the splitter's
        seed was ``None``); ``None`` for deterministic splitters.
    valid_seed : int or None
        The seed that carved ``valid`` out of the training data.
    segments : mapping of str -> bool array of shape [test.n_interactions]
        One read-only mask per name in :data:`SEGMENTS`; the masks partition the test
        interactions. They are **per interaction**: ``warm`` marks test interactions whose
        user and item both have at least one interaction in :attr:`full_train` (train plus
        valid, what the final model is fitted on); ``cold_user`` those whose user has none
        but whose item has some; ``cold_item`` the converse; ``cold_both`` neither. A user is
        either cold or warm in every one of its test interactions, so evaluation computes a
        segment's metrics over the users that have test interactions in it, with relevance
        restricted to those interactions (:meth:`segment` gives that test subset).
    valid_segments : mapping of str -> bool array of shape [valid.n_interactions], or None
        The same for ``valid``, relative to ``train`` alone.
    check : bool, init only
        Check that the parts share no (user, item) pair (one sort of all pairs: under a second
        for 10M interactions). Splitters here pass ``False``: their parts are disjoint by
        construction.
    """

    train: Dataset
    test: Dataset
    _: KW_ONLY
    valid: Dataset | None = None
    name: str = ""
    seed: int | None = None
    valid_seed: int | None = None
    segments: Mapping[str, np.ndarray] = field(init=False, repr=False)
    valid_segments: Mapping[str, np.ndarray] | None = field(init=False, repr=False)
    check: InitVar[bool] = True

    def __post_init__(self, check: bool) -> None:
        parts = self._parts()
        for what, part in parts:
            if not isinstance(part, Dataset):
                raise TypeError(f"split part {what!r} must be a recexp Dataset, "
                                f"got {type(part).__name__}")
            if part.users is not self.train.users or part.items is not self.train.items:
                raise ValueError(
                    f"split part {what!r} does not share the id maps of 'train': make every "
                    "part with Dataset.subset of one Dataset so matrices line up")
        if check:
            _check_disjoint(parts)
        fit = [self.train] if self.valid is None else [self.train, self.valid]
        object.__setattr__(self, "segments", _segments(fit, self.test))
        object.__setattr__(self, "valid_segments",
                           None if self.valid is None else _segments([self.train], self.valid))

    def _parts(self) -> list[tuple[str, Dataset]]:
        parts = [("train", self.train), ("test", self.test)]
        if self.valid is not None:
            parts.insert(1, ("valid", self.valid))
        return parts

    @cached_property
    def full_train(self) -> Dataset:
        """Train plus valid (just ``train`` without a validation set): what the final model
        is refitted on after tuning. Same id maps and features."""
        if self.valid is None:
            return self.train
        return _concat(self.train, self.valid)

    def segment(self, name: str, *, part: str = "test") -> Dataset:
        """The test (or valid) interactions of one segment, as a Dataset with the same maps.

        Parameters
        ----------
        name : {"warm", "cold_user", "cold_item", "cold_both"}
        part : {"test", "valid"}
        """
        if part == "test":
            data, masks = self.test, self.segments
        elif part == "valid":
            if self.valid is None:
                raise ValueError("this split has no validation set; add one with "
                                 "with_validation(splitter)")
            data, masks = self.valid, self.valid_segments
        else:
            raise ValueError(f"part must be 'test' or 'valid', got {part!r}")
        if name not in masks:
            raise ValueError(f"unknown segment {name!r}{_nearest(name, SEGMENTS)}; "
                             f"segments are {', '.join(SEGMENTS)}")
        return data.subset(masks[name])

    def with_validation(self, splitter: Splitter, *, fold: int = 0) -> Split:
        """This split with a validation set carved out of its training data.

        ``splitter`` splits ``train`` the way it would split a whole Dataset (its test part
        becomes ``valid``); ``test`` and its segments are unchanged, since train plus valid
        is the old train. For a k-fold splitter, ``fold`` picks the fold.
        """
        if self.valid is not None:
            raise ValueError(f"split {self.name!r} already has a validation set")
        if not isinstance(splitter, Splitter):
            raise TypeError(f"with_validation needs a Splitter, got {type(splitter).__name__}")
        inner = splitter.split(self.train, fold=fold)
        return Split(inner.train, self.test, valid=inner.test,
                     name=f"{self.name}+valid:{inner.name}", seed=self.seed,
                     valid_seed=inner.seed, check=False)

    def describe(self) -> pd.DataFrame:
        """Counts per part and per segment.

        Returns
        -------
        DataFrame
            Index ``train``, ``valid`` (when present), ``test``, then ``test/<segment>`` and
            ``valid/<segment>``; columns ``interactions``, ``users``, ``items`` (distinct
            users and items with at least one interaction there), all int.
        """
        rows: dict[str, tuple[int, int, int]] = {}
        for what, part in self._parts():
            rows[what] = _counts(part)
        for what, part, masks in (("test", self.test, self.segments),
                                  ("valid", self.valid, self.valid_segments)):
            if part is None:
                continue
            for seg in SEGMENTS:
                rows[f"{what}/{seg}"] = _counts(part, masks[seg])
        return pd.DataFrame.from_dict(rows, orient="index",
                                      columns=["interactions", "users", "items"])

    def __repr__(self) -> str:
        valid = "" if self.valid is None else f", valid={self.valid!r}"
        return (f"Split(name={self.name!r}, seed={self.seed!r}, train={self.train!r}"
                f"{valid}, test={self.test!r})")


def _counts(data: Dataset, mask: np.ndarray | None = None) -> tuple[int, int, int]:
    users, items = data.user_idx, data.item_idx
    if mask is not None:
        users, items = users[mask], items[mask]
    return (len(users), int(np.count_nonzero(np.bincount(users, minlength=data.n_users))),
            int(np.count_nonzero(np.bincount(items, minlength=data.n_items))))


def _keys(data: Dataset) -> np.ndarray:
    return data.user_idx.astype(np.int64) * data.n_items + data.item_idx


def _check_disjoint(parts: list[tuple[str, Dataset]]) -> None:
    keys = np.sort(np.concatenate([_keys(part) for _, part in parts]))
    dup = keys[1:][keys[1:] == keys[:-1]]
    if not dup.size:
        return
    key = int(dup[0])
    owners = [what for what, part in parts for _ in range(int((_keys(part) == key).sum()))]
    data = parts[0][1]
    user = _plain(data.user_ids[key // data.n_items])
    item = _plain(data.item_ids[key % data.n_items])
    where = (f"{owners[0]!r} twice" if owners[0] == owners[1]
             else f"both {owners[0]!r} and {owners[1]!r}")
    raise ValueError(f"split parts overlap: {dup.size} (user, item) pair(s) repeat, e.g. "
                     f"user {user!r}, item {item!r} is in {where}")


def _plain(value):
    # numpy scalars repr as np.int64(7); the user wrote 7.
    return value.item() if isinstance(value, np.generic) else value


def _segments(fit: list[Dataset], target: Dataset) -> Mapping[str, np.ndarray]:
    seen_user = np.zeros(target.n_users, dtype=bool)
    seen_item = np.zeros(target.n_items, dtype=bool)
    for part in fit:
        seen_user[part.user_idx] = True
        seen_item[part.item_idx] = True
    u = seen_user[target.user_idx]
    i = seen_item[target.item_idx]
    masks = {"warm": u & i, "cold_user": ~u & i, "cold_item": u & ~i, "cold_both": ~u & ~i}
    for mask in masks.values():
        mask.flags.writeable = False
    return MappingProxyType(masks)


def _concat(a: Dataset, b: Dataset) -> Dataset:
    def cat(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
        return None if x is None or y is None else np.concatenate([x, y])

    return Dataset(users=a.users, items=a.items, user_idx=cat(a.user_idx, b.user_idx),
                   item_idx=cat(a.item_idx, b.item_idx), weight=cat(a.weight, b.weight),
                   rating=cat(a.rating, b.rating), timestamp=cat(a.timestamp, b.timestamp),
                   user_side=a.user_side, item_side=a.item_side,
                   identity_features=a.identity_features,
                   normalize_features=a.normalize_features)


# ------------------------------------------------------------------------- validation
def _nearest(word: str, choices) -> str:
    near = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _check_ratio(kind: str, name: str, value, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{kind}: {name} must be a number, got {value!r}")
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value < 1):
        bound = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"{kind}: {name} must be in {bound}, got {value!r}")


def _check_int(kind: str, name: str, value, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{kind}: {name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{kind}: {name} must be >= {low}, got {value!r}")


def _check_seed(kind: str, seed) -> None:
    if seed is not None:
        _check_int(kind, "seed", seed, low=0)


def _check_choice(kind: str, name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{kind}: {name} must be one of {', '.join(map(repr, choices))}, "
                         f"got {value!r}{_nearest(value, choices)}")


def _check_dataset(kind: str, dataset) -> None:
    if not isinstance(dataset, Dataset):
        raise TypeError(f"{kind} splits a recexp Dataset, got {type(dataset).__name__}")
    if dataset.n_interactions < 2:
        raise ValueError(f"{kind}: need at least 2 interactions to split, "
                         f"got {dataset.n_interactions}")


def _need_timestamps(kind: str, dataset: Dataset) -> np.ndarray:
    if dataset.timestamp is None:
        raise ValueError(f"{kind} needs timestamps and this Dataset has no "
                         f"{Columns.Datetime!r} column")
    missing = np.isnat(dataset.timestamp)
    if missing.any():
        raise ValueError(f"{kind} needs a timestamp on every interaction; {int(missing.sum())} "
                         "are missing (NaT): drop or fill them first")
    return dataset.timestamp


def _round(x):
    # Round half up, not numpy's half-to-even, so 2.5 interactions -> 3 as people expect.
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


# ------------------------------------------------------------------- vectorised kernels
# Orders come from sorting int64 *values* with the row number packed into the low bits, not
# from argsort or permutation: on 10M rows a value sort is several times faster (argsort's
# scattered reads dominate), and unique keys make the result the same for any sort algorithm.
def _row_bits(n: int) -> int:
    return max(1, int(n - 1).bit_length())


def _sort_rows(keys: np.ndarray) -> np.ndarray:
    """Rows (int64) in ascending order of ``keys`` (non-negative ints), ties by row."""
    n = len(keys)
    bits = _row_bits(n)
    keys = keys.astype(np.int64, copy=False)
    if n and int(keys.max()) >= 1 << (63 - bits):
        return np.argsort(keys, kind="stable").astype(np.int64)
    packed = (keys << bits) | np.arange(n, dtype=np.int64)
    packed.sort()
    return packed & ((1 << bits) - 1)


def _random_order(rng: np.random.Generator, n: int) -> np.ndarray:
    """A uniformly random order of ``n`` rows (int64), determined by ``rng``."""
    # Ties between the random keys (rare: 63 - log2(n) bits each) fall back to row order.
    return _sort_rows(rng.integers(0, 1 << (63 - _row_bits(n)), size=n, dtype=np.int64))


def _latest_first(timestamp: np.ndarray) -> np.ndarray:
    # Ascending order puts equal timestamps in row order; reversed, the later row of a tie
    # counts as the later interaction. Deterministic, needs no seed.
    seconds = timestamp.astype("datetime64[s]").astype(np.int64)
    return _sort_rows(seconds - seconds.min())[::-1]


def _rank_in_groups(groups: np.ndarray, n_groups: int,
                    order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank (0-based) of each row within its group when rows are visited in ``order``.

    Returns the ranks (int64, one per row) and the group sizes (int64 [n_groups]).
    """
    # Sorting by (group, position in ``order``) keeps ``order`` within each group.
    by_group = order[_sort_rows(groups[order])]
    sizes = np.bincount(groups, minlength=n_groups).astype(np.int64)
    starts = np.cumsum(sizes) - sizes
    rank = np.empty(len(groups), dtype=np.int64)
    rank[by_group] = np.arange(len(groups), dtype=np.int64) - np.repeat(starts, sizes)
    return rank, sizes


def _holdout(groups: np.ndarray, n_groups: int, order: np.ndarray, *, ratio: float | None,
             n: int | None, min_interactions: int) -> np.ndarray:
    """Test mask: the first rows of each group in ``order`` (``ratio`` or ``n`` of them).

    Groups with fewer than ``min_interactions`` rows hold nothing out. With ``ratio`` an
    eligible group holds out ``round(ratio * size)`` rows, at least 1 and at most size - 1;
    with ``n``, ``min(n, size)``.
    """
    rank, sizes = _rank_in_groups(groups, n_groups, order)
    if ratio is not None:
        count = np.clip(_round(ratio * sizes), 1, np.maximum(sizes - 1, 1))
    else:
        count = np.minimum(n, sizes)
    count = np.where(sizes >= min_interactions, count, 0)
    return rank < count[groups]


# ------------------------------------------------------------------------- Splitter
class Splitter:
    """Base of the splitter configs: frozen, keyword-only dataclasses with a ``kind``.

    ``split(dataset)`` gives one :class:`Split` (``fold=f`` picks a k-fold splitter's fold);
    ``splits(dataset)`` yields all of them, one for the single-split kinds. Seeds are plain
    ints; a ``None`` seed draws a fresh one, which the Split records, so any split can be
    made again. ``to_params()`` and :func:`make_splitter` convert to and from a flat dict.
    Subclasses implement ``_split(dataset, fold) -> Split``.
    """

    kind: ClassVar[str]

    @property
    def n_splits(self) -> int:
        """How many splits :meth:`splits` yields (k for k-fold, else 1)."""
        return 1

    def split(self, dataset: Dataset, *, fold: int = 0, source=None) -> Split:
        """Split ``dataset``; for k-fold splitters, fold ``fold`` (0-based).

        Parameters
        ----------
        dataset : Dataset
        fold : int
            Which fold, ``0 <= fold < n_splits``.
        source : SourceData, optional
            Only :class:`PredefinedSplitter` reads it (its split tables); others ignore it.
        """
        _check_dataset(self.kind, dataset)
        if isinstance(fold, bool) or not isinstance(fold, int | np.integer) or not (
                0 <= fold < self.n_splits):
            raise ValueError(f"{self.kind}: fold must be an integer in [0, {self.n_splits}), "
                             f"got {fold!r}")
        return self._split(dataset, int(fold))

    def splits(self, dataset: Dataset, *, source=None) -> Iterator[Split]:
        """Every split: the k folds of a k-fold splitter, else the one split.

        A ``None`` seed is drawn once here, so the folds of one call partition the data.
        """
        resolved = self._with_seed()
        for fold in range(self.n_splits):
            yield resolved.split(dataset, fold=fold, source=source)

    def _with_seed(self) -> Splitter:
        if getattr(self, "seed", 0) is None:
            return replace(self, seed=_fresh_seed())
        return self

    def _rng(self) -> tuple[int, np.random.Generator]:
        seed = self.seed if self.seed is not None else _fresh_seed()
        return seed, np.random.default_rng(seed)

    def _split(self, dataset: Dataset, fold: int) -> Split:  # pragma: no cover
        raise NotImplementedError

    def _make(self, dataset: Dataset, test: np.ndarray, *, seed: int | None,
              name: str | None = None) -> Split:
        """A Split of ``dataset`` from a test mask; train is the rest."""
        train = ~test
        n_train, n_test = int(train.sum()), int(test.sum())
        if n_test == 0 or n_train == 0:
            empty = "test" if n_test == 0 else "train"
            raise ValueError(f"{self.kind} split of {dataset!r} leaves {empty} empty "
                             f"with {self.to_params()}")
        return Split(dataset.subset(train), dataset.subset(test), name=name or self.kind,
                     seed=seed, check=False)

    # ------------------------------------------------------------- params
    def to_params(self) -> dict[str, object]:
        """``{"kind": ..., field: value, ...}`` of JSON types; :func:`make_splitter` inverts it."""
        return {"kind": self.kind, **{f.name: _plain(getattr(self, f.name)) for f in fields(self)}}

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> Splitter:
        """The splitter of a params dict (see :func:`make_splitter`).

        Called on a subclass, ``kind`` may be left out, and must match when given.
        """
        if cls is not Splitter:
            params = dict(params)
            kind = params.setdefault("kind", cls.kind)
            if kind != cls.kind:
                raise ValueError(f"{cls.__name__}.from_params got kind {kind!r}, "
                                 f"expected {cls.kind!r}")
        return make_splitter(params)


def _fresh_seed() -> int:
    # 32 bits: enough to tell runs apart, and short enough to read off a run's params.
    return secrets.randbits(32)


# ------------------------------------------------------------------- ratio splitters
@dataclass(frozen=True, kw_only=True)
class RandomSplitter(Splitter):
    """Hold out a random fraction of all interactions, regardless of user or item.

    Exactly ``round(ratio * n_interactions)`` interactions go to test. Users or items whose
    interactions all land in test are cold in this split (see :attr:`Split.segments`).
    """

    kind: ClassVar[str] = "random"

    ratio: float = 0.2
    """Fraction of the interactions held out for test, in (0, 1)."""
    seed: int | None = None
    """Seed of the numpy Generator; ``None`` draws one (recorded in :attr:`Split.seed`)."""

    def __post_init__(self) -> None:
        _check_ratio(self.kind, "ratio", self.ratio)
        _check_seed(self.kind, self.seed)

    def _split(self, dataset: Dataset, fold: int) -> Split:
        seed, rng = self._rng()
        n = dataset.n_interactions
        test = np.zeros(n, dtype=bool)
        test[rng.choice(n, size=int(_round(self.ratio * n)), replace=False)] = True
        return self._make(dataset, test, seed=seed)


@dataclass(frozen=True, kw_only=True)
class _StratifiedSplitter(Splitter):
    """Per-user or per-item ratio holdout; the subclass says which by ``_by``."""

    _by: ClassVar[str]

    ratio: float = 0.2
    """Fraction of each eligible group's interactions held out for test, in (0, 1)."""
    min_interactions: int = 2
    """Groups with fewer interactions stay all-train (>= 2, so both sides are non-empty)."""
    seed: int | None = None
    """Seed of the numpy Generator; ``None`` draws one (recorded in :attr:`Split.seed`)."""

    def __post_init__(self) -> None:
        _check_ratio(self.kind, "ratio", self.ratio)
        _check_int(self.kind, "min_interactions", self.min_interactions, low=2)
        _check_seed(self.kind, self.seed)

    def _split(self, dataset: Dataset, fold: int) -> Split:
        seed, rng = self._rng()
        groups, n_groups = ((dataset.user_idx, dataset.n_users) if self._by == "user"
                            else (dataset.item_idx, dataset.n_items))
        test = _holdout(groups, n_groups, _random_order(rng, dataset.n_interactions),
                        ratio=self.ratio, n=None, min_interactions=self.min_interactions)
        return self._make(dataset, test, seed=seed)


@dataclass(frozen=True, kw_only=True)
class UserRatioSplitter(_StratifiedSplitter):
    """Hold out a random fraction of each user's interactions (per-user stratified).

    A user with ``k >= min_interactions`` interactions puts ``round(ratio * k)`` of them in
    test, but at least 1 and at most ``k - 1``: every eligible user is on both sides. Users
    with fewer interactions stay entirely in train.

    Fields: ``ratio`` (fraction held out per user, in (0, 1); default 0.2),
    ``min_interactions`` (users with fewer stay all-train; >= 2, default 2), ``seed`` (int, or
    ``None`` to draw one, recorded in :attr:`Split.seed`).
    """

    kind: ClassVar[str] = "user_ratio"
    _by: ClassVar[str] = "user"


@dataclass(frozen=True, kw_only=True)
class ItemRatioSplitter(_StratifiedSplitter):
    """Hold out a random fraction of each item's interactions (per-item stratified).

    The mirror of :class:`UserRatioSplitter`: every item with ``k >= min_interactions``
    interactions puts ``round(ratio * k)`` (at least 1, at most ``k - 1``) in test; rarer
    items stay all-train. Fields as :class:`UserRatioSplitter`, per item.
    """

    kind: ClassVar[str] = "item_ratio"
    _by: ClassVar[str] = "item"


# ------------------------------------------------------------------ time splitters
@dataclass(frozen=True, kw_only=True)
class TemporalSplitter(Splitter):
    """One global cut in time: everything before it trains, everything from it on tests.

    Give ``date``, or ``ratio`` with ``by``. The test set is every interaction at or after
    the cut instant, so every train timestamp is earlier than every test timestamp; with a
    ``ratio`` of interactions, ties at the cut make the test set slightly larger than
    ``ratio``. Users and items first seen after the cut are cold (see :attr:`Split.segments`).
    """

    kind: ClassVar[str] = "temporal"

    date: str | None = None
    """Cut instant as an ISO date or datetime (``"1998-03-01"``), UTC like the timestamps."""
    ratio: float | None = None
    """Fraction in (0, 1) to put after the cut, measured as ``by`` says."""
    by: str = "interactions"
    """With ``ratio``: ``"interactions"`` (the latest ``ratio`` of interactions) or ``"time"``
    (the last ``ratio`` of the span from the first to the last timestamp)."""

    def __post_init__(self) -> None:
        if (self.date is None) == (self.ratio is None):
            raise ValueError(f"{self.kind}: give exactly one of date or ratio, got "
                             f"date={self.date!r}, ratio={self.ratio!r}")
        if self.date is not None:
            if isinstance(self.date, _dt.date | pd.Timestamp | np.datetime64):
                # YAML reads 1998-03-01 as a date: keep params JSON-typed.
                object.__setattr__(self, "date", pd.Timestamp(self.date).isoformat())
            if not isinstance(self.date, str):
                raise ValueError(f"{self.kind}: date must be an ISO date string, "
                                 f"got {self.date!r}")
            self._cut_of_date()
        else:
            _check_ratio(self.kind, "ratio", self.ratio)
        _check_choice(self.kind, "by", self.by, ("interactions", "time"))

    def _cut_of_date(self) -> np.datetime64:
        try:
            stamp = pd.Timestamp(self.date)
        except ValueError as err:
            raise ValueError(f"{self.kind}: date {self.date!r} is not a date: {err}") from None
        if stamp is pd.NaT:
            raise ValueError(f"{self.kind}: date {self.date!r} is not a date")
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return stamp.to_datetime64().astype("datetime64[s]")

    def _split(self, dataset: Dataset, fold: int) -> Split:
        ts = _need_timestamps(self.kind, dataset)
        if self.date is not None:
            cut = self._cut_of_date()
        elif self.by == "interactions":
            n = len(ts)
            n_test = int(np.clip(_round(self.ratio * n), 1, n - 1))
            # Partition the int64 seconds: numpy's datetime64 partition is many times slower.
            seconds = ts.astype("datetime64[s]").view(np.int64)
            cut = np.datetime64(int(np.partition(seconds, n - n_test)[n - n_test]), "s")
        else:
            first, last = ts.min(), ts.max()
            span = (last - first).astype(np.int64)
            cut = first + np.timedelta64(int(np.ceil((1 - self.ratio) * span)), "s")
        test = ts >= cut
        if test.all() or not test.any():
            raise ValueError(f"{self.kind}: cut at {cut} leaves {'train' if test.all() else 'test'}"
                             f" empty; timestamps run from {ts.min()} to {ts.max()}")
        return self._make(dataset, test, seed=None)


@dataclass(frozen=True, kw_only=True)
class _LeaveNSplitter(Splitter):
    """Hold out ``n`` interactions per user, in the order ``_order`` gives."""

    n: int = 1
    """Interactions held out per user (>= 1)."""
    min_interactions: int | None = None
    """Users with fewer interactions stay all-train; ``None`` means ``n + 1``."""

    def __post_init__(self) -> None:
        _check_int(self.kind, "n", self.n, low=1)
        if self.min_interactions is not None:
            _check_int(self.kind, "min_interactions", self.min_interactions, low=1)

    @property
    def _min(self) -> int:
        return self.n + 1 if self.min_interactions is None else self.min_interactions

    def _order(self, dataset: Dataset) -> tuple[int | None, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _split(self, dataset: Dataset, fold: int) -> Split:
        seed, order = self._order(dataset)
        test = _holdout(dataset.user_idx, dataset.n_users, order, ratio=None, n=self.n,
                        min_interactions=self._min)
        return self._make(dataset, test, seed=seed)


@dataclass(frozen=True, kw_only=True)
class LeaveLastNSplitter(_LeaveNSplitter):
    """Hold out each user's ``n`` latest interactions (by timestamp).

    Ties in time are broken by position in the Dataset: of two interactions at the same
    instant, the later row counts as later. Users with fewer than ``min_interactions``
    interactions stay all-train; by default that is ``n + 1``, so every test user keeps at
    least one training interaction. A lower ``min_interactions`` lets users with at most
    ``n`` interactions go entirely to test (cold users).

    Fields: ``n`` (held out per user, >= 1; default 1), ``min_interactions`` (>= 1, or
    ``None`` for ``n + 1``).
    """

    kind: ClassVar[str] = "leave_last_n"

    def _order(self, dataset: Dataset) -> tuple[int | None, np.ndarray]:
        return None, _latest_first(_need_timestamps(self.kind, dataset))


@dataclass(frozen=True, kw_only=True)
class LeaveRandomNSplitter(_LeaveNSplitter):
    """Hold out ``n`` random interactions of each user (no timestamps needed).

    Fields and eligibility as in :class:`LeaveLastNSplitter` (users with fewer than
    ``min_interactions``, default ``n + 1``, stay all-train), plus ``seed``.
    """

    kind: ClassVar[str] = "leave_random_n"

    seed: int | None = None
    """Seed of the numpy Generator; ``None`` draws one (recorded in :attr:`Split.seed`)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_seed(self.kind, self.seed)

    def _order(self, dataset: Dataset) -> tuple[int | None, np.ndarray]:
        seed, rng = self._rng()
        return seed, _random_order(rng, dataset.n_interactions)


# -------------------------------------------------------------------- k-fold splitters
@dataclass(frozen=True, kw_only=True)
class KFoldSplitter(Splitter):
    """K-fold cross-validation over interactions.

    The interactions are shuffled and dealt into ``k`` folds whose sizes differ by at most
    one; split ``f`` tests on fold ``f`` and trains on the others, so the k test sets
    partition the data.
    """

    kind: ClassVar[str] = "kfold"

    k: int = 5
    """Number of folds (>= 2)."""
    seed: int | None = None
    """Seed of the numpy Generator; ``None`` draws one per :meth:`splits` call."""

    def __post_init__(self) -> None:
        _check_int(self.kind, "k", self.k, low=2)
        _check_seed(self.kind, self.seed)

    @property
    def n_splits(self) -> int:
        return self.k

    def _split(self, dataset: Dataset, fold: int) -> Split:
        seed, rng = self._rng()
        n = dataset.n_interactions
        if n < self.k:
            raise ValueError(f"{self.kind}: {n} interactions cannot fill k={self.k} folds")
        fold_of = np.empty(n, dtype=np.int64)
        fold_of[_random_order(rng, n)] = np.arange(n) % self.k
        return self._make(dataset, fold_of == fold, seed=seed,
                          name=f"{self.kind}-fold{fold}")


@dataclass(frozen=True, kw_only=True)
class UserKFoldSplitter(Splitter):
    """K-fold cross-validation over users, as lenskit's ``crossfold_users``.

    Users with at least ``min_interactions`` interactions are shuffled and dealt into ``k``
    folds (sizes differ by at most one). Split ``f`` holds out part of each fold-``f`` user's
    interactions (``ratio`` of them, at least 1 and at most all but one; or ``n`` of them),
    chosen at random; every other interaction, of every other user, trains. The k test sets
    are disjoint and their users partition the eligible users; other users are always
    train-only.
    """

    kind: ClassVar[str] = "user_kfold"

    k: int = 5
    """Number of folds (>= 2)."""
    ratio: float | None = None
    """Fraction of a test user's interactions held out, in (0, 1); 0.2 when neither
    ``ratio`` nor ``n`` is given."""
    n: int | None = None
    """Number of a test user's interactions held out (>= 1), instead of ``ratio``."""
    min_interactions: int | None = None
    """Users with fewer interactions are never test users; ``None`` means 2 with ``ratio``
    and ``n + 1`` with ``n``."""
    seed: int | None = None
    """Seed of the numpy Generator; ``None`` draws one per :meth:`splits` call."""

    def __post_init__(self) -> None:
        _check_int(self.kind, "k", self.k, low=2)
        if self.ratio is not None and self.n is not None:
            raise ValueError(f"{self.kind}: give one of ratio or n, not both; got "
                             f"ratio={self.ratio!r}, n={self.n!r}")
        if self.ratio is None and self.n is None:
            # Filled in, not left implicit, so the logged params say what was used.
            object.__setattr__(self, "ratio", 0.2)
        if self.ratio is not None:
            _check_ratio(self.kind, "ratio", self.ratio)
        else:
            _check_int(self.kind, "n", self.n, low=1)
        if self.min_interactions is not None:
            _check_int(self.kind, "min_interactions", self.min_interactions,
                       low=2 if self.ratio is not None else 1)
        _check_seed(self.kind, self.seed)

    @property
    def n_splits(self) -> int:
        return self.k

    @property
    def _min(self) -> int:
        if self.min_interactions is not None:
            return self.min_interactions
        return 2 if self.ratio is not None else self.n + 1

    def _split(self, dataset: Dataset, fold: int) -> Split:
        seed, rng = self._rng()
        sizes = np.bincount(dataset.user_idx, minlength=dataset.n_users)
        eligible = np.flatnonzero(sizes >= self._min)
        if len(eligible) < self.k:
            raise ValueError(f"{self.kind}: only {len(eligible)} user(s) have at least "
                             f"{self._min} interactions, too few for k={self.k} folds")
        fold_of_user = np.full(dataset.n_users, -1, dtype=np.int64)
        fold_of_user[rng.permutation(eligible)] = np.arange(len(eligible)) % self.k
        held = _holdout(dataset.user_idx, dataset.n_users,
                        _random_order(rng, dataset.n_interactions), ratio=self.ratio, n=self.n,
                        min_interactions=self._min)
        test = held & (fold_of_user[dataset.user_idx] == fold)
        return self._make(dataset, test, seed=seed, name=f"{self.kind}-fold{fold}")


# ------------------------------------------------------------------ cold start
@dataclass(frozen=True, kw_only=True)
class ColdStartSplitter(Splitter):
    """Hold out whole users and/or items, plus a warm holdout, for cold-start evaluation.

    A random ``user_ratio`` of the users with interactions and ``item_ratio`` of the items
    with interactions become cold: all their interactions go to test, none to train, and
    their features stay available through the shared Dataset. Of the remaining
    interactions, each user with at least ``min_interactions`` of them holds out
    ``warm_ratio`` (as :class:`UserRatioSplitter`) so the warm segment has data too.

    The test segments then come out as: ``cold_user`` (cold user, warm item), ``cold_item``
    (warm user, cold item), ``cold_both`` and ``warm``. Segments are computed from what
    train holds, so an item that happens to lose every interaction to the warm holdout
    counts as cold as well: to the model it is.
    """

    kind: ClassVar[str] = "cold_start"

    user_ratio: float = 0.1
    """Fraction of users (with interactions) held out entirely, in [0, 1)."""
    item_ratio: float = 0.1
    """Fraction of items (with interactions) held out entirely, in [0, 1)."""
    warm_ratio: float = 0.2
    """Fraction of each remaining user's interactions held out as warm test, in [0, 1)."""
    min_interactions: int = 2
    """Remaining users with fewer interactions hold nothing out as warm test (>= 2)."""
    seed: int | None = None
    """Seed of the numpy Generator; ``None`` draws one (recorded in :attr:`Split.seed`)."""

    def __post_init__(self) -> None:
        for name in ("user_ratio", "item_ratio", "warm_ratio"):
            _check_ratio(self.kind, name, getattr(self, name), allow_zero=True)
        if self.user_ratio == 0 and self.item_ratio == 0:
            raise ValueError(f"{self.kind}: user_ratio and item_ratio are both 0, so nothing "
                             "is cold; use user_ratio for a random split")
        _check_int(self.kind, "min_interactions", self.min_interactions, low=2)
        _check_seed(self.kind, self.seed)

    def _split(self, dataset: Dataset, fold: int) -> Split:
        seed, rng = self._rng()
        cold_user = _pick(rng, dataset.user_idx, dataset.n_users, self.user_ratio)
        cold_item = _pick(rng, dataset.item_idx, dataset.n_items, self.item_ratio)
        cold = cold_user[dataset.user_idx] | cold_item[dataset.item_idx]
        test = cold.copy()
        if self.warm_ratio > 0:
            rest = np.flatnonzero(~cold)
            held = _holdout(dataset.user_idx[rest], dataset.n_users,
                            _random_order(rng, len(rest)), ratio=self.warm_ratio, n=None,
                            min_interactions=self.min_interactions)
            test[rest[held]] = True
        return self._make(dataset, test, seed=seed)


def _pick(rng: np.random.Generator, idx: np.ndarray, n: int, ratio: float) -> np.ndarray:
    """Mask [n] of a random ``ratio`` of the entities that occur in ``idx``.

    A positive ratio picks at least one and always leaves one unpicked.
    """
    picked = np.zeros(n, dtype=bool)
    if ratio == 0:
        return picked
    active = np.flatnonzero(np.bincount(idx, minlength=n))
    count = int(np.clip(_round(ratio * len(active)), 1, max(len(active) - 1, 1)))
    picked[rng.choice(active, size=count, replace=False)] = True
    return picked


# ---------------------------------------------------------------- predefined splits
@dataclass(frozen=True, kw_only=True)
class PredefinedSplitter(Splitter):
    """A split shipped with the data (ML-100K ``u1``..``u5``, ``ua``, ``ub``).

    Reads ``source.splits[name]``, a (train, test) pair of tables, and maps their
    (user, item) pairs onto the Dataset's interactions (:func:`split_from_tables`), so
    train and test are subsets of one Dataset. Call ``split(dataset, source=data)`` with the
    :class:`~recexp.datasets.SourceData` the Dataset was made from.
    """

    kind: ClassVar[str] = "predefined"

    name: str = "u1"
    """Key in ``SourceData.splits``."""
    missing: str = "raise"
    """A table pair not in the Dataset: ``"raise"``, or ``"drop"`` it (after filtering)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"{self.kind}: name must be a non-empty string, got {self.name!r}")
        _check_choice(self.kind, "missing", self.missing, ("raise", "drop"))

    def split(self, dataset: Dataset, *, fold: int = 0, source=None) -> Split:
        _check_dataset(self.kind, dataset)
        if fold != 0:
            raise ValueError(f"{self.kind}: there is one split, fold must be 0, got {fold!r}")
        if source is None:
            raise ValueError(f"{self.kind} split {self.name!r} reads its tables from the "
                             "SourceData: call split(dataset, source=data)")
        tables = source.splits if hasattr(source, "splits") else source
        if not isinstance(tables, Mapping):
            raise TypeError(f"{self.kind}: source must be SourceData or a mapping of name -> "
                            f"(train, test) tables, got {type(source).__name__}")
        if self.name not in tables:
            have = ", ".join(map(str, tables)) or "none"
            raise ValueError(f"{self.kind}: no split named {self.name!r}"
                             f"{_nearest(self.name, tables)} (the source has: {have})")
        train, test = tables[self.name]
        return split_from_tables(dataset, train, test, name=self.name, missing=self.missing)


def split_from_tables(dataset: Dataset, train: pd.DataFrame, test: pd.DataFrame, *,
                      valid: pd.DataFrame | None = None, name: str = "",
                      missing: str = "raise") -> Split:
    """A Split of ``dataset`` whose parts are the interactions listed in tables.

    Parameters
    ----------
    dataset : Dataset
        Holds every listed (user, item) pair exactly once.
    train, test, valid : DataFrame
        Tables with ``user_id`` and ``item_id`` columns in external ids; other columns are
        ignored (the Dataset's weights, ratings and timestamps are used).
    name : str
    missing : {"raise", "drop"}
        What to do with a listed pair the Dataset lacks: raise ``ValueError`` naming the
        table, row and ids, or leave it out (e.g. after k-core filtering).

    Interactions listed in no table belong to no part. A pair listed twice (in one table or
    in two) is an error.
    """
    _check_choice("split_from_tables", "missing", missing, ("raise", "drop"))
    keys = _keys(dataset)
    order = _sort_rows(keys)
    sorted_keys = keys[order]
    tables = [("train", train), ("test", test)] + ([("valid", valid)] if valid is not None
                                                   else [])
    rows = {}
    for what, table in tables:
        rows[what] = _rows_of_pairs(dataset, sorted_keys, order, table, what, missing)
    parts = {what: dataset.subset(np.sort(r)) for what, r in rows.items()}
    return Split(parts["train"], parts["test"], valid=parts.get("valid"), name=name)


def _rows_of_pairs(dataset: Dataset, sorted_keys: np.ndarray, order: np.ndarray,
                   table: pd.DataFrame, what: str, missing: str) -> np.ndarray:
    absent = [c for c in Columns.Interactions if c not in table.columns]
    if absent:
        raise ValueError(f"{what} table needs columns {list(Columns.Interactions)}; missing "
                         f"{absent}, has {list(table.columns)}")
    users = table[Columns.User].to_numpy()
    items = table[Columns.Item].to_numpy()
    u = dataset.users.to_internal(users, missing="ignore").astype(np.int64)
    i = dataset.items.to_internal(items, missing="ignore").astype(np.int64)
    keys = u * dataset.n_items + i
    pos = np.searchsorted(sorted_keys, keys)
    clipped = np.minimum(pos, len(sorted_keys) - 1)
    found = (u >= 0) & (i >= 0) & (sorted_keys[clipped] == keys)
    if not found.all():
        bad = np.flatnonzero(~found)
        if missing == "raise":
            row = bad[0]
            raise ValueError(
                f"{what} table: {bad.size} (user, item) pair(s) are not interactions of the "
                f"Dataset, e.g. row {_plain(table.index[row])!r}: user {_plain(users[row])!r}, "
                f"item {_plain(items[row])!r} (pass missing='drop' to leave them out)")
    rows = order[pos[found]]
    taken = np.bincount(rows, minlength=dataset.n_interactions)
    if (taken > 1).any():
        repeat = np.ones(len(rows), dtype=bool)
        repeat[np.unique(rows, return_index=True)[1]] = False
        row = np.flatnonzero(found)[np.flatnonzero(repeat)[0]]
        raise ValueError(f"{what} table lists {int((taken > 1).sum())} (user, item) pair(s) "
                         f"more than once, e.g. row {_plain(table.index[row])!r}: user "
                         f"{_plain(users[row])!r}, item {_plain(items[row])!r}")
    return rows


# --------------------------------------------------------------------- the registry
_KINDS: dict[str, type[Splitter]] = {
    cls.kind: cls for cls in (
        RandomSplitter, UserRatioSplitter, ItemRatioSplitter, TemporalSplitter,
        LeaveLastNSplitter, LeaveRandomNSplitter, KFoldSplitter, UserKFoldSplitter,
        PredefinedSplitter, ColdStartSplitter)
}


def splitter_kinds() -> Mapping[str, type[Splitter]]:
    """Every splitter by its ``kind`` (read-only)."""
    return MappingProxyType(_KINDS)


def make_splitter(params: Mapping[str, object]) -> Splitter:
    """A splitter from a flat dict, as the YAML layer reads it.

    Parameters
    ----------
    params : mapping
        ``{"kind": <name in splitter_kinds()>, <field>: <value>, ...}``; fields left out
        take their defaults. ``Splitter.to_params`` gives such a dict back.

    Raises
    ------
    ValueError
        Naming an unknown kind or field and the nearest valid one, or a bad value.

    >>> make_splitter({"kind": "leave_last_n", "n": 2})
    LeaveLastNSplitter(n=2, min_interactions=None)
    """
    if not isinstance(params, Mapping):
        raise ValueError(f"split params must be a mapping, got {type(params).__name__}")
    params = dict(params)
    kinds = ", ".join(_KINDS)
    if "kind" not in params:
        raise ValueError(f"split params need a 'kind', one of: {kinds}")
    kind = params.pop("kind")
    if kind not in _KINDS:
        raise ValueError(f"unknown split kind {kind!r}{_nearest(kind, _KINDS)}"
                         f"; known kinds: {kinds}")
    cls = _KINDS[kind]
    names = [f.name for f in fields(cls)]
    for key in params:
        if key not in names:
            raise ValueError(f"split kind {kind!r} has no field {key!r}{_nearest(key, names)}"
                             f"; its fields: {', '.join(names)}")
    return cls(**params)
