"""MovieLens (GroupLens): 100K, 1M and the CSV releases (latest-small, latest, 20M, 25M, 32M).

All releases come out alike: interactions ``user_id, item_id, rating, timestamp``; items
``item_id, title, year, genres`` (genres ``|``-separated; ``tags`` too where the release has a
tags file); users ``user_id, age, gender, occupation, zip, zip_prefix`` where it has users.
ML-100K's predefined splits ``u1``..``u5``, ``ua``, ``ub`` load as ``SourceData.splits``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from recexp.columns import Columns
from recexp.datasets._base import DatasetInfo, SourceData, register
from recexp.datasets._fetch import Remote, Source
from recexp.datasets._parse import BadInputError, Field, OnBadLines, ParseReport, read_delimited

__all__ = ["load_movielens", "read_ratings"]

_GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
_PREDEFINED_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")

RATING_FIELDS = (
    Field(Columns.User, "int", low=0),
    Field(Columns.Item, "int", low=0),
    Field(Columns.Rating, "float", low=0.5, high=5.0),
    Field(Columns.Datetime, "epoch", low=0),
)
_YEAR = re.compile(r"\((\d{4})\)\s*$")


def read_ratings(path: str | Path, *, variant: str = "100k",
                 on_bad_lines: OnBadLines = "error") -> tuple[pd.DataFrame, ParseReport]:
    """Read one MovieLens ratings file (``u.data``-style, ``ratings.dat`` or ``ratings.csv``)."""
    if variant == "100k":
        return read_delimited(path, RATING_FIELDS, delimiter="\t", on_bad_lines=on_bad_lines)
    if variant == "1m":
        # pyarrow takes one-character delimiters: "::" reads as ":" with empty fields between.
        sep = [Field(f"::{k}", "str", nullable=True) for k in range(3)]
        fields = [RATING_FIELDS[0], sep[0], RATING_FIELDS[1], sep[1], RATING_FIELDS[2], sep[2],
                  RATING_FIELDS[3]]
        frame, report = read_delimited(path, fields, delimiter=":", encoding="latin-1",
                                       on_bad_lines=on_bad_lines)
        return _drop_separators(path, frame), report
    return read_delimited(path, RATING_FIELDS, delimiter=",",
                          header=("userId", "movieId", "rating", "timestamp"),
                          on_bad_lines=on_bad_lines)


def _drop_separators(path: str | Path, frame: pd.DataFrame) -> pd.DataFrame:
    seps = [c for c in frame.columns if c.startswith("::")]
    for c in seps:
        filled = frame[c].notna()
        if filled.any():
            row = int(np.flatnonzero(filled.to_numpy())[0])
            raise BadInputError(path, None, "fields must be separated by '::'",
                                value=str(frame[c].iloc[row]),
                                hint=f"row {row + 1} has a single ':' between fields")
    return frame.drop(columns=seps)


def _items_100k(folder: Path, on_bad_lines: OnBadLines) -> tuple[pd.DataFrame, ParseReport]:
    genre_names = _genre_names(folder / "u.genre")
    fields = [Field(Columns.Item, "int", low=0), Field("title", "str"),
              Field("release_date", "str", nullable=True),
              Field("video_release_date", "str", nullable=True),
              Field("imdb_url", "str", nullable=True)]
    fields += [Field(f"g{k}", "int", dtype="int8", low=0, high=1)
               for k in range(len(genre_names))]
    frame, report = read_delimited(folder / "u.item", fields, delimiter="|",
                                   encoding="latin-1", on_bad_lines=on_bad_lines)
    flags = frame[[f"g{k}" for k in range(len(genre_names))]].to_numpy(dtype=bool)
    names = np.asarray(genre_names, dtype=object)
    genres = ["|".join(names[row]) for row in flags]
    dates = pd.to_datetime(frame["release_date"], format="%d-%b-%Y", errors="coerce")
    items = pd.DataFrame({
        Columns.Item: frame[Columns.Item],
        "title": frame["title"],
        "year": dates.dt.year.astype("Int64"),
        "genres": pd.Series(genres, dtype="str"),
    })
    return items, report


def _genre_names(path: Path) -> list[str]:
    fields = [Field("name", "str"), Field("code", "int", low=0)]
    frame, _ = read_delimited(path, fields, delimiter="|")
    if not np.array_equal(frame["code"].to_numpy(), np.arange(len(frame))):
        raise BadInputError(path, None, "genre codes must run 0, 1, 2, ... in order")
    return frame["name"].tolist()


def _users_100k(folder: Path, on_bad_lines: OnBadLines) -> tuple[pd.DataFrame, ParseReport]:
    fields = [Field(Columns.User, "int", low=0), Field("age", "int", low=0, high=120),
              Field("gender", "str"), Field("occupation", "str"), Field("zip", "str")]
    frame, report = read_delimited(folder / "u.user", fields, delimiter="|",
                                   on_bad_lines=on_bad_lines)
    return _with_zip_prefix(frame), report


def _with_zip_prefix(frame: pd.DataFrame) -> pd.DataFrame:
    # The first digit is the US postal region: coarse enough to generalise, never identifying.
    return frame.assign(zip_prefix=frame["zip"].str.slice(0, 1))


def _year_from_title(titles: pd.Series) -> pd.Series:
    return titles.str.extract(_YEAR, expand=False).astype("Int64")


def _items_1m(folder: Path, on_bad_lines: OnBadLines) -> tuple[pd.DataFrame, ParseReport]:
    # Titles contain ':' (and '::' never), so split each line on '::' in Python (4k lines).
    path = folder / "movies.dat"
    report = ParseReport(str(path))
    rows = []
    with open(path, encoding="latin-1", newline="") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            parts = line.split("::")
            if len(parts) != 3 or not parts[0].isdigit():
                bad = "expected MovieID::Title::Genres"
                if on_bad_lines == "error":
                    raise BadInputError(path, lineno, bad, value=line)
                from recexp.datasets._parse import BadLine
                report.add(BadLine(lineno, bad, line))
                continue
            rows.append((int(parts[0]), parts[1], parts[2]))
    report.rows = len(rows)
    items = pd.DataFrame(rows, columns=[Columns.Item, "title", "genres"])
    items["title"] = items["title"].astype("str")
    items.insert(2, "year", _year_from_title(items["title"]))
    items["genres"] = items["genres"].astype("str")
    return items, report


def _users_1m(folder: Path, on_bad_lines: OnBadLines) -> tuple[pd.DataFrame, ParseReport]:
    sep = [Field(f"::{k}", "str", nullable=True) for k in range(4)]
    fields = [Field(Columns.User, "int", low=0), sep[0], Field("gender", "str"), sep[1],
              Field("age", "int", low=0, high=120), sep[2], Field("occupation", "str"), sep[3],
              Field("zip", "str")]
    path = folder / "users.dat"
    frame, report = read_delimited(path, fields, delimiter=":", on_bad_lines=on_bad_lines)
    frame = _drop_separators(path, frame)
    frame = frame[[Columns.User, "age", "gender", "occupation", "zip"]]
    return _with_zip_prefix(frame), report


def _items_csv(folder: Path, on_bad_lines: OnBadLines) -> tuple[pd.DataFrame, list[ParseReport]]:
    fields = [Field(Columns.Item, "int", low=0), Field("title", "str"), Field("genres", "str")]
    items, report = read_delimited(folder / "movies.csv", fields, quoted=True,
                                   header=("movieId", "title", "genres"),
                                   on_bad_lines=on_bad_lines)
    items.insert(2, "year", _year_from_title(items["title"].str.strip()))
    items["genres"] = items["genres"].where(items["genres"] != "(no genres listed)", "")
    reports = [report]
    tags_path = folder / "tags.csv"
    if tags_path.is_file():
        tag_fields = [Field(Columns.User, "int"), Field(Columns.Item, "int"),
                      Field("tag", "str"), Field(Columns.Datetime, "epoch")]
        tags, tag_report = read_delimited(tags_path, tag_fields, quoted=True,
                                          header=("userId", "movieId", "tag", "timestamp"),
                                          on_bad_lines=on_bad_lines)
        reports.append(tag_report)
        joined = (tags.assign(tag=tags["tag"].str.strip().str.lower())
                  .groupby(Columns.Item)["tag"].agg(lambda s: "|".join(sorted(set(s)))))
        items["tags"] = items[Columns.Item].map(joined).fillna("").astype("str")
    return items, reports


def load_movielens(folder: str | Path, *, variant: str = "100k",
                   on_bad_lines: OnBadLines = "error", splits: bool = True) -> SourceData:
    """Read a MovieLens release from its extracted folder.

    Parameters
    ----------
    folder : str or Path
        The folder the publisher's zip extracts to (``ml-100k/``, ``ml-1m/``,
        ``ml-latest-small/``, ...).
    variant : {"100k", "1m", "csv"}
        The file layout: ``u.*`` files, ``*.dat`` files, or ``*.csv`` files (every release
        since 2016, latest-small included).
    on_bad_lines : {"error", "skip"}
    splits : bool
        Also read ML-100K's predefined split files when present.
    """
    folder = Path(folder)
    reports: list[ParseReport] = []
    users = None
    split_tables: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    if variant == "100k":
        ratings, rep = read_ratings(folder / "u.data", on_bad_lines=on_bad_lines)
        reports.append(rep)
        items, rep = _items_100k(folder, on_bad_lines)
        reports.append(rep)
        users, rep = _users_100k(folder, on_bad_lines)
        reports.append(rep)
        for name in _PREDEFINED_SPLITS if splits else ():
            base, test = folder / f"{name}.base", folder / f"{name}.test"
            if base.is_file() and test.is_file():
                train_df, rep_train = read_ratings(base, on_bad_lines=on_bad_lines)
                test_df, rep_test = read_ratings(test, on_bad_lines=on_bad_lines)
                reports += [rep_train, rep_test]
                split_tables[name] = (train_df, test_df)
    elif variant == "1m":
        ratings, rep = read_ratings(folder / "ratings.dat", variant="1m",
                                    on_bad_lines=on_bad_lines)
        reports.append(rep)
        items, rep = _items_1m(folder, on_bad_lines)
        reports.append(rep)
        users, rep = _users_1m(folder, on_bad_lines)
        reports.append(rep)
    elif variant == "csv":
        ratings, rep = read_ratings(folder / "ratings.csv", variant="csv",
                                    on_bad_lines=on_bad_lines)
        reports.append(rep)
        items, item_reports = _items_csv(folder, on_bad_lines)
        reports += item_reports
    else:
        raise ValueError(f"unknown MovieLens variant {variant!r}; use '100k', '1m' or 'csv'")
    return SourceData(name=f"movielens-{variant}", interactions=ratings, users=users,
                      items=items, splits=split_tables, reports=tuple(reports))


def _loader(variant: str, name: str):
    def load(folder: Path, *, on_bad_lines: OnBadLines = "error", **kwargs) -> SourceData:
        data = load_movielens(folder, variant=variant, on_bad_lines=on_bad_lines, **kwargs)
        return SourceData(name=name, interactions=data.interactions, users=data.users,
                          items=data.items, splits=data.splits, reports=data.reports)
    return load


# Checksums are the publisher's own (the .md5 file beside each zip on its download site).
_RELEASES = [
    ("movielens-100k", "100k", "ml-100k", ("u.data", "u.item", "u.user", "u.genre"),
     "md5:0e33842e24a9c977be4e0107933c0723",
     "MovieLens 100K (1998): 100,000 ratings 1-5 by 943 users on 1,682 movies; user "
     "demographics; predefined splits u1-u5, ua, ub."),
    ("movielens-1m", "1m", "ml-1m", ("ratings.dat", "movies.dat", "users.dat"),
     "md5:c4d9eecfca2ab87c1945afe126590906",
     "MovieLens 1M (2003): 1,000,209 ratings by 6,040 users on 3,706 movies; demographics."),
    ("movielens-latest-small", "csv", "ml-latest-small", ("ratings.csv", "movies.csv"),
     # "latest" is re-released in place: its checksum is read from the publisher's .md5 file.
     "md5:url",
     "MovieLens latest-small (2018): 100,836 ratings 0.5-5 by 610 users on 9,742 movies; tags."),
    ("movielens-20m", "csv", "ml-20m", ("ratings.csv", "movies.csv"),
     "md5:cd245b17a1ae2cc31bb14903e1204af3",
     "MovieLens 20M (2015): 20,000,263 ratings by 138,493 users on 27,278 movies; tags."),
    ("movielens-25m", "csv", "ml-25m", ("ratings.csv", "movies.csv"),
     "md5:6b51fb2759a8657d3bfcbfc42b592ada",
     "MovieLens 25M (2019): 25,000,095 ratings by 162,541 users on 62,423 movies; tags."),
]

for _name, _variant, _folder, _files, _md5, _desc in _RELEASES:
    register(DatasetInfo(
        name=_name,
        description=_desc,
        source=Source(folder=_folder, required=_files,
                      remote=Remote(f"{_GROUPLENS}{_folder}.zip", _md5, members=_folder)),
        loader=_loader(_variant, _name),
    ))
