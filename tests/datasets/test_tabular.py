"""Tests of recexp.datasets.tabular: CSV/TSV/Parquet round trips and every error it names.

Each round trip writes a known table here, reads it back through a column mapping and compares
with what was written; each error case writes one bad value and checks the message names the
file, the line (Parquet: row), the column and the value, and that ``on_bad_lines="skip"`` drops
exactly that line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recexp.columns import Columns
from recexp.datasets import BadInputError, SourceData
from recexp.datasets.tabular import MAPPABLE, load_table, read_attributes, read_table

MAP = {"user_id": "customer", "item_id": "sku", "rating": "stars", "timestamp": "ts"}


def _known(n: int = 12) -> pd.DataFrame:
    """The table every round trip writes: text users, integer items, ratings, epochs."""
    return pd.DataFrame({
        "customer": [f"c{i % 4}" for i in range(n)],
        "sku": [100 + (i * 7) % 9 for i in range(n)],
        "stars": [0.5 * (1 + i % 10) for i in range(n)],
        "ts": [1_600_000_000 + 3600 * i for i in range(n)],
        "note": [f"n{i}" if i % 3 else "" for i in range(n)],
    })


def _expected(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        Columns.User: frame["customer"].astype("str"),
        Columns.Item: frame["sku"].astype("int64"),
        Columns.Rating: frame["stars"].astype("float32"),
        Columns.Datetime: pd.to_datetime(frame["ts"], unit="s").astype("datetime64[s]"),
    })


def _write_delimited(path, frame: pd.DataFrame, sep: str, *, header: bool = True) -> None:
    lines = [sep.join(frame.columns)] if header else []
    lines += [sep.join(str(v) for v in row) for row in frame.itertuples(index=False)]
    path.write_text("\n".join(lines) + "\n")


def _text(path, content: str | bytes):
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("suffix, sep", [(".csv", ","), (".tsv", "\t")])
def test_delimited_round_trip(tmp_path, suffix, sep):
    known = _known()
    path = tmp_path / f"orders{suffix}"
    _write_delimited(path, known, sep)
    data = load_table(path, columns=MAP)
    assert isinstance(data, SourceData) and data.name == "orders"
    pd.testing.assert_frame_equal(data.interactions, _expected(known))
    assert data.reports[0].rows == len(known) and data.skipped == 0


def test_parquet_round_trip(tmp_path):
    known = _known()
    path = tmp_path / "orders.parquet"
    known.to_parquet(path)
    data = load_table(path, columns=MAP)
    pd.testing.assert_frame_equal(data.interactions, _expected(known))


def test_parquet_is_recognised_by_content(tmp_path):
    known = _known()
    path = tmp_path / "orders.dat"
    known.to_parquet(path)
    frame, _ = read_table(path, columns=MAP)
    pd.testing.assert_frame_equal(frame, _expected(known))


def test_parquet_native_timestamps_and_nullable_ints(tmp_path):
    known = _known()
    stamps = pd.to_datetime(known["ts"], unit="s")
    table = known.assign(ts=stamps.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris"),
                         sku=known["sku"].astype("Int64"),
                         weight=np.arange(len(known), dtype=np.float64),
                         label=[i % 2 for i in range(len(known))])
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    frame, _ = read_table(path, columns=MAP)
    assert list(frame.columns) == [Columns.User, Columns.Item, Columns.Rating, Columns.Weight,
                                   Columns.Datetime, Columns.Label]
    np.testing.assert_array_equal(frame[Columns.Datetime].to_numpy(),
                                  stamps.to_numpy(dtype="datetime64[s]"))
    assert frame[Columns.Label].dtype == np.int8 and frame[Columns.Weight].dtype == np.float32
    assert frame[Columns.Item].dtype == np.int64


def test_vocabulary_names_need_no_mapping(tmp_path):
    path = _text(tmp_path / "r.csv", "user_id,item_id,rating,label,other\nu,i,3,1,x\nv,j,4,0,y\n")
    frame, _ = read_table(path)
    assert list(frame.columns) == [Columns.User, Columns.Item, Columns.Rating, Columns.Label]
    assert frame[Columns.Label].tolist() == [1, 0]


def test_text_timestamps_with_a_format_and_offsets(tmp_path):
    path = _text(tmp_path / "t.csv", "customer,sku,ts\n"
                 "a,1,2020-01-02 03:04:05\nb,2,2021-12-31 23:59:59\n")
    frame, _ = read_table(path, columns={"user_id": "customer", "item_id": "sku",
                                         "timestamp": "ts"},
                          timestamp_format="%Y-%m-%d %H:%M:%S")
    assert frame[Columns.Datetime].tolist() == [pd.Timestamp("2020-01-02 03:04:05"),
                                                pd.Timestamp("2021-12-31 23:59:59")]
    iso = _text(tmp_path / "iso.csv", "customer,sku,ts\n"
                "a,1,2020-01-02T03:04:05+02:00\nb,2,2020-01-02T03:04:05Z\n")
    frame, _ = read_table(iso, columns={"user_id": "customer", "item_id": "sku",
                                        "timestamp": "ts"}, timestamp_format="ISO8601")
    assert frame[Columns.Datetime].dtype == "datetime64[s]"
    assert frame[Columns.Datetime].tolist() == [pd.Timestamp("2020-01-02 01:04:05"),
                                                pd.Timestamp("2020-01-02 03:04:05")]


def test_timestamp_units(tmp_path):
    path = _text(tmp_path / "t.csv", "u,i,ts\na,1,1600000000123\nb,2,1600000001999\n")
    frame, _ = read_table(path, columns={"user_id": "u", "item_id": "i", "timestamp": "ts"},
                          timestamp_unit="ms")
    assert frame[Columns.Datetime].tolist() == [pd.Timestamp(1_600_000_000, unit="s"),
                                                pd.Timestamp(1_600_000_001, unit="s")]


def test_headerless_file_with_names(tmp_path):
    known = _known()
    path = tmp_path / "h.tsv"
    _write_delimited(path, known, "\t", header=False)
    frame, _ = read_table(path, header=False, names=list(known.columns), columns=MAP)
    pd.testing.assert_frame_equal(frame, _expected(known))
    with pytest.raises(ValueError, match="needs names"):
        read_table(path, header=False, columns=MAP)


def test_explicit_separator_for_other_suffixes(tmp_path):
    known = _known()
    path = tmp_path / "orders.txt"
    _write_delimited(path, known, ";")
    with pytest.raises(ValueError, match="pass sep="):
        read_table(path, columns=MAP)
    frame, _ = read_table(path, columns=MAP, sep=";")
    pd.testing.assert_frame_equal(frame, _expected(known))


def test_quoted_csv_fields(tmp_path):
    path = _text(tmp_path / "q.csv", 'user,item,comment\n"a, b",1,"say ""hi"""\nc,2,x\n')
    frame, _ = read_table(path, columns={"user_id": "user", "item_id": "item"},
                          keep=["comment"])
    assert frame[Columns.User].tolist() == ["a, b", "c"]
    assert frame["comment"].tolist() == ['say "hi"', "x"]


