"""Tests of recexp.preprocess: known answers, naive oracles, properties, and MovieLens 100K."""

from __future__ import annotations

import doctest
import hashlib
import hmac
import itertools
import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import recexp.preprocess as pp
from recexp.columns import Columns
from recexp.preprocess import (
    Pipeline,
    StepReport,
    deduplicate,
    drop_missing,
    k_core,
    preprocess,
    pseudonymize,
    pseudonymize_id,
    pseudonymize_ids,
    time_window,
    to_implicit,
)

USER, ITEM, RATING = Columns.User, Columns.Item, Columns.Rating
WEIGHT, TIME = Columns.Weight, Columns.Datetime
KEY = "test-key-not-a-secret"


def frame(rows, columns=(USER, ITEM), index=None) -> pd.DataFrame:
    """A table of ``rows``; int64 columns when there are none (rather than object)."""
    df = pd.DataFrame(list(rows), columns=list(columns), index=index)
    return df if len(df) else df.astype(np.int64)


def reference_hmac(key: str, raw_id: object, digits: int = 16) -> str:
    return hmac.new(key.encode(), str(raw_id).encode(), hashlib.sha256).hexdigest()[:digits]


# ---------------------------------------------------------------------------------- dedupe
@pytest.fixture
def repeated() -> pd.DataFrame:
    """Three pairs; (1, 1) three times out of time order; (2, 2) twice at the same time."""
    return pd.DataFrame({
        USER: [1, 1, 1, 2, 2, 2],
        ITEM: [1, 1, 1, 1, 2, 2],
        RATING: np.array([3, 5, 4, 2, 1, 1], dtype=np.float32),
        WEIGHT: np.array([1, 2, 3, 1, 4, 5], dtype=np.float32),
        TIME: pd.to_datetime(["2020-01-03", "2020-01-01", "2020-01-02", "2020-01-01",
                           "2020-01-05", "2020-01-05"]).astype("datetime64[s]"),
    }, index=[10, 11, 12, 13, 14, 15])


@pytest.mark.parametrize(("keep", "labels"), [
    ("first", [11, 13, 14]),   # earliest; the (2, 2) time tie goes to the earlier row
    ("last", [10, 13, 15]),    # latest; the tie goes to the later row
    ("max", [11, 13, 15]),     # highest rating; rating and time tie -> later row
    ("sum", [10, 13, 15]),     # the "last" rows, weights summed
])
def test_deduplicate_known_answers_with_timestamps(repeated, keep, labels):
    out, report = deduplicate(repeated, keep=keep)
    assert out.index.tolist() == labels
    expected = repeated.loc[labels]
    if keep == "sum":
        assert out[WEIGHT].tolist() == [6.0, 1.0, 9.0]
        assert out[WEIGHT].dtype == np.float32
        expected = expected.drop(columns=[WEIGHT])
        out = out.drop(columns=[WEIGHT])
    pd.testing.assert_frame_equal(out, expected)
    assert (report.rows_before, report.rows_after) == (6, 3)
    assert (report.users_before, report.users_after) == (2, 2)
    assert (report.items_before, report.items_after) == (2, 2)
    assert report.details == {"repeated_pairs": 2}
    assert report.params == {"keep": keep}


@pytest.mark.parametrize(("keep", "labels"), [
    ("first", [10, 13, 14]), ("last", [12, 13, 15]), ("max", [11, 13, 15]),
    ("sum", [12, 13, 15])])
def test_deduplicate_without_timestamp_uses_row_order(repeated, keep, labels):
    out, _ = deduplicate(repeated.drop(columns=[TIME]), keep=keep)
    assert out.index.tolist() == labels


def test_deduplicate_max_uses_weight_without_rating_and_sum_counts_without_weight(repeated):
    out, _ = deduplicate(repeated.drop(columns=[RATING]), keep="max")
    assert out.index.tolist() == [12, 13, 15]    # weights 3 and 5 are the largest
    out, _ = deduplicate(repeated.drop(columns=[WEIGHT]), keep="sum")
    assert out[WEIGHT].tolist() == [3.0, 1.0, 2.0]     # each row counts 1.0
    assert out[WEIGHT].dtype == np.float32


