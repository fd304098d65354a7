"""Synthetic generators: reproducible, the sizes asked for, the real file formats, and a
latent structure whose right answers the tests know."""

from __future__ import annotations

import doctest
import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import OneHotEncoder

from recexp.columns import Columns
from recexp.datasets import synthetic
from recexp.datasets.synthetic import (
    INFORMATIVE,
    OCCUPATIONS,
    movielens_like,
    write_criteo,
    write_netflix,
)

CRITEO_NAMES = ["label"] + [f"I{j}" for j in range(1, 14)] + [f"C{j}" for j in range(1, 27)]


def test_docstring_examples_run():
    result = doctest.testmod(synthetic, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 1 and result.failed == 0


# ---------------------------------------------------------------------------- MovieLens-like
@pytest.fixture(scope="module")
def ml():
    return movielens_like(n_users=300, n_items=400, n_ratings=15_000, seed=3)


def test_sizes_dtypes_and_uniqueness(ml):
    inter = ml.interactions
    assert list(inter.columns) == [Columns.User, Columns.Item, Columns.Rating, Columns.Datetime]
    assert len(inter) == 15_000
    assert inter[Columns.User].dtype == np.int64 and inter[Columns.Item].dtype == np.int64
    assert inter[Columns.Rating].dtype == np.float32
    assert inter[Columns.Datetime].dtype == "datetime64[s]"
    assert not inter.duplicated([Columns.User, Columns.Item]).any()
    assert inter[Columns.User].between(1, 300).all() and inter[Columns.Item].between(1, 400).all()
    assert set(inter[Columns.Rating].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert inter[Columns.Datetime].min() >= pd.Timestamp("1998-01-01")
    assert inter[Columns.Datetime].max() < pd.Timestamp("2005-12-31")
    assert ml.theta.shape == (300, 8) and ml.genres.shape == (400, 8)
    assert len(ml.items) == 400 and len(ml.users) == 300
    assert ml.genres.any(axis=1).all() and ml.genres.any(axis=0).all()


def test_same_seed_same_data_other_seed_other_data(ml):
    again = movielens_like(n_users=300, n_items=400, n_ratings=15_000, seed=3)
    pd.testing.assert_frame_equal(again.interactions, ml.interactions)
    pd.testing.assert_frame_equal(again.users, ml.users)
    pd.testing.assert_frame_equal(again.items, ml.items)
    other = movielens_like(n_users=300, n_items=400, n_ratings=15_000, seed=4)
    assert not other.interactions.equals(ml.interactions)


def test_popularity_has_a_long_tail(ml):
    counts = np.bincount(ml.interactions[Columns.Item] - 1, minlength=400)
    assert spearmanr(counts, ml.popularity).statistic > 0.7
    top = np.sort(counts)[::-1]
    assert top[:40].sum() / top.sum() > 0.2  # top 10% of items, well above their 10%


def test_users_favour_their_genre(ml):
    users = ml.interactions[Columns.User].to_numpy() - 1
    items = ml.interactions[Columns.Item].to_numpy() - 1
    in_favourite = ml.genres[items, ml.favourite_genre[users]].mean()
    assert in_favourite > 2 * ml.genres.mean()


def test_true_scores_explain_the_data_better_than_popularity(ml):
    scores = ml.scores()
    assert scores.shape == (300, 400)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)
    users = ml.interactions[Columns.User].to_numpy() - 1
    items = ml.interactions[Columns.Item].to_numpy() - 1
    popularity = np.bincount(items, minlength=400) / len(items)
    assert np.log(scores[users, items]).mean() > np.log(popularity[items]).mean() + 0.1
    np.testing.assert_allclose(ml.scores(np.array([5, 1])), scores[[4, 0]])
    with pytest.raises(KeyError, match="unknown user id 301"):
        ml.scores(np.array([301]))


def test_relevant_is_the_top_k_of_the_true_scores(ml):
    top = ml.relevant(k=5)
    assert len(top) == 300 * 5 and list(top[Columns.Rank][:5]) == [1, 2, 3, 4, 5]
    seen = set(zip(ml.interactions[Columns.User], ml.interactions[Columns.Item], strict=True))
    assert not any((u, i) in seen for u, i in zip(top[Columns.User], top[Columns.Item],
                                                   strict=True))
    scores = ml.scores()
    for user in (1, 150, 300):
        s = scores[user - 1].copy()
        s[ml.interactions.loc[ml.interactions[Columns.User] == user, Columns.Item] - 1] = -1
        want = np.argsort(-s, kind="stable")[:5] + 1
        assert top.loc[top[Columns.User] == user, Columns.Item].tolist() == want.tolist()
    with_seen = ml.relevant(k=3, exclude_seen=False)
    assert with_seen.loc[with_seen[Columns.User] == 1, Columns.Item].tolist() == (
        np.argsort(-scores[0], kind="stable")[:3] + 1).tolist()


def test_ratings_follow_the_latent_fit(ml):
    inter = ml.interactions
    mean = ml.rating_mean(inter[Columns.User].to_numpy(), inter[Columns.Item].to_numpy())
    assert np.corrcoef(mean, inter[Columns.Rating])[0, 1] > 0.5


def test_user_attributes_carry_the_favourite_genre(ml):
    expected = np.asarray(OCCUPATIONS)[ml.favourite_genre % len(OCCUPATIONS)]
    share = (ml.users["occupation"].to_numpy() == expected).mean()
    assert 0.7 < share < 0.95  # attribute_signal=0.8 plus random hits


def test_becomes_a_dataset(ml):
    data = ml.to_source_data()
    assert data.name == "synthetic"
    ds = data.to_dataset()
    assert ds.n_users == 300 and ds.n_items == 400 and ds.n_interactions == 15_000


def test_impossible_sizes_are_refused():
    with pytest.raises(ValueError, match="fill over half"):
        movielens_like(n_users=10, n_items=10, n_ratings=60)
    with pytest.raises(ValueError, match="n_users must be at least 1"):
        movielens_like(n_users=0)


# ---------------------------------------------------------------------------- Netflix
def naive_netflix(paths: list[Path]) -> pd.DataFrame:
    """A plain line-by-line reader, independent of recexp's, as the oracle for the writer."""
    rows = []
    for path in paths:
        movie = None
        for line in path.read_text("ascii").splitlines():
            if line.endswith(":"):
                movie = int(line[:-1])
            else:
                user, rating, date = line.split(",")
                rows.append((int(user), movie, float(rating), date))
    frame = pd.DataFrame(rows, columns=[Columns.User, Columns.Item, Columns.Rating, "date"])
    frame[Columns.Rating] = frame[Columns.Rating].astype(np.float32)
    frame[Columns.Datetime] = pd.to_datetime(frame.pop("date")).astype("datetime64[s]")
    return frame


@pytest.fixture(scope="module")
def netflix(tmp_path_factory):
    return write_netflix(tmp_path_factory.mktemp("nf"), n_ratings=30_000, n_users=2_000,
                         n_movies=5_200, seed=11, n_files=4)


def test_netflix_files_hold_exactly_the_truth(netflix):
    assert [p.name for p in netflix.ratings_files] == [f"combined_data_{k}.txt"
                                                       for k in range(1, 5)]
    pd.testing.assert_frame_equal(naive_netflix(list(netflix.ratings_files)), netflix.ratings)
    text = netflix.ratings_files[0].read_text()
    assert text.startswith("1:\n") and re.fullmatch(r"(\d+:\n|\d+,[1-5],\d{4}-\d\d-\d\d\n)+",
                                                    text)
    sizes = [len(naive_netflix([p])) for p in netflix.ratings_files]
    assert min(sizes) > 0.15 * sum(sizes)  # movies split into runs of similar weight


def test_netflix_truth_looks_like_the_prize(netflix):
    r = netflix.ratings
    assert len(r) == 30_000 and not r.duplicated([Columns.User, Columns.Item]).any()
    assert r[Columns.User].between(1, 2_649_429).all() and r[Columns.User].nunique() <= 2_000
    assert set(r[Columns.Rating].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert r[Columns.Datetime].min() >= pd.Timestamp("1999-11-11")
    assert r[Columns.Datetime].max() <= pd.Timestamp("2005-12-31")
    assert r[Columns.Item].is_monotonic_increasing
    assert not r[Columns.User].is_monotonic_increasing  # arbitrary order within a movie


def test_netflix_titles(netflix):
    raw = netflix.titles_file.read_bytes()
    assert b"\xe9" in raw and b"NULL" in raw  # latin-1 and unknown years, like the real file
    titles = netflix.titles
    assert len(titles) == 5_200 and titles["year"].isna().sum() == 2
    assert titles["title"].str.contains(",").sum() > 100
    lines = raw.decode("latin-1").splitlines()
    assert lines[0].split(",", 2)[:2] == ["1", str(titles["year"][0])]
    assert all(line.split(",", 2)[2] == t for line, t in zip(lines, titles["title"],
                                                             strict=True))


def test_netflix_probe_and_qualifying(netflix):
    key = [Columns.User, Columns.Item]
    probe = netflix.probe
    assert len(probe) == 300
    assert len(probe.merge(netflix.ratings[key], on=key)) == 300
    qualifying = netflix.qualifying
    assert len(qualifying) == 300 and not qualifying.duplicated(key).any()
    assert len(qualifying.merge(netflix.ratings[key], on=key)) == 0
    text = netflix.probe_file.read_text().splitlines()
    movie_lines = [line for line in text if line.endswith(":")]
    assert len(text) == 300 + len(movie_lines) == 300 + probe[Columns.Item].nunique()
    assert re.fullmatch(r"\d+,\d{4}-\d\d-\d\d", netflix.qualifying_file.read_text()
                        .splitlines()[1])


def test_netflix_per_movie_layout(tmp_path):
    files = write_netflix(tmp_path, n_ratings=2_000, n_users=300, n_movies=40, seed=2,
                          layout="per_movie", probe_fraction=0)
    assert len(files.ratings_files) == 40 and files.probe_file is None
    assert sorted((tmp_path / "training_set").iterdir()) == list(files.ratings_files)
    assert files.ratings_files[9].read_text().startswith("10:\n")
    pd.testing.assert_frame_equal(naive_netflix(list(files.ratings_files)), files.ratings)


def test_netflix_same_seed_same_bytes(tmp_path):
    def digest(folder: Path) -> list[str]:
        return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())]

    for name in ("a", "b"):
        write_netflix(tmp_path / name, n_ratings=3_000, n_users=200, n_movies=50, seed=5)
    write_netflix(tmp_path / "c", n_ratings=3_000, n_users=200, n_movies=50, seed=6)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


