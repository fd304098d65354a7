"""Preprocessing of interactions tables: dedupe, rating -> implicit, k-core, time window, ids.

Every step takes an interactions table in the :class:`~recexp.columns.Columns` vocabulary
(``user_id``, ``item_id`` and any of ``rating``, ``weight``, ``timestamp``, ``label``), never
changes it, and returns ``(new_table, StepReport)``: the step, its parameters, and the rows,
users and items before and after, so a run can log exactly what preprocessing removed.

Filtering steps keep the surviving rows in their input order with their input index labels,
so a kept row can always be traced back to the raw table. All steps are vectorised (numpy and
pandas over whole columns); only :func:`pseudonymize` runs Python code, once per *distinct* id.

:class:`Pipeline` (and its shortcut :func:`preprocess`) runs steps from plain dicts, the shape
the YAML configs use:

>>> import pandas as pd
>>> from recexp.preprocess import preprocess
>>> ratings = pd.DataFrame({"user_id": [1, 1, 2, 2, 2, 3, 3],
...                         "item_id": [10, 11, 10, 11, 12, 10, 11],
...                         "rating": [5.0, 4.0, 4.0, 5.0, 5.0, 5.0, 2.0]})
>>> table, reports = preprocess(ratings, [
...     {"step": "to_implicit", "threshold": 4},
...     {"step": "k_core", "user_k": 2, "item_k": 2}])
>>> table[["user_id", "item_id", "weight"]]
   user_id  item_id  weight
0        1       10     1.0
1        1       11     1.0
2        2       10     1.0
3        2       11     1.0
>>> print(reports[1])
k_core(user_k=2, item_k=2): 6 -> 4 rows; removed 2 rows, 1 users, 1 items
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import inspect
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from recexp.columns import Columns

__all__ = [
    "DEFAULT_KEY_ENV",
    "PSEUDONYM_DIGITS",
    "STEPS",
    "Pipeline",
    "StepReport",
    "deduplicate",
    "drop_missing",
    "k_core",
    "preprocess",
    "pseudonymize",
    "pseudonymize_id",
    "pseudonymize_ids",
    "time_window",
    "to_implicit",
]

DEFAULT_KEY_ENV = "RECEXP_PSEUDONYM_KEY"
"""Environment variable that holds the pseudonymisation key when none is passed."""

PSEUDONYM_DIGITS = 16
"""Hex digits kept of each HMAC-SHA256 pseudonym by default: 64 bits (see :func:`pseudonymize`)."""


# ---------------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class StepReport:
    """What one preprocessing step did to a table.

    Users and items are counted as distinct non-missing ids, so ``users_removed`` is how many
    users no longer appear at all (a step that renames ids, like :func:`pseudonymize`, removes
    none).

    Attributes
    ----------
    step : str
        The step's name, e.g. ``"k_core"``.
    params : dict
        The parameters it ran with, as JSON types (never a secret key).
    rows_before, rows_after : int
    users_before, users_after : int
    items_before, items_after : int
    details : dict
        Step-specific counts as JSON types, e.g. ``{"iterations": 3}`` for :func:`k_core`.
    """

    step: str
    params: dict[str, Any]
    rows_before: int
    rows_after: int
    users_before: int
    users_after: int
    items_before: int
    items_after: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_removed(self) -> int:
        return self.rows_before - self.rows_after

    @property
    def users_removed(self) -> int:
        return self.users_before - self.users_after

    @property
    def items_removed(self) -> int:
        return self.items_before - self.items_after

    def to_dict(self) -> dict[str, Any]:
        """The report as one JSON-serialisable dict (for an MLflow artifact or a log line)."""
        return {
            "step": self.step, "params": dict(self.params),
            "rows_before": self.rows_before, "rows_after": self.rows_after,
            "rows_removed": self.rows_removed,
            "users_before": self.users_before, "users_after": self.users_after,
            "users_removed": self.users_removed,
            "items_before": self.items_before, "items_after": self.items_after,
            "items_removed": self.items_removed,
            "details": dict(self.details),
        }

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return (f"{self.step}({args}): {self.rows_before:,} -> {self.rows_after:,} rows; "
                f"removed {self.rows_removed:,} rows, {self.users_removed:,} users, "
                f"{self.items_removed:,} items")


# ---------------------------------------------------------------------------------- steps
def deduplicate(df: pd.DataFrame, *,
                keep: Literal["first", "last", "max", "sum"] = "last",
                ) -> tuple[pd.DataFrame, StepReport]:
    """Keep one row per (user, item) pair.

    Each repeated pair is reduced to one *representative* row of the input, and every column
    of the output row comes from that row, except ``weight`` with ``keep="sum"``:

    - ``"first"``: the earliest row of the pair: smallest ``timestamp`` when the table has
      that column, ties (and tables without it) broken by row order.
    - ``"last"`` (default, because a later rating is the user's current opinion): the latest
      row, by the same order.
    - ``"max"``: the row with the largest ``rating`` (``weight`` when there is no rating
      column; an error when there is neither); ties go to the latest row. A missing rating or
      weight counts as the smallest.
    - ``"sum"``: the latest row, with ``weight`` replaced by the sum of the pair's weights
      (float32); without a weight column, each row counts 1.0, so ``weight`` becomes the
      number of rows of the pair. A missing weight is an error here.

    A missing timestamp orders before every other. The output keeps the representative rows in
    input order with their input index labels.

    Parameters
    ----------
    df : DataFrame
        Interactions with ``user_id`` and ``item_id`` (no missing ids: see
        :func:`drop_missing`); optional ``timestamp`` (datetime64 or numeric), ``rating``,
        ``weight``.
    keep : {"first", "last", "max", "sum"}

    Returns
    -------
    DataFrame, StepReport
        The table with each pair once; ``details`` has ``repeated_pairs``, the number of pairs
        that had more than one row.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [7, 7, 7],
    ...                    "weight": [1.0, 2.0, 5.0]})
    >>> deduplicate(df, keep="sum")[0]
       user_id  item_id  weight
    1        1        7     3.0
    2        2        7     5.0
    """
    return _run("deduplicate", df, {"keep": keep})


def to_implicit(df: pd.DataFrame, *, threshold: float,
                weight: Literal["one", "rating"] = "one",
                drop_rating: bool = False) -> tuple[pd.DataFrame, StepReport]:
    """Turn explicit ratings into implicit positives: keep rows with ``rating >= threshold``.

    Rows with a missing rating are dropped too (they are not known to be positive).

    Parameters
    ----------
    df : DataFrame
        Interactions with a numeric ``rating`` column.
    threshold : float
        Smallest rating that counts as a positive (e.g. 4 on MovieLens' 1-5 scale).
    weight : {"one", "rating"}
        The ``weight`` of each kept row (float32): ``"one"`` gives 1.0 (plain implicit
        feedback); ``"rating"`` copies the rating, so stronger positives weigh more. An
        existing ``weight`` column is replaced.
    drop_rating : bool
        Drop the ``rating`` column from the output. By default it stays, so later analysis can
        still see the original rating.

    Returns
    -------
    DataFrame, StepReport
        The kept rows; ``details`` has ``below_threshold`` and ``missing_rating`` row counts.
    """
    return _run("to_implicit", df, {"threshold": threshold, "weight": weight,
                                    "drop_rating": drop_rating})


def k_core(df: pd.DataFrame, *, user_k: int, item_k: int) -> tuple[pd.DataFrame, StepReport]:
    """The largest part of the table in which every user has at least ``user_k`` rows and every
    item at least ``item_k`` rows.

    Removing a sparse item can push a user below ``user_k``, whose removal can push another
    item below ``item_k``, and so on, so rows are filtered in rounds until nothing changes (a
    fixed point). Each round counts every user and item at
    once with ``np.bincount`` and drops every row of a user or item below its threshold. The
    result is the unique maximal such table: no removed row could be put back without breaking
    a threshold. Rows are counted as they are, so deduplicate first to count distinct pairs.

    Parameters
    ----------
    df : DataFrame
        Interactions with ``user_id`` and ``item_id`` (no missing ids).
    user_k, item_k : int
        Minimum rows per user and per item, each >= 1.

    Returns
    -------
    DataFrame, StepReport
        The k-core, in input order; ``details["iterations"]`` is the number of rounds that
        removed rows (0 when the table already is a k-core).
    """
    return _run("k_core", df, {"user_k": user_k, "item_k": item_k})


def drop_missing(df: pd.DataFrame, *,
                 columns: Sequence[str] = Columns.Interactions,
                 ) -> tuple[pd.DataFrame, StepReport]:
    """Drop rows with a missing value (``None``, ``NaN``, ``NA``, ``NaT``) in ``columns``.

    An empty string is an id like any other and is kept.

    Parameters
    ----------
    df : DataFrame
    columns : sequence of str
        Columns that must be present in a row, by default ``user_id`` and ``item_id``.

    Returns
    -------
    DataFrame, StepReport
        ``details`` has ``missing_<column>``: rows missing each column (a row missing two
        columns counts in both).
    """
    return _run("drop_missing", df, {"columns": columns})


def time_window(df: pd.DataFrame, *, start: str | datetime | date | None = None,
                end: str | datetime | date | None = None) -> tuple[pd.DataFrame, StepReport]:
    """Keep rows with ``start <= timestamp < end``.

    The window is half-open so that consecutive windows tile time without overlap. Rows with
    a missing timestamp are dropped whenever a bound is given; with neither bound every row is
    kept.

    Parameters
    ----------
    df : DataFrame
        Interactions with a datetime64 ``timestamp`` column (timezone-aware or naive).
    start, end : str, datetime, date or None
        Anything ``pd.Timestamp`` reads, e.g. ``"1998-01-01"``; ``None`` for an open side. A
        bound has a timezone exactly when the column has one. Numbers are refused: their unit
        would be a guess.

    Returns
    -------
    DataFrame, StepReport
        ``details`` has ``before_start``, ``after_end`` and ``missing_timestamp`` row counts.
    """
    return _run("time_window", df, {"start": start, "end": end})


def pseudonymize(df: pd.DataFrame, *, key: str | bytes | None = None,
                 key_env: str = DEFAULT_KEY_ENV,
                 columns: str | Sequence[str] = (Columns.User,),
                 digits: int = PSEUDONYM_DIGITS) -> tuple[pd.DataFrame, StepReport]:
    """Replace ids with keyed hashes, so a table can be shared without its raw ids.

    Each id becomes the first ``digits`` hex digits of HMAC-SHA256(key, ``str(id)`` as UTF-8)
    (RFC 2104). Without the key the mapping can be neither reversed nor recomputed; with it,
    the serving layer maps a raw id to the same pseudonym with :func:`pseudonymize_id`. Ids
    are hashed by their string form, so ``42``, ``np.int64(42)`` and ``"42"`` agree while
    ``42.0`` does not. Missing ids stay missing. Each distinct id is hashed once and the
    result spread to its rows, so millions of rows cost only their distinct ids.

    Collision odds: ``digits`` hex digits are ``4 * digits`` bits, so among ``n`` distinct ids
    a collision has probability about ``n**2 / 2**(4 * digits + 1)``: with the default 16
    digits (64 bits), 3e-8 for a million ids and 3e-4 for 100 million. A collision would
    silently merge two users, so it is checked and raises (use more digits).

    Parameters
    ----------
    df : DataFrame
    key : str or bytes, optional
        The secret key (str is encoded as UTF-8). Prefer the environment: a key in code or
        in a config ends up in notebooks and logs.
    key_env : str
        Environment variable read when ``key`` is not given.
    columns : str or sequence of str
        Id columns to replace, by default ``user_id`` only.
    digits : int
        Hex digits kept, 8 to 64.

    Returns
    -------
    DataFrame, StepReport
        The table with each column in ``columns`` replaced by pseudonyms (``str`` dtype).
        The report names the key's source (``"argument"`` or the variable), never the key.

    Raises
    ------
    KeyError
        Neither ``key`` nor the environment variable ``key_env`` gives a key.
    """
    return _run("pseudonymize", df, {"key": key, "key_env": key_env, "columns": columns,
                                     "digits": digits})


def pseudonymize_ids(ids: Iterable, *, key: str | bytes | None = None,
                     key_env: str = DEFAULT_KEY_ENV,
                     digits: int = PSEUDONYM_DIGITS) -> np.ndarray:
    """Pseudonyms of many raw ids, exactly as :func:`pseudonymize` writes them.

    Parameters
    ----------
    ids : array-like of shape [n]
        Raw ids (int or str); none missing.
    key, key_env, digits
        As in :func:`pseudonymize`.

    Returns
    -------
    np.ndarray of object (str) of shape [n]
    """
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise TypeError(f"pseudonymize_ids takes a sequence of ids, got {type(ids).__name__}; "
                        "use pseudonymize_id for one id")
    digits = _digits(digits)
    raw_key, _ = _resolve_key(key, key_env)
    values = ids if isinstance(ids, (pd.Series, pd.Index, np.ndarray)) else list(ids)
    codes, uniques = pd.factorize(np.asarray(values, dtype=object) if isinstance(values, list)
                                  else values)
    if (codes < 0).any():
        raise ValueError(f"pseudonymize_ids: missing id at position "
                         f"{int(np.flatnonzero(codes < 0)[0])}")
    hashed = np.asarray(_hmac_hex(_id_strings(uniques), raw_key, digits), dtype=object)
    return hashed[codes]


def pseudonymize_id(raw_id: object, *, key: str | bytes | None = None,
                    key_env: str = DEFAULT_KEY_ENV, digits: int = PSEUDONYM_DIGITS) -> str:
    """The pseudonym of one raw id (for the serving layer), as :func:`pseudonymize` writes it.

    >>> pseudonymize_id(42, key="k") == pseudonymize_id("42", key="k")
    True
    """
    if raw_id is None or (np.ndim(raw_id) == 0 and pd.isna(raw_id)):
        raise ValueError("pseudonymize_id: the id is missing")
    if np.ndim(raw_id) != 0:
        raise TypeError(f"pseudonymize_id takes one id, got {type(raw_id).__name__}; "
                        "use pseudonymize_ids for many")
    digits = _digits(digits)
    raw_key, _ = _resolve_key(key, key_env)
    return _hmac_hex(_id_strings([raw_id]), raw_key, digits)[0]


# ---------------------------------------------------------------------------------- pipeline
class Pipeline:
    """Preprocessing steps from plain dicts, checked when built and run in order.

    Each step is ``{"step": <name>, <parameter>: <value>, ...}`` with a name from
    :data:`STEPS` and the keyword parameters of the function of that name. An unknown step or
    parameter, a missing required parameter or a bad value is an error that says which step,
    and suggests the nearest valid name, before any data is touched. A secret ``key`` is not
    accepted here: configs get logged, so :func:`pseudonymize` reads its key from the
    environment.

    Parameters
    ----------
    steps : sequence of mapping
        e.g. ``[{"step": "deduplicate", "keep": "last"},
        {"step": "k_core", "user_k": 5, "item_k": 5}]``.
    """

    def __init__(self, steps: Sequence[Mapping[str, Any]]) -> None:
        if isinstance(steps, (str, bytes, Mapping)) or not isinstance(steps, Sequence):
            raise TypeError("preprocess steps must be a list of mappings like "
                            f"{{'step': 'k_core', 'user_k': 5, 'item_k': 5}}, "
                            f"got {type(steps).__name__}")
        self._steps = tuple(_parse_step(i, s) for i, s in enumerate(steps))

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The checked steps with every parameter filled in, as JSON types."""
        return [{"step": name, **_report_params(name, params)} for name, params in self._steps]

    def __len__(self) -> int:
        return len(self._steps)

    def __repr__(self) -> str:
        return f"Pipeline({self.steps!r})"

    def run(self, df: pd.DataFrame) -> tuple[pd.DataFrame, list[StepReport]]:
        """Run every step in order on ``df`` (which stays unchanged).

        Returns
        -------
        DataFrame, list of StepReport
            The final table and one report per step; each report's ``rows_before`` is the
            previous one's ``rows_after``.
        """
        _check_frame(df, "preprocess")
        reports: list[StepReport] = []
        # Each step starts from the previous step's counts; the first may know its own.
        counts: tuple[int, int, int] | None = None
        out = df
        for i, (name, params) in enumerate(self._steps):
            out, report = _apply(name, out, params, before=counts,
                                 where=f"preprocess step {i} ({name})")
            counts = (report.rows_after, report.users_after, report.items_after)
            reports.append(report)
        if out is df:
            out = df.copy(deep=False)
        return out, reports


def preprocess(df: pd.DataFrame,
               steps: Sequence[Mapping[str, Any]]) -> tuple[pd.DataFrame, list[StepReport]]:
    """Run ``steps`` on ``df``: shortcut for ``Pipeline(steps).run(df)``."""
    return Pipeline(steps).run(df)


# ---------------------------------------------------------------------------------- internals
def _check_frame(df: object, step: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{step}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in Columns.Interactions if c not in df.columns]
    if missing:
        raise ValueError(f"{step}: the table needs columns {list(Columns.Interactions)}; "
                         f"missing {missing}, has {list(df.columns)}")


def _counts(df: pd.DataFrame) -> tuple[int, int, int]:
    return len(df), int(df[Columns.User].nunique()), int(df[Columns.Item].nunique())


def _label(df: pd.DataFrame, position: int) -> object:
    """The index label of a row, as a plain Python value so messages read ``11``, not
    ``np.int64(11)``."""
    label = df.index[int(position)]
    return label.item() if isinstance(label, np.generic) else label


def _codes(df: pd.DataFrame, column: str, step: str) -> tuple[np.ndarray, int]:
    """Dense int codes of an id column, refusing missing ids (they cannot form a pair)."""
    codes, uniques = pd.factorize(df[column], sort=False)
    if len(codes) and codes.min() < 0:
        row = _label(df, np.flatnonzero(codes < 0)[0])
        raise ValueError(f"{step}: missing {column} at row {row!r}; "
                         "remove such rows first with drop_missing")
    return codes.astype(np.int64, copy=False), len(uniques)


def _time_key(series: pd.Series, step: str) -> np.ndarray:
    """Sortable int64/float64 of a timestamp column; missing ones sort first."""
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
            series.dtype):
        # asi8 is UTC-based for aware columns and NaT is int64's minimum: earliest.
        return np.asarray(series.array.asi8)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
            series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(np.isnan(values), -np.inf, values)
    raise TypeError(f"{step}: column {Columns.Datetime!r} must hold datetimes or numbers to "
                    f"order rows by, has dtype {series.dtype}")