def test_deduplicate_max_treats_missing_rating_as_smallest():
    df = pd.DataFrame({USER: [1, 1], ITEM: [1, 1], RATING: [np.nan, 1.0]})
    assert deduplicate(df, keep="max")[0].index.tolist() == [1]


def test_deduplicate_missing_timestamp_orders_first():
    df = pd.DataFrame({USER: [1, 1], ITEM: [1, 1],
                       TIME: pd.to_datetime(["2020-01-01", None]).astype("datetime64[s]")})
    assert deduplicate(df, keep="first")[0].index.tolist() == [1]
    assert deduplicate(df, keep="last")[0].index.tolist() == [0]


def test_deduplicate_tz_aware_and_numeric_timestamps_order_rows():
    aware = pd.DataFrame({USER: [1, 1], ITEM: [1, 1],
                          TIME: pd.to_datetime(["2020-01-02", "2020-01-01"]).tz_localize("UTC")})
    assert deduplicate(aware, keep="first")[0].index.tolist() == [1]
    numeric = aware.assign(**{TIME: [20.0, 10.0]})
    assert deduplicate(numeric, keep="last")[0].index.tolist() == [0]


def test_deduplicate_errors_say_what_and_where(repeated):
    with pytest.raises(ValueError, match=r"keep='max' needs a 'rating' or 'weight'"):
        deduplicate(repeated[[USER, ITEM]], keep="max")
    with pytest.raises(ValueError, match=r"keep must be one of .* \(did you mean 'last'\?\)"):
        deduplicate(repeated, keep="lats")
    with_nan = repeated.assign(**{WEIGHT: [1.0, np.nan, 1.0, 1.0, 1.0, 1.0]})
    with pytest.raises(ValueError, match="missing at row 11"):
        deduplicate(with_nan, keep="sum")
    missing_id = pd.DataFrame({USER: ["a", None], ITEM: ["x", "y"]}, index=[5, 6])
    with pytest.raises(ValueError, match=r"missing user_id at row 6.*drop_missing"):
        deduplicate(missing_id)
    with pytest.raises(ValueError, match=r"needs columns \['user_id', 'item_id'\]"):
        deduplicate(repeated.rename(columns={USER: "userId"}))
    with pytest.raises(TypeError, match="expected a pandas DataFrame"):
        deduplicate(repeated.to_numpy())
    with pytest.raises(TypeError, match="positional"):
        deduplicate(repeated, "last")  # keyword-only


def test_deduplicate_without_repeats_returns_the_same_rows():
    df = pd.DataFrame({USER: ["a", "a", "b"], ITEM: ["x", "y", "x"]})
    out, report = deduplicate(df)
    pd.testing.assert_frame_equal(out, df)
    assert report.rows_removed == 0 and report.details == {"repeated_pairs": 0}
    out, _ = deduplicate(df.iloc[:0])
    assert len(out) == 0
    # The same columns and dtypes come out whether or not there happen to be repeats.
    out, _ = deduplicate(df, keep="sum")
    assert out[WEIGHT].tolist() == [1.0, 1.0, 1.0] and out[WEIGHT].dtype == np.float32
    with pytest.raises(ValueError, match="keep='max' needs"):
        deduplicate(df, keep="max")


def naive_deduplicate(df: pd.DataFrame, keep: str) -> tuple[list, list]:
    """Python loop over pairs: the labels kept and, for "sum", their weights."""
    groups: dict[tuple, list[int]] = {}
    for pos, (u, i) in enumerate(zip(df[USER], df[ITEM], strict=True)):
        groups.setdefault((u, i), []).append(pos)
    has_time = TIME in df.columns

    def time(pos):
        return df[TIME].iloc[pos] if has_time else 0

    chosen, weights = [], {}
    for rows in groups.values():
        if keep == "first":
            pick = min(rows, key=lambda p: (time(p), p))
        elif keep == "max":
            pick = max(rows, key=lambda p: (df[RATING].iloc[p], time(p), p))
        else:
            pick = max(rows, key=lambda p: (time(p), p))
        chosen.append(pick)
        weights[pick] = sum(float(df[WEIGHT].iloc[p]) for p in rows)
    chosen.sort()
    return [df.index[p] for p in chosen], [weights[p] for p in chosen]


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3),
                               st.integers(1, 3), st.integers(1, 4)), max_size=25),
       keep=st.sampled_from(["first", "last", "max", "sum"]), with_time=st.booleans())