# ---------------------------------------------------------------------------- Criteo
@pytest.fixture(scope="module")
def criteo(tmp_path_factory):
    return write_criteo(tmp_path_factory.mktemp("criteo") / "train.txt", n_rows=20_000,
                        seed=2)


def read_criteo(path: Path, *, fmt: str) -> pd.DataFrame:
    if fmt == "tsv":
        return pd.read_csv(path, sep="\t", header=None, names=CRITEO_NAMES, dtype=str,
                           keep_default_na=False)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_criteo_tsv_format(criteo):
    lines = criteo.path.read_text().split("\n")
    assert lines[-1] == "" and len(lines) == 20_001
    assert all(line.count("\t") == 39 for line in lines[:-1])
    frame = read_criteo(criteo.path, fmt="tsv")
    assert set(frame["label"]) == {"0", "1"}
    np.testing.assert_array_equal(frame["label"].astype(np.int8), criteo.label)
    for j in range(1, 14):
        assert frame[f"I{j}"].str.fullmatch(r"(-?\d+)?").all()
    for j in range(1, 27):
        assert frame[f"C{j}"].str.fullmatch(r"([0-9a-f]{8})?").all()
    assert (frame["I2"] != "").all() and (frame["I2"] == "-1").any()
    assert 0.7 < (frame["I12"] == "").mean() < 0.82  # as sparse as the real I12
    assert 0.4 < (frame["C19"] == "").mean() < 0.5