def test_id_types(tmp_path):
    path = _text(tmp_path / "ids.csv", "u,i\n007,1\n7,2\n")
    auto, _ = read_table(path, columns={"user_id": "u", "item_id": "i"})
    assert auto[Columns.User].tolist() == ["007", "7"]  # ints would merge two users
    assert auto[Columns.Item].dtype == np.int64
    as_str, _ = read_table(path, columns={"user_id": "u", "item_id": "i"}, id_dtype="str")
    assert as_str[Columns.Item].tolist() == ["1", "2"]
    as_int, _ = read_table(path, columns={"user_id": "u", "item_id": "i"}, id_dtype="int")
    assert as_int[Columns.User].tolist() == [7, 7]
    bad = _text(tmp_path / "bad.csv", "u,i\n1,2\n3,4x\n")
    with pytest.raises(BadInputError, match="line 3: field 'i' = '4x': not an integer"):
        read_table(bad, columns={"user_id": "u", "item_id": "i"}, id_dtype="int")
    frame, report = read_table(bad, columns={"user_id": "u", "item_id": "i"}, id_dtype="int",
                               on_bad_lines="skip")
    assert frame[Columns.Item].tolist() == [2] and report.examples[0].line == 3


def test_bom_and_crlf(tmp_path):
    known = _known()
    plain = tmp_path / "p.csv"
    _write_delimited(plain, known, ",")
    both = _text(tmp_path / "b.csv",
                 b"\xef\xbb\xbf" + plain.read_text().replace("\n", "\r\n").encode())
    for mode in ("error", "skip"):
        frame, report = read_table(both, columns=MAP, on_bad_lines=mode)
        pd.testing.assert_frame_equal(frame, _expected(known))
        assert report.skipped == 0


