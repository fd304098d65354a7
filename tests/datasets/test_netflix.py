"""The Netflix Prize loader: real files, synthetic round trips, every kind of bad input, and
the agreement of the fast (pyarrow) and exact (line by line) readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recexp.columns import Columns
from recexp.datasets import BadInputError, DataNotFoundError, info, load
from recexp.datasets._fetch import locate
from recexp.datasets.netflix import (
    load_netflix,
    load_netflix_subset,
    read_movie_titles,
    read_netflix_ratings,
    read_probe,
    read_qualifying,
    read_rating_triples,
)
from recexp.datasets.synthetic import write_netflix

RATING_COLUMNS = [Columns.User, Columns.Item, Columns.Rating, Columns.Datetime]

GOOD = (
    "1:\n"
    "11,3,2005-01-02\n"
    "12,4,2005-01-03\n"
    "2:\n"
    "11,5,2005-02-01\n"
    "13,1,2005-02-02\n"
)
GOOD_ROWS = pd.DataFrame({
    Columns.User: np.array([11, 12, 11, 13], np.int64),
    Columns.Item: np.array([1, 1, 2, 2], np.int64),
    Columns.Rating: np.array([3, 4, 5, 1], np.float32),
    Columns.Datetime: np.array(["2005-01-02", "2005-01-03", "2005-02-01", "2005-02-02"],
                               dtype="datetime64[s]"),
})


def write(tmp_path: Path, data: str | bytes, name: str = "ratings.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("ascii") if isinstance(data, str) else data)
    return path


def replace_line(text: str, lineno: int, new: str) -> str:
    lines = text.split("\n")
    lines[lineno - 1] = new
    return "\n".join(lines)


def both_paths(path: Path, **kwargs):
    """Read with the fast and the exact reader; they must agree on rows and reports."""
    fast = read_netflix_ratings(path, **kwargs)
    exact = read_netflix_ratings(path, fast=False, **kwargs)
    pd.testing.assert_frame_equal(fast[0], exact[0])
    assert fast[1] == exact[1]
    return fast


def error_of(path: Path, **kwargs) -> BadInputError:
    """The error of both readers; they must name the same line, field, value and reason."""
    errors = []
    for fast in (True, False):
        with pytest.raises(BadInputError) as info_:
            read_netflix_ratings(path, fast=fast, **kwargs)
        errors.append(info_.value)
    a, b = errors
    assert (a.line, a.field, a.value, a.reason) == (b.line, b.field, b.value, b.reason)
    return a


# ---------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_movie_titles(data_dir):
    items, report = read_movie_titles(data_dir / "netflix-sample" / "movie_titles.txt")
    assert len(items) == 17_770 and report.rows == 17_770 and report.skipped == 0
    assert list(items.columns) == [Columns.Item, "year", "title"]
    assert items[Columns.Item].dtype == np.int64 and str(items["year"].dtype) == "Int64"
    np.testing.assert_array_equal(items[Columns.Item], np.arange(1, 17_771))
    assert items["year"].isna().sum() == 7
    assert items.loc[items[Columns.Item] == 4388, "year"].isna().all()
    titles = dict(zip(items[Columns.Item], items["title"], strict=True))
    assert titles[6483] == "Smokey Joe's Caf\u00e9"
    assert titles[72] == "At Home Among Strangers, A Stranger Among His Own"
    assert titles[394] == "20,000 Leagues Under the Sea"
    assert titles[4825] == 'Brazil: The "Love Conquers All" Version'
    assert titles[1] == "Dinosaur Planet"
    assert items["title"].str.contains(",").sum() == 336
    assert items["year"].min() == 1896 and items["year"].max() == 2005


@pytest.mark.realdata
def test_real_uw_subset(data_dir):
    path = data_dir / "netflix-sample" / "uw_subset" / "TestingRatings.txt"
    frame, report = read_rating_triples(path)
    assert list(frame.columns) == [Columns.User, Columns.Item, Columns.Rating]
    assert len(frame) == report.rows == 100_478
    assert frame[Columns.Item].nunique() == 1_701
    assert frame[Columns.User].nunique() == 27_555
    counts = frame[Columns.Rating].value_counts().sort_index()
    assert counts.to_dict() == {1.0: 5_356, 2.0: 11_447, 3.0: 32_460, 4.0: 32_096, 5.0: 19_119}
    assert frame[Columns.Rating].dtype == np.float32
    assert frame.iloc[0].tolist() == [573364, 8, 1.0]
    exact, _ = read_rating_triples(path, fast=False)
    pd.testing.assert_frame_equal(frame, exact)


@pytest.mark.realdata
def test_real_subset_through_the_registry(data_dir):
    data = load("netflix-subset", download=False)
    assert data.name == "netflix-subset"
    assert len(data.interactions) == 100_478 and len(data.items) == 17_770
    assert data.splits == {}
    ds = data.to_dataset()
    assert ds.n_interactions == 100_478
    assert ds.n_items == 17_770  # every titled movie is known, rated or not
    assert data.skipped == 0


def test_subset_with_its_training_half(tmp_path):
    sub = tmp_path / "uw_subset"
    sub.mkdir()
    write(sub, "8,573364,1.0\n8,2149668,3.0\n", "TrainingRatings.txt")
    write(sub, "30,573364,5.0\n", "TestingRatings.txt")
    write(tmp_path, "8,2004,Eight\n30,NULL,Thirty, The\n", "movie_titles.txt")
    data = load_netflix_subset(tmp_path)
    train, test = data.splits["uw"]
    assert len(train) == 2 and len(test) == 1 and len(data.interactions) == 3
    assert data.interactions[Columns.Item].tolist() == [8, 8, 30]
    assert data.items["title"].tolist() == ["Eight", "Thirty, The"]
    assert [r.rows for r in data.reports] == [2, 1, 2]


# ---------------------------------------------------------------------------- round trips
@pytest.fixture(scope="module")
def combined(tmp_path_factory):
    folder = tmp_path_factory.mktemp("combined")
    return write_netflix(folder, n_ratings=60_000, n_users=3_000, n_movies=250, seed=7,
                         n_files=3, probe_fraction=0.02)


@pytest.fixture(scope="module")
def per_movie(tmp_path_factory):
    folder = tmp_path_factory.mktemp("per_movie")
    return write_netflix(folder, n_ratings=20_000, n_users=1_500, n_movies=120, seed=8,
                         layout="per_movie", probe_fraction=0.0, n_qualifying=0)


def test_combined_round_trip(combined):
    frame, reports = read_netflix_ratings(combined.ratings_files)
    pd.testing.assert_frame_equal(frame, combined.ratings)
    assert list(frame.columns) == RATING_COLUMNS
    assert [r.rows for r in reports] == [
        int(combined.ratings[Columns.Item].isin(_movies_in(p)).sum())
        for p in combined.ratings_files]
    assert sum(r.rows for r in reports) == len(frame) and all(r.skipped == 0 for r in reports)


def _movies_in(path: Path) -> set[int]:
    return {int(line[:-1]) for line in path.read_text().split("\n") if line.endswith(":")}


@pytest.mark.parametrize("block_size", [1000, 100_000])
def test_combined_round_trip_in_small_blocks(combined, block_size):
    frame, _ = read_netflix_ratings(combined.ratings_files, block_size=block_size)
    pd.testing.assert_frame_equal(frame, combined.ratings)


def test_exact_reader_round_trip(combined):
    frame, reports = read_netflix_ratings(combined.ratings_files, fast=False)
    pd.testing.assert_frame_equal(frame, combined.ratings)
    assert sum(r.rows for r in reports) == len(frame)


def test_per_movie_round_trip(per_movie):
    assert len(per_movie.ratings_files) == 120
    assert per_movie.ratings_files[0].name == "mv_0000001.txt"
    folder = per_movie.folder / "training_set"
    for block_size in (1 << 26, 2048):
        frame, reports = read_netflix_ratings(folder, block_size=block_size)
        pd.testing.assert_frame_equal(frame, per_movie.ratings)
        assert len(reports) == 120
        counts = per_movie.ratings[Columns.Item].value_counts()
        assert [r.rows for r in reports] == [int(counts.get(m, 0)) for m in range(1, 121)]


def test_titles_probe_qualifying_round_trip(combined):
    items, report = read_movie_titles(combined.titles_file)
    pd.testing.assert_frame_equal(items, combined.titles)
    assert report.rows == 250
    assert items["title"].str.contains(",").any() and items["year"].isna().any()
    assert items["title"].str.contains("\u00e9").any()
    probe, _ = read_probe(combined.probe_file)
    pd.testing.assert_frame_equal(probe, combined.probe)
    qualifying, _ = read_qualifying(combined.qualifying_file)
    pd.testing.assert_frame_equal(qualifying, combined.qualifying)
    for reader, truth, path in ((read_probe, combined.probe, combined.probe_file),
                                (read_qualifying, combined.qualifying,
                                 combined.qualifying_file)):
        pd.testing.assert_frame_equal(reader(path, fast=False)[0], truth)


def test_load_netflix_with_probe_split(combined):
    data = load_netflix(combined.folder)
    pd.testing.assert_frame_equal(data.interactions, combined.ratings)
    pd.testing.assert_frame_equal(data.items, combined.titles)
    train, test = data.splits["probe"]
    assert len(test) == len(combined.probe) and len(train) + len(test) == len(combined.ratings)
    key = [Columns.User, Columns.Item]
    got = test[key].sort_values(key).reset_index(drop=True)
    want = combined.probe.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert not train.merge(test, on=key).shape[0]
    assert data.to_dataset().n_interactions == len(combined.ratings)


def test_load_netflix_per_movie_and_registry(per_movie):
    data = load("netflix-prize", path=per_movie.folder)
    assert data.name == "netflix-prize"
    pd.testing.assert_frame_equal(data.interactions, per_movie.ratings)
    assert data.splits == {}


def test_probe_pairs_must_be_ratings(tmp_path):
    write(tmp_path, GOOD, "combined_data_1.txt")
    write(tmp_path, "1,2001,One\n2,NULL,Two\n", "movie_titles.txt")
    write(tmp_path, "1:\n12\n2:\n12\n13\n", "probe.txt")
    with pytest.raises(BadInputError) as err:
        load_netflix(tmp_path)
    assert err.value.line == 4 and err.value.value == "12" and "probe.txt" in str(err.value)
    data = load_netflix(tmp_path, on_bad_lines="skip")
    train, test = data.splits["probe"]
    assert len(test) == 2 and len(train) == 2
    probe_report = data.reports[-1]
    assert probe_report.skipped == 1 and probe_report.examples[0].line == 4
    assert len(load_netflix(tmp_path, splits=False).splits) == 0


def test_registry_entries_say_where_to_get_the_data(tmp_path, monkeypatch):
    prize = info("netflix-prize")
    assert prize.source.remote is None and "Kaggle" in prize.source.manual
    assert prize.source.folder == "netflix-prize"
    assert info("netflix-subset").source.required == ("uw_subset/TestingRatings.txt",
                                                       "movie_titles.txt")
    monkeypatch.setenv("RECEXP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RECEXP_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError, match="no public download.*Kaggle"):
        locate(prize.source)


def test_missing_rating_files_are_named(tmp_path):
    write(tmp_path, "1,2001,One\n", "movie_titles.txt")
    with pytest.raises(FileNotFoundError, match="combined_data_1.txt"):
        load_netflix(tmp_path)


# ---------------------------------------------------------------------------- bad input
BAD_CASES = [
    # (description, line, new text, field, value, reason)
    ("wrong field count", 3, "12,4", None, "12,4", "expected 3 field(s)"),
    ("too many fields", 3, "12,4,2005-01-03,9", None, "12,4,2005-01-03,9",
     "expected 3 field(s)"),
    ("non-numeric rating", 3, "12,x,2005-01-03", Columns.Rating, "x", "not an integer"),
    ("fractional rating", 3, "12,3.5,2005-01-03", Columns.Rating, "3.5", "not an integer"),
    ("rating above 5", 3, "12,6,2005-01-03", Columns.Rating, "6", "above the largest"),
    ("rating below 1", 5, "11,0,2005-02-01", Columns.Rating, "0", "below the smallest"),
    ("empty rating", 3, "12,,2005-01-03", Columns.Rating, "", "missing value"),
    ("non-numeric user", 6, "x13,1,2005-02-02", Columns.User, "x13", "not an integer"),
    ("user 0", 6, "0,1,2005-02-02", Columns.User, "0", "below the smallest"),
    ("user with a space", 6, "13 ,1,2005-02-02", Columns.User, "13 ", "blank space"),
    ("impossible date", 3, "12,4,2005-02-30", Columns.Datetime, "2005-02-30", "not a date"),
    ("slashed date", 3, "12,4,2005/01/03", Columns.Datetime, "2005/01/03", "not a date"),
    ("year 0", 3, "12,4,0000-01-03", Columns.Datetime, "0000-01-03", "not a date"),
    ("bad movie id", 4, "2x:", Columns.Item, "2x", "not an integer"),
    ("movie id 0", 4, "0:", Columns.Item, "0", "below the smallest"),
    ("text after the colon", 4, "2:5", None, "2:5", "must be a 'MovieID:' line"),
    ("movie id above int32", 4, "2147483648:", Columns.Item, "2147483648", "above the largest"),
    ("user id above int32", 6, "2147483648,1,2005-02-02", Columns.User, "2147483648",
     "above the largest"),
    # pyarrow would end the line at the bare CR and read two good rows out of it.
    ("bare CR inside a line", 5, "11,5,2005-02-01\r14,2,2005-02-03", None,
     "11,5,2005-02-01\r14,2,2005-02-03", "expected 3 field(s)"),
]


@pytest.mark.parametrize("case", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_line_raises_naming_line_field_value(tmp_path, case):
    _, line, new, field, value, reason = case
    path = write(tmp_path, replace_line(GOOD, line, new))
    err = error_of(path)
    assert (err.line, err.field, err.value) == (line, field, value)
    assert reason in err.reason
    assert str(path) in str(err) and f"line {line}" in str(err) and repr(value) in str(err)


@pytest.mark.parametrize("case", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_line_is_skipped_and_reported(tmp_path, case):
    _, line, new, field, value, reason = case
    path = write(tmp_path, replace_line(GOOD, line, new))
    frame, (report,) = both_paths(path, on_bad_lines="skip")
    if line == 4:  # a bad 'MovieID:' line takes its two ratings with it
        expected, lines = GOOD_ROWS.iloc[:2], [4, 5, 6]
    else:
        drop = {3: 1, 5: 2, 6: 3}[line]
        expected, lines = GOOD_ROWS.drop(index=drop), [line]
    pd.testing.assert_frame_equal(frame, expected.reset_index(drop=True))
    assert report.skipped == len(lines) and report.rows == len(expected)
    assert [b.line for b in report.examples] == lines
    assert reason in report.examples[0].reason
    assert value in report.examples[0].text


def test_invalid_bytes_in_declared_encoding(tmp_path):
    data = GOOD.encode("ascii").replace(b"12,4,2005-01-03", b"12,4,2005-01-0\xff")
    path = write(tmp_path, data)
    err = error_of(path)
    assert err.line == 3 and err.field is None and "not valid ascii" in err.reason
    assert err.value == "12,4,2005-01-0\u00ff"
    frame, (report,) = both_paths(path, on_bad_lines="skip")
    pd.testing.assert_frame_equal(frame, GOOD_ROWS.drop(index=1).reset_index(drop=True))
    assert report.skipped == 1 and report.examples[0].line == 3


@pytest.mark.parametrize("data", [b"", b"\n\n", b"  \r\n\t\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n"])
@pytest.mark.parametrize("mode", ["error", "skip"])
def test_empty_file_is_an_error_in_both_modes(tmp_path, data, mode):
    path = write(tmp_path, data)
    for fast in (True, False):
        with pytest.raises(BadInputError, match="the file is empty") as err:
            read_netflix_ratings(path, on_bad_lines=mode, fast=fast)
        assert err.value.line is None and str(path) in str(err.value)


@pytest.mark.parametrize("mode", ["error", "skip"])
@pytest.mark.parametrize("variant", ["bom", "crlf", "bom+crlf", "no final newline",
                                     "blank lines", "trailing blank lines"])
def test_accepted_variants_read_the_same(tmp_path, mode, variant):
    data = GOOD
    if "crlf" in variant:
        data = data.replace("\n", "\r\n")
    if variant == "no final newline":
        data = data.rstrip("\n")
    if variant == "blank lines":
        data = "\n" + data.replace("1:\n", "1:\n\n").replace("2:\n", "\n2:\n")
    if variant == "trailing blank lines":
        data = data + "\n\r\n\n"
    raw = data.encode("ascii")
    if "bom" in variant:
        raw = b"\xef\xbb\xbf" + raw
    frame, (report,) = both_paths(write(tmp_path, raw), on_bad_lines=mode)
    pd.testing.assert_frame_equal(frame, GOOD_ROWS)
    assert report.skipped == 0 and report.rows == 4


def test_line_numbers_count_blank_and_crlf_lines(tmp_path):
    data = "\r\n" + GOOD.replace("\n", "\r\n").replace("13,1,", "13,9,")
    err = error_of(write(tmp_path, data))
    assert err.line == 7 and err.value == "9"


def test_unexpected_header_line(tmp_path):
    path = write(tmp_path, "CustomerID,Rating,Date\n" + GOOD)
    err = error_of(path)
    assert err.line == 1 and err.reason == "unexpected header line"
    assert "no header" in str(err) and "'CustomerID,Rating,Date'" in str(err)
    frame, (report,) = both_paths(path, on_bad_lines="skip")
    pd.testing.assert_frame_equal(frame, GOOD_ROWS)
    assert report.skipped == 1 and report.examples[0].line == 1


def test_rating_line_before_any_movie_line(tmp_path):
    path = write(tmp_path, "10,2,2005-01-01\n" + GOOD)
    err = error_of(path)
    assert err.line == 1 and "before any 'MovieID:' line" in err.reason
    assert err.value == "10,2,2005-01-01"
    frame, (report,) = both_paths(path, on_bad_lines="skip")
    pd.testing.assert_frame_equal(frame, GOOD_ROWS)
    assert report.skipped == 1


def test_each_file_must_start_with_a_movie_line(tmp_path):
    # The second per-movie file would silently inherit movie 1 if files were just chained.
    first = write(tmp_path, "1:\n11,3,2005-01-02\n", "mv_0000001.txt")
    second = write(tmp_path, "12,4,2005-01-03\n", "mv_0000002.txt")
    for fast in (True, False):
        with pytest.raises(BadInputError) as err:
            read_netflix_ratings([first, second], fast=fast)
        assert err.value.path == str(second) and err.value.line == 1


def test_all_lines_bad_is_an_error_even_when_skipping(tmp_path):
    path = write(tmp_path, "1:\n11,9,2005-01-02\n")
    with pytest.raises(BadInputError, match="no valid rows"):
        read_netflix_ratings(path, on_bad_lines="skip")


def test_bad_lines_deep_in_a_big_file(tmp_path, combined):
    """Line numbers stay file line numbers across blocks, and skipping drops only bad rows."""
    source = combined.ratings_files[1]
    lines = source.read_bytes().split(b"\n")
    data_lines = [k for k, text in enumerate(lines) if text and not text.endswith(b":")]
    bad = sorted({data_lines[len(data_lines) // 3], data_lines[-5], data_lines[200]})
    for k in bad:
        lines[k] = lines[k].replace(b",", b";", 1)
    path = write(tmp_path, b"\n".join(lines))
    err = error_of(path, block_size=4096)
    assert err.line == bad[0] + 1
    frame, (report,) = both_paths(path, on_bad_lines="skip", block_size=4096)
    assert [b.line for b in report.examples] == [k + 1 for k in bad]
    truth, _ = read_netflix_ratings(source)
    keep = np.ones(len(truth), bool)
    rows = np.searchsorted(data_lines, bad)  # data line k is row k of the file
    keep[rows] = False
    pd.testing.assert_frame_equal(frame, truth[keep].reset_index(drop=True))


def test_probe_and_qualifying_bad_lines(tmp_path):
    probe = write(tmp_path, "1:\n11\n12,3\n", "probe.txt")
    with pytest.raises(BadInputError) as err:
        read_probe(probe)
    assert err.value.line == 3 and "expected 1 field(s)" in err.value.reason
    frame, report = read_probe(probe, on_bad_lines="skip")
    assert frame[Columns.User].tolist() == [11] and report.skipped == 1
    qualifying = write(tmp_path, "1:\n11,2005-01-02\n12,2005-13-01\n", "qualifying.txt")
    with pytest.raises(BadInputError) as err:
        read_qualifying(qualifying, fast=True)
    assert (err.value.line, err.value.field, err.value.value) == (3, Columns.Datetime,
                                                                  "2005-13-01")


# ---------------------------------------------------------------------------- titles
def test_titles_split_on_the_first_two_commas_only(tmp_path):
    path = write(tmp_path, 'NULL'.join(["1,2003,Dinosaur Planet\n2,", ",Lights, Camera, "
                                        "Action!\n3,1997,\"Quoted\", really\n"]).encode(),
                 "movie_titles.txt")
    items, _ = read_movie_titles(path)
    assert items["title"].tolist() == ["Dinosaur Planet", "Lights, Camera, Action!",
                                       '"Quoted", really']
    assert items["year"].isna().tolist() == [False, True, False]


TITLE_CASES = [
    ("too few fields", "2,2004", 2, None, "expected MovieID,YearOfRelease,Title"),
    ("bad year", "2,20x4,Two", 2, "year", "not an integer"),
    ("year out of range", "2,3004,Two", 2, "year", "above the largest"),
    ("empty title", "2,2004,", 2, "title", "missing value"),
    ("bad id", "2a,2004,Two", 2, Columns.Item, "not an integer"),
    ("repeated id", "1,2004,Two", 2, Columns.Item, "MovieID repeats line 1"),
]


@pytest.mark.parametrize("case", TITLE_CASES, ids=[c[0] for c in TITLE_CASES])
def test_bad_title_lines(tmp_path, case):
    _, new, line, field, reason = case
    path = write(tmp_path, f"1,2003,One\n{new}\n3,NULL,Three\n", "movie_titles.txt")
    with pytest.raises(BadInputError) as err:
        read_movie_titles(path)
    assert (err.value.line, err.value.field) == (line, field) and reason in err.value.reason
    items, report = read_movie_titles(path, on_bad_lines="skip")
    assert items[Columns.Item].tolist() == [1, 3]
    assert report.skipped == 1 and report.examples[0].line == 2


def test_title_file_variants(tmp_path):
    body = "1,2003,Caf\u00e9, The\n2,NULL,Two\n"
    expected, _ = read_movie_titles(write(tmp_path, body.encode("latin-1"), "a.txt"))
    assert expected["title"].tolist() == ["Caf\u00e9, The", "Two"]
    for raw in (b"\xef\xbb\xbf" + body.encode("latin-1"),
                body.replace("\n", "\r\n").encode("latin-1")):
        got, _ = read_movie_titles(write(tmp_path, raw, "b.txt"))
        pd.testing.assert_frame_equal(got, expected)
    header = write(tmp_path, ("MovieID,YearOfRelease,Title\n" + body).encode("latin-1"),
                   "c.txt")
    with pytest.raises(BadInputError, match="unexpected header line") as err:
        read_movie_titles(header)
    assert err.value.line == 1
    got, report = read_movie_titles(header, on_bad_lines="skip")
    pd.testing.assert_frame_equal(got, expected)
    assert report.skipped == 1
    with pytest.raises(BadInputError, match="not valid utf-8") as err:
        read_movie_titles(write(tmp_path, body.encode("latin-1"), "d.txt"), encoding="utf-8")
    assert err.value.line == 1
    with pytest.raises(BadInputError, match="the file is empty"):
        read_movie_titles(write(tmp_path, b"\n", "e.txt"), on_bad_lines="skip")


# ---------------------------------------------------------------------------- triples
def test_triples_bad_lines(tmp_path):
    path = write(tmp_path, "MovieID,UserID,Rating\n8,573364,1.0\n8,2149668,6.0\n")
    with pytest.raises(BadInputError) as err:
        read_rating_triples(path)
    assert (err.value.line, err.value.field, err.value.value) == (1, Columns.Item, "MovieID")
    assert "header" in str(err.value)
    frame, report = read_rating_triples(path, on_bad_lines="skip")
    assert frame.values.tolist() == [[573364, 8, 1.0]] and report.skipped == 2
    spaced = write(tmp_path, "8, 573364,1.0\n", "spaced.txt")
    with pytest.raises(BadInputError, match="blank space around a value"):
        read_rating_triples(spaced)


# ---------------------------------------------------------------------------- fast == exact
_VALID = st.one_of(
    st.integers(1, 40).map(lambda m: f"{m}:"),
    st.tuples(st.integers(1, 99_999), st.integers(1, 5), st.dates()).map(
        lambda t: f"{t[0]},{t[1]},{t[2].isoformat()}"),
)
# Small edits of valid lines find the places where pyarrow is more lenient than Field.convert.
_EDIT = st.tuples(st.integers(0, 20),
                  st.sampled_from([" ", "\t", "\r", "+", "-", "0", "9", "x", ":", ",", ".",
                                   "\u00e9", "", "\n"]),
                  st.booleans())


def _edited(line_and_edits: tuple[str, list[tuple[int, str, bool]]]) -> str:
    line, edits = line_and_edits
    for pos, char, replace in edits:
        pos = min(pos, len(line))
        line = line[:pos] + char + line[pos + (1 if replace else 0):]
    return line


_LINE = st.tuples(_VALID, st.lists(_EDIT, max_size=1)).map(_edited)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_LINE, min_size=1, max_size=12), start=st.booleans(),
       crlf=st.booleans(), block_size=st.sampled_from([16, 64, 1 << 20]),
       mode=st.sampled_from(["error", "skip"]))
def test_fast_and_exact_readers_agree(tmp_path_factory, lines, start, crlf, block_size, mode):
    path = tmp_path_factory.mktemp("agree") / "ratings.txt"
    lines = (["7:"] if start else []) + lines
    path.write_bytes(("\r\n" if crlf else "\n").join(lines).encode("utf-8"))
    results = []
    for fast in (True, False):
        try:
            frame, reports = read_netflix_ratings(path, on_bad_lines=mode, fast=fast,
                                                  block_size=block_size)
            results.append(("ok", frame, reports))
        except BadInputError as exc:
            results.append(("error", exc.line, exc.field, exc.value, exc.reason))
    (kind_a, *a), (kind_b, *b) = results
    assert kind_a == kind_b
    if kind_a == "ok":
        pd.testing.assert_frame_equal(a[0], b[0])
        assert a[1] == b[1]
    else:
        assert a == b
