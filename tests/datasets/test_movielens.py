"""MovieLens: the real shared files, the predefined splits, and every kind of bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from recexp.columns import Columns
from recexp.datasets import BadInputError, DataNotFoundError, fetch, load
from recexp.datasets.movielens import load_movielens

pytestmark = pytest.mark.realdata


def test_ml100k_counts(ml100k):
    ratings = ml100k.interactions
    assert len(ratings) == 100_000
    assert ratings[Columns.User].nunique() == 943
    assert ratings[Columns.Item].nunique() == 1682
    counts = ratings[Columns.Rating].value_counts().sort_index().tolist()
    assert counts == [6110, 11370, 27145, 34174, 21201]
    assert ratings[Columns.Datetime].min().value // 10**9 == 874724710
    assert ratings[Columns.Datetime].max().value // 10**9 == 893286638


def test_ml100k_items_and_users(ml100k):
    items, users = ml100k.items, ml100k.users
    assert len(items) == 1682 and len(users) == 943
    # u.item is latin-1: "Misérables" must decode, not turn into mojibake.
    assert items["title"].str.contains("Misérables").any()
    toy = items.loc[items[Columns.Item] == 1].iloc[0]
    assert (toy["title"], toy["year"], toy["genres"]) == (
        "Toy Story (1995)", 1995, "Animation|Children's|Comedy")
    assert users["occupation"].nunique() == 21
    assert set(users["gender"]) == {"M", "F"}


def test_ml100k_predefined_splits(ml100k):
    sizes = {name: (len(train), len(test)) for name, (train, test) in ml100k.splits.items()}
    assert sizes == {**{f"u{k}": (80_000, 20_000) for k in range(1, 6)},
                     "ua": (90_570, 9_430), "ub": (90_570, 9_430)}
    train, test = ml100k.splits["u1"]
    pairs = set(zip(train[Columns.User], train[Columns.Item], strict=True))
    assert not pairs & set(zip(test[Columns.User], test[Columns.Item], strict=True))


def test_ml100k_dataset_id_round_trip(ml100k_dataset, ml100k):
    ds = ml100k_dataset
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (943, 1682, 100_000)
    back = ds.to_frame()
    np.testing.assert_array_equal(back[Columns.User], ml100k.interactions[Columns.User])
    np.testing.assert_array_equal(back[Columns.Item], ml100k.interactions[Columns.Item])
    matrix = ds.ratings
    first = ml100k.interactions.iloc[0]
    u = ds.users.to_internal([first[Columns.User]])[0]
    i = ds.items.to_internal([first[Columns.Item]])[0]
    assert matrix[u, i] == first[Columns.Rating]


def test_latest_small(data_dir):
    data = load("movielens-latest-small", download=False)
    assert len(data.interactions) == 100_836
    assert data.interactions[Columns.User].nunique() == 610
    assert data.interactions[Columns.Item].nunique() == 9724
    assert len(data.items) == 9742
    assert sorted(data.interactions[Columns.Rating].unique().tolist()) == \
        [x / 2 for x in range(1, 11)]
    # Titles with commas are CSV-quoted in movies.csv; they must survive intact.
    assert data.items["title"].str.contains(",").any()
    toy = data.items.loc[data.items[Columns.Item] == 1].iloc[0]
    assert toy["year"] == 1995 and "pixar" in toy["tags"].split("|")
    ds = data.to_dataset()
    assert ds.n_items == 9742  # movies without ratings are still known items


# ---------------------------------------------------------------- bad input, every case
@pytest.fixture
def ml_copy(tmp_path, data_dir):
    """A writable copy of ML-100K's small files plus a short u.data to corrupt."""
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in ("u.item", "u.user", "u.genre"):
        shutil.copy(data_dir / "ml-100k" / name, folder / name)
    lines = (data_dir / "ml-100k" / "u.data").read_bytes().splitlines(keepends=True)[:50]
    (folder / "u.data").write_bytes(b"".join(lines))
    return folder


