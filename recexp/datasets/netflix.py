"""Netflix Prize (2006): ratings, movie titles, probe and qualifying sets, and a course subset.

The ratings come in blocks: a ``MovieID:`` line, then one ``CustomerID,Rating,Date`` line per
rating of that movie, either in the original per-movie files (``training_set/mv_0000001.txt``,
one block each) or in Kaggle's ``combined_data_1.txt`` .. ``combined_data_4.txt`` (many blocks
each). ``probe.txt`` and ``qualifying.txt`` use the same blocks with ``CustomerID`` and
``CustomerID,Date`` lines. ``movie_titles.txt`` is ``MovieID,YearOfRelease,Title`` in latin-1,
with commas inside titles and ``NULL`` for an unknown year. A widely used course subset
(``TestingRatings.txt``) is a flat ``MovieID,UserID,Rating`` file with ratings like ``3.0``.

Reading the block format is streaming and vectorised: the files are read in large byte blocks
cut at line ends; the ``MovieID:`` lines are found with a byte search; the bytes between them
go to pyarrow's CSV reader with narrow typed columns (int32 user, int8 rating, date32); the
movie id of every rating is a ``np.repeat`` of the header ids over the line counts between
headers. The full 100M-rating set takes about 4 GB at its peak. Any block the fast path does
not accept, or any check it fails, is read again line by line by an exact reader that names
file, line, field and value (``on_bad_lines="error"``) or skips the bad lines and reports them
(``"skip"``). The two readers share their :class:`~recexp.datasets._parse.Field` definitions,
and the tests check that they agree.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from tqdm.auto import tqdm

from recexp.columns import Columns
from recexp.datasets._base import DatasetInfo, SourceData, register
from recexp.datasets._fetch import Source
from recexp.datasets._parse import (
    BadInputError,
    BadLine,
    Field,
    OnBadLines,
    ParseReport,
    read_delimited,
)

__all__ = [
    "load_netflix",
    "load_netflix_subset",
    "read_movie_titles",
    "read_netflix_ratings",
    "read_probe",
    "read_qualifying",
    "read_rating_triples",
]

Layout = Literal["ratings", "probe", "qualifying"]

_INT32_MAX = 2**31 - 1
USER = Field(Columns.User, "int", dtype="int32", low=1, high=_INT32_MAX)
"""CustomerID: 1 .. 2,649,429 in the real data."""
MOVIE = Field(Columns.Item, "int", dtype="int32", low=1, high=_INT32_MAX)
"""MovieID of a ``MovieID:`` line: 1 .. 17,770 in the real data."""
RATING = Field(Columns.Rating, "int", dtype="int8", low=1, high=5)
"""Whole stars, 1 .. 5."""
DATE = Field(Columns.Datetime, "date")
"""``YYYY-MM-DD``."""

_LAYOUT_FIELDS: dict[str, tuple[Field, ...]] = {
    "ratings": (USER, RATING, DATE),
    "probe": (USER,),
    "qualifying": (USER, DATE),
}
_ARROW_TYPES = {Columns.User: pa.int32(), Columns.Rating: pa.int8(),
                Columns.Datetime: pa.date32()}
_HEADER = re.compile(rb"([0-9]+):\r?")
_BLANK = re.compile(rb"\s*")
_EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal()
_FIRST_DAY = 1 - _EPOCH_ORDINAL  # 0001-01-01, the earliest date strptime accepts
_BLOCK = 64 << 20
_PROGRESS_BYTES = 256 << 20
_BOM = codecs.BOM_UTF8

# The movie a rating line belongs to is carried from line to line: a positive id, or one of
_NO_MOVIE = 0  # no 'MovieID:' line yet in this file
_BAD_MOVIE = -1  # the last 'MovieID:' line was bad (when skipping): its ratings have no movie


# ---------------------------------------------------------------------------- byte blocks
@dataclass(frozen=True)
class _Piece:
    """A run of whole lines of one file inside a block: ``block[start:end]``."""

    path: Path
    start: int
    end: int
    file_start: bool


@dataclass
class _Carry:
    """What one block hands the next: the current movie and the next file line number."""

    movie: int = _NO_MOVIE
    line: int = 1

    def enter(self, piece: _Piece) -> None:
        if piece.file_start:
            self.movie, self.line = _NO_MOVIE, 1


def _file_chunks(path: Path, block_size: int) -> Iterator[tuple[bytes, int, int]]:
    """``(data, start, end)``: ``data[start:end]`` is whole lines of the file, in order.

    The UTF-8 byte-order mark is left out and the last line gets a newline if it lacks one.
    Reading restarts at the last line end of each chunk (a seek, not a copy), so a chunk is
    usually handed on as it was read. Raises on an empty file.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as fh:
        while True:
            at_start = fh.tell() == 0
            chunk = fh.read(block_size)
            last = len(chunk) < block_size
            start = len(_BOM) if at_start and chunk.startswith(_BOM) else 0
            if at_start and last and _BLANK.fullmatch(chunk, start):
                raise BadInputError(path, None, "the file is empty")
            if last:
                # Blank lines at the very end are harmless; dropping them keeps it fast.
                body = len(chunk.rstrip(b"\r\n"))
                if body <= start:
                    return
                end = chunk.find(b"\n", body) + 1
                if end == 0:
                    yield chunk[start:body] + b"\n", 0, body - start + 1
                else:
                    yield chunk, start, end
                return
            cut = chunk.rfind(b"\n") + 1
            if cut <= start:
                block_size *= 2  # one line longer than a block: read more at once
                fh.seek(-len(chunk), 1)
                continue
            fh.seek(cut - len(chunk), 1)
            yield chunk, start, cut