def _numeric(df: pd.DataFrame, column: str, step: str) -> np.ndarray:
    series = df[column]
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(
            series.dtype):
        raise TypeError(f"{step}: column {column!r} must be numeric, has dtype {series.dtype}")
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


@dataclass(frozen=True)
class _Outcome:
    """What a step's implementation returns; counts it already knows spare a recount."""

    table: pd.DataFrame
    details: dict[str, Any]
    before: tuple[int, int, int] | None = None
    after: tuple[int, int, int] | None = None


def _deduplicate(df: pd.DataFrame, *, keep: str) -> _Outcome:
    step = "deduplicate"
    n = len(df)
    users, n_users = _codes(df, Columns.User, step)
    items, n_items = _codes(df, Columns.Item, step)
    # Every pair keeps a row, so no user or item disappears: only the row count changes.
    before = (n, n_users, n_items)
    # Columns are checked before looking for repeats, so an error never depends on the data.
    # (values, "max" | "min") in order of precedence; row position is the final tie-break.
    criteria: list[tuple[np.ndarray, str]] = []
    if keep == "max":
        score_col = next((c for c in (Columns.Rating, Columns.Weight) if c in df.columns), None)
        if score_col is None:
            raise ValueError(f"{step}: keep='max' needs a {Columns.Rating!r} or "
                             f"{Columns.Weight!r} column; has {list(df.columns)}")
        score = _numeric(df, score_col, step)
        criteria.append((np.where(np.isnan(score), -np.inf, score), "max"))
    if Columns.Datetime in df.columns:
        criteria.append((_time_key(df[Columns.Datetime], step),
                         "min" if keep == "first" else "max"))
    weights = _weights_for_sum(df, step) if keep == "sum" else None

    pair = users * n_items + items
    # One unstable sort brings each pair's rows together; the ordering rules are then applied
    # per group with reduceat, which is cheaper than a multi-key stable sort.
    order = np.argsort(pair)
    sorted_pair = pair[order]
    starts = np.flatnonzero(np.diff(sorted_pair, prepend=-1))
    sizes = np.diff(np.append(starts, n))
    details = {"repeated_pairs": int((sizes > 1).sum())}
    after = (len(starts), n_users, n_items)
    if len(starts) == n:
        table = (df.copy(deep=False) if weights is None
                 else df.assign(**{Columns.Weight: weights.astype(np.float32)}))
        return _Outcome(table, details, before, after)

    candidate = np.ones(n, dtype=bool)
    for values, how in criteria:
        ranked = values[order]
        if how == "max":
            low = -np.inf if ranked.dtype.kind == "f" else np.iinfo(ranked.dtype).min
            best = np.maximum.reduceat(np.where(candidate, ranked, low), starts)
        else:
            high = np.inf if ranked.dtype.kind == "f" else np.iinfo(ranked.dtype).max
            best = np.minimum.reduceat(np.where(candidate, ranked, high), starts)
        candidate &= ranked == np.repeat(best, sizes)
    if keep == "first":
        chosen = np.minimum.reduceat(np.where(candidate, order, n), starts)
    else:
        chosen = np.maximum.reduceat(np.where(candidate, order, -1), starts)
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    out = df.loc[mask]
    if weights is not None:
        total = np.empty(n, dtype=np.float64)
        total[chosen] = np.add.reduceat(weights[order], starts)
        out = out.assign(**{Columns.Weight: total[mask].astype(np.float32)})
    return _Outcome(out, details, before, after)