def test_attribute_tables(tmp_path):
    ratings = _text(tmp_path / "ratings.csv", "uid,book_id,rating\n1,10,4\n2,11,5\n2,10,3\n")
    books = _text(tmp_path / "books.csv", 'book_id,title,year,price,isbn\n'
                  '10,"Dune, Part One",1965,9.5,0441013597\n11,Emma,,12,0141439580\n'
                  '12,Never rated,2001,7.25,X\n')
    users = tmp_path / "users.parquet"
    pd.DataFrame({"uid": ["01", "2"], "age": [30, 41]}).to_parquet(users)
    data = load_table(ratings, columns={"user_id": "uid", "item_id": "book_id"},
                      items=books, users=users)
    items = data.items
    assert list(items.columns) == [Columns.Item, "title", "year", "price", "isbn"]
    assert items[Columns.Item].tolist() == [10, 11, 12]
    assert items["title"].tolist() == ["Dune, Part One", "Emma", "Never rated"]
    assert str(items["year"].dtype) == "Int64" and pd.isna(items["year"].iloc[1])
    assert items["price"].dtype == np.float64
    assert items["isbn"].tolist() == ["0441013597", "0141439580", "X"]  # stays text
    # "01" keeps the users' ids text while the ratings' are integers: both become text.
    assert data.users[Columns.User].tolist() == ["01", "2"]
    assert data.interactions[Columns.User].tolist() == ["1", "2", "2"]
    assert data.users["age"].tolist() == [30, 41]
    ds = data.to_dataset()
    assert ds.n_items == 3  # the never-rated book is known


def test_read_attributes_refuses_repeated_ids(tmp_path):
    path = _text(tmp_path / "items.csv", "item_id,name\n1,a\n2,b\n1,c\n")
    for mode in ("error", "skip"):
        with pytest.raises(BadInputError, match="appears on 2 rows") as caught:
            read_attributes(path, on_bad_lines=mode)
        assert caught.value.field == "item_id" and caught.value.value == "1"


def test_read_attributes_missing_id(tmp_path):
    path = _text(tmp_path / "items.csv", "item_id,name\n1,a\n,b\n3,c\n")
    with pytest.raises(BadInputError, match="line 3: field 'item_id' = '': missing value"):
        read_attributes(path)
    frame, report = read_attributes(path, on_bad_lines="skip")
    assert frame[Columns.Item].tolist() == [1, 3] and report.skipped == 1


def test_read_attributes_from_parquet(tmp_path):
    path = tmp_path / "books.parquet"
    pd.DataFrame({"book_id": pd.array([10, 11, None, 12], dtype="Int64"),
                  "title": ["a", "b", "c", "d"], "year": [2000, 2001, 2002, 2003]}
                 ).to_parquet(path)
    with pytest.raises(BadInputError, match="missing value") as caught:
        read_attributes(path, id_column="book_id")
    assert caught.value.field == "book_id" and "row 3" in str(caught.value)
    frame, report = read_attributes(path, id_column="book_id", on_bad_lines="skip")
    assert list(frame.columns) == [Columns.Item, "title", "year"]
    assert frame[Columns.Item].tolist() == [10, 11, 12] and frame[Columns.Item].dtype == "int64"
    assert frame["title"].tolist() == ["a", "b", "d"] and frame["year"].dtype == "int64"
    assert (report.rows, report.skipped, report.examples[0].line) == (3, 1, 3)
    frame, _ = read_attributes(path, key=Columns.User, id_column="book_id", keep=["year"],
                               on_bad_lines="skip", id_dtype="str")
    assert list(frame.columns) == [Columns.User, "year"]
    assert frame[Columns.User].tolist() == ["10", "11", "12"]
    with pytest.raises(BadInputError, match="no column 'titel'"):
        read_attributes(path, id_column="book_id", keep=["titel"])


