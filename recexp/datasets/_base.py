"""What a loader returns, and the registry of named datasets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from recexp.columns import Columns
from recexp.dataset import Dataset
from recexp.datasets._fetch import Source
from recexp.datasets._parse import ParseReport

__all__ = ["DatasetInfo", "SourceData", "register", "registry"]


@dataclass(frozen=True)
class SourceData:
    """Tables read from one dataset's files, in the :class:`~recexp.columns.Columns` vocabulary.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"movielens-100k"``.
    interactions : DataFrame
        ``user_id, item_id`` and whatever the source has of ``rating``, ``weight``,
        ``timestamp``, ``label``.
    users, items : DataFrame or None
        One row per user / item: the id column and its attributes (age, genres, title, ...).
    splits : mapping of name -> (train, test)
        Ready-made splits shipped with the data (ML-100K ``u1``..``u5``, ``ua``, ``ub``).
    reports : tuple of ParseReport
        What reading each file kept and skipped.
    """

    name: str
    interactions: pd.DataFrame
    users: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    splits: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]] = field(default_factory=dict)
    reports: tuple[ParseReport, ...] = ()

    def to_dataset(self, **kwargs) -> Dataset:
        """A :class:`~recexp.dataset.Dataset` of the interactions, knowing every listed user
        and item (keyword arguments go to :meth:`Dataset.from_frames`)."""
        kwargs.setdefault("users", None if self.users is None else self.users[Columns.User])
        kwargs.setdefault("items", None if self.items is None else self.items[Columns.Item])
        return Dataset.from_frames(self.interactions, **kwargs)

    @property
    def skipped(self) -> int:
        """Bad lines skipped across all files (0 with ``on_bad_lines="error"``)."""
        return sum(r.skipped for r in self.reports)


@dataclass(frozen=True)
class DatasetInfo:
    """A named dataset: where its files come from and how to read them."""

    name: str
    description: str
    source: Source
    loader: Callable[..., SourceData]
    task: str = "ranking"


_REGISTRY: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> DatasetInfo:
    if info.name in _REGISTRY:
        raise ValueError(f"dataset {info.name!r} registered twice")
    _REGISTRY[info.name] = info
    return info


def registry() -> Mapping[str, DatasetInfo]:
    """All known datasets by name (read-only view)."""
    return dict(_REGISTRY)