def _blocks(paths: Sequence[Path], block_size: int
            ) -> Iterator[tuple[bytes, list[_Piece]]]:
    """Blocks of about ``block_size`` bytes: small files together, big chunks alone."""
    parts: list[bytes] = []
    pieces: list[_Piece] = []
    size = 0
    for path in paths:
        for k, (data, start, end) in enumerate(_file_chunks(path, block_size)):
            if end - start >= block_size // 2:
                if parts:
                    yield (parts[0] if len(parts) == 1 else b"".join(parts)), pieces
                    parts, pieces, size = [], [], 0
                yield data, [_Piece(path, start, end, k == 0)]  # as read: no copy
                continue
            if start or end != len(data):
                data = data[start:end]
            pieces.append(_Piece(path, size, size + len(data), k == 0))
            parts.append(data)
            size += len(data)
            if size >= block_size:
                yield (parts[0] if len(parts) == 1 else b"".join(parts)), pieces
                parts, pieces, size = [], [], 0
    if parts:
        yield (parts[0] if len(parts) == 1 else b"".join(parts)), pieces


# ---------------------------------------------------------------------------- columns
class _Columns:
    """Narrow column chunks: int32 user/item, int8 rating, int32 days since 1970-01-01."""

    def __init__(self, fields: tuple[Field, ...]) -> None:
        self.fields = fields
        self.chunks: dict[str, list[np.ndarray]] = {Columns.Item: []}
        for f in fields:
            self.chunks[f.name] = []

    def add(self, values: dict[str, np.ndarray]) -> None:
        for name, arr in values.items():
            self.chunks[name].append(arr)

    def frame(self) -> pd.DataFrame:
        """The output table: int64 ids, float32 rating, datetime64[s] time; built one column
        at a time, freeing each column's chunks, so the peak stays near the output size."""
        order = [Columns.User, Columns.Item] + [f.name for f in self.fields[1:]]
        data: dict[str, np.ndarray] = {}
        for name in order:
            chunks = self.chunks.pop(name)
            n = sum(len(c) for c in chunks)
            if name == Columns.Rating:
                out = np.empty(n, np.float32)
            else:
                out = np.empty(n, np.int64)
            pos = 0
            while chunks:
                c = chunks.pop(0)
                out[pos:pos + len(c)] = c
                pos += len(c)
            if name == Columns.Datetime:
                out *= 86400
                out = out.view("datetime64[s]")
            data[name] = out
        return pd.DataFrame(data, copy=False)


