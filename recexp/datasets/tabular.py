"""Any interaction table in CSV, TSV or Parquet, mapped onto the :class:`~recexp.columns.Columns`
vocabulary.

A table names its columns its own way (``customer``, ``sku``, ``stars``, ``ts``); ``columns``
maps the vocabulary onto them::

    load_table("orders.csv", columns={"user_id": "customer", "item_id": "sku",
                                      "rating": "stars", "timestamp": "ts"})

Delimited files go through the strict reader (:func:`~recexp.datasets._parse.read_delimited`):
a bad value is reported with file, line, column and value, or skipped and counted with
``on_bad_lines="skip"``. Parquet files are checked the same way, vectorised, and a bad value is
reported by row (1-based) since Parquet has no lines.

What each mapped column must hold:

=============  ========================================================================
``user_id``    non-empty; ``id_dtype="auto"`` makes ids int64 when every id is a plain
``item_id``    integer (no ``+``, no leading zero, at most 18 digits), else str
``rating``     a finite number (float32), inside ``rating_range`` if given
``weight``     a finite number (float32)
``label``      0 or 1 (int8)
``timestamp``  a whole number of ``timestamp_unit`` since 1970-01-01 UTC, or text in
               ``timestamp_format``; always ``datetime64[s]`` in UTC, without time zone
=============  ========================================================================

User and item attribute tables (one row per id) are read by :func:`read_attributes` with the
same mapping, and by :func:`load_table` through ``users=`` / ``items=``.
"""

from __future__ import annotations

import codecs
import csv
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recexp.columns import Columns
from recexp.datasets._base import SourceData
from recexp.datasets._parse import (
    BadInputError,
    BadLine,
    Field,
    OnBadLines,
    ParseReport,
    read_delimited,
)

__all__ = ["MAPPABLE", "load_table", "read_attributes", "read_table"]

IdDtype = Literal["auto", "int", "str"]
TimeUnit = Literal["s", "ms", "us", "ns"]

MAPPABLE: tuple[str, ...] = (Columns.User, Columns.Item, Columns.Rating, Columns.Weight,
                             Columns.Datetime, Columns.Label)
"""The vocabulary names ``columns`` may map, in output order."""

_PARQUET_MAGIC = b"PAR1"
_PLAIN_INT = r"-?(?:0|[1-9][0-9]{0,17})"


# ---------------------------------------------------------------------------- file layout
@dataclass(frozen=True)
class _Layout:
    path: Path
    parquet: bool
    delimiter: str = ","
    quoted: bool = True


def _layout(path: str | Path, sep: str | None, quoted: bool | None) -> _Layout:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq") or (magic == _PARQUET_MAGIC and sep is None):
        return _Layout(path, parquet=True)
    if suffix in (".gz", ".bz2", ".xz", ".zst", ".zip"):
        raise ValueError(f"{path}: compressed tables are not read directly; decompress it first "
                         "(the strict reader needs to point at lines of the file itself)")
    if sep is None:
        sep = {".csv": ",", ".tsv": "\t", ".tab": "\t"}.get(suffix)
        if sep is None:
            raise ValueError(f"{path}: cannot tell the delimiter from the suffix {suffix!r}; "
                             "pass sep=',' or sep='\\t' (Parquet files are recognised by "
                             "content)")
    if len(sep) != 1:
        raise ValueError(f"sep must be one character, got {sep!r}")
    return _Layout(path, parquet=False, delimiter=sep,
                   quoted=(sep == ",") if quoted is None else quoted)


def _read_header(layout: _Layout, encoding: str) -> tuple[str, ...]:
    """The first line's column names, checked for emptiness, encoding and repeats."""
    path = layout.path
    with open(path, "rb") as fh:
        first = fh.readline()
        rest = first + fh.read(1 << 16)
    if rest.startswith(codecs.BOM_UTF8):
        first, rest = first[3:], rest[3:]
    if not rest.strip():
        raise BadInputError(path, None, "the file is empty")
    first = first.rstrip(b"\n").rstrip(b"\r")
    if not first.strip():
        raise BadInputError(path, 1, "the first line should be the header, but it is empty")
    try:
        text = first.decode(encoding)
    except UnicodeDecodeError as exc:
        raise BadInputError(path, 1, f"bytes not valid {encoding}: {exc.reason}",
                            value=first.decode("latin-1")) from None
    # The same csv parsing _parse uses to compare a header, so the names always match it.
    names = tuple(next(csv.reader([text], delimiter=layout.delimiter)))
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise BadInputError(path, 1, "the header repeats a column name", value=name)
        seen.add(name)
    return names