# ---------------------------------------------------------------------------- mapping errors
def test_mapped_column_missing_names_the_nearest(tmp_path):
    known = _known()
    csv = tmp_path / "o.csv"
    _write_delimited(csv, known, ",")
    parquet = tmp_path / "o.parquet"
    known.to_parquet(parquet)
    for path in (csv, parquet):
        with pytest.raises(BadInputError, match="no column 'star'") as caught:
            read_table(path, columns={**MAP, "rating": "star"})
        assert "nearest: 'stars'" in str(caught.value) and str(path) in str(caught.value)
        assert caught.value.value == "star"


def test_required_column_absent(tmp_path):
    path = _text(tmp_path / "r.csv", "userId,movieId\n1,2\n")
    with pytest.raises(BadInputError, match="no column for 'user_id'.*nearest: 'userId'"):
        read_table(path)


def test_broken_parquet_file(tmp_path):
    path = _text(tmp_path / "t.parquet", "user_id,item_id\n1,2\n")
    with pytest.raises(BadInputError, match="not a readable Parquet file") as caught:
        read_table(path)
    assert caught.value.path == str(path)


def test_unknown_mapping_key(tmp_path):
    path = _text(tmp_path / "r.csv", "u,i,r\n1,2,3\n")
    with pytest.raises(ValueError, match="did you mean 'rating'"):
        read_table(path, columns={"user_id": "u", "item_id": "i", "ratings": "r"})
    with pytest.raises(ValueError, match="more than one name"):
        read_table(path, columns={"user_id": "u", "item_id": "u"})
    with pytest.raises(TypeError, match="must be a column name"):
        read_table(path, columns={"user_id": 0, "item_id": "i"})
    assert set(MAPPABLE) >= set(Columns.Interactions)


def test_keep_must_name_other_columns(tmp_path):
    path = _text(tmp_path / "r.csv", "u,i,extra\n1,2,x\n")
    with pytest.raises(BadInputError, match="no column 'extr'.*nearest: 'extra'"):
        read_table(path, columns={"user_id": "u", "item_id": "i"}, keep=["extr"])
    with pytest.raises(ValueError, match="already a mapped column"):
        read_table(path, columns={"user_id": "u", "item_id": "i"}, keep=["u"])


@pytest.mark.parametrize("mode", ["error", "skip"])
@pytest.mark.parametrize("content, fragment", [
    (b"", "the file is empty"),
    (b"\xef\xbb\xbf\r\n", "the file is empty"),
    (b"u,i,u\n1,2,3\n", "repeats a column name"),
    (b"\nu,i\n1,2\n", "first line should be the header"),
], ids=["empty", "bom only", "repeated name", "blank header"])
def test_file_level_errors_in_both_modes(tmp_path, mode, content, fragment):
    path = _text(tmp_path / "bad.csv", content)
    with pytest.raises(BadInputError, match=fragment):
        read_table(path, columns={"user_id": "u", "item_id": "i"}, on_bad_lines=mode)


# ---------------------------------------------------------------------------- line errors
HEADER = "customer,sku,stars,ts"
GOOD = ["c1,10,4.5,1600000000", "c2,11,3,1600000100", "c3,12,1,1600000200",
        "c4,13,2,1600000300", "c5,14,5,1600000400"]

# (name, bad line placed at line 4, field, value, reason, extra read options)
LINE_CASES = [
    ("non-numeric rating", "c9,10,good,1600000000", "stars", "good", "not a number", {}),
    ("missing rating", "c9,10,,1600000000", "stars", "", "missing value", {}),
    ("rating out of range", "c9,10,7,1600000000", "stars", "7", "above the largest", {
        "rating_range": (0.5, 5.0)}),
    ("missing user id", ",10,4,1600000000", "customer", "", "missing value", {}),
    ("missing item id", "c9,,4,1600000000", "sku", "", "missing value", {}),
    ("fractional epoch", "c9,10,4,1600000000.5", "ts", "1600000000.5", "not an integer", {}),
    ("text timestamp without format", "c9,10,4,2020-01-01", "ts", "2020-01-01",
     "timestamp_format=", {}),
    ("unparseable timestamp", "c9,10,4,2020-02-30", "ts", "2020-02-30",
     "not a timestamp in the format", {"timestamp_format": "%Y-%m-%d"}),
]


