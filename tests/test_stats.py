"""Tests of recexp.stats: intervals, paired tests, Holm, and the comparison tables.

Holm is checked against a hand-computed example and, on random p-values, against a naive
implementation written from its textbook definition (adjusted ``p_i`` is the largest
``min(1, (m - r_j + 1) p_j)`` over the p-values ``p_j <= p_i``, ``r_j`` the 1-based rank of
``p_j`` counting strictly smaller ones). Intervals and tests are checked against the scipy
functions they are documented to be. :func:`compare_runs` is checked for what it is for: a
planted difference is found and a null one is not, over 20 seeded repetitions.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from recexp.columns import Columns
from recexp.stats import (
    RunTable,
    bootstrap_interval,
    compare_runs,
    holm,
    paired_test,
    seed_interval,
    summarize_runs,
)

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------ holm
def naive_holm(pvalues: list[float]) -> list[float]:
    """Holm's adjusted p-values from the definition, one p-value at a time; NaN stays NaN."""
    finite = [p for p in pvalues if not math.isnan(p)]
    m = len(finite)
    out = []
    for p in pvalues:
        if math.isnan(p):
            out.append(math.nan)
            continue
        candidates = []
        for q in finite:
            if q <= p:
                rank = 1 + sum(1 for other in finite if other < q)
                candidates.append(min(1.0, (m - rank + 1) * q))
        out.append(max(candidates))
    return out


def test_holm_hand_computed():
    # sorted: 0.005 x4 = 0.02; 0.01 x3 = 0.03; 0.03 x2 = 0.06; 0.04 x1 = 0.04 -> max so far 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    # NaN is not a comparison: m = 2
    np.testing.assert_allclose(holm([0.01, math.nan, 0.04]), [0.02, math.nan, 0.04])
    # capped at 1, and monotone after the cap
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
    # ties share one adjusted value
    np.testing.assert_allclose(holm([0.02, 0.02, 0.5]), [0.06, 0.06, 0.5])
    assert holm([]).shape == (0,)
    assert np.isnan(holm([math.nan, math.nan])).all()


@SETTINGS
@given(st.lists(st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.01, 0.05, 1.0, math.nan])),
                max_size=30))
def test_holm_matches_the_naive_definition(pvalues):
    adjusted = holm(pvalues)
    np.testing.assert_allclose(adjusted, naive_holm(pvalues), rtol=1e-12, atol=0,
                               equal_nan=True)
    finite = ~np.isnan(np.asarray(pvalues, dtype=float))
    p = np.asarray(pvalues, dtype=float)[finite]
    a = adjusted[finite]
    assert (a >= p).all() and (a <= np.minimum(1.0, len(p) * p) + 1e-15).all()  # <= Bonferroni
    order = np.argsort(p, kind="stable")
    assert (np.diff(a[order]) >= 0).all()  # keeps the order of the raw p-values


# ----------------------------------------------------------------------- intervals
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.floats(0, 1), min_size=2, max_size=80), st.integers(0, 1000))
def test_bootstrap_interval_contains_the_mean(values, seed):
    low, high = bootstrap_interval(values, seed=seed)
    mean = float(np.mean(values))
    assert low <= mean + 1e-12 and mean - 1e-12 <= high
    assert low <= high


def test_bootstrap_interval_shrinks_with_n():
    rng = np.random.default_rng(0)
    widths = []
    for n in (30, 300, 3000):
        values = rng.binomial(1, 0.3, size=n).astype(float)  # like hit_rate per user
        low, high = bootstrap_interval(values, seed=1)
        assert low <= values.mean() <= high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    # the width of a mean's interval goes like 1/sqrt(n): 10x the users, ~1/3.2 the width
    assert 2.0 < widths[1] / widths[2] < 5.0


def test_bootstrap_interval_edge_cases():
    assert all(math.isnan(x) for x in bootstrap_interval([0.3]))
    assert all(math.isnan(x) for x in bootstrap_interval([math.nan, 0.3, math.nan]))
    assert bootstrap_interval([0.25, 0.25, 0.25]) == (0.25, 0.25)
    # NaN (e.g. an undefined AUC) is dropped, not counted
    values = np.random.default_rng(3).random(50)
    assert bootstrap_interval(np.r_[values, math.nan], seed=5) == bootstrap_interval(values,
                                                                                      seed=5)
    # seeded: the same call gives the same interval
    assert bootstrap_interval(values, seed=5) == bootstrap_interval(values, seed=5)