# ---------------------------------------------------------------------------- column mapping
def _nearest(name: str, candidates: Sequence[str]) -> str:
    near = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.4)
    return f"; nearest: {near[0]!r}" if near else ""


def _mapping(columns: Mapping[str, str] | None, present: Sequence[str], path: Path,
             *, line: int | None, keep: Sequence[str] = (),
             required: Sequence[str] = Columns.Interactions,
             allowed: Sequence[str] = MAPPABLE) -> dict[str, str]:
    """Target name -> source column, checked against the file's columns, as are the further
    columns to ``keep``."""
    given = dict(columns or {})
    for target, source in given.items():
        if target not in allowed:
            near = difflib.get_close_matches(str(target), allowed, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"columns: {target!r} is not a name recexp maps{hint} "
                             f"(allowed: {', '.join(allowed)})")
        if not isinstance(source, str):
            raise TypeError(f"columns[{target!r}] must be a column name (str), got {source!r}")
    mapping: dict[str, str] = {}
    for target in allowed:
        if target in given:
            mapping[target] = given[target]
        elif target in present:
            mapping[target] = target  # the table already speaks the vocabulary
    for target in required:
        if target not in mapping:
            raise BadInputError(
                path, line, f"no column for {target!r}", value=target,
                hint=f"map one with columns={{{target!r}: ...}}{_nearest(target, present)}; "
                     f"columns present: {', '.join(present)}")
    for target, source in mapping.items():
        if source not in present:
            raise BadInputError(
                path, line, f"no column {source!r} (mapped to {target!r})", value=source,
                hint=f"columns present: {', '.join(present)}{_nearest(source, present)}")
    sources = list(mapping.values())
    for source in sources:
        if sources.count(source) > 1:
            both = [t for t, s in mapping.items() if s == source]
            raise ValueError(f"columns: {source!r} is mapped to more than one name: {both}")
    _check_keep(keep, present, mapping, path, line)
    return mapping


# ---------------------------------------------------------------------------- timestamps
@dataclass(frozen=True)
class _TimeText(Field):
    """A timestamp written as text in ``fmt`` (strptime directives, or ``"ISO8601"``).

    ``convert`` only checks; the column stays text until :func:`_parse_times` converts it all
    at once, so both paths of the reader give the same values.
    """

    fmt: str = "ISO8601"

    def convert(self, text: str) -> object:
        value = super().convert(text)
        if value is None:
            return None
        try:
            if self.fmt == "ISO8601":
                datetime.fromisoformat(str(value))
            else:
                datetime.strptime(str(value), self.fmt)
        except ValueError:
            raise ValueError(f"not a timestamp in the format {self.fmt!r}") from None
        return value


def _parse_times(values: pd.Series, fmt: str) -> pd.Series:
    """datetime64[s] (UTC, naive) of text timestamps; NaT where unparseable."""
    parsed = pd.to_datetime(values, format=fmt, utc=True, errors="coerce")
    return parsed.dt.tz_localize(None).astype("datetime64[s]")


def _epoch(values: pd.Series, unit: str) -> pd.Series:
    return pd.to_datetime(values.astype("int64"), unit=unit).astype("datetime64[s]")


# ---------------------------------------------------------------------------- ids
def _ids(values: pd.Series, id_dtype: IdDtype) -> pd.Series:
    if id_dtype == "str":
        return values.astype("str")
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.astype("int64")
    text = values.astype("str")
    if id_dtype == "auto" and len(text) and text.str.fullmatch(_PLAIN_INT).all():
        return text.astype("int64")
    return text