def _lines_file(tmp_path, bad: str, *, timestamp_format: str | None = None):
    good = GOOD
    if timestamp_format is not None:
        good = [",".join(g.split(",")[:3] + [f"2020-01-0{k + 1}"]) for k, g in enumerate(GOOD)]
    lines = [HEADER, good[0], good[1], bad, good[2], good[3], good[4]]
    return _text(tmp_path / "bad.csv", "\n".join(lines) + "\n")


@pytest.mark.parametrize("case", LINE_CASES, ids=[c[0] for c in LINE_CASES])
def test_bad_line_error_names_line_field_value(tmp_path, case):
    _, bad, field, value, reason, options = case
    path = _lines_file(tmp_path, bad, timestamp_format=options.get("timestamp_format"))
    with pytest.raises(BadInputError) as caught:
        read_table(path, columns=MAP, **options)
    err = caught.value
    assert (err.line, err.field, err.value) == (4, field, value)
    assert f"{path}, line 4: field {field!r} = {value!r}" in str(err)
    assert reason in str(err)


@pytest.mark.parametrize("case", LINE_CASES, ids=[c[0] for c in LINE_CASES])
def test_bad_line_skip_drops_exactly_that_line(tmp_path, case):
    _, bad, field, value, reason, options = case
    path = _lines_file(tmp_path, bad, timestamp_format=options.get("timestamp_format"))
    frame, report = read_table(path, columns=MAP, on_bad_lines="skip", **options)
    assert frame[Columns.User].tolist() == ["c1", "c2", "c3", "c4", "c5"]
    assert report.skipped == 1 and report.examples[0].line == 4
    assert report.rows == 5


def test_missing_id_without_any_other_text_column(tmp_path):
    # Regression: with no nullable text column, pyarrow kept "" and the fast path let an empty
    # id through while the line reader rejected it (fixed in _parse: strings_can_be_null).
    path = _text(tmp_path / "ids.csv", "u,i\na,1\n,2\nc,3\n")
    with pytest.raises(BadInputError, match="line 3: field 'u' = '': missing value"):
        read_table(path, columns={"user_id": "u", "item_id": "i"})
    frame, report = read_table(path, columns={"user_id": "u", "item_id": "i"},
                               on_bad_lines="skip")
    assert frame[Columns.User].tolist() == ["a", "c"] and report.skipped == 1


def test_quoted_empty_id_is_missing(tmp_path):
    # Regression: pyarrow kept a quoted "" as an empty string, so the fast path let it through
    # (fixed in _parse: quoted_strings_can_be_null).
    path = _text(tmp_path / "q.csv", 'u,i,c\n"",1,x\na,2,""\n')
    with pytest.raises(BadInputError, match="line 2: field 'u' = '': missing value"):
        read_table(path, columns={"user_id": "u", "item_id": "i"})
    frame, report = read_table(path, columns={"user_id": "u", "item_id": "i"}, keep=["c"],
                               on_bad_lines="skip")
    assert frame[Columns.User].tolist() == ["a"] and report.examples[0].line == 2
    assert frame["c"].isna().all()  # a quoted "" in a nullable column is missing, as unquoted


def test_wrong_field_count_and_bad_bytes(tmp_path):
    path = _text(tmp_path / "b.csv", b"u,i,r\na,1,2\nb,2\nc,3,\xff\n")
    with pytest.raises(BadInputError, match="line 3: .*expected 3 fields"):
        read_table(path, columns={"user_id": "u", "item_id": "i", "rating": "r"})
    frame, report = read_table(path, columns={"user_id": "u", "item_id": "i", "rating": "r"},
                               on_bad_lines="skip")
    assert frame[Columns.User].tolist() == ["a"] and report.skipped == 2
    assert [b.line for b in report.examples] == [3, 4]
    assert "bytes not valid utf-8" in report.examples[1].reason


def test_label_must_be_zero_or_one(tmp_path):
    path = _text(tmp_path / "l.csv", "u,i,label\na,1,1\nb,2,2\n")
    with pytest.raises(BadInputError, match="line 3: field 'label' = '2'"):
        read_table(path, columns={"user_id": "u", "item_id": "i"})