def corrupt(folder, line: int, new: bytes):
    path = folder / "u.data"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[line - 1] = new
    path.write_bytes(b"".join(lines))


BAD_U_DATA = [
    (b"196\t242\t3\n", None, "expected 4 fields"),
    (b"196\t242\tgood\t881250949\n", "rating", "not a number"),
    (b"196\t242\t6\t881250949\n", "rating", "above"),
    (b"196\t242\t3\t1997-12-04\n", "timestamp", "not an integer"),
    (b"196\t242\t3\t-5\n", "timestamp", "below"),
    (b"19\xff6\t242\t3\t881250949\n", None, "not valid utf-8"),
]


@pytest.mark.parametrize(("bad", "field", "words"), BAD_U_DATA)
def test_bad_u_data_raises_with_place(ml_copy, bad, field, words):
    corrupt(ml_copy, 17, bad)
    with pytest.raises(BadInputError) as info:
        load_movielens(ml_copy, splits=False)
    err = info.value
    assert err.path.endswith("u.data") and err.line == 17 and err.field == field
    assert words in str(err)


@pytest.mark.parametrize(("bad", "field", "words"), BAD_U_DATA)
def test_bad_u_data_skipped_and_reported(ml_copy, bad, field, words):
    corrupt(ml_copy, 17, bad)
    data = load_movielens(ml_copy, splits=False, on_bad_lines="skip")
    assert len(data.interactions) == 49 and data.skipped == 1
    (report,) = [r for r in data.reports if r.skipped]
    assert report.examples[0].line == 17 and words in report.examples[0].reason


def test_header_line_is_named(ml_copy):
    path = ml_copy / "u.data"
    path.write_bytes(b"user_id\titem_id\trating\ttimestamp\n" + path.read_bytes())
    with pytest.raises(BadInputError, match=r"line 1: field 'user_id' = 'user_id'.*header"):
        load_movielens(ml_copy, splits=False)


def test_empty_u_data(ml_copy):
    (ml_copy / "u.data").write_bytes(b"")
    with pytest.raises(BadInputError, match=r"u\.data: the file is empty"):
        load_movielens(ml_copy, splits=False)


def test_bom_and_crlf_give_the_same_table(ml_copy):
    clean = load_movielens(ml_copy, splits=False).interactions
    path = ml_copy / "u.data"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    odd = load_movielens(ml_copy, splits=False).interactions
    assert odd.equals(clean)


def test_bad_latin1_in_u_item_is_not_silently_wrong(ml_copy):
    # u.item is latin-1 by definition, so every byte decodes; a broken field count still fails.
    path = ml_copy / "u.item"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[9] = lines[9].replace(b"|", b"", 1)
    path.write_bytes(b"".join(lines))
    with pytest.raises(BadInputError, match=r"u\.item, line 10: .*expected 24 fields"):
        load_movielens(ml_copy, splits=False)


def test_csv_release_bad_header_and_bad_rating(tmp_path, data_dir):
    folder = tmp_path / "ml-latest-small"
    shutil.copytree(data_dir / "ml-latest-small", folder)
    path = folder / "ratings.csv"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[5] = b"1,50,five,964982931\r\n"
    path.write_bytes(b"".join(lines))
    with pytest.raises(BadInputError, match=r"ratings\.csv, line 6: field 'rating' = 'five'"):
        load_movielens(folder, variant="csv")
    path.write_bytes(b"user,movie,rating,timestamp\r\n" + b"".join(lines[1:5]))
    with pytest.raises(BadInputError, match="unexpected header"):
        load_movielens(folder, variant="csv")


def test_offline_and_absent_says_what_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("RECEXP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RECEXP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RECEXP_OFFLINE", "1")
    with pytest.raises(DataNotFoundError) as info:
        fetch("movielens-1m")
    message = str(info.value)
    assert "ratings.dat" in message and str(tmp_path / "ml-1m") in message