def _agree(a: pd.Series, b: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Ids of two tables as one type: str unless both are integers."""
    if pd.api.types.is_integer_dtype(a.dtype) and pd.api.types.is_integer_dtype(b.dtype):
        return a, b
    return a.astype("str"), b.astype("str")


# ---------------------------------------------------------------------------- delimited files
def _field(target: str | None, source: str, *, id_dtype: IdDtype,
           rating_range: tuple[float, float] | None, timestamp_unit: TimeUnit,
           timestamp_format: str | None) -> Field:
    if target in (Columns.User, Columns.Item):
        return Field(source, "int") if id_dtype == "int" else Field(source, "str")
    if target == Columns.Rating:
        low, high = rating_range if rating_range is not None else (None, None)
        return Field(source, "float", low=low, high=high)
    if target == Columns.Weight:
        return Field(source, "float")
    if target == Columns.Label:
        return Field(source, "int", dtype="int8", low=0, high=1)
    if target == Columns.Datetime:
        if timestamp_format is not None:
            return _TimeText(source, "str", fmt=timestamp_format)
        return Field(source, "epoch" if timestamp_unit == "s" else "int")
    return Field(source, "str", nullable=True)


def _read_delimited(layout: _Layout, fields: list[Field], header: tuple[str, ...] | None,
                    encoding: str, on_bad_lines: OnBadLines, *, time_source: str | None = None,
                    time_format: str | None = None) -> tuple[pd.DataFrame, ParseReport]:
    kwargs = {"delimiter": layout.delimiter, "header": header, "encoding": encoding,
              "quoted": layout.quoted, "on_bad_lines": on_bad_lines}
    try:
        frame, report = read_delimited(layout.path, fields, **kwargs)
        if time_source is not None and time_format is not None:
            col = frame[time_source]
            if (_parse_times(col, time_format).isna() & col.notna()).any():
                # The fast path cannot check text timestamps; the line reader can, and names
                # (or skips) the bad lines exactly.
                frame, report = read_delimited(layout.path, fields, fast=False, **kwargs)
    except BadInputError as exc:
        if time_source is not None and exc.field == time_source and time_format is None:
            raise BadInputError(exc.path, exc.line, exc.reason, field=exc.field,
                                value=exc.value,
                                hint="timestamps written as text need timestamp_format=, "
                                     "e.g. 'ISO8601' or '%Y-%m-%d %H:%M:%S'") from None
        raise
    return frame, report


# ---------------------------------------------------------------------------- Parquet
class _RowChecks:
    """Bad rows of a Parquet table: raise at the first, or drop them all and report."""

    def __init__(self, path: Path, n: int, on_bad_lines: OnBadLines) -> None:
        self.path = path
        self.bad = np.zeros(n, dtype=bool)
        self.on_bad_lines = on_bad_lines
        self.found: list[tuple[int, str, str, str]] = []

    def flag(self, mask: np.ndarray, reason: str, source: str, raw: pd.Series) -> None:
        mask = np.asarray(mask, dtype=bool) & ~self.bad
        if not mask.any():
            return
        rows = np.flatnonzero(mask)
        self.found += [(int(r), reason, source, _text(raw.iloc[r])) for r in rows]
        self.bad |= mask

    def finish(self, report: ParseReport) -> np.ndarray:
        """Rows to keep; raises on the first bad row with ``on_bad_lines="error"``."""
        if not self.found:
            return ~self.bad
        self.found.sort()
        if self.on_bad_lines == "error":
            row, reason, source, value = self.found[0]
            raise BadInputError(self.path, None, reason, field=source, value=value,
                                hint=f"row {row + 1}")
        for row, reason, source, value in self.found:
            report.add(BadLine(row + 1, reason, f"{source}={value!r}"))
        return ~self.bad


def _text(value: object) -> str:
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):  # array-like cell (a Parquet list column)
        pass
    return str(value)


def _numbers(raw: pd.Series, checks: _RowChecks, source: str) -> pd.Series:
    missing = raw.isna().to_numpy()
    checks.flag(missing, "missing value", source, raw)
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        values = raw.astype("float64")
    else:
        values = pd.to_numeric(raw.astype("str"), errors="coerce")
        checks.flag(values.isna().to_numpy() & ~missing, "not a number", source, raw)
    arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    checks.flag(~np.isfinite(arr) & ~np.isnan(arr), "not a finite number", source, raw)
    return pd.Series(arr, index=raw.index)


def _parquet_column(target: str, raw: pd.Series, checks: _RowChecks, source: str, *,
                    id_dtype: IdDtype, rating_range: tuple[float, float] | None,
                    timestamp_unit: TimeUnit, timestamp_format: str | None) -> pd.Series:
    if target in (Columns.User, Columns.Item):
        checks.flag(raw.isna().to_numpy(), "missing value", source, raw)
        if pd.api.types.is_float_dtype(raw.dtype):
            arr = raw.to_numpy(dtype=np.float64, na_value=np.nan)
            checks.flag(np.isfinite(arr) & (arr != np.floor(arr)), "not an integer id", source,
                        raw)
            raw = pd.Series(np.where(np.isfinite(arr), arr, 0).astype(np.int64),
                            index=raw.index)
        elif id_dtype == "int" and not pd.api.types.is_integer_dtype(raw.dtype):
            text = raw.astype("str")
            checks.flag(~text.str.fullmatch(r"-?[0-9]+").fillna(False).to_numpy()
                        & raw.notna().to_numpy(), "not an integer", source, raw)
        return raw
    if target in (Columns.Rating, Columns.Weight):
        values = _numbers(raw, checks, source)
        if target == Columns.Rating and rating_range is not None:
            low, high = rating_range
            checks.flag(values.to_numpy() < low, f"below the smallest allowed value {low:g}",
                        source, raw)
            checks.flag(values.to_numpy() > high, f"above the largest allowed value {high:g}",
                        source, raw)
        return values
    if target == Columns.Label:
        values = _numbers(raw, checks, source)
        arr = values.to_numpy()
        checks.flag(np.isfinite(arr) & (arr != 0) & (arr != 1), "not 0 or 1", source, raw)
        return values
    # timestamp
    checks.flag(raw.isna().to_numpy(), "missing value", source, raw)
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[s]")
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        return raw.astype("datetime64[s]")
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        # Integers with nulls arrive as float64 from Arrow; only whole numbers are epochs.
        arr = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        checks.flag(np.isfinite(arr) & (arr != np.floor(arr)) | np.isinf(arr),
                    f"not a whole number of {timestamp_unit}", source, raw)
        whole = np.where(np.isfinite(arr), arr, 0).astype(np.int64)
        return pd.Series(pd.to_datetime(whole, unit=timestamp_unit).astype("datetime64[s]"),
                         index=raw.index)
    fmt = timestamp_format or "ISO8601"
    parsed = _parse_times(raw.astype("str"), fmt)
    checks.flag(parsed.isna().to_numpy() & raw.notna().to_numpy(),
                f"not a timestamp in the format {fmt!r}", source, raw)
    return parsed


def _parquet_names(path: Path) -> tuple[str, ...]:
    try:
        return tuple(pq.read_schema(path).names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BadInputError(path, None, f"not a readable Parquet file: {exc}") from None


def _read_parquet(path: Path, columns: list[str]) -> pd.DataFrame:
    table = pq.read_table(path, columns=columns)
    data = {}
    for name in columns:
        col = table.column(name)
        if pa.types.is_date(col.type):
            col = col.cast(pa.timestamp("s"))
        data[name] = col.to_pandas()
    return pd.DataFrame(data)


def _read_parquet_checked(path: Path, mapping: Mapping[str, str], keep: Sequence[str],
                          on_bad_lines: OnBadLines, *, id_dtype: IdDtype,
                          rating_range: tuple[float, float] | None = None,
                          timestamp_unit: TimeUnit = "s", timestamp_format: str | None = None,
                          ) -> tuple[pd.DataFrame, ParseReport]:
    """The ``mapping`` columns checked and converted (named by target), then ``keep`` as
    stored; bad rows raise or are dropped and reported, as ``on_bad_lines`` says."""
    raw = _read_parquet(path, [*mapping.values(), *keep])
    report = ParseReport(str(path))
    checks = _RowChecks(path, len(raw), on_bad_lines)
    out = {t: _parquet_column(t, raw[s], checks, s, id_dtype=id_dtype, rating_range=rating_range,
                              timestamp_unit=timestamp_unit, timestamp_format=timestamp_format)
           for t, s in mapping.items()}
    good = checks.finish(report)
    frame = pd.DataFrame({**out, **{k: raw[k] for k in keep}})[good].reset_index(drop=True)
    return frame, report


# ---------------------------------------------------------------------------- public API
def read_table(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    keep: Sequence[str] = (),
    sep: str | None = None,
    header: bool = True,
    names: Sequence[str] | None = None,
    id_dtype: IdDtype = "auto",
    rating_range: tuple[float, float] | None = None,
    timestamp_unit: TimeUnit = "s",
    timestamp_format: str | None = None,
    encoding: str = "utf-8",
    quoted: bool | None = None,
    on_bad_lines: OnBadLines = "error",
) -> tuple[pd.DataFrame, ParseReport]:
    """Read one interactions table into the Columns vocabulary.

    Parameters
    ----------
    path : str or Path
        ``.csv`` (comma), ``.tsv``/``.tab`` (tab), ``.parquet``/``.pq`` or any Parquet file;
        other suffixes need ``sep``.
    columns : mapping of str to str, optional
        Vocabulary name (``user_id``, ``item_id``, ``rating``, ``weight``, ``timestamp``,
        ``label``) -> the table's column. Names the table already shares with the vocabulary
        are taken as they are; ``user_id`` and ``item_id`` are required.
    keep : sequence of str
        Further columns to carry over unchanged (as text for delimited files).
    sep : str, optional
        Field delimiter; inferred from the suffix when omitted.
    header : bool
        Whether the first line names the columns (delimited files only).
    names : sequence of str, optional
        Column names of a file without header, one per field.
    id_dtype : {"auto", "int", "str"}
        How to type ``user_id`` and ``item_id`` (see the module docstring).
    rating_range : (float, float), optional
        Inclusive bounds; a rating outside is a bad line.
    timestamp_unit : {"s", "ms", "us", "ns"}
        Unit of numeric timestamps.
    timestamp_format : str, optional
        ``strptime`` format (``"%Y-%m-%d %H:%M:%S"``) or ``"ISO8601"`` for timestamps written
        as text; with ``%z`` or an offset they are converted to UTC.
    encoding : str
    quoted : bool, optional
        Whether fields may be double-quoted; default: yes for commas, no for tabs.
    on_bad_lines : {"error", "skip"}
        Raise :class:`~recexp.datasets.BadInputError` naming file, line (Parquet: row), column
        and value; or skip bad lines (rows) and count them in the report.

    Returns
    -------
    frame : DataFrame
        The mapped columns in the order of :data:`MAPPABLE`, then ``keep``; rows in file order.
    report : ParseReport
        For Parquet, ``BadLine.line`` is the 1-based row.
    """
    layout = _layout(path, sep, quoted)
    options = {"id_dtype": id_dtype, "rating_range": rating_range,
               "timestamp_unit": timestamp_unit, "timestamp_format": timestamp_format}
    if id_dtype not in ("auto", "int", "str"):
        raise ValueError(f"id_dtype must be 'auto', 'int' or 'str', got {id_dtype!r}")
    if timestamp_unit not in ("s", "ms", "us", "ns"):
        raise ValueError(f"timestamp_unit must be 's', 'ms', 'us' or 'ns', got {timestamp_unit!r}")
    if on_bad_lines not in ("error", "skip"):
        raise ValueError(f"on_bad_lines must be 'error' or 'skip', got {on_bad_lines!r}")
    if layout.parquet:
        present, line = _parquet_names(layout.path), None
    elif header:
        if names is not None:
            raise ValueError("names= is for files without a header; pass header=False")
        present, line = _read_header(layout, encoding), 1
    else:
        if names is None:
            raise ValueError("a file without header needs names=[...], one per field")
        present, line = tuple(names), None
        if len(set(present)) != len(present):
            raise ValueError(f"names repeat a column name: {list(present)}")
    mapping = _mapping(columns, present, layout.path, line=line, keep=keep)

    if layout.parquet:
        frame, report = _read_parquet_checked(layout.path, mapping, keep, on_bad_lines,
                                              **options)
        frame = _finish(frame, id_dtype)
        report.rows = len(frame)
        if report.rows == 0:
            raise BadInputError(layout.path, None, "no valid rows", hint=report.summary())
        return frame, report

    target_of = {s: t for t, s in mapping.items()}
    fields = [_field(target_of.get(name), name, **options) for name in present]
    frame, report = _read_delimited(layout, fields, present if header else None, encoding,
                                    on_bad_lines, time_source=mapping.get(Columns.Datetime),
                                    time_format=timestamp_format)
    out: dict[str, pd.Series] = {}
    for target, source in mapping.items():
        col = frame[source]
        if target == Columns.Datetime:
            if timestamp_format is not None:
                col = _parse_times(col, timestamp_format)
                if col.isna().any():
                    row = int(np.flatnonzero(col.isna().to_numpy())[0])
                    raise BadInputError(layout.path, None,
                                        "timestamp the line reader accepted but pandas could "
                                        f"not parse in the format {timestamp_format!r}",
                                        field=source, value=str(frame[source].iloc[row]),
                                        hint=f"row {row + 1}")
            elif timestamp_unit != "s":
                col = _epoch(col, timestamp_unit)
        out[target] = col
    for name in keep:
        out[name] = frame[name]
    return _finish(pd.DataFrame(out), id_dtype), report


def _check_keep(keep: Sequence[str], present: Sequence[str], mapping: Mapping[str, str],
                path: Path, line: int | None) -> None:
    if isinstance(keep, str):
        raise TypeError(f"keep must be a sequence of column names, not the string {keep!r}")
    for name in keep:
        if name not in present:
            raise BadInputError(path, line, f"no column {name!r} (in keep=)", value=name,
                                hint=f"columns present: {', '.join(present)}"
                                     f"{_nearest(name, present)}")
        if name in mapping.values() or name in MAPPABLE:
            raise ValueError(f"keep: {name!r} is already a mapped column (or a vocabulary "
                             "name); list only other columns")


def _finish(frame: pd.DataFrame, id_dtype: IdDtype) -> pd.DataFrame:
    for col in (Columns.User, Columns.Item):
        frame[col] = _ids(frame[col], id_dtype)
    for col in (Columns.Rating, Columns.Weight):
        if col in frame.columns:
            frame[col] = frame[col].astype("float32")
    if Columns.Label in frame.columns:
        frame[Columns.Label] = frame[Columns.Label].astype("int8")
    if Columns.Datetime in frame.columns:
        frame[Columns.Datetime] = frame[Columns.Datetime].astype("datetime64[s]")
    return frame


def read_attributes(
    path: str | Path,
    *,
    key: str = Columns.Item,
    id_column: str | None = None,
    keep: Sequence[str] | None = None,
    sep: str | None = None,
    id_dtype: IdDtype = "auto",
    encoding: str = "utf-8",
    quoted: bool | None = None,
    on_bad_lines: OnBadLines = "error",
) -> tuple[pd.DataFrame, ParseReport]:
    """Read a user or item attribute table: one row per id, any further columns.

    Parameters
    ----------
    path : str or Path
        CSV, TSV or Parquet with a header (see :func:`read_table`).
    key : {"item_id", "user_id"}
        The vocabulary name of the id column in the result.
    id_column : str, optional
        The table's id column; defaults to ``key`` itself.
    keep : sequence of str, optional
        Columns to keep besides the id (default: all).
    sep, id_dtype, encoding, quoted, on_bad_lines
        As in :func:`read_table`.

    Returns
    -------
    frame : DataFrame
        ``key`` first, then the kept columns. A delimited column whose every non-empty value
        is a number becomes Int64 (plain integers) or float64; others stay str. Missing stays
        missing.
    report : ParseReport

    Raises
    ------
    BadInputError
        A missing id (with its line), or an id on more than one row, in either mode.
    """
    if key not in (Columns.User, Columns.Item):
        raise ValueError(f"key must be {Columns.User!r} or {Columns.Item!r}, got {key!r}")
    source = id_column or key
    layout = _layout(path, sep, quoted)
    if layout.parquet:
        present, line = _parquet_names(layout.path), None
    else:
        present, line = _read_header(layout, encoding), 1
    wanted = [c for c in (present if keep is None else keep) if c != source]
    _mapping({key: source}, present, layout.path, line=line, keep=wanted, required=(key,),
             allowed=(key,))
    if layout.parquet:
        frame, report = _read_parquet_checked(layout.path, {key: source}, wanted, on_bad_lines,
                                              id_dtype=id_dtype)
    else:
        fields = [Field(name, "str", nullable=True) for name in present]
        fields[present.index(source)] = Field(source, "int" if id_dtype == "int" else "str")
        raw, report = _read_delimited(layout, fields, present, encoding, on_bad_lines)
        frame = pd.concat([raw[source].rename(key)] + [_infer(raw[c]) for c in wanted], axis=1)
    frame[key] = _ids(frame[key], id_dtype)
    counts = frame[key].value_counts()
    if (counts > 1).any():
        dup = counts[counts > 1].index[0]
        raise BadInputError(layout.path, None,
                            f"id appears on {int(counts[dup])} rows; an attribute table has one "
                            "row per id", field=source, value=str(dup))
    report.rows = len(frame)
    return frame, report


def _infer(col: pd.Series) -> pd.Series:
    """Numbers as numbers when every non-missing value is one; otherwise the text."""
    present = col.notna()
    if not present.any():
        return col
    numbers = pd.to_numeric(col.where(present), errors="coerce")
    if numbers[present].isna().any():
        return col
    if col[present].str.fullmatch(_PLAIN_INT).all():
        return col.where(present).astype("Int64")
    return numbers.astype("float64")


def load_table(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    users: str | Path | None = None,
    items: str | Path | None = None,
    keep: Sequence[str] = (),
    sep: str | None = None,
    header: bool = True,
    names: Sequence[str] | None = None,
    id_dtype: IdDtype = "auto",
    rating_range: tuple[float, float] | None = None,
    timestamp_unit: TimeUnit = "s",
    timestamp_format: str | None = None,
    encoding: str = "utf-8",
    quoted: bool | None = None,
    on_bad_lines: OnBadLines = "error",
    name: str | None = None,
) -> SourceData:
    """Read an interactions table, and optionally user and item attribute tables.

    Parameters
    ----------
    path : str or Path
        The interactions (see :func:`read_table` for the layout and every other option).
    columns : mapping of str to str, optional
        Vocabulary name -> the table's column, e.g. ``{"user_id": "customer", "item_id":
        "sku", "rating": "stars", "timestamp": "ts"}``.
    users, items : str or Path, optional
        Attribute tables (:func:`read_attributes`); their id column has the same name as the
        one ``columns`` maps to ``user_id`` / ``item_id`` in the interactions. Their ids are
        given the interactions' id type (str if either is text).
    name : str, optional
        ``SourceData.name``; the file's stem by default.

    Returns
    -------
    SourceData
        ``interactions`` as from :func:`read_table`, ``users`` / ``items`` when given, one
        report per file.

    Examples
    --------
    >>> data = load_table("ratings.csv", columns={"item_id": "book_id"})   # doctest: +SKIP
    >>> list(data.interactions.columns)                                     # doctest: +SKIP
    ['user_id', 'item_id', 'rating']
    """
    shared = {"sep": sep, "encoding": encoding, "quoted": quoted, "on_bad_lines": on_bad_lines,
              "id_dtype": id_dtype}
    interactions, report = read_table(
        path, columns=columns, keep=keep, header=header, names=names, rating_range=rating_range,
        timestamp_unit=timestamp_unit, timestamp_format=timestamp_format, **shared)
    reports = [report]
    tables: dict[str, pd.DataFrame | None] = {Columns.User: None, Columns.Item: None}
    for key, table_path in ((Columns.User, users), (Columns.Item, items)):
        if table_path is None:
            continue
        source = (columns or {}).get(key, key)
        table, rep = read_attributes(table_path, key=key, id_column=source, **shared)
        interactions[key], table[key] = _agree(interactions[key], table[key])
        tables[key] = table
        reports.append(rep)
    return SourceData(name=name or Path(path).stem, interactions=interactions,
                      users=tables[Columns.User], items=tables[Columns.Item],
                      reports=tuple(reports))