def test_deduplicate_matches_naive_loop(rows, keep, with_time):
    df = frame(rows, (USER, ITEM, TIME, RATING, WEIGHT), index=np.arange(len(rows)) * 7 + 3)
    if not with_time:
        df = df.drop(columns=[TIME])
    labels, weights = naive_deduplicate(df, keep)
    out, report = deduplicate(df, keep=keep)
    assert out.index.tolist() == labels
    if keep == "sum":
        assert out[WEIGHT].tolist() == weights
    assert not out[[USER, ITEM]].duplicated().any()
    assert report.rows_after == len(set(zip(df[USER], df[ITEM], strict=True)))


# ---------------------------------------------------------------------------------- implicit
@pytest.fixture
def rated() -> pd.DataFrame:
    return pd.DataFrame({USER: [1, 1, 2, 2, 3], ITEM: [1, 2, 1, 2, 1],
                         RATING: np.array([5, 4, 3.5, np.nan, 1], dtype=np.float32),
                         WEIGHT: np.array([9, 9, 9, 9, 9], dtype=np.float32)})


def test_to_implicit_keeps_ratings_at_or_above_threshold(rated):
    out, report = to_implicit(rated, threshold=4)
    assert out.index.tolist() == [0, 1]
    assert out[WEIGHT].tolist() == [1.0, 1.0] and out[WEIGHT].dtype == np.float32
    assert out[RATING].tolist() == [5.0, 4.0]          # rating kept by default
    assert report.details == {"below_threshold": 2, "missing_rating": 1}
    assert (report.rows_before, report.rows_after) == (5, 2)
    assert (report.users_removed, report.items_removed) == (2, 0)
    assert report.params == {"threshold": 4.0, "weight": "one", "drop_rating": False}


def test_to_implicit_rating_as_weight_and_drop_rating(rated):
    out, _ = to_implicit(rated, threshold=3.5, weight="rating", drop_rating=True)
    assert out[WEIGHT].tolist() == [5.0, 4.0, 3.5]
    assert RATING not in out.columns


def test_to_implicit_errors(rated):
    with pytest.raises(ValueError, match=r"needs a 'rating' column; has \['user_id'"):
        to_implicit(rated.drop(columns=[RATING]), threshold=4)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        to_implicit(rated, threshold=float("nan"))
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        to_implicit(rated, threshold="4")
    with pytest.raises(TypeError, match="column 'rating' must be numeric"):
        to_implicit(rated.assign(**{RATING: ["a"] * 5}), threshold=4)


# ---------------------------------------------------------------------------------- k-core
def test_k_core_cascades_until_fixed_point():
    # D has one row; removing it leaves z with one, then C with one: three rounds.
    df = frame([("A", "x"), ("A", "y"), ("B", "x"), ("B", "y"), ("C", "y"), ("C", "z"),
                ("D", "z")])
    out, report = k_core(df, user_k=2, item_k=2)
    assert out.index.tolist() == [0, 1, 2, 3]
    assert report.details == {"iterations": 3}
    assert (report.rows_removed, report.users_removed, report.items_removed) == (3, 2, 1)
    again, report2 = k_core(out, user_k=2, item_k=2)
    pd.testing.assert_frame_equal(again, out)
    assert report2.details == {"iterations": 0} and report2.rows_removed == 0


def test_k_core_thresholds_are_separate():
    df = frame([(1, 1), (1, 2), (1, 3), (2, 1)])
    assert k_core(df, user_k=3, item_k=1)[0].index.tolist() == [0, 1, 2]
    assert k_core(df, user_k=1, item_k=2)[0].index.tolist() == [0, 3]
    assert len(k_core(df, user_k=4, item_k=1)[0]) == 0


