"""Strict, fast reading of delimited text files.

Every loader reads its files through :func:`read_delimited` (or :func:`iter_delimited` for files
larger than memory). The fast path is pyarrow's multithreaded CSV reader; when it, or any check
on what it produced, finds a problem, the same file is read again by a plain Python line reader
whose only job is to say exactly what is wrong: file, line number, field and value. The two
paths share one definition of every field (:class:`Field`), and the tests check that they agree.

``on_bad_lines="error"`` (the default) raises :class:`BadInputError` at the first bad line;
``"skip"`` drops bad lines and reports how many, with the first few, in a :class:`ParseReport`.
"""

from __future__ import annotations

import codecs
import csv
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

__all__ = [
    "BadInputError",
    "BadLine",
    "Field",
    "OnBadLines",
    "ParseReport",
    "iter_delimited",
    "read_delimited",
]

OnBadLines = Literal["error", "skip"]
Kind = Literal["int", "float", "str", "date", "epoch"]

_N_EXAMPLES = 5
_BLOCK = 16 << 20


class BadInputError(ValueError):
    """A data file that cannot be read as its format says.

    Attributes name where: ``path``, ``line`` (1-based, ``None`` for the whole file),
    ``field`` (``None`` for the whole line) and ``value`` (the raw text).
    """

    def __init__(
        self,
        path: str | Path,
        line: int | None,
        reason: str,
        *,
        field: str | None = None,
        value: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.value = value
        self.reason = reason
        self.hint = hint
        where = self.path if line is None else f"{self.path}, line {line}"
        what = f"field {field!r} = {_show(value)}: " if field is not None else ""
        if field is None and value is not None:
            what = f"{_show(value)}: "
        msg = f"{where}: {what}{reason}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


@dataclass(frozen=True)
class BadLine:
    """One line that ``on_bad_lines="skip"`` left out, and why."""

    line: int
    reason: str
    text: str


@dataclass
class ParseReport:
    """What reading one file kept and what it skipped."""

    path: str
    rows: int = 0
    skipped: int = 0
    examples: list[BadLine] = field(default_factory=list)

    def add(self, bad: BadLine) -> None:
        self.skipped += 1
        if len(self.examples) < _N_EXAMPLES:
            self.examples.append(bad)

    def summary(self) -> str:
        """One line for logs: rows kept, lines skipped and the first reasons."""
        text = f"{self.path}: {self.rows:,} rows"
        if self.skipped:
            first = "; ".join(f"line {b.line}: {b.reason}" for b in self.examples[:3])
            text += f", {self.skipped:,} bad lines skipped (first: {first})"
        return text


@dataclass(frozen=True)
class Field:
    """One column of a delimited file.

    Parameters
    ----------
    name : str
        Name of the output column (usually a :class:`~recexp.columns.Columns` name).
    kind : {"int", "float", "str", "date", "epoch"}
        ``int`` and ``float`` are decimal numbers (``int`` rejects ``3.5``); ``date`` is
        ``YYYY-MM-DD``; ``epoch`` is whole seconds since 1970-01-01 UTC. Both time kinds come
        out as ``datetime64[s]``.
    dtype : str, optional
        Output numpy dtype for numbers (default ``int64`` / ``float32``).
    nullable : bool
        Whether an empty field (or one of ``null_tokens``) is allowed; it becomes missing.
    low, high : float, optional
        Inclusive bounds for numbers; a value outside is a bad line, never a silent outlier.
    null_tokens : tuple of str
        Extra spellings of "missing" besides the empty field, e.g. ``("NULL",)``.
    pattern : str, optional
        For ``str`` fields: a regular expression every non-missing value must match in full,
        e.g. ``"[0-9a-f]{8}"``. Keep to the syntax Python's ``re`` and RE2 (pyarrow) share.
    """

    name: str
    kind: Kind
    dtype: str | None = None
    nullable: bool = False
    low: float | None = None
    high: float | None = None
    null_tokens: tuple[str, ...] = ()
    pattern: str | None = None

    def __post_init__(self) -> None:
        if self.pattern is not None and self.kind != "str":
            raise ValueError(f"field {self.name!r}: a pattern needs kind 'str', not {self.kind!r}")

    def arrow_type(self) -> pa.DataType:
        if self.kind == "int" or self.kind == "epoch":
            return pa.int64()
        if self.kind == "float":
            return pa.float64()
        if self.kind == "date":
            return pa.timestamp("s")
        return pa.string()

    def out_dtype(self) -> str:
        if self.dtype:
            return self.dtype
        return {"int": "int64", "float": "float32", "epoch": "datetime64[s]",
                "date": "datetime64[s]", "str": "str"}[self.kind]

    def convert(self, text: str) -> object:
        """Convert one raw field, or raise ``ValueError`` saying why it is not valid."""
        if text == "" or text in self.null_tokens:
            if self.nullable:
                return None
            raise ValueError("missing value")
        if self.kind == "str":
            if self.pattern is not None and re.fullmatch(self.pattern, text) is None:
                raise ValueError(f"does not match the pattern {self.pattern!r}")
            return text
        if text != text.strip(" \t"):
            # pyarrow would trim these blanks; a file of this format has none, so say so
            raise ValueError("blank space around a value")
        if self.kind == "date":
            try:
                return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError:
                raise ValueError("not a date of the form YYYY-MM-DD") from None
        if self.kind in ("int", "epoch"):
            try:
                value: float = int(text, 10)
            except ValueError:
                raise ValueError("not an integer") from None
        else:
            try:
                value = float(text)
            except ValueError:
                raise ValueError("not a number") from None
            if not math.isfinite(value):
                raise ValueError("not a finite number")
        if self.low is not None and value < self.low:
            raise ValueError(f"below the smallest allowed value {self.low:g}")
        if self.high is not None and value > self.high:
            raise ValueError(f"above the largest allowed value {self.high:g}")
        return value


def _show(value: str | None, limit: int = 60) -> str:
    if value is None:
        return "None"
    return repr(value if len(value) <= limit else value[:limit] + "...")


@dataclass(frozen=True)
class _Format:
    path: Path
    fields: tuple[Field, ...]
    delimiter: str
    header: tuple[str, ...] | None
    encoding: str
    quoted: bool
    on_bad_lines: OnBadLines

    @property
    def skip_rows(self) -> int:
        return 1 if self.header is not None else 0


def _check_start(fmt: _Format) -> None:
    """Reject an empty file and a wrong header with a clear error before any parsing."""
    path = fmt.path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    body = head[3:] if head.startswith(codecs.BOM_UTF8) else head
    if not body.strip():
        raise BadInputError(path, None, "the file is empty")
    if fmt.header is None:
        return
    first = body.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = first.decode(fmt.encoding)
    except UnicodeDecodeError as exc:
        raise BadInputError(path, 1, f"bytes not valid {fmt.encoding}: {exc.reason}",
                            value=first.decode("latin-1")) from None
    got = tuple(next(csv.reader([text], delimiter=fmt.delimiter)))
    if got != fmt.header:
        raise BadInputError(
            path, 1, "unexpected header", value=text,
            hint=f"expected {fmt.delimiter.join(fmt.header)!r}",
        )


def _convert_options(fmt: _Format) -> pacsv.ConvertOptions:
    nulls = sorted({""} | {t for f in fmt.fields for t in f.null_tokens})
    return pacsv.ConvertOptions(
        column_types={f.name: f.arrow_type() for f in fmt.fields},
        null_values=nulls,
        # Always, quoted ("") or not: an empty str field must come out null, so _batch_ok
        # rejects it where the field is not nullable and keeps it missing where it is, as the
        # line reader does.
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        timestamp_parsers=["%Y-%m-%d"],
        true_values=[],
        false_values=[],
    )


def _read_options(fmt: _Format, block_size: int) -> pacsv.ReadOptions:
    return pacsv.ReadOptions(
        column_names=[f.name for f in fmt.fields],
        skip_rows=fmt.skip_rows,
        encoding=fmt.encoding,
        block_size=block_size,
    )


def _parse_options(fmt: _Format) -> pacsv.ParseOptions:
    return pacsv.ParseOptions(
        delimiter=fmt.delimiter,
        quote_char='"' if fmt.quoted else False,
        double_quote=fmt.quoted,
        newlines_in_values=False,
        ignore_empty_lines=True,
    )


@dataclass(frozen=True)
class _Hazards:
    """What one pass over the raw bytes found that pyarrow would read unlike the line reader."""

    bare_cr: bool
    """A ``\\r`` not followed by ``\\n``: pyarrow ends a row there, the line reader does not."""
    edge_blank: bool
    """A space or tab at the start or end of a field of a format with numbers or dates:
    pyarrow trims blanks around numbers where :meth:`Field.convert` refuses them."""


def _scan(fmt: _Format) -> _Hazards:
    """Look for bare carriage returns and blanks next to a field edge, in one pass.

    Costs a few ``memchr`` per block when neither a blank nor a ``\\r`` occurs; only a block
    that has blanks (titles) is searched for blank-edge pairs (:func:`_has_pair`). Ignores
    line structure (quotes, the header), so it may send a good file to a closer look, never a
    bad one past it.
    """
    blanks: list[bytes] = []
    if any(f.kind != "str" for f in fmt.fields):
        blanks = [b for b in (b" ", b"\t") if b.decode() != fmt.delimiter]
    edges = [fmt.delimiter.encode(), b"\n", b"\r"] + ([b'"'] if fmt.quoted else [])
    pairs = [b + e for b in blanks for e in edges] + [e + b for b in blanks for e in edges]
    bare_cr = edge_blank = False
    prev = b""
    pending_cr = False
    with open(fmt.path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            if not prev:  # the file starts a line, after a byte-order mark if any
                prev = b"\n"
                head = block[3:4] if block.startswith(codecs.BOM_UTF8) else block[:1]
            else:
                head = block[:1]
            if pending_cr and head != b"\n":
                bare_cr = True
            if b"\r" in block:
                pending_cr = block.endswith(b"\r")
                if block.count(b"\r") - pending_cr != block.count(b"\r\n"):
                    bare_cr = True
            else:
                pending_cr = False
            if not edge_blank and any(b in block for b in blanks):
                edge_blank = prev + head in pairs or _has_pair(block, blanks, edges)
            prev = block[-1:]
            if bare_cr and (edge_blank or not blanks):
                break
    return _Hazards(bare_cr, edge_blank)


def _has_pair(block: bytes, blanks: list[bytes], edges: list[bytes]) -> bool:
    """Whether a blank byte sits right before or after an edge byte within ``block``.

    Vectorised over pieces of 1 MiB, which stay in cache (about 1.5 GB/s); searching each of
    the two-byte pairs with ``bytes.find`` is ten times slower.
    """
    data = np.frombuffer(block, np.uint8)
    step = 1 << 20
    for start in range(0, len(data), step):
        piece = data[max(start - 1, 0):start + step]
        blank = np.zeros(len(piece), bool)
        for b in blanks:
            blank |= piece == b[0]
        edge = np.zeros(len(piece), bool)
        for e in edges:
            edge |= piece == e[0]
        if (blank[1:] & edge[:-1]).any() or (blank[:-1] & edge[1:]).any():
            return True
    return False


def _padded_numbers(fmt: _Format, block_size: int | None = None) -> bool:
    """Whether a number or date field has a blank at its start or end (pyarrow would trim it).

    Reads the file once more with those fields as text: whole and multithreaded, or streamed
    in blocks of ``block_size`` bytes. Called only when :func:`_scan` saw a blank next to a
    field edge, which in a file with titles may well be in a title.
    """
    names = [f.name for f in fmt.fields if f.kind != "str"]
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()), include_columns=names, null_values=[],
        strings_can_be_null=False, quoted_strings_can_be_null=False,
    )
    read, parse = _read_options(fmt, block_size or _BLOCK), _parse_options(fmt)
    try:
        if block_size is None:
            batches = pacsv.read_csv(fmt.path, read, parse, convert).to_batches()
        else:
            batches = pacsv.open_csv(fmt.path, read, parse, convert)
        for batch in batches:
            for col in batch.columns:
                for test in (pc.starts_with, pc.ends_with):
                    for blank in (" ", "\t"):
                        if pc.any(test(col, pattern=blank)).as_py():
                            return True
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        return True
    return False