def _weights_for_sum(df: pd.DataFrame, step: str) -> np.ndarray:
    if Columns.Weight not in df.columns:
        return np.ones(len(df), dtype=np.float64)
    weights = _numeric(df, Columns.Weight, step)
    if np.isnan(weights).any():
        row = _label(df, np.flatnonzero(np.isnan(weights))[0])
        raise ValueError(f"{step}: keep='sum' needs every weight, missing at row {row!r}")
    return weights


def _to_implicit(df: pd.DataFrame, *, threshold: float, weight: str,
                 drop_rating: bool) -> _Outcome:
    step = "to_implicit"
    if Columns.Rating not in df.columns:
        raise ValueError(f"{step}: needs a {Columns.Rating!r} column; has {list(df.columns)}")
    rating = _numeric(df, Columns.Rating, step)
    missing = np.isnan(rating)
    keep = rating >= threshold
    details = {"below_threshold": int((~keep & ~missing).sum()),
               "missing_rating": int(missing.sum())}
    out = df.loc[keep]
    new_weight = (np.ones(len(out), dtype=np.float32) if weight == "one"
                  else rating[keep].astype(np.float32))
    out = out.assign(**{Columns.Weight: new_weight})
    if drop_rating:
        out = out.drop(columns=[Columns.Rating])
    return _Outcome(out, details)