def test_k_core_rejects_bad_thresholds():
    df = frame([(1, 1)])
    for bad in (0, -1, 2.5, True, "5"):
        with pytest.raises(ValueError, match="user_k must be an integer"):
            k_core(df, user_k=bad, item_k=1)
    with pytest.raises(TypeError, match="item_k"):
        k_core(df, user_k=1)  # required


def naive_k_core(pairs: list[tuple], user_k: int, item_k: int) -> list[int]:
    """Alternate user and item passes in plain Python until nothing changes."""
    alive = list(range(len(pairs)))
    while True:
        users = Counter(pairs[r][0] for r in alive)
        step = [r for r in alive if users[pairs[r][0]] >= user_k]
        items = Counter(pairs[r][1] for r in step)
        step = [r for r in step if items[pairs[r][1]] >= item_k]
        if step == alive:
            return alive
        alive = step


def satisfies(pairs: list[tuple], rows, user_k: int, item_k: int) -> bool:
    users = Counter(pairs[r][0] for r in rows)
    items = Counter(pairs[r][1] for r in rows)
    return all(c >= user_k for c in users.values()) and all(c >= item_k for c in items.values())


pair_lists = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(pairs=pair_lists, user_k=st.integers(1, 4), item_k=st.integers(1, 4))
def test_k_core_is_a_fixed_point_and_matches_naive_loop(pairs, user_k, item_k):
    df = frame(pairs)
    out, report = k_core(df, user_k=user_k, item_k=item_k)
    assert (out[USER].value_counts() >= user_k).all()
    assert (out[ITEM].value_counts() >= item_k).all()
    assert out.index.tolist() == naive_k_core(pairs, user_k, item_k)
    again, report2 = k_core(out, user_k=user_k, item_k=item_k)
    pd.testing.assert_frame_equal(again, out)
    assert report2.rows_removed == 0 and report2.details["iterations"] == 0
    assert report.rows_after == len(out)
    assert report.users_after == out[USER].nunique() and report.items_after == out[ITEM].nunique()


@settings(max_examples=50, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=10),
       user_k=st.integers(1, 3), item_k=st.integers(1, 3))
def test_k_core_is_maximal(pairs, user_k, item_k):
    # Feasible row sets are closed under union, so the k-core must be the union of all of
    # them: no removed row belongs to any feasible set.
    union: set[int] = set()
    for size in range(len(pairs) + 1):
        for rows in itertools.combinations(range(len(pairs)), size):
            if satisfies(pairs, rows, user_k, item_k):
                union.update(rows)
    out, _ = k_core(frame(pairs), user_k=user_k, item_k=item_k)
    assert set(out.index) == union


# ---------------------------------------------------------------------------------- missing
def test_drop_missing_counts_each_column():
    df = pd.DataFrame({USER: pd.array(["a", None, "b", "", "c"], dtype="str"),
                       ITEM: [1.0, 2.0, np.nan, 3.0, np.nan],
                       RATING: [1.0, np.nan, 2.0, 3.0, 4.0]}, index=list("pqrst"))
    out, report = drop_missing(df)
    assert out.index.tolist() == ["p", "s"]   # the empty-string id is an id
    assert report.details == {"missing_user_id": 1, "missing_item_id": 2}
    assert (report.users_before, report.users_after) == (4, 2)
    assert (report.items_before, report.items_after) == (3, 2)
    out, report = drop_missing(df, columns=[RATING])
    assert out.index.tolist() == ["p", "r", "s", "t"]
    assert report.params == {"columns": ["rating"]}
    with pytest.raises(ValueError, match=r"no column\(s\) \['label'\]"):
        drop_missing(df, columns=[Columns.Label])


def test_drop_missing_timestamps_and_pd_na():
    df = pd.DataFrame({USER: pd.array([1, pd.NA, 3], dtype="Int64"), ITEM: [1, 2, 3],
                       TIME: pd.to_datetime(["2020-01-01", "2020-01-02", None])})
    assert drop_missing(df)[0].index.tolist() == [0, 2]
    assert drop_missing(df, columns=[USER, ITEM, TIME])[0].index.tolist() == [0]