def _batch_ok(fmt: _Format, table: pa.Table | pa.RecordBatch) -> bool:
    """Checks pyarrow does not make: missing values, bounds, non-finite floats."""
    for f in fmt.fields:
        col = table.column(f.name)
        if not f.nullable and col.null_count:
            return False
        if f.kind == "date" and col.null_count < len(col):
            # pyarrow reads year 0; Python's calendar (the line reader) starts at year 1
            if pc.any(pc.less(col, pa.scalar(-62135596800, pa.timestamp("s")))).as_py():
                return False
        if f.kind in ("int", "float", "epoch"):
            if f.kind == "float" and col.null_count < len(col):
                if not pc.all(pc.is_finite(col), skip_nulls=True).as_py():
                    return False
            if f.low is not None and pc.any(pc.less(col, f.low)).as_py():
                return False
            if f.high is not None and pc.any(pc.greater(col, f.high)).as_py():
                return False
        if f.kind == "str" and f.null_tokens and col.null_count < len(col):
            if pc.any(pc.is_in(col, pa.array(list(f.null_tokens)))).as_py():
                return False
        if f.pattern is not None and col.null_count < len(col):
            full = pc.match_substring_regex(col, f"^(?:{f.pattern})$")
            if not pc.all(full, skip_nulls=True).as_py():
                return False
    return True


