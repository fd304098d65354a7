"""Tests of recexp.metrics: every metric against its written definition, and against LightFM.

The oracle (:func:`naive_evaluate`, :func:`naive_beyond`) is the module docstring of
``recexp.metrics`` transcribed one Python step per user, item and pair: rank the candidates
by ``(-score, item)``, read off positions, count. Hypothesis feeds it small score matrices
with many ties (integer scores 0..3) as well as continuous ones, random disjoint
train/test interactions with ratings, cold users and items, users whose test items are all
below the relevance threshold, ``k`` beyond the number of candidates, graded gains and
``exclude_seen=False``; ``evaluate`` must agree to rounding on every per-user value, every
summary value and every top-k list. The scores come from :class:`FixedScores`, a test
model that returns a given matrix.

On real data (``realdata``), a LightFM model fitted on an 80/20 split of MovieLens 100K is
evaluated by recexp and by ``lightfm.evaluation``: precision@10, recall@10, AUC and MRR
agree to 1e-6 per user and on the mean.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recexp.metrics as metrics_module
from recexp.columns import Columns
from recexp.dataset import Dataset
from recexp.metrics import ACCURACY, BEYOND, calibration, click_metrics, evaluate
from recexp.models.base import Recommender
from recexp.split import SEGMENTS, Split

# NaN summaries are expected on these tiny cases (an AUC is undefined when every candidate is
# relevant; a segment may have no evaluated user): numpy warns about the empty means.
pytestmark = [pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")]

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
ORACLE_SETTINGS = settings(SETTINGS, max_examples=50)
ALL_METRICS = ACCURACY + BEYOND
NAN = float("nan")


# ---------------------------------------------------------------------- a fixed model
class FixedScores(Recommender):
    """Test model (not registered): scores every user with one row of a given matrix.

    ``scores`` is float32 [n_users, n_items] in the training Dataset's *internal* order.
    """

    name = "_test_fixed_scores"

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = np.asarray(scores, dtype=np.float32)
        super().__init__()

    def _fit(self, train: Dataset, **kwargs) -> None:
        if self.scores.shape != (train.n_users, train.n_items):
            raise ValueError(f"scores {self.scores.shape} for {train.n_users} users x "
                             f"{train.n_items} items")

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.scores[user_idx].copy()


# ----------------------------------------------------------------------- test cases
class Case:
    """A Split of one small Dataset, a FixedScores model on it, and the raw item features."""

    def __init__(self, state: np.ndarray, ratings: np.ndarray, scores: np.ndarray,
                 features: dict[int, dict[str, float]], order: list[int]) -> None:
        n_users, n_items = state.shape
        cells = [(u, i) for u in range(n_users) for i in range(n_items) if state[u, i]]
        cells = [cells[j] for j in order]  # shuffled: internal order != external order
        frame = pd.DataFrame({
            Columns.User: np.asarray([f"u{u}" for u, _ in cells], dtype=object),
            Columns.Item: np.asarray([100 + i for _, i in cells], dtype=np.int64),
            Columns.Rating: np.asarray([ratings[u, i] for u, i in cells], dtype=np.float32),
        })
        feature_table = pd.DataFrame(
            [(100 + i, name, value) for i, f in features.items() for name, value in f.items()],
            columns=[Columns.Item, Columns.Feature, Columns.Value])
        self.data = Dataset.from_frames(
            frame, item_features=feature_table if len(feature_table) else None,
            users=[f"u{u}" for u in range(n_users)], items=100 + np.arange(n_items))
        is_test = np.asarray([state[u, i] == 2 for u, i in cells], dtype=bool)
        self.split = Split(self.data.subset(~is_test), self.data.subset(is_test), check=False)
        u_int = self.data.users.to_internal([f"u{u}" for u in range(n_users)])
        i_int = self.data.items.to_internal(100 + np.arange(n_items))
        internal = np.empty((n_users, n_items), dtype=np.float32)
        internal[np.ix_(u_int, i_int)] = scores
        self.scores = internal
        self.model = FixedScores(internal).fit(self.split.train)
        # raw features by internal item index, for the diversity oracle
        self.features = {int(i_int[i]): f for i, f in features.items()}


@st.composite
def cases(draw, *, max_users: int = 6, max_items: int = 8, ties: bool | None = None) -> Case:
    n_users = draw(st.integers(1, max_users))
    n_items = draw(st.integers(1, max_items))
    cells = n_users * n_items
    # 0 nothing, 1 train, 2 test: disjoint by construction
    state = np.asarray(draw(st.lists(st.sampled_from([0, 1, 1, 2, 2]), min_size=cells,
                                     max_size=cells))).reshape(n_users, n_items)
    if not state.any():
        state[0, 0] = 2
    ratings = np.asarray(draw(st.lists(st.integers(1, 5), min_size=cells, max_size=cells)),
                         dtype=np.float32).reshape(n_users, n_items)
    if ties is None:
        ties = draw(st.booleans())
    if ties:  # a handful of values: ties are the common case
        values = st.integers(0, 3).map(float)
    else:
        values = st.floats(-100, 100, width=32, allow_nan=False)
    scores = np.asarray(draw(st.lists(values, min_size=cells, max_size=cells)),
                        dtype=np.float32).reshape(n_users, n_items)
    names = ["a", "b", "c"]
    features = {}
    for i in range(n_items):
        chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
        features[i] = {name: float(draw(st.sampled_from([1.0, 2.0, 0.5]))) for name in chosen}
    n_cells = int((state > 0).sum())
    order = draw(st.permutations(range(n_cells)))
    return Case(state, ratings, scores, features, list(order))


# ------------------------------------------------------------------------ the oracle
def naive_ranking(scores_row, candidates):
    """Candidates best first: higher score, then lower internal item index."""
    return sorted(candidates, key=lambda i: (-float(scores_row[i]), i))


def naive_evaluate(split: Split, scores: np.ndarray, *, ks, exclude_seen: bool = True,
                   threshold: float | None = None, graded: bool = False):
    """The module docstring, one user at a time.

    Returns ``(per_user, lists)``: ``per_user[u]`` is a dict of every per-user metric (and
    ``n_relevant``) for each internal user ``u`` with relevant items; ``lists[u]`` is that
    user's full ranking of candidates.
    """
    train, test = split.train, split.test
    n_items = test.n_items
    seen = defaultdict(set)
    for u, i in zip(train.user_idx.tolist(), train.item_idx.tolist(), strict=True):
        seen[u].add(i)
    relevant = defaultdict(dict)  # user -> {item: gain}
    for row, (u, i) in enumerate(zip(test.user_idx.tolist(), test.item_idx.tolist(),
                                     strict=True)):
        rating = float(test.rating[row])
        if threshold is None or rating >= threshold:
            relevant[u][i] = rating if graded else 1.0
    per_user, lists = {}, {}
    for u, gains in relevant.items():
        candidates = [i for i in range(n_items) if not (exclude_seen and i in seen[u])]
        ranking = naive_ranking(scores[u], candidates)
        pos = {i: p for p, i in enumerate(ranking, start=1)}
        lists[u] = ranking
        n_rel = len(gains)
        row = {"n_relevant": n_rel}
        for k in ks:
            inside = [i for i in gains if pos[i] <= k]
            hits = len(inside)
            row[f"precision@{k}"] = hits / k
            row[f"recall@{k}"] = hits / n_rel
            row[f"hit_rate@{k}"] = 1.0 if hits > 0 else 0.0
            dcg = sum(gains[i] / math.log2(pos[i] + 1) for i in inside)
            ideal = sorted(gains.values(), reverse=True)[:k]
            idcg = sum(g / math.log2(p + 1) for p, g in enumerate(ideal, start=1))
            row[f"ndcg@{k}"] = dcg / idcg
            precision_at = {p: sum(1 for j in gains if pos[j] <= p) / p for p in pos.values()}
            row[f"map@{k}"] = sum(precision_at[pos[i]] for i in inside) / min(k, n_rel)
        row["mrr"] = 1.0 / min(pos[i] for i in gains)
        negatives = [j for j in candidates if j not in gains]
        pairs = [(i, j) for i in gains for j in negatives]
        row["auc"] = (sum(1 for i, j in pairs if pos[i] < pos[j]) / len(pairs) if pairs
                      else NAN)
        per_user[u] = row
    return per_user, lists


def naive_beyond(split: Split, lists: dict, ks, features: dict[int, dict[str, float]] | None
                 ) -> dict[str, float]:
    """coverage, novelty, popularity and diversity over the lists, from the docstring."""
    train = split.train
    n_items = train.n_items
    users_of = defaultdict(set)
    for u, i in zip(train.user_idx.tolist(), train.item_idx.tolist(), strict=True):
        users_of[i].add(u)
    n_train_users = len(set(train.user_idx.tolist()))

    def mean(values):
        values = list(values)
        return sum(values) / len(values) if values else NAN

    def cosine(a, b):
        fa, fb = features[a], features[b]
        dot = sum(v * fb.get(name, 0.0) for name, v in fa.items())
        return dot / (math.sqrt(sum(v * v for v in fa.values()))
                      * math.sqrt(sum(v * v for v in fb.values())))

    out = {}
    for k in ks:
        tops = [ranking[:k] for ranking in lists.values()]
        out[f"coverage@{k}"] = len({i for top in tops for i in top}) / n_items
        out[f"novelty@{k}"] = mean(
            mean(-math.log2((len(users_of[i]) + 1) / (n_train_users + 1)) for i in top)
            for top in tops)
        out[f"popularity@{k}"] = mean(mean(len(users_of[i]) for i in top) for top in tops)
        if features is None:
            out[f"diversity@{k}"] = NAN
        else:
            out[f"diversity@{k}"] = mean(
                mean(1.0 - cosine(a, b) for a, b in itertools.combinations(top, 2))
                for top in tops if len(top) >= 2)
    return out


def metric_names(ks) -> list[str]:
    at_k = [m for m in ACCURACY if m not in ("mrr", "auc")]
    return [f"{m}@{k}" for m in at_k for k in ks] + ["mrr", "auc"]


def assert_close(actual, expected, what: str) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64),
                               np.asarray(expected, dtype=np.float64), rtol=1e-9, atol=1e-12,
                               equal_nan=True, err_msg=what)


def check_against_oracle(case: Case, result, *, ks, exclude_seen=True, threshold=None,
                         graded=False) -> None:
    per_user, lists = naive_evaluate(case.split, case.scores, ks=ks, exclude_seen=exclude_seen,
                                     threshold=threshold, graded=graded)
    names = metric_names(ks)
    table = result.per_user[result.per_user["segment"] == "all"]
    users = case.data.users.to_internal(table[Columns.User].to_numpy())
    assert sorted(users.tolist()) == sorted(per_user), "evaluated users"
    for name in ["n_relevant", *names]:
        expected = [per_user[u][name] for u in users]
        assert_close(table[name].to_numpy(), expected, f"per-user {name}")
    assert result.summary["users"] == len(per_user)
    for name in names:
        values = [row[name] for row in per_user.values() if not math.isnan(row[name])]
        expected = sum(values) / len(values) if values else NAN
        assert_close(result.summary[name], expected, f"summary {name}")
    beyond = naive_beyond(case.split, lists, ks, case.features)
    for name, expected in beyond.items():
        assert_close(result.summary[name], expected, f"summary {name}")
    assert set(result.summary) == {"users", *names, *beyond}


# ------------------------------------------------------------------- oracle tests
@ORACLE_SETTINGS
@given(case=cases(), data=st.data())
def test_evaluate_matches_the_naive_definitions(case, data):
    check_case(case, data, chunk=None)


@SETTINGS
@given(case=cases(), data=st.data(), chunk=st.sampled_from([1, 3, 17]),
       sort_from=st.sampled_from([1, 3, 10**9]))
def test_evaluate_matches_the_naive_definitions_across_chunks(case, data, chunk, sort_from):
    # comparisons (and sorted bytes) done at once shrunk to a few: exercises the block and
    # slice boundaries; every row ranked by sorting (1), by counting (10**9), or a mix (3)
    check_case(case, data, chunk=chunk, sort_from=sort_from)


def check_case(case: Case, data, *, chunk: int | None, sort_from: int | None = None) -> None:
    n_items = case.data.n_items
    ks = data.draw(st.lists(st.integers(1, n_items + 3), min_size=1, max_size=3, unique=True),
                   label="ks")
    exclude_seen = data.draw(st.booleans(), label="exclude_seen")
    threshold = data.draw(st.sampled_from([None, 2.0, 3.5, 5.0]), label="threshold")
    graded = data.draw(st.booleans(), label="graded")
    batch_size = data.draw(st.integers(1, 4), label="batch_size")
    with pytest.MonkeyPatch.context() as patch:
        if chunk is not None:
            patch.setattr(metrics_module, "_CHUNK", chunk)
            patch.setattr(metrics_module, "_SORT_CHUNK", 4 * chunk)
        if sort_from is not None:
            patch.setattr(metrics_module, "_sort_from", lambda n_items: sort_from)
        result = evaluate(case.model, case.split, k=ks, metrics=ALL_METRICS,
                          batch_size=batch_size, exclude_seen=exclude_seen,
                          relevance_threshold=threshold, graded=graded, segments=False)
    check_against_oracle(case, result, ks=sorted(ks), exclude_seen=exclude_seen,
                         threshold=threshold, graded=graded)


@SETTINGS
@given(case=cases())
def test_recommended_lists_are_the_naive_top_k(case):
    kmax = case.data.n_items + 2
    result = evaluate(case.model, case.split, k=[1, kmax], metrics=ALL_METRICS,
                      segments=False)
    _, lists = naive_evaluate(case.split, case.scores, ks=[kmax])
    test_users = np.unique(case.split.test.user_idx)
    assert result.recommended.shape == (len(test_users), kmax)
    for row, u in enumerate(test_users):
        seen = set(case.split.train.item_idx[case.split.train.user_idx == u].tolist())
        ranking = naive_ranking(case.scores[u], [i for i in range(case.data.n_items)
                                                 if i not in seen])[:kmax]
        expected = ranking + [-1] * (kmax - len(ranking))
        assert result.recommended[row].tolist() == expected
        if u in lists:
            assert lists[u][:kmax] == ranking


def test_known_answer_with_ties_going_to_the_lower_index():
    # Internal order is order of first appearance: p, q, t (interactions), then r, s.
    frame = pd.DataFrame({Columns.User: ["a", "a", "a"], Columns.Item: ["p", "q", "t"],
                          Columns.Rating: np.array([4, 5, 3], np.float32)})
    data = Dataset.from_frames(frame, items=["r", "s"])
    assert data.item_ids.tolist() == ["p", "q", "t", "r", "s"]
    split = Split(data.subset(np.array([0])), data.subset(np.array([1, 2])), check=False)
    # p (seen) 9, q 2, t 2, r 1, s 2: candidates ranked q (2, index 1), t (2, index 2),
    # s (2, index 4), r (1); then, with t's score lowered to tie-below s's index: see `low`
    scores = np.array([[9, 2, 2, 1, 2]], np.float32)
    model = FixedScores(scores).fit(split.train)
    s = evaluate(model, split, k=[1, 2], metrics=ALL_METRICS, segments=False).summary
    assert s["precision@2"] == 1.0 and s["auc"] == 1.0 and s["ndcg@2"] == pytest.approx(1.0)

    # p 9, q 2, t 1.5, r 1.5, s 2 -> q (1), s (2), t (3: ties r, lower index), r (4)
    low = FixedScores(np.array([[9, 2, 1.5, 1.5, 2]], np.float32)).fit(split.train)
    result = evaluate(low, split, k=[1, 2], metrics=ALL_METRICS, segments=False)
    s = result.summary
    assert result.recommended.tolist() == [[1, 4]]
    assert s["precision@1"] == 1.0 and s["precision@2"] == 0.5
    assert s["recall@2"] == 0.5 and s["hit_rate@1"] == 1.0
    assert s["mrr"] == 1.0
    assert s["map@2"] == pytest.approx((1 / 1) / 2)
    assert s["ndcg@2"] == pytest.approx(1.0 / (1.0 + 1 / math.log2(3)))
    assert s["auc"] == pytest.approx((2 + 1) / 4)  # q beats s and r; t beats r
    assert s["coverage@2"] == pytest.approx(2 / 5)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n_rows=st.integers(1, 4), n_items=st.integers(1, 9),
       chunk=st.sampled_from([1, 5, 64, 1 << 21]), sort_from=st.sampled_from([1, 2, 10**9]))
def test_positions_match_a_sort_for_every_float(data, n_rows, n_items, chunk, sort_from):
    # -0.0 and +0.0 tie, infinities and subnormals keep their order, ties go to the lower
    # index: both ways of _positions (int64 keys counted; rows sorted, ties handed to the
    # counting) must rank exactly like sorting the floats, in any order of the pairs.
    specials = st.sampled_from([0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 1.0, -1.0])
    values = data.draw(st.lists(specials | st.floats(width=32, allow_nan=False),
                                min_size=n_rows * n_items, max_size=n_rows * n_items))
    scores = np.asarray(values, dtype=np.float32).reshape(n_rows, n_items)
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n_rows - 1),
                                         st.integers(0, n_items - 1)),
                               min_size=1, max_size=n_rows * n_items, unique=True))
    rows = np.array([r for r, _ in pairs], dtype=np.int64)
    cols = np.array([c for _, c in pairs], dtype=np.int32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics_module, "_CHUNK", chunk)
        patch.setattr(metrics_module, "_SORT_CHUNK", 4 * chunk)
        patch.setattr(metrics_module, "_sort_from", lambda n_items: sort_from)
        before = scores.copy()
        got = metrics_module._positions(scores, rows, cols)
    assert scores.tobytes() == before.tobytes()  # the scores are left as they were
    for (r, c), p in zip(pairs, got.tolist(), strict=True):
        assert naive_ranking(scores[r], range(n_items)).index(c) + 1 == p


def test_k_beyond_the_catalogue_regression():
    """Regression: with max(k) > n_items and beyond-accuracy metrics, evaluate crashed
    (top_k caps k at n_items, the narrower block did not fit the lists) or, with a single
    item, repeated it to fill the list, which skewed diversity, novelty and popularity.
    The lists are now padded with -1."""
    frame = pd.DataFrame({Columns.User: ["a", "a", "b", "b"], Columns.Item: ["p", "q", "p", "r"]})
    items = pd.DataFrame({Columns.Item: ["p", "q", "r"], Columns.Feature: ["x", "x", "y"]})
    data = Dataset.from_frames(frame, item_features=items)
    split = Split(data.subset(np.array([0, 2])), data.subset(np.array([1, 3])), check=False)
    model = FixedScores(np.array([[3, 2, 1], [3, 2, 1]], np.float32)).fit(split.train)
    for batch_size in (1, 2):
        result = evaluate(model, split, k=[1, 5], metrics=ALL_METRICS, batch_size=batch_size,
                          segments=False)
        assert result.recommended.tolist() == [[1, 2, -1, -1, -1], [1, 2, -1, -1, -1]]
        s = result.summary
        assert s["diversity@5"] == pytest.approx(1.0)  # q (x) and r (y): orthogonal
        assert s["popularity@5"] == pytest.approx(0.0)
        assert s["precision@5"] == pytest.approx(1 / 5) and s["recall@5"] == 1.0


@settings(max_examples=100, deadline=None)
@given(data=st.data(), n_items=st.integers(1, 8), n_features=st.integers(1, 4),
       n_lists=st.integers(1, 6), width=st.integers(1, 8))
def test_diversity_matches_a_loop_over_pairs(data, n_items, n_features, n_lists, width):
    # signed features and featureless items (a zero row: cosine 0 with everything, as the
    # code has always treated it); lists of distinct items padded with -1
    raw = np.asarray(data.draw(st.lists(st.sampled_from([-1.0, 0.0, 0.0, 0.5, 1.0, 2.0]),
                                        min_size=n_items * n_features,
                                        max_size=n_items * n_features))
                     ).reshape(n_items, n_features)
    lists = []
    for _ in range(n_lists):
        items = data.draw(st.lists(st.integers(0, n_items - 1), max_size=min(width, n_items),
                                   unique=True))
        lists.append(items + [-1] * (width - len(items)))
    top = np.asarray(lists, dtype=np.int64).reshape(n_lists, width)
    norms = np.sqrt((raw * raw).sum(axis=1))
    unit = sp.csr_matrix(raw / np.where(norms > 0, norms, 1.0)[:, None])

    def cosine(a, b):
        if norms[a] == 0 or norms[b] == 0:
            return 0.0
        return float(sum(x * y for x, y in zip(raw[a], raw[b], strict=True))
                     / (norms[a] * norms[b]))

    per_list = [sum(1.0 - cosine(a, b) for a, b in itertools.combinations(items, 2))
                / math.comb(len(items), 2)
                for items in ([i for i in row if i >= 0] for row in lists) if len(items) >= 2]
    expected = sum(per_list) / len(per_list) if per_list else NAN
    got = metrics_module._diversity(top, unit)
    assert_close(got, expected, "diversity")
    if per_list:
        assert 0.0 <= got <= 2.0


def test_diversity_of_identical_items_is_not_negative_regression():
    """Regression: two items with the same features (1, 1, 1) have cosine 1, but the unit
    rows' dot product rounds to 1 + 2e-16, and diversity came out as -2.2e-16 (found by
    ``test_every_metric_is_in_its_range``)."""
    frame = pd.DataFrame({Columns.User: ["a", "a", "a"], Columns.Item: ["p", "q", "r"]})
    items = pd.DataFrame({Columns.Item: ["p"] * 3 + ["q"] * 3 + ["r"] * 3,
                          Columns.Feature: ["x", "y", "z"] * 3})
    data = Dataset.from_frames(frame, item_features=items)
    split = Split(data.subset(np.array([0])), data.subset(np.array([1, 2])), check=False)
    model = FixedScores(np.array([[0, 2, 1]], np.float32)).fit(split.train)
    s = evaluate(model, split, k=2, metrics=("diversity",), segments=False).summary
    assert s["diversity@2"] == 0.0


def test_nan_scores_are_refused_regression():
    """Regression: NaN compares false with everything, so a diverged model (NaN scores)
    put every relevant item at position 1 and scored perfectly."""
    frame = pd.DataFrame({Columns.User: ["a", "a", "b"], Columns.Item: ["p", "q", "r"]})
    data = Dataset.from_frames(frame)
    split = Split(data.subset(np.array([0])), data.subset(np.array([1, 2])), check=False)
    scores = np.array([[0.1, 0.2, 0.3], [np.nan, np.nan, np.nan]], np.float32)
    model = FixedScores(scores).fit(split.train)
    with pytest.raises(ValueError, match=r"NaN for 1 user\(s\).*'b'"):
        evaluate(model, split, batch_size=2)


# ----------------------------------------------------------------------- properties
@SETTINGS
@given(case=cases(), graded=st.booleans(), threshold=st.sampled_from([None, 3.0]))
def test_every_metric_is_in_its_range(case, graded, threshold):
    ks = list(range(1, case.data.n_items + 3))
    result = evaluate(case.model, case.split, k=ks, metrics=ALL_METRICS, graded=graded,
                      relevance_threshold=threshold)
    for name, value in result.summary.items():
        base = name.split("/")[-1]
        if math.isnan(value):
            continue
        if base == "users":
            assert value == int(value) >= 0
        elif base.startswith(("novelty", "popularity")):
            assert value >= 0, name
        else:
            assert 0.0 <= value <= 1.0 + 1e-12, name
    values = result.per_user[metric_names(ks)].to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    assert ((finite >= 0) & (finite <= 1 + 1e-12)).all()
    # only auc may be undefined (every candidate relevant)
    others = result.per_user[[n for n in metric_names(ks) if n != "auc"]]
    assert not others.isna().any().any()


@SETTINGS
@given(case=cases())
def test_recall_and_hit_rate_never_decrease_with_k(case):
    ks = list(range(1, case.data.n_items + 3))
    table = evaluate(case.model, case.split, k=ks, metrics=("recall", "hit_rate", "precision"),
                     segments=False).per_user
    for metric in ("recall", "hit_rate"):
        values = table[[f"{metric}@{k}" for k in ks]].to_numpy()
        assert (np.diff(values, axis=1) >= 0).all(), metric
        # and reach 1 once every candidate is in the list
        np.testing.assert_array_equal(values[:, -1], 1.0)


@SETTINGS
@given(case=cases(), graded=st.booleans(), noise=st.integers(0, 2**32 - 1))
def test_ndcg_of_a_perfect_ranking_is_one(case, graded, noise):
    # Relevant items above everything else, ordered by rating when graded.
    test = case.split.test
    scores = np.random.default_rng(noise).random(case.scores.shape).astype(np.float32)
    bonus = 10.0 + (test.rating if graded else 0.0)
    scores[test.user_idx, test.item_idx] = bonus
    model = FixedScores(scores).fit(case.split.train)
    ks = list(range(1, case.data.n_items + 3))
    result = evaluate(model, case.split, k=ks, metrics=("ndcg", "mrr", "auc"), graded=graded,
                      segments=False)
    for k in ks:
        np.testing.assert_allclose(result.per_user[f"ndcg@{k}"], 1.0, rtol=1e-12)
    np.testing.assert_array_equal(result.per_user["mrr"], 1.0)
    auc = result.per_user["auc"].dropna()
    np.testing.assert_array_equal(auc, 1.0)


def evaluated_users(split: Split, mask: np.ndarray, threshold: float | None) -> set:
    test = split.test
    keep = mask.copy()
    if threshold is not None:
        keep &= test.rating >= threshold
    return set(test.users.to_external(np.unique(test.user_idx[keep])).tolist())


@SETTINGS
@given(case=cases(), threshold=st.sampled_from([None, 3.0]), batch_size=st.integers(1, 4))
def test_segment_summaries_equal_evaluating_the_segment_alone(case, threshold, batch_size):
    split = case.split
    ks = [1, 3]
    result = evaluate(case.model, split, k=ks, metrics=ALL_METRICS, batch_size=batch_size,
                      relevance_threshold=threshold)
    table = result.per_user
    names = metric_names(ks)
    present = [seg for seg in SEGMENTS if split.segments[seg].any()]
    everything = np.ones(split.test.n_interactions, bool)
    assert sorted(table["segment"].unique()) == sorted(
        seg for seg, mask in [("all", everything)] + [(s, split.segments[s]) for s in present]
        if evaluated_users(split, mask, threshold))
    for seg in present:
        alone = evaluate(case.model, Split(split.train, split.segment(seg), check=False),
                         k=ks, metrics=ACCURACY, batch_size=batch_size,
                         relevance_threshold=threshold, segments=False)
        assert result.summary[f"{seg}/users"] == alone.summary["users"]
        for name in names:
            assert_close(result.summary[f"{seg}/{name}"], alone.summary[name], f"{seg}/{name}")
        rows = table[table["segment"] == seg].drop(columns="segment").reset_index(drop=True)
        pd.testing.assert_frame_equal(rows, alone.per_user.drop(columns="segment"),
                                      check_dtype=False)
    # one row per evaluated user per segment
    for seg, rows in table.groupby("segment"):
        mask = (np.ones(split.test.n_interactions, bool) if seg == "all"
                else split.segments[seg])
        assert rows[Columns.User].is_unique
        assert set(rows[Columns.User].tolist()) == evaluated_users(split, mask, threshold)
        prefix = "" if seg == "all" else f"{seg}/"
        assert result.summary[f"{prefix}users"] == len(rows)
    assert not any(key.startswith(f"{seg}/") for seg in SEGMENTS for key in result.summary
                   if seg not in present)


@settings(SETTINGS, max_examples=20)
@given(case=cases(max_users=8, max_items=10), sizes=st.lists(st.integers(1, 9), min_size=1,
                                                               max_size=3))
def test_batch_size_does_not_change_any_number(case, sizes):
    ks = [1, 2, 5]
    reference = evaluate(case.model, case.split, k=ks, metrics=ALL_METRICS, batch_size=10_000)
    for size in sizes:
        other = evaluate(case.model, case.split, k=ks, metrics=ALL_METRICS, batch_size=size)
        assert other.summary.keys() == reference.summary.keys()
        for key, value in reference.summary.items():
            assert other.summary[key] == value or (math.isnan(value)
                                                   and math.isnan(other.summary[key])), key
        pd.testing.assert_frame_equal(other.per_user, reference.per_user)
        np.testing.assert_array_equal(other.recommended, reference.recommended)


def test_users_without_relevant_items_are_left_out_of_everything():
    """Regression: the beyond-accuracy metrics used the lists of every user with test
    interactions, also those whose test items are all below ``relevance_threshold`` (the
    docstring: over the lists of the evaluated users)."""
    # u0: test items rated 5 and 1; u1: only a test item rated 1 -> not evaluated at 3.0.
    frame = pd.DataFrame({Columns.User: ["u0", "u0", "u0", "u1", "u1"],
                          Columns.Item: ["a", "b", "c", "a", "d"],
                          Columns.Rating: np.array([3, 5, 1, 4, 1], np.float32)})
    data = Dataset.from_frames(frame)
    split = Split(data.subset(np.array([0, 3])), data.subset(np.array([1, 2, 4])), check=False)
    scores = np.array([[0, 1, 2, 3], [3, 2, 1, 0]], np.float32)  # internal order a, b, c, d
    model = FixedScores(scores).fit(split.train)
    result = evaluate(model, split, k=2, metrics=ALL_METRICS, relevance_threshold=3.0,
                      segments=False)
    assert result.summary["users"] == 1
    assert result.per_user[Columns.User].tolist() == ["u0"]
    # u0 ranks d, c, b (a is seen); u1's list (b, c: no relevant item) must not count
    assert result.summary["coverage@2"] == pytest.approx(2 / 4)
    assert result.summary["recall@2"] == 0.0 and result.summary["mrr"] == pytest.approx(1 / 3)


# ----------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def small_case() -> Case:
    state = np.array([[1, 2, 0, 1], [2, 1, 1, 0], [0, 0, 2, 1]])
    ratings = np.full(state.shape, 4.0, np.float32)
    scores = np.arange(12, dtype=np.float32).reshape(3, 4)
    return Case(state, ratings, scores, {}, list(range(int((state > 0).sum()))))


@pytest.mark.parametrize(("bad", "nearest"), [("precison", "precision"), ("ndcg@10", "ndcg"),
                                              ("Recall", "recall"), ("coverag", "coverage")])
def test_unknown_metric_names_it_and_the_nearest_valid_one(small_case, bad, nearest):
    with pytest.raises(ValueError) as err:
        evaluate(small_case.model, small_case.split, metrics=("auc", bad))
    message = str(err.value)
    assert bad in message and f"did you mean {nearest!r}" in message


def test_a_model_fitted_on_another_dataset_is_refused(small_case):
    other = Dataset.from_frames(pd.DataFrame({Columns.User: ["x", "y"],
                                              Columns.Item: ["p", "q"]}))
    model = FixedScores(np.zeros((2, 2), np.float32)).fit(other)
    with pytest.raises(ValueError, match="fit it on this split's train"):
        evaluate(model, small_case.split)


def test_a_model_fitted_on_another_dataset_of_the_same_shape_is_refused(small_case):
    """Regression: only the sizes were compared, so a model fitted on another Dataset with
    as many users and items was evaluated against the wrong ids without a word."""
    data = small_case.data
    frame = data.to_frame()
    frame[Columns.User] = "other-" + frame[Columns.User].astype(str)
    other = Dataset.from_frames(frame, users=["other-" + str(u) for u in data.user_ids],
                                items=data.item_ids)
    assert (other.n_users, other.n_items) == (data.n_users, data.n_items)
    model = FixedScores(np.zeros((other.n_users, other.n_items), np.float32)).fit(other)
    with pytest.raises(ValueError, match="fit it on this split's train"):
        evaluate(model, small_case.split)


def test_an_unfitted_model_is_refused(small_case):
    with pytest.raises(ValueError, match="not fitted"):
        evaluate(FixedScores(small_case.scores), small_case.split)


def test_bad_k_and_missing_ratings_are_refused(small_case):
    for k in (0, [5, -1], []):
        with pytest.raises(ValueError, match="k must be positive"):
            evaluate(small_case.model, small_case.split, k=k)
    frame = small_case.data.to_frame().drop(columns=[Columns.Rating])
    data = Dataset.from_frames(frame)
    split = Split(data.subset(np.array([0, 1])), data.subset(np.array([2])), check=False)
    model = FixedScores(np.zeros((data.n_users, data.n_items))).fit(split.train)
    for kwargs in ({"relevance_threshold": 3.0}, {"graded": True}):
        with pytest.raises(ValueError, match="need ratings"):
            evaluate(model, split, **kwargs)


def test_a_model_loaded_from_disk_still_matches_its_split(tmp_path):
    # A saved-and-loaded model has new IdMap objects with the same ids: still accepted.
    from recexp.models.baselines import MostPopular

    state = np.array([[1, 2, 0, 1], [2, 1, 1, 0], [0, 1, 2, 1]])
    case = Case(state, np.full(state.shape, 3.0, np.float32), np.zeros(state.shape), {},
                list(range(int((state > 0).sum()))))
    model = MostPopular().fit(case.split.train)
    loaded = MostPopular.load(model.save(tmp_path / "m"))
    a = evaluate(model, case.split, k=2)
    b = evaluate(loaded, case.split, k=2)
    assert a.summary == b.summary


# --------------------------------------------------------------------- click metrics
@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(2, 60))
def test_click_metrics_match_sklearn_and_the_definition(data, n):
    from sklearn.metrics import log_loss, roc_auc_score

    labels = np.asarray(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    # a few distinct values (ties) and the clip boundaries 0 and 1
    probs = np.asarray(data.draw(st.lists(st.sampled_from([0.0, 1e-9, 0.1, 0.25, 0.5, 0.9,
                                                           1.0]) | st.floats(0, 1),
                                          min_size=n, max_size=n)))
    out = click_metrics(labels, probs)
    clipped = np.clip(probs, 1e-7, 1 - 1e-7)
    naive_loss = -sum(math.log(p) if y else math.log(1 - p)
                      for y, p in zip(labels.tolist(), clipped.tolist(), strict=True)) / n
    assert out["log_loss"] == pytest.approx(naive_loss, rel=1e-9, abs=1e-12)
    assert out["log_loss"] == pytest.approx(log_loss(labels, clipped, labels=[0, 1]), rel=1e-12)
    assert out["ctr"] == pytest.approx(labels.mean())
    assert out["mean_prediction"] == pytest.approx(clipped.mean())
    if len(set(labels.tolist())) == 2:
        pos = clipped[labels == 1]
        neg = clipped[labels == 0]
        naive_auc = sum(1.0 if p > q else 0.5 if p == q else 0.0
                        for p in pos for q in neg) / (len(pos) * len(neg))
        assert out["roc_auc"] == pytest.approx(naive_auc, rel=1e-12)
        assert out["roc_auc"] == pytest.approx(roc_auc_score(labels, clipped), rel=1e-12)
    else:
        assert math.isnan(out["roc_auc"])


def test_click_metrics_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        click_metrics(np.array([0, 1, 1]), np.array([0.2, 0.3]))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(1, 200), bins=st.integers(1, 12))
def test_calibration_buckets_partition_the_rows(data, n, bins):
    labels = np.asarray(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    probs = np.asarray(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    table = calibration(labels, probs, bins=bins)
    assert list(table.columns) == ["bucket", "rows", "mean_prediction", "observed_ctr"]
    assert table["rows"].sum() == n
    assert len(table) == min(bins, n)
    assert table["rows"].max() - table["rows"].min() <= 1  # equal-count buckets
    assert table["mean_prediction"].is_monotonic_increasing
    # each bucket's numbers are its rows' means, rows taken in order of prediction
    order = np.argsort(probs, kind="stable")
    start = 0
    for _, row in table.iterrows():
        rows = order[start:start + int(row["rows"])]
        assert row["mean_prediction"] == pytest.approx(probs[rows].mean())
        assert row["observed_ctr"] == pytest.approx(labels[rows].mean())
        start += int(row["rows"])


# ------------------------------------------------------------------ against LightFM
def test_lightfm_ranks_ties_against_the_relevant_item():
    """The tie rule of the installed ``lightfm.evaluation``, pinned down.

    ``predict_rank`` counts every non-train item scoring ``>=`` the relevant item as above
    it, so tied items get the *worst* position: an all-zero model scores precision 0 there,
    while recexp ranks ties by the lower item index. Continuous scores have no ties, which
    is why the two agree on a fitted model (the real-data test below).
    """
    from lightfm import LightFM
    from lightfm.evaluation import precision_at_k

    n_users, n_items = 3, 6
    lfm = LightFM(no_components=2, random_state=0)
    lfm._initialize(2, n_items, n_users)
    for name in ("user_embeddings", "item_embeddings", "user_biases", "item_biases"):
        setattr(lfm, name, np.zeros_like(getattr(lfm, name)))
    test = sp.csr_matrix(np.eye(n_users, n_items, dtype=np.float32))  # user u likes item u
    ranks = lfm.predict_rank(test, num_threads=1)
    np.testing.assert_array_equal(ranks.data, n_items - 1)
    assert precision_at_k(lfm, test, k=5).mean() == 0.0

    frame = pd.DataFrame({Columns.User: [0, 1, 2], Columns.Item: [0, 1, 2]})
    data = Dataset.from_frames(frame, items=range(n_items))
    empty = data.subset(np.zeros(3, bool))
    model = FixedScores(np.zeros((n_users, n_items))).fit(empty)
    result = evaluate(model, Split(empty, data, check=False), k=5, metrics=("precision",),
                      segments=False)
    # ties to the lower index: item u sits at position u + 1, inside the top 5
    assert result.summary["precision@5"] == pytest.approx(1 / 5)


@pytest.fixture(scope="module")
def ml100k_fitted(ml100k_dataset):
    """An 80/20 random split of ML-100K with every item in train, and LightFM fitted on it.

    Test interactions of items that would have no training interaction stay in train: a cold
    item's representation is zeroed by recexp (see LightFMRecommender) but is its random
    initial embedding in LightFM, so the two would score it differently.
    """
    from recexp.models.lightfm import LightFMRecommender

    data = ml100k_dataset
    rng = np.random.default_rng(20240607)
    test = rng.random(data.n_interactions) < 0.2
    warm = np.bincount(data.item_idx[~test], minlength=data.n_items) > 0
    test &= warm[data.item_idx]
    split = Split(data.subset(~test), data.subset(test), check=False)
    model = LightFMRecommender(no_components=16, loss="warp", epochs=5, num_threads=1,
                               random_state=7, use_features="none").fit(split.train)
    return split, model


@pytest.mark.realdata
def test_evaluate_equals_lightfm_evaluation_on_movielens(ml100k_fitted):
    from lightfm.evaluation import auc_score, precision_at_k, recall_at_k, reciprocal_rank

    split, model = ml100k_fitted
    lfm = model.lightfm_
    test, train = split.test.binary, split.train.binary
    assert isinstance(test, sp.csr_matrix) and isinstance(train, sp.csr_matrix)
    result = evaluate(model, split, k=[5, 10], metrics=("precision", "recall", "auc", "mrr"),
                      segments=False)
    theirs = {
        "precision@10": precision_at_k(lfm, test, train, k=10, num_threads=1),
        "precision@5": precision_at_k(lfm, test, train, k=5, num_threads=1),
        "recall@10": recall_at_k(lfm, test, train, k=10, num_threads=1),
        "auc": auc_score(lfm, test, train, num_threads=1),
        "mrr": reciprocal_rank(lfm, test, train, num_threads=1),
    }
    # LightFM returns one value per user with test items, in internal user order
    table = result.per_user
    order = np.argsort(split.test.users.to_internal(table[Columns.User].to_numpy()))
    with_test = np.flatnonzero(test.getnnz(axis=1) > 0)
    assert len(table) == len(with_test) == result.summary["users"]
    for name, values in theirs.items():
        ours = table[name].to_numpy()[order]
        np.testing.assert_allclose(ours, values.astype(np.float64), rtol=0, atol=1e-6,
                                   err_msg=name)
        assert result.summary[name] == pytest.approx(values.astype(np.float64).mean(),
                                                     abs=1e-6), name
    assert 0.5 < result.summary["auc"] < 1.0  # a model that learned something


@pytest.mark.realdata
def test_batch_size_does_not_change_real_data_numbers(ml100k_fitted):
    split, model = ml100k_fitted
    a = evaluate(model, split, k=[5, 10], metrics=ALL_METRICS, batch_size=97)
    b = evaluate(model, split, k=[5, 10], metrics=ALL_METRICS, batch_size=4096)
    assert a.summary.keys() == b.summary.keys()
    for key, value in a.summary.items():
        assert b.summary[key] == value or (math.isnan(value) and math.isnan(b.summary[key]))
    pd.testing.assert_frame_equal(a.per_user, b.per_user)
    np.testing.assert_array_equal(a.recommended, b.recommended)