# ---------------------------------------------------------------------------------- window
@pytest.fixture
def timed() -> pd.DataFrame:
    return pd.DataFrame({USER: [1, 2, 3, 4, 5], ITEM: [1, 1, 1, 1, 1],
                         TIME: pd.to_datetime(["1997-12-31 23:59:59", "1998-01-01", "1998-01-15",
                                            "1998-02-01", None], format="ISO8601",
                                           ).astype("datetime64[s]")})


def test_time_window_is_half_open(timed):
    out, report = time_window(timed, start="1998-01-01", end="1998-02-01")
    assert out[USER].tolist() == [2, 3]
    assert report.details == {"before_start": 1, "after_end": 1, "missing_timestamp": 1}
    assert report.params == {"start": "1998-01-01T00:00:00", "end": "1998-02-01T00:00:00"}
    assert report.users_removed == 3
    assert time_window(timed, start="1998-01-01")[0][USER].tolist() == [2, 3, 4]
    assert time_window(timed, end=pd.Timestamp("1998-01-01"))[0][USER].tolist() == [1]
    out, report = time_window(timed)
    assert len(out) == 5 and report.rows_removed == 0


def test_time_window_timezones(timed):
    aware = timed.assign(**{TIME: timed[TIME].dt.tz_localize("Europe/Paris")})
    out, _ = time_window(aware, start=pd.Timestamp("1997-12-31 23:00", tz="UTC"))
    assert out[USER].tolist() == [2, 3, 4]   # 1998-01-01 00:00 Paris is 1997-12-31 23:00 UTC
    with pytest.raises(ValueError, match="has no timezone but column 'timestamp'"):
        time_window(aware, start="1998-01-01")
    with pytest.raises(ValueError, match="has timezone but column 'timestamp'"):
        time_window(timed, start="1998-01-01T00:00+01:00")


def test_time_window_errors(timed):
    with pytest.raises(ValueError, match="start must be before end"):
        time_window(timed, start="1998-02-01", end="1998-01-01")
    with pytest.raises(ValueError, match="the number 883612800"):
        time_window(timed, start=883612800)
    with pytest.raises(ValueError, match="cannot read 'soon'"):
        time_window(timed, end="soon")
    with pytest.raises(TypeError, match=r"must be datetime64, has dtype int64.*pd.to_datetime"):
        time_window(timed.assign(**{TIME: np.arange(5)}), start="1998-01-01")
    with pytest.raises(ValueError, match="needs a 'timestamp' column"):
        time_window(timed.drop(columns=[TIME]), start="1998-01-01")


# ---------------------------------------------------------------------------------- pseudonyms
def test_pseudonyms_match_the_hmac_module():
    ids = [1, 42, "42", "user-ü", "", 10**12]
    got = pseudonymize_ids(ids, key=KEY)
    assert got.tolist() == [reference_hmac(KEY, raw) for raw in ids]
    assert all(len(p) == pp.PSEUDONYM_DIGITS for p in got)
    assert pseudonymize_id(np.int64(42), key=KEY) == reference_hmac(KEY, 42)
    assert pseudonymize_id("x", key=KEY, digits=64) == reference_hmac(KEY, "x", 64)
    long_key = "k" * 100   # longer than SHA-256's block: RFC 2104 hashes it first
    assert pseudonymize_id("x", key=long_key) == reference_hmac(long_key, "x")
    assert pseudonymize_id("x", key=KEY.encode()) == reference_hmac(KEY, "x")


def test_pseudonymize_frame_is_stable_keyed_and_consistent_with_ids():
    df = pd.DataFrame({USER: [3, 1, 3, 2], ITEM: ["a", "b", "a", "c"],
                       RATING: [1.0, 2.0, 3.0, 4.0]})
    out, report = pseudonymize(df, key=KEY)
    assert out[USER].tolist() == [reference_hmac(KEY, u) for u in df[USER]]
    assert out[USER].dtype == pd.Series(["s"]).dtype
    pd.testing.assert_frame_equal(out.drop(columns=[USER]), df.drop(columns=[USER]))
    again, _ = pseudonymize(df, key=KEY)
    pd.testing.assert_frame_equal(again, out)
    other, _ = pseudonymize(df, key=KEY + "2")
    assert set(other[USER]).isdisjoint(out[USER])
    assert out[USER].tolist() == pseudonymize_ids(df[USER].to_numpy(), key=KEY).tolist()
    assert out[USER].iloc[1] == pseudonymize_id(1, key=KEY)
    assert (report.rows_removed, report.users_removed, report.items_removed) == (0, 0, 0)
    assert report.users_after == 3
    both, _ = pseudonymize(df, key=KEY, columns=[USER, ITEM], digits=8)
    assert both[ITEM].tolist() == [reference_hmac(KEY, i, 8) for i in df[ITEM]]