def _k_core(df: pd.DataFrame, *, user_k: int, item_k: int) -> _Outcome:
    step = "k_core"
    users, n_users = _codes(df, Columns.User, step)
    items, n_items = _codes(df, Columns.Item, step)
    before = (len(df), n_users, n_items)
    positions = np.arange(len(df))
    iterations = 0
    while len(positions):
        user_count = np.bincount(users, minlength=n_users)
        item_count = np.bincount(items, minlength=n_items)
        users_left = int(np.count_nonzero(user_count))
        items_left = int(np.count_nonzero(item_count))
        keep = (user_count[users] >= user_k) & (item_count[items] >= item_k)
        if keep.all():
            break
        iterations += 1
        # Compact every round: later rounds touch only the surviving rows.
        users, items, positions = users[keep], items[keep], positions[keep]
    else:
        users_left = items_left = 0
    outcome = {"details": {"iterations": iterations}, "before": before,
               "after": (len(positions), users_left, items_left)}
    if len(positions) == len(df):
        return _Outcome(df.copy(deep=False), **outcome)
    # A boolean mask selects rows faster than take() with positions.
    mask = np.zeros(len(df), dtype=bool)
    mask[positions] = True
    return _Outcome(df.loc[mask], **outcome)


def _drop_missing(df: pd.DataFrame, *,
                  columns: Sequence[str]) -> _Outcome:
    absent = [c for c in columns if c not in df.columns]
    if absent:
        raise ValueError(f"drop_missing: no column(s) {absent}; has {list(df.columns)}")
    missing = df[list(columns)].isna()
    details = {f"missing_{c}": int(missing[c].sum()) for c in columns}
    bad = missing.to_numpy().any(axis=1)
    return _Outcome(df.loc[~bad] if bad.any() else df.copy(deep=False), details)