# ---------------------------------------------------------------------------- fast path
def _fast_block(buf: bytes, pieces: list[_Piece], carry: _Carry, fields: tuple[Field, ...],
                reports: dict[Path, ParseReport]) -> tuple[dict[str, np.ndarray], _Carry] | None:
    """Parse one block with byte search + pyarrow, or ``None`` when anything is off.

    Every line is either a ``MovieID:`` line (found by its colon) or a data line handed to
    pyarrow; blank lines make pyarrow fail, so the lines of a piece are its headers plus its
    rows, which keeps file line numbers without counting them separately.
    """
    lo, hi = pieces[0].start, pieces[-1].end
    # pyarrow trims spaces around numbers and dates, which the exact reader rejects. (It also
    # ends a line at a bare CR; the row count check below catches that.)
    if buf.find(b" ", lo, hi) >= 0 or buf.find(b"\t", lo, hi) >= 0:
        return None
    state = _Carry(carry.movie, carry.line)
    ids: list[int] = []
    counts: list[int] = []
    spans: list[tuple[int, int]] = []
    rows_per_piece: list[int] = []
    for piece in pieces:
        state.enter(piece)
        movie = state.movie
        pos, end = piece.start, piece.end
        kept = headers = 0
        while True:
            colon = buf.find(b":", pos, end)
            stop = end if colon < 0 else max(buf.rfind(b"\n", piece.start, colon) + 1,
                                             piece.start)
            n = buf.count(b"\n", pos, stop)
            if n:
                if movie <= 0:
                    return None
                ids.append(movie)
                counts.append(n)
                spans.append((pos, stop))
                kept += n
            if colon < 0:
                break
            line_end = buf.find(b"\n", colon, end)
            match = _HEADER.fullmatch(buf, stop, line_end)
            if match is None:
                return None
            movie = int(match.group(1))
            if not 1 <= movie <= _INT32_MAX:
                return None
            headers += 1
            pos = line_end + 1
        state.movie = movie
        state.line += kept + headers
        rows_per_piece.append(kept)
    total = sum(counts)
    if total == 0:
        values = {f.name: np.empty(0, _np_narrow(f)) for f in fields}
    else:
        if len(spans) == 1:
            data = pa.py_buffer(memoryview(buf)[spans[0][0]:spans[0][1]])
        else:
            data = b"".join(memoryview(buf)[a:b] for a, b in spans)
        values = _arrow_parse(data, fields)
        if values is None or len(values[fields[0].name]) != total:
            return None
    values[Columns.Item] = np.repeat(np.asarray(ids, np.int32), counts)
    for piece, kept in zip(pieces, rows_per_piece, strict=True):
        reports[piece.path].rows += kept
    return values, state


def _np_narrow(f: Field) -> str:
    return "int32" if f.kind == "date" else (f.dtype or "int64")