@SETTINGS
@given(st.lists(st.floats(-10, 10), min_size=2, max_size=20),
       st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_seed_interval_equals_scipy_t_interval(means, confidence):
    mean, std, low, high = seed_interval(means, confidence=confidence)
    x = np.asarray(means)
    assert mean == pytest.approx(x.mean(), abs=1e-12)
    assert std == pytest.approx(x.std(ddof=1), abs=1e-12)
    sem = sps.sem(x)
    if sem == 0:
        assert low == pytest.approx(mean) and high == pytest.approx(mean)
        return
    lo, hi = sps.t.interval(confidence, len(x) - 1, loc=x.mean(), scale=sem)
    assert low == pytest.approx(lo, rel=1e-9, abs=1e-12)
    assert high == pytest.approx(hi, rel=1e-9, abs=1e-12)


def test_seed_interval_with_one_seed():
    mean, std, low, high = seed_interval([0.42])
    assert mean == 0.42 and math.isnan(std) and math.isnan(low) and math.isnan(high)


# ---------------------------------------------------------------------- paired tests
@SETTINGS
@given(data=st.data(), n=st.integers(20, 40))
def test_paired_test_equals_scipy_on_the_common_users(data, n):
    # At least 14 common users: with ties and n <= 13 scipy's wilcoxon runs an exact
    # permutation test (~1 s a call), the same function either way.
    values = st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.5, 1.0]))  # ties and zeros
    a_vals = data.draw(st.lists(values, min_size=n, max_size=n))
    b_vals = data.draw(st.lists(values, min_size=n, max_size=n))
    users = [f"u{i}" for i in range(n)]
    only_a = data.draw(st.lists(st.sampled_from(users), unique=True, max_size=3))
    only_b = data.draw(st.lists(st.sampled_from([u for u in users if u not in only_a]),
                                unique=True, max_size=3))
    order = data.draw(st.permutations(range(n)))
    a = pd.Series({u: v for u, v in zip(users, a_vals, strict=True) if u not in only_b})
    # b lists its users in another order, plus users a never saw
    b = pd.Series({users[i]: b_vals[i] for i in order if users[i] not in only_a})
    b = pd.concat([b, pd.Series({"stranger": 0.9, "other": 0.1})])
    common = [u for u in users if u not in only_a and u not in only_b]
    x = np.array([a[u] for u in common])
    y = np.array([b[u] for u in common])
    result = paired_test(a, b)
    assert result.n == len(common)
    assert result.diff == pytest.approx(float(np.mean(y - x)), abs=1e-12)
    if np.all(y == x):
        assert (result.t_pvalue, result.wilcoxon_pvalue) == (1.0, 1.0)
        return
    expected_t = sps.ttest_rel(y, x).pvalue
    expected_w = sps.wilcoxon(y - x).pvalue
    assert result.t_pvalue == pytest.approx(expected_t, rel=1e-9, nan_ok=True)
    assert result.wilcoxon_pvalue == pytest.approx(expected_w, rel=1e-9, nan_ok=True)


def test_paired_test_with_fewer_than_two_common_users():
    a = pd.Series({"u1": 0.1, "u2": 0.4})
    b = pd.Series({"u2": 0.3, "u3": 0.9})
    result = paired_test(a, b)
    assert result.n == 1
    assert all(math.isnan(x) for x in (result.diff, result.t_pvalue, result.wilcoxon_pvalue))


def test_paired_test_drops_users_with_nan():
    a = pd.Series({"u1": 0.1, "u2": math.nan, "u3": 0.5, "u4": 0.7, "u5": 0.2})
    b = pd.Series({"u1": 0.3, "u2": 0.9, "u3": 0.6, "u4": math.nan, "u5": 0.6})
    result = paired_test(a, b)
    assert result.n == 3
    x, y = np.array([0.1, 0.5, 0.2]), np.array([0.3, 0.6, 0.6])
    assert result.diff == pytest.approx((y - x).mean())
    assert result.t_pvalue == pytest.approx(sps.ttest_rel(y, x).pvalue)


# ------------------------------------------------------------------ the comparison tables
def per_user(users: list[str], values: np.ndarray, metric: str = "ndcg@10",
             segments: bool = True) -> pd.DataFrame:
    """A per_user table as evaluate() makes it: segment "all" plus a segment to ignore."""
    table = pd.DataFrame({"segment": "all", Columns.User: users, "n_relevant": 3,
                          metric: values})
    if not segments:
        return table.drop(columns="segment")
    # a cold segment with other numbers: must not leak into the comparison
    cold = table.iloc[: len(users) // 4].assign(segment="cold_user", **{metric: 0.0})
    return pd.concat([table, cold], ignore_index=True)


def planted_runs(seed: int, *, n_users: int = 300, effect: float = 0.05, seeds: int = 1
                 ) -> list[RunTable]:
    """Baseline, a model better by ``effect`` per user, and a null model (same distribution
    as the baseline), each with per-user noise around a shared per-user difficulty."""
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(n_users)]
    difficulty = rng.beta(2, 5, size=n_users)
    runs = []
    for label, shift in (("base", 0.0), ("better", effect), ("same", 0.0)):
        for s in range(seeds):
            noise = rng.normal(0, 0.1, size=n_users)
            runs.append(RunTable(label, s, per_user(users, difficulty + shift + noise)))
    return runs