def _time_window(df: pd.DataFrame, *, start: pd.Timestamp | None,
                 end: pd.Timestamp | None) -> _Outcome:
    step = "time_window"
    if Columns.Datetime not in df.columns:
        raise ValueError(f"{step}: needs a {Columns.Datetime!r} column; has {list(df.columns)}")
    ts = df[Columns.Datetime]
    aware = isinstance(ts.dtype, pd.DatetimeTZDtype)
    if not (aware or pd.api.types.is_datetime64_dtype(ts.dtype)):
        raise TypeError(f"{step}: column {Columns.Datetime!r} must be datetime64, has dtype "
                        f"{ts.dtype}; convert it with pd.to_datetime(..., unit='s')")
    for name, bound in (("start", start), ("end", end)):
        if bound is not None and (bound.tzinfo is not None) != aware:
            raise ValueError(
                f"{step}: {name}={bound.isoformat()!r} "
                f"{'has' if bound.tzinfo is not None else 'has no'} timezone but column "
                f"{Columns.Datetime!r} is {ts.dtype}; give both a timezone or neither")
    details = {"before_start": 0, "after_end": 0, "missing_timestamp": int(ts.isna().sum())}
    if start is None and end is None:
        details["missing_timestamp"] = 0
        return _Outcome(df.copy(deep=False), details)
    # pandas 3 hands out read-only arrays: combine masks into a fresh one, never in place.
    keep = ts.notna().to_numpy()
    if start is not None:
        early = (ts < start).to_numpy()
        details["before_start"] = int(early.sum())
        keep = keep & ~early
    if end is not None:
        late = (ts >= end).to_numpy()
        details["after_end"] = int(late.sum())
        keep = keep & ~late
    return _Outcome(df.loc[keep], details)