def test_pseudonymize_reads_the_key_from_the_environment(monkeypatch):
    df = pd.DataFrame({USER: ["u1", "u2"], ITEM: [1, 2]})
    monkeypatch.setenv("RECEXP_PSEUDONYM_KEY", KEY)
    out, report = pseudonymize(df)
    assert out[USER].tolist() == [reference_hmac(KEY, "u1"), reference_hmac(KEY, "u2")]
    assert report.details["key_source"] == "RECEXP_PSEUDONYM_KEY"
    assert pseudonymize_id("u1") == reference_hmac(KEY, "u1")
    monkeypatch.setenv("MY_KEY", "other")
    assert pseudonymize(df, key_env="MY_KEY")[0][USER].iloc[0] == reference_hmac("other", "u1")
    monkeypatch.delenv("RECEXP_PSEUDONYM_KEY")
    with pytest.raises(KeyError, match="RECEXP_PSEUDONYM_KEY is not set"):
        pseudonymize(df)
    with pytest.raises(KeyError, match="RECEXP_PSEUDONYM_KEY is not set"):
        pseudonymize_ids(["u1"])
    monkeypatch.setenv("RECEXP_PSEUDONYM_KEY", "")
    with pytest.raises(KeyError, match="RECEXP_PSEUDONYM_KEY is empty"):
        pseudonymize_id("u1")


def test_the_key_never_leaves(monkeypatch):
    secret = "very-secret-key-123"
    df = pd.DataFrame({USER: [1, 2], ITEM: [1, 2]})
    _, report = pseudonymize(df, key=secret)
    monkeypatch.setenv("RECEXP_PSEUDONYM_KEY", secret)
    _, reports = preprocess(df, [{"step": "pseudonymize"}])
    for text in (repr(report), str(report), json.dumps(report.to_dict()),
                 repr(reports), repr(Pipeline([{"step": "pseudonymize"}]))):
        assert secret not in text
    with pytest.raises(ValueError, match="does not belong in a pipeline") as err:
        Pipeline([{"step": "pseudonymize", "key": secret}])
    assert secret not in str(err.value)
    # A key pasted into key_env by mistake is refused without being repeated.
    with pytest.raises(ValueError, match="not the key itself") as err:
        pseudonymize(df, key_env=secret)
    assert secret not in str(err.value)


def test_pseudonymize_missing_ids_and_collisions():
    df = pd.DataFrame({USER: pd.Series(["a", None, "a"], dtype="str"), ITEM: [1, 2, 3]})
    out, report = pseudonymize(df, key=KEY)
    assert out[USER].isna().tolist() == [False, True, False]
    assert report.users_after == 1
    with pytest.raises(ValueError, match="missing id at position 1"):
        pseudonymize_ids(["a", None], key=KEY)
    with pytest.raises(ValueError, match="the id is missing"):
        pseudonymize_id(None, key=KEY)
    mixed = pd.DataFrame({USER: pd.Series([1, "1"], dtype=object), ITEM: [1, 2]})
    with pytest.raises(ValueError, match="same 16-digit pseudonym"):
        pseudonymize(mixed, key=KEY)


def test_pseudonymize_argument_errors():
    df = pd.DataFrame({USER: [1], ITEM: [1]})
    with pytest.raises(TypeError, match="use pseudonymize_id for one id"):
        pseudonymize_ids("abc", key=KEY)
    with pytest.raises(TypeError, match="use pseudonymize_ids for many"):
        pseudonymize_id([1, 2], key=KEY)
    with pytest.raises(ValueError, match="digits must be an integer from 8 to 64"):
        pseudonymize(df, key=KEY, digits=4)
    with pytest.raises(ValueError, match="digits must be an integer from 8 to 64"):
        pseudonymize_id(1, key=KEY, digits=65)
    with pytest.raises(ValueError, match="key is empty"):
        pseudonymize(df, key="")
    with pytest.raises(ValueError, match=r"no column\(s\) \['session'\]"):
        pseudonymize(df, key=KEY, columns="session")