def test_compare_runs_finds_a_planted_difference_and_not_a_null_one():
    """20 seeded repetitions of the same experiment design.

    ``better`` is the baseline plus 0.05 per user (paired t ~ 6 with 300 users and noise
    0.1: power ~ 1), ``same`` has the baseline's distribution. A correct test with Holm at
    alpha = 0.05 finds ``better`` every time and ``same`` about once in 20 or less (at most
    0.05 per repetition); the seeds are fixed, so the check is deterministic, and the bounds
    (>= 19 and <= 3 of 20) leave room for chance without hiding a broken test.
    """
    found, false = 0, 0
    for seed in range(20):
        table = compare_runs(planted_runs(seed), metric="ndcg@10", baseline="base")
        row = table.set_index("model")
        assert row.loc["base", "diff"] == 0.0 and not row.loc["base", "significant"]
        assert row.loc["better", "diff"] == pytest.approx(0.05, abs=0.03)
        found += bool(row.loc["better", "significant"])
        false += bool(row.loc["same", "significant"])
        assert row.loc["better", "paired_users"] == 300
    assert found >= 19
    assert false <= 3


def test_compare_runs_table_is_what_the_parts_say():
    runs = planted_runs(0, seeds=3)
    table = compare_runs(runs, metric="ndcg@10", baseline="base").set_index("model")

    def users(label: str) -> pd.Series:
        """Per-user mean over the label's seeds, segment "all" only."""
        return pd.concat(
            [r.per_user[r.per_user["segment"] == "all"].set_index(Columns.User)["ndcg@10"]
             for r in runs if r.label == label], axis=1).mean(axis=1)

    tests = {label: paired_test(users("base"), users(label)) for label in ("better", "same")}
    for label, test in tests.items():
        assert table.loc[label, "t_pvalue"] == pytest.approx(test.t_pvalue)
        assert table.loc[label, "wilcoxon_pvalue"] == pytest.approx(test.wilcoxon_pvalue)
        assert table.loc[label, "diff"] == pytest.approx(test.diff)
    adjusted = holm([tests["better"].t_pvalue, tests["same"].t_pvalue])
    assert table.loc["better", "holm_pvalue"] == pytest.approx(adjusted[0])
    assert table.loc["same", "holm_pvalue"] == pytest.approx(adjusted[1])
    assert (table["metric"] == "ndcg@10").all()


def test_summarize_runs_uses_seeds_t_with_several_seeds_and_bootstrap_with_one():
    several = planted_runs(1, seeds=4)
    table = summarize_runs(several, metric="ndcg@10").set_index("model")
    assert (table["interval"] == "seeds-t").all() and (table["seeds"] == 4).all()
    for label in ("base", "better"):
        means = [r.per_user.loc[r.per_user["segment"] == "all", "ndcg@10"].mean()
                 for r in several if r.label == label]
        mean, std, low, high = seed_interval(means)
        row = table.loc[label]
        assert (row["mean"], row["std_seeds"], row["low"], row["high"]) == pytest.approx(
            (mean, std, low, high))
        assert row["users"] == 300

    one = planted_runs(1, seeds=1)
    table = summarize_runs(one, metric="ndcg@10").set_index("model")
    assert (table["interval"] == "bootstrap-users").all() and (table["seeds"] == 1).all()
    values = one[0].per_user.loc[one[0].per_user["segment"] == "all", "ndcg@10"].to_numpy()
    row = table.loc["base"]
    assert row["mean"] == pytest.approx(values.mean())
    assert math.isnan(row["std_seeds"])
    assert (row["low"], row["high"]) == pytest.approx(bootstrap_interval(values))


def test_summarize_runs_without_a_segment_column():
    users = [f"u{i}" for i in range(20)]
    values = np.linspace(0, 1, 20)
    runs = [RunTable("m", 0, per_user(users, values, segments=False))]
    row = summarize_runs(runs, metric="ndcg@10").iloc[0]
    assert row["mean"] == pytest.approx(0.5) and row["users"] == 20


def test_compare_runs_bad_baseline_and_metric():
    runs = planted_runs(2, n_users=20)
    with pytest.raises(KeyError, match="did you mean 'base'"):
        compare_runs(runs, metric="ndcg@10", baseline="bse")
    with pytest.raises(KeyError, match="recall@10"):
        compare_runs(runs, metric="recall@10", baseline="base")