def _pseudonymize(df: pd.DataFrame, *, key: str | bytes | None, key_env: str,
                  columns: tuple[str, ...],
                  digits: int) -> _Outcome:
    step = "pseudonymize"
    absent = [c for c in columns if c not in df.columns]
    if absent:
        raise ValueError(f"{step}: no column(s) {absent}; has {list(df.columns)}")
    raw_key, source = _resolve_key(key, key_env)
    replaced = {}
    distinct = {}
    for column in columns:
        codes, uniques = pd.factorize(df[column], sort=False)
        hashed = pd.Index(_hmac_hex(_id_strings(uniques), raw_key, digits), dtype="str")
        if not hashed.is_unique:
            raise ValueError(
                f"{step}: two distinct ids of column {column!r} got the same {digits}-digit "
                "pseudonym (or two ids have the same string form); use more digits")
        if (codes < 0).any():
            # allow_fill turns the missing ids' code -1 back into missing (and costs more).
            values = hashed.take(codes, allow_fill=True, fill_value=np.nan)
        else:
            values = hashed.take(codes)
        replaced[column] = pd.Series(values, index=df.index, name=column)
        distinct[f"distinct_{column}"] = len(uniques)
    return _Outcome(df.assign(**replaced), {"key_source": source, **distinct})


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _hmac_hex(strings: Iterable[str], key: bytes, digits: int) -> list[str]:
    """Truncated hex HMAC-SHA256 of each string (the standard library's :mod:`hmac`).

    The key is set up once; each id copies that keyed state, which avoids re-deriving the
    pads per id while leaving the construction to the library.
    """
    keyed = hmac.new(key, digestmod=hashlib.sha256)
    out = []
    for text in strings:
        h = keyed.copy()
        h.update(text.encode("utf-8"))
        out.append(h.hexdigest()[:digits])
    return out