def test_all_bad_rows_is_an_error_in_skip_mode(tmp_path):
    path = _text(tmp_path / "b.csv", "u,i,r\na,1,x\nb,2,y\n")
    with pytest.raises(BadInputError, match="no valid rows"):
        read_table(path, columns={"user_id": "u", "item_id": "i", "rating": "r"},
                   on_bad_lines="skip")


# ---------------------------------------------------------------------------- Parquet errors
PARQUET_CASES = [
    ("non-numeric rating", {"stars": ["4", "x", "5", "1"]}, "stars", "x", "not a number"),
    ("missing rating", {"stars": [4.0, None, 5.0, 1.0]}, "stars", "", "missing value"),
    ("missing user id", {"customer": ["a", None, "c", "d"]}, "customer", "", "missing value"),
    ("fractional item id", {"sku": [1.0, 2.5, 3.0, 4.0]}, "sku", "2.5", "not an integer id"),
    ("unparseable timestamp", {"ts": ["2020-01-01", "soon", "2020-01-03", "2020-01-04"]},
     "ts", "soon", "not a timestamp"),
    ("fractional epoch", {"ts": [1.6e9, 1.6e9 + 0.5, 1.6e9, 1.6e9]}, "ts", "1600000000.5",
     "not a whole number"),
    ("missing timestamp", {"ts": pd.to_datetime(["2020-01-01", None, "2020-01-03",
                                                 "2020-01-04"])}, "ts", "", "missing value"),
]


def _parquet(tmp_path, change: dict) -> object:
    table = pd.DataFrame({"customer": ["a", "b", "c", "d"], "sku": [1, 2, 3, 4],
                          "stars": [4.0, 3.0, 5.0, 1.0],
                          "ts": [1_600_000_000 + k for k in range(4)]})
    for name, values in change.items():
        table[name] = values
    path = tmp_path / "bad.parquet"
    table.to_parquet(path)
    return path


@pytest.mark.parametrize("case", PARQUET_CASES, ids=[c[0] for c in PARQUET_CASES])
def test_parquet_bad_row_in_both_modes(tmp_path, case):
    _, change, field, value, reason = case
    path = _parquet(tmp_path, change)
    with pytest.raises(BadInputError) as caught:
        read_table(path, columns=MAP)
    err = caught.value
    assert (err.field, err.value) == (field, value)
    assert reason in str(err) and "row 2" in str(err) and str(path) in str(err)
    frame, report = read_table(path, columns=MAP, on_bad_lines="skip")
    assert frame[Columns.User].tolist() == ["a", "c", "d"]
    assert report.skipped == 1 and report.examples[0].line == 2 and report.rows == 3


# ---------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_goodbooks_ratings_sample(data_dir):
    path = data_dir / "goodbooks-10k" / "samples" / "ratings.csv"
    data = load_table(path, columns={"item_id": "book_id"})
    frame = data.interactions
    lines = path.read_text().splitlines()
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:]]
    assert header == ["user_id", "book_id", "rating"]
    assert len(frame) == len(rows) == 99
    assert list(frame.columns) == [Columns.User, Columns.Item, Columns.Rating]
    assert frame[Columns.User].tolist() == [int(r[0]) for r in rows]
    assert frame[Columns.Item].tolist() == [int(r[1]) for r in rows]
    assert frame[Columns.Rating].tolist() == [float(r[2]) for r in rows]
    assert frame[Columns.Rating].between(1, 5).all()
    ds = data.to_dataset()
    assert ds.n_interactions == 99


@pytest.mark.realdata
def test_goodbooks_with_book_attributes(data_dir):
    folder = data_dir / "goodbooks-10k"
    data = load_table(folder / "samples" / "ratings.csv", columns={"item_id": "book_id"},
                      items=folder / "books.csv")
    items = data.items
    assert len(items) == 10_000 and items[Columns.Item].is_unique
    assert set(data.interactions[Columns.Item]) <= set(items[Columns.Item])
    first = items.set_index(Columns.Item).loc[1]
    assert first["title"] == "The Hunger Games (The Hunger Games, #1)"
    assert first["authors"] == "Suzanne Collins"
    assert items["average_rating"].dtype == np.float64