def _to_frame(fmt: _Format, table: pa.Table) -> pd.DataFrame:
    data: dict[str, object] = {}
    for f in fmt.fields:
        col = table.column(f.name)
        if f.kind == "epoch":
            col = col.cast(pa.timestamp("s"))
        if f.kind in ("int", "float") and col.null_count:
            data[f.name] = col.to_pandas().astype("float32" if f.kind == "float" else "Int64")
            continue
        series = col.to_pandas()
        data[f.name] = series.astype(f.out_dtype()) if f.kind != "str" else series
    frame = pd.DataFrame(data)
    for f in fmt.fields:
        if f.kind == "str" and f.null_tokens:
            frame[f.name] = frame[f.name].where(~frame[f.name].isin(f.null_tokens))
    return frame


def _slow_rows(fmt: _Format, report: ParseReport) -> Iterator[list[object]]:
    """Read line by line; raise on the first bad line or skip it into ``report``."""
    n_fields = len(fmt.fields)
    decoder = codecs.getincrementaldecoder(fmt.encoding)()
    with open(fmt.path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[3:]
            if lineno <= fmt.skip_rows:
                continue
            raw = raw.rstrip(b"\n").rstrip(b"\r")
            if not raw:
                continue
            try:
                text = decoder.decode(raw, final=True)
            except UnicodeDecodeError as exc:
                _bad(fmt, report, lineno, f"bytes not valid {fmt.encoding}: {exc.reason}",
                     raw.decode("latin-1"), None)
                decoder.reset()
                continue
            if "\r" in text:
                # pyarrow would end a row here; a line ends only at \n, so say where it is
                _bad(fmt, report, lineno, "a carriage return (\\r) inside the line", text, None,
                     "line ends of an old Mac?" if text.count("\r") > 1 else None)
                continue
            if fmt.quoted:
                try:
                    parts = next(csv.reader([text], delimiter=fmt.delimiter))
                except csv.Error as exc:
                    _bad(fmt, report, lineno, f"not a CSV line: {exc}", text, None)
                    continue
            else:
                parts = text.split(fmt.delimiter)
            if len(parts) != n_fields:
                hint = None
                if lineno == 1 and fmt.header is None:
                    hint = "this format has no header line"
                _bad(fmt, report, lineno,
                     f"expected {n_fields} fields separated by {fmt.delimiter!r}, "
                     f"found {len(parts)}", text, None, hint)
                continue
            row: list[object] = []
            for f, part in zip(fmt.fields, parts, strict=True):
                try:
                    row.append(f.convert(part))
                except ValueError as exc:
                    hint = None
                    if lineno == 1 and fmt.header is None and str(exc).startswith("not "):
                        hint = "a header line? this format has none"
                    _bad(fmt, report, lineno, str(exc), part, f.name, hint)
                    break
            else:
                yield row


def _bad(fmt: _Format, report: ParseReport, lineno: int, reason: str, value: str,
         field_name: str | None, hint: str | None = None) -> None:
    if fmt.on_bad_lines == "error":
        raise BadInputError(fmt.path, lineno, reason, field=field_name, value=value, hint=hint)
    text = value if field_name is None else f"{field_name}={value!r}"
    report.add(BadLine(lineno, reason if hint is None else f"{reason} ({hint})", text))


def _slow_frame(fmt: _Format, report: ParseReport) -> pd.DataFrame:
    return _rows_frame(fmt, list(_slow_rows(fmt, report)))


def _rows_frame(fmt: _Format, rows: list[list[object]]) -> pd.DataFrame:
    """Columns from converted rows, with the same dtypes as the fast path."""
    columns: dict[str, object] = {}
    for j, f in enumerate(fmt.fields):
        values = [r[j] for r in rows]
        if f.kind == "epoch":
            arr = pd.array(values, dtype="Int64")
            columns[f.name] = pd.to_datetime(arr, unit="s").astype("datetime64[s]")
        elif f.kind == "date":
            naive = [None if v is None else v.replace(tzinfo=None) for v in values]
            columns[f.name] = pd.Series(naive, dtype="datetime64[s]")
        elif f.kind == "str":
            columns[f.name] = pd.Series(values, dtype="str")
        elif any(v is None for v in values):
            dtype = "float32" if f.kind == "float" else "Int64"
            columns[f.name] = pd.Series(values, dtype="float64").astype(dtype)
        else:
            columns[f.name] = np.asarray(values, dtype=f.out_dtype()).reshape(len(values))
    return pd.DataFrame(columns)


def _make_format(path: str | Path, fields: Sequence[Field], delimiter: str,
                 header: Sequence[str] | None, encoding: str, quoted: bool,
                 on_bad_lines: OnBadLines) -> _Format:
    if on_bad_lines not in ("error", "skip"):
        raise ValueError(f"on_bad_lines must be 'error' or 'skip', got {on_bad_lines!r}")
    return _Format(Path(path), tuple(fields), delimiter,
                   None if header is None else tuple(header), encoding, quoted, on_bad_lines)


def read_delimited(
    path: str | Path,
    fields: Sequence[Field],
    *,
    delimiter: str = ",",
    header: Sequence[str] | None = None,
    encoding: str = "utf-8",
    quoted: bool = False,
    on_bad_lines: OnBadLines = "error",
    fast: bool = True,
) -> tuple[pd.DataFrame, ParseReport]:
    """Read a whole delimited file into a DataFrame with one column per field.

    Parameters
    ----------
    path : str or Path
        The file. A UTF-8 byte-order mark and CRLF line ends are accepted; blank lines are
        ignored.
    fields : sequence of Field
        The columns, in file order.
    delimiter : str
        Field separator.
    header : sequence of str, optional
        The exact header line the file must start with; ``None`` when it has none.
    encoding : str
        Declared encoding; a byte invalid in it is a bad line.
    quoted : bool
        Whether fields may be wrapped in double quotes (CSV style).
    on_bad_lines : {"error", "skip"}
        Raise :class:`BadInputError` at the first bad line, or skip bad lines and report them.
    fast : bool
        Use the pyarrow path first (``False`` forces the line reader; for tests).

    Returns
    -------
    frame : pandas.DataFrame
    report : ParseReport
    """
    fmt = _make_format(path, fields, delimiter, header, encoding, quoted, on_bad_lines)
    _check_start(fmt)
    report = ParseReport(str(fmt.path))
    hazards = _scan(fmt) if fast else None
    if hazards is not None and not hazards.bare_cr:
        try:
            table = pacsv.read_csv(fmt.path, _read_options(fmt, _BLOCK), _parse_options(fmt),
                                   _convert_options(fmt))
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
            table = None
        if (table is not None and _batch_ok(fmt, table)
                and not (hazards.edge_blank and _padded_numbers(fmt))):
            frame = _to_frame(fmt, table)
            report.rows = len(frame)
            return frame, report
    frame = _slow_frame(fmt, report)
    report.rows = len(frame)
    if report.rows == 0:
        raise BadInputError(fmt.path, None, "no valid rows", hint=report.summary())
    return frame, report


def iter_delimited(
    path: str | Path,
    fields: Sequence[Field],
    *,
    delimiter: str = ",",
    header: Sequence[str] | None = None,
    encoding: str = "utf-8",
    quoted: bool = False,
    on_bad_lines: OnBadLines = "error",
    block_size: int = 64 << 20,
    report: ParseReport | None = None,
) -> Iterator[pd.DataFrame]:
    """Stream a file larger than memory as DataFrames of about ``block_size`` bytes each.

    Same contract as :func:`read_delimited`. On a bad block the file is re-read by the line
    reader (from the start, to give true line numbers); with ``on_bad_lines="skip"`` the rest
    of the file then comes from the line reader in blocks of the same row count.
    """
    fmt = _make_format(path, fields, delimiter, header, encoding, quoted, on_bad_lines)
    _check_start(fmt)
    report = report if report is not None else ParseReport(str(fmt.path))
    rows_done = 0
    batch_rows = 0
    hazards = _scan(fmt)
    try:
        if hazards.bare_cr or (hazards.edge_blank and _padded_numbers(fmt, block_size)):
            raise pa.ArrowInvalid("the line reader must decide")
        reader = pacsv.open_csv(fmt.path, _read_options(fmt, block_size), _parse_options(fmt),
                                _convert_options(fmt))
        for batch in reader:
            if not _batch_ok(fmt, batch):
                raise pa.ArrowInvalid("check failed")
            frame = _to_frame(fmt, pa.Table.from_batches([batch]))
            rows_done += len(frame)
            batch_rows = max(batch_rows, len(frame))
            report.rows += len(frame)
            yield frame
        return
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        pass
    # Slow path: find (error) or drop (skip) the bad lines, resuming after the rows already
    # yielded. Good lines are counted so the frames never repeat a row.
    inner = ParseReport(str(fmt.path))
    seen = 0
    chunk: list[list[object]] = []
    step = batch_rows or 100_000
    for row in _slow_rows(fmt, inner):
        seen += 1
        if seen <= rows_done:
            continue
        chunk.append(row)
        if len(chunk) >= step:
            report.rows += len(chunk)
            yield _rows_frame(fmt, chunk)
            chunk = []
    if chunk:
        report.rows += len(chunk)
        yield _rows_frame(fmt, chunk)
    report.skipped += inner.skipped
    report.examples.extend(inner.examples[: _N_EXAMPLES - len(report.examples)])