def _arrow_parse(data: bytes | pa.Buffer, fields: tuple[Field, ...]
                 ) -> dict[str, np.ndarray] | None:
    names = [f.name for f in fields]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            pacsv.ReadOptions(column_names=names, block_size=8 << 20),
            pacsv.ParseOptions(delimiter=",", quote_char=False, double_quote=False,
                               newlines_in_values=False, ignore_empty_lines=False),
            pacsv.ConvertOptions(column_types={n: _ARROW_TYPES[n] for n in names},
                                 null_values=[], strings_can_be_null=False,
                                 quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    out: dict[str, np.ndarray] = {}
    for f in fields:
        col = table.column(f.name)
        if col.null_count:
            return None
        if f.kind == "date":
            days = col.cast(pa.int32()).to_numpy()
            if len(days) and days.min() < _FIRST_DAY:
                return None
            out[f.name] = days
            continue
        arr = col.to_numpy()
        if len(arr) and ((f.low is not None and arr.min() < f.low)
                         or (f.high is not None and arr.max() > f.high)):
            return None
        out[f.name] = arr
    return out


# ---------------------------------------------------------------------------- exact path
class _Exact:
    """The line reader: exact line numbers, one :class:`BadInputError` or skip per bad line."""

    def __init__(self, fields: tuple[Field, ...], encoding: str, on_bad_lines: OnBadLines,
                 reports: dict[Path, ParseReport]) -> None:
        self.fields = fields
        self.encoding = encoding
        self.on_bad_lines = on_bad_lines
        self.reports = reports

    def bad(self, path: Path, line: int, reason: str, value: str,
            field: str | None = None, hint: str | None = None) -> None:
        if self.on_bad_lines == "error":
            raise BadInputError(path, line, reason, field=field, value=value, hint=hint)
        text = value if field is None else f"{field}={value!r}"
        self.reports[path].add(BadLine(line, reason if hint is None else f"{reason} ({hint})",
                                       text))

    def block(self, buf: bytes, pieces: list[_Piece], carry: _Carry
              ) -> tuple[dict[str, np.ndarray], _Carry]:
        state = _Carry(carry.movie, carry.line)
        rows: list[tuple] = []
        movies: list[int] = []
        for piece in pieces:
            state.enter(piece)
            self.piece(buf, piece, state, rows, movies)
        values: dict[str, np.ndarray] = {}
        for j, f in enumerate(self.fields):
            values[f.name] = np.asarray([r[j] for r in rows], dtype=_np_narrow(f))
        values[Columns.Item] = np.asarray(movies, dtype=np.int32)
        return values, state

    def piece(self, buf: bytes, piece: _Piece, state: _Carry, rows: list[tuple],
              movies: list[int]) -> None:
        n_fields = len(self.fields)
        report = self.reports[piece.path]
        path = piece.path
        seen_content = not piece.file_start
        lines = buf[piece.start:piece.end].split(b"\n")
        lines.pop()  # the piece ends with a newline
        movie = state.movie
        first_line = state.line
        state.line += len(lines)
        for lineno, raw in enumerate(lines, start=first_line):
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if not raw:
                continue
            first_content = not seen_content
            seen_content = True
            try:
                text = raw.decode(self.encoding)
            except UnicodeDecodeError as exc:
                self.bad(path, lineno, f"bytes not valid {self.encoding}: {exc.reason}",
                         raw.decode("latin-1"))
                continue
            if ":" in text:
                movie = self.header(path, lineno, text)
                continue
            if movie == _NO_MOVIE:
                if first_content and any(c.isalpha() for c in text):
                    self.bad(path, lineno, "unexpected header line", text,
                             hint="Netflix files have no header: they start with a "
                                  "'MovieID:' line")
                else:
                    self.bad(path, lineno, "a rating line before any 'MovieID:' line", text)
                continue
            parts = text.split(",")
            if len(parts) != n_fields:
                self.bad(path, lineno, f"expected {n_fields} field(s) separated by ',', "
                         f"found {len(parts)}", text)
                continue
            row = []
            for f, part in zip(self.fields, parts, strict=True):
                try:
                    value = f.convert(part)
                except ValueError as exc:
                    self.bad(path, lineno, str(exc), part, f.name)
                    break
                if f.kind == "date":
                    value = value.toordinal() - _EPOCH_ORDINAL
                row.append(value)
            else:
                if movie == _BAD_MOVIE:
                    # Only reachable when skipping: the ratings of a bad 'MovieID:' line
                    # belong to no known movie, so they go too.
                    self.bad(path, lineno, "follows a bad 'MovieID:' line", text)
                    continue
                rows.append(tuple(row))
                movies.append(movie)
                report.rows += 1
        state.movie = movie

    def header(self, path: Path, lineno: int, text: str) -> int:
        head, _, rest = text.partition(":")
        if rest:
            self.bad(path, lineno, "a line with ':' must be a 'MovieID:' line", text,
                     hint="digits, then ':' and nothing after it")
            return _BAD_MOVIE
        try:
            return int(MOVIE.convert(head))
        except ValueError as exc:
            self.bad(path, lineno, f"{exc} (in a 'MovieID:' line)", head, MOVIE.name)
            return _BAD_MOVIE


# ---------------------------------------------------------------------------- block reader
def _as_paths(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        path = Path(paths)
        if path.is_dir():
            found = sorted(path.glob("*.txt"), key=_natural_key)
            if not found:
                raise FileNotFoundError(f"{path}: no *.txt rating files in this folder")
            return found
        return [path]
    out = [Path(p) for p in paths]
    if not out:
        raise ValueError("no files given")
    return out


def _natural_key(path: Path) -> tuple:
    """``combined_data_10`` after ``combined_data_9``; ``mv_0000001`` order is kept."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


def _read_blocks(paths: list[Path], layout: Layout, *, on_bad_lines: OnBadLines,
                 encoding: str, progress: bool | None, block_size: int,
                 fast: bool) -> tuple[pd.DataFrame, tuple[ParseReport, ...]]:
    if on_bad_lines not in ("error", "skip"):
        raise ValueError(f"on_bad_lines must be 'error' or 'skip', got {on_bad_lines!r}")
    if layout not in _LAYOUT_FIELDS:
        raise ValueError(f"layout must be one of {sorted(_LAYOUT_FIELDS)}, got {layout!r}")
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    fields = _LAYOUT_FIELDS[layout]
    reports = {p: ParseReport(str(p)) for p in paths}
    exact = _Exact(fields, encoding, on_bad_lines, reports)
    columns = _Columns(fields)
    total = sum(p.stat().st_size for p in paths if p.is_file())
    show = total >= _PROGRESS_BYTES if progress is None else progress
    carry = _Carry()
    with tqdm(total=total, unit="B", unit_scale=True, disable=not show,
              desc=paths[0].name if len(paths) == 1 else f"{len(paths)} files") as bar:
        for buf, pieces in _blocks(paths, block_size):
            result = _fast_block(buf, pieces, carry, fields, reports) if fast else None
            if result is None:
                result = exact.block(buf, pieces, carry)
            values, carry = result
            columns.add(values)
            bar.update(sum(p.end - p.start for p in pieces))
    frame = columns.frame()
    if len(frame) == 0 and any(r.skipped for r in reports.values()):
        first = next(r for r in reports.values() if r.skipped)
        raise BadInputError(paths[0], None, "no valid rows", hint=first.summary())
    return frame, tuple(reports[p] for p in paths)


def read_netflix_ratings(
    paths: str | Path | Sequence[str | Path],
    *,
    on_bad_lines: OnBadLines = "error",
    encoding: str = "ascii",
    progress: bool | None = None,
    block_size: int = _BLOCK,
    fast: bool = True,
) -> tuple[pd.DataFrame, tuple[ParseReport, ...]]:
    """Read Netflix Prize rating files: ``MovieID:`` lines, each followed by
    ``CustomerID,Rating,Date`` lines.

    Parameters
    ----------
    paths : str, Path or sequence of them
        ``combined_data_*.txt`` files, per-movie ``mv_*.txt`` files, or a folder of either
        (``training_set/``: every ``*.txt`` in it, in natural name order).
    on_bad_lines : {"error", "skip"}
        Raise :class:`~recexp.datasets.BadInputError` at the first bad line (naming file, line,
        field and value), or skip bad lines and report them. A bad ``MovieID:`` line takes its
        ratings with it when skipping. An empty file is an error either way.
    encoding : str
        Declared encoding; the files are plain ASCII, so any other byte is a bad line.
    progress : bool, optional
        Show a progress bar over bytes; by default only when the files total 256 MiB or more.
    block_size : int
        Bytes read and parsed at a time (cut at a line end); bounds the working memory.
    fast : bool
        Use the vectorised path; ``False`` reads every line with the exact reader (for tests).

    Returns
    -------
    frame : DataFrame
        ``user_id`` (int64), ``item_id`` (int64), ``rating`` (float32, 1..5) and ``timestamp``
        (datetime64[s], midnight of the rating's date), in file order, one row per rating.
    reports : tuple of ParseReport
        One per file, in the order read.

    A UTF-8 byte-order mark, CRLF line ends and blank lines are accepted (a block with blank
    lines between its rows is read by the exact reader, which is several times slower).
    """
    return _read_blocks(_as_paths(paths), "ratings", on_bad_lines=on_bad_lines,
                        encoding=encoding, progress=progress, block_size=block_size, fast=fast)


def read_probe(path: str | Path, *, on_bad_lines: OnBadLines = "error",
               encoding: str = "ascii", fast: bool = True
               ) -> tuple[pd.DataFrame, ParseReport]:
    """Read ``probe.txt``: ``MovieID:`` lines, each followed by ``CustomerID`` lines.

    Returns ``user_id``, ``item_id`` (int64) in file order, and the :class:`ParseReport`.
    The probe pairs are ratings of the training set held out for validation (see
    :func:`load_netflix`, which turns them into the ``"probe"`` split).
    """
    frame, reports = _read_blocks([Path(path)], "probe", on_bad_lines=on_bad_lines,
                                  encoding=encoding, progress=False, block_size=_BLOCK,
                                  fast=fast)
    return frame, reports[0]


def read_qualifying(path: str | Path, *, on_bad_lines: OnBadLines = "error",
                    encoding: str = "ascii", fast: bool = True
                    ) -> tuple[pd.DataFrame, ParseReport]:
    """Read ``qualifying.txt``: ``MovieID:`` lines, each followed by ``CustomerID,Date`` lines.

    Returns ``user_id``, ``item_id`` (int64) and ``timestamp`` (datetime64[s]) in file order:
    the pairs whose ratings the Prize withheld; and the :class:`ParseReport`.
    """
    frame, reports = _read_blocks([Path(path)], "qualifying", on_bad_lines=on_bad_lines,
                                  encoding=encoding, progress=False, block_size=_BLOCK,
                                  fast=fast)
    return frame, reports[0]


# ---------------------------------------------------------------------------- titles
TITLE_FIELDS = (
    Field(Columns.Item, "int", low=1, high=_INT32_MAX),
    # The README says 1890..2005; the wider range only guards against garbage.
    Field("year", "int", nullable=True, low=1800, high=2100, null_tokens=("NULL",)),
    Field("title", "str"),
)


def read_movie_titles(path: str | Path, *, on_bad_lines: OnBadLines = "error",
                      encoding: str = "latin-1") -> tuple[pd.DataFrame, ParseReport]:
    """Read ``movie_titles.txt``: ``MovieID,YearOfRelease,Title`` lines, no header.

    Titles contain commas, so each line is split at its first two commas only; a year of
    ``NULL`` becomes missing. The file is latin-1 (one title has ``é``). Its 17,770 lines take
    a few tens of milliseconds, so one exact reader does it all.

    Returns
    -------
    items : DataFrame
        ``item_id`` (int64), ``year`` (Int64, missing where ``NULL``), ``title`` (str).
    report : ParseReport
    """
    path = Path(path)
    if on_bad_lines not in ("error", "skip"):
        raise ValueError(f"on_bad_lines must be 'error' or 'skip', got {on_bad_lines!r}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    raw_all = path.read_bytes()
    if raw_all.startswith(_BOM):
        raw_all = raw_all[len(_BOM):]
    if not raw_all.strip():
        raise BadInputError(path, None, "the file is empty")
    report = ParseReport(str(path))
    reports = {path: report}
    exact = _Exact(TITLE_FIELDS, encoding, on_bad_lines, reports)
    ids: list[int] = []
    years: list[int | None] = []
    titles: list[str] = []
    first_line: dict[int, int] = {}
    seen_content = False
    for lineno, raw in enumerate(raw_all.split(b"\n"), start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw:
            continue
        first_content = not seen_content
        seen_content = True
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            exact.bad(path, lineno, f"bytes not valid {encoding}: {exc.reason}",
                      raw.decode("latin-1"))
            continue
        parts = text.split(",", 2)
        if len(parts) != 3:
            exact.bad(path, lineno, "expected MovieID,YearOfRelease,Title", text)
            continue
        if first_content and not parts[0].strip().isdigit():
            exact.bad(path, lineno, "unexpected header line", text,
                      hint="movie_titles.txt has no header line")
            continue
        row = []
        for f, part in zip(TITLE_FIELDS, parts, strict=True):
            try:
                row.append(f.convert(part))
            except ValueError as exc:
                exact.bad(path, lineno, str(exc), part, f.name)
                break
        else:
            movie = int(row[0])
            if movie in first_line:
                exact.bad(path, lineno, f"MovieID repeats line {first_line[movie]}",
                          parts[0], Columns.Item)
                continue
            first_line[movie] = lineno
            ids.append(movie)
            years.append(None if row[1] is None else int(row[1]))
            titles.append(row[2])
    report.rows = len(ids)
    if not ids:
        raise BadInputError(path, None, "no valid rows", hint=report.summary())
    items = pd.DataFrame({
        Columns.Item: np.asarray(ids, np.int64),
        "year": pd.array(years, dtype="Int64"),
        "title": pd.Series(titles, dtype="str"),
    })
    return items, report


# ---------------------------------------------------------------------------- triples
TRIPLE_FIELDS = (
    Field(Columns.Item, "int", low=1, high=_INT32_MAX),
    Field(Columns.User, "int", low=1, high=_INT32_MAX),
    Field(Columns.Rating, "float", low=1, high=5),
)


def read_rating_triples(path: str | Path, *, on_bad_lines: OnBadLines = "error",
                        encoding: str = "utf-8", fast: bool = True
                        ) -> tuple[pd.DataFrame, ParseReport]:
    """Read a flat ``MovieID,UserID,Rating`` file (no header, no dates, ratings like ``3.0``),
    as in the University of Washington course subset (``TrainingRatings.txt``,
    ``TestingRatings.txt``).

    Returns ``user_id``, ``item_id`` (int64) and ``rating`` (float32, 1..5) in file order, and
    the :class:`ParseReport`. ``fast=False`` reads every line with the exact reader.
    """
    path = Path(path)
    # pyarrow trims spaces around numbers where Field.convert rejects them: a file with any
    # space or tab goes straight to the exact reader so both readers give one answer.
    fast = fast and path.is_file() and not _has_blank_bytes(path)
    frame, report = read_delimited(path, TRIPLE_FIELDS, delimiter=",", encoding=encoding,
                                   on_bad_lines=on_bad_lines, fast=fast)
    return frame[[Columns.User, Columns.Item, Columns.Rating]], report


def _has_blank_bytes(path: Path) -> bool:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            if b" " in block or b"\t" in block:
                return True
    return False


# ---------------------------------------------------------------------------- whole datasets
def _ratings_files(folder: Path, layout: str) -> list[Path]:
    combined = sorted(folder.glob("combined_data_*.txt"), key=_natural_key)
    training = folder / "training_set"
    per_movie = (sorted(training.glob("mv_*.txt"), key=_natural_key)
                 if training.is_dir() else [])
    if layout == "auto":
        layout = "combined" if combined else "per_movie"
    if layout == "combined" and combined:
        return combined
    if layout == "per_movie" and per_movie:
        return per_movie
    if layout not in ("combined", "per_movie"):
        raise ValueError(f"layout must be 'auto', 'combined' or 'per_movie', got {layout!r}")
    raise FileNotFoundError(
        f"{folder}: no Netflix rating files; put combined_data_1.txt .. combined_data_4.txt "
        f"(Kaggle) or the original training_set/mv_0000001.txt .. mv_0017770.txt there"
    )


def _titles_file(folder: Path) -> Path:
    for name in ("movie_titles.txt", "movie_titles.csv"):  # Kaggle renamed it .csv
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: no movie_titles.txt")


def _probe_split(ratings: pd.DataFrame, probe: pd.DataFrame, probe_path: Path,
                 report: ParseReport, on_bad_lines: OnBadLines
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ratings not in probe, ratings in probe); every probe pair must be a rating."""
    def keys(frame: pd.DataFrame) -> pd.Index:
        return pd.Index((frame[Columns.Item].to_numpy() << 32) | frame[Columns.User].to_numpy())

    rating_keys, probe_keys = keys(ratings), keys(probe)
    in_probe = rating_keys.isin(probe_keys)
    found = probe_keys.isin(rating_keys)
    if not found.all():
        missing = set(probe_keys[~found].tolist())
        for lineno, text in _probe_lines(probe_path, missing):
            reason = "probe pair is not among the ratings read"
            if on_bad_lines == "error":
                raise BadInputError(probe_path, lineno, reason, field=Columns.User, value=text,
                                    hint=f"{len(missing)} such pair(s); read every rating "
                                         "file, or pass splits=False")
            report.add(BadLine(lineno, reason, f"{Columns.User}={text!r}"))
            report.rows -= 1
    return ratings[~in_probe].reset_index(drop=True), ratings[in_probe].reset_index(drop=True)


def _probe_lines(path: Path, missing: set[int]) -> Iterator[tuple[int, str]]:
    """Line numbers and text of probe lines whose (movie, customer) key is in ``missing``."""
    movie = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            text = raw.decode("ascii", "replace").strip().lstrip("\ufeff")
            if text.endswith(":") and text[:-1].isdigit():
                movie = int(text[:-1])
            elif text.isdigit() and ((movie << 32) | int(text)) in missing:
                yield lineno, text


def load_netflix(folder: str | Path, *, on_bad_lines: OnBadLines = "error",
                 layout: str = "auto", splits: bool = True,
                 progress: bool | None = None) -> SourceData:
    """Read the Netflix Prize data from one folder.

    Parameters
    ----------
    folder : str or Path
        Holds ``combined_data_1.txt`` .. ``combined_data_4.txt`` (Kaggle's layout) or
        ``training_set/mv_*.txt`` (the original), ``movie_titles.txt`` (or Kaggle's
        ``movie_titles.csv``), and optionally ``probe.txt``.
    on_bad_lines : {"error", "skip"}
    layout : {"auto", "combined", "per_movie"}
        Which rating files to read; ``"auto"`` takes ``combined_data_*.txt`` when present.
    splits : bool
        With ``probe.txt`` present, add the Prize's own validation split as
        ``splits["probe"] = (ratings not in probe, ratings in probe)``.
    progress : bool, optional
        Progress bar over the bytes of the rating files (default: when they are big).

    Returns
    -------
    SourceData
        interactions ``user_id, item_id, rating, timestamp``; items ``item_id, year, title``.
        ``qualifying.txt`` has no ratings and is not loaded: read it with
        :func:`read_qualifying`.
    """
    folder = Path(folder)
    ratings, reports = read_netflix_ratings(_ratings_files(folder, layout),
                                            on_bad_lines=on_bad_lines, progress=progress)
    items, titles_report = read_movie_titles(_titles_file(folder), on_bad_lines=on_bad_lines)
    all_reports = [*reports, titles_report]
    split_tables: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    probe_path = folder / "probe.txt"
    if splits and probe_path.is_file():
        probe, probe_report = read_probe(probe_path, on_bad_lines=on_bad_lines)
        all_reports.append(probe_report)
        split_tables["probe"] = _probe_split(ratings, probe, probe_path, probe_report,
                                             on_bad_lines)
    return SourceData(name="netflix-prize", interactions=ratings, items=items,
                      splits=split_tables, reports=tuple(all_reports))


def load_netflix_subset(folder: str | Path, *, on_bad_lines: OnBadLines = "error"
                        ) -> SourceData:
    """Read the University of Washington course subset of the Netflix Prize data.

    ``folder`` holds ``uw_subset/TestingRatings.txt`` (100,478 ratings by 27,555 users on
    1,701 movies; no dates) and the original ``movie_titles.txt``. When
    ``uw_subset/TrainingRatings.txt`` (3.25M ratings) is there too, the interactions are both
    files together and ``splits["uw"] = (training, testing)``; otherwise the interactions are
    the testing file alone.
    """
    folder = Path(folder)
    sub = folder / "uw_subset"
    testing, test_report = read_rating_triples(sub / "TestingRatings.txt",
                                               on_bad_lines=on_bad_lines)
    reports = [test_report]
    split_tables: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    interactions = testing
    if (sub / "TrainingRatings.txt").is_file():
        training, train_report = read_rating_triples(sub / "TrainingRatings.txt",
                                                     on_bad_lines=on_bad_lines)
        reports.insert(0, train_report)
        split_tables["uw"] = (training, testing)
        interactions = pd.concat([training, testing], ignore_index=True)
    items, titles_report = read_movie_titles(_titles_file(folder), on_bad_lines=on_bad_lines)
    reports.append(titles_report)
    return SourceData(name="netflix-subset", interactions=interactions, items=items,
                      splits=split_tables, reports=tuple(reports))


def _load_prize(folder: Path, *, on_bad_lines: OnBadLines = "error", **kwargs) -> SourceData:
    return load_netflix(folder, on_bad_lines=on_bad_lines, **kwargs)


def _load_subset(folder: Path, *, on_bad_lines: OnBadLines = "error", **kwargs) -> SourceData:
    return load_netflix_subset(folder, on_bad_lines=on_bad_lines, **kwargs)


register(DatasetInfo(
    name="netflix-prize",
    description="Netflix Prize (2006): 100,480,507 ratings 1-5 with dates by 480,189 users "
                "on 17,770 movies (1998-2005); titles and release years; the probe split.",
    source=Source(
        folder="netflix-prize",
        # Source.required cannot say "combined_data_*.txt or training_set/": the loader
        # checks for the rating files and names both layouts when neither is there.
        required=("movie_titles.txt",),
        remote=None,
        optional=("combined_data_1.txt", "combined_data_2.txt", "combined_data_3.txt",
                  "combined_data_4.txt", "training_set", "probe.txt", "qualifying.txt"),
        manual="Netflix no longer distributes the data. Get Kaggle's 'netflix-prize-data' "
               "(https://www.kaggle.com/datasets/netflix-inc/netflix-prize-data) and unzip it "
               "into netflix-prize/: combined_data_1.txt .. combined_data_4.txt, probe.txt, "
               "qualifying.txt, and movie_titles.csv renamed to movie_titles.txt. The original "
               "training_set/mv_*.txt files work too, in netflix-prize/training_set/.",
    ),
    loader=_load_prize,
))

register(DatasetInfo(
    name="netflix-subset",
    description="University of Washington course subset of the Netflix Prize: the 100,478 "
                "test ratings (1,701 movies, 27,555 users, no dates), with the original "
                "movie titles; the 3.25M training ratings too when present.",
    source=Source(
        folder="netflix-sample",
        required=("uw_subset/TestingRatings.txt", "movie_titles.txt"),
        remote=None,
        optional=("uw_subset/TrainingRatings.txt", "README"),
        manual="There is no public download: put the course's TestingRatings.txt (and "
               "TrainingRatings.txt if you have it) in netflix-sample/uw_subset/ and the "
               "Netflix Prize movie_titles.txt in netflix-sample/.",
    ),
    loader=_load_subset,
))

