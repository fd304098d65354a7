"""Loaders for public recommender data, and the registry of named datasets.

>>> from recexp.datasets import load
>>> data = load("movielens-100k")           # doctest: +SKIP
>>> data.to_dataset()                       # doctest: +SKIP
Dataset(users=943, items=1,682, interactions=100,000)
"""

from __future__ import annotations

import difflib
from pathlib import Path

# Importing a loader module registers its datasets.
from recexp.datasets import criteo as _criteo  # noqa: F401
from recexp.datasets import movielens as _movielens  # noqa: F401
from recexp.datasets import netflix as _netflix  # noqa: F401
from recexp.datasets import tabular as _tabular  # noqa: F401
from recexp.datasets._base import DatasetInfo, SourceData, registry
from recexp.datasets._fetch import DataNotFoundError, locate
from recexp.datasets._parse import BadInputError, OnBadLines, ParseReport

__all__ = [
    "BadInputError",
    "DataNotFoundError",
    "DatasetInfo",
    "ParseReport",
    "SourceData",
    "fetch",
    "info",
    "load",
    "names",
]


def names() -> list[str]:
    """Names of every dataset recexp knows."""
    return sorted(registry())


def info(name: str) -> DatasetInfo:
    """The registry entry of ``name``; an unknown name's error suggests the nearest one."""
    known = registry()
    if name not in known:
        near = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise KeyError(f"unknown dataset {name!r}{hint} Known: {', '.join(sorted(known))}")
    return known[name]


def fetch(name: str, *, download: bool = True, progress: bool = True) -> Path:
    """The local folder with ``name``'s files (``$RECEXP_DATA_DIR``, cache, or download)."""
    return locate(info(name).source, download=download, progress=progress)


def load(name: str, *, path: str | Path | None = None, on_bad_lines: OnBadLines = "error",
         download: bool = True, **kwargs) -> SourceData:
    """Read a named dataset into tables.

    Parameters
    ----------
    name : str
        A name from :func:`names`, e.g. ``"movielens-100k"``.
    path : str or Path, optional
        Read from this folder instead of locating the files.
    on_bad_lines : {"error", "skip"}
        Raise at the first bad line (naming file, line, field and value) or skip bad lines and
        report them in ``SourceData.reports``.
    download : bool
        Whether a missing dataset may be downloaded from its publisher.
    **kwargs
        Passed to the dataset's loader.
    """
    entry = info(name)
    folder = Path(path) if path is not None else locate(entry.source, download=download)
    return entry.loader(folder, on_bad_lines=on_bad_lines, **kwargs)