# ---------------------------------------------------------------------------------- reports
def test_step_report_summary_and_dict():
    report = StepReport(step="k_core", params={"user_k": 5, "item_k": 5}, rows_before=10,
                        rows_after=7, users_before=4, users_after=3, items_before=5,
                        items_after=3, details={"iterations": 2})
    assert (report.rows_removed, report.users_removed, report.items_removed) == (3, 1, 2)
    assert str(report) == ("k_core(user_k=5, item_k=5): 10 -> 7 rows; removed 3 rows, "
                           "1 users, 2 items")
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["rows_removed"] == 3 and as_dict["details"] == {"iterations": 2}


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(1, 5)),
                     max_size=40),
       threshold=st.integers(1, 5), k=st.integers(1, 3))
def test_pipeline_reports_match_direct_counts(rows, threshold, k):
    df = frame(rows, (USER, ITEM, RATING))
    out, reports = preprocess(df, [{"step": "deduplicate", "keep": "max"},
                                   {"step": "to_implicit", "threshold": threshold},
                                   {"step": "k_core", "user_k": k, "item_k": k}])
    tables = [df]
    for step, report in zip([deduplicate, to_implicit, k_core], reports, strict=True):
        assert report.step == step.__name__
        tables.append(step(tables[-1], **report.params)[0])
    pd.testing.assert_frame_equal(tables[-1], out)
    for report, before, after in zip(reports, tables[:-1], tables[1:], strict=True):
        assert (report.rows_before, report.rows_after) == (len(before), len(after))
        assert report.users_before == len(set(before[USER]))
        assert report.users_after == len(set(after[USER]))
        assert report.items_before == len(set(before[ITEM]))
        assert report.items_after == len(set(after[ITEM]))
        assert report.users_removed == len(set(before[USER]) - set(after[USER]))
        assert report.items_removed == len(set(before[ITEM]) - set(after[ITEM]))


# ---------------------------------------------------------------------------------- pipeline
def test_pipeline_checks_steps_before_touching_data():
    cases = [
        ([{"step": "k_cor", "user_k": 5, "item_k": 5}], r"step 0: unknown step 'k_cor' \(did "
         r"you mean 'k_core'\?\); known steps: deduplicate, drop_missing"),
        ([{"step": "deduplicate"}, {"step": "k_core", "user_kk": 5, "item_k": 5}],
         r"step 1 \(k_core\): unknown parameter 'user_kk' \(did you mean 'user_k'\?\); "
         r"parameters of k_core: user_k, item_k"),
        ([{"step": "k_core", "user_k": 5}], r"step 0 \(k_core\): missing required .*item_k"),
        ([{"step": "k_core", "user_k": 0, "item_k": 5}],
         r"step 0 \(k_core\): user_k must be an integer >= 1, got 0"),
        ([{"step": "to_implicit", "threshold": 4, "weight": "ratings"}],
         r"weight must be one of \['one', 'rating'\].*\(did you mean 'rating'\?\)"),
        ([{"step": "time_window", "start": "1999", "end": "1998"}], "start must be before end"),
        ([{"keep": "last"}], r"step 0: no 'step' key .* has keys \['keep'\]"),
        ([{"step": "nonsense_xyz"}], r"unknown step 'nonsense_xyz'; known steps"),
    ]
    for steps, message in cases:
        with pytest.raises(ValueError, match=message):
            Pipeline(steps)
    with pytest.raises(TypeError, match="step 1: expected a mapping"):
        Pipeline([{"step": "drop_missing"}, "k_core"])
    with pytest.raises(TypeError, match="must be a list of mappings"):
        Pipeline({"step": "k_core"})