def _id_strings(uniques: Iterable) -> list[str]:
    # Iterating a pandas Index yields Python scalars, so np.int64(42) reads as "42".
    return [str(v.item() if isinstance(v, np.generic) else v) for v in uniques]


def _resolve_key(key: str | bytes | None, key_env: str) -> tuple[bytes, str]:
    """The key as bytes, and where it came from; messages never include the key."""
    if key is None:
        value = os.environ.get(key_env)
        if not value:
            state = "is empty" if value == "" else "is not set"
            raise KeyError(f"pseudonymize needs a secret key: the environment variable "
                           f"{key_env} {state}; set it (or pass key=...)")
        return value.encode("utf-8"), key_env
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, bytes):
        raise TypeError(f"pseudonymize: key must be str or bytes, got {type(key).__name__}")
    if not key:
        raise ValueError("pseudonymize: key is empty")
    return key, "argument"


# ---------------------------------------------------------------------------------- checking
class _ParamError(ValueError):
    pass


def _int_at_least(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _ParamError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"from {low} to {high}"
        raise _ParamError(f"{name} must be an integer {span}, got {value!r}")
    return int(value)


def _digits(value: object) -> int:
    try:
        return _int_at_least("digits", value, 8, 64)
    except _ParamError as err:
        raise ValueError(f"pseudonymize: {err}") from None


def _nearest(value: object, valid: Sequence[str]) -> str:
    near = difflib.get_close_matches(str(value), list(valid), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _choice(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise _ParamError(f"{name} must be one of {list(choices)}, got {value!r}"
                          f"{_nearest(value, choices)}")
    return str(value)


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise _ParamError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def _columns(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not value or not all(isinstance(c, str)
                                                               for c in value):
        raise _ParamError(f"{name} must be a column name or a non-empty list of them, "
                          f"got {value!r}")
    if len(set(value)) != len(value):
        raise _ParamError(f"{name} repeats a column: {list(value)!r}")
    return tuple(value)


def _timestamp(name: str, value: object) -> pd.Timestamp | None:
    if value is None:
        return None
    if isinstance(value, (bool, int, float, np.number)):
        raise _ParamError(f"{name} must be a date or datetime such as '1998-01-01', got "
                          f"the number {value!r} (its unit would be a guess)")
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise _ParamError(f"{name}: cannot read {value!r} as a date or datetime ({err})") from None
    if ts is pd.NaT:
        raise _ParamError(f"{name} is missing (NaT); use None for an open side")
    return ts


def _check_deduplicate(keep: object) -> dict[str, Any]:
    return {"keep": _choice("keep", keep, ("first", "last", "max", "sum"))}


def _check_to_implicit(threshold: object, weight: object,
                       drop_rating: object) -> dict[str, Any]:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) \
            or not math.isfinite(threshold):
        raise _ParamError(f"threshold must be a finite number, got {threshold!r}")
    return {"threshold": float(threshold), "weight": _choice("weight", weight, ("one", "rating")),
            "drop_rating": _bool("drop_rating", drop_rating)}


def _check_k_core(user_k: object, item_k: object) -> dict[str, Any]:
    return {"user_k": _int_at_least("user_k", user_k, 1),
            "item_k": _int_at_least("item_k", item_k, 1)}


def _check_drop_missing(columns: object) -> dict[str, Any]:
    return {"columns": _columns("columns", columns)}


def _check_time_window(start: object, end: object) -> dict[str, Any]:
    start_ts, end_ts = _timestamp("start", start), _timestamp("end", end)
    if start_ts is not None and end_ts is not None:
        if (start_ts.tzinfo is None) != (end_ts.tzinfo is None):
            raise _ParamError("start and end must both have a timezone or neither, got "
                              f"{start_ts.isoformat()!r} and {end_ts.isoformat()!r}")
        if start_ts >= end_ts:
            raise _ParamError(f"start must be before end, got start={start_ts.isoformat()!r}, "
                              f"end={end_ts.isoformat()!r}")
    return {"start": start_ts, "end": end_ts}


def _check_pseudonymize(key: object, key_env: object, columns: object,
                        digits: object) -> dict[str, Any]:
    if not isinstance(key_env, str) or not _ENV_NAME.fullmatch(key_env):
        # Never echo the value: a key pasted here by mistake must not reach logs.
        raise _ParamError("key_env must be the name of an environment variable (letters, "
                          "digits and '_'), not the key itself")
    if key is not None and not isinstance(key, (str, bytes)):
        raise _ParamError(f"key must be str or bytes, got {type(key).__name__}")
    return {"key": key, "key_env": key_env, "columns": _columns("columns", columns),
            "digits": _int_at_least("digits", digits, 8, 64)}


@dataclass(frozen=True)
class _Step:
    public: Callable[..., tuple[pd.DataFrame, StepReport]]
    impl: Callable[..., _Outcome]
    check: Callable[..., dict[str, Any]]
    renames_only: bool = False
    """Maps ids one-to-one and keeps every row, so the counts need no recounting (which, on
    millions of freshly made string ids, would cost more than the step itself)."""


_STEPS: dict[str, _Step] = {
    "deduplicate": _Step(deduplicate, _deduplicate, _check_deduplicate),
    "drop_missing": _Step(drop_missing, _drop_missing, _check_drop_missing),
    "k_core": _Step(k_core, _k_core, _check_k_core),
    "pseudonymize": _Step(pseudonymize, _pseudonymize, _check_pseudonymize,
                          renames_only=True),
    "time_window": _Step(time_window, _time_window, _check_time_window),
    "to_implicit": _Step(to_implicit, _to_implicit, _check_to_implicit),
}

STEPS: tuple[str, ...] = tuple(sorted(_STEPS))
"""Names of the steps a :class:`Pipeline` knows; each is the function of that name."""

_SECRET_PARAMS = frozenset({"key"})


def _signature(name: str) -> dict[str, inspect.Parameter]:
    params = inspect.signature(_STEPS[name].public).parameters
    return {p.name: p for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _checked(name: str, given: Mapping[str, Any], where: str) -> dict[str, Any]:
    signature = _signature(name)
    for param in given:
        if param not in signature:
            raise ValueError(f"{where}: unknown parameter {param!r}"
                             f"{_nearest(param, signature)}; parameters of {name}: "
                             f"{', '.join(signature)}")
    required = [p for p, spec in signature.items()
                if spec.default is inspect.Parameter.empty and p not in given]
    if required:
        raise ValueError(f"{where}: missing required parameter(s) {', '.join(required)}")
    merged = {p: given.get(p, spec.default) for p, spec in signature.items()}
    try:
        return _STEPS[name].check(**merged)
    except _ParamError as err:
        raise ValueError(f"{where}: {err}") from None


def _report_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        if k in _SECRET_PARAMS:
            continue
        if isinstance(v, pd.Timestamp):
            v = v.isoformat()
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


def _apply(name: str, df: pd.DataFrame, params: dict[str, Any], *,
           before: tuple[int, int, int] | None, where: str) -> tuple[pd.DataFrame, StepReport]:
    _check_frame(df, where)
    spec = _STEPS[name]
    outcome = spec.impl(df, **params)
    before = before or outcome.before or _counts(df)
    after = outcome.after or (before if spec.renames_only else _counts(outcome.table))
    return outcome.table, StepReport(
        step=name, params=_report_params(name, params), rows_before=before[0],
        rows_after=after[0], users_before=before[1], users_after=after[1],
        items_before=before[2], items_after=after[2], details=outcome.details)


def _run(name: str, df: pd.DataFrame,
         given: Mapping[str, Any]) -> tuple[pd.DataFrame, StepReport]:
    return _apply(name, df, _checked(name, given, name), before=None, where=name)


def _parse_step(index: int, spec: object) -> tuple[str, dict[str, Any]]:
    where = f"preprocess step {index}"
    if not isinstance(spec, Mapping):
        raise TypeError(f"{where}: expected a mapping like {{'step': 'k_core', 'user_k': 5, "
                        f"'item_k': 5}}, got {spec!r}")
    if "step" not in spec:
        raise ValueError(f"{where}: no 'step' key naming the step (one of {', '.join(STEPS)}); "
                         f"has keys {list(spec)}")
    name = spec["step"]
    if not isinstance(name, str) or name not in _STEPS:
        raise ValueError(f"{where}: unknown step {name!r}{_nearest(name, STEPS)}; known steps: "
                         f"{', '.join(STEPS)}")
    given = {k: v for k, v in spec.items() if k != "step"}
    if "key" in given:
        raise ValueError(f"{where} ({name}): a secret 'key' does not belong in a pipeline "
                         "(configs are logged); put it in the environment variable named by "
                         f"key_env (default {DEFAULT_KEY_ENV})")
    return name, _checked(name, given, f"{where} ({name})")