def test_criteo_clicks_depend_on_the_informative_fields(criteo):
    assert 0.22 < criteo.label.mean() < 0.28
    assert roc_auc_score(criteo.label, criteo.probability) > 0.75
    frame = read_criteo(criteo.path, fmt="tsv")
    train, test = frame.iloc[:15_000], frame.iloc[15_000:]
    aucs = {}
    for name, cols in (("informative", list(INFORMATIVE)),
                       ("noise", ["C2", "C3", "C4", "C5", "C7"])):
        enc = OneHotEncoder(handle_unknown="ignore", min_frequency=5)
        model = LogisticRegression(max_iter=500).fit(enc.fit_transform(train[cols]),
                                                     train["label"].astype(int))
        pred = model.predict_proba(enc.transform(test[cols]))[:, 1]
        aucs[name] = roc_auc_score(test["label"].astype(int), pred)
    assert aucs["informative"] > 0.75 and aucs["noise"] < 0.56


def test_criteo_csv_format_like_deepctr(tmp_path):
    out = write_criteo(tmp_path / "sample.csv", n_rows=2_000, seed=3, fmt="csv")
    lines = out.path.read_text().splitlines()
    assert lines[0] == ",".join(CRITEO_NAMES) and len(lines) == 2_001
    frame = read_criteo(out.path, fmt="csv")
    assert frame["I2"].str.fullmatch(r"-?\d+").all()  # never missing: stays an integer
    for j in (1, 3, 12):
        assert frame[f"I{j}"].str.fullmatch(r"(-?\d+\.0)?").all()
    np.testing.assert_array_equal(frame["label"].astype(np.int8), out.label)