def test_pipeline_runs_in_order_and_fills_defaults(repeated):
    pipeline = Pipeline(({"step": "drop_missing"}, {"step": "deduplicate", "keep": "first"},
                         {"step": "time_window", "start": "2020-01-01", "end": "2020-01-05"}))
    assert len(pipeline) == 3
    assert pipeline.steps == [
        {"step": "drop_missing", "columns": ["user_id", "item_id"]},
        {"step": "deduplicate", "keep": "first"},
        {"step": "time_window", "start": "2020-01-01T00:00:00", "end": "2020-01-05T00:00:00"},
    ]
    json.dumps(pipeline.steps)
    out, reports = pipeline.run(repeated)
    assert out.index.tolist() == [11, 13]    # 14 is the (2, 2) pick, at the excluded end
    assert [r.rows_after for r in reports] == [6, 3, 2]
    assert [r.rows_before for r in reports[1:]] == [r.rows_after for r in reports[:-1]]
    empty_out, empty_reports = preprocess(repeated, [])
    pd.testing.assert_frame_equal(empty_out, repeated)
    assert empty_reports == []


def test_no_step_changes_its_input(repeated, monkeypatch):
    monkeypatch.setenv("RECEXP_PSEUDONYM_KEY", KEY)
    calls = [
        lambda df: deduplicate(df, keep="sum"),
        lambda df: deduplicate(df, keep="max"),
        lambda df: to_implicit(df, threshold=3, weight="rating", drop_rating=True),
        lambda df: k_core(df, user_k=2, item_k=2),
        lambda df: drop_missing(df),
        lambda df: time_window(df, start="2020-01-02"),
        lambda df: pseudonymize(df, columns=[USER, ITEM]),
    ]
    original = repeated.copy(deep=True)
    for call in calls:
        out, _ = call(repeated)
        pd.testing.assert_frame_equal(repeated, original)
        # Writing into the output must not reach the input either (no shared buffers).
        for j in range(out.shape[1]):
            out.iloc[0, j] = out.iloc[-1, j]
        pd.testing.assert_frame_equal(repeated, original)


def test_module_docstring_examples_run():
    result = doctest.testmod(pp, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0


# ---------------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_movielens_100k_implicit_10_core(ml100k):
    ratings = ml100k.interactions
    original = ratings.copy(deep=True)
    steps = [{"step": "drop_missing"}, {"step": "deduplicate", "keep": "last"},
             {"step": "to_implicit", "threshold": 4},
             {"step": "k_core", "user_k": 10, "item_k": 10}]
    out, reports = preprocess(ratings, steps)
    pd.testing.assert_frame_equal(ratings, original)
    dropped, dedup, implicit, core = reports
    # ML-100K: 100,000 ratings by 943 users of 1,682 movies, no repeated pair, no gaps.
    assert (dropped.rows_before, dropped.users_before, dropped.items_before) == (100_000, 943,
                                                                                 1682)
    assert dropped.rows_removed == 0 and dedup.rows_removed == 0
    assert dedup.details == {"repeated_pairs": 0}
    # 34,174 fours and 21,201 fives in the published rating histogram.
    assert implicit.rows_after == 55_375
    assert implicit.details == {"below_threshold": 44_625, "missing_rating": 0}
    for earlier, later in itertools.pairwise(reports):
        assert later.rows_before == earlier.rows_after
        assert later.users_before == earlier.users_after
        assert later.items_before == earlier.items_after
    assert core.rows_after == len(out) > 40_000
    assert core.users_after == out[USER].nunique() and core.items_after == out[ITEM].nunique()
    assert core.details["iterations"] >= 1
    assert (out[USER].value_counts() >= 10).all() and (out[ITEM].value_counts() >= 10).all()
    assert (out[RATING] >= 4).all() and (out[WEIGHT] == 1.0).all()
    # The fixed point: a second pass removes nothing.
    assert k_core(out, user_k=10, item_k=10)[1].rows_removed == 0
    # And the same core as the plain-Python oracle.
    positives = ratings[ratings[RATING] >= 4]
    pairs = list(zip(positives[USER], positives[ITEM], strict=True))
    expected = positives.index[naive_k_core(pairs, 10, 10)]
    assert out.index.equals(expected)
    json.dumps([r.to_dict() for r in reports])
