"""Criteo Display Advertising Challenge (Kaggle, 2014): labeled impression logs.

Each row is one ad shown: ``label`` (1 clicked, 0 not), thirteen integer features ``I1``..``I13``
(mostly counts; ``I2`` can be negative) and twenty-six categorical features ``C1``..``C26``,
each a 32-bit hash written as 8 lowercase hex digits. An empty field is a missing value. The
meaning of the features is undisclosed.

Two file layouts are read:

``"tsv"``
    The raw Kaggle ``train.txt``: tab-separated, 40 fields, no header.
``"csv"``
    The headered sample many CTR libraries ship (``label,I1,...,I13,C1,...,C26``), where pandas
    wrote the integers as floats (``260.0``). A float is accepted only when it is integral.

Three levels of API:

- :func:`read_criteo` / :func:`iter_criteo`: the typed raw table (``label`` int8, ``I*`` Int64,
  ``C*`` str; missing stays missing), whole or in chunks of bounded memory.
- :func:`hash_rows`: one float32 CSR row of hashed features per impression, for click
  prediction. :func:`token_names` gives readable names of the same tokens.
- :func:`load_criteo`: everything at once, chunk by chunk, as :class:`CriteoData`: the
  interactions (``user_id, item_id, label`` in file order), the per-row hashed matrix for CTR
  models, and long user/item feature tables for ranking models (``Dataset.from_frames``).
  :func:`stream_criteo` gives the same per chunk, to train on files larger than memory.

Features are *tokens*, one per field and row, as in the challenge's winning solution (team
"3 Idiots", whose integer transform ``floor(ln(v)**2)`` this follows): a categorical field
gives ``C5=0b153874``; an integer ``v`` gives ``I3=bin<b>`` with ``b = floor(ln(v)**2)`` when
``v > 2``, and ``I3=v`` otherwise (negatives included), where the transform would merge or
not apply; a missing value of either kind gives ``I3=NA``, because being missing is itself
informative.

>>> from recexp.datasets import load
>>> data = load("criteo-sample", user=("C1", "C2"), item=("C3",))   # doctest: +SKIP
>>> data.row_features.shape                                         # doctest: +SKIP
(200, 1048576)
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from tqdm.auto import tqdm

from recexp.columns import Columns
from recexp.dataset import Dataset
from recexp.datasets._base import DatasetInfo, SourceData, register
from recexp.datasets._fetch import Source
from recexp.datasets._parse import (
    BadInputError,
    Field,
    OnBadLines,
    ParseReport,
    iter_delimited,
    read_delimited,
)

__all__ = [
    "CAT_FIELDS",
    "FIELDS",
    "INT_FIELDS",
    "CriteoData",
    "hash_rows",
    "iter_criteo",
    "load_criteo",
    "read_criteo",
    "stream_criteo",
    "token_names",
]

Format = Literal["tsv", "csv"]

INT_FIELDS: tuple[str, ...] = tuple(f"I{k}" for k in range(1, 14))
"""The integer features, in file order."""
CAT_FIELDS: tuple[str, ...] = tuple(f"C{k}" for k in range(1, 27))
"""The categorical features, in file order."""
FIELDS: tuple[str, ...] = INT_FIELDS + CAT_FIELDS
"""All 39 feature fields, in file order (the label comes first in the file)."""
HEADER: tuple[str, ...] = (Columns.Label, *FIELDS)
"""The header line of the ``"csv"`` layout."""

_HEX = "[0-9a-f]{8}"
_INTEGRAL = r"-?[0-9]+(\.0+)?"
_BLOCK = 64 << 20
_PROGRESS_BYTES = 256 << 20

# Token codes: one uint64 per (row, field). Codes of different fields never meet (each field
# has its own salt), so these ranges only need to be distinct within a field.
_MISSING = np.uint64(1 << 62)
_BIN_BASE = np.int64(1 << 32)
_HEX_LUT = np.full(256, 255, dtype=np.uint8)
_HEX_LUT[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10, dtype=np.uint8)
_HEX_LUT[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16, dtype=np.uint8)


@dataclass(frozen=True)
class _FloatWrittenInt(Field):
    """An integer the CSV layout writes as a float: ``260`` or ``260.0``, never ``2.5``."""

    def convert(self, text: str) -> object:
        try:
            return super().convert(text)
        except ValueError:
            try:
                float(text)
            except ValueError:
                raise ValueError("not a number") from None
            raise ValueError("not an integer (integers may be written 260 or 260.0)") from None


def _fields(fmt: Format) -> list[Field]:
    label = Field(Columns.Label, "int", dtype="int8", low=0, high=1)
    if fmt == "tsv":
        ints = [Field(name, "int", nullable=True) for name in INT_FIELDS]
    else:
        ints = [_FloatWrittenInt(name, "str", nullable=True, pattern=_INTEGRAL)
                for name in INT_FIELDS]
    cats = [Field(name, "str", nullable=True, pattern=_HEX) for name in CAT_FIELDS]
    return [label, *ints, *cats]


def _layout(fmt: str) -> dict[str, object]:
    if fmt == "tsv":
        return {"delimiter": "\t", "header": None}
    if fmt == "csv":
        return {"delimiter": ",", "header": HEADER}
    raise ValueError(f"unknown Criteo layout fmt={fmt!r}; use 'tsv' (Kaggle train.txt) or 'csv' "
                     "(headered sample)")


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """One schema for both layouts and every chunk: label int8, I* Int64, C* str."""
    out = {Columns.Label: frame[Columns.Label].astype("int8")}
    for name in INT_FIELDS:
        col = frame[name]
        if col.dtype == "str" or col.dtype == object:
            # Already checked against _INTEGRAL, so the float is integral and exact below 2**53.
            col = pd.to_numeric(col)
        out[name] = col.astype("Int64")
    for name in CAT_FIELDS:
        out[name] = frame[name].astype("str")
    return pd.DataFrame(out, index=frame.index)


def read_criteo(path: str | Path, *, fmt: Format = "tsv",
                on_bad_lines: OnBadLines = "error") -> tuple[pd.DataFrame, ParseReport]:
    """Read a whole Criteo file into memory.

    Parameters
    ----------
    path : str or Path
        A ``train.txt``-style file (``fmt="tsv"``) or the headered sample (``fmt="csv"``).
    fmt : {"tsv", "csv"}
        The layout (see the module docstring).
    on_bad_lines : {"error", "skip"}
        Raise :class:`~recexp.datasets.BadInputError` at the first bad line (naming file,
        line, field and value), or skip bad lines and count them in the report.

    Returns
    -------
    frame : DataFrame
        One row per impression in file order: ``label`` int8 (0/1), ``I1``..``I13`` Int64,
        ``C1``..``C26`` str (8 hex digits); a missing value is ``<NA>`` / ``NaN``.
    report : ParseReport
    """
    frame, report = read_delimited(path, _fields(fmt), on_bad_lines=on_bad_lines,
                                   **_layout(fmt))
    return _typed(frame), report


def iter_criteo(path: str | Path, *, fmt: Format = "tsv", on_bad_lines: OnBadLines = "error",
                block_size: int = _BLOCK, report: ParseReport | None = None,
                progress: bool | None = None) -> Iterator[pd.DataFrame]:
    """Stream a Criteo file larger than memory in chunks of about ``block_size`` bytes.

    Same rows, order and schema as :func:`read_criteo`, split over several frames; only one
    chunk is in memory at a time.

    Parameters
    ----------
    path : str or Path
    fmt : {"tsv", "csv"}
    on_bad_lines : {"error", "skip"}
    block_size : int
        Bytes of text per chunk (pyarrow's block size); it must exceed the longest line.
    report : ParseReport, optional
        Filled in as the chunks are read (rows kept, lines skipped).
    progress : bool, optional
        Show a tqdm bar of rows read; by default only for files over 256 MB.

    Yields
    ------
    DataFrame
        A chunk with the columns of :func:`read_criteo`.
    """
    path = Path(path)
    chunks = iter_delimited(path, _fields(fmt), on_bad_lines=on_bad_lines,
                            block_size=block_size, report=report, **_layout(fmt))
    if progress is None:
        progress = path.is_file() and path.stat().st_size >= _PROGRESS_BYTES
    with tqdm(total=_estimate_rows(path) if progress else None, unit="rows", unit_scale=True,
              desc=path.name, disable=not progress) as bar:
        for chunk in chunks:
            bar.update(len(chunk))
            yield _typed(chunk)


def _estimate_rows(path: Path) -> int | None:
    # Only for the progress bar's total: lines in the first MiB scaled to the file size.
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    lines = head.count(b"\n")
    return max(1, round(size * lines / len(head))) if lines else None


# ---------------------------------------------------------------------------- tokens and hashing
def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, vectorised: a fixed, platform-independent 64-bit mix."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _salt(seed: int, name: str) -> np.uint64:
    digest = hashlib.blake2b(f"recexp.criteo/{seed}/{name}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def _check_names(names: Sequence[str], allowed: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(names, str):
        raise TypeError(f"{what} must be a sequence of field names such as ('C1', 'C2'), "
                        f"not the string {names!r}")
    for name in names:
        if name not in allowed:
            near = difflib.get_close_matches(str(name).upper(), allowed, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"{what}: unknown field {name!r}{hint} (allowed: "
                             f"{allowed[0]}..{allowed[-1]})")
    return tuple(names)


def _hex_codes(values: pd.Series, name: str) -> np.ndarray:
    """uint64 [n]: each 8-hex-digit value as the 32-bit number it spells; missing -> _MISSING."""
    arr = pa.array(values, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):  # a concatenated frame keeps its Arrow chunks
        arr = arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    codes = np.full(len(arr), _MISSING, dtype=np.uint64)
    if len(arr) == 0:
        return codes
    missing = arr.is_null().to_numpy(zero_copy_only=False)
    # Read the characters straight from the Arrow buffers: one byte per hex digit.
    offsets_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], offsets_type)[arr.offset: arr.offset + len(arr) + 1]
    lengths = np.diff(offsets)
    wrong = (lengths != 8) & ~missing
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise ValueError(f"{name}: {arr[row].as_py()!r} at row {row} is not 8 hex digits")
    chars = np.frombuffer(arr.buffers()[2] or b"", np.uint8)
    if (lengths[missing] != 0).any():
        # Arrow allows null slots to hold bytes; gather the present values' bytes one by one.
        starts = offsets[:-1][~missing]
        chars = chars[(starts[:, None] + np.arange(8)).ravel()]
    else:
        chars = chars[offsets[0]: offsets[-1]]
    nibbles = _HEX_LUT[chars].reshape(-1, 8)
    if nibbles.max(initial=0) > 15:
        bad = (nibbles > 15).any(axis=1)
        row = int(np.flatnonzero(~missing)[np.flatnonzero(bad)[0]])
        raise ValueError(f"{name}: {arr[row].as_py()!r} at row {row} is not lowercase hex")
    # Two hex digits make a byte; four bytes, read big-endian, the 32-bit value.
    packed = np.ascontiguousarray((nibbles[:, 0::2] << 4) | nibbles[:, 1::2])
    codes[~missing] = packed.view(">u4").ravel()
    return codes


def _int_codes(values: pd.Series) -> np.ndarray:
    """uint64 [n]: ``v`` itself for ``v <= 2``, a log bin above, _MISSING when missing."""
    col = values.astype("Int64")
    missing = col.isna().to_numpy()
    v = col.to_numpy(dtype=np.int64, na_value=0)
    big = v > 2
    codes = v.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        bins = np.floor(np.log(v[big].astype(np.float64)) ** 2).astype(np.int64)
    codes[big] = _BIN_BASE + bins
    out = codes.view(np.uint64)
    out[missing] = _MISSING
    return out


def _codes(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name in INT_FIELDS:
        return _int_codes(frame[name])
    return _hex_codes(frame[name], name)


class _Codes:
    """Token codes of one chunk, computed once per field however many outputs use them."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._done: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._done:
            self._done[name] = _codes(self.frame, name)
        return self._done[name]


def _hash_codes(codes: _Codes | pd.DataFrame, fields: Sequence[str], n_hash: int,
                seed: int) -> sp.csr_matrix:
    if not isinstance(codes, _Codes):
        codes = _Codes(codes)
    n, k = len(codes.frame), len(fields)
    columns = np.empty((n, k), dtype=np.int64)
    for j, name in enumerate(fields):
        h = _splitmix64(codes[name] ^ _salt(seed, name))
        columns[:, j] = (h % np.uint64(n_hash)).astype(np.int64)
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    matrix = sp.csr_matrix((np.ones(n * k, np.float32), columns.ravel(), indptr),
                           shape=(n, n_hash), dtype=np.float32)
    matrix.sum_duplicates()  # two tokens of one row in one bucket add up, as in FeatureHasher
    return matrix


def hash_rows(frame: pd.DataFrame, *, fields: Sequence[str] = FIELDS, n_hash: int = 1 << 20,
              seed: int = 0) -> sp.csr_matrix:
    """The hashed feature vector of every row, for click-prediction models.

    Each of ``fields`` gives one token per row (see the module docstring: a missing value is a
    token too), hashed to one of ``n_hash`` columns with value 1.0. Tokens of one row that land
    in the same column add up. The hash is SplitMix64 of the token's 64-bit code salted per
    field and ``seed``: vectorised, and the same on every platform and run.

    Parameters
    ----------
    frame : DataFrame
        Columns as from :func:`read_criteo` or :func:`iter_criteo` (at least ``fields``).
    fields : sequence of str
        Which of ``I1``..``I13``, ``C1``..``C26`` to use.
    n_hash : int
        Number of hash buckets (columns).
    seed : int
        Changes every bucket; the same seed gives the same matrix.

    Returns
    -------
    scipy.sparse.csr_matrix of float32, shape [n_rows, n_hash]
        At most ``len(fields)`` non-zeros per row, summing to ``len(fields)``.
    """
    fields = _check_names(fields, FIELDS, "fields")
    if n_hash < 1:
        raise ValueError(f"n_hash must be a positive number of buckets, got {n_hash}")
    return _hash_codes(frame, fields, n_hash, seed)


def _token_name(name: str, code: int) -> str:
    if code == int(_MISSING):
        return f"{name}=NA"
    if name in CAT_FIELDS:
        return f"{name}={code:08x}"
    signed = int(np.uint64(code).view(np.int64)) if code >= 1 << 63 else code
    if signed >= int(_BIN_BASE):
        return f"{name}=bin{signed - int(_BIN_BASE)}"
    return f"{name}={signed}"


def _names_of_codes(name: str, codes: np.ndarray) -> np.ndarray:
    """object [n]: the readable token of each of field ``name``'s codes, each named once."""
    uniq, inverse = np.unique(codes, return_inverse=True)
    labels = np.asarray([_token_name(name, int(c)) for c in uniq], dtype=object)
    return labels[inverse.reshape(-1)]


def token_names(frame: pd.DataFrame, *, fields: Sequence[str] = FIELDS) -> pd.DataFrame:
    """The readable token of every row and field: ``C5=0b153874``, ``I3=bin7``, ``I1=NA``.

    These are the tokens :func:`hash_rows` hashes, and the feature names of the long tables of
    :func:`load_criteo`.

    Returns
    -------
    DataFrame of str, shape [n_rows, len(fields)]
    """
    fields = _check_names(fields, FIELDS, "fields")
    out = {}
    for name in fields:
        out[name] = pd.Series(_names_of_codes(name, _codes(frame, name)), index=frame.index,
                              dtype="str")
    return pd.DataFrame(out, index=frame.index)


# ---------------------------------------------------------------------------- keys and tables
def _keys(codes: _Codes, fields: tuple[str, ...], *, hash_ids: bool, seed: int) -> pd.Series:
    """The user or item id of every row from ``fields``; missing if any of them is missing."""
    frame = codes.frame
    missing = np.zeros(len(frame), dtype=bool)
    for name in fields:
        missing |= frame[name].isna().to_numpy()
    if hash_ids:
        h = np.full(len(frame), _salt(seed, "key/" + "+".join(fields)), dtype=np.uint64)
        for name in fields:
            h = _splitmix64(h ^ codes[name])
        values = pd.array(h.view(np.int64), dtype="Int64")
        values[missing] = pd.NA
        return pd.Series(values, index=frame.index)
    key = frame[fields[0]].astype("str")
    for name in fields[1:]:
        key = key + "|" + frame[name]  # a missing part makes the whole key missing
    return key


class _Aggregate:
    """Token counts per entity, accumulated chunk by chunk in memory bounded by the output.

    The result is a long table ``(id, feature, value)`` with ``value`` the share of the
    entity's impressions that carry the token (so each field's values sum to 1 per entity).
    """

    def __init__(self, key: str, fields: tuple[str, ...]) -> None:
        self.key = key
        self.fields = fields
        self._total: pd.DataFrame | None = None
        self._pending: list[pd.DataFrame] = []
        self._pending_rows = 0

    def add(self, ids: pd.Series, codes: _Codes) -> None:
        keep = ids.notna().to_numpy()
        if not keep.any():
            return
        kept = ids[keep].reset_index(drop=True)
        parts = [pd.DataFrame({"id": kept, "field": np.int16(j), "code": codes[name][keep]})
                 for j, name in enumerate(self.fields)]
        counts = (pd.concat(parts, ignore_index=True)
                  .groupby(["id", "field", "code"], sort=False).size().rename("n").reset_index())
        self._pending.append(counts)
        self._pending_rows += len(counts)
        if self._total is None or self._pending_rows > 2 * len(self._total):
            self._merge()

    def _merge(self) -> None:
        frames = ([] if self._total is None else [self._total]) + self._pending
        if frames:
            self._total = (pd.concat(frames, ignore_index=True)
                           .groupby(["id", "field", "code"], sort=False)["n"].sum().reset_index())
        self._pending, self._pending_rows = [], 0

    def table(self) -> pd.DataFrame | None:
        self._merge()
        if self._total is None:
            return None
        total = self._total
        # Every impression has exactly one token per field, so one field's counts sum to the
        # entity's impressions.
        first = total[total["field"] == 0]
        impressions = first.groupby("id", sort=False)["n"].sum()
        value = (total["n"].to_numpy(np.float64)
                 / impressions.reindex(total["id"]).to_numpy(np.float64)).astype(np.float32)
        names = np.empty(len(total), dtype=object)
        for j, name in enumerate(self.fields):
            rows = np.flatnonzero(total["field"].to_numpy() == j)
            names[rows] = _names_of_codes(name, total["code"].to_numpy()[rows])
        out = pd.DataFrame({self.key: total["id"].to_numpy(),
                            Columns.Feature: pd.array(names, dtype="str"),
                            Columns.Value: value})
        return out.sort_values([self.key, Columns.Feature], kind="stable", ignore_index=True)


@dataclass(frozen=True)
class CriteoData(SourceData):
    """Criteo impressions read by :func:`load_criteo`.

    Attributes
    ----------
    interactions : DataFrame
        One row per impression, in file order: ``user_id``, ``item_id`` (str, or Int64 with
        ``hash_ids=True``; missing when a key field is missing) and ``label`` (int8, 1 =
        clicked). Row ``i`` is row ``i`` of ``row_features``. (User, item) pairs repeat.
    row_features : scipy.sparse.csr_matrix of float32, shape [n_rows, n_hash], or None
        Hashed tokens of each impression (:func:`hash_rows`), for click-prediction models.
    user_features, item_features : DataFrame or None
        Long tables ``(user_id | item_id, feature, value)`` for
        :meth:`Dataset.from_frames <recexp.dataset.Dataset.from_frames>`: ``value`` (float32)
        is the share of the entity's impressions that carry the token ``feature``.
    """

    row_features: sp.csr_matrix | None = None
    user_features: pd.DataFrame | None = None
    item_features: pd.DataFrame | None = None

    def clicks(self) -> pd.DataFrame:
        """Clicked (user, item) pairs, one row each: ``user_id, item_id, weight`` (float32,
        the number of clicks). Impressions with a missing user or item are left out."""
        inter = self.interactions
        clicked = inter[(inter[Columns.Label] == 1)
                        & inter[Columns.User].notna() & inter[Columns.Item].notna()]
        counts = clicked.groupby([Columns.User, Columns.Item], sort=False).size()
        out = counts.rename(Columns.Weight).reset_index()
        out[Columns.Weight] = out[Columns.Weight].astype(np.float32)
        return out

    def to_dataset(self, **kwargs) -> Dataset:
        """A ranking :class:`~recexp.dataset.Dataset`: the :meth:`clicks` as interactions,
        with ``user_features`` and ``item_features``; users and items that were shown but
        never clicked are known (cold), with their features. Keyword arguments go to
        :meth:`Dataset.from_frames`."""
        kwargs.setdefault("user_features", self.user_features)
        kwargs.setdefault("item_features", self.item_features)
        return Dataset.from_frames(self.clicks(), **kwargs)


@dataclass(frozen=True)
class _Plan:
    """Checked options shared by :func:`stream_criteo` and :func:`load_criteo`."""

    paths: tuple[Path, ...]
    fmt: Format
    user: tuple[str, ...]
    item: tuple[str, ...]
    hash_ids: bool
    n_hash: int | None
    row_fields: tuple[str, ...]
    seed: int
    on_bad_lines: OnBadLines
    block_size: int
    progress: bool | None


def _plan(paths: str | Path | Sequence[str | Path], *, fmt: Format, user: Sequence[str],
          item: Sequence[str], hash_ids: bool, n_hash: int | None, row_fields: Sequence[str],
          seed: int, on_bad_lines: OnBadLines, block_size: int,
          progress: bool | None) -> _Plan:
    path_list = (Path(paths),) if isinstance(paths, str | Path) else tuple(map(Path, paths))
    if not path_list:
        raise ValueError("no Criteo file given")
    _layout(fmt)
    user = _check_names(user, CAT_FIELDS, "user")
    item = _check_names(item, CAT_FIELDS, "item")
    if not user or not item:
        raise ValueError("user and item each need at least one categorical field, e.g. "
                         "user=('C1', 'C2'), item=('C3',)")
    if n_hash is not None and n_hash < 1:
        raise ValueError(f"n_hash must be a positive number of buckets or None, got {n_hash}")
    return _Plan(path_list, fmt, user, item, hash_ids, n_hash,
                 _check_names(row_fields, FIELDS, "row_fields"), seed, on_bad_lines,
                 block_size, progress)


def _run(plan: _Plan, reports: list[ParseReport]) -> Iterator[tuple[CriteoData, _Codes]]:
    """One CriteoData per chunk, with the chunk's token codes; appends each file's report."""
    start = 0
    for path in plan.paths:
        report = ParseReport(str(path))
        reports.append(report)
        for chunk in iter_criteo(path, fmt=plan.fmt, on_bad_lines=plan.on_bad_lines,
                                 block_size=plan.block_size, report=report,
                                 progress=plan.progress):
            codes = _Codes(chunk)
            n = len(chunk)
            interactions = pd.DataFrame(
                {Columns.User: _keys(codes, plan.user, hash_ids=plan.hash_ids,
                                     seed=plan.seed).array,
                 Columns.Item: _keys(codes, plan.item, hash_ids=plan.hash_ids,
                                     seed=plan.seed).array,
                 Columns.Label: chunk[Columns.Label].to_numpy()},
                index=pd.RangeIndex(start, start + n))
            start += n
            matrix = (None if plan.n_hash is None
                      else _hash_codes(codes, plan.row_fields, plan.n_hash, plan.seed))
            yield (CriteoData(name=str(path), interactions=interactions, row_features=matrix,
                              reports=(report,)), codes)


def stream_criteo(
    paths: str | Path | Sequence[str | Path],
    *,
    fmt: Format = "tsv",
    user: Sequence[str] = ("C1", "C2"),
    item: Sequence[str] = ("C3",),
    hash_ids: bool = False,
    n_hash: int | None = 1 << 20,
    row_fields: Sequence[str] = FIELDS,
    seed: int = 0,
    on_bad_lines: OnBadLines = "error",
    block_size: int = _BLOCK,
    progress: bool | None = None,
) -> Iterator[CriteoData]:
    """:func:`load_criteo` one chunk at a time, for click-prediction training on files larger
    than memory (the whole Kaggle ``train.txt`` as CSR is about 14 GB).

    Options as in :func:`load_criteo`. Each chunk's ``interactions`` index holds the rows'
    positions in the whole input (0-based, across files), and ``row_features`` row ``i`` is
    ``interactions`` row ``i``; ``reports`` holds the report of the chunk's file so far.
    Concatenating the chunks gives exactly what :func:`load_criteo` returns.

    Yields
    ------
    CriteoData
        One chunk (without feature tables, which need all rows).
    """
    plan = _plan(paths, fmt=fmt, user=user, item=item, hash_ids=hash_ids, n_hash=n_hash,
                 row_fields=row_fields, seed=seed, on_bad_lines=on_bad_lines,
                 block_size=block_size, progress=progress)
    for data, _ in _run(plan, []):
        yield data


def load_criteo(
    paths: str | Path | Sequence[str | Path],
    *,
    fmt: Format = "tsv",
    user: Sequence[str] = ("C1", "C2"),
    item: Sequence[str] = ("C3",),
    hash_ids: bool = False,
    n_hash: int | None = 1 << 20,
    row_fields: Sequence[str] = FIELDS,
    user_fields: Sequence[str] = (),
    item_fields: Sequence[str] = (),
    seed: int = 0,
    on_bad_lines: OnBadLines = "error",
    block_size: int = _BLOCK,
    progress: bool | None = None,
    name: str = "criteo",
) -> CriteoData:
    """Read Criteo files chunk by chunk into interactions, a hashed matrix and feature tables.

    Only one chunk of raw text is in memory at a time. What is kept per impression is its two
    ids, its label and (with ``n_hash``) its hashed tokens, about 8 bytes per token in CSR:
    some 300 bytes a row with all 39 fields. For more rows than that allows, set
    ``n_hash=None`` here and train from :func:`stream_criteo`.

    Criteo does not say which fields describe the user or the ad: ``user`` and ``item`` are
    the caller's choice, and the defaults (``C1+C2`` and ``C3``) are placeholders for trying
    ranking code, not a finding about the data.

    Parameters
    ----------
    paths : str, Path or sequence of them
        One file or several read one after the other (rows keep file, then line, order).
    fmt : {"tsv", "csv"}
        The layout of every file (see the module docstring).
    user, item : sequence of str
        Categorical fields (``C1``..``C26``) whose values, joined by ``|``, form the user and
        the item id: ``user=("C1", "C2")`` gives ids like ``"05db9164|08d6d899"``. An id is
        missing when any of its fields is.
    hash_ids : bool
        Make ids Int64 hashes of those fields instead of strings (less memory on big files).
    n_hash : int or None
        Buckets of the per-row hashed matrix ``row_features``; ``None`` builds none.
    row_fields : sequence of str
        Fields hashed into ``row_features`` (all 39 by default).
    user_fields, item_fields : sequence of str
        Fields whose tokens become the long ``user_features`` / ``item_features`` tables
        (empty: no table). Aggregated chunk by chunk, in memory bounded by the tables.
    seed : int
        Salt of every hash (buckets and hashed ids).
    on_bad_lines : {"error", "skip"}
    block_size : int
        Bytes per chunk.
    progress : bool, optional
        A tqdm bar per file; by default only for files over 256 MB.
    name : str
        ``SourceData.name``.

    Returns
    -------
    CriteoData
    """
    plan = _plan(paths, fmt=fmt, user=user, item=item, hash_ids=hash_ids, n_hash=n_hash,
                 row_fields=row_fields, seed=seed, on_bad_lines=on_bad_lines,
                 block_size=block_size, progress=progress)
    user_fields = _check_names(user_fields, FIELDS, "user_fields")
    item_fields = _check_names(item_fields, FIELDS, "item_fields")
    users = _Aggregate(Columns.User, user_fields) if user_fields else None
    items = _Aggregate(Columns.Item, item_fields) if item_fields else None
    parts: list[pd.DataFrame] = []
    matrices: list[sp.csr_matrix] = []
    reports: list[ParseReport] = []
    for data, codes in _run(plan, reports):
        parts.append(data.interactions)
        if data.row_features is not None:
            matrices.append(data.row_features)
        if users is not None:
            users.add(data.interactions[Columns.User], codes)
        if items is not None:
            items.add(data.interactions[Columns.Item], codes)
    if not parts:
        raise BadInputError(plan.paths[0] if len(plan.paths) == 1 else ", ".join(
            map(str, plan.paths)), None, "no valid rows",
            hint="; ".join(r.summary() for r in reports))
    interactions = pd.concat(parts, ignore_index=True)
    row_features = None
    if plan.n_hash is not None:
        row_features = sp.csr_matrix(sp.vstack(matrices, format="csr"), dtype=np.float32)
    return CriteoData(
        name=name,
        interactions=interactions,
        reports=tuple(reports),
        row_features=row_features,
        user_features=None if users is None else users.table(),
        item_features=None if items is None else items.table(),
    )


# ---------------------------------------------------------------------------- registry
_SAMPLE_TSV = ("paddlerec_part-0.txt", "paddlerec_dnn_sample_train.txt")
_SAMPLE_CSV = "criteo_sample.txt"


def _load_sample(folder: Path, *, on_bad_lines: OnBadLines = "error", variant: str = "tsv",
                 **kwargs) -> CriteoData:
    """The shared samples: the two raw TSV files (200 rows) or the headered CSV (200 rows)."""
    if variant == "tsv":
        files, fmt = [folder / f for f in _SAMPLE_TSV], "tsv"
    elif variant == "csv":
        files, fmt = [folder / _SAMPLE_CSV], "csv"
    else:
        raise ValueError(f"unknown criteo-sample variant {variant!r}; use 'tsv' or 'csv'")
    kwargs.setdefault("name", "criteo-sample")
    return load_criteo(files, fmt=fmt, on_bad_lines=on_bad_lines, **kwargs)


def _load_dac(folder: Path, *, on_bad_lines: OnBadLines = "error", **kwargs) -> CriteoData:
    kwargs.setdefault("name", "criteo-dac")
    return load_criteo(folder / "train.txt", fmt="tsv", on_bad_lines=on_bad_lines, **kwargs)


register(DatasetInfo(
    name="criteo-sample",
    description="Criteo Display Advertising Challenge samples: two raw train.txt excerpts "
                "(PaddleRec, 100 rows each) and the headered CSV sample (DeepCTR, 200 rows). "
                "Test fixtures; variant='tsv' (default) or 'csv'.",
    source=Source(
        folder="criteo-sample",
        required=(*_SAMPLE_TSV, _SAMPLE_CSV),
        manual="These excerpts come from the PaddlePaddle/PaddleRec repository "
               "(tools/dataset/utils/part-0, models/rank/dnn/data/train/sample_train.txt) and "
               "shenweichen/DeepCTR (examples/criteo_sample.txt); Criteo's terms forbid "
               "redistribution, so recexp does not download them.",
    ),
    loader=_load_sample,
    task="ctr",
))

register(DatasetInfo(
    name="criteo-dac",
    description="Criteo Display Advertising Challenge (Kaggle 2014) train.txt: 45,840,617 "
                "labeled impressions over 7 days, 13 integer and 26 hashed categorical "
                "features; read in chunks.",
    source=Source(
        folder="criteo-dac",
        required=("train.txt",),
        # Kaggle no longer serves the files and Criteo publishes no checksum for its copy, so
        # there is nothing recexp could verify a download against.
        remote=None,
        manual="Get the Kaggle Display Advertising Challenge archive from Criteo AI Lab "
               "(https://ailab.criteo.com/ressources/, 'Criteo Display Advertising Challenge'"
               " dataset, about 4.3 GB as .tar.gz), accept its terms of use, extract it and "
               "put train.txt (about 11 GB) in the criteo-dac folder.",
    ),
    loader=_load_dac,
    task="ctr",
))