def test_criteo_same_seed_same_bytes(tmp_path):
    a = write_criteo(tmp_path / "a.txt", n_rows=3_000, seed=9, block=1_000)
    b = write_criteo(tmp_path / "b.txt", n_rows=3_000, seed=9, block=1_000)
    assert a.path.read_bytes() == b.path.read_bytes()
    np.testing.assert_array_equal(a.probability, b.probability)


@pytest.mark.realdata
def test_criteo_formats_match_the_real_samples(data_dir, tmp_path):
    real_csv = (data_dir / "criteo-sample" / "criteo_sample.txt").read_text().splitlines()
    ours = write_criteo(tmp_path / "s.csv", n_rows=50, seed=1, fmt="csv")
    assert ours.path.read_text().splitlines()[0] == real_csv[0]
    real_tsv = (data_dir / "criteo-sample" / "paddlerec_part-0.txt").read_text().splitlines()
    mine = write_criteo(tmp_path / "s.txt", n_rows=50, seed=1).path.read_text().splitlines()

    def shape(line: str, sep: str) -> list[str]:
        kinds = []
        for value in line.split(sep):
            kinds.append("empty" if value == "" else "hex" if re.fullmatch(
                r"[0-9a-f]{8}", value) else "num")
        return kinds

    real_kinds = {tuple(k for k in shape(line, "\t")[14:] if k != "empty")
                  for line in real_tsv}
    our_kinds = {tuple(k for k in shape(line, "\t")[14:] if k != "empty") for line in mine}
    assert all(set(k) == {"hex"} for k in real_kinds | our_kinds)
    assert {len(line.split("\t")) for line in real_tsv} == {len(line.split("\t"))
                                                           for line in mine} == {40}
